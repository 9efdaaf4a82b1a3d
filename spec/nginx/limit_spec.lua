-- The shared limiter in nginx: four workers of the example, each calling as
-- fast as its client lets it, share one 20 calls/s limit (burst 1).
local cjson = require "cjson"
local sbx = require "support.sandbox"
local H = require "nginx.helper"

describe("nginx shared limit", function()
  local inst, t

  setup(function()
    sbx.reset()
    local extra
    extra, t = H.handler_server()
    inst = H.start_example("limit", { workers = 4, rate = 20, burst = 1, extra = extra })
  end)

  teardown(function() if inst then inst.stop() end end)

  it("holds 4 workers to 20 calls/s together: 60 +- 3 calls in 3 s", function()
    local since = sbx.mark()
    assert.equal(200, (H.http(t .. "burn_start?seconds=3")))
    local r
    for _ = 1, 40 do -- the window opens 0.3 s after burn_start and lasts 3 s
      H.sh("sleep 0.25")
      local _, body = H.http(t .. "burn_result")
      r = cjson.decode(body)
      if r.done == 4 then break end
    end
    assert.equal(4, r.done, "not every worker finished: " .. cjson.encode(r))
    assert.equal(0, r.errors)
    local n = H.calls(since, "projects.list")
    local busy, per = 0, {}
    for _, w in ipairs(r.workers) do
      per[#per + 1] = string.format("%d", w.calls)
      if w.calls > 0 then busy = busy + 1 end
    end
    print(string.format("\n  4 workers, 20 calls/s burst 1, 3 s: %d calls in the sandbox log "
      .. "(per worker: %s)", n, table.concat(per, ", ")))
    assert.is_true(busy >= 2, "the load did not reach several workers")
    assert.is_true(n >= 57 and n <= 63, n .. " calls")
  end)
end)

-- Issue 13, "nothing freezes", in nginx: limiter waits under 1 ms, a 429
-- with a huge Retry-After, and a limiter file written far ahead.
describe("nginx limiter: nothing freezes", function()
  local core = require "dialoginsight.core"
  local shm = require "dialoginsight.limiter.shm"
  local inst, t

  setup(function()
    sbx.reset()
    local extra
    extra, t = H.handler_server()
    -- 500 calls/s, burst 1: callers in four light threads or two workers
    -- are held for fractions of the 2 ms interval, most under 1 ms
    inst = H.start_example("limit-freeze", { workers = 2, rate = 500, burst = 1, extra = extra })
  end)

  teardown(function()
    if inst then inst.stop() end
    pcall(sbx.clear_faults)
  end)

  it("a burst of limited calls writes no ngx.sleep(0) warning", function()
    local since = sbx.mark()
    for _ = 1, 5 do
      local status, r = H.get_json(t .. "call_many?n=50&concurrency=8")
      assert.equal(200, status)
      assert.equal(0, r.failures, table.concat(r.errors or {}, "; "))
    end
    assert.equal(200, (H.http(t .. "burn_start?seconds=1")))
    local r
    for _ = 1, 40 do
      H.sh("sleep 0.25")
      local _, body = H.http(t .. "burn_result")
      r = cjson.decode(body)
      if r.done == 2 then break end
    end
    assert.equal(2, r.done)
    local n = H.calls(since, "projects.list")
    local log = H.read(inst.errlog)
    local _, zeros = log:gsub("ngx%.sleep%(0%)", "")
    print(string.format("\n  %d limited calls at 500/s burst 1: %d ngx.sleep(0) warnings, "
      .. "error log %d bytes", n, zeros, #log))
    assert.is_true(n >= 250, n .. " calls")
    assert.equal(0, zeros, "the error log holds ngx.sleep(0) warnings: " .. log:sub(1, 300))
  end)

  it("a limiter file written far ahead is reset at the next call, with a warning", function()
    local path = shm.path(inst.dir .. "/limiter", sbx.env("DI_BASE_URL"):gsub("127%.0%.0%.1",
      "localhost"), sbx.env("DI_KEY_ID"))
    local tat = math.floor((core.now() + 100000) * 1e9)
    local bytes = {}
    for i = 1, 8 do bytes[i] = string.char(tat % 256); tat = math.floor(tat / 256) end
    local f = assert(io.open(path, "r+b")) -- in place: the workers map this file
    f:seek("set", 8)
    f:write(table.concat(bytes))
    f:close()
    local status, r = H.get_json(t .. "call?retries=0", { max_time = 10 })
    assert.equal(200, status)
    assert.is_true(r.ok, tostring(r.text))
    assert.is_true(r.elapsed < 2, "the call waited " .. r.elapsed .. " s")
    local log = H.read(inst.errlog)
    assert.truthy(log:find("WARNING: the shared limiter file " .. path, 1, true), log:sub(-600))
    assert.truthy(log:find("reset", 1, true))
  end)

  -- last: it leaves the example's key held for 30 s
  it("a 429 with Retry-After of a day (86400 s) holds later requests max_retry_after at most", function()
    sbx.faults { { type = "status", status = 429, retry_after = 86400, next = 1 } }
    local _, r = H.get_json(t .. "call?retries=0&max_retry_after=1")
    assert.is_false(r.ok)
    assert.equal(429, r.status)
    local status
    status, r = H.get_json(t .. "call", { max_time = 10 })
    assert.equal(200, status)
    assert.is_true(r.ok, "the request after the 429: " .. tostring(r.text))
    assert.is_true(r.elapsed < 2, "it waited " .. r.elapsed .. " s")

    -- the example's own policy (max_retry_after 30 s): the key is held 30 s, not hours
    sbx.faults { { type = "status", status = 429, retry_after = 86400, next = 1 } }
    _, r = H.get_json(t .. "call?retries=0")
    assert.equal(429, r.status)
    _, r = H.get_json(t .. "limiter")
    assert.is_true(r.wait > 25 and r.wait <= 30, "the key is held " .. r.wait .. " s")
  end)
end)
