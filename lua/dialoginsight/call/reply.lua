--- A transport's reply (docs/transport.md) read without I/O: the decoded
-- response of a successful call, or a typed error (errors.lua).
local core = require "dialoginsight.core"
local errors = require "dialoginsight.errors"

local M = {}

local AUTH_CODES = { InvalidAuthKey = true, AccessDenied = true }

local function kind_of(status, code)
  if status == 401 or status == 403 or AUTH_CODES[code] then return "auth" end
  if status == 429 or code == "TooManyRequests" then return "rate_limited" end
  if status == 200 then return "api" end
  return "http"
end

--- The response table of an HTTP exchange of entry's method, or nil, err.
-- redact(s) hides the key in anything the server echoes.
function M.interpret(entry, status, body, retry_after, redact)
  local resp, why = core.decode(body)
  if status == 200 then
    if type(resp) ~= "table" then
      return nil, errors.new {
        kind = "decode", service = entry.service, method = entry.method, status = status,
        -- redact before cutting, so no prefix of the key can survive the cut
        message = "reply is not a JSON object: " .. (why and redact(tostring(why))
          or redact(body):sub(1, 60)),
      }
    end
    if resp.Success == true then return resp end
  end
  resp = type(resp) == "table" and resp or {}
  local code = type(resp.ErrorCode) == "string" and resp.ErrorCode or nil
  local message = resp.ErrorMessage
  if type(message) ~= "string" then
    message = status == 200 and "the call failed (Success is not true)"
      or ("HTTP " .. status .. " from the server")
  end
  -- idRequest and ErrorCode come from the server as they are: a reply that
  -- is not the documented envelope must not give an error object that
  -- tostring() cannot print (found by fuzz/fuzz_decode), nor echo the key.
  local rid = resp.idRequest
  if type(rid) ~= "string" and type(rid) ~= "number" then rid = nil end
  return nil, errors.new {
    kind = kind_of(status, code), status = status, code = redact(code),
    message = redact(message), request_id = redact(rid),
    service = entry.service, method = entry.method, retry_after = retry_after,
  }
end

--- The error of a transfer that got no HTTP reply (r.kind, r.message, r.sent).
function M.failure(entry, r, redact)
  return errors.new {
    kind = r.kind, message = redact(r.message), sent = r.sent,
    service = entry.service, method = entry.method,
  }
end

--- Reads one transport reply r of entry's method: resp, or nil, err.
function M.read(entry, r, redact)
  if r.status then return M.interpret(entry, r.status, r.body, r.retry_after, redact) end
  return nil, M.failure(entry, r, redact)
end

return M
