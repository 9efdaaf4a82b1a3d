-- The limit of a fleet through Redis, with nginx in it: two workers of the
-- example (cosockets, Debian's lua-nginx-redis) and three OS processes
-- (hiredis), each process with its own limiter_dir as if on its own host,
-- share one key at 10 calls/s with burst 1 for 5 s.  The sandbox's request
-- log counts what went out.  spec/client/redis_spec.lua covers the
-- processes alone, Redis dying and coming back, and bad URLs.
local cjson = require "cjson"
local core = require "dialoginsight.core"
local sbx = require "support.sandbox"
local H = require "nginx.helper"

local LUA = require("support.runtime").lua

local function redis(cmd)
  local out, ok = H.sh("DI_REDIS_DIR=" .. H.root .. "/build/redis-nginx-spec " .. H.root
    .. "/scripts/redis " .. cmd)
  assert(ok, "scripts/redis " .. cmd .. ": " .. out)
  return out
end

describe("nginx in a fleet sharing the limit through Redis", function()
  local inst, t, url

  setup(function()
    url = redis("start"):match("DI_REDIS_URL=(%S+)")
    sbx.reset()
    local extra
    extra, t = H.handler_server()
    inst = H.start_example("redis", { workers = 2, rate = 10, burst = 1, limiter_url = url, extra = extra })
  end)

  teardown(function()
    if inst then inst.stop() end
    pcall(redis, "stop")
  end)

  it("holds 2 nginx workers and 3 processes to 10 calls/s together", function()
    local since = sbx.mark()
    local procs, files = {}, {}
    local base = sbx.env("DI_BASE_URL"):gsub("^https://127%.0%.0%.1:", "https://localhost:")
    local start = core.now() + 0.6
    for i = 1, 3 do
      files[i] = os.tmpname()
      local dir = H.sh("mktemp -d"):gsub("%s+$", "")
      -- the example reaches the sandbox as localhost (nginx verifies names,
      -- not addresses): the same API host, so the same limit
      procs[i] = io.popen(string.format("DI_BASE_URL=%q %s spec/support/limiter_worker.lua %.6f %.6f 10 1 %q %q > %q",
        base, LUA, start, start + 5, dir, url, files[i]))
    end
    core.sleep(math.max(0, start - 0.3 - core.now())) -- burn.lua's window opens 0.3 s after this
    assert.equal(200, (H.http(t .. "burn_start?seconds=5")))
    local by_procs = 0
    for i = 1, 3 do
      assert(procs[i]:close(), "process " .. i .. " failed")
      for _ in io.lines(files[i]) do by_procs = by_procs + 1 end
    end
    local r
    for _ = 1, 40 do
      local _, body = H.http(t .. "burn_result")
      r = cjson.decode(body)
      if r.done == 2 then break end
      H.sh("sleep 0.25")
    end
    assert.equal(2, r.done, "the workers did not finish: " .. cjson.encode(r))
    assert.equal(0, r.errors)
    local by_nginx = 0
    for _, w in ipairs(r.workers) do by_nginx = by_nginx + w.calls end
    local n = H.calls(since, "projects.list")
    print(string.format("\n  2 nginx workers + 3 processes through Redis, 10/s burst 1, 5 s: %d calls "
      .. "(nginx %d, processes %d)", n, by_nginx, by_procs))
    assert.is_true(by_nginx > 0 and by_procs > 0, "both kinds of sharer must have called")
    -- the two 5 s windows open within a few tenths of a second of each other
    assert.is_true(n <= 10 * 5.5 + 1 + 10, n .. " calls: more than rate x seconds + burst + 1 s of slack")
    assert.is_true(n >= 45, n .. " calls: the shared limit let too few through")
    assert.is_nil(H.read(inst.errlog):find("Redis is unreachable", 1, true), "nginx never reached Redis")
  end)
end)

-- Issue 21, the Dependencies property on nginx's path (limiter/redis.lua's
-- connect_ngx: RESP on a cosocket): a Redis that lies, drips, or answers
-- too much (spec/support/fake_server.lua) never raises into a handler,
-- never holds a decision past its budget, never makes it answer a wait
-- that is no wait; the call still ends within its deadline.  The same
-- adversary as spec/client/dependencies_spec.lua's, a few seeded
-- scenarios here.
describe("nginx against a lying Redis #property", function()
  local property = require "support.property"
  local fake = require "support.fake"
  local rmod = require "dialoginsight.limiter.redis"
  local f, inst, t

  setup(function()
    f = fake.start("redis")
    sbx.reset()
    local extra
    extra, t = H.handler_server()
    inst = H.start_example("redis-lie", { workers = 1, rate = 1000, burst = 100, extra = extra })
  end)
  teardown(function()
    if inst then inst.stop() end
    if f then f.stop() end
  end)

  it("no reply of Redis raises, holds a decision past its budget, or answers a wait out of bounds", function()
    property.check("nginx-redis", { scenarios = 40, seconds = 20 }, function(rng)
      local plan, what = fake.redis_lie(rng, false, false)
      f.plan(plan)
      local budget = rng:chance(0.3) and 0.02 or nil
      local status, r = H.get_json(t .. "redis_lie?n=6&url=" .. f.url .. (budget and ("&budget=" .. budget) or ""))
      if status ~= 200 then return false, what .. ": HTTP " .. tostring(status) end
      if #r.raised > 0 then return false, what .. ": raised " .. r.raised[1] end
      for i, took in ipairs(r.times) do
        -- (the call's decisions have its deadline, the handler's `budget`)
        local most = (i <= 6 and budget or rmod.TIMEOUT) + 0.1 -- (slack: a busy machine)
        if took > most then
          return false, string.format("%s: decision %d took %.3f s (budget %.3f)", what, i, took, most)
        end
      end
      for i, w in ipairs(r.waits) do
        if type(w) ~= "number" or w < 0 or w > 31.02 then
          return false, what .. ": decision " .. i .. " answered " .. tostring(w)
        end
      end
      if r.call.raised then return false, what .. ": the call raised " .. r.call.raised end
      if r.call.elapsed > 1.25 then return false, string.format("%s: the call took %.3f s", what, r.call.elapsed) end
      local s = f.stats()
      if s.evalsha > 3 * r.decisions + 3 then
        return false, what .. ": " .. s.evalsha .. " EVALSHA for " .. r.decisions .. " decisions"
      end
      return true
    end)
    assert.is_nil(H.read(inst.errlog):find("[error]", 1, true), "errors in nginx's log")
  end)
end)

