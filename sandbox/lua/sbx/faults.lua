-- Fault injection. A fault fires either for the next N matching calls
-- ("next") or with a probability (default 1.0), optionally only for one
-- "service.method". Latency faults add up, and refuse faults all apply; of
-- the terminal ones (status, limit, drop, truncate, malformed, body,
-- outcomes) the first that fires wins, and later ones are not consumed.
-- Decisions use their own seeded PRNG so a run repeats.
local prng = require "sbx.prng"
local util = require "sbx.util"
local json = require "sbx.json"

local lcase, type, pairs, floor, huge, concat = util.lcase, type, pairs, math.floor, math.huge, table.concat

local M = { list = {}, nextId = 1 }
M.rng = prng.new(42, 99)

local TYPES = { latency = true, status = true, limit = true, drop = true, truncate = true, malformed = true,
  body = true, outcomes = true, refuse = true, drip = true, large = true,
  -- the webhooks' (webhooks.lua): they fire on deliveries, never on API calls
  webhook_duplicate = true, webhook_reorder = true, webhook_late = true, webhook_bad_signature = true,
  webhook_test = true }
-- What an outcomes fault makes of a Merge reply's records (M.rewrite).
local SHAPES = { empty = true, none = true, short = true, camel = true }
local CODES = { [400] = "InvalidRequest", [401] = "InvalidAuthKey", [404] = "UnknownMethod", [429] = "TooManyRequests" }

-- The members each type of fault takes, besides type and its trigger
-- (next or probability, method, after_processing).  Anything else is
-- refused: a typo (retry_afer) or a member of another type (status on a
-- drop) would otherwise be ignored, and the test would not test what it says.
local MEMBERS = {
  latency = { ms = true, jitter_ms = true, total = true }, status = { status = true, retry_after = true },
  limit = { retry_after = true, retry_after_text = true },
  drop = {}, truncate = {}, malformed = {}, body = { body = true },
  outcomes = { shape = true }, refuse = { match = true, name = true },
  drip = { ms = true, bytes = true }, large = { bytes = true, length = true },
  webhook_duplicate = { event = true }, webhook_reorder = { count = true, hold_ms = true, event = true },
  webhook_late = { ms = true, event = true }, webhook_bad_signature = { event = true }, webhook_test = { event = true },
}
local COMMON = { type = true, next = true, probability = true, method = true, after_processing = true }
-- a webhook fault's trigger: next or probability, and event (a type) instead of method
local WEBHOOK_COMMON = { type = true, next = true, probability = true }

local MAX_MS = 600000        -- ten minutes of latency is already a hang
local MAX_RETRY_AFTER = 86400
local MAX_BODY = 1048576
local MAX_DRIP_MS = 1000
local MAX_LARGE = 4294967296 -- 4 GiB

function M.reset(seed)
  M.list = {}
  M.rng = prng.new(seed or 42, 99)
end

local function finite(v) return type(v) == "number" and v == v and v > -huge and v < huge end
local function whole(v) return finite(v) and v == floor(v) end

