-- The shared GCRA limiter: its arithmetic, then real OS processes sharing one
-- key against the sandbox.
local di = require "dialoginsight"
local core = require "dialoginsight.core"
local sbx = require "support.sandbox"

local LUA = jit and "luajit" or "lua5.4"

local function tmpdir()
  local out = sbx.sh("mktemp -d")
  return (out:gsub("%s+$", ""))
end

-- Starts n workers at once; returns the sorted call times of all of them.
local function run_workers(n, secs, rate, burst, dir)
  local start = core.now() + 0.8 -- time for the interpreters to load
  local stop = start + secs
  local files, procs = {}, {}
  for i = 1, n do
    files[i] = os.tmpname()
    procs[i] = io.popen(string.format("%s spec/support/limiter_worker.lua %.6f %.6f %s %s %q > %q",
      LUA, start, stop, rate, burst, dir, files[i]))
  end
  local times, per = {}, {}
  for i = 1, n do
    assert(procs[i]:close(), "worker " .. i .. " failed")
    per[i] = 0
    for line in io.lines(files[i]) do
      times[#times + 1] = tonumber(line)
      per[i] = per[i] + 1
    end
    os.remove(files[i])
  end
  table.sort(times)
  return times, per, start, stop
end

describe("limiter (one process)", function()
  it("lets a burst through, then spaces calls by 1/rate", function()
    local lim = assert(core.limiter { path = tmpdir() .. "/l", rate = 10, burst = 3 })
    for _ = 1, 3 do assert.equal(0, lim:acquire()) end
    local wait = lim:acquire()
    assert.is_true(wait > 0.05 and wait <= 0.1, "wait " .. wait)
    assert.is_true(lim:delay() > 0)
    core.sleep(wait)
    assert.equal(0, lim:acquire())
  end)

  it("answers a wait without taking a slot", function()
    local lim = assert(core.limiter { path = tmpdir() .. "/l", rate = 1, burst = 1 })
    assert.equal(0, lim:acquire())
    local w1 = lim:acquire()
    local w2 = lim:acquire()
    assert.is_true(w1 > 0.9)
    assert.is_true(math.abs(w1 - w2) < 0.05, "asking again must not push the wait further")
  end)

  it("shares state between two limiters on the same file", function()
    local path = tmpdir() .. "/l"
    local a = assert(core.limiter { path = path, rate = 1, burst = 1 })
    local b = assert(core.limiter { path = path, rate = 1, burst = 1 })
    assert.equal(0, a:acquire())
    assert.is_true(b:acquire() > 0.9)
  end)

  it("is pushed back by penalize (a 429's Retry-After)", function()
    local path = tmpdir() .. "/l"
    local a = assert(core.limiter { path = path, rate = 100, burst = 10 })
    local b = assert(core.limiter { path = path, rate = 100, burst = 10 })
    a:penalize(2)
    local w = b:acquire()
    assert.is_true(w > 1.9 and w <= 2.0, "wait " .. w)
  end)

  it("refuses a file that is not a limiter, and bad settings", function()
    local path = tmpdir() .. "/junk"
    local f = assert(io.open(path, "wb")); f:write(string.rep("x", 64)); f:close()
    local lim, err = core.limiter { path = path, rate = 1 }
    assert.is_nil(lim)
    assert.truthy(err:find("not a dialoginsight limiter file", 1, true))
    assert.has_error(function() core.limiter { path = tmpdir() .. "/l", rate = 0 } end)
    assert.has_error(function() core.limiter { path = tmpdir() .. "/l", rate = 1, burst = 0.5 } end)
    assert.has_error(function() di.new(sbx.settings { rate = -1 }) end)
  end)

  it("keeps its default directory private", function()
    local dir = assert(core.runtime_dir())
    if not os.getenv("XDG_RUNTIME_DIR") then
      local mode = sbx.sh("stat -c %a " .. dir):gsub("%s+$", "")
      assert.equal("700", mode)
    end
  end)
end)

describe("limiter hooks", function()
  before_each(function() sbx.reset() end)

  -- on_wait once fired on the sequential path only: call_many's scheduler
  -- held calls without telling (issue 12).  Both paths now fire it.
  for _, path in ipairs { "call", "call_many" } do
    it("fires on_wait when the limiter holds a call of " .. path, function()
      local c = di.new(sbx.settings { limiter_dir = tmpdir(), rate = 5, burst = 1 })
      local waits, started = {}, core.now()
      c.on_wait = function(ev) waits[#waits + 1] = ev end
      local calls = {}
      for i = 1, 3 do calls[i] = { "projects", "List", {} } end
      if path == "call" then
        for _ = 1, 3 do assert(c:call("projects", "List", {})) end
      else
        local _, failures = c:call_many(calls, { concurrency = 3 })
        assert.equal(0, failures)
      end
      local elapsed = core.now() - started
      -- 3 calls at 5/s with burst 1: the 2nd and 3rd wait 0.2 s each
      assert.is_true(elapsed >= 0.35, "the limiter held nothing: " .. elapsed .. " s")
      assert.is_true(#waits >= 2, #waits .. " on_wait events")
      for _, ev in ipairs(waits) do
        assert.equal("projects", ev.service)
        assert.equal("List", ev.method)
        assert.is_true(ev.delay > 0 and ev.delay <= 0.25, "delay " .. ev.delay)
      end
    end)
  end
end)

describe("limiter (several processes, one key)", function()
  before_each(function() sbx.reset() end)
  after_each(function() sbx.clear_faults() end)

  it("holds 20 calls/s with burst 1 across three processes for 5 s", function()
    local mark = sbx.mark()
    local times, per = run_workers(3, 5, 20, 1, tmpdir())
    assert.is_true(math.abs(#times - 100) <= 3, #times .. " calls in 5 s")
    assert.equal(#times, #sbx.log(mark), "the sandbox saw every call")
    -- GCRA promises the total, not fairness: each process only has to take part
    for i = 1, 3 do assert.is_true(per[i] > 0, "process " .. i .. " made no call") end
  end)

  it("with burst 10, no 1-second window exceeds rate + burst", function()
    local times = run_workers(3, 3, 20, 10, tmpdir())
    local j = 1
    for i = 1, #times do
      while times[i] - times[j] >= 1.0 do j = j + 1 end
      assert.is_true(i - j + 1 <= 30, (i - j + 1) .. " calls within one second")
    end
    assert.is_true(#times >= 60, "the limit must still let " .. #times .. " >= 60 calls through")
  end)

  it("spreads a 429's Retry-After to the other processes", function()
    local dir = tmpdir()
    sbx.faults { { type = "status", status = 429, retry_after = 2, next = 1 } }
    local c = di.new(sbx.settings { limiter_dir = dir, rate = 50, burst = 5 })
    local _, err = c:call("projects", "List", {}, { retries = 0 })
    assert.equal("rate_limited", err.kind)
    local told = core.now()
    -- another process, same key and dir, never saw the 429
    local times = run_workers(1, 0.3, 50, 5, dir)
    assert.is_true(#times == 0 or times[1] - told >= 1.9,
      "first call of the other process came " .. tostring(times[1] and times[1] - told) .. " s after the 429")
    local later = run_workers(1, 2.5, 50, 5, dir)
    assert.is_true(#later > 0 and later[1] - told >= 1.9,
      "and it resumed after the wait: " .. tostring(later[1] and later[1] - told))
  end)
end)
