-- `dialoginsight limits` (issue 25): the shared limit's state, read without a
-- call (the sandbox's request log stays as it was) and without taking a slot;
-- --json, --watch --count, Ctrl-C, a penalty after a 429 of the sandbox, and
-- Redis's fallback, its URL's password never shown.
local cjson = require "cjson"
local di = require "dialoginsight"
local core = require "dialoginsight.core"
local sbx = require "support.sandbox"
local H = require "support.host"
local run, spawn, q = H.run, H.spawn, H.q

local function tmpdir() return (sbx.sh("mktemp -d"):gsub("%s+$", "")) end

describe("dialoginsight limits", function()
  local dir, env

  before_each(function()
    sbx.reset()
    dir = tmpdir()
    env = "DI_RATE=10 DI_BURST=10 DI_LIMITER_DIR=" .. q(dir) .. " "
  end)
  after_each(function() pcall(sbx.clear_faults) end)

  -- runs limits and checks that no call went out and the key never showed
  local function limits(args, extra)
    local before = sbx.mark()
    local r = run("limits " .. (args or ""), { env = env .. (extra or "") })
    assert.equal(before, sbx.mark(), "limits made an API call")
    local key = sbx.env("DI_KEY")
    assert.is_nil(r.out:find(key, 1, true), "the key was printed")
    assert.is_nil(r.err:find(key, 1, true), "the key was printed")
    return r
  end

  it("prints every item, one per line, and takes no slot", function()
    local r = limits()
    assert.equal(0, r.code, r.err)
    for _, name in ipairs { "backend", "file", "rate", "burst", "priority", "batch_share", "reserve",
                            "available", "available_batch", "wait", "penalty", "fallback_transitions" } do
      assert.truthy(r.out:find("\n" .. name .. " ", 1, true) or r.out:find("^" .. name .. " "), name .. ":\n" .. r.out)
    end
    assert.matches("backend%s+local\n", r.out)
    assert.matches("file%s+" .. dir:gsub("%p", "%%%0") .. "/dialoginsight%-", r.out)
    assert.matches("rate%s+10 calls/s\n", r.out)
    assert.matches("reserve%s+2 interactive calls", r.out)
    assert.matches("available%s+10 calls now", r.out)
    assert.matches("penalty%s+none\n", r.out)
    -- reading twice finds the same: nothing was taken
    assert.matches("available%s+10 calls now", limits().out)
  end)

  it("--json is one object; --watch --count 2 prints twice; sync's priority is batch", function()
    local r = limits("--json")
    assert.equal(0, r.code, r.err)
    local st = cjson.decode(r.out)
    assert.equal("local", st.backend)
    assert.equal(10, st.rate)
    assert.equal(0.8, st.batch_share)
    assert.equal(2, st.reserve)
    assert.equal(10, st.available)
    assert.equal(0, st.wait)
    assert.equal(0, st.penalty)
    assert.equal(cjson.null, st.penalty_until)
    assert.equal("interactive", st.priority)
    r = limits("--watch 0.1 --count 2")
    assert.equal(0, r.code, r.err)
    local n = 0
    for line in r.out:gmatch("[^\n]+") do
      n = n + 1
      assert.matches("^%d%d:%d%d:%d%d  local  available 10  batch 6  wait 0%.000 s  penalty none$", line)
    end
    assert.equal(2, n)
    r = limits("--watch --json --count 2")
    n = 0
    for line in r.out:gmatch("[^\n]+") do
      n = n + 1
      assert.equal("local", cjson.decode(line).backend)
    end
    assert.equal(2, n)
    assert.equal(64, limits("--count 2").code)
    assert.equal(64, limits("--watch 0").code)
    assert.equal(64, limits("extra").code)
  end)

  it("--watch runs until Ctrl-C, exit 130", function()
    local h = spawn("limits --watch 0.1", "limits-watch", env)
    H.wait_for(h.base .. ".out", "available.*\n.*available", 10)
    os.execute("kill -INT " .. h.pid)
    local code, out = h.wait(10)
    assert.equal(130, code)
    assert.truthy(select(2, out:gsub("\n", "")) >= 2, out)
  end)

  it("shows the pause after a 429 of the sandbox: penalty and until", function()
    local c = di.new(sbx.settings { limiter_dir = dir, rate = 10, burst = 10 })
    sbx.faults { { type = "limit", retry_after = 5, next = 1, method = "projects.list" } }
    local _, err = c:call("projects", "List", {}, { retries = 0 })
    assert.equal("rate_limited", err.kind)
    local t = core.wall()
    local st = cjson.decode(limits("--json").out)
    assert.is_true(st.penalty > 4 and st.penalty <= 5, "penalty " .. st.penalty)
    assert.is_true(math.abs(st.penalty_until - (t + st.penalty)) < 1, "until " .. st.penalty_until)
    assert.equal(0, st.available)
    assert.is_true(st.wait > 4, "wait " .. st.wait)
    local r = limits()
    assert.matches("penalty%s+4%.%d+ s left, until %d+%-%d+%-%d+T%d+:%d+:%d+Z\n", r.out)
  end)

  it("sync and export run as batch, unless the configuration says otherwise", function()
    -- inside the host (cli/ needs it): the command tables and the client each would build
    local script = [[
      local settings = require "dialoginsight.cli.settings"
      local c = assert(settings.client({ config = os.getenv("CONF") }, "batch"))
      print(require("dialoginsight.cli.sync").priority, require("dialoginsight.cli.export").priority,
        tostring(require("dialoginsight.cli.limits").priority), c.settings.priority)
    ]]
    local path = os.tmpname()
    H.spit(path, "# nothing\n")
    sbx.sh("chmod 600 " .. q(path))
    local r = run("run -", { env = env .. "CONF=" .. q(path) .. " ", stdin = script })
    assert.equal(0, r.code, r.err)
    assert.equal("batch\tbatch\tnil\tbatch\n", r.out)
    -- a priority the user set wins: the config file, DI_PRIORITY
    H.spit(path, "priority = interactive\n")
    r = run("run -", { env = env .. "CONF=" .. q(path) .. " ", stdin = script })
    assert.equal("batch\tbatch\tnil\tinteractive\n", r.out)
    H.spit(path, "# nothing\n")
    r = run("run -", { env = env .. "DI_PRIORITY=interactive CONF=" .. q(path) .. " ", stdin = script })
    assert.equal("batch\tbatch\tnil\tinteractive\n", r.out)
    -- a bad one is a configuration error naming the setting
    r = run("sync contacts x.csv --dry-run", { env = env .. "DI_PRIORITY=urgent " })
    assert.equal(1, r.code)
    assert.matches("setting 'priority'", r.err)
  end)

  it("while Redis is away: the fallback's state, the URL's password never shown", function()
    local port = tonumber(sbx.sh(H.ROOT .. "/scripts/free-port"):match("%d+"))
    local pw = "limits-spec-redis-password"
    local r = limits("--json", "DI_LIMITER_URL=" .. q("redis://:" .. pw .. "@127.0.0.1:" .. port .. "/0") .. " ")
    assert.equal(0, r.code, r.err)
    assert.is_nil((r.out .. r.err):find(pw, 1, true), "the password was printed")
    local st = cjson.decode(r.out)
    assert.equal("fallback", st.backend)
    assert.matches("^dialoginsight:gcra:", st.key)
    assert.matches("unreachable", st.why)
    r = limits("", "DI_LIMITER_URL=" .. q("redis://:" .. pw .. "@127.0.0.1:" .. port .. "/0") .. " ")
    assert.matches("backend%s+fallback\n", r.out)
    assert.is_nil((r.out .. r.err):find(pw, 1, true), "the password was printed")
  end)
end)
