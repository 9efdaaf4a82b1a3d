-- The hostile review of issue 26 (the leaner call path), each finding as the spec that
-- failed before its fix.  (JSON under a comma locale: spec/client/json_spec.lua.)
local di = require "dialoginsight"
local core = require "dialoginsight.core"

local function client(project)
  return di.new { key_id = 1, key = "k", project = project, base_url = "https://127.0.0.1:9/x/",
                  rate = false, env = false }
end

local function body(c, params)
  local req, err = c:prepare("contacts", "Merge", params)
  if not req then return nil, err end
  return core.decode(req.body)
end

describe("review 26: a request's body", function()
  it("sends params with a metatable as pairs sees them, as it always did", function()
    local c = client(1001)
    -- __index: what pairs does not see is not sent, and the client's project is
    local b = assert(body(c, setmetatable({ x = 1 }, { __index = { idProject = 42 } })))
    assert.equal(1001, b.idProject)
    assert.equal(1, b.x)
    -- __pairs (Lua 5.4): every member it gives
    if _VERSION == "Lua 5.4" then
      b = assert(body(c, setmetatable({}, { __pairs = function() return next, { y = 2, Records = {} } end })))
      assert.equal(2, b.y)
      assert.is_table(b.Records)
    end
    -- an __index that raises (a "strict" table) is never asked for a field pairs does not give
    b = assert(body(c, setmetatable({ z = 3 }, { __index = function() error("strict: no such field") end })))
    assert.equal(3, b.z)
  end)

  it("takes idProject = false as none: the client's project, or the validation error", function()
    local b = assert(body(client(1001), { idProject = false, x = 1 }))
    assert.equal(1001, b.idProject)
    local r, err = body(client(nil), { idProject = false })
    assert.is_nil(r)
    assert.equal("validation", err.kind)
    assert.equal("idProject", err.field)
  end)

  it("never sends the caller's AuthKey, and keeps the caller's own idProject", function()
    local b = assert(body(client(1001), { AuthKey = { idKey = 9, Key = "other" }, idProject = 7 }))
    assert.same({ idKey = 1, Key = "k" }, b.AuthKey)
    assert.equal(7, b.idProject)
  end)

  it("reads params raw in C: no metamethod runs while the body is written", function()
    local calls = 0
    local t = setmetatable({}, { __index = function() calls = calls + 1; error("x") end })
    for _ = 1, 100 do assert(core.encode_body(t, '"AuthKey":{}', 5)) end
    assert.equal(0, calls)
  end)
end)

describe("review 26: decode messages", function()
  it("says a value was expected where one is missing", function()
    local r, err = core.decode("[1,}")
    assert.is_nil(r)
    assert.equal("expected a value at character 4", err)
  end)
end)
