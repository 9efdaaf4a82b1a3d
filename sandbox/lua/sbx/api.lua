-- The OFC4 front door: routing, envelope, authentication, scope, rate limit,
-- faults and the request log. Everything on the per-request path is built once
-- at load time (routing tables, trace templates); a request allocates only its
-- own data.
local json = require "sbx.json"
local util = require "sbx.util"
local state = require "sbx.state"
local contacts = require "sbx.contacts"
local projects = require "sbx.projects"
local tables = require "sbx.tables"
local mail = require "sbx.mail"
local faults = require "sbx.faults"
local log = require "sbx.log"

local ngx = ngx
local var, req_body, get_body, get_body_file = ngx.var, ngx.req.read_body, ngx.req.get_body_data, ngx.req.get_body_file
local ngx_print, ngx_exit, ngx_flush, ngx_sleep, ngx_now = ngx.print, ngx.exit, ngx.flush, ngx.sleep, ngx.now
local header = ngx.header
local decode, obj, NULL, isnull = json.decode, json.obj, json.null, json.isnull
local encode_parts, concat = json.encode_parts, table.concat
local lcase, norm, int, clock = util.lcase, util.norm, util.int, util.clock
local find, lower = string.find, string.lower
local type, pairs, pcall, tostring, match, sub, ceil, min =
  type, pairs, pcall, tostring, string.match, string.sub, math.ceil, math.min

local M = {}

M.config = require "sbx.config"

