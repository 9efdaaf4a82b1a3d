-- The control API under /_sandbox/ (loopback clients only). JSON in, compact
-- JSON out. Documented in sandbox/README.md.
local json = require "sbx.json"
local util = require "sbx.util"
local state = require "sbx.state"
local contacts = require "sbx.contacts"
local faults = require "sbx.faults"
local log = require "sbx.log"
local api = require "sbx.api"
local config = require "sbx.config"
local webhooks = require "sbx.webhooks"

local ngx = ngx
local obj, NULL, isnull = json.obj, json.null, json.isnull
local lower, type, tonumber, pairs, ipairs, next = string.lower, type, tonumber, pairs, ipairs, next

local M = {}

local function reply(status, value)
  local body = json.encode(value, true)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json; charset=utf-8"
  ngx.header["Content-Length"] = #body + 1
  ngx.header["Cache-Control"] = "no-store"
  ngx.print(body, "\n")
end

local function bad(msg) return reply(400, obj { "ok", false, "error", msg }) end

-- The body as a JSON object with lower-cased member names, each of them
-- one of `allowed` (a typo would otherwise pass unseen, as would a member
-- of another endpoint), null members dropped; plus the raw text.  An empty
-- body is {}.  Or nil, why.
local function body_json(allowed)
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then
    local file = ngx.req.get_body_file()
    if file then local f = io.open(file, "rb"); if f then body = f:read("*a"); f:close() end end
  end
  if not body or body:match("^%s*$") then return {}, "" end
  local v, err = json.decode(body)
  if type(v) ~= "table" or isnull(v) or v[1] ~= nil or not body:find("^%s*{") then
    return nil, "body is not a JSON object" .. (err and (": " .. tostring(err)) or "")
  end
  local out = {}
  for k, x in pairs(v) do
    local lk = type(k) == "string" and lower(k)
    if not lk or not allowed[lk] then return nil, "unknown member '" .. tostring(k) .. "'" end
    if not isnull(x) then out[lk] = x end
  end
  return out, body
end

local function whole(v) return type(v) == "number" and v == math.floor(v) and v > -math.huge and v < math.huge end
local function number(v) return type(v) == "number" and v == v and v > -math.huge and v < math.huge end

local function project_arg(args)
  local pid = tonumber(args.project) or state.DEFAULT_PROJECT
  return state.S.projects[pid], pid
end

local function count(t) local n = 0 for _ in pairs(t) do n = n + 1 end return n end

local function entry_json(e)
  return obj { "seq", e.seq, "service", e.service, "method", e.method, "status", e.status or NULL,
    "code", e.code or NULL, "connection", e.connection or NULL,
    "connection_requests", e.connection_requests or NULL, "http_version", e.http_version or NULL,
    "ssl_session_reused", e.ssl_session_reused, "records", e.records or NULL, "fault", e.fault or NULL,
    "key", e.key or NULL, "idRequest", e.idRequest or NULL }
end

local function fault_json(f)
  return obj { "id", f.id, "type", f.type, "ms", f.ms or NULL, "jitter_ms", f.jitter_ms or NULL,
    "status", f.status or NULL, "retry_after", f.retry_after or NULL,
    "probability", f.probability or NULL, "next", f.next or NULL, "method", f.method or NULL,
    "after_processing", f.after, "body", f.body or NULL, "shape", f.shape or NULL,
    "match", f.match or NULL, "name", f.name == nil and NULL or f.name, "bytes", f.bytes or NULL,
    "length", f.length == nil and NULL or f.length, "event", f.event or NULL, "count", f.count or NULL,
    "hold_ms", f.hold_ms or NULL, "fired", f.fired }
end

local function faults_list()
  local out = {}
  for i, f in ipairs(faults.list) do out[i] = fault_json(f) end
  return out
end

local function rl_json()
  return obj { "rate", api.ratelimit.rate, "burst", api.ratelimit.burst }
end

local function config_json(ok)
  local c = config
  local ms = c.merge_statuses
  local o = { "bom", c.bom, "total_records", c.total_records, "contacts_order", c.contacts_order,
    "clause", c.clause,
    "paging", c.paging, "page_size", c.page_size, "limit", c.limit, "limit_status", c.limit_status,
    "limit_code", c.limit_code or NULL,
    "merge_statuses", obj { "Created", ms.Created, "Updated", ms.Updated, "Skipped", ms.Skipped },
    "identify", c.identify }
  if ok then table.insert(o, 1, "ok"); table.insert(o, 2, true) end
  return obj(o)
end

local H = {}

H["GET ping"] = function()
  return reply(200, obj { "ok", true, "service", "dialoginsight OFC4 sandbox" })