-- The type-specific members of spec (keys lower-cased) into f, or an error.
local function typed(f, s)
  local ty = f.type
  if ty == "latency" then
    f.ms, f.jitter_ms = s.ms or 0, s.jitter_ms or 0
    if not finite(f.ms) or f.ms < 0 or f.ms > MAX_MS or not finite(f.jitter_ms) or f.jitter_ms < 0
       or f.jitter_ms > MAX_MS then
      return "ms and jitter_ms must be numbers of milliseconds from 0 to " .. MAX_MS
    end
    if s.total ~= nil and type(s.total) ~= "boolean" then return "total must be true or false" end
    f.total = s.total or false
  elseif ty == "status" then
    local st = s.status or 500
    if not whole(st) or st < 400 or st > 599 then
      return "status must be an HTTP error status, a whole number from 400 to 599 (e.g. 429, 500, 503)"
    end
    f.status = st
    f.code = CODES[st] or (st >= 500 and "ServerError") or "InvalidRequest"
    if s.retry_after ~= nil then
      if not whole(s.retry_after) or s.retry_after < 0 or s.retry_after > MAX_RETRY_AFTER then
        return "retry_after must be a whole number of seconds from 0 to " .. MAX_RETRY_AFTER
      end
      f.retry_after = s.retry_after
    end
    if st == 429 and not f.retry_after then f.retry_after = 1 end
  elseif ty == "limit" then
    -- the call limit in the style config.limit says (api.lua, limit_fail);
    -- retry_after is the 429 style's Retry-After (the auth style has none)
    local ra = s.retry_after == nil and 1 or s.retry_after
    if not whole(ra) or ra < 0 or ra > MAX_RETRY_AFTER then
      return "retry_after must be a whole number of seconds from 0 to " .. MAX_RETRY_AFTER
    end
    f.retry_after = ra
    -- the header's text as a lying server or proxy sends it ("nan", "inf",
    -- "1e300", an HTTP date), for the clients' checks of what they read
    local text = s.retry_after_text
    if text ~= nil then
      if s.retry_after ~= nil then return "retry_after or retry_after_text, not both" end
      if type(text) ~= "string" or #text < 1 or #text > 64 or text:find("[^\32-\126]") then
        return "retry_after_text must be 1 to 64 bytes of printable ASCII"
      end
      f.retry_after = text
    end
    if s.after_processing then return "a limit refuses a call before processing it: no after_processing" end
  elseif ty == "body" then
    if type(s.body) ~= "string" or #s.body > MAX_BODY then
      return "body must be the text of the reply, at most " .. MAX_BODY .. " bytes"
    end
    f.body = s.body
  elseif ty == "outcomes" then
    f.shape = s.shape or "empty"
    if not SHAPES[f.shape] then return "shape must be empty, none, short or camel" end
    if s.after_processing ~= nil then return "an outcomes fault always processes the call: no after_processing" end
  elseif ty == "refuse" then
    if type(s.match) ~= "string" or s.match == "" or #s.match > 256 then
      return "match must be the text (1 to 256 bytes) that makes a record refused"
    end
    if s.name ~= nil and type(s.name) ~= "boolean" then return "name must be true or false" end
    f.match, f.name = s.match, s.name ~= false
    if s.after_processing then return "a refusal comes before processing: no after_processing" end
  elseif ty == "drip" then
    f.ms, f.bytes = s.ms or 8, s.bytes or 1
    if not whole(f.ms) or f.ms < 1 or f.ms > MAX_DRIP_MS then
      return "ms must be a whole number of milliseconds from 1 to " .. MAX_DRIP_MS
    end
    if not whole(f.bytes) or f.bytes < 1 or f.bytes > MAX_BODY then
      return "bytes must be a whole number from 1 to " .. MAX_BODY
    end
  elseif ty == "large" then
    f.bytes = s.bytes
    if not whole(f.bytes) or f.bytes < 64 or f.bytes > MAX_LARGE then
      return "bytes must be a whole number from 64 to " .. MAX_LARGE
    end
    if s.length ~= nil and type(s.length) ~= "boolean" then return "length must be true or false" end
    f.length = s.length ~= false
  elseif ty:find("^webhook_") then
    f.webhook = true
    if s.event ~= nil then
      local t = type(s.event) == "string" and require("sbx.webhooks").TYPE_OF[lcase(s.event)]
      if not t then return "event must be an event type, e.g. \"sending_Bounce\" (webhooks: see sandbox/README.md)" end
      f.event = t
    end
    if ty == "webhook_reorder" then
      f.count, f.hold_ms = s.count or 2, s.hold_ms or 1000
      if not whole(f.count) or f.count < 2 or f.count > 1000 then return "count must be a whole number from 2 to 1000" end
      if not whole(f.hold_ms) or f.hold_ms < 0 or f.hold_ms > 60000 then
        return "hold_ms must be a whole number of milliseconds from 0 to 60000"
      end
    elseif ty == "webhook_late" then
      f.ms = s.ms or 1000
      if not whole(f.ms) or f.ms < 0 or f.ms > MAX_MS then
        return "ms must be a whole number of milliseconds from 0 to " .. MAX_MS
      end
    end
  end
end

-- The trigger members of spec into f, or an error.
local function trigger(f, s)
  if s.next ~= nil then
    if s.probability ~= nil then return "give next or probability, not both" end
    if not whole(s.next) or s.next < 1 or s.next > util.INT_MAX then return "next must be a positive whole number" end
    f.next = s.next
  else
    local p = s.probability == nil and 1 or s.probability
    if not finite(p) or p < 0 or p > 1 then return "probability must be a number from 0 to 1" end
    f.probability = p
  end
  if s.method ~= nil then
    if type(s.method) ~= "string" or s.method == "" then return "method must be a string like \"contacts.merge\"" end
    f.method = lcase(s.method)
  end
  if s.after_processing ~= nil and type(s.after_processing) ~= "boolean" then
    return "after_processing must be true or false"
  end
  f.after = s.after_processing or false
end

-- check(spec) -> fault | nil, err: the fault spec describes, not added
-- yet.  spec is checked as a typed deserializer would: JSON types as
-- documented (no "5" for 5), values in range, no member it does not know;
-- null counts as absent.
function M.check(spec)
  if type(spec) ~= "table" or json.isnull(spec) or spec[1] ~= nil then return nil, "a fault must be an object" end
  local s = {}
  for k, v in pairs(spec) do
    if type(k) ~= "string" then return nil, "a fault must be an object" end
    if not json.isnull(v) then s[lcase(k)] = v end
  end
  local ty = type(s.type) == "string" and lcase(s.type)
  if not TYPES[ty] then
    return nil, "type must be latency, status, limit, drop, truncate, malformed, body, outcomes, refuse, drip, large, "
      .. "webhook_duplicate, webhook_reorder, webhook_late, webhook_bad_signature or webhook_test"
  end
  local common = ty:find("^webhook_") and WEBHOOK_COMMON or COMMON
  for k in pairs(s) do
    if not common[k] and not MEMBERS[ty][k] then
      return nil, "unknown member '" .. k .. "' for a " .. ty .. " fault"
    end
  end
  local f = { type = ty, fired = 0 }
  local err = typed(f, s) or trigger(f, s)
  if err then return nil, err end
  return f
