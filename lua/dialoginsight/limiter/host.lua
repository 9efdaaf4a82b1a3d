--- The limiter's identity of an API host: one spelling for every way a
-- base URL can name it, so that they all share one limit.  Both backends
-- name their state with it: limiter/shm.lua its file, limiter/redis.lua
-- its key.
--
-- The host is lower-cased (DNS names are case-insensitive) and loses one
-- trailing dot (the root label); the port goes when it is the scheme's
-- default and loses leading zeros; IPv6 brackets stay.  A base URL that is
-- already canonical keeps the identity it had before (its file and key are
-- unchanged).
local M = {}

local DEFAULT_PORT = { http = 80, https = 443 }

--- "host" or "host:port" of base_url, canonical; "unknown" when base_url
-- names no host (config.lua refuses such a base_url first).
function M.of(base_url)
  local scheme, authority = tostring(base_url):match("^(%a+)://([^/?#]+)")
  if not scheme then return "unknown" end
  local host, port = authority:match("^(%[[^%]]*%]):?(%d*)$")
  if not host then host, port = authority:match("^([^:]+):?(%d*)$") end
  if not host then return authority:lower() end
  host = host:lower()
  if host:sub(-1) == "." and #host > 1 then host = host:sub(1, -2) end
  local n = tonumber(port)
  if n == nil or n == DEFAULT_PORT[scheme:lower()] then return host end
  return host .. ":" .. string.format("%d", n)
end

return M
