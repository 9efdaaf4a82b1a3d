-- The shared GCRA limiter: its arithmetic, then real OS processes sharing one
-- key against the sandbox.
local di = require "dialoginsight"
local core = require "dialoginsight.core"
local sbx = require "support.sandbox"

local LUA = require("support.runtime").lua

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
    assert.is_true(lim:acquire() > 0) -- held: nothing taken
    core.sleep(wait)
    assert.equal(0, lim:acquire())
  end)

  it("offers what the library calls and nothing else: acquire, penalize, configure, status, close", function()
    local function methods(obj)
      local names, mt = {}, getmetatable(obj)
      local index = type(mt.__index) == "table" and mt.__index or mt
      for k, v in pairs(index) do
        if type(v) == "function" and not k:match("^__") and k ~= "set" then names[#names + 1] = k end
      end
      table.sort(names)
      return table.concat(names, " ")
    end
    local lim = assert(core.limiter { path = tmpdir() .. "/l", rate = 1, burst = 1 })
    assert.equal("acquire close configure penalize status", methods(lim))
    local c = di.new(sbx.settings { limiter_dir = tmpdir() })
    assert.equal("acquire close configure penalize status", methods(c.limiter)) -- adaptive
    assert.equal("acquire close configure penalize status", methods(c.limiter.lim)) -- the file backend
    c:close()
    lim:close()
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

  -- in both forms of the call limit (sandbox/README.md, "Modes for the open
  -- questions"): a 429's Retry-After (2 s here), or the authentication
  -- error, which names no wait (1 s, retry.lua's penalty)
  for _, style in ipairs {
    { "a 429's Retry-After", { limit = "429" }, 2 },
    { "the call limit as an authentication error (HTTP 200)", { limit = "auth", limit_status = 200 }, 1 },
    { "the call limit as an authentication error (HTTP 401)", { limit = "auth", limit_status = 401 }, 1 },
  } do
    local wait = style[3]
    it("spreads " .. style[1] .. " to the other processes", function()
      local dir = tmpdir()
      sbx.control("POST", "config", style[2])
      sbx.faults { { type = "limit", retry_after = 2, next = 1 } }
      local c = di.new(sbx.settings { limiter_dir = dir, rate = 50, burst = 5 })
      local _, err = c:call("projects", "List", {}, { retries = 0 })
      assert.equal("rate_limited", err.kind)
      local told = core.now()
      -- another process, same key and dir, never saw the limit
      local times = run_workers(1, 0.3, 50, 5, dir)
      assert.is_true(#times == 0 or times[1] - told >= wait - 0.1,
        "first call of the other process came " .. tostring(times[1] and times[1] - told) .. " s after the limit")
      local later = run_workers(1, wait + 0.5, 50, 5, dir)
      assert.is_true(#later > 0 and later[1] - told >= wait - 0.1,
        "and it resumed after the wait: " .. tostring(later[1] and later[1] - told))
    end)
  end
end)

-- Issue 13, "nothing freezes": nothing one sharer of a key writes, and
-- nothing done to the shared file, may hold or kill the other sharers.

-- The 64-byte limiter file of src/di_limiter.c (magic, tat_ns, lead_ns, pad),
-- with its TAT `ahead` seconds after now; little-endian, built by hand
-- since LuaJIT has no string.pack.
local function le64(n)
  local b = {}
  for i = 1, 8 do
    b[i] = string.char(n % 256)
    n = math.floor(n / 256)
  end
  return table.concat(b)
end
local function far_ahead_file(path, ahead)
  local f = assert(io.open(path, "wb"))
  f:write("10ARCGID", le64(math.floor((core.now() + ahead) * 1e9)), string.rep("\0", 48))
  f:close()
end

-- Runs a Lua chunk in a new process of this runtime (same LUA_PATH/CPATH),
-- after the shell commands of prefix, with args; returns its stdout, its stderr and its exit status (a signal
-- shows as 128 + its number, SIGBUS: 135; 124: still running after 60 s,
-- i.e. frozen).
local function run_lua_in(prefix, code, ...)
  local script, errf = os.tmpname(), os.tmpname()
  local f = assert(io.open(script, "wb")); f:write(code); f:close()
  local args = {}
  for i, a in ipairs { ... } do args[i] = string.format("%q", tostring(a)) end
  -- stderr reaches its file through cat, outside the prefix (a file size
  -- limit there must not cut it)
  -- (sbx.sh unsets LD_PRELOAD: under check-asan the interpreter needs it back)
  local preload = os.getenv("LD_PRELOAD")
  local lua = preload and string.format("env LD_PRELOAD=%q %s", preload, LUA) or LUA
  local out = sbx.sh(string.format("{ ( %s timeout 60 %s %q %s; echo \"EXIT=$?\" ) 2>&1 1>&3 "
    .. "| cat > %q; } 3>&1", prefix, lua, script, table.concat(args, " "), errf))
  local errtext = io.open(errf):read("*a")
  os.remove(script); os.remove(errf)
  local status = tonumber(out:match("EXIT=(%d+)%s*$"))
  return (out:gsub("EXIT=%d+%s*$", "")), errtext, status
end
local function run_lua(code, ...) return run_lua_in("", code, ...) end

describe("limiter: nothing freezes", function()
  before_each(function() sbx.reset() end)
  after_each(function() sbx.clear_faults() end)

  -- rev2: rate = 1e-9 (DI_RATE=1e-9) wrote the shared state two days ahead:
  -- every default sharer of the file waited 172,799 s; rate = 0.001, 1,999 s
  it("refuses a rate under 0.01 calls/s, naming the setting", function()
    for _, s in ipairs { { rate = 1e-9 }, { rate = 0.001 }, { rate = 0.0099 }, { fallback_rate = 1e-9 },
                         { burst = 1e7 }, { rate = 2e6 } } do
      local ok, err = pcall(di.new, sbx.settings(s))
      assert.is_false(ok, next(s))
      assert.truthy(tostring(err):find("setting '" .. next(s) .. "' must be", 1, true), tostring(err))
    end
    local ok, err = pcall(function()
      return di.new(sbx.settings(di.config.from_env(function(n) return n == "DI_RATE" and "1e-9" or nil end)))
    end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("from 0.01 (one call per 100 s)", 1, true), tostring(err))
    assert(di.new(sbx.settings { rate = 0.01, burst = 1e6 }))
  end)

  it("holds other sharers max_retry_after + a slot + a burst window at most, whatever one sharer's rate", function()
    local bounds = core.limiter_bounds
    assert.equal(100, bounds.max_slot)
    assert.equal(60, bounds.max_window)
    local dir = tmpdir()
    -- the slowest and burstiest a client takes, and a rate only the C core sees
    local slow = di.new(sbx.settings { limiter_dir = dir, rate = 0.01, burst = 1e6 })
    local tiny = assert(core.limiter { path = require("dialoginsight.limiter.shm").path(dir,
      sbx.settings().base_url, sbx.settings().key_id), rate = 1e-9, burst = 10 })
    local web = di.new(sbx.settings { limiter_dir = dir })
    for _ = 1, 200 do slow.limiter:acquire(); tiny:acquire() end
    local held = web.limiter:acquire()
    print(string.format("\n  a default sharer after 400 tries of rate 0.01/burst 1e6 and 1e-9: held %.1f s", held))
    assert.is_true(held <= 30 + 100 + 60 + 1, "the default sharer is held " .. held .. " s")
    -- and a penalty on top still ends within max_retry_after + a slot + a window
    slow.limiter:penalize(30)
    held = web.limiter:acquire()
    assert.is_true(held <= 30 + 100 + 60 + 1, "held " .. held .. " s")
    tiny:close()
  end)

  it("caps a pause at max_penalty (30 s by default), whatever is asked", function()
    local path = tmpdir() .. "/l"
    local a = assert(core.limiter { path = path, rate = 100, burst = 10 })
    a:penalize(100000)
    local w = a:acquire()
    assert.is_true(w > 29 and w <= 30.01, "a Retry-After of 100000 s held the key " .. w .. " s")
    local b = assert(core.limiter { path = tmpdir() .. "/l", rate = 100, burst = 10,
                                    max_penalty = 2 })
    b:penalize(1e300)
    w = b:acquire()
    assert.is_true(w > 1.9 and w <= 2.01, "wait " .. w)
    assert.has_error(function()
      core.limiter { path = tmpdir() .. "/l", rate = 1, max_penalty = 0 / 0 }
    end)
  end)

  it("a real 429 with Retry-After of a day (86400 s) holds the sharers max_retry_after at most", function()
    local dir = tmpdir()
    sbx.faults { { type = "status", status = 429, retry_after = 86400, next = 1 } }
    local c = di.new(sbx.settings { limiter_dir = dir, rate = 50, burst = 5 })
    local _, err = c:call("projects", "List", {}, { retries = 0 })
    assert.equal("rate_limited", err.kind)
    -- (what the library honours; the server's text is kept apart)
    assert.equal(30, err.retry_after)
    assert.equal("86400", err.retry_after_raw)
    local held = c.limiter:acquire()
    assert.is_true(held > 29 and held <= 30, "the key is held " .. held .. " s (30 s at most)")

    -- a client allowing 1.5 s: another process on the key resumes after 1.5 s
    dir = tmpdir()
    sbx.faults { { type = "status", status = 429, retry_after = 86400, next = 1 } }
    c = di.new(sbx.settings { limiter_dir = dir, rate = 50, burst = 5,
                              retries = { retries = 0, max_retry_after = 1.5 } })
    _, err = c:call("projects", "List", {})
    assert.equal("rate_limited", err.kind)
    local told = core.now()
    local times = run_workers(1, 3, 50, 5, dir)
    assert.is_true(#times > 0, "the other process never got to call")
    local first = times[1] - told
    assert.is_true(first >= 1.3 and first < 2.5, "the other process resumed after " .. first .. " s")
  end)

  it("resets an arrival time written far ahead (a stale or foreign file), once", function()
    local path = tmpdir() .. "/l"
    far_ahead_file(path, 100000)
    local lim = assert(core.limiter { path = path, rate = 10, burst = 2 })
    local w, ev = lim:acquire()
    assert.equal(0, w)
    assert.equal("reset", ev)
    w, ev = lim:acquire()
    assert.equal(0, w)
    assert.is_nil(ev)
    -- just beyond what this limiter could have written (0.1 + 0.1 + 30 + 1 s)
    far_ahead_file(path, 40)
    w, ev = lim:acquire()
    assert.equal(0, w)
    assert.equal("reset", ev)
  end)

  it("never resets a long wait that a sharer with a lower rate set", function()
    local path = tmpdir() .. "/l"
    local slow = assert(core.limiter { path = path, rate = 0.01, burst = 1 }) -- 100 s apart
    local fast = assert(core.limiter { path = path, rate = 100, burst = 10 })
    assert.equal(0, slow:acquire())
    local w, ev = fast:acquire()
    assert.is_nil(ev)
    assert.is_true(w > 99 and w <= 100, "wait " .. w)
  end)

  it("a client on a file written far ahead calls at once and warns once", function()
    local dir = tmpdir()
    local s = sbx.settings { limiter_dir = dir }
    far_ahead_file(require("dialoginsight.limiter.shm").path(dir, s.base_url, s.key_id), 100000)
    local out, errtext, status = run_lua([[
      local di = require "dialoginsight"
      local core = require "dialoginsight.core"
      local c = di.new((require "support.sandbox").settings { limiter_dir = arg[1] })
      local t0 = core.now()
      for _ = 1, 3 do assert(c:call("projects", "List", {})) end
      print(string.format("%.3f", core.now() - t0))
    ]], dir)
    assert.equal(0, status, errtext)
    assert.is_true(tonumber(out) < 2, "3 calls took " .. out .. " s")
    local _, warnings = errtext:gsub("WARNING: the shared limiter file", "")
    assert.equal(1, warnings, errtext)
    assert.truthy(errtext:find(dir, 1, true), errtext)
    assert.truthy(errtext:find("reset", 1, true), errtext)
  end)

  it("survives its file truncated while mapped, and keeps one limit", function()
    local dir = tmpdir()
    local out, errtext, status = run_lua([[
      local core = require "dialoginsight.core"
      local path = arg[1] .. "/l"
      local a = assert(core.limiter { path = path, rate = 1, burst = 1 })
      local b = assert(core.limiter { path = path, rate = 1, burst = 1 })
      assert(a:acquire() == 0)
      assert(os.execute("truncate -s 0 " .. path))
      local w, ev = a:acquire()
      print("a", w == 0, ev)
      w, ev = b:acquire()
      print("b", w > 0.9, ev)
      assert(os.execute("truncate -s 0 " .. path))
      b:penalize(1)
      print("held", a:acquire() > 0.9)
    ]], dir)
    assert.equal(0, status, "the process died (status " .. tostring(status) .. "): " .. errtext)
    assert.truthy(out:find("a\ttrue\tregrown", 1, true), out)
    assert.truthy(out:find("b\ttrue\tnil", 1, true), "the two sharers parted: " .. out)
    assert.truthy(out:find("held\ttrue", 1, true), out)
    assert.equal("64", (sbx.sh("stat -c %s " .. dir .. "/l"):gsub("%s+$", "")))
  end)

  it("a file that cannot be extended again: calls go on unlimited, one warning", function()
    local dir = tmpdir()
    local st = sbx.settings { limiter_dir = dir }
    local path = require("dialoginsight.limiter.shm").path(dir, st.base_url, st.key_id)
    assert(di.new(st)):close() -- creates the file
    -- under a file size limit of 0 (SIGXFSZ ignored), extending it fails: EFBIG
    local out, errtext, status = run_lua_in("trap '' XFSZ; ulimit -f 0;", [[
      local core = require "dialoginsight.core"
      local di = require "dialoginsight"
      local lim = assert(core.limiter { path = arg[2], rate = 1, burst = 1 })
      local c = di.new((require "support.sandbox").settings { limiter_dir = arg[1], rate = 1,
                                                                 burst = 1 })
      assert(os.execute("truncate -s 0 " .. arg[2]))
      for _ = 1, 2 do print(lim:acquire()) end
      for _ = 1, 3 do assert(c:call("projects", "List", {})) end -- 1/s, were it limited
      print("calls went on")
    ]], dir, path)
    assert.equal(0, status, errtext)
    local _, n = out:gsub("0%.?0?\tunusable: File too large", "")
    assert.equal(2, n, out)
    assert.truthy(out:find("calls went on", 1, true), out)
    local _, warnings = errtext:gsub("WARNING: the shared limiter file", "")
    assert.equal(1, warnings, errtext)
    assert.truthy(errtext:find("cannot be used (File too large): calls go on without the "
      .. "shared limit", 1, true), errtext)
  end)

  it("a client whose file is truncated between calls goes on, and warns once", function()
    local dir = tmpdir()
    local s = sbx.settings { limiter_dir = dir }
    local path = require("dialoginsight.limiter.shm").path(dir, s.base_url, s.key_id)
    local out, errtext, status = run_lua([[
      local di = require "dialoginsight"
      local c = di.new((require "support.sandbox").settings { limiter_dir = arg[1] })
      for _ = 1, 3 do
        assert(c:call("projects", "List", {}))
        assert(os.execute("truncate -s 0 " .. arg[2]))
      end
      assert(#c:call_many({ { "projects", "List", {} }, { "projects", "List", {} } }) == 2)
      print("calls went on")
    ]], dir, path)
    assert.equal(0, status, "the process died (status " .. tostring(status) .. "): " .. errtext)
    assert.truthy(out:find("calls went on", 1, true))
    local _, warnings = errtext:gsub("WARNING: the shared limiter file", "")
    assert.equal(1, warnings, errtext)
    assert.truthy(errtext:find("shrunk", 1, true), errtext)
  end)
end)

-- Issue 21, class 10: the limit of an API host is the host's, not its
-- spelling's (limiter/host.lua, used by both backends).
describe("limiter: one limit per API host, however its URL spells it", function()
  local host = require "dialoginsight.limiter.host"
  local limiter = require "dialoginsight.limiter"

  it("gives every spelling of a host one identity, and keeps canonical ones as they were", function()
    for _, same in ipairs {
      { "https://localhost/x/", "https://LOCALHOST/x/", "https://localhost:443/x/",
        "https://LocalHost.:443/x/", "https://localhost.:0443/x/", "http://localhost:80/", "https://localhost" },
      { "https://app.dialoginsight.com/webservices/ofc4/", "https://APP.DialogInsight.com.:443/webservices/ofc4/" },
      { "https://localhost:8443/x/", "https://LOCALHOST:08443/x/", "https://localhost.:8443/" },
      { "https://[::1]:8443/x/", "https://[::1]:8443", "http://[::1]:8443/" },
      { "https://[::1]/x/", "https://[::1]:443/x/" },
    } do
      for _, u in ipairs(same) do assert.equal(host.of(same[1]), host.of(u), u) end
    end
    -- a URL already canonical keeps the identity (file, key) it had
    assert.equal("app.dialoginsight.com", host.of("https://app.dialoginsight.com/webservices/ofc4/"))
    assert.equal("localhost:8443", host.of("https://localhost:8443/x/"))
    assert.equal("[::1]:8443", host.of("https://[::1]:8443/x/"))
    assert.equal("/d/dialoginsight-localhost_8443-12.gcra",
      require("dialoginsight.limiter.shm").path("/d", "https://LOCALHOST.:8443/x/", 12))
    assert.equal("dialoginsight:gcra:app.dialoginsight.com:12",
      require("dialoginsight.limiter.redis").key("https://APP.dialoginsight.com:443/w/", 12))
    -- other ports and hosts stay apart
    assert.not_equal(host.of("https://localhost/"), host.of("https://localhost:8443/"))
    assert.not_equal(host.of("https://localhost:80/"), host.of("http://localhost:80/"))
    assert.not_equal(host.of("https://a.example/"), host.of("https://b.example/"))
  end)

  -- rev2: curl (and glibc's resolver) read these IPv4 forms as 127.0.0.1,
  -- and each had a limiter file of its own; [0:0:0:0:0:0:0:1] and [::1] too
  it("gives the numeric spellings of one address one identity, as inet_aton and inet_ntop read them", function()
    for _, same in ipairs {
      { "https://127.0.0.1:8443/", "https://127.1:8443/", "https://2130706433:8443/", "https://0x7f.0.0.1:8443/",
        "https://0177.0.0.1:8443/", "https://0x7F000001:8443/", "https://127.0.1:8443/", "https://127.0.0.1.:8443/" },
      { "https://[::1]/", "https://[0:0:0:0:0:0:0:1]/", "https://[0000::0001]:443/" },
      { "https://[2001:db8::1:0:0:1]/", "https://[2001:DB8:0:0:1:0:0:1]/" },
      { "https://[::ffff:127.0.0.1]/", "https://[::FFFF:7f00:1]/", "https://[0:0:0:0:0:ffff:7f00:0001]/" },
    } do
      for _, u in ipairs(same) do assert.equal(host.of(same[1]), host.of(u), u) end
    end
    assert.equal("127.0.0.1:8443", host.of("https://0x7f.0.0.1:8443/"))
    assert.equal("[::1]", host.of("https://[0:0:0:0:0:0:0:1]/"))
    -- not addresses: names, and forms curl does not read as one
    for _, u in ipairs { "https://256.1.1.1/", "https://1.2.3.4.5/", "https://08.1.1.1/", "https://0x/",
                         "https://4294967296/", "https://1.example/", "https://[1::2::3]/" } do
      assert.equal(u:match("//([^/]+)"):lower(), host.of(u), u)
    end
  end)

  it("holds the numeric spellings of the sandbox's address to one limiter file", function()
    local dir = tmpdir()
    local base = sbx.env("DI_BASE_URL")
    assert.truthy(base:find("//127.0.0.1:", 1, true), base)
    for _, h in ipairs { "127.1", "2130706433", "0x7f.0.0.1", "0177.0.0.1", "127.0.0.1" } do
      local c = di.new(sbx.settings { base_url = (base:gsub("//127%.0%.0%.1:", "//" .. h .. ":")),
        limiter_dir = dir })
      assert(c:call("projects", "List", {})) -- curl reaches the sandbox by each
    end
    local files = sbx.sh("ls " .. dir)
    local _, n = files:gsub("%.gcra", "")
    assert.equal(1, n, files)
  end)

  it("holds localhost, LOCALHOST., :443 and no port to one limit", function()
    local dir = tmpdir()
    local function open(base)
      return assert(limiter.open(di.config.resolve(sbx.settings { base_url = base, limiter_dir = dir,
        rate = 1, burst = 1 })))
    end
    local a = open("https://localhost/x/")
    assert.equal(0, a:acquire())
    for _, u in ipairs { "https://LOCALHOST/x/", "https://localhost:443/x/", "https://LocalHost.:443/x/" } do
      assert.is_true(open(u):acquire() > 0.5, u .. " took a slot of its own")
    end
    assert.equal(0, open("https://localhost:8443/x/"):acquire(), "another port is another limit")
  end)

  it("holds two processes on localhost and LOCALHOST to 20 calls/s together (before: 120 calls in 3 s)", function()
    local dir = tmpdir()
    local start = core.now() + 0.8
    local files, procs = {}, {}
    for i, h in ipairs { "localhost", "LOCALHOST" } do
      files[i] = os.tmpname()
      local base = sbx.env("DI_BASE_URL"):gsub("//127%.0%.0%.1:", "//" .. h .. ":")
      procs[i] = io.popen(string.format("DI_BASE_URL=%q %s spec/support/limiter_worker.lua %.6f %.6f 20 1 %q > %q",
        base, LUA, start, start + 3, dir, files[i]))
    end
    local n = 0
    for i = 1, 2 do
      assert(procs[i]:close(), "worker " .. i .. " failed")
      for _ in io.lines(files[i]) do n = n + 1 end
    end
    print(string.format("\n  localhost + LOCALHOST, 20/s burst 1, 3 s: %d calls", n))
    assert.is_true(n <= 20 * 3 + 1 + 3, n .. " calls: each spelling had a limit of its own")
    assert.is_true(n >= 50, n .. " calls: too few")
  end)
end)
