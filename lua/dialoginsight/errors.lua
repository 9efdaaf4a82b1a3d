--- Error objects: every runtime failure of the library, as the `err` of `nil, err`.
-- @module dialoginsight.errors
-- @usage local r, err = client.contacts:merge{ EMail = "ann@example.com" }
-- if not r then print("failed: " .. err) end   -- or tostring(err)
local M = {}

--- An error object: a table of these fields (absent when they do not apply) that
-- reads as text, in `tostring(err)` and in a concatenation.
-- @table Error
-- @field kind network, timeout, tls, http, auth, rate_limited, api, validation, decode, rejected
-- (the server refused a merge's one record), protocol (replies that contradict each other), too_large,
-- and for webhook deliveries signature, project, store
-- @field message what happened, readable; the key never appears in it
-- @field status the HTTP status, when a reply came (for a webhook delivery: the status to answer)
-- @field code the envelope's ErrorCode (or the record's, for rejected)
-- @field request_id the envelope's idRequest, to quote to Dialog Insight's support
-- @field service the call's service
-- @field method the call's method
-- @field retryable whether the policy could retry it
-- @field attempts how many attempts were made
-- @field outcome "unknown" when a non-idempotent call (a send) may have been carried out
-- @field retry_after for rate_limited: the seconds to wait (Retry-After clamped to max_retry_after,
-- or the limiter's hold), a finite number >= 0
-- @field retry_after_raw the Retry-After header as sent (at most 64 bytes): not a checked number
-- @field field for validation and rejected: the field at fault
-- @field problems for validation: every problem, { { record =, field =, message = }, ... }
-- @field sent for network, timeout and tls: false when no byte of the request left the host
-- @field deadline when the call's deadline passed: its seconds
-- @field last when the call's deadline passed: the last attempt's error, if any
-- @field limit for too_large: the max_reply_bytes it went over
-- @field before when a read the call needed first failed (the project's fields
-- before contacts:merge): what it was; service and method are that read's

local mt = {}
mt.__index = mt
mt.__name = "dialoginsight.error"

local function where(e)
  if e.service and e.method then return e.service .. "." .. e.method end
  return nil
end

mt.__tostring = function(e)
  local parts = { "dialoginsight" }
  local w = where(e)
  if w then parts[#parts + 1] = w end
  local head = table.concat(parts, " ")
  if e.before then head = "dialoginsight: " .. e.before .. (w and (" (" .. w .. ")") or "") .. " failed" end
  local what = e.kind
  if e.code then what = what .. " " .. e.code end
  local s = head .. ": " .. what .. ": " .. tostring(e.message or "failed")
  local extra = {}
  if e.status then extra[#extra + 1] = "HTTP " .. e.status end
  if e.request_id then extra[#extra + 1] = "request " .. e.request_id end
  if e.attempts and e.attempts > 1 then
    extra[#extra + 1] = e.attempts .. " attempts"
  end
  if e.outcome == "unknown" then
    extra[#extra + 1] = "outcome unknown: the server may have acted"
  end
  if #extra > 0 then s = s .. " (" .. table.concat(extra, ", ") .. ")" end
  return s
end

mt.__concat = function(a, b)
  return tostring(a) .. tostring(b)
end

--- Every kind of error, as keys.
-- @table KINDS
M.KINDS = {
  network = true, timeout = true, tls = true, http = true, auth = true,
  rate_limited = true, api = true, validation = true, decode = true,
  protocol = true, -- replies a paged iteration cannot trust (resources/pager.lua, docs/paging.md)
  rejected = true, -- the server refused the one record of a merge (resources/base.lua)
  too_large = true, -- a reply over max_reply_bytes (config.lua), not read further
  -- a webhook delivery refused (webhooks/init.lua); status is the HTTP status to answer
  signature = true, -- its signature is absent or wrong
  project = true,   -- it is another project's event
  store = true,     -- the event store failed (busy, full disk): answer 503, Dialog Insight sends it again
}

-- The spans of s (lower-cased as ls) that hold the key lk: the whole key, and any 16
-- bytes of it (an echo cut short is still most of the secret), in any case.
local function key_spans(ls, lk)
  local spans = {}
  local function mark(piece)
    local i, j = ls:find(piece, 1, true)
    while i do
      spans[#spans + 1] = { i, j }
      i, j = ls:find(piece, j + 1, true)
    end
  end
  if #lk < 16 then mark(lk) end
  for k = 1, #lk - 15 do mark(lk:sub(k, k + 15)) end
  return spans
end

-- s with the spans of the keys ks (lower-cased) replaced by "<redacted>".
local function redact(s, ks)
  if type(s) ~= "string" then return s end
  local ls, spans = s:lower(), {}
  for _, lk in ipairs(ks) do
    if #lk >= 4 then
      for _, sp in ipairs(key_spans(ls, lk)) do spans[#spans + 1] = sp end
    end
  end
  if #spans == 0 then return s end
  table.sort(spans, function(a, b) return a[1] < b[1] end)
  local parts, from = {}, 1
  for _, sp in ipairs(spans) do
    if sp[1] >= from then
      parts[#parts + 1] = s:sub(from, sp[1] - 1)
      parts[#parts + 1] = "<redacted>"
    end
    if sp[2] + 1 > from then from = sp[2] + 1 end
  end
  parts[#parts + 1] = s:sub(from)
  return table.concat(parts)
end

-- The keys of the live clients (weak: a collected client's key goes with it): every
-- error object's message and every name a message quotes is kept clear of them,
-- whatever layer wrote it (a key given as a field name reaches records/).
local KEYS = setmetatable({}, { __mode = "k" })

local function live_keys()
  local ks = {}
  for _, k in pairs(KEYS) do ks[#ks + 1] = k:lower() end
  return ks
end

--- Registers the key of owner (a client): error messages and quoted names are kept clear of it.
function M.protect(owner, key)
  if type(key) == "string" and #key >= 4 then KEYS[owner] = key end
end

--- Whether s holds a live client's key, or 16 bytes of one, in any case.
function M.holds_secret(s)
  if type(s) ~= "string" then return false end
  local ls = s:lower()
  for _, lk in ipairs(live_keys()) do
    if #key_spans(ls, lk) > 0 then return true end
  end
  return false
end

--- Whether a holds the key k, in any case; for a key of 16 bytes or more, any 16 bytes of it.
function M.holds(a, k)
  local la, lk = a:lower(), k:lower()
  if #lk < 8 then return la == lk end -- a short key would match too much: only itself
  return #key_spans(la, lk) > 0
end

--- Makes an error object from a table of fields (kind and message needed).
-- @tparam table fields the fields of `Error`, made the error object
function M.new(fields)
  assert(M.KINDS[fields.kind], "unknown error kind")
  if next(KEYS) ~= nil then fields.message = redact(fields.message, live_keys()) end
  return setmetatable(fields, mt)
end

--- A function that replaces the key in a string with `"<redacted>"` (and any 16 bytes
-- of it, in any case), for what the server echoes before it goes into an error or a trace.
-- @treturn function redact(s)
function M.redactor(key)
  local ks = { type(key) == "string" and key:lower() or "" }
  return function(s) return redact(s, ks) end
end

--- What a bad value is, for a message that refuses it: a number as itself, anything
-- else by type and length only, so that a key set in the wrong place never shows.
-- @treturn string "12", "a string of 36 bytes", "a table"
function M.describe(v)
  if type(v) == "number" then return tostring(v) end
  if type(v) == "string" then return "a string of " .. #v .. (#v == 1 and " byte" or " bytes") end
  return "a " .. type(v)
end

-- Where a raised table cannot be read, its text is raised (docs/conventions.md): PUC-Rio
-- Lua 5.1 ignores __tostring there (LuaJIT does not); nginx logs "unknown reason".
local PUC51 = _VERSION == "Lua 5.1" and jit == nil

local function text_only()
  if PUC51 then return true end
  local ngx = rawget(_G, "ngx")
  return type(ngx) == "table" and type(ngx.get_phase) == "function"
end

--- Raises the error object err (iterators, `di.assert`); under PUC-Rio Lua 5.1 and in nginx, its text.
function M.raise(err)
  if text_only() then error(tostring(err), 0) end
  error(err, 0)
end

local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

--- The candidate closest to name (case-insensitive), when close enough to be a misspelling, else nil.
function M.closest(name, candidates)
  local best, bestd = nil, math.max(2, math.floor(#name / 3)) + 1
  local lname
  for _, c in ipairs(candidates) do
    -- the distance is at least the difference in length: a 1 MB name costs nothing
    if math.abs(#name - #c) < bestd then
      lname = lname or name:lower()
      local d = distance(lname, c:lower())
      if d < bestd then best, bestd = c, d end
    end
  end
  return best
end

--- True for an error object of this library.
function M.is_error(v)
  return getmetatable(v) == mt
end

return M
