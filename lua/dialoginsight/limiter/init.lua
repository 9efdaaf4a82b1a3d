--- The rate limiter of a client: one interface, whatever keeps the shared
-- state.
--
--   lim:acquire([budget])  -> 0 when a call may start now (its slot taken),
--                             else the seconds to wait before asking again
--   lim:penalize(seconds [, budget])
--                          -> every sharer of the key waits that long (a
--                             429's Retry-After seen by one process)
--   (budget: the seconds a shared backend may spend deciding at most, what
--   is left of the call's deadline; the local backend never waits)
--   lim:close()
--
-- Two backends keep the shared state: limiter/shm.lua (one host: a GCRA
-- state per (API host, key id) in a file that every process on the host
-- maps) and limiter/redis.lua (a fleet of hosts: the same GCRA in Redis,
-- with shm as this host's fallback while Redis is away), chosen by the
-- limiter_url setting.  Whatever the backend, limiter/adaptive.lua lowers
-- this process's own rate after limit replies.
local core = require "dialoginsight.core"
local adaptive = require "dialoginsight.limiter.adaptive"
local redis = require "dialoginsight.limiter.redis"
local shm = require "dialoginsight.limiter.shm"

local M = {}

local None = {}
None.__index = None
function None.acquire() return 0 end
function None.penalize() end
function None.close() end

--- The limiter that never holds a call (rate = false).
function M.none() return setmetatable({}, None) end

--- The limiter of a client's resolved settings (config.resolve), or nil,
-- message when its shared state cannot be used.  nginx: inside nginx, what
-- the Redis backend needs of the cosocket transport (init.lua passes it):
-- { phases = transport/ngx.lua's PHASES, connect = its connect }.
function M.open(settings, nginx)
  if settings.rate == false then return M.none() end
  local backend, why = shm.open(settings)
  if not backend then return nil, why end
  if settings.limiter_url then
    backend = M.redis(settings, backend, nginx)
  end
  return adaptive.new(backend, settings.rate, settings.burst)
end

--- The Redis backend of settings, over the local one as its fallback.
function M.redis(settings, fallback, nginx)
  local fallback_rate = settings.fallback_rate or settings.rate / settings.hosts
  return redis.new {
    url = assert(redis.parse_url(settings.limiter_url)), -- config.lua checked it
    key = redis.key(settings.base_url, settings.key_id),
    rate = settings.rate, burst = settings.burst, fallback = fallback,
    fallback_rate = fallback_rate, max_ahead = settings.retries.max_retry_after,
    connect = nginx and function(url, timeout) return redis.connect_ngx(url, timeout, nginx) end
      or redis.connect_core,
    now = core.now,
    warn = function(msg) require("dialoginsight.log").warn("dialoginsight: WARNING: " .. msg) end,
  }
end

return M
