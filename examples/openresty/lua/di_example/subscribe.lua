--- POST /subscribe: a newsletter form.  Accepts form-urlencoded or JSON:
--   email (required), first_name, newsletter (opt-in: 1/true/on/yes)
-- merges the contact, with the Newsletter opt-in, through the library, and
-- answers JSON: 200 { ok, outcome = "created"|"updated", id }, or a 4xx with
-- { error = "..." } for bad input, 502/503 when Dialog Insight fails.
local di = require "dialoginsight"
local app = require "di_example.app"

local M = {}

local MAX_BODY = 16 * 1024
local MAX_FIELDS = 20   -- form fields read; a form with more is refused, not cut
local MAX_CHARS = 100   -- a short text field of the project (records/fields.lua)

local function bad(status, message, extra, headers)
  local t = { ok = false, error = message }
  for k, v in pairs(extra or {}) do t[k] = v end
  return app.json(status, t, headers)
end

local TRUE = { ["1"] = true, ["true"] = true, on = true, yes = true }
local FALSE = { ["0"] = true, ["false"] = true, off = true, no = true, [""] = true }

local function boolean(v)
  if v == nil then return false end
  if type(v) == "boolean" then return v end
  if type(v) == "number" then return v ~= 0 end
  if type(v) == "table" then v = v[#v] end -- a repeated form field: the last one
  v = tostring(v):lower()
  if TRUE[v] then return true end
  if FALSE[v] then return false end
  return nil
end

local function first(t, ...)
  for i = 1, select("#", ...) do
    local v = t[select(i, ...)]
    if v ~= nil then return v end
  end
  return nil
end

-- The submitted fields, or nil, status, message.
local function read_input()
  local ctype = (ngx.var.content_type or ""):lower()
  ngx.req.read_body()
  local raw = ngx.req.get_body_data()
  if raw == nil and ngx.req.get_body_file() then
    return nil, 413, "the body is too large"
  end
  if raw and #raw > MAX_BODY then return nil, 413, "the body is too large" end
  if ctype:find("application/json", 1, true) then
    local v = raw and di.decode(raw)
    if type(v) ~= "table" then
      return nil, 400, "the body is not a valid JSON object"
    end
    return v
  elseif ctype:find("application/x-www-form-urlencoded", 1, true) or ctype == "" then
    -- get_post_args drops the fields past its limit and says "truncated":
    -- the dropped ones could be the very ones read below
    local args, err = ngx.req.get_post_args(MAX_FIELDS)
    if err == "truncated" then
      return nil, 413, "the form has more than " .. MAX_FIELDS .. " fields"
    end
    if not args then return nil, 400, "cannot read the form: " .. tostring(err) end
    return args
  end
  return nil, 415, "send the form as application/x-www-form-urlencoded or application/json"
end

-- The number of characters of UTF-8 text s, or nil when s is not UTF-8
-- (LuaJIT has no utf8 library; the limits are in characters, not bytes).
local function utf8_chars(s)
  local n, i, len = 0, 1, #s
  while i <= len do
    local c = s:byte(i)
    local size = c < 0x80 and 1 or c >= 0xF0 and c <= 0xF4 and 4 or c >= 0xE0 and 3
      or c >= 0xC2 and c <= 0xDF and 2 or nil
    if not size or i + size - 1 > len then return nil end
    for k = i + 1, i + size - 1 do
      local b = s:byte(k)
      if b < 0x80 or b > 0xBF then return nil end
    end
    n, i = n + 1, i + size
  end
  return n
end
M.utf8_chars = utf8_chars

local EMAIL = "^[%w%.!#$%%&'*+/=?^_`{|}~-]+@[%w-]+%.[%w%.-]*[%w]$"

function M.handle()
  if ngx.req.get_method() ~= "POST" then
    return bad(405, "use POST to subscribe", nil, { Allow = "POST" })
  end
  local input, status, message = read_input()
  if not input then return bad(status, message) end

  local email = first(input, "email", "EMail", "Email")
  if type(email) == "table" then email = email[#email] end
  if email == nil or email == "" then
    return bad(422, "email is required", { field = "email" })
  end
  if type(email) ~= "string" or #email > MAX_CHARS or not email:match(EMAIL) then
    return bad(422, "email is not a valid address", { field = "email" })
  end
  local name = first(input, "first_name", "FirstName", "firstname")
  if type(name) == "table" then name = name[#name] end
  local chars = type(name) == "string" and utf8_chars(name)
  if name ~= nil and not (chars and chars <= MAX_CHARS) then
    return bad(422, "first_name must be UTF-8 text of at most " .. MAX_CHARS .. " characters",
      { field = "first_name" })
  end
  -- Dialog Insight refuses a whole request that holds a NUL (a 502 here)
  if type(name) == "string" and name:find("\0", 1, true) then
    return bad(422, "first_name must not hold a NUL character", { field = "first_name" })
  end
  local optin = boolean(first(input, "newsletter", "optin", "Newsletter"))
  if optin == nil then
    return bad(422, "newsletter must be true or false", { field = "newsletter" })
  end

  local contact = { EMail = email:lower(), optin = { Newsletter = optin } }
  if name and name ~= "" then contact.FirstName = name end
  local client = app.client()
  local r, err = client.contacts:merge(contact)
  if not r then
    if err.kind == "validation" then
      return bad(422, err.message, { field = err.field })
    end
    if err.kind == "rejected" then -- the server refused the contact itself
      return bad(422, "Dialog Insight refused the contact: " .. tostring(err.message),
        { field = err.field })
    end
    ngx.log(ngx.ERR, "subscribe: ", tostring(err)) -- error objects never hold the key
    local headers
    local code = 502
    if err.kind == "rate_limited" then
      -- err.retry_after is the library's own bounded wait (a finite number of
      -- seconds); Retry-After takes a whole number
      code, headers = 503, { ["Retry-After"] = string.format("%d", math.ceil(err.retry_after or 1)) }
    elseif err.kind == "timeout" then
      code = 504 -- including the client's deadline (app.lua), which bounds the wait
    end
    return app.json(code, { ok = false, error = "the subscription could not be saved, try again later",
                            cause = app.public_error(err) }, headers)
  end
  return app.json(200, { ok = true, outcome = r.outcome, id = r.id, newsletter = optin })
end

return M
