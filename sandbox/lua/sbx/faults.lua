-- Fault injection. A fault fires either for the next N matching calls
-- ("next") or with a probability (default 1.0), optionally only for one
-- "service.method". Latency faults add up; of the terminal ones (status, drop,
-- truncate, malformed) the first that fires wins, and later ones are not
-- consumed. Decisions use their own seeded PRNG so a run repeats.
local prng = require "sbx.prng"
local util = require "sbx.util"
local json = require "sbx.json"

local lcase, type, tonumber, floor, concat = util.lcase, type, tonumber, math.floor, table.concat

local M = { list = {}, nextId = 1 }
M.rng = prng.new(42, 99)

local TYPES = { latency = true, status = true, drop = true, truncate = true, malformed = true }
local CODES = { [400] = "InvalidRequest", [401] = "InvalidAuthKey", [404] = "UnknownMethod", [429] = "TooManyRequests" }

function M.reset(seed)
  M.list = {}
  M.rng = prng.new(seed or 42, 99)
end

-- add(spec) -> fault | nil, err
function M.add(spec)
  if type(spec) ~= "table" then return nil, "a fault must be an object" end
  local s = util.norm(spec)
  local ty = type(s.type) == "string" and lcase(s.type)
  if not TYPES[ty] then return nil, "type must be latency, status, drop, truncate or malformed" end
  local f = { id = M.nextId, type = ty }
  if ty == "latency" then
    f.ms = tonumber(s.ms) or 0
    f.jitter_ms = tonumber(s.jitter_ms) or 0
    if f.ms < 0 or f.jitter_ms < 0 then return nil, "ms and jitter_ms must be >= 0" end
  elseif ty == "status" then
    local st = tonumber(s.status) or 500
    if st < 400 or st > 599 or st ~= floor(st) then return nil, "status must be an HTTP error status (e.g. 429, 500, 503)" end
    f.status = st
    f.code = CODES[st] or (st >= 500 and "ServerError") or "InvalidRequest"
    if not json.isnull(s.retry_after) then f.retry_after = tonumber(s.retry_after) end
    if st == 429 and not f.retry_after then f.retry_after = 1 end
  end
  if not json.isnull(s.next) then
    local n = util.int(s.next)
    if not n or n < 1 then return nil, "next must be a positive integer" end
    f.next = n
  else
    local p = json.isnull(s.probability) and 1 or tonumber(s.probability)
    if not p or p < 0 or p > 1 then return nil, "probability must be between 0 and 1" end
    f.probability = p
  end
  if not json.isnull(s.method) then
    if type(s.method) ~= "string" then return nil, "method must be a string like \"contacts.merge\"" end
    f.method = lcase(s.method)
  end
  f.after = util.bool(s.after_processing) or false
  f.fired = 0
  M.nextId = M.nextId + 1
  M.list[#M.list + 1] = f
  return f
end

function M.clear() M.list = {} end

local function matches(filter, key)
  if not filter or filter == "*" or filter == key then return true end
  local svc = key:match("^([^%.]*)")
  return filter == svc or filter == svc .. ".*"
end

-- decide(key) -> nil | { latency = ms, terminal = fault|nil, desc = "..." }
function M.decide(key)
  local list = M.list
  local n = #list
  if n == 0 then return nil end
  local latency, terminal, desc, nd = 0, nil, {}, 0
  local rng = M.rng
  local i = 1
  while i <= #list do
    local f = list[i]
    local remove = false
    if matches(f.method, key) and not (terminal and f.type ~= "latency") then
      local fire
      if f.next then
        fire = true
        f.next = f.next - 1
        remove = f.next <= 0
      else
        fire = f.probability >= 1 or rng:float() < f.probability
      end
      if fire then
        f.fired = f.fired + 1
        nd = nd + 1
        if f.type == "latency" then
          local ms = f.ms
          if f.jitter_ms > 0 then ms = ms + rng:float() * f.jitter_ms end
          latency = latency + ms
          desc[nd] = "latency:" .. floor(ms + 0.5)
        else
          terminal = f
          if f.type == "status" then
            desc[nd] = "status:" .. f.status .. (f.after and ":after" or "")
          else
            desc[nd] = f.type .. (f.after and ":after" or "")
          end
        end
      end
    end
    if remove then table.remove(list, i) else i = i + 1 end
  end
  if nd == 0 then return nil end
  return { latency = latency, terminal = terminal, desc = concat(desc, "+") }
end

return M