end

-- add(f): makes a checked fault live; returns it with its id.
function M.add(f)
  f.id = M.nextId
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

-- decide(key) -> nil | { latency = ms, total = ms, terminal = fault|nil, refuse = {faults}|nil,
-- desc = "..." }
-- latency is waited before the call is processed; total (the largest of the
-- "total" latencies) is the time from arrival to the answer, processing
-- included; refuse lists the refuse faults that apply (M.refusal).
function M.decide(key)
  local list = M.list
  local n = #list
  if n == 0 then return nil end
  local latency, total, terminal, desc, nd, refuse = 0, 0, nil, {}, 0, nil
  local rng = M.rng
  local i = 1
  while i <= #list do
    local f = list[i]
    local remove = false
    local additive = f.type == "latency" or f.type == "refuse"
    if not f.webhook and matches(f.method, key) and not (terminal and not additive) then
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
          if not f.total then
            latency = latency + ms
            desc[nd] = "latency:" .. floor(ms + 0.5)
          else
            if ms > total then total = ms end
            desc[nd] = "latency:" .. floor(ms + 0.5) .. ":total"
          end
        elseif f.type == "refuse" then
          refuse = refuse or {}
          refuse[#refuse + 1] = f
          desc[nd] = "refuse"
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
  return { latency = latency, total = total, terminal = terminal, refuse = refuse,
           desc = concat(desc, "+") }
end

-- webhook(event_type, fault_type) -> the first fault of that type that
-- fires for a delivery of an event of that type (its next counted down,
-- its probability drawn), or nil.  webhooks.lua asks once per event and
-- fault type.
function M.webhook(evtype, ftype)
  local list = M.list
  for i = 1, #list do
    local f = list[i]
    if f.type == ftype and (not f.event or f.event == evtype) then
      local fire
      if f.next then
        fire = true
        f.next = f.next - 1
        if f.next <= 0 then table.remove(list, i) end
      else
        fire = f.probability >= 1 or M.rng:float() < f.probability
      end
      if fire then
        f.fired = f.fired + 1
        return f
      end
    end
  end
  return nil
end

-- The path of the first string under v (values and member names) that
-- holds text, or nil.
local function holding(v, path, text)
  if type(v) == "string" then return v:find(text, 1, true) and path or nil end
  if type(v) ~= "table" or json.isnull(v) then return nil end
  for k, x in pairs(v) do
    local here = type(k) == "number" and (path .. "[" .. k .. "]") or (path .. "." .. tostring(k))
    local p = holding(x, here, text)
    if p then return p end
  end
  return nil
end

-- refusal(records, list) -> nil | message: a whole Merge call refused,
-- before processing, because record k holds a refuse fault's match; the
-- message names the record (Records[k], counted from 1, as the NUL check
-- does) unless the fault says name = false.
function M.refusal(records, list)
  if type(records) ~= "table" or json.isnull(records) then return nil end
  for _, f in ipairs(list) do
    for k = 1, #records do
      local where = holding(records[k], "Records[" .. k .. "]", f.match)
      if where then
        if not f.name then return "A record of the call is refused (injected fault)" end
        return where .. " is refused (injected fault: it holds '" .. f.match .. "')"
      end
    end
  end
  return nil
end

local CAMEL = { Records = "records", IdRecord = "idRecord", Status = "status",
  ValidationResult = "validationResult", Message = "message", CreatedRecords = "createdRecords",
  UpdatedRecords = "updatedRecords" }

-- rewrite(fields, shape) -> the members of a processed Merge's reply as an
-- outcomes fault makes them: every record {} (empty), no Records (none),
-- one record fewer than sent (short), or its member names camelCase
-- (camel; the envelope's too: api.lua).
function M.rewrite(fields, shape)
  local out = {}
  for i = 1, #fields, 2 do
    local k, v = fields[i], fields[i + 1]
    if k == "Records" and shape == "none" then
      k = nil
    elseif k == "Records" and shape == "empty" then
      local empty = {}
      for j = 1, #v do empty[j] = json.obj {} end
      v = json.arr(empty)
    elseif k == "Records" and shape == "short" then
      local fewer = {}
      for j = 1, #v - 1 do fewer[j] = v[j] end
      v = json.arr(fewer)
    elseif shape == "camel" then
      if k == "Records" then
        local recs = {}
        for j, r in ipairs(v) do
          local o = {}
          for m = 1, #r, 2 do o[m], o[m + 1] = CAMEL[r[m]] or r[m], r[m + 1] end
          recs[j] = json.obj(o)
        end
        v = json.arr(recs)
      end
      k = CAMEL[k] or k
    end
    if k then
      out[#out + 1] = k
      out[#out + 1] = v
    end
  end
  return out
end

return M