-- rev2: the cosocket connector's pool was named by host, port and db only:
-- a client with a wrong password, or none, reused connections another
-- client had authenticated, and shared a limit it could not reach.  The
-- credentials (a keyed hash of them) are part of the pool's name now.
describe("nginx sharing Redis connections only with the same credentials", function()
  local inst, t, port

  local function pw_redis(cmd)
    local out, ok = H.sh("REDIS_PASSWORD=s3cret-pw DI_REDIS_DIR=" .. H.root .. "/build/redis-nginx-pw "
      .. H.root .. "/scripts/redis " .. cmd)
    assert(ok, "scripts/redis " .. cmd .. ": " .. out)
    return out
  end

  setup(function()
    port = pw_redis("start"):match("DI_REDIS_URL=%S+:(%d+)")
    local extra
    extra, t = H.handler_server()
    inst = H.start_example("redis-pw", { workers = 1, extra = extra })
  end)
  teardown(function()
    if inst then inst.stop() end
    pcall(pw_redis, "stop")
  end)

  it("never lends a connection AUTH opened to a client with another password or none", function()
    local function decide(url)
      local before = #H.read(inst.errlog)
      local status, r = H.get_json(t .. "redis_lie?n=2&url=" .. url)
      assert.equal(200, status)
      assert.equal(0, #r.raised)
      return H.read(inst.errlog):sub(before + 1)
    end
    local log = decide("redis://:s3cret-pw@127.0.0.1:" .. port)
    assert.is_nil(log:find("Redis", 1, true), log)
    for _, url in ipairs { "redis://:wrong-pw@127.0.0.1:" .. port, "redis://127.0.0.1:" .. port } do
      log = decide(url)
      assert.truthy(log:find("Redis refused the limiter", 1, true), url .. ": " .. log)
    end
    assert.is_nil(H.read(inst.errlog):find("s3cret-pw", 1, true), "the password reached the log")
  end)
end)