-- Routing -----------------------------------------------------------------------
-- scope: "project" (idProject), "table" (idTable) or "none" (AuthKey only)
local SERVICES = {
  contacts = { "Contacts", {
    merge = { "Merge", contacts.merge, "project" },
    get = { "Get", contacts.get, "project" },
    delete = { "Delete", contacts.delete, "project" } } },
  projects = { "Projects", {
    list = { "List", projects.list, "none" },
    get = { "Get", projects.get, "project" } } },
  relationaltables = { "RelationalTables", {
    merge = { "Merge", tables.merge, "table" },
    get = { "Get", tables.get, "table" },
    delete = { "Delete", tables.delete, "table" } } },
  sendings = { "Sendings", {
    sendsingle = { "SendSingle", mail.send_single, "project" },
    sendsingle2 = { "SendSingle2", mail.send_single2, "project" },
    sendbatch = { "SendBatch", mail.send_batch, "project" },
    getbatches = { "GetBatches", mail.get_batches, "project" } } },
  messages = { "Messages", {
    create = { "Create", mail.message_create, "project" },
    get = { "Get", mail.message_get, "project" } } },
  segments = { "Segments", {
    list = { "List", projects.segments_list, "project" },
    getcontacts = { "GetContacts", projects.segments_contacts, "project" },
    merge = { "Merge", projects.segments_merge, "project" } } },
  campaigns = { "Campaigns", {
    create = { "Create", mail.campaign_create, "project" },
    trigger = { "Trigger", mail.campaign_trigger, "project" },
    getstatistics = { "GetStatistics", mail.campaign_stats, "project" } } },
  reports = { "Reports", {
    getclicks = { "GetClicks", mail.report_clicks, "project" },
    getopens = { "GetOpens", mail.report_opens, "project" },
    getcontacthistory = { "GetContactHistory", mail.contact_history, "project" } } },
  -- the sandbox's own service, which Dialog Insight does not have: how a
  -- client tells the sandbox from a real account (docs/wire.md, "The
  -- sandbox's own method"); off with POST /_sandbox/config {"identify":false}
  sandbox = { "Sandbox", {
    identify = { "Identify", function() return { "Sandbox", true, "Name", "dialoginsight OFC4 sandbox" } end,
                 "none" } } },
}
M.SERVICES = SERVICES

-- each method gets its canonical name, its log key and its trace lines once
for sname, s in pairs(SERVICES) do
  for mname, m in pairs(s[2]) do
    m.service, m.method = sname, mname
    m.key = sname .. "." .. mname
    m.canon = s[1] .. "." .. m[1]
  end
end

-- uri (lower-cased) -> service name, cached
local svc_cache, svc_count = {}, 0
local function service_of(uri)
  local s = svc_cache[uri]
  if s ~= nil then return s end
  s = match(lcase(uri), "^/webservices/ofc4/([%w_]+)%.ashx$") or false
  if svc_count < 1000 then svc_count = svc_count + 1; svc_cache[uri] = s end
  return s
end

-- Envelope -------------------------------------------------------------------------

local next_request = 100000

local TRACE_OK = "Beginning request %d at %s\r\nTargeted service: %s\r\nAuthenticated key %s\r\n" ..
  "Executing method\r\nExecuting method completed with success\r\n"
local TRACE_FAIL = "Beginning request %d at %s\r\nTargeted service: %s\r\n" ..
  "Executing method failed: %s: %s\r\n"

-- The Trace templates are kept JSON-escaped, so a response never pays for
-- escaping its CRLFs (the variable parts are numbers and known names), and
-- cut at their %d and %s: a Trace is sent as its pieces (json.encode_parts
-- says why no long string is made per reply).
local function jtemplate(t)
  local pieces = {}
  for piece in (json.quote(t) .. "%s"):gmatch("(.-)%%[ds]") do pieces[#pieces + 1] = piece end
  return pieces
end
local TRACE_OK_J, TRACE_FAIL_J = jtemplate(TRACE_OK), jtemplate(TRACE_FAIL)

-- The Traces, filled: the pieces of the template between the values.
local raw_pieces = json.raw_pieces
local function trace_ok(id, time, canon, keyid)
  local t = TRACE_OK_J
  return raw_pieces { t[1], tostring(id), t[2], time, t[3], canon, t[4], tostring(keyid), t[5] }
end
local function trace_fail(id, time, canon, code, msg)
  local t = TRACE_FAIL_J
  return raw_pieces { t[1], tostring(id), t[2], time, t[3], canon, t[4], code, t[5], msg, t[6] }
end

local HTTP_OF = { InvalidRequest = 400, InvalidAuthKey = 401, AccessDenied = 200, UnknownMethod = 404,
  InvalidParameter = 200, TooManyRequests = 429, ServerError = 500 }
M.HTTP_OF = HTTP_OF

local BOM = "\239\187\191"
local CT = "application/json; charset=utf-8"

-- A reply body as one string (a fault that cuts or breaks it).
local function flat(body)
  return type(body) == "table" and concat(body) or body
end

-- Sends a body: a string, or pieces (json.encode_parts).
local function send(status, body, retry_after)
  local len = 0
  if type(body) == "table" then
    for i = 1, #body do len = len + #body[i] end
  else
    len = #body
  end
  if M.config.bom then
    if type(body) == "table" then table.insert(body, 1, BOM) else body = BOM .. body end
    len = len + #BOM
  end
  ngx.status = status
  header["Content-Type"] = CT
  header["Content-Length"] = len
  if retry_after then header["Retry-After"] = tostring(retry_after) end
  ngx_print(body)
end

-- camel: the envelope's member names camelCase (an outcomes fault, faults.lua)
local function ok_body(id, canon, keyid, fields, camel)
  local o = camel and { "success", true, "errorCode", NULL, "errorMessage", NULL }
    or { "Success", true, "ErrorCode", NULL, "ErrorMessage", NULL }
  local n = 6
  for i = 1, #fields do n = n + 1; o[n] = fields[i] end
  o[n + 1] = "idRequest"; o[n + 2] = id
  o[n + 3] = camel and "trace" or "Trace"; o[n + 4] = trace_ok(id, ngx.localtime(), canon, keyid)
  return encode_parts(obj(o))
end

local function err_body(id, canon, code, msg)
  return encode_parts(obj { "Success", false, "ErrorCode", code or NULL, "ErrorMessage", msg, "idRequest", id,
    "Trace", trace_fail(id, ngx.localtime(), json.quote(canon):sub(2, -2),
      code or "AuthenticationFailed", json.quote(msg):sub(2, -2)) })
end
M.err_body = err_body

-- Rate limit (GCRA per idKey) ---------------------------------------------------------

M.ratelimit = { rate = 0, burst = 0, tat = {} }

local function rate_check(keyid)
  local rl = M.ratelimit
  if rl.rate <= 0 then return nil end
  local now = ngx_now()
  local interval = 1 / rl.rate
  local burst = rl.burst > 0 and rl.burst or 1
  local tat = rl.tat[keyid] or now
  if tat < now then tat = now end
  local allowed_at = tat - (burst - 1) * interval
  if now + 1e-9 < allowed_at then
    local wait = allowed_at - now
    return ceil(wait) < 1 and 1 or ceil(wait)
  end
  rl.tat[keyid] = tat + interval
  return nil
end

-- Request handling --------------------------------------------------------------------

local function read_body()
  req_body()
  local body = get_body()
  if body then return body end
  local file = get_body_file()
  if file then
    local f = io.open(file, "rb")
    if f then body = f:read("*a"); f:close(); return body end
  end
  return nil
end

local function fail(status, id, canon, code, msg, ra)
  return status, err_body(id, canon, code, msg), ra, code
end

-- The call limit, as config.limit says: a 429 with Retry-After (the
-- sandbox's choice), or "auth", the authentication error the help
-- describes ("the number of calls allowed has been exceeded"), in
-- config.limit_status, with config.limit_code (false: null) and no
-- Retry-After (docs/wire.md, "Limits").  -> status, body, retry_after, code
local function limit_fail(id, canon, wait)
  local c = M.config
  if c.limit == "auth" then
    return fail(c.limit_status, id, canon, c.limit_code or nil, c.LIMIT_MESSAGE)
  end
  return fail(429, id, canon, "TooManyRequests", "Too many calls for this key; retry after " .. wait .. "s", wait)
end
M.limit_fail = limit_fail

-- process(entry, route, svc, mname, f) -> status, body, retry_after, ErrorCode
-- f: the faults that fired (faults.decide): a refusal of a Merge holding
-- their match, an outcomes fault's rewrite of its reply.
local function process(e, route, svc, mname, f)
  local id = next_request + 1
  next_request = id
  e.idRequest = id
  local canon = route and route.canon or ((svc or "?") .. "." .. (mname or "?"))
  if not route then
    return fail(404, id, canon, "UnknownMethod", "Unknown service or method: " .. canon)
  end
  if ngx.req.get_method() ~= "POST" then
    return fail(400, id, canon, "InvalidRequest", "Use POST with a JSON body")
  end
  local body = read_body()
  if not body or body == "" then
    return fail(400, id, canon, "InvalidRequest", "The request body is empty; a JSON object is expected")
  end
  if sub(body, 1, 3) == BOM then body = sub(body, 4) end
  local parsed, jerr = decode(body)
  -- cjson decodes [] and {} alike: the first character tells an object
  if type(parsed) ~= "table" or isnull(parsed) or parsed[1] ~= nil or not find(body, "^%s*{") then
    return fail(400, id, canon, "InvalidRequest", "The request body is not a JSON object" ..
      (jerr and (": " .. jerr) or ""))
  end
  local req = {}
  for k, v in pairs(parsed) do
    if type(k) == "string" then req[lcase(k)] = v end
  end
  local merging = route.method == "merge"
    and (route.service == "contacts" or route.service == "relationaltables")
  if merging then
    local r = req.records
    if type(r) == "table" then e.records = #r end
    -- cjson reads [] and {} alike; the real service's typed deserializer
    -- refuses an object where its Records list goes, so look at the text
    if type(r) == "table" and next(r) == nil and find(lower(body), '"records"%s*:%s*{') then
      req.records = "{}"
    end
  end
  -- authentication
  local auth = norm(req.authkey)
  local S = state.S
  local key
  if auth then
    local kid = int(auth.idkey)
    key = kid and S.keys[kid]
    if key and auth.key ~= key.secret then key = nil end
  end
  if not key then
    return fail(401, id, canon, "InvalidAuthKey", "Invalid or missing AuthKey (idKey/Key)")
  end
  e.key = key.id
  local wait = rate_check(key.id)
  if wait then return limit_fail(id, canon, wait) end
  -- scope
  local scope = route[3]
  local target
  if scope == "project" then
    if isnull(req.idproject) then return fail(200, id, canon, "InvalidParameter", "idProject is required") end
    local pid = int(req.idproject)
    if not pid then return fail(200, id, canon, "InvalidParameter", "idProject must be an integer") end
    target = S.projects[pid]
    if not target or not key.projects[pid] then
      return fail(200, id, canon, "AccessDenied", "This key may not access project " .. pid)
    end
  elseif scope == "table" then
    if isnull(req.idtable) then return fail(200, id, canon, "InvalidParameter", "idTable is required") end
    local tid = int(req.idtable)
    if not tid then return fail(200, id, canon, "InvalidParameter", "idTable must be an integer") end
    target = S.tables[tid]
    if not target or not key.tables[tid] then
      return fail(200, id, canon, "AccessDenied", "This key may not access relational table " .. tid)
    end
  end
  -- text, wherever it is: a typed service reads the body as UTF-8 and
  -- refuses what is not, and no text of the API may hold a NUL (only the
  -- \u0000 escape can make one: a raw NUL is not JSON)
  local bad = util.utf8_error(body)
  if bad then
    return fail(200, id, canon, "InvalidParameter", "The request holds invalid UTF-8 at byte " .. bad
      .. "; text must be UTF-8")
  end
  if find(body, "\\u0000", 1, true) then
    local where = util.nul_path(parsed, "")
    if where then
      return fail(200, id, canon, "InvalidParameter", where .. " holds a NUL character (\\u0000), which text may not")
    end
  end
  if merging and f and f.refuse then
    local why = faults.refusal(req.records, f.refuse)
    if why then return fail(200, id, canon, "InvalidParameter", why) end
  end
  local ctx = { key = key, entry = e }
  local ok, fields, code, msg = pcall(route[2], ctx, req, target)
  if not ok then
    ngx.log(ngx.ERR, "sandbox handler error in ", canon, ": ", tostring(fields))
    return fail(500, id, canon, "ServerError", "Internal server error")
  end
  if not fields then
    return fail(HTTP_OF[code] or 200, id, canon, code, msg)
  end
  local term = f and f.terminal
  if merging and term and term.type == "outcomes" then
    return 200, ok_body(id, canon, key.id, faults.rewrite(fields, term.shape), term.shape == "camel")
  end
  return 200, ok_body(id, canon, key.id, fields)
end

local MALFORMED = "<html><head><title>Runtime Error</title></head><body>{\"Success\": tru</body></html>"

local function injected_body(e, route, term, after)
  local id = e.idRequest
  if not id then id = next_request + 1; next_request = id; e.idRequest = id end
  e.status, e.code = term.status, term.code
  return err_body(id, route and route.canon or "?", term.code,
    "Injected fault: HTTP " .. term.status .. (after and " after processing" or ""))
end

local function drop(e)
  e.status = 444
  log.commit(e)
  return ngx_exit(444)
end

-- full Content-Length, half the body, then the connection is closed
local function truncate(e, status, body)
  log.commit(e)
  body = flat(body)
  if M.config.bom then body = BOM .. body end
  ngx.status = status
  header["Content-Type"] = CT
  header["Content-Length"] = #body
  ngx_print(sub(body, 1, math.floor(#body / 2)))
  ngx_flush(true)
  return ngx_exit(444)
end

-- the reply sent in pieces of f.bytes, f.ms apart: a server that drips
local function drip(e, f, status, body)
  log.commit(e)
  body = flat(body)
  ngx.status = status
  header["Content-Type"] = CT
  header["Content-Length"] = #body
  for i = 1, #body, f.bytes do
    ngx_print(sub(body, i, i + f.bytes - 1))
    local ok = ngx_flush(true)
    if not ok then return ngx_exit(444) end
    ngx_sleep(f.ms / 1000)
  end
end

-- a 200 envelope of f.bytes bytes (its Records empty, padded with spaces),
-- with its Content-Length or without (chunked), sent until the client
-- stops reading
local function large(e, f)
  e.status = 200
  log.commit(e)
  req_body() -- (read, or HTTP/2 resets a stream that ends without a length)
  local head = '{"Success":true,"ErrorCode":null,"ErrorMessage":null,"Records":[],"idRequest":'
    .. (e.idRequest or 0)
  local tail = "}"
  ngx.status = 200
  header["Content-Type"] = CT
  if f.length then header["Content-Length"] = f.bytes end
  ngx_print(head)
  local left = f.bytes - #head - #tail
  local piece = string.rep(" ", 1048576)
  while left > 0 do
    ngx_print(left >= #piece and piece or sub(piece, 1, left))
    left = left - #piece
    if not ngx_flush(true) then return ngx_exit(444) end
  end
  ngx_print(tail)
end

-- respond(e, route, svc, mname, f) -> how the call is answered, as a
-- function and its arguments (send, drop or truncate), so that handle holds
-- every answer in one place for a latency counted from arrival
local function respond(e, route, svc, mname, f)
  local term
  if f then
    e.fault = f.desc
    if f.latency > 0 then ngx_sleep(f.latency / 1000) end
    term = f.terminal
    -- faults that hit before the call is processed
    if term and not term.after and term.type ~= "truncate" and term.type ~= "outcomes" and term.type ~= "drip" then
      local ty = term.type
      if ty == "drop" then return drop, e end
      if ty == "large" then return large, e, term end
      if ty == "malformed" or ty == "body" then
        e.status = 200
        log.commit(e)
        return send, 200, ty == "body" and term.body or MALFORMED
      end
      if ty == "limit" then
        local id = next_request + 1
        next_request = id
        e.idRequest = id
        local status, body, ra, code = limit_fail(id, route and route.canon or "?", term.retry_after)
        e.status, e.code = status, code
        log.commit(e)
        return send, status, body, ra
      end
      local body = injected_body(e, route, term, false)
      log.commit(e)
      return send, term.status, body, term.retry_after
    end
  end

  local status, body, ra, code = process(e, route, svc, mname, f)
  e.status, e.code = status, code

  if term and term.type ~= "outcomes" then -- faults that hit after the call was processed
    local ty = term.type
    if ty == "status" then
      body = injected_body(e, route, term, true)
      log.commit(e)
      return send, term.status, body, term.retry_after
    elseif ty == "drop" then
      return drop, e
    elseif ty == "malformed" then
      log.commit(e)
      body = flat(body)
      return send, 200, sub(body, 1, #body - 3) .. ",,}"
    elseif ty == "body" then
      e.status = 200
      log.commit(e)
      return send, 200, term.body
    elseif ty == "truncate" then
      return truncate, e, status, body
    elseif ty == "drip" then
      return drip, e, term, status, body
    elseif ty == "large" then
      return large, e, term
    end
  end
  log.commit(e)
  return send, status, body, ra
end

function M.handle()
  local svc = service_of(var.uri)
  local mname = var.arg_method
  mname = mname and lcase(mname) or ""
  local s = svc and SERVICES[svc]
  if svc == "sandbox" and not M.config.identify then s = nil end
  local route = s and s[2][mname]
  local e = log.new_entry(route and route.service or (svc or "?"), route and route.method or mname)

  local f = faults.decide(route and route.key or ((svc or "?") .. "." .. mname))
  local entered = f and f.total > 0 and clock()
  local answer, a, b, c, d = respond(e, route, svc, mname, f)
  if entered then
    -- a service's response time: the reply leaves total ms after the
    -- request arrived, however long processing took, and never sooner.
    -- The handler's start stands for the arrival: nginx's own time of it
    -- (ngx.req.start_time) is cut to the millisecond and may be older
    -- still, when the worker was busy before it read the request.
    -- ngx.sleep counts whole milliseconds, so the wait is rounded up; and
    -- a clock set back meanwhile never makes it longer than total.
    local left = min(entered + f.total / 1000 - clock(), f.total / 1000)
    if left > 0 then ngx_sleep(ceil(left * 1000) / 1000) end
  end
  return answer(a, b, c, d)
end

return M
