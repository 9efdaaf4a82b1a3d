-- client.projects against the sandbox.
local sbx = require "support.sandbox"
local H = require "client.resources.common"

describe("projects", function()
  local c
  before_each(function()
    sbx.reset()
    c = H.client()
  end)

  it("list returns the projects the key may use", function()
    local list = assert(c.projects:list())
    assert.equal(1, #list)
    assert.equal(tonumber(sbx.env("DI_PROJECT")), list[1].idProject)
    assert.is_string(list[1].ProjectName)
    local r, err = H.client { key = "sbx-wrong-key" }.projects:list()
    assert.is_nil(r)
    assert.equal("auth", err.kind)
    assert.equal(401, err.status)
  end)

  it("get returns ProjectInfo, and needs a project", function()
    local info = assert(c.projects:get())
    assert.is_table(info.ProjectFields)
    local s = sbx.settings()
    s.project = nil
    local r, err = require("dialoginsight").new(s).projects:get()
    assert.is_nil(r)
    assert.equal("validation", err.kind)
    assert.equal("idProject", err.field)
    r, err = H.noperm().projects:get()
    assert.is_nil(r)
    assert.equal("AccessDenied", err.code)
  end)

  it("fields lists the fields, types and opt-ins that Projects.Get describes", function()
    local raw = assert(c:call("projects", "Get", {})).ProjectInfo
    local s = assert(c.projects:fields())
    assert.equal(#raw.ProjectFields, #s.fields)
    for i, f in ipairs(raw.ProjectFields) do
      assert.equal(f.Code, s.fields[i].name)
      assert.equal("f_" .. f.Code, s.fields[i].wire)
      assert.equal(f.DataType, s.fields[i].type)
      assert.equal(f.isRequired == true, s.fields[i].required)
    end
    assert.equal(#raw.OptinFields, #s.optins)
    assert.equal("optin_" .. raw.OptinFields[1].Code, s.optins[1].wire)
    assert.equal("EMail", s.key)
  end)

  it("fields is cached per client and refreshable", function()
    local mark = sbx.mark()
    local a = assert(c.projects:fields())
    assert.equal(a, c.projects:fields())
    assert.equal(1, #H.calls(mark, "projects.get"))
    assert.are_not.equal(a, c.projects:fields { refresh = true })
    assert.equal(2, #H.calls(mark, "projects.get"))
    local r, err = H.noperm().projects:fields()
    assert.is_nil(r)
    assert.equal("auth", err.kind)
  end)
end)
