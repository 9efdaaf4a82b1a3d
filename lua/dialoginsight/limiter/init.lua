--- The rate limiter of a client: lim:acquire([budget [, priority]]) -> 0 (slot
-- taken) or the seconds to wait; lim:penalize(seconds [, budget]) makes every
-- sharer of the key wait (a 429's Retry-After); lim:status() reads the state
-- without changing it; lim:close().  budget: what is left of the call's
-- deadline, the most a shared backend may spend deciding; priority:
-- "interactive" or "batch" (reserve.lua).  Backends (shm.lua, redis.lua over
-- shm) and adaptive.lua: docs/limiter.md.
local core = require "dialoginsight.core"
local adaptive = require "dialoginsight.limiter.adaptive"
local redis = require "dialoginsight.limiter.redis"
local shm = require "dialoginsight.limiter.shm"

local M = {}

local None = {}
None.__index = None
function None.acquire() return 0 end
function None.status() return { backend = "none" } end
function None.penalize() end
function None.close() end

--- The limiter that never holds a call (rate = false).
function M.none() return setmetatable({}, None) end

--- The limiter of resolved settings, or nil, message when its shared state
-- cannot be used.  nginx: { phases =, connect = } of transport/ngx.lua, from init.lua;
-- events: optional, { fallback = function(active, why) }, told when the Redis
-- backend falls back to the local limit (true) or shares again (false).
function M.open(settings, nginx, events)
  if settings.rate == false then return M.none() end
  local backend, why = shm.open(settings)
  if not backend then return nil, why end
  if settings.limiter_url then
    backend = M.redis(settings, backend, nginx, events)
  end
  return adaptive.new(backend, settings.rate, settings.burst)
end

--- The Redis backend of settings, over the local one as its fallback.
function M.redis(settings, fallback, nginx, events)
  local fallback_rate = settings.fallback_rate or settings.rate / settings.hosts
  return redis.new {
    url = assert(redis.parse_url(settings.limiter_url)), -- config.lua checked it
    key = redis.key(settings.base_url, settings.key_id),
    rate = settings.rate, burst = settings.burst, share = settings.batch_share,
    fallback = fallback, events = events,
    fallback_rate = fallback_rate, max_ahead = settings.retries.max_retry_after,
    connect = nginx and function(url, timeout) return redis.connect_ngx(url, timeout, nginx) end
      or redis.connect_core,
    now = core.now,
    warn = function(msg) require("dialoginsight.log").warn("dialoginsight: WARNING: " .. msg) end,
  }
end

return M
