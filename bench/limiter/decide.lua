-- Scenario 6: the cost of one limiter decision (limiter:acquire), local
-- (the shared-memory GCRA, limiter/shm.lua) or through Redis
-- (limiter/redis.lua, a real redis-server on loopback), at a rate so high
-- that every call is let through at once: the decision alone is timed.
--   lua5.4 bench/limiter/decide.lua local|redis N
-- prints: calls=N wall=S cpu=S
local di = require "dialoginsight"
local core = require "dialoginsight.core"

local backend, n = arg[1], tonumber(arg[2])
local c = di.new {
  key_id = 1, key = "bench-limiter-key", base_url = "https://bench.invalid/",
  rate = 1e6, burst = 1e6, limiter_dir = os.getenv("BENCH_LIMITER_DIR"),
  limiter_url = backend == "redis" and assert(os.getenv("BENCH_REDIS_URL")) or nil,
}
local lim = c.limiter
for _ = 1, math.min(1000, n) do lim:acquire() end -- warm-up: connection, script load
local t0, c0 = core.now(), os.clock()
for _ = 1, n do
  if lim:acquire() ~= 0 then error("the limiter held a call: the bench's rate is too low") end
end
print(string.format("calls=%d wall=%.6f cpu=%.6f", n, core.now() - t0, os.clock() - c0))
