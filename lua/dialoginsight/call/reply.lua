--- A transport's reply (docs/transport.md) read without I/O: the decoded
-- response of a successful call, or a typed error (errors.lua).
local core = require "dialoginsight.core"
local errors = require "dialoginsight.errors"

local M = {}

--- The longest Retry-After read, in seconds (a day; the retry policy clamps it further).
M.MAX_RETRY_AFTER = 86400

local MONTHS = { jan = 1, feb = 2, mar = 3, apr = 4, may = 5, jun = 6, jul = 7, aug = 8,
                 sep = 9, oct = 10, nov = 11, dec = 12 }

-- Seconds since the epoch of a UTC date (os.time reads local time).
local function utc(y, mo, d, h, mi, s)
  y = mo <= 2 and y - 1 or y
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * (mo + (mo > 2 and -3 or 9)) + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return ((era * 146097 + doe - 719468) * 24 + h) * 3600 + mi * 60 + s
end

--- The seconds a Retry-After asks for (delay-seconds, or an IMF-fixdate less now), read alike for
-- both transports: a number from 0 to MAX_RETRY_AFTER, or nil for anything else ("nan", "inf", garbage).
function M.retry_after(v, now)
  local n
  if type(v) == "number" then
    n = v
  elseif type(v) == "string" then
    local digits = v:match("^%s*(%d+%.?%d*)%s*$")
    if digits then
      n = tonumber(digits)
    else
      local d, mon, y, h, mi, s = v:match(
        "^%s*%a%a%a, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT%s*$")
      local mo = mon and MONTHS[mon:lower()]
      if not mo then return nil end
      n = utc(tonumber(y), mo, tonumber(d), tonumber(h), tonumber(mi), tonumber(s))
        - (now or os.time())
    end
  end
  if type(n) ~= "number" or n ~= n then return nil end
  return math.max(0, math.min(n, M.MAX_RETRY_AFTER))
end

local AUTH_CODES = { InvalidAuthKey = true, AccessDenied = true }

--- The call limit, when the service reports it as an auth error (docs/wire.md, "Limits"): Lua patterns
-- for the lower-cased ErrorMessage, in English and French; the limit_messages setting adds to them.
M.LIMIT_MESSAGES = {
  "number of calls allowed has been exceeded",
  "number of calls .*exceeded",
  "call limit .*exceeded",
  "too many calls",
  "too many requests",
  "nombre d.appels .*d\195\169pass",       -- « le nombre d'appels permis a été dépassé »
  "nombre d.appels .*depass",
  "limite d.appels .*atteinte",
  "trop d.appels",
}

--- The patterns of a client: M.LIMIT_MESSAGES and the extra ones.
function M.limits(extra)
  local list = {}
  for i, p in ipairs(M.LIMIT_MESSAGES) do list[i] = p end
  for _, p in ipairs(extra or {}) do list[#list + 1] = p:lower() end
  return list
end

local DEFAULT_LIMITS = M.limits()

local function is_limit(message, limits)
  if type(message) ~= "string" then return false end
  message = message:lower()
  for _, p in ipairs(limits) do
    if message:find(p) then return true end
  end
  return false
end

local function kind_of(status, code, message, limits)
  if status == 429 or code == "TooManyRequests" or is_limit(message, limits) then
    return "rate_limited"
  end
  if status == 401 or status == 403 or AUTH_CODES[code] then return "auth" end
  if status == 200 then return "api" end
  return "http"
end

--- The member of a response that the registry entry names as its result
-- (registry.lua: `result`), or nil, err (kind decode) when it is absent.
function M.result(entry, resp)
  local v = entry.result and resp[entry.result]
  if v == nil then
    return nil, errors.new {
      kind = "decode", service = entry.service, method = entry.method,
      request_id = resp.idRequest, message = "the reply has no " .. tostring(entry.result),
    }
  end
  return v
end

--- A member of a reply object, matched as the service matches names: exactly, else case-insensitively.
-- nil when two other spellings are there and none exact: a table walk's order would decide, so no two readers could agree.
function M.member(t, name)
  local v = t[name]
  if v ~= nil then return v end
  local lname, found, n = name:lower(), nil, 0
  for k, x in pairs(t) do
    if type(k) == "string" and k:lower() == lname then found, n = x, n + 1 end
  end
  if n == 1 then return found end
  return nil
end
local member = M.member

--- The response table of an HTTP exchange of entry's method, or nil, err (redact hides the key in what the server echoes).
-- A 200 is a success only with Success true, a refusal only with Success false; else decode, its records not read as refused.
function M.interpret(entry, status, body, retry_after, redact, limits, decode)
  local resp, why = (decode or core.decode)(body)
  local is_table = type(resp) == "table"
  local success = is_table and resp.Success -- (member's first look, without the call)
  if success == true and status == 200 then return resp end -- (the common case)
  if is_table and success == nil then success = member(resp, "Success") end
  if status == 200 then
    if type(resp) ~= "table" or type(success) ~= "boolean" then
      return nil, errors.new {
        kind = "decode", service = entry.service, method = entry.method, status = status,
        -- redact before cutting, so no prefix of the key can survive the cut
        message = type(resp) ~= "table" and ("reply is not a JSON object: " .. (why
          and redact(tostring(why)) or redact(body):sub(1, 60)))
          or "the reply says neither Success true nor false",
      }
    end
    if success then return resp end
  end
  resp = type(resp) == "table" and resp or {}
  local code = member(resp, "ErrorCode")
  code = type(code) == "string" and code or nil
  local message = member(resp, "ErrorMessage")
  local kind = kind_of(status, code, message, limits or DEFAULT_LIMITS)
  if type(message) ~= "string" then
    message = status == 200 and "the call failed (Success is false)"
      or ("HTTP " .. status .. " from the server")
  end
  -- idRequest and ErrorCode are checked: an off-envelope reply must give an error
  -- that tostring() can print and that does not echo the key
  local rid = member(resp, "idRequest")
  if type(rid) ~= "string" and type(rid) ~= "number" then rid = nil end
  -- the header as sent: cut short and redacted (a server's text); retry_after: what it asks, bounded
  local raw = type(retry_after) == "string" and redact(retry_after:sub(1, 64)) or nil
  return nil, errors.new {
    kind = kind, status = status, code = redact(code),
    message = redact(message), request_id = redact(rid),
    service = entry.service, method = entry.method,
    retry_after = M.retry_after(retry_after), retry_after_raw = raw,
  }
end

-- What to do about a certificate that did not verify, unless the
-- transport's message says it already (transport/ngx.lua names nginx's own).
local TLS_HINT = " (to trust the CA that signed the server's certificate, set ca_file "
  .. "in di.new{} or DI_CA_FILE; tls_verify stays on)"

--- The error of a transfer that got no HTTP reply (r.kind, r.message, r.sent).
function M.failure(entry, r, redact)
  local message = redact(r.message)
  if r.kind == "tls" and type(message) == "string" and not message:find("ca_file", 1, true) then
    message = message .. TLS_HINT
  end
  return errors.new {
    kind = r.kind, message = message, sent = r.sent, limit = r.limit,
    service = entry.service, method = entry.method,
  }
end

return M