end

H["POST reset"] = function()
  local b, err = body_json { seed = true, contacts = true }
  if not b then return bad(err) end
  local seed, n = b.seed, b.contacts
  if seed ~= nil and not (whole(seed) and util.int(seed)) then
    return bad("seed must be a whole number from -2147483648 to 2147483647")
  end
  if n ~= nil and not (whole(n) and n >= 0 and n <= 5000000) then
    return bad("contacts must be a whole number from 0 to 5000000")
  end
  ngx.update_time()
  local t0 = ngx.now()
  webhooks.reset(seed) -- first: the seeded sends queue nothing
  local S = state.reset({ seed = seed, contacts = n })
  faults.reset(S.seed)
  log.clear()
  api.ratelimit.rate, api.ratelimit.burst, api.ratelimit.tat = 0, 0, {}
  config.reset()
  ngx.update_time()
  return reply(200, obj { "ok", true, "seed", S.seed,
    "contacts", S.projects[state.DEFAULT_PROJECT].count,
    "ms", math.floor((ngx.now() - t0) * 1000 + 0.5), "memory_kb", math.floor(collectgarbage("count")) })
end

H["GET state"] = function(args)
  local S = state.S
  local mail = require "sbx.mail"
  local projects = {}
  for pid, P in pairs(S.projects) do
    mail.settle(P)
    local opens, clicks = 0, 0
    for _, b in ipairs(P.batches) do
      if b.oc then opens = opens + #b.oc; clicks = clicks + #b.cc end
    end
    projects[tostring(pid)] = obj { "name", P.name, "contacts", P.count, "segments", count(P.segments),
      "messages", count(P.messages), "campaigns", count(P.campaigns), "batches", #P.batches,
      "opens", opens, "clicks", clicks }
  end
  local tbl = {}
  for tid, T in pairs(S.tables) do
    local rows = NULL
    if args.contacts then
      rows = {}
      for k, r in pairs(T.rows) do rows[tostring(k)] = contacts.flat(T.layout, r) end
    end
    tbl[tostring(tid)] = obj { "name", T.name, "idProject", T.idProject, "rows", T.count, "records", rows }
  end
  local o = { "ok", true, "seed", S.seed, "projects", projects, "tables", tbl,
    "log", obj { "entries", #log.entries(), "last_seq", log.seq },
    "faults", #faults.list, "ratelimit", rl_json(), "config", config_json(false),
    "memory_kb", math.floor(collectgarbage("count")) }
  if args.contacts and args.contacts ~= "0" then
    local P = project_arg(args)
    if not P then return bad("unknown project") end
    local byEmail = {}
    for id = 1, P.maxId do
      local c = P.byId[id]
      if c then byEmail[c[P.emailSlot] or ("#" .. id)] = contacts.flat(P.layout, c) end
    end
    o[#o + 1] = "contacts"; o[#o + 1] = byEmail
  end
  return reply(200, obj(o))
end

H["GET contact"] = function(args)
  local P, pid = project_arg(args)
  if not P then return bad("unknown project " .. tostring(pid)) end
  local c
  if args.email then c = P.byEmail[lower(args.email)]
  elseif args.id then c = P.byId[tonumber(args.id)]
  else return bad("give ?email= or ?id=") end
  return reply(c and 200 or 404, obj { "ok", c ~= nil, "contact", c and contacts.flat(P.layout, c) or NULL })
end

-- Every send of a project (SendSingle, SendSingle2, SendBatch, Trigger, an
-- automated campaign's send) with its contacts and parameters: what
-- GetBatches does not show, for the specs (e.g. the abandoned cart).
H["GET batches"] = function(args)
  local P = project_arg(args)
  if not P then return bad("unknown project") end
  local since = tonumber(args.since) or 0
  require("sbx.mail").settle(P)
  local out = {}
  for _, b in ipairs(P.batches) do
    if b.id > since then
      out[#out + 1] = obj { "idBatch", b.id, "kind", b.kind, "idCampaign", b.idCampaign or NULL,
        "idMessage", b.idMessage, "dtLaunch", b.dtLaunch, "Status", b.status, "contacts", b.ids,
        "params", b.params or NULL }
    end
  end
  return reply(200, obj { "batches", out })
end

local function log_get(args)
  local since = tonumber(args.since)
  local out = {}
  for i, e in ipairs(log.entries(since)) do out[i] = entry_json(e) end
  return reply(200, obj { "entries", out, "last_seq", log.seq })
end
H["GET log"] = log_get
local function log_clear()
  log.clear()
  return reply(200, obj { "ok", true, "last_seq", log.seq })
end
H["DELETE log"] = log_clear
H["POST log/clear"] = log_clear

H["GET faults"] = function() return reply(200, obj { "faults", faults_list() }) end
H["DELETE faults"] = function()
  faults.clear()
  return reply(200, obj { "ok", true, "faults", {} })
end
H["POST faults"] = function()
  local b, raw = body_json { faults = true }
  if not b then return bad(raw) end
  -- a list, as a typed deserializer would insist: cjson reads {} and []
  -- alike, and an object's members would be skipped, its faults never added
  local list = b.faults
  if type(list) ~= "table" or (next(list) ~= nil and list[1] == nil) or raw:lower():find('"faults"%s*:%s*{') then
    return bad("expected {\"faults\":[{...}, ...]}: faults must be a list")
  end
  for k in pairs(list) do
    if type(k) ~= "number" then return bad("faults must be a list") end
  end
  -- all or nothing: every fault is checked before any is added
  local checked, added = {}, {}
  for i, spec in ipairs(list) do
    local f, e2 = faults.check(spec)
    if not f then return bad("faults[" .. (i - 1) .. "]: " .. e2) end
    checked[i] = f
  end
  for i, f in ipairs(checked) do added[i] = fault_json(faults.add(f)) end
  return reply(200, obj { "ok", true, "added", added, "faults", faults_list() })
end
H["POST faults/clear"] = H["DELETE faults"]

H["GET ratelimit"] = function() return reply(200, rl_json()) end
H["POST ratelimit"] = function()
  local b, err = body_json { rate = true, burst = true }
  if not b then return bad(err) end
  local rate, burst = b.rate, b.burst or 0
  if not number(rate) or rate < 0 then return bad("rate must be a number of calls per second, >= 0 (0: off)") end
  if not whole(burst) or burst < 0 then return bad("burst must be a whole number >= 0") end
  if burst == 0 and rate > 0 then burst = math.max(1, math.floor(rate)) end
  api.ratelimit.rate, api.ratelimit.burst, api.ratelimit.tat = rate, burst, {}
  return reply(200, obj { "ok", true, "rate", rate, "burst", burst })
end

-- The sandbox's own Merge status that name spells (any case), or nil.
local function status_of(name)
  for _, s in ipairs(config.STATUSES) do
    if type(name) == "string" and lower(name) == lower(s) then return s end
  end
end

-- The checks of each config switch: nil, or why the value is refused.
local function one_of(set, what)
  return function(v) if not set[v] then return what end end
end
local function flag(v) if type(v) ~= "boolean" then return "must be true or false" end end
local CONFIG = {
  bom = flag, identify = flag,
  total_records = one_of(config.TOTALS, 'must be true, false or "page"'),
  contacts_order = one_of(config.ORDERS, 'must be "idContact", "email" or "descending"'),
  clause = one_of(config.CLAUSES, 'must be "honoured" or "ignored"'),
  paging = one_of(config.PAGING, 'must be "honoured", "ignored" or "fixed"'),
  limit = one_of(config.LIMITS, 'must be "429" or "auth"'),
  page_size = function(v)
    if not (whole(v) and v >= 1 and v <= contacts.MAX_ROWS) then
      return "must be a whole number from 1 to " .. contacts.MAX_ROWS
    end
  end,
  limit_status = function(v)
    if not (whole(v) and v >= 200 and v <= 599) then return "must be an HTTP status, 200 to 599 (e.g. 200, 401, 403)" end
  end,
  limit_code = function(v)
    if v ~= false and not (type(v) == "string" and v:match("^[%w_]+$")) then
      return "must be an ErrorCode (letters, digits, _) or false for none"
    end
  end,
  merge_statuses = function(v, raw)
    if type(v) ~= "table" or v[1] ~= nil or raw:lower():find('"merge_statuses"%s*:%s*%[') then
      return "must be an object such as {\"Created\":\"Inserted\"}"
    end
    for k, name in pairs(v) do
      if not status_of(k) then return "names Created, Updated or Skipped, not " .. tostring(k) end
      if type(name) ~= "string" or not name:match("^[%w_]+$") then
        return "maps " .. k .. " to a Status name (letters, digits, _)"
      end
    end
  end,
}

H["GET config"] = function() return reply(200, config_json(false)) end
H["POST config"] = function()
  local b, raw = body_json(CONFIG)
  if not b then return bad(raw) end
  for k, v in pairs(b) do
    local why = CONFIG[k](v, raw)
    if why then return bad(k .. " " .. why) end
  end
  -- all checked: only now does anything change
  for k, v in pairs(b) do
    if k == "merge_statuses" then
      for name, to in pairs(v) do config.merge_statuses[status_of(name)] = to end
    else
      config[k] = v
    end
  end
  return reply(200, config_json(true))
end

-- Webhooks (webhooks.lua; sandbox/README.md, "Webhooks") ----------------------------

local function webhooks_json(args)
  local h = webhooks.hook
  local alerts, deliveries = {}, {}
  for i, a in ipairs(webhooks.alerts) do alerts[i] = obj { "at", a.at, "url", a.url, "reason", a.reason } end
  for i, d in ipairs(webhooks.delivery_list(tonumber(args and args.since))) do
    deliveries[i] = webhooks.delivery_json(d)
  end
  return obj { "ok", true, "webhooks", h and { webhooks.config_json(h) } or json.arr {}, "alerts", json.arr(alerts),
    "deliveries", json.arr(deliveries), "pending", webhooks.pending(), "sent", webhooks.sent,
    "dropped", webhooks.dropped, "last_seq", webhooks.dseq }
end

H["GET webhooks"] = function(args) return reply(200, webhooks_json(args)) end

H["POST webhooks"] = function()
  local b, raw = body_json { url = true, secret = true, events = true, project = true, signature = true,
    fields = true, timeout_ms = true, retry_ms = true, max_failures = true }
  if not b then return bad(raw) end
  -- secret: false is a value here, not an absent member
  local cfg, why = webhooks.check(b, raw, state.S.projects)
  if not cfg then return bad(why) end
  webhooks.set(cfg)
  return reply(200, obj { "ok", true, "webhook", webhooks.config_json(cfg) })
end

local function webhooks_delete()
  webhooks.remove()
  return reply(200, obj { "ok", true, "webhooks", json.arr {} })
end
H["DELETE webhooks"] = webhooks_delete
H["POST webhooks/clear"] = webhooks_delete

H["POST webhooks/activate"] = function()
  local b, err = body_json {}
  if not b then return bad(err) end
  local h = webhooks.activate()
  if not h then return reply(409, obj { "ok", false, "error", "no webhook is set (POST /_sandbox/webhooks)" }) end
  return reply(200, obj { "ok", true, "webhook", webhooks.config_json(h) })
end

H["POST webhooks/emit"] = function()
  local b, err = body_json { type = true, idcontact = true, email = true, istest = true, count = true }
  if not b then return bad(err) end
  local h = webhooks.hook
  if not h then return reply(409, obj { "ok", false, "error", "no webhook is set (POST /_sandbox/webhooks)" }) end
  local ty = type(b.type) == "string" and webhooks.TYPE_OF[lower(b.type)]
  if not ty then
    return bad("type must be an event type: " .. table.concat(webhooks.TYPES, ", "))
  end
  local n = b.count == nil and 1 or b.count
  if not (whole(n) and n >= 1 and n <= 10000) then return bad("count must be a whole number from 1 to 10000") end
  if b.istest ~= nil and type(b.istest) ~= "boolean" then return bad("isTest must be true or false") end
  local P = state.S.projects[h.project]
  local c
  if b.idcontact ~= nil then
    if b.email ~= nil then return bad("give idContact or email, not both") end
    if not whole(b.idcontact) then return bad("idContact must be a whole number") end
    c = P.byId[b.idcontact]
  elseif type(b.email) == "string" then
    c = P.byEmail[lower(b.email)]
  else
    return bad("give idContact (a number) or email (a string)")
  end
  if not c then
    return reply(404, obj { "ok", false, "error", "no such contact in project " .. h.project })
  end
  if not webhooks.subscribed(h, ty) then
    return reply(200, obj { "ok", true, "queued", 0, "pending", webhooks.pending(),
      "note", "the webhook does not subscribe to " .. ty })
  end
  local queued = webhooks.emit(h, ty, P, c, n, b.istest)
  return reply(200, obj { "ok", true, "queued", queued, "pending", webhooks.pending() })
end

function M.handle()
  local ra = ngx.var.remote_addr
  if ra ~= "127.0.0.1" and ra ~= "::1" then
    return reply(403, obj { "ok", false, "error", "the control API answers loopback clients only" })
  end
  local path = lower(ngx.var.uri):match("^/_sandbox/(.-)/?$") or ""
  if path == "" then path = "ping" end
  local h = H[ngx.req.get_method() .. " " .. path]
  if not h then
    return reply(404, obj { "ok", false, "error", "unknown control endpoint " .. ngx.req.get_method() .. " /_sandbox/" .. path })
  end
  local ok, err = pcall(h, ngx.req.get_uri_args())
  if not ok then
    ngx.log(ngx.ERR, "control error: ", tostring(err))
    return reply(500, obj { "ok", false, "error", tostring(err) })
  end
end

return M
