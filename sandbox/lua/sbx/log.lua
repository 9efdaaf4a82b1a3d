-- The request log: one entry per API call (control calls are not logged), in a
-- ring of M.cap entries so a long benchmark cannot exhaust memory.
local ngx = ngx
local var = ngx.var
local tonumber = tonumber
local http_version = ngx.req.http_version

local M = { cap = 100000, seq = 0, ring = {} }

function M.clear()
  M.ring = {}
  M.cleared_at = M.seq
end
M.cleared_at = 0

function M.new_entry(service, method)
  local seq = M.seq + 1
  M.seq = seq
  local e = {
    seq = seq, service = service, method = method,
    connection = tonumber(var.connection),
    connection_requests = tonumber(var.connection_requests),
    http_version = http_version(),
    ssl_session_reused = var.ssl_session_reused == "r",
  }
  M.ring[seq % M.cap] = e
  return e
end

-- entries(since) -> list of entries with seq > since, oldest first
function M.entries(since)
  local first = M.seq - M.cap + 1
  if first < 1 then first = 1 end
  if since and since + 1 > first then first = since + 1 end
  if M.cleared_at + 1 > first then first = M.cleared_at + 1 end
  local out, ring, cap = {}, M.ring, M.cap
  for s = first, M.seq do
    local e = ring[s % cap]
    if e and e.seq == s then out[#out + 1] = e end
  end
  return out
end

return M
