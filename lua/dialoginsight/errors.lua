--- Error objects: every runtime failure of the library is one of these,
-- returned as the second value of `nil, err`.
--
-- Fields: kind, message, status, code, request_id, service, method,
-- retryable, attempts, outcome, retry_after, field (validation).
-- kind is one of: network, timeout, tls, http, auth, rate_limited, api,
-- validation, decode, protocol, rejected, too_large.
-- @module dialoginsight.errors
-- @usage local r, err = client.contacts:merge{ EMail = "ann@example.com" }
-- if not r then
--   print("failed: " .. err)            -- or tostring(err); in nginx: ngx.say(tostring(err))
--   if err.kind == "rate_limited" then ... end
-- end
local M = {}

--- An error object: a table of these fields, which reads as text where Lua
-- code expects a string (`tostring(err)`, and `"failed: " .. err` through
-- __concat).  Fields are absent when they do not apply.
-- @table Error
-- @field kind network, timeout, tls, http, auth, rate_limited, api, validation, decode,
-- rejected (the server refused the one record of a merge), protocol (replies that
-- contradict each other) or too_large (a reply over max_reply_bytes, not read further)
-- @field message what happened, readable; the key never appears in it
-- @field status the HTTP status, when a reply came
-- @field code the envelope's ErrorCode (or the record's, for rejected)
-- @field request_id the envelope's idRequest, to quote to Dialog Insight's support
-- @field service the call's service
-- @field method the call's method
-- @field retryable whether the policy could retry it
-- @field attempts how many attempts were made
-- @field outcome "unknown" when a non-idempotent call (a send) may have been carried out
-- @field retry_after for rate_limited: the seconds to wait before calling again, as the library
-- itself waits them: the server's Retry-After (seconds or an HTTP date) clamped to the retry
-- policy's max_retry_after, or the limiter's hold; always a finite number >= 0
-- @field retry_after_raw for a limit reply with a Retry-After header: its text as sent (at most
-- 64 bytes), never to be used as a number unchecked
-- @field field for validation and rejected: the field at fault
-- @field problems for validation: every problem of the input,
-- { { record =, field =, message = }, ... }
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

-- "failed: " .. err works as with a string error (LuaSocket and liolib
-- return strings): either side may be the error.
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
}

--- Makes an error object from a table of fields (kind and message needed).
-- @tparam table fields the fields of `Error`
-- @treturn Error fields, now an error object
function M.new(fields)
  assert(M.KINDS[fields.kind], "unknown error kind")
  return setmetatable(fields, mt)
end

--- A function that replaces every occurrence of key in a string with
-- `"<redacted>"` (other values pass through): what the call path applies to
-- anything the server echoes before it goes into an error or a trace.
-- @tparam string key
-- @treturn function redact(s)
function M.redactor(key)
  return function(s)
    if type(s) ~= "string" or type(key) ~= "string" or #key < 4 then return s end
    local i, j = s:find(key, 1, true)
    while i do
      s = s:sub(1, i - 1) .. "<redacted>" .. s:sub(j + 1)
      i, j = s:find(key, i + 10, true)
    end
    return s
  end
end

--- What a bad value is, for a message that refuses it: a number as itself
-- (it cannot be the key, which is a string), anything else by its type and
-- length only.  A key pasted into the wrong variable (DI_KEY_ID, DI_PROJECT,
-- a config-file line, an option) must not come back in the message.
-- @param v any value
-- @treturn string "12", "a string of 36 bytes", "a table"
function M.describe(v)
  if type(v) == "number" then return tostring(v) end
  if type(v) == "string" then return "a string of " .. #v .. (#v == 1 and " byte" or " bytes") end
  return "a " .. type(v)
end

--- True for an error object of this library.
-- @param v any value
-- @treturn boolean
function M.is_error(v)
  return getmetatable(v) == mt
end

return M
