-- When a guess about the wire is wrong (docs/wire.md marks each one), the
-- client stays correct, or the user can correct it without editing the
-- library: fake replies for each other plausible answer.  The sandbox's
-- modes run the same questions end to end (spec/client/resources/modes_spec.lua).
local core = require "dialoginsight.core"
local config = require "dialoginsight.config"
local client_mod = require "dialoginsight.client"

-- A transport whose replies come from answer(url, request) -> status, reply table.
local function fake(answer)
  local t = { urls = {} }
  function t.now() return 0 end
  function t.sleep(_, s) t.slept = (t.slept or 0) + s end
  function t.post(_, url, body)
    t.urls[#t.urls + 1] = url
    local status, r = answer(url, core.decode(body), #t.urls)
    return { status = status, body = core.encode(r), seconds = 0, http_version = 1.1 }
  end
  function t.multi() -- call_many: every call completes at the next perform
    local m, queue = {}, {}
    function m.add(_, tag, url, body) queue[#queue + 1] = { tag, url, body } end
    function m.pending() return #queue end
    function m.perform()
      local done = {}
      for i, q in ipairs(queue) do
        done[i] = t:post(q[2], q[3])
        done[i].tag = q[1]
      end
      queue = {}
      return done
    end
    function m.close() end
    return m
  end
  return t
end

local function client(answer, extra)
  local s = { key_id = 1, key = "guesses-spec-key", project = 1, base_url = "https://fake.invalid/",
              strict = false, rate = false, retries = { retries = 2, random = function() return 0 end } }
  for k, v in pairs(extra or {}) do s[k] = v end
  local t = fake(answer)
  return client_mod.new(config.resolve(s), t), t
end

local function merge_reply(status, vr, id)
  return { Success = true, Records = { { IdRecord = id or 42, Status = status, ValidationResult = vr,
                                         Message = vr ~= "OK" and "Field 'f_EMail' is bad" or nil } } }
end

describe("Merge statuses", function()
  for _, st in ipairs { "Inserted", "Merged", "Unchanged", "Modified" } do
    it("reads an unknown status " .. st .. " with ValidationResult OK as accepted", function()
      local c = client(function() return 200, merge_reply(st, "OK") end)
      local o = assert(c.contacts:merge { EMail = "ann@example.com" })
      assert.equal("accepted", o.outcome)
      assert.equal(st, o.status)
      assert.equal(42, o.id)
      local sum = assert(c.contacts:merge_many { { EMail = "a@example.com" } })
      assert.equal(1, sum.accepted)
      assert.equal(0, sum.rejected)
    end)
  end

  it("still rejects what ValidationResult refuses, or an error status", function()
    for _, case in ipairs { { "Updated", "InvalidType" }, { "Error", "OK" }, { "Whatever", "Nope" } } do
      local c = client(function() return 200, merge_reply(case[1], case[2]) end)
      local o, err = c.contacts:merge { EMail = "ann@example.com" }
      assert.is_nil(o)
      assert.equal("rejected", err.kind, case[1] .. "/" .. case[2])
      local sum = assert(c.contacts:merge_many { { EMail = "a@example.com" } })
      assert.equal("rejected", sum.records[1].outcome)
    end
  end)
end)

describe("the key field", function()
  local function project(fields)
    return function(url)
      if url:find("projects.ashx?method=Get", 1, true) then
        return 200, { Success = true, ProjectInfo = { ProjectFields = fields, OptinFields = {} } }
      end
      return 200, merge_reply("Updated", "OK")
    end
  end

  it("is EMail when Projects.Get marks no isKey (no public reply shows one)", function()
    local c, t = client(project { { Code = "EMail", DataType = "Text" }, { Code = "Name", DataType = "Text" } },
      { strict = true })
    assert(c.contacts:merge { EMail = "ann@example.com", Name = "Ann" })
    assert.equal(2, #t.urls)
  end)

  it("is a clear error, before anything is sent, for a project without EMail and no key named", function()
    local c, t = client(project { { Code = "Courriel", DataType = "Text" } }, { strict = true })
    local ok, err = pcall(c.contacts.merge, c.contacts, { Courriel = "ann@example.com" })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("key_field", 1, true), tostring(err))
    assert.equal(1, #t.urls) -- Projects.Get only: no Merge went out
    -- named through the setting, it works
    c, t = client(project { { Code = "Courriel", DataType = "Text" } }, { strict = true, key_field = "Courriel" })
    assert(c.contacts:merge { Courriel = "ann@example.com" })
    assert.equal(2, #t.urls)
  end)
end)

describe("the call limit as an authentication error", function()
  for _, status in ipairs { 200, 401, 403, 429 } do
    it("is rate_limited and retried in HTTP " .. status, function()
      local c, t = client(function(_, _, n)
        if n == 1 then
          return status, { Success = false, ErrorCode = "InvalidAuthKey",
                           ErrorMessage = "Authentication failed: the number of calls allowed has been exceeded." }
        end
        return 200, { Success = true, Records = {} }
      end)
      local r = assert(c:call("contacts", "Get", { Clause = {} }))
      assert.is_true(r.Success)
      assert.equal(2, #t.urls)
      assert.is_true(t.slept >= 1, "waited " .. tostring(t.slept) .. " s before the retry")
    end)
  end

  it("recognises the French message, and the patterns a user adds", function()
    local msg = "Échec de l'authentification : le nombre d'appels permis a été dépassé."
    local c = client(function() return 200, { Success = false, ErrorMessage = msg } end,
      { retries = 0 })
    local _, err = c:call("contacts", "Get", {})
    assert.equal("rate_limited", err.kind)
    c = client(function() return 200, { Success = false, ErrorMessage = "Quota épuisé" } end,
      { retries = 0, limit_messages = { "quota .+puis" } })
    _, err = c:call("contacts", "Get", {})
    assert.equal("rate_limited", err.kind)
  end)

  it("leaves other authentication errors fatal", function()
    local c, t = client(function()
      return 401, { Success = false, ErrorCode = "InvalidAuthKey", ErrorMessage = "Invalid key" }
    end)
    local _, err = c:call("contacts", "Get", {})
    assert.equal("auth", err.kind)
    assert.equal(1, #t.urls)
  end)
end)

describe("corrections without editing the library", function()
  it("sends segments.List to the corrected service and method, resources included", function()
    local c, t = client(function() return 200, { Success = true, Filters = { { idFilter = 3 } } } end,
      { methods = { ["segments.List"] = { service = "Filters", method = "GetList", result = "Filters" } } })
    local list = assert(c.segments:list())
    assert.equal(3, list[1].idFilter)
    assert.equal("https://fake.invalid/Filters.ashx?method=GetList", t.urls[1])
  end)

  it("reads the same from a methods_file (JSON)", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write('{ "segments.List": { "service": "Filters", "method": "GetList", "result": "Filters" } }')
    f:close()
    local c, t = client(function() return 200, { Success = true, Filters = {} } end, { methods_file = path })
    assert(c.segments:list())
    assert.equal("https://fake.invalid/Filters.ashx?method=GetList", t.urls[1])
    os.remove(path)
  end)

  -- rev2: io.open on a FIFO blocked di.new() forever, and /dev/zero was
  -- read until memory ran out.  Each case in a child bounded by timeout(1).
  it("reads only a regular file of 1 MiB at most, with a clear message otherwise", function()
    local sbx = require "support.sandbox"
    local LUA = require("support.runtime").lua
    local dir = (sbx.sh("mktemp -d"):gsub("%s+$", ""))
    local _, made = sbx.sh("mkfifo " .. dir .. "/fifo && head -c 2000000 /dev/zero | tr '\\0' ' ' > " .. dir .. "/big")
    assert.is_true(made)
    local cases = {
      { dir .. "/fifo", "a FIFO, not a regular file" },
      { "/dev/zero", "a device, not a regular file" },
      { dir .. "/big", "larger than 1048576 bytes" },
      { dir, "Is a directory" },
      { dir .. "/none", "No such file or directory" },
    }
    for _, c in ipairs(cases) do
      local script = dir .. "/t.lua"
      local f = assert(io.open(script, "w"))
      f:write(string.format([[
local ok, err = pcall(require("dialoginsight").new, { env = false, key_id = 1, key = "k", project = 1,
  base_url = "https://fake.invalid/", methods_file = %q })
print(ok, err)
]], c[1]))
      f:close()
      local out, ok = sbx.sh("timeout 5 " .. LUA .. " " .. script .. " 2>&1")
      assert.is_true(ok, c[1] .. ": di.new did not return within 5 s: " .. out)
      assert.truthy(out:find("false\tdialoginsight: setting 'methods_file' names a file that cannot be read ("
        .. c[2], 1, true), c[1] .. ": " .. out)
      assert.falsy(out:find(dir, 1, true), "the path is a setting's value: " .. out)
    end
    sbx.sh("rm -rf " .. dir)
  end)

  it("makes an overridden paging contract and idempotency count", function()
    local c, t = client(function(_, req)
      assert.is_nil(req.MaxRows)
      assert.equal(50, req.Top)
      -- one contact, answered when the clause matches it
      local one = { idContact = 1, f_City = "X" }
      return 200, { Success = true, Records = require("support.fake_pages").test(req.Clause, one) and { one } or {} }
    end, { methods = { ["contacts.Get"] = { paging = { max = "Top", start = "Skip", records = "Records", size = 50 } } } })
    local list = assert(c.contacts:get { City = "X" })
    assert.equal(1, #list)
    assert.is_true(#t.urls <= 2)
  end)

  it("refuses unknown entries and members, naming them", function()
    for _, bad in ipairs {
      { ["segments.Lst"] = { service = "X" } },
      { ["segments.List"] = { servce = "X" } },
      { ["segments.List"] = { scope = "everything" } },
      { ["segments.List"] = { idempotent = "yes" } },
      -- whether a method writes is the library's fact, not an override's
      { ["contacts.Delete"] = { writes = false } },
    } do
      local ok, err = pcall(client, function() end, { methods = bad })
      assert.is_false(ok)
      assert.truthy(tostring(err):find("setting 'methods'", 1, true), tostring(err))
    end
  end)
end)
