-- The control API under /_sandbox/ (loopback clients only). JSON in, compact
-- JSON out. Documented in sandbox/README.md.
local json = require "sbx.json"
local util = require "sbx.util"
local state = require "sbx.state"
local contacts = require "sbx.contacts"
local tables = require "sbx.tables"
local faults = require "sbx.faults"
local log = require "sbx.log"
local api = require "sbx.api"

local ngx = ngx
local obj, NULL, isnull = json.obj, json.null, json.isnull
local lower, type, tonumber, pairs, ipairs = string.lower, type, tonumber, pairs, ipairs

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

local function body_json()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then
    local file = ngx.req.get_body_file()
    if file then local f = io.open(file, "rb"); if f then body = f:read("*a"); f:close() end end
  end
  if not body or body:match("^%s*$") then return {} end
  local v, err = json.decode(body)
  if type(v) ~= "table" then return nil, "body is not a JSON object: " .. tostring(err) end
  return v
end

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
    "after_processing", f.after, "fired", f.fired }
end

local function faults_list()
  local out = {}
  for i, f in ipairs(faults.list) do out[i] = fault_json(f) end
  return out
end

local function rl_json()
  return obj { "rate", api.ratelimit.rate, "burst", api.ratelimit.burst }
end

local H = {}

H["GET ping"] = function()
  return reply(200, obj { "ok", true, "service", "dialoginsight OFC4 sandbox" })
end

H["POST reset"] = function()
  local b, err = body_json()
  if not b then return bad(err) end
  local nb = util.norm(b)
  local seed = nb.seed
  if not isnull(seed) and not util.int(seed) then return bad("seed must be an integer") end
  local n = nb.contacts
  if not isnull(n) and (not util.int(n) or util.int(n) < 0 or util.int(n) > 5000000) then
    return bad("contacts must be an integer between 0 and 5000000")
  end
  ngx.update_time()
  local t0 = ngx.now()
  local S = state.reset({ seed = util.int(seed), contacts = util.int(n) })
  faults.reset(S.seed)
  log.clear()
  api.ratelimit.rate, api.ratelimit.burst, api.ratelimit.tat = 0, 0, {}
  api.config.bom = false
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
    "faults", #faults.list, "ratelimit", rl_json(), "config", obj { "bom", api.config.bom },
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
  local b, err = body_json()
  if not b then return bad(err) end
  local list = util.norm(b).faults
  if type(list) ~= "table" then
    if util.norm(b).type then list = { b } else return bad("expected {\"faults\":[...]}") end
  end
  local added = {}
  for i, spec in ipairs(list) do
    local f, e2 = faults.add(spec)
    if not f then return bad("faults[" .. (i - 1) .. "]: " .. e2) end
    added[#added + 1] = fault_json(f)
  end
  return reply(200, obj { "ok", true, "added", added, "faults", faults_list() })
end
H["POST faults/clear"] = H["DELETE faults"]

H["GET ratelimit"] = function() return reply(200, rl_json()) end
H["POST ratelimit"] = function()
  local b, err = body_json()
  if not b then return bad(err) end
  local nb = util.norm(b)
  local rate = tonumber(nb.rate) or 0
  local burst = tonumber(nb.burst) or 0
  if rate < 0 or burst < 0 then return bad("rate and burst must be >= 0") end
  if burst == 0 and rate > 0 then burst = math.max(1, math.floor(rate)) end
  api.ratelimit.rate, api.ratelimit.burst, api.ratelimit.tat = rate, burst, {}
  return reply(200, obj { "ok", true, "rate", rate, "burst", burst })
end

H["GET config"] = function() return reply(200, obj { "bom", api.config.bom }) end
H["POST config"] = function()
  local b, err = body_json()
  if not b then return bad(err) end
  local nb = util.norm(b)
  if not isnull(nb.bom) then
    local v = util.bool(nb.bom)
    if v == nil then return bad("bom must be a boolean") end
    api.config.bom = v
  end
  return reply(200, obj { "ok", true, "bom", api.config.bom })
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
