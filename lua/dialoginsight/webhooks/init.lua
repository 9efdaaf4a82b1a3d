--- Events that Dialog Insight pushes (webhooks): verify a delivery's signature, read it
-- into an event table, and (dialoginsight.webhooks.receiver) store it before it is
-- acknowledged, then hand it to a handler at least once (docs/webhooks.md).
-- @module dialoginsight.webhooks
-- @usage local webhooks = require "dialoginsight.webhooks"
-- local ok, err = webhooks.verify(body, headers, { secret = os.getenv("DI_WEBHOOK_SECRET") })
-- local event, err = webhooks.parse(body, headers, { secret = secret, project = 1001 })
-- -- event.type == "contact_optout", event.id, event.contact, event.fields.EMail
local core = require "dialoginsight.core"
local errors = require "dialoginsight.errors"
local options = require "dialoginsight.options"
local fields = require "dialoginsight.records.fields"

local M = {}

--- The signature scheme we assume (docs/wire.md: the real one is not public), each part a
-- setting: the header, the HMAC's digest, its encoding, and text before it ("sha256=").
-- @table SCHEME
M.SCHEME = { header = "X-DI-Signature", algorithm = "sha256", encoding = "hex", prefix = "" }

--- The largest body read, in bytes (1 MiB): a contact's event is a few KiB.
M.MAX_BYTES = 1048576

local function one_of(list)
  local set = {}
  for _, v in ipairs(list) do set[v] = true end
  return function(v)
    if not set[v] then return "must be one of \"" .. table.concat(list, "\", \"") .. "\"" end
  end
end

local function text(max)
  return function(v)
    if type(v) ~= "string" or #v > max or v:find("%c") then
      return "must be text of at most " .. max .. " bytes without control characters"
    end
  end
end

--- The options of verify and parse (the receiver takes these and its own).
M.OPTIONS = options.set {
  secret = function(v)
    if type(v) ~= "string" or v == "" then return "must be a non-empty string" end
  end,
  verify = function(v)
    if v ~= false and v ~= true and type(v) ~= "function" then
      return "must be true, false (no check: say it on purpose) or a function(body, headers)"
    end
  end,
  header = function(v)
    if type(v) ~= "string" or not v:match("^[%w%-_]+$") or #v > 64 then
      return "must be a header name (letters, digits, - and _)"
    end
  end,
  algorithm = one_of { "sha256", "sha1", "sha512" },
  encoding = one_of { "hex", "base64" },
  prefix = text(32),
  max_bytes = function(v)
    if options.count(v) or v > 64 * 1048576 then return "must be a whole number of bytes from 1 to 64 MiB" end
  end,
  project = options.count,
}

-- A typed error: kind, message, and status, the HTTP status a receiver answers.
local function refuse(kind, status, message, extra)
  local e = { kind = kind, status = status, message = message, service = "webhooks" }
  for k, v in pairs(extra or {}) do e[k] = v end
  return nil, errors.new(e)
end
M.refuse = refuse

-- The value of header name in headers (any case); nil, or "many" when it is repeated.
local function header_of(headers, name)
  local want = name:lower()
  local found
  for k, v in pairs(headers or {}) do
    if type(k) == "string" and k:lower() == want then
      if found ~= nil or type(v) == "table" then return nil, "many" end
      found = v
    end
  end
  return found
end
M.header_of = header_of

