-- The reserve for interactive calls (docs/limiter.md): the arithmetic of
-- src/di_limiter.c on a real file and the real monotonic clock, its Lua twin
-- (limiter/reserve.lua) for Redis and status, the settings' checks, and the
-- on_limit hook against the sandbox.
local di = require "dialoginsight"
local core = require "dialoginsight.core"
local reserve = require "dialoginsight.limiter.reserve"
local sbx = require "support.sandbox"

local function tmpdir() return (sbx.sh("mktemp -d"):gsub("%s+$", "")) end

local function lim(opts)
  opts.path = opts.path or tmpdir() .. "/l"
  return assert(core.limiter(opts))
end

-- Calls of priority p that go at once, back to back.
local function flood(l, p)
  local n = 0
  while l:acquire(p) == 0 do n = n + 1 end
  return n
end

-- Calls of priority p that go in secs seconds, asking as fast as the limiter lets them.
local function run(l, p, secs)
  local stop, n = core.now() + secs, 0
  while true do
    local w = l:acquire(p)
    if w == 0 then
      n = n + 1
    elseif core.now() + w >= stop then
      break
    else
      core.sleep(w)
    end
  end
  return n
end

describe("the reserve for interactive calls", function()
  it("holds batch calls alone to batch_share x rate: 50/s, share 0.5, 2 s", function()
    local l = lim { rate = 50, burst = 5, batch_share = 0.5 }
    local first = reserve.view(l:status()).available_batch
    local n = run(l, "batch", 2)
    local i = run(lim { rate = 50, burst = 5, batch_share = 0.5 }, "interactive", 2)
    print(string.format("\n  2 s at 50/s burst 5, share 0.5: batch alone %d calls (%d at once), interactive alone %d",
      n, first, i))
    -- at most the share of the rate over the window, plus what could go at once
    assert.is_true(n <= 0.5 * 50 * 2 + first + 1, n .. " batch calls")
    assert.is_true(n >= 0.5 * 50 * 2 - 2, n .. " batch calls: the share was not given")
    assert.is_true(i >= 50 * 2, i .. " interactive calls")
  end)

  it("leaves `reserve` interactive calls free right after a batch flood (10/s, burst 10, share 0.8)", function()
    local l = lim { rate = 10, burst = 10, batch_share = 0.8 }
    local st = l:status()
    assert.equal(2, st.reserve) -- (1 - 0.8) x 10
    local b = flood(l, "batch")
    local view = reserve.view(l:status())
    assert.equal(2, view.available)
    assert.equal(0, view.available_batch)
    local i = flood(l, "interactive")
    print(string.format("\n  batch flood: %d calls at once, then %d interactive", b, i))
    assert.equal(2, i)
    -- without the reserve (share 1, exactly the limiter before priorities) none is left
    local plain = lim { rate = 10, burst = 10, batch_share = 1 }
    assert.equal(10, flood(plain, "batch"))
    assert.equal(0, flood(plain, "interactive"))
  end)

  it("share 1 is the limiter before priorities: batch and interactive calls alike", function()
    local a = lim { rate = 20, burst = 4, batch_share = 1 }
    local b = lim { rate = 20, burst = 4 } -- (the core's default share is 1)
    assert.equal(0, a:status().reserve)
    assert.equal(flood(b, "interactive"), flood(a, "batch"))
    local wa, wb = a:acquire("batch"), b:acquire()
    assert.is_true(math.abs(wa - wb) < 0.002, wa .. " vs " .. wb)
    local f = reserve.figures(20, 4, 1)
    assert.equal(f.interval, f.batch_interval)
    assert.equal(f.tolerance, f.batch_room)
  end)

  it("a batch sharer's state is not reset by an interactive sharer with a shorter lead", function()
    local path = tmpdir() .. "/shared"
    -- A: batch slots of 20 s (share 0.05 of 1/s); B: its own lead is 2 s
    local a = lim { path = path, rate = 1, burst = 1, batch_share = 0.05, max_penalty = 0 }
    local b = lim { path = path, rate = 1, burst = 1, batch_share = 1, max_penalty = 0 }
    assert.equal(0, a:acquire("batch"))
    local w, event = b:acquire()
    assert.is_nil(event, "the interactive sharer reset the batch sharer's state")
    assert.is_true(w > 19 and w <= 20, "wait " .. w)
    -- a state further ahead than anyone's lead is still reset
    local c = lim { path = tmpdir() .. "/other", rate = 1, burst = 1, batch_share = 1, max_penalty = 0 }
    assert.is_nil(select(2, c:acquire()))
  end)

  it("burst 1: a batch call goes when the state is idle, never starves, and keeps no reserve", function()
    local l = lim { rate = 10, burst = 1, batch_share = 0.8 }
    local st = l:status()
    assert.equal(1, st.reserve)
    assert.equal(0, st.batch_room) -- burst 1 < reserve + 1/share = 2.25
    local n = run(l, "batch", 1)
    print(string.format("\n  burst 1, 10/s, share 0.8: %d batch calls in 1 s", n))
    assert.is_true(n >= 7 and n <= 9, n .. " batch calls in 1 s (8 expected)")
    assert.equal(0, l:acquire("batch") > 0 and 0 or 1)
    -- the documented caveat: right after a batch call, an interactive one waits
    local fresh = lim { rate = 10, burst = 1, batch_share = 0.8 }
    assert.equal(0, fresh:acquire("batch"))
    assert.is_true(fresh:acquire() > 0)
    -- with burst >= reserve + 1/share (3.25 at 10/s, share 0.8, burst 4: reserve 1) it holds
    local ok = lim { rate = 10, burst = 4, batch_share = 0.8 }
    flood(ok, "batch")
    assert.equal(ok:status().reserve, flood(ok, "interactive"))
  end)

  it("status reads without changing the state, and agrees with what acquire then gives", function()
    local l = lim { rate = 5, burst = 6, batch_share = 0.5 }
    l:acquire("batch")
    for _ = 1, 50 do l:status() end
    local v = reserve.view(l:status())
    assert.equal(v.available, flood(l, "interactive"))
    local pen = lim { rate = 5, burst = 6, batch_share = 0.5 }
    pen:penalize(5)
    v = reserve.view(pen:status())
    assert.is_true(v.penalty > 4.9 and v.penalty <= 5, "penalty " .. v.penalty)
    assert.is_true(v.wait > 4.9, "wait " .. v.wait)
    assert.equal(0, v.available)
  end)

  it("computes the same figures in Lua (Redis, status) as in C", function()
    for _, c in ipairs { { 10, 10, 0.8 }, { 10, 1, 0.8 }, { 0.01, 3, 0.3 }, { 1e6, 1e6, 0.01 },
                         { 7, 2.5, 0.999 }, { 3, 100, 1 }, { 0.5, 40, 0.05 } } do
      local f = reserve.figures(c[1], c[2], c[3])
      local s = lim { rate = c[1], burst = c[2], batch_share = c[3] }:status()
      local what = table.concat(c, ", ")
      assert.equal(f.reserve, s.reserve, what)
      for _, k in ipairs { "interval", "tolerance", "batch_interval", "batch_room" } do
        -- (Redis counts whole microseconds: a slot's rounding, times the burst)
        assert.is_true(math.abs(f[k] - s[k] * 1e6) <= 2 + 1e-6 * f[k], what .. ": " .. k .. " " .. f[k] .. " vs " .. s[k] * 1e6)
      end
    end
  end)

  it("refuses bad priority and batch_share values, naming the setting or option", function()
    local function refused(s, name)
      local ok, err = pcall(di.new, sbx.settings(s))
      assert.is_false(ok)
      assert.matches("'" .. name .. "'", tostring(err))
    end
    for _, v in ipairs { "urgent", "", 1, true } do refused({ priority = v }, "priority") end
    for _, v in ipairs { 0, -0.5, 1.5, 0 / 0, math.huge, -math.huge, "0.5", true } do
      refused({ batch_share = v }, "batch_share")
    end
    local c = di.new(sbx.settings { limiter_dir = tmpdir() })
    local ok, err = pcall(c.call, c, "projects", "List", {}, { priority = "high" })
    assert.is_false(ok)
    assert.matches("option 'priority' must be \"interactive\" or \"batch\"", tostring(err))
    assert.has_error(function() core.limiter { path = tmpdir() .. "/x", rate = 1, batch_share = 0 / 0 } end)
    assert.has_error(function() lim { rate = 1 }:acquire("urgent") end)
  end)

  it("takes the call's priority over the client's: the limiter sees what slot() passes", function()
    local seen = {}
    local c = di.new(sbx.settings { limiter_dir = tmpdir(), priority = "batch" })
    local inner = c.limiter
    c.engine.limiter = setmetatable({ acquire = function(_, budget, p)
      seen[#seen + 1] = p
      return inner:acquire(budget, p)
    end }, { __index = inner })
    assert(c:call("projects", "List", {}))
    assert(c:call("projects", "List", {}, { priority = "interactive" }))
    c:call_many({ { "projects", "List", {} } }, { priority = "interactive" })
    assert(c.projects:list { priority = "interactive" })
    assert.same({ "batch", "interactive", "interactive", "interactive" }, seen)
  end)
end)

describe("on_limit", function()
  after_each(function() pcall(sbx.clear_faults) end)

  it("fires hit once for a burst of 429s, and over once after the pause", function()
    sbx.reset()
    local c = di.new(sbx.settings { limiter_dir = tmpdir() })
    local events = {}
    c.on_limit = function(ev) events[#events + 1] = ev end
    sbx.faults { { type = "limit", retry_after = 1, next = 4, method = "projects.list" } }
    local calls = {}
    for i = 1, 4 do calls[i] = { "projects", "List", {} } end
    local t0 = core.wall()
    local results, failures = c:call_many(calls, { concurrency = 4 })
    assert.equal(0, failures, tostring(results[1]))
    assert.equal(2, #events, "events: " .. #events)
    assert.equal("hit", events[1].state)
    assert.equal("projects", events[1].service)
    assert.equal(1, events[1].retry_after)
    assert.is_true(events[1]["until"] >= t0 + 0.9 and events[1]["until"] <= core.wall() + 1)
    assert.equal("over", events[2].state)
    assert.is_true(events[2].waited >= 0.95, "waited " .. events[2].waited)
    -- the limit's state showed the pause while it held (a 429 pushes every sharer)
    sbx.faults { { type = "limit", retry_after = 3, next = 1, method = "projects.list" } }
    c:call("projects", "List", {}, { retries = 0 })
    local st = c:limit_status()
    assert.is_true(st.penalty > 2.5 and st.penalty <= 3, "penalty " .. st.penalty)
    assert.is_true(st.penalty_until > core.wall() + 2.5)
    assert.equal(3, #events)
  end)
end)
