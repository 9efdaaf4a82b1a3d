-- The reserve for interactive calls (issue 25), with real parts: the host's
-- `dialoginsight sync contacts` at full speed (its calls are batch ones) and
-- an nginx handler of the OpenResty example (interactive calls) share one key
-- at 10 calls/s, burst 10, batch_share 0.8 (reserve 2), through the shared
-- file of one host and then through Redis.  The handler's calls must wait
-- less than one slot (1/rate) at the 99th percentile, and the sync must take
-- no more than its share; the sandbox's request log counts the calls.
local cjson = require "cjson"
local sbx = require "support.sandbox"
local H = require "nginx.helper"

local RATE, BURST, SHARE = 10, 10, 0.8

local function redis(cmd)
  local out, ok = H.sh("DI_REDIS_DIR=" .. H.root .. "/build/redis-reserve-spec " .. H.root
    .. "/scripts/redis " .. cmd)
  assert(ok, "scripts/redis " .. cmd .. ": " .. out)
  return out
end

-- A CSV of n contacts, sent one per Merge (--batch-size 1): more than the
-- window lets through, so the sync runs at full speed throughout.
local function contacts_csv(n)
  local path = os.tmpname() .. ".csv"
  local out = { "EMail,FirstName" }
  for i = 1, n do out[#out + 1] = string.format("reserve%d@example.com,R%d", i, i) end
  H.write(path, table.concat(out, "\n") .. "\n")
  return path
end

local function percentile(list, p)
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  return s[math.max(1, math.ceil(#s * p))]
end

-- Runs the sync and the handler (at t) together; env: the sync's limiter
-- settings; n: the handler's calls (24), one every 0.25 s.  Returns what was
-- counted, the handler's p99 (seconds per call) and the sync's calls/s.
local function together(t, env, label, n)
  local csv = contacts_csv(400)
  local out = os.tmpname()
  local base = sbx.env("DI_BASE_URL"):gsub("^https://127%.0%.0%.1:", "https://localhost:")
  -- the same API host as the example (localhost): the same limit
  local pid = H.sh(string.format("cd %q && env DI_BASE_URL=%q DI_RATE=%d DI_BURST=%d %s "
    .. "bin/dialoginsight -q sync contacts %q --batch-size 1 --out-dir %q > %q 2>&1 & echo $!",
    H.root, base, RATE, BURST, env, csv, H.sh("mktemp -d"):gsub("%s+$", ""), out)):match("%d+")
  local ok, result = pcall(function()
    H.sh("sleep 1.5") -- the sync floods: the state stands at the batch ceiling
    local since, t0 = sbx.mark(), H.now()
    local status, body = H.http(t .. "interactive?n=" .. (n or 24) .. "&every=0.25", { max_time = 30 })
    local t1, upto = H.now(), sbx.mark()
    assert.equal(200, status, body)
    local r = cjson.decode(body)
    assert.equal(0, r.errors)
    local merges = 0
    for _, e in ipairs(sbx.log(since)) do
      if e.seq <= upto and e.service == "contacts" and e.method == "merge" then merges = merges + 1 end
    end
    local lists = H.calls(since, "projects.list")
    return { took = r.took, merges = merges, lists = lists, window = t1 - t0, status = r.status }
  end)
  H.sh("kill " .. pid .. " 2>/dev/null; sleep 0.2; kill -9 " .. pid .. " 2>/dev/null")
  if not ok then error(result .. "\nsync output: " .. H.read(out), 0) end
  local p99, worst = percentile(result.took, 0.99), percentile(result.took, 1)
  local share = result.merges / result.window
  print(string.format("\n  %s: handler %d calls, p99 %.1f ms (max %.1f ms); sync %d Merge calls "
    .. "in %.2f s = %.2f calls/s (share %.0f%% of %d/s); backend %s", label, #result.took,
    p99 * 1000, worst * 1000, result.merges, result.window, share, share / RATE * 100, RATE,
    tostring(result.status.backend)))
  return result, p99, share
end

local function check(result, p99, share)
  -- the handler's wait (less than its call's time) under one slot
  assert.is_true(p99 < 1 / RATE, string.format("handler p99 %.3f s", p99))
  assert.is_true(result.merges > 0, "the sync made no call in the window")
  -- no more than its share (an initial batch at once at most: the state stood at its ceiling)
  assert.is_true(share <= SHARE * RATE, string.format("sync at %.2f calls/s", share))
  -- and the key's limit held for both together
  assert.is_true(result.merges + result.lists <= RATE * result.window + BURST,
    (result.merges + result.lists) .. " calls")
end

describe("a reserve for interactive calls: a sync at full speed beside an nginx handler", function()
  local inst, t

  after_each(function() if inst then inst.stop(); inst = nil end end)

  it("through the shared file of one host", function()
    sbx.reset()
    local extra
    extra, t = H.handler_server()
    inst = H.start_example("reserve", { workers = 1, rate = RATE, burst = BURST, extra = extra })
    local result, p99, share = together(t, string.format("DI_LIMITER_DIR=%q", inst.dir .. "/limiter"),
      "shm file")
    assert.equal("local", result.status.backend)
    check(result, p99, share)
  end)

  it("without the reserve (the sync at batch_share 1), the same handler waits: the measure sees it", function()
    sbx.reset()
    local extra
    extra, t = H.handler_server()
    inst = H.start_example("reserve", { workers = 1, rate = RATE, burst = BURST, extra = extra })
    local _, p99 = together(t, string.format("DI_LIMITER_DIR=%q DI_BATCH_SHARE=1", inst.dir .. "/limiter"),
      "shm file, no reserve", 6)
    assert.is_true(p99 >= 1 / RATE, string.format("handler p99 %.3f s", p99))
  end)

  it("through Redis", function()
    local url = redis("start"):match("DI_REDIS_URL=(%S+)")
    finally(function() pcall(redis, "stop") end)
    sbx.reset()
    local extra
    extra, t = H.handler_server()
    inst = H.start_example("reserve-redis", { workers = 1, rate = RATE, burst = BURST, extra = extra,
                                              limiter_url = url })
    local own = H.sh("mktemp -d"):gsub("%s+$", "") -- another host's own directory
    local result, p99, share = together(t,
      string.format("DI_LIMITER_DIR=%q DI_LIMITER_URL=%q", own, url), "Redis")
    assert.equal("redis", result.status.backend)
    check(result, p99, share)
  end)
end)