-- Header names that look like a signature (for a message when ours is absent: the
-- assumed scheme is then contradicted, and the user must see what was sent instead).
local function signature_like(headers)
  local names = {}
  for k in pairs(headers or {}) do
    if type(k) == "string" and #k <= 64 and k:match("^[%w%-_]+$")
        and (k:lower():find("sig", 1, true) or k:lower():find("hmac", 1, true)
             or k:lower():find("hash", 1, true) or k:lower():find("token", 1, true)) then
      names[#names + 1] = k
    end
  end
  table.sort(names)
  return names
end

local function scheme_of(opts)
  local s = {}
  for k, v in pairs(M.SCHEME) do s[k] = opts[k] == nil and v or opts[k] end
  return s
end

--- The signature header of body, as Dialog Insight would send it: name, value.
-- @tparam string body the raw body
-- @tparam table opts secret, and header, algorithm, encoding, prefix (SCHEME)
function M.sign(body, opts)
  options.check(opts, M.OPTIONS, "webhooks.sign")
  if type(body) ~= "string" then error("webhooks.sign: body must be a string", 2) end
  if opts.secret == nil then error("webhooks.sign: option 'secret' is missing", 2) end
  local s = scheme_of(opts)
  return s.header, s.prefix .. core.hmac(s.algorithm, opts.secret, body, s.encoding)
end

-- verify, its options checked: true, or nil, err (kind signature, status 401).
local function check_signature(body, headers, opts)
  if opts.verify == false then return true end
  if type(opts.verify) == "function" then
    local ok, why = opts.verify(body, headers)
    if ok then return true end
    return refuse("signature", 401, "the delivery's signature was refused: " .. tostring(why or "by opts.verify"))
  end
  if opts.secret == nil then
    error("dialoginsight: webhooks: option 'secret' is missing: give the secret of the "
      .. "webhook (DI_WEBHOOK_SECRET), or verify = false to take unsigned deliveries on purpose", 0)
  end
  local s = scheme_of(opts)
  local given, many = header_of(headers, s.header)
  if many then return refuse("signature", 401, "the " .. s.header .. " header is repeated") end
  if type(given) ~= "string" then
    local seen = signature_like(headers)
    return refuse("signature", 401, "no " .. s.header .. " header"
      .. (#seen > 0 and (" (the delivery has " .. table.concat(seen, ", ")
        .. ": set the header option if Dialog Insight signs there; docs/webhooks.md)") or ""),
      { headers = seen })
  end
  if given:sub(1, #s.prefix) ~= s.prefix then
    return refuse("signature", 401, "the " .. s.header .. " header does not start with '" .. s.prefix .. "'")
  end
  given = given:sub(#s.prefix + 1)
  if s.encoding == "hex" then given = given:lower() end
  if not core.equal(given, core.hmac(s.algorithm, opts.secret, body, s.encoding)) then
    return refuse("signature", 401, "the " .. s.header .. " signature does not match the body "
      .. "(another secret, or a body changed on the way: sign the raw bytes, never a re-encoding)")
  end
  return true
end

--- Checks a delivery's signature against its raw body.
-- @tparam string body the raw body, as received (never a re-encoding of it)
-- @tparam table headers the request's headers (any case), as ngx.req.get_headers() gives them
-- @tparam table opts secret, or verify = false (no check) or verify = function(body, headers);
-- header, algorithm, encoding, prefix (SCHEME)
-- @return true, or nil and an error of kind "signature" (status 401)
function M.verify(body, headers, opts)
  options.check(opts, M.OPTIONS, "webhooks.verify")
  if type(body) ~= "string" then error("webhooks.verify: body must be a string", 2) end
  return check_signature(body, headers, opts or {})
end

-- The members every delivery has, and the event's name for each; the others are the
-- project's fields (f_EMail or EMail: both read as fields.EMail).
local MEMBERS = {
  Type = "type", EventUniqueID = "id", dtExecution = "executed", idCompany = "company",
  idProject = "project", idSendLog = "send_log", idMessage = "message", dtProcessed = "processed",
  isTest = "test",
}

local function whole(v)
  return type(v) == "number" and v == math.floor(v) and v >= 0 and v < 2 ^ 53
end

local TRUTH = { [true] = true, [false] = false, ["true"] = true, ["false"] = false, [1] = true, [0] = false }

-- The event of a decoded body t, or nil, err (status 400 or 403).
local function event_of(t, opts)
  local e = { fields = {}, raw = t }
  for k, v in pairs(t) do
    local name = MEMBERS[k]
    if name then e[name] = v elseif k ~= "ContactID" then e.fields[k] = v end
  end
  if type(e.id) == "number" and whole(e.id) then e.id = string.format("%d", e.id) end
  if type(e.id) ~= "string" or e.id == "" or #e.id > 200 or e.id:find("%c") then
    return refuse("validation", 400, "the delivery has no EventUniqueID (text of 1 to 200 bytes)",
      { field = "EventUniqueID" })
  end
  if type(e.type) ~= "string" or e.type == "" or #e.type > 100 or e.type:find("%c") then
    return refuse("validation", 400, "the delivery has no Type (text of 1 to 100 bytes)", { field = "Type" })
  end
  if e.test == nil then e.test = false end
  if TRUTH[e.test] == nil then
    return refuse("validation", 400, "isTest must be true or false", { field = "isTest" })
  end
  e.test = TRUTH[e.test]
  for _, k in ipairs { "project", "company", "send_log", "message" } do
    if e[k] ~= nil and not whole(e[k]) then
      local wire
      for w, n in pairs(MEMBERS) do if n == k then wire = w end end
      return refuse("validation", 400, wire .. " must be a whole number", { field = wire })
    end
  end
  local cid = t.ContactID
  if cid ~= nil then
    local id = type(cid) == "table" and cid.idContact
    if not whole(id) then
      return refuse("validation", 400, "ContactID.idContact must be a whole number", { field = "ContactID" })
    end
    e.contact = id
  end
  if opts.project and e.project ~= opts.project then
    return refuse("project", 403, "the event is of project " .. tostring(e.project)
      .. ", not of " .. opts.project .. " (check the webhook's project in Dialog Insight)")
  end
  local friendly = fields.from_wire(e.fields)
  if friendly then
    friendly.optin = next(friendly.optin) and friendly.optin or nil
    e.fields = friendly
  end
  return e
end

--- Reads a delivery: checks its size and signature, decodes it, and returns its event.
-- @tparam string body the raw body
-- @tparam table headers the request's headers
-- @tparam table opts as verify's, and max_bytes (MAX_BYTES), project (refuse another's)
-- @return an event { type, id (EventUniqueID), test, project, company, contact (idContact),
-- executed, send_log, message, processed, fields (the project's, friendly names), raw }, or
-- nil and an error of kind too_large (413), signature (401), decode or validation (400),
-- project (403)
function M.parse(body, headers, opts)
  options.check(opts, M.OPTIONS, "webhooks.parse")
  opts = opts or {}
  if type(body) ~= "string" then error("webhooks.parse: body must be a string", 2) end
  local max = opts.max_bytes or M.MAX_BYTES
  if #body > max then
    return refuse("too_large", 413, "the body is " .. #body .. " bytes, over max_bytes (" .. max .. ")",
      { limit = max })
  end
  local ok, err = check_signature(body, headers, opts)
  if not ok then return nil, err end
  return M.read(body, opts)
end

--- The event of a body already checked (size, signature): what the runner reads from the store.
-- @tparam string body the raw body
-- @tparam[opt] table opts project (refuse another's)
-- @return the event, or nil and an error (decode, validation, project)
function M.read(body, opts)
  local t, why = core.decode(body)
  if type(t) ~= "table" or t[1] ~= nil or next(t) == nil and body:match("^%s*%[") then
    return refuse("decode", 400, "the body is not a JSON object" .. (why and (": " .. why) or ""))
  end
  return event_of(t, opts or {})
end

return M
