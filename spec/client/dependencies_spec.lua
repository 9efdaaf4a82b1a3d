-- What a dependency answers is checked before it is trusted (issue 21,
-- classes 7 to 9, and the Dependencies property): a Redis that lies to the
-- shared limiter, or drips, and an HTTP server that answers too much.
-- Named cases against spec/support/fake_server.lua (a Redis or an HTTP
-- server whose every byte a spec plans), and the real paths: a real Redis
-- stopped mid-run (scripts/redis), the sandbox's drip and large faults.
local di = require "dialoginsight"
local core = require "dialoginsight.core"
local sbx = require "support.sandbox"
local raised = require "support.raised"
local fake = require "support.fake"
local redis = require "dialoginsight.limiter.redis"
local log = require "dialoginsight.log"

local function tmpdir() return (sbx.sh("mktemp -d"):gsub("%s+$", "")) end

-- Collects the limiter's warnings (limiter/init.lua sends them through
-- log.warn) while fn runs.
local function warnings(fn)
  local got, orig = {}, log.warn
  log.warn = function(msg) got[#got + 1] = msg end
  local ok, err = pcall(fn)
  log.warn = orig
  if not ok then error(err, 0) end
  return got
end

local function int(n) return ":" .. n .. "\r\n" end
local function pair(a, b) return "*2\r\n" .. a .. b end

describe("the shared limiter's Redis answers (issue 21, classes 7 and 8)", function()
  local f
  setup(function() f = fake.start("redis") end)
  teardown(function() if f then f.stop() end end)

  -- A client of the sandbox sharing its limit through the fake Redis.
  local function client(extra)
    local s = { limiter_url = f.url, limiter_dir = tmpdir(), rate = 50, burst = 5, retries = 0 }
    for k, v in pairs(extra or {}) do s[k] = v end
    return di.new(sbx.settings(s))
  end

  -- Five calls: each must return (no raise), go through (the fallback lets
  -- five through at 50/s, burst 5), and take little time; every wait the
  -- limiter answered is a number in [0, its bound].
  local function five_calls(c, most)
    local lim = c.engine.limiter
    local bound = 30 + 1 + 1 / (50 * 0.8) -- max_retry_after + 1 s + a batch slot (the lead covers it)
    for i = 1, 5 do
      local w = lim:acquire()
      assert.is_true(type(w) == "number" and w >= 0 and w <= bound, "acquire answered " .. tostring(w))
      local t0 = core.now()
      local ok, r, err = pcall(c.call, c, "projects", "List", {})
      local took = core.now() - t0
      assert.is_true(ok, "call " .. i .. " raised: " .. tostring(r))
      assert.is_truthy(r, "call " .. i .. " failed: " .. tostring(err))
      assert.is_true(took < most, string.format("call %d took %.3f s", i, took))
    end
  end

  for _, case in ipairs {
    -- the issue's three
    { "a nested list (a wrong type: raised in every call)", pair("*2\r\n" .. int(0) .. int(0), int(0)) },
    { "a negative wait (looped: 346,859 EVALSHA in 15 s)", pair(int(-5), int(0)) },
    { "an hour's wait (slept an hour)", pair(int(3600000000), int(0)) },
    -- and their class (a string, a status, nil, an integer alone, a fraction
    -- and an error reply fell back before too: guards)
    { "a string", "$5\r\nhello\r\n" },
    { "a status", "+OK\r\n" }, { "nil", "$-1\r\n" }, { "an integer alone", int(0) },
    { "a list of three", "*3\r\n" .. int(0) .. int(0) .. int(0) }, { "a list of one", "*1\r\n" .. int(0) },
    { "a list with a nil", pair("$-1\r\n", int(0)) }, { "a number as a string", pair("$3\r\n100\r\n", int(0)) },
    { "the largest integer", pair(int("9223372036854775807"), int(0)) },
    { "a fraction", pair(":1.5\r\n", int(0)) }, { "a reset of 2", pair(int(0), int(2)) },
    { "an error reply", "-ERR something broke\r\n" },
  } do
    it("falls back to the local limit when EVALSHA answers " .. case[1], function()
      f.plan { on = "EVALSHA", bytes = case[2] }
      local c = client { deadline = 2 }
      local said = warnings(function() five_calls(c, 0.5) end)
      local s = f.stats()
      assert.is_true(s.evalsha <= 2 * 6, s.evalsha .. " EVALSHA for 6 decisions")
      assert.equal(1, #said, table.concat(said, "\n"))
      assert.truthy(said[1]:find("limiting this host alone", 1, true), said[1])
      c:close()
    end)
  end

  for _, case in ipairs {
    { "39 hex digits", "$39\r\n" .. string.rep("a", 39) .. "\r\n" },
    { "40 digits that are not hex", "$40\r\n" .. string.rep("z", 40) .. "\r\n" },
    { "a list", pair(int(0), int(0)) }, { "an integer", int(1) },
  } do
    it("falls back when SCRIPT LOAD answers " .. case[1] .. " for a sha", function()
      f.plan { on = "SCRIPT", bytes = case[2] }
      local c = client { deadline = 2 }
      local said = warnings(function() five_calls(c, 0.5) end)
      local s = f.stats()
      assert.equal(0, s.evalsha, "a bad sha was used")
      assert.equal(1, #said, table.concat(said, "\n"))
      c:close()
    end)
  end

  it("keeps a warning about a long or binary error reply short and free of its bytes", function()
    f.plan { on = "EVALSHA", bytes = "-ERR " .. string.rep("\27[31mx\n", 3000) .. "\r\n" }
    local c = client()
    local said = warnings(function() five_calls(c, 0.5) end)
    assert.equal(1, #said)
    assert.is_true(#said[1] < 300, #said[1] .. " bytes")
    assert.is_nil(said[1]:find("\27", 1, true))
    c:close()
  end)

  -- (slack: 0.1 s over the budget, for a busy shared machine; paced 30 ms
  -- a byte, a per-read timeout would take 0.4 s)
  it("a reply dripped a byte every 30 ms holds a decision 50 ms, not 30 ms a byte", function()
    f.plan { on = "EVALSHA", bytes = pair(int(0), int(0)) .. string.rep(" ", 1000), drip = 30 }
    local c = client { deadline = 1 }
    local lim = c.engine.limiter
    local said = warnings(function()
      local t0 = core.now()
      local w = lim:acquire()
      local took = core.now() - t0
      assert.equal(0, w)
      assert.is_true(took < redis.TIMEOUT + 0.1, string.format("the decision took %.3f s", took))
      five_calls(c, 0.3)
    end)
    assert.truthy((said[1] or ""):find("Redis failed", 1, true), said[1])
    c:close()
  end)

  it("the whole SCRIPT LOAD dripped: the connection is given up within its budget", function()
    f.plan { on = "SCRIPT", bytes = "$40\r\n" .. string.rep("a", 40) .. "\r\n", drip = 8 }
    local c = client { deadline = 1 }
    local t0 = core.now()
    warnings(function() assert.equal(0, c.engine.limiter:acquire()) end)
    assert.is_true(core.now() - t0 < redis.TIMEOUT + 0.1, string.format("%.3f s", core.now() - t0))
    c:close()
  end)

  it("never waits on Redis past the call's deadline", function()
    -- a deadline that leaves 20 ms when the limiter is asked: a silent
    -- Redis may take those, not its budget (made 0.5 s here, to tell them
    -- apart on a busy machine)
    local budget = redis.TIMEOUT
    redis.TIMEOUT = 0.5
    finally(function() redis.TIMEOUT = budget end)
    f.plan { on = "EVALSHA", silence = true }
    local c = client()
    local lim = c.engine.limiter
    warnings(function()
      local t0 = core.now()
      lim:acquire(0.02)
      local took = core.now() - t0
      assert.is_true(took < 0.02 + 0.1, string.format("%.3f s for a budget of 0.02", took))
    end)
    c:close()
  end)

  it("a deadline that cuts an exchange short drops the connection quietly, no fallback", function()
    f.plan {}
    local c = client()
    local lim = c.engine.limiter
    local said = warnings(function()
      assert.equal(0, lim:acquire(1)) -- connected
      f.plan { on = "EVALSHA", bytes = pair(int(0), int(0)), drip = 5 }
      lim:acquire(0.01) -- cut: the connection goes, quietly
      f.plan {}
      assert.equal(0, lim:acquire(1))
    end)
    assert.equal(0, #said, table.concat(said, "\n"))
    assert.is_true(f.stats().connections >= 1, "it connected again")
    c:close()
  end)

  it("an honest Redis behind it is used again after RETRY_INTERVAL", function()
    local interval = redis.RETRY_INTERVAL
    redis.RETRY_INTERVAL = 0.3
    finally(function() redis.RETRY_INTERVAL = interval end)
    f.plan { on = "EVALSHA", bytes = pair(int(-5), int(0)), count = 1 }
    local c = client { rate = 1000, burst = 100 }
    local lim = c.engine.limiter
    local said = warnings(function()
      lim:acquire()
      core.sleep(0.35)
      for _ = 1, 3 do assert.equal(0, lim:acquire()) end
    end)
    assert.truthy(said[#said]:find("Redis is back", 1, true), table.concat(said, "\n"))
    assert.is_true(f.stats().evalsha >= 4)
    c:close()
  end)
end)

describe("the shared limiter against a real Redis that stops answering", function()
  local url, pid
  local ROOT = assert(io.popen("pwd")):read("*l")
  local function rds(cmd)
    local out, ok = sbx.sh("DI_REDIS_DIR=" .. ROOT .. "/build/redis-deps-spec " .. ROOT .. "/scripts/redis " .. cmd)
    assert(ok, "scripts/redis " .. cmd .. ": " .. out)
    return out
  end
  setup(function()
    url = rds("start"):match("DI_REDIS_URL=(%S+)")
    pid = io.open(ROOT .. "/build/redis-deps-spec/redis.pid"):read("*l")
  end)
  teardown(function()
    if pid then sbx.sh("kill -CONT " .. pid) end
    pcall(rds, "stop")
  end)

  it("SIGSTOP: each call waits on Redis 50 ms at most, then the local limit holds", function()
    local c = di.new(sbx.settings { limiter_url = url, limiter_dir = tmpdir(), rate = 20, burst = 2,
                                    deadline = 1, retries = 0 })
    assert(c:call("projects", "List", {}))
    sbx.sh("kill -STOP " .. pid)
    finally(function() sbx.sh("kill -CONT " .. pid) end)
    local said = warnings(function()
      local t0 = core.now()
      local lim = c.engine.limiter
      local w = lim:acquire()
      assert.is_true(core.now() - t0 < redis.TIMEOUT + 0.1, string.format("%.3f s", core.now() - t0))
      assert.is_true(w >= 0)
      -- the local limit (20/s, burst 2) holds from then on
      local granted, start = 0, core.now()
      while core.now() - start < 0.5 do
        if lim:acquire() == 0 then granted = granted + 1 end
      end
      assert.is_true(granted <= 2 + 0.5 * 20 + 1, granted .. " slots in 0.5 s at 20/s")
    end)
    assert.truthy((said[1] or ""):find("Redis failed", 1, true), said[1])
  end)
end)

describe("replies over max_reply_bytes (issue 21, class 9)", function()
  local LUA = require("support.runtime").lua
  before_each(function() sbx.clear_faults() end)
  after_each(function() sbx.clear_faults() end)

  -- Runs code in a new process of this runtime; returns its stdout.
  local function run_lua(code)
    local script = os.tmpname()
    local f = assert(io.open(script, "wb")); f:write(code); f:close()
    local p = assert(io.popen(LUA .. " " .. script .. " 2>&1"))
    local out = p:read("*a")
    p:close()
    os.remove(script)
    return out
  end

  for _, length in ipairs { true, false } do
    it("a 1.5 GB reply " .. (length and "with" or "without") .. " its length: too_large, once, "
      .. "memory bounded", function()
      sbx.faults { { type = "large", bytes = 1500000000, length = length } }
      local mark = sbx.mark()
      local out = run_lua([[
        local di = require "dialoginsight"
        local sbx = require "support.sandbox"
        local function kb(what)
          for l in io.lines("/proc/self/status") do
            local n = l:match("^" .. what .. ":%s*(%d+)")
            if n then return tonumber(n) end
          end
        end
        local c = di.new(sbx.settings { retries = 2 })
        assert(c.projects) -- (the client is built: its memory is the baseline)
        collectgarbage()
        local before = kb("VmHWM")
        local t0 = os.time()
        local r, err = c:call("projects", "List", {})
        print(string.format("RESULT %s %s %s %s %d %d", tostring(r), err and err.kind, err and err.attempts,
          tostring(err and err.retryable), kb("VmHWM") - before, os.time() - t0))
        print("MESSAGE " .. tostring(err))
      ]])
      local r, kind, attempts, retryable, grew = out:match("RESULT (%S+) (%S+) (%S+) (%S+) (%d+)")
      assert.truthy(r, out)
      print(string.format("\n  1.5 GB reply (%s Content-Length): peak RSS grew %.1f MB, cap 64 MiB",
        length and "with" or "without", tonumber(grew) / 1024))
      assert.equal("nil", r, out)
      assert.equal("too_large", kind, out)
      assert.equal("1", attempts, out)
      assert.equal("false", retryable, out)
      assert.truthy(out:find("max_reply_bytes (67108864 bytes", 1, true), out)
      assert.is_true(tonumber(grew) * 1024 < (64 + 48) * 1048576 + fake.RSS_ALLOWANCE, "peak RSS grew " .. grew .. " kB")
      assert.equal(1, #sbx.log(mark), "the call was sent again")
    end)
  end

  it("a client's max_reply_bytes: 4 KiB refuses a 10 KB reply and reads a 4,000-byte one", function()
    local c = di.new(sbx.settings { max_reply_bytes = 4096 })
    local pad = '{"Success":true,"Records":[],"Pad":"' .. string.rep("x", 10000) .. '"}'
    sbx.faults { { type = "body", body = pad, next = 1 } }
    local r, err = c:call("projects", "List", {})
    assert.is_nil(r)
    assert.equal("too_large", err.kind)
    assert.equal(4096, err.limit)
    assert.truthy(tostring(err):find("max_reply_bytes (4096 bytes", 1, true), tostring(err))
    sbx.faults { { type = "body", body = pad:sub(1, 3940) .. '"}', next = 1 } }
    assert(c:call("projects", "List", {}))
  end)

  it("refuses a max_reply_bytes that is not a whole number from 1024 to 2^40, naming it", function()
    for _, v in ipairs { 0, -1, 1023, 1.5, "65536", 2 ^ 41, 0 / 0, math.huge, true } do
      local ok, err = pcall(di.new, sbx.settings { max_reply_bytes = v })
      assert.is_false(ok, tostring(v))
      assert.truthy(tostring(err):find("setting 'max_reply_bytes'", 1, true), tostring(err))
    end
    assert.truthy(di.new(sbx.settings { max_reply_bytes = 1024 }))
    assert.equal(64 * 1024 * 1024, di.config.resolve(sbx.settings {}).max_reply_bytes)
  end)
end)

describe("replies of the wrong shape (found by the Dependencies property)", function()
  before_each(function() sbx.clear_faults() end)
  after_each(function() sbx.clear_faults() end)

  it("a page whose Records are not records ends an iteration with the error object, not a Lua error", function()
    local c = di.new(sbx.settings {})
    sbx.faults { { type = "body", method = "contacts.get",
                   body = '{"Success":true,"Records":[1,"a",null,[]],"TotalRecords":4}' } }
    local got = 0
    local iter, state = c.contacts:each(di.where.eq("EMail", "a@example.com"))
    local err = raised.failure(state, function() for _ in iter do got = got + 1 end end)
    assert.equal(0, got)
    assert.is_true(di.is_error(err), tostring(err))
    assert.equal("protocol", err.kind)
    assert.truthy(tostring(err):find("Records[1] is not a record", 1, true), tostring(err))
  end)
end)

-- The Dependencies property (issue 21): no answer of Redis or of an HTTP
-- server, drawn by an adversary (spec/support/fake.lua: wrong types,
-- negative, huge or non-integer numbers, lists of the wrong length, a bad
-- sha, slow drip, oversized, garbage, a close mid-reply, silence), makes a
-- call raise, crash, outlast its deadline or budget plus a stated slack,
-- or grow memory past a stated bound; and after a lying Redis the limit
-- still holds (the local fallback).
describe("Dependencies #property", function()
  local property = require "support.property"
  local errors = require "dialoginsight.errors"
  local SLACK = 0.25 -- seconds a call may pass its bound (a busy, shared machine)
  local BUDGET_SLACK = 0.1 -- seconds a limiter decision may pass its budget
  local fr, fh
  setup(function()
    fr, fh = fake.start("redis"), fake.start("http")
    fh.plan {}
  end)
  teardown(function()
    if fr then fr.stop() end
    if fh then fh.stop() end
  end)

  local function settings(extra)
    local s = { base_url = fh.url, allow_http = true, key_id = 1, key = "fake-key-0123456789",
                project = 1, env = false, strict = false }
    for k, v in pairs(extra) do s[k] = v end
    return s
  end

  it("Redis: every call returns in time, every decision within its budget, the limit holds", function()
    local base_peak = fake.peak_rss()
    property.check("dependencies-redis", { scenarios = 400, seconds = 12 }, function(rng, n)
      local auth, db = rng:chance(0.3), rng:chance(0.2)
      local plan, what = fake.redis_lie(rng, auth, db)
      fr.plan(plan)
      local rate, burst, deadline = rng:pick { 20, 50, 200 }, rng:int(1, 5), rng:pick { 0.3, 0.6, 1 }
      local url = "redis://" .. (auth and ":pw@" or "") .. "127.0.0.1:" .. fr.port .. (db and "/3" or "")
      -- rev2: a sharer of a longer max_retry_after holds the key with a
      -- penalty of its own first (its own key: the hold outlives the scenario)
      local key_id, other = 1, nil
      if rng:chance(0.25) then
        key_id = 100000 + n
        other = di.new(settings { key_id = key_id, limiter_url = url, limiter_dir = tmpdir(), rate = rate,
          retries = { retries = 0, max_retry_after = rng:pick { 60, 120, 3600 } } })
        local pause = rng:pick { 40, 100, 3000 }
        other.engine.limiter:penalize(pause)
        what = what .. "; another sharer (max_retry_after " .. other.settings.retries.max_retry_after
          .. ") paused the key " .. pause .. " s"
      end
      local c = di.new(settings {
        key_id = key_id, limiter_url = url,
        limiter_dir = tmpdir(), rate = rate, burst = burst, deadline = deadline, retries = 0,
      })
      local lim = c.engine.limiter
      -- max_retry_after + 1 s + a batch slot (1 / (rate x batch_share), 0.8 by default: a
      -- caller's lead covers the slot of its batch calls since issue 25; limiter/redis.lua)
      local bound = 30 + 1 + 1 / (rate * 0.8)
      local decisions, worst, bad = 0, 0, nil
      local acquire = lim.acquire
      lim.acquire = function(self, budget)
        local t0 = core.now()
        local ok, w = pcall(acquire, self, budget)
        local took = core.now() - t0
        decisions = decisions + 1
        if not ok then bad = bad or ("acquire raised: " .. tostring(w)); return 0 end
        if type(w) ~= "number" or not (w >= 0 and w <= bound) then
          bad = bad or ("acquire answered " .. tostring(w))
        end
        local most = math.min(redis.TIMEOUT, budget or math.huge) + BUDGET_SLACK
        if took > most then bad = bad or string.format("a decision took %.3f s (budget %.3f)", took, most - BUDGET_SLACK) end
        worst = math.max(worst, took)
        return w
      end
      -- a decision is followed by an attempt or a sleep: never a spin
      local sleeps, t = 0, c.transport
      local sleep = t.sleep
      t.sleep = function(self, secs)
        if secs > 0 then sleeps = sleeps + 1 end
        return sleep(self, secs)
      end
      local sent0 = fh.stats().commands
      local ok, why = true, nil
      local ncalls = rng:int(3, 8)
      warnings(function()
        for i = 1, ncalls do
          local t0 = core.now()
          local fine, r, err = pcall(c.call, c, "projects", "List", {})
          local took = core.now() - t0
          if not fine then ok, why = false, "call " .. i .. " raised: " .. tostring(r); return end
          if not r and not errors.is_error(err) then ok, why = false, "call " .. i .. " answered nil, " .. tostring(err); return end
          if took > deadline + SLACK then
            ok, why = false, string.format("call %d took %.3f s (deadline %g)", i, took, deadline); return
          end
          if bad then ok, why = false, bad; return end
        end
        local attempts = fh.stats().commands - sent0
        if decisions > attempts + sleeps + ncalls then
          ok, why = false, string.format("%d decisions for %d attempts and %d sleeps: a spin",
            decisions, attempts, sleeps)
          return
        end
        -- the limit still holds: 0.1 s of asking as fast as possible
        local granted, t0 = 0, core.now()
        while core.now() - t0 < 0.1 do
          if lim:acquire() == 0 then granted = granted + 1 end
          if bad then break end
        end
        local most = 2 * burst + rate * (core.now() - t0) + 2
        if bad then ok, why = false, bad
        elseif granted > most then
          ok, why = false, string.format("%d slots in 0.1 s at %g/s, burst %d", granted, rate, burst)
        end
      end)
      c:close()
      if other then other:close() end
      if not ok then return false, what .. ": " .. why end
      local s = fr.stats()
      if s.evalsha > 3 * decisions + 3 then
        return false, string.format("%s: %d EVALSHA for %d decisions", what, s.evalsha, decisions)
      end
      local grew = fake.peak_rss() - base_peak
      if grew > 32 * 1048576 + fake.RSS_ALLOWANCE then return false, what .. ": peak RSS grew " .. grew .. " bytes" end
      return true
    end)
  end)

  it("HTTP: every call returns a result or nil, err, in time, memory bounded", function()
    local base_peak = fake.peak_rss()
    local W = di.where
    property.check("dependencies-http", { scenarios = 400, seconds = 12 }, function(rng)
      local cap = rng:pick { 4096, 65536 }
      local plan, what = fake.http_lie(rng, cap)
      fh.plan(plan)
      -- (0.001: the shortest taken; under 0.5 ms libcurl waited forever)
      local timeout, retries = rng:pick { 0.001, 0.2, 0.4, 0.4 }, rng:int(0, 2)
      local deadline = rng:chance(0.5) and rng:pick { 0.3, 0.8 } or nil
      local c = di.new(settings {
        rate = false, timeout = timeout, deadline = deadline, max_reply_bytes = cap,
        retries = { retries = retries, base = 0.01, cap = 0.02, max_retry_after = 0.05 },
      })
      -- no reply over the cap ever reaches the call engine
      local over
      local function seen(r)
        if type(r.body) == "string" and #r.body > cap then over = over or #r.body end
        return r
      end
      local t = c.transport
      local post, multi = t.post, t.multi
      t.post = function(self, ...) return seen(post(self, ...)) end
      t.multi = function(self)
        local m = multi(self)
        return setmetatable({}, { __index = function(_, k)
          if k == "perform" then
            return function(_, w)
              local rs = m:perform(w)
              for _, r in ipairs(rs) do seen(r) end
              return rs
            end
          end
          return function(_, ...) return m[k](m, ...) end
        end })
      end
      local most = (deadline or ((retries + 1) * timeout + retries * 0.05)) + SLACK
      local ops = {
        { "call", function() return c:call("projects", "List", {}) end },
        { "projects:list", function() return c.projects:list() end },
        { "contacts:get", function() return c.contacts:get({ EMail = "a@example.com" }) end },
        { "contacts:each", function()
          -- a failure is raised as the error object; anything else raised
          -- goes on to the pcall below
          local n = 0
          local iter, state = c.contacts:each(W.eq("EMail", "a@example.com"), { limit = 3 })
          local err = raised.failure(state, function() for _ in iter do n = n + 1 end end)
          if err then return nil, err end
          return n
        end, 3 },
        { "call_many", function()
          local rs = c:call_many({ { "projects", "List", {} }, { "projects", "List", {} } })
          for _, r in ipairs(rs) do if r == nil then return nil, "a hole in call_many's results" end end
          return rs
        end },
      }
      local op = rng:pick(ops)
      local t0 = core.now()
      local fine, r, err = pcall(op[2])
      local took = core.now() - t0
      c:close()
      if not fine then return false, what .. ": " .. op[1] .. " raised: " .. tostring(r) end
      if over then return false, string.format("%s: a reply of %d bytes came through (cap %d)", what, over, cap) end
      if r == nil and not errors.is_error(err) then
        return false, what .. ": " .. op[1] .. " answered nil, " .. tostring(err)
      end
      -- the wait a caller reads is the library's own: finite, within max_retry_after
      local ra = err and err.retry_after
      if ra ~= nil and not (type(ra) == "number" and ra >= 0 and ra <= 0.05 + 1e-9) then
        return false, what .. ": " .. op[1] .. " gave err.retry_after = " .. tostring(ra)
      end
      if took > most * (op[3] or 1) then
        return false, string.format("%s: %s took %.3f s (bound %.3f)", what, op[1], took, most * (op[3] or 1))
      end
      local grew = fake.peak_rss() - base_peak
      if grew > 8 * cap + 48 * 1048576 + fake.RSS_ALLOWANCE then
        return false, what .. ": peak RSS grew " .. grew .. " bytes"
      end
      return true
    end)
  end)
end)
