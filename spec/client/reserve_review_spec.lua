-- A hostile review of the reserve and the limiter's state (issue 25): the
-- Redis script's reserve and leads against a real redis-server, a Redis that
-- answers the status script with garbage, events.fallback at each switch, a
-- corrupt shared file read by status, and a client without a limit.
local di = require "dialoginsight"
local core = require "dialoginsight.core"
local redis = require "dialoginsight.limiter.redis"
local reserve = require "dialoginsight.limiter.reserve"
local shm = require "dialoginsight.limiter.shm"
local sbx = require "support.sandbox"

local ROOT = assert(io.popen("pwd")):read("*l")

local function tmpdir() return (sbx.sh("mktemp -d"):gsub("%s+$", "")) end

local function backend(opts)
  -- the local backend, as the Redis backend's fallback
  local shm_like = assert(shm.open { limiter_dir = tmpdir(), base_url = "https://h/", key_id = 1,
                                     rate = opts.rate, burst = opts.burst, batch_share = opts.share })
  return redis.new {
    url = opts.url, key = opts.key or ("dialoginsight:gcra:review:" .. tostring(math.random(1e9))),
    rate = opts.rate, burst = opts.burst, share = opts.share, fallback = shm_like,
    fallback_rate = opts.rate, max_ahead = opts.max_ahead or 30, now = core.now,
    connect = opts.connect or redis.connect_core, warn = opts.warn or function() end,
    events = opts.events,
  }
end

local function flood(b, p)
  local n = 0
  while b:acquire(nil, p) == 0 do n = n + 1 end
  return n
end

