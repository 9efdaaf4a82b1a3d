--- POST /subscribe: a newsletter form.  Accepts form-urlencoded or JSON:
--   email (required), first_name, newsletter (opt-in: 1/true/on/yes)
-- merges the contact, with the Newsletter opt-in, through the library, and
-- answers JSON: 200 { ok, outcome = "created"|"updated", id }, or a 4xx with
-- { error = "..." } for bad input, 502/503 when Dialog Insight fails.
local di = require "dialoginsight"
local app = require "di_example.app"

local M = {}

local MAX_BODY = 16 * 1024

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
    local args, err = ngx.req.get_post_args(50)
    if not args then return nil, 400, "cannot read the form: " .. tostring(err) end
    return args
  end
  return nil, 415, "send the form as application/x-www-form-urlencoded or application/json"
end

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
  if type(email) ~= "string" or #email > 100 or not email:match(EMAIL) then
    return bad(422, "email is not a valid address", { field = "email" })
  end
  local name = first(input, "first_name", "FirstName", "firstname")
  if type(name) == "table" then name = name[#name] end
  if name ~= nil and (type(name) ~= "string" or #name > 100) then
    return bad(422, "first_name must be text of at most 100 characters", { field = "first_name" })
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
    ngx.log(ngx.ERR, "subscribe: ", tostring(err)) -- error objects never hold the key
    local headers
    local code = 502
    if err.kind == "rate_limited" then
      code, headers = 503, { ["Retry-After"] = tostring(math.ceil(err.retry_after or 1)) }
    end
    return app.json(code, { ok = false, error = "the subscription could not be saved, try again later",
                            cause = app.public_error(err) }, headers)
  end
  if r.outcome == "rejected" then
    return bad(422, "Dialog Insight refused the contact: " .. tostring(r.reason), { field = r.field })
  end
  return app.json(200, { ok = true, outcome = r.outcome, id = r.id, newsletter = optin })
end

return M
