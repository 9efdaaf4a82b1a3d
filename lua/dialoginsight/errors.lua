--- Error objects: every runtime failure of the library is one of these,
-- returned as the second value of `nil, err`.
--
-- Fields: kind, message, status, code, request_id, service, method,
-- retryable, attempts, outcome, retry_after, field (validation).
-- kind is one of: network, timeout, tls, http, auth, rate_limited, api,
-- validation, decode, protocol, rejected.
local M = {}

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

M.KINDS = {
  network = true, timeout = true, tls = true, http = true, auth = true,
  rate_limited = true, api = true, validation = true, decode = true,
  protocol = true, -- replies that contradict each other (resources/pager.lua)
  rejected = true, -- the server refused the one record of a merge (resources/base.lua)
}

--- Makes an error object from a table of fields (kind and message needed).
function M.new(fields)
  assert(M.KINDS[fields.kind], "unknown error kind")
  return setmetatable(fields, mt)
end

--- A function that replaces every occurrence of key in a string with
-- "<redacted>" (other values pass through): what the call path applies to
-- anything the server echoes before it goes into an error or a trace.
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
function M.describe(v)
  if type(v) == "number" then return tostring(v) end
  if type(v) == "string" then return "a string of " .. #v .. (#v == 1 and " byte" or " bytes") end
  return "a " .. type(v)
end

--- True for an error object of this library.
function M.is_error(v)
  return getmetatable(v) == mt
end

return M
