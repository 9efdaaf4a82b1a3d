--- The limiter backend of one host: a GCRA state per (API host, key id) in
-- a file under limiter_dir that every process on the host maps.  See
-- src/di_limiter.c for how it stays consistent without locks.
local core = require "dialoginsight.core"

local M = {}

--- The file that holds the limit of key_id on the host of base_url.
function M.path(dir, base_url, key_id)
  local host = base_url:match("^%a+://([^/]+)") or "unknown"
  return string.format("%s/dialoginsight-%s-%s.gcra", dir,
    host:gsub("[^%w%.%-]", "_"), tostring(key_id))
end

--- The core limiter (acquire, penalize, delay, configure, close) of a
-- client's settings, or nil, message.
function M.open(settings)
  local dir = settings.limiter_dir
  if dir == nil then
    local err
    dir, err = core.runtime_dir()
    if not dir then return nil, err end
  end
  return core.limiter {
    path = M.path(dir, settings.base_url, settings.key_id),
    rate = settings.rate, burst = settings.burst,
  }
end

return M