describe("the reserve through a real Redis", function()
  local url
  setup(function()
    local out = sbx.sh("DI_REDIS_DIR=" .. ROOT .. "/build/redis-reserve-review " .. ROOT .. "/scripts/redis start")
    url = assert(redis.parse_url(out:match("DI_REDIS_URL=(%S+)")))
  end)
  teardown(function()
    sbx.sh("DI_REDIS_DIR=" .. ROOT .. "/build/redis-reserve-review " .. ROOT .. "/scripts/redis stop")
  end)

  it("leaves the reserve after a batch flood, as the local limiter does", function()
    -- a decision under a deadline long past: status is bounded by its own TIMEOUT, not by it
    local d = backend { url = url, rate = 10, burst = 10, share = 0.8 }
    d:acquire(0.01)
    core.sleep(0.05)
    assert.equal("redis", assert(d:status()).backend)
    local b = backend { url = url, rate = 10, burst = 10, share = 0.8 }
    local batch = flood(b, "batch")
    local st = assert(b:status())
    assert.equal("redis", st.backend)
    assert.equal(2, reserve.view(st).available)
    assert.equal(2, flood(b, "interactive"))
    assert.equal(6, batch)
    -- share 1: the limiter as before, no reserve
    local plain = backend { url = url, rate = 10, burst = 10, share = 1 }
    assert.equal(10, flood(plain, "batch"))
    assert.equal(0, flood(plain, "interactive"))
  end)

  it("a batch sharer's long slot is honoured by an interactive sharer of a shorter lead", function()
    local key = "dialoginsight:gcra:review:lead"
    local a = backend { url = url, key = key, rate = 1, burst = 1, share = 0.05, max_ahead = 0 }
    local warned = {}
    local b = backend { url = url, key = key, rate = 1, burst = 1, share = 1, max_ahead = 0,
                        warn = function(m) warned[#warned + 1] = m end }
    assert.equal(0, a:acquire(nil, "batch"))
    local w = b:acquire()
    -- (b's own bound caps the wait it is told: it asks again after it, never resets)
    assert.is_true(w > 0.9, "wait " .. w)
    assert.equal(0, #warned, table.concat(warned, "; "))
    local st = assert(b:status())
    assert.is_true(st.ahead > 19, "the state was reset: ahead " .. st.ahead)
  end)
end)

-- A connector to an in-process fake Redis: answers[cmd] is a function(...) -> reply.
local function fake(answers, log)
  return function()
    return {
      command = function(_, _, cmd, ...)
        if log then log[#log + 1] = cmd end
        local f = answers[cmd]
        if not f then return nil, "ERR unknown command", "redis" end
        return f(...)
      end,
      close = function() end,
    }
  end
end

local SHA = string.rep("a", 40)

describe("a Redis that answers the status script with garbage", function()
  local garbage = {
    { "not a list", "OK" },
    { "a short list", { n = 2, "1", "2" } },
    { "a NaN in the clock", { n = 3, "nan", "0", "0" } },
    { "a negative state", { n = 3, "1700000000", "0", "-5" } },
    { "a float state", { n = 3, "1700000000", "0", "1e300" } },
    { "an error inside", { n = 3, false, "0", "0" } },
    { "a number", 42 },
  }
  for _, g in ipairs(garbage) do
    it("reads " .. g[1] .. " as the fallback's state, without raising", function()
      local b = backend { url = { host = "x", port = 1, db = 0 }, rate = 10, burst = 10, share = 0.8,
        connect = fake { SCRIPT = function() return SHA end, EVAL = function() return g[2] end } }
      local st = assert(b:status())
      assert.equal("fallback", st.backend)
      assert.matches("status script", st.why)
      local v = reserve.view(st)
      assert.equal(10, v.available)
    end)
  end

  it("a state of 10^19 microseconds ahead reads as idle, not as a pause of years", function()
    local b = backend { url = { host = "x", port = 1, db = 0 }, rate = 10, burst = 10, share = 0.8,
      connect = fake { SCRIPT = function() return SHA end,
                       EVAL = function() return { n = 3, "1700000000", "0", "99999999999999999999" } end } }
    local st = assert(b:status())
    assert.equal("redis", st.backend)
    local v = reserve.view(st)
    assert.equal(0, v.penalty)
    assert.equal(10, v.available)
  end)
end)

describe("events.fallback", function()
  it("is told once per switch, never the password, and limit_status counts them", function()
    local seen, up = {}, false
    local pw = "review-redis-password"
    local b = backend {
      url = { host = "x", port = 1, db = 0, password = pw }, rate = 10, burst = 10, share = 0.8,
      events = { fallback = function(active, why) seen[#seen + 1] = { active, why } end },
      connect = function(...)
        if not up then return nil, "connection refused" end
        return fake { AUTH = function() return "OK" end, SCRIPT = function() return SHA end,
                      EVALSHA = function() return { n = 2, 0, 0 } end }(...)
      end,
    }
    for _ = 1, 5 do b:acquire() end
    assert.equal(1, #seen)
    assert.is_true(seen[1][1])
    assert.matches("unreachable", seen[1][2])
    up = true
    b.next_try = 0 -- (the retry interval, passed)
    assert.equal(0, b:acquire())
    assert.equal(2, #seen)
    assert.is_false(seen[2][1])
    for _, s in ipairs(seen) do assert.is_nil(s[2]:find(pw, 1, true)) end
    -- Redis refusing the script: a switch again, once
    up = false
    b.c = nil
    b.next_try = 0
    for _ = 1, 3 do b:acquire() end
    assert.equal(3, #seen)
    assert.equal(3, b.transitions)
  end)

  it("reaches limiter.open's events from settings, counted in limit_status", function()
    local seen = {}
    local limiter = require "dialoginsight.limiter"
    local config = require "dialoginsight.config"
    local s = config.resolve(sbx.settings { limiter_dir = tmpdir(), rate = 10, burst = 10,
      limiter_url = "redis://:pw-never-shown@127.0.0.1:1/0" })
    local lim = assert(limiter.open(s, nil, { fallback = function(a, why) seen[#seen + 1] = { a, why } end }))
    lim:acquire()
    assert.equal(1, #seen)
    local c = require("dialoginsight.client").new(s, require("dialoginsight.transport.curl").new(s), lim)
    local st = c:limit_status()
    assert.equal("fallback", st.backend)
    assert.equal(1, st.fallback_transitions)
    assert.is_nil(di.encode(st):find("pw-never-shown", 1, true))
  end)
end)

describe("limit_status, hostile cases", function()
  it("a client without a limit says so", function()
    local c = di.new(sbx.settings { rate = false })
    local st = c:limit_status()
    assert.equal("none", st.backend)
    assert.is_false(st.rate)
  end)

  it("a shared file written years ahead reads as idle (the next call resets it), and status never writes", function()
    local dir = tmpdir()
    local c = di.new(sbx.settings { limiter_dir = dir, rate = 10, burst = 10 })
    local path = c.limiter.lim.path
    local f = assert(io.open(path, "r+b"))
    f:seek("set", 8)
    f:write(string.rep("\255", 7) .. "\127") -- the arrival time: ~292 years
    f:close()
    local st = c:limit_status()
    assert.equal(0, st.penalty)
    assert.equal(10, st.available)
    local before = io.open(path, "rb"):read("*a")
    c:limit_status()
    assert.equal(before, io.open(path, "rb"):read("*a"))
  end)
end)
