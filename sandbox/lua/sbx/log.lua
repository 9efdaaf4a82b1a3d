-- The request log: one entry per API call (control calls are not logged).
--
-- Entries live in a ring of M.cap C structs (LuaJIT FFI). A ring of 100,000
-- Lua tables made every GC cycle walk 100,000 tables and cut Merge throughput
-- by two thirds; cdata is never traversed by the GC. Strings (service,
-- method, ErrorCode) are interned as small ids; fault descriptions are rare
-- and kept in a side table.
local ffi = require "ffi"
local ngx = ngx
local var = ngx.var
local tonumber = tonumber
local http_version = ngx.req.http_version

ffi.cdef [[
typedef struct {
  double seq, connection, idRequest;
  int32_t creq, records, key;
  int16_t status;
  uint8_t svc, meth, code, httpv, reused, used;
} sbx_log_entry;
]]

local M = { cap = 100000, seq = 0, cleared_at = 0 }
local ring = ffi.new("sbx_log_entry[?]", M.cap)
local faults = {}

-- string <-> id interning, bounded (unknown names from clients could be anything)
local names, ids = { [0] = "?" }, { ["?"] = 0 }
local function intern(s)
  if s == nil then return 255 end
  local id = ids[s]
  if id then return id end
  local n = #names + 1
  if n >= 250 then return 0 end
  names[n] = s
  ids[s] = n
  return n
end

function M.clear()
  M.cleared_at = M.seq
  faults = {}
end

-- new_entry(service, method) -> e (a per-request Lua table; commit() stores it)
function M.new_entry(service, method)
  local seq = M.seq + 1
  M.seq = seq
  local e = { seq = seq, service = service, method = method }
  local r = ring[seq % M.cap]
  r.seq = seq
  r.connection = tonumber(var.connection) or 0
  r.creq = tonumber(var.connection_requests) or 0
  r.httpv = (http_version() or 0) * 10
  r.reused = var.ssl_session_reused == "r" and 1 or 0
  r.svc, r.meth = intern(service), intern(method)
  r.status, r.code, r.records, r.key, r.idRequest = 0, 255, -1, -1, -1
  r.used = 1
  faults[seq % M.cap] = nil
  return e
end

-- commit(e): the outcome of the call (status, code, records, key, fault, idRequest)
function M.commit(e)
  local slot = e.seq % M.cap
  local r = ring[slot]
  if r.seq ~= e.seq then return end -- overwritten by a newer entry meanwhile
  r.status = e.status or 0
  r.code = intern(e.code)
  r.records = e.records or -1
  r.key = e.key or -1
  r.idRequest = e.idRequest or -1
  faults[slot] = e.fault
end

local HTTPV = { [10] = 1.0, [11] = 1.1, [20] = 2, [30] = 3 }

-- entries(since) -> list of plain tables with seq > since, oldest first
function M.entries(since)
  local first = M.seq - M.cap + 1
  if first < 1 then first = 1 end
  if since and since + 1 > first then first = since + 1 end
  if M.cleared_at + 1 > first then first = M.cleared_at + 1 end
  local out, cap = {}, M.cap
  for s = first, M.seq do
    local r = ring[s % cap]
    if r.used == 1 and r.seq == s then
      out[#out + 1] = {
        seq = s, service = names[r.svc], method = names[r.meth],
        status = r.status ~= 0 and r.status or nil,
        code = r.code ~= 255 and names[r.code] or nil,
        connection = r.connection, connection_requests = r.creq,
        http_version = HTTPV[r.httpv] or r.httpv / 10,
        ssl_session_reused = r.reused == 1,
        records = r.records >= 0 and r.records or nil,
        key = r.key >= 0 and r.key or nil,
        idRequest = r.idRequest >= 0 and r.idRequest or nil,
        fault = faults[s % cap],
      }
    end
  end
  return out
end

return M
