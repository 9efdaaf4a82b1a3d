--- The shared rate limiter of a client: one GCRA state per (API host, key
-- id), in a file under limiter_dir that every process on the host maps.
-- See src/di_limiter.c for how it stays consistent without locks.
local core = require "dialoginsight.core"

local M = {}

M.DEFAULTS = { rate = 10, burst = 10 } -- calls/s per key [assumed], API.md

--- The file that holds the limit of key_id on the host of base_url.
function M.path(dir, base_url, key_id)
  local host = base_url:match("^%a+://([^/]+)") or "unknown"
  return string.format("%s/dialoginsight-%s-%s.gcra", dir,
    host:gsub("[^%w%.%-]", "_"), tostring(key_id))
end

--- Opens the limiter of a client's settings; nil when limiting is off
-- (rate = false).  Returns nil, message when the file cannot be used.
function M.open(settings)
  if settings.rate == false then return false end
  local dir = settings.limiter_dir
  if dir == nil then
    local err
    dir, err = core.runtime_dir()
    if not dir then return nil, err end
  end
  return core.limiter {
    path = M.path(dir, settings.base_url, settings.key_id),
    rate = settings.rate or M.DEFAULTS.rate,
    burst = settings.burst or M.DEFAULTS.burst,
  }
end

return M
