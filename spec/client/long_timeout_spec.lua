-- Timeouts are seconds (issue 15, point 13): resty libraries take
-- milliseconds, so a timeout, connect_timeout or deadline over 600 s is
-- probably milliseconds passed by mistake.  The value is kept, and the
-- process warns once on stderr, whichever setting or option it is.  Each
-- case runs in a fresh interpreter (the warning is once per process).
local LUA = require("support.runtime").lua

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs code after `local di = require "dialoginsight"` and a settings
-- function S(t) (no environment, no limiter file, nothing sent); returns
-- the exit status, stdout and stderr.
local function run(code)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. q(dir)))
  local script = dir .. "/t.lua"
  local f = assert(io.open(script, "w"))
  f:write([[
local di = require "dialoginsight"
local function S(t)
  local s = { env = false, key_id = 1, key = "k-0123456789abcdef", project = 2,
              base_url = "https://localhost:9/ofc4/", rate = false }
  for k, v in pairs(t or {}) do s[k] = v end
  return s
end
]] .. code)
  f:close()
  local ok, _, code_ = os.execute(string.format("%s %s > %s/out 2> %s/err", LUA, q(script),
    q(dir), q(dir)))
  if type(ok) == "number" then code_ = ok / 256 end
  local function slurp(p)
    local h = assert(io.open(p, "rb"))
    local s = h:read("*a")
    h:close()
    return s
  end
  local out, err = slurp(dir .. "/out"), slurp(dir .. "/err")
  os.execute("rm -rf " .. q(dir))
  return code_, out, err
end

local function warnings(err)
  local n = 0
  for _ in err:gmatch("dialoginsight: WARNING: [^\n]*seconds") do n = n + 1 end
  return n
end

describe("a timeout over 600 s", function()
  it("warns once per process, names the setting, and keeps the value", function()
    local code, out, err = run([[
local c = di.new(S{ timeout = 5000 })
print(c.settings.timeout)
di.new(S{ timeout = 30000, connect_timeout = 10000, deadline = 9000 })
di.new(S{ timeout = 5000 })
]])
    assert.equal(0, code, err)
    assert.equal("5000\n", out)
    assert.equal(1, warnings(err), err)
    assert.truthy(err:find("setting 'timeout' is 5000 seconds (over 600)", 1, true), err)
    assert.truthy(err:find("not milliseconds", 1, true), err)
    assert.truthy(err:find("if you meant 5000 ms, give 5", 1, true), err)
  end)

  for _, name in ipairs { "connect_timeout", "deadline" } do
    it("warns for the setting " .. name, function()
      local code, _, err = run("di.new(S{ " .. name .. " = 2500 })\n")
      assert.equal(0, code, err)
      assert.equal(1, warnings(err), err)
      assert.truthy(err:find("setting '" .. name .. "' is 2500 seconds", 1, true), err)
    end)
  end

  for _, name in ipairs { "timeout", "deadline" } do
    it("warns for the per-call option " .. name .. ", once for many calls", function()
      local code, _, err = run(([[
local c = di.new(S())
for _ = 1, 3 do
  assert(c:prepare("projects", "List", {}, { %s = 1500 }))
end
assert(c:prepare("contacts", "Get", {}, { timeout = 4000, deadline = 4000 }))
]]):format(name))
      assert.equal(0, code, err)
      assert.equal(1, warnings(err), err)
      assert.truthy(err:find("option '" .. name .. "' is 1500 seconds", 1, true), err)
    end)
  end

  it("warns for a resource's options too (they reach client:call)", function()
    local code, _, err = run([[
local c = di.new(S())
local r, e = c.projects:list{ timeout = 7000, retries = 0 }   -- port 9: refused
assert(r == nil and e.kind == "network", tostring(e))
]])
    assert.equal(0, code, err)
    assert.truthy(err:find("option 'timeout' is 7000 seconds", 1, true), err)
  end)

  it("says nothing at 600 s and below, nor for deadline = false", function()
    local code, _, err = run([[
local c = di.new(S{ timeout = 600, connect_timeout = 600, deadline = 600 })
assert(c:prepare("projects", "List", {}, { timeout = 599.5, deadline = false }))
]])
    assert.equal(0, code, err)
    assert.equal("", err)
  end)
end)
