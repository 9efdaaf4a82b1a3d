--- The rate limiter of a client: one interface, whatever keeps the shared
-- state.
--
--   lim:acquire()          -> 0 when a call may start now (its slot taken),
--                             else the seconds to wait before asking again
--   lim:penalize(seconds)  -> every sharer of the key waits that long (a
--                             429's Retry-After seen by one process)
--   lim:close()
--
-- The backend today is limiter/shm.lua: one GCRA state per (API host, key
-- id) in a file that every process on the host maps.  Whatever the backend,
-- limiter/adaptive.lua lowers this process's own rate after 429s.
local adaptive = require "dialoginsight.limiter.adaptive"
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
-- message when its shared state cannot be used.
function M.open(settings)
  if settings.rate == false then return M.none() end
  local backend, why = shm.open(settings)
  if not backend then return nil, why end
  return adaptive.new(backend, settings.rate, settings.burst)
end

return M
