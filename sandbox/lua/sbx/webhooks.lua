-- Webhooks: what Dialog Insight POSTs to a project's callback URL when an
-- event happens (help articles 1000249079/1000249080).  One webhook at a
-- time (POST /_sandbox/webhooks replaces it), for one project; the events of
-- the sandbox (contacts.lua: a Merge; mail.lua: a send) and those asked for
-- (POST /_sandbox/webhooks/emit) wait in its queue, which one ngx.timer
-- drains with cosockets: one event at a time, in order, retried with a
-- doubling back-off until the receiver answers 2xx; after max_failures
-- failed attempts in a row the webhook is deactivated and an alert is
-- recorded (the "e-mail" DI sends).  Documented in sandbox/README.md,
-- "Webhooks".  The HMAC is OpenSSL's (FFI): never the library's code, which
-- the sandbox checks.
local ffi = require "ffi"
local json = require "sbx.json"
local util = require "sbx.util"
local prng = require "sbx.prng"
local faults = require "sbx.faults"

local ngx = ngx
local obj, NULL = json.obj, json.null
local format, concat, lower, floor, min = string.format, table.concat, string.lower, math.floor, math.min
local type, ipairs, pairs, tonumber, tostring, pcall = type, ipairs, pairs, tonumber, tostring, pcall

local ok_new, tnew = pcall(require, "table.new")
if not ok_new then tnew = function() return {} end end

local M = {}

-- The event types [assumed beyond sending_Bounce and contact_optout].
M.TYPES = { "contact_created", "contact_updated", "contact_optin", "contact_optout", "contact_quarantine",
  "sending_Sent", "sending_Bounce", "sending_Complaint" }
M.TYPE_OF = {} -- lower-cased name -> the name
for _, t in ipairs(M.TYPES) do M.TYPE_OF[lower(t)] = t end
local MESSAGE = { sending_Sent = true, sending_Bounce = true, sending_Complaint = true }
M.MESSAGE = MESSAGE

M.ID_COMPANY = 7301          -- the sandbox's company [assumed: any fixed number]
M.MAX_QUEUE = 100000         -- events waiting per webhook; beyond: the oldest dropped, an alert
M.MAX_DELIVERIES = 10000     -- delivery attempts kept for GET /_sandbox/webhooks
M.MAX_ALERTS = 1000
M.BACKOFF_CAP_MS = 60000     -- retry_ms * 2^k, at most this
M.USER_AGENT = "DialogInsight-Webhook (sandbox)"
M.MAX_REPLY = 1048576        -- a receiver's reply body read at most (then the connection is closed)

-- HMAC (OpenSSL's libcrypto, through the FFI) ------------------------------------

ffi.cdef [[
typedef struct evp_md_st SBX_EVP_MD;
const SBX_EVP_MD *EVP_sha1(void);
const SBX_EVP_MD *EVP_sha256(void);
const SBX_EVP_MD *EVP_sha512(void);
unsigned char *HMAC(const SBX_EVP_MD *evp_md, const void *key, int key_len, const unsigned char *d, size_t n,
                    unsigned char *md, unsigned int *md_len);
]]

local crypto
local function libcrypto()
  if crypto then return crypto end
  for _, name in ipairs({ "crypto", "libcrypto.so.3", "libcrypto.so" }) do
    local ok, lib = pcall(ffi.load, name)
    if ok and pcall(function() return lib.HMAC end) then crypto = lib; return lib end
  end
  crypto = ffi.C -- nginx itself links OpenSSL
  return crypto
end

local mdbuf, mdlen = ffi.new("unsigned char[64]"), ffi.new("unsigned int[1]")

-- hmac(algorithm, key, data) -> the raw digest
function M.hmac(alg, key, data)
  local C = libcrypto()
  local md = alg == "sha1" and C.EVP_sha1() or alg == "sha512" and C.EVP_sha512() or C.EVP_sha256()
  local r = C.HMAC(md, key, #key, data, #data, mdbuf, mdlen)
  if r == nil then error("HMAC failed") end
  return ffi.string(mdbuf, mdlen[0])
end

local function hex(s)
  return (s:gsub(".", function(c) return format("%02x", c:byte()) end))
end

-- signature(sig, secret, body) -> the header's value
function M.signature(sig, secret, body)
  local d = M.hmac(sig.algorithm, secret, body)
  return sig.prefix .. (sig.encoding == "base64" and ngx.encode_base64(d) or hex(d))
end

-- State -----------------------------------------------------------------------------

M.hook = nil -- the webhook, or nil

function M.reset(seed)
  M.hook = nil
  M.deliveries, M.dfirst, M.dseq = {}, 1, 0
  M.alerts = {}
  M.sent, M.dropped, M.events = 0, 0, 0
  M.rng = prng.new(seed or 42, 77)
  M.stamp = math.floor(ngx.now() * 1000) % 0x100000000
end
M.reset()

local function now_dt() return util.from_epoch(ngx.time()) end

function M.alert(h, reason)
  local a = M.alerts
  if #a >= M.MAX_ALERTS then table.remove(a, 1) end
  a[#a + 1] = { at = now_dt(), url = h.url, reason = reason }
  ngx.log(ngx.WARN, "webhook alert: ", h.url, ": ", reason)
end

local function record(ev, attempt, status, err, ms, fault)
  M.dseq = M.dseq + 1
  local d = M.deliveries
  d[#d + 1] = { seq = M.dseq, id = ev.id, type = ev.Type, attempt = attempt, status = status, error = err,
    ms = ms, fault = fault }
  if #d - M.dfirst + 1 > M.MAX_DELIVERIES then d[M.dfirst] = nil; M.dfirst = M.dfirst + 1 end
end

-- the delivery records after seq `since`, oldest first
function M.delivery_list(since)
  local out, d = {}, M.deliveries
  for i = M.dfirst, #d do
    if d[i].seq > (since or 0) then out[#out + 1] = d[i] end
  end
  return out
end

function M.pending(h)
  h = h or M.hook
  if not h then return 0 end
  return h.qt - h.qh + 1
end

-- Events ------------------------------------------------------------------------------

-- A UUID-like EventUniqueID: the reset's time (ms) first, then the seeded PRNG and a
-- counter, so that an id is never seen again after a reset or a restart (a receiver
-- de-duplicates by it, across resets too).
local function uuid()
  local r = M.rng
  M.events = M.events + 1
  return format("%08x-%04x-4%03x-%04x-%012x", M.stamp, r:int(0, 0xffff), r:int(0, 0xfff),
    0x8000 + r:int(0, 0x3fff), M.events)
end

function M.subscribed(h, ty)
  return h.all or h.events[ty] == true
end

-- wants(P, ty) -> the webhook if it takes ty events of project P
function M.wants(P, ty)
  local h = M.hook
  if h and h.project == P.id and M.subscribed(h, ty) then return h end
  return nil
end

local function push(h, ev)
  if h.qt - h.qh + 1 >= M.MAX_QUEUE then
    h.q[h.qh] = nil
    h.qh = h.qh + 1
    h.drops = (h.drops or 0) + 1
  end
  h.qt = h.qt + 1
  h.q[h.qt] = ev
end

-- event(h, ty, P, c, m) -> the queued event: a snapshot of the contact now;
-- m: { idSendLog, idMessage, dtProcessed } for the sending_ types.
local function event(h, ty, P, c, m, isTest)
  local n = P.nslots
  local snap = tnew(n, 0)
  for i = 1, n do snap[i] = c[i] end
  local ev = { id = uuid(), Type = ty, dt = now_dt(), P = P, c = snap, isTest = isTest or false, attempts = 0 }
  if m then ev.idSendLog, ev.idMessage, ev.dtProcessed = m[1], m[2], m[3] end
  push(h, ev)
  return ev
end

local kick

-- done(h): after events were queued: an alert if the queue overflowed, and
-- the runner started.
local function done(h)
  if h.drops and h.drops > 0 then
    M.dropped = M.dropped + h.drops
    M.alert(h, format("queue full (%d events): the %d oldest dropped", M.MAX_QUEUE, h.drops))
    h.drops = 0
  end
  kick(h)
end

-- Called by contacts.lua after a Merge record created or updated contact c
-- (status "Created" | "Updated"); ins/outs: the opt-ins it set true (from
-- not true) and false (from true), or nil.
function M.contact(P, c, status, ins, outs)
  local h = M.hook
  if not h or h.project ~= P.id then return end
  local ty = status == "Created" and "contact_created" or "contact_updated"
  if M.subscribed(h, ty) then event(h, ty, P, c) end
  if ins and M.subscribed(h, "contact_optin") then event(h, "contact_optin", P, c) end
  if outs and M.subscribed(h, "contact_optout") then event(h, "contact_optout", P, c) end
  done(h)
end

-- Called by mail.lua once a batch was sent (its events simulated): every
-- contact's sending_Sent, then the bounces (not delivered), then the
-- unsubscribes (contact_optout).
function M.batch(P, b)
  local h = M.hook
  if not h or h.project ~= P.id or not b.flags then return end
  local wsent, wbounce, wout = M.subscribed(h, "sending_Sent"), M.subscribed(h, "sending_Bounce"),
    M.subscribed(h, "contact_optout")
  if not (wsent or wbounce or wout) then return end
  local byId, flags, base = P.byId, b.flags, b.sendLog0 or 0
  local bounced = util.from_epoch(b.tLaunch + 60)
  local pass = function(ty, test)
    for i, cid in ipairs(b.ids) do
      local c = byId[cid]
      if c and test(flags[cid] or 0) then
        event(h, ty, P, c, { base + i - 1, b.idMessage, ty == "sending_Bounce" and bounced or b.dtLaunch })
      end
    end
  end
  if wsent then pass("sending_Sent", function() return true end) end
  if wbounce then pass("sending_Bounce", function(f) return f % 2 == 0 end) end
  if wout then
    for _, cid in ipairs(b.ids) do
      local c = byId[cid]
      if c and floor((flags[cid] or 0) / 8) % 2 == 1 then event(h, "contact_optout", P, c) end
    end
  end
  done(h)
end

-- emit(h, ty, P, c, count, isTest) -> events queued (POST /_sandbox/webhooks/emit)
function M.emit(h, ty, P, c, count, isTest)
  local S = require("sbx.state").S
  local m
  for _ = 1, count do
    if MESSAGE[ty] then
      S.nextSendLog = (S.nextSendLog or 1) + 1
      m = { S.nextSendLog - 1, P.msgOrder[1] or 0, now_dt() }
    end
    event(h, ty, P, c, m, isTest)
  end
  done(h)
  return count
end

-- The body ----------------------------------------------------------------------------

local function body_of(h, ev)
  local P, snap = ev.P, ev.c
  local o = { "Type", ev.Type, "EventUniqueID", ev.id, "dtExecution", ev.dt, "idCompany", M.ID_COMPANY,
    "idProject", P.id, "ContactID", obj { "idContact", snap[1] } }
  if ev.idSendLog then
    o[#o + 1] = "idSendLog"; o[#o + 1] = ev.idSendLog
    o[#o + 1] = "idMessage"; o[#o + 1] = ev.idMessage
    o[#o + 1] = "dtProcessed"; o[#o + 1] = ev.dtProcessed
  end
  o[#o + 1] = "isTest"; o[#o + 1] = ev.isTest
  local plain = h.fields == "plain"
  local layout = P.layout
  for i = 2, #layout do
    local meta = layout[i]
    local v = snap[meta.slot]
    if v == nil then v = NULL end
    o[#o + 1] = (plain and meta.kind == "field") and meta.code or meta.wire
    o[#o + 1] = v
  end
  return json.encode(obj(o), true)
end

-- prepare(h, ev): before an event's first attempt: the faults that fire
-- for it, its body (kept for every retry) and its signature.
local function prepare(h, ev)
  local ty = ev.Type
  if faults.webhook(ty, "webhook_test") then ev.isTest = true; ev.faults = { "test" } end
  ev.body = body_of(h, ev)
  if h.secret then ev.sig = M.signature(h.signature, h.secret, ev.body) end
  local function note(name)
    ev.faults = ev.faults or {}
    ev.faults[#ev.faults + 1] = name
  end
  if faults.webhook(ty, "webhook_bad_signature") then
    -- the first attempt only: a retry carries the right one
    local d = M.hmac(h.signature.algorithm, "not the secret", ev.body .. " ")
    ev.badsig = h.signature.prefix .. (h.signature.encoding == "base64" and ngx.encode_base64(d) or hex(d))
    note("bad_signature")
  end
  local late = faults.webhook(ty, "webhook_late")
  if late then ev.late = late.ms; note("late:" .. late.ms) end
  if faults.webhook(ty, "webhook_duplicate") then ev.dup = true end
end

-- Delivery ------------------------------------------------------------------------------

local function current(h, gen)
  return M.hook == h and h.gen == gen and not ngx.worker.exiting()
end

-- sleep(ms, h, gen) -> false when the webhook changed meanwhile
local function sleep(ms, h, gen)
  local deadline = ngx.now() + ms / 1000
  while true do
    if not current(h, gen) then return false end
    local left = deadline - ngx.now()
    if left < 0.001 then return true end -- (ngx.sleep(0) only yields, and warns)
    ngx.sleep(min(left, 0.1))
    ngx.update_time()
  end
end

-- One HTTP/1.1 exchange on sock -> status | nil, err, keepalive
local function exchange(sock, h, req, deadline)
  local function left()
    ngx.update_time()
    local ms = floor((deadline - ngx.now()) * 1000)
    if ms < 1 then return nil end
    sock:settimeout(ms)
    return ms
  end
  local _, err = sock:send(req)
  if err then return nil, "send: " .. err end
  if not left() then return nil, "timeout" end
  local line, e2 = sock:receive("*l")
  if not line then return nil, "receive: " .. e2 end
  local status = tonumber(line:match("^HTTP/1%.[01] (%d%d%d)"))
  if not status then return nil, "not an HTTP reply: " .. line:sub(1, 80) end
  local length, chunked, keep = nil, false, line:match("^HTTP/1%.1") ~= nil
  while true do
    if not left() then return nil, "timeout" end
    local hl, e3 = sock:receive("*l")
    if not hl then return nil, "receive: " .. e3 end
    if hl == "" then break end
    local k, v = hl:match("^([^:]+):%s*(.-)%s*$")
    if k then
      k = lower(k)
      if k == "content-length" then length = tonumber(v)
      elseif k == "transfer-encoding" then chunked = lower(v):find("chunked", 1, true) ~= nil
      elseif k == "connection" then
        if lower(v):find("close", 1, true) then keep = false end
      end
    end
  end
  if chunked then
    while true do
      if not left() then return status, nil, false end
      local sz = sock:receive("*l")
      local n = sz and tonumber(sz:match("^%x+"), 16)
      if not n or n > M.MAX_REPLY then return status, nil, false end
      if n == 0 then
        repeat local tl = sock:receive("*l") until not tl or tl == ""
        break
      end
      if not left() or not sock:receive(n + 2) then return status, nil, false end
    end
  elseif length then
    if length > M.MAX_REPLY then return status, nil, false end
    if length > 0 and (not left() or not sock:receive(length)) then return status, nil, false end
  else
    keep = false -- the body runs to the end of the connection: not read
  end
  return status, nil, keep
end

-- post(h, ev, sig) -> status (0: none), err
local function post(h, ev, sig)
  local body = ev.body
  local req = concat {
    "POST ", h.path, " HTTP/1.1\r\nHost: ", h.hostport, "\r\nContent-Type: application/json\r\n",
    "User-Agent: ", M.USER_AGENT, "\r\nContent-Length: ", tostring(#body), "\r\n",
    sig and (h.signature.header .. ": " .. sig .. "\r\n") or "", "\r\n", body }
  ngx.update_time()
  local deadline = ngx.now() + h.timeout_ms / 1000
  for try = 1, 2 do
    local sock = ngx.socket.tcp()
    sock:settimeout(h.timeout_ms)
    local ok, err = sock:connect("127.0.0.1", h.port, { pool = h.pool })
    if not ok then return 0, "connect: " .. tostring(err) end
    local reused = sock:getreusedtimes() > 0
    if h.tls and not reused then
      -- nginx checks the certificate's DNS names only: 127.0.0.1 is verified as localhost
      local sess, e2 = sock:sslhandshake(nil, "localhost", true)
      if not sess then sock:close(); return 0, "tls: " .. tostring(e2) end
    end
    local status, e3, keep = exchange(sock, h, req, deadline)
    if status then
      if keep then sock:setkeepalive(60000, 4) else sock:close() end
      return status
    end
    sock:close()
    -- a kept connection the receiver had closed meanwhile: once more on a new one
    if not (reused and try == 1 and e3 and (e3:find("closed", 1, true) or e3:find("reset", 1, true))) then
      return 0, e3
    end
  end
end

local function attempt(h, ev, sig, fault)
  ngx.update_time()
  local t0 = ngx.now()
  local status, err = post(h, ev, sig)
  ngx.update_time()
  return status, err, floor((ngx.now() - t0) * 1000 + 0.5), fault
end

local function reorder(h, gen, ev)
  ev.ro = true
  local f = faults.webhook(ev.Type, "webhook_reorder")
  if not f then return false end
  -- hold: until count events wait, or hold_ms passed
  ngx.update_time()
  local deadline = ngx.now() + f.hold_ms / 1000
  while M.pending(h) < f.count and ngx.now() < deadline do
    if not sleep(10, h, gen) then return true end
  end
  local n = min(f.count, M.pending(h))
  local q, a, b = h.q, h.qh, h.qh + n - 1
  for k = a, b do
    q[k].ro = true
    q[k].faults = q[k].faults or {}
    q[k].faults[#q[k].faults + 1] = "reorder:" .. (k - a + 1) .. "/" .. n
  end
  while a < b do q[a], q[b] = q[b], q[a]; a, b = a + 1, b - 1 end
  return true
end

local function loop(h, gen)
  while current(h, gen) and h.active do
    local ev = h.q[h.qh]
    if not ev then return end
    if not ev.ro and reorder(h, gen, ev) then
      ev = nil -- the head changed
    end
    if ev then
      if not ev.body then prepare(h, ev) end
      if ev.late and ev.attempts == 0 then
        if not sleep(ev.late, h, gen) then return end
      end
      ev.attempts = ev.attempts + 1
      local sig = ev.sig
      local fault = ev.attempts == 1 and ev.faults and concat(ev.faults, "+") or nil
      if ev.badsig and ev.attempts == 1 then sig = ev.badsig end
      local status, err, ms = attempt(h, ev, sig)
      if not current(h, gen) then return end
      record(ev, ev.attempts, status, err, ms, fault)
      if ev.dup then
        ev.dup = false
        local s2, e2, ms2 = attempt(h, ev, sig)
        if not current(h, gen) then return end
        record(ev, ev.attempts, s2, e2, ms2, "duplicate")
      end
      if status >= 200 and status <= 299 then
        if h.q[h.qh] == ev then h.q[h.qh] = nil; h.qh = h.qh + 1 end
        h.failures = 0
        M.sent = M.sent + 1
      else
        h.failures = h.failures + 1
        if h.failures >= h.max_failures then
          h.active = false
          M.alert(h, format("deactivated after %d failed deliveries in a row of event %s (%s); last: %s",
            h.failures, ev.id, ev.Type, status > 0 and ("HTTP " .. status) or tostring(err)))
          return
        end
        local wait = min(h.retry_ms * 2 ^ (h.failures - 1), M.BACKOFF_CAP_MS)
        if not sleep(wait, h, gen) then return end
      end
    end
  end
end

local function run(premature, h, gen)
  if premature then h.running = false; return end
  local ok, err = pcall(loop, h, gen)
  h.running = false
  if not ok then
    ngx.log(ngx.ERR, "webhook runner: ", tostring(err))
    if M.hook == h then M.alert(h, "sandbox error: " .. tostring(err)) end
    return
  end
  -- events queued after the loop saw the queue empty
  if current(h, gen) then kick(h) end
end

kick = function(h)
  if h.running or not h.active or M.hook ~= h or h.qt < h.qh then return end
  h.running = true
  local ok, err = ngx.timer.at(0, run, h, h.gen)
  if not ok then
    h.running = false
    ngx.log(ngx.ERR, "webhook: no timer: ", tostring(err))
  end
end

-- Configuration --------------------------------------------------------------------------

local gens = 0

-- set(cfg): cfg checked by check(); replaces the webhook (and its queue).
function M.set(cfg)
  gens = gens + 1
  cfg.gen = gens
  cfg.active, cfg.failures, cfg.running = true, 0, false
  cfg.q, cfg.qh, cfg.qt = {}, 1, 0
  cfg.pool = "sbx-webhook-" .. gens
  M.hook = cfg
  return cfg
end

function M.remove() M.hook = nil end

function M.activate()
  local h = M.hook
  if not h then return nil end
  h.active, h.failures = true, 0
  kick(h)
  return h
end

local function finite_whole(v) return type(v) == "number" and v == floor(v) and v > -math.huge and v < math.huge end

local SIG_MEMBERS = { header = true, algorithm = true, encoding = true, prefix = true }
local ALGS = { sha256 = true, sha1 = true, sha512 = true }

-- check(b, raw, projects) -> cfg | nil, why.  b: the body's members,
-- lower-cased (control.lua refused unknown ones); projects: the state's.
function M.check(b, raw, projects)
  local c = {}
  local url = b.url
  if type(url) ~= "string" then return nil, "url is required: http:// or https:// on 127.0.0.1 or localhost" end
  local scheme, host, port, path = url:match("^(https?)://([%w%.]+):?(%d*)(.*)$")
  if not scheme or (host ~= "127.0.0.1" and lower(host) ~= "localhost") then
    return nil, "url must be http:// or https:// on 127.0.0.1 or localhost (the sandbox calls loopback only)"
  end
  if path ~= "" and not path:match("^/[%w%-%._~%%!%$&'%(%)%*%+,;=:@/%?]*$") then
    return nil, "url's path must start with / and hold no spaces or control characters"
  end
  port = tonumber(port ~= "" and port or (scheme == "https" and "443" or "80"))
  if port < 1 or port > 65535 then return nil, "url's port must be 1 to 65535" end
  c.url, c.tls, c.host, c.port, c.path = url, scheme == "https", lower(host), port, path ~= "" and path or "/"
  c.hostport = url:match("^https?://([^/]+)")
  local secret = b.secret
  if secret == nil or secret == false then
    c.secret = false
  elseif type(secret) ~= "string" or secret == "" or #secret > 1024 then
    return nil, "secret must be a string (1 to 1024 bytes), or false for unsigned deliveries"
  else
    c.secret = secret
  end
  local ev = b.events == nil and "all" or b.events
  c.events = {}
  if ev == "all" then
    c.all = true
  elseif type(ev) == "table" and ev[1] ~= nil and not raw:lower():find('"events"%s*:%s*{') then
    for k, name in pairs(ev) do
      if type(k) ~= "number" then return nil, "events must be \"all\" or a list of event types" end
      local t = type(name) == "string" and M.TYPE_OF[lower(name)]
      if not t then
        return nil, "events: unknown event type " .. tostring(name) .. " (known: " .. concat(M.TYPES, ", ") .. ")"
      end
      c.events[t] = true
    end
  else
    return nil, "events must be \"all\" or a non-empty list of event types (" .. concat(M.TYPES, ", ") .. ")"
  end
  local pid = b.project == nil and require("sbx.state").DEFAULT_PROJECT or b.project
  if not finite_whole(pid) or not projects[pid] then return nil, "project must be the id of a project of the sandbox" end
  c.project = pid
  local sig = { header = "X-DI-Signature", algorithm = "sha256", encoding = "hex", prefix = "" }
  if b.signature ~= nil then
    local s = b.signature
    if type(s) ~= "table" or s[1] ~= nil or raw:lower():find('"signature"%s*:%s*%[') then
      return nil, "signature must be an object {header, algorithm, encoding, prefix}"
    end
    for k, v in pairs(s) do
      local lk = type(k) == "string" and lower(k)
      if not lk or not SIG_MEMBERS[lk] then return nil, "signature: unknown member '" .. tostring(k) .. "'" end
      if not json.isnull(v) then sig[lk] = v end
    end
    if type(sig.header) ~= "string" or not sig.header:match("^[%w%-_]+$") or #sig.header > 64 then
      return nil, "signature.header must be a header name (letters, digits, - and _; at most 64)"
    end
    if not ALGS[sig.algorithm] then return nil, "signature.algorithm must be \"sha256\", \"sha1\" or \"sha512\"" end
    if sig.encoding ~= "hex" and sig.encoding ~= "base64" then
      return nil, "signature.encoding must be \"hex\" or \"base64\""
    end
    if type(sig.prefix) ~= "string" or #sig.prefix > 32 or sig.prefix:find("[^\33-\126]") then
      return nil, "signature.prefix must be at most 32 printable characters, no spaces (e.g. \"sha256=\")"
    end
  end
  c.signature = sig
  c.fields = b.fields == nil and "prefixed" or b.fields
  if c.fields ~= "prefixed" and c.fields ~= "plain" then return nil, "fields must be \"prefixed\" or \"plain\"" end
  local function ms(name, default, lo, hi)
    local v = b[name] == nil and default or b[name]
    if not finite_whole(v) or v < lo or v > hi then
      return nil, name .. " must be a whole number from " .. lo .. " to " .. hi
    end
    c[name] = v
    return true
  end
  local ok, why = ms("timeout_ms", 5000, 1, 600000)
  if ok then ok, why = ms("retry_ms", 200, 0, M.BACKOFF_CAP_MS) end
  if ok then ok, why = ms("max_failures", 5, 1, 1000) end
  if not ok then return nil, why end
  return c
end

-- config_json(h) -> the webhook as GET shows it (no secret)
function M.config_json(h)
  local ev
  if h.all then ev = "all" else
    ev = {}
    for _, t in ipairs(M.TYPES) do if h.events[t] then ev[#ev + 1] = t end end
  end
  local s = h.signature
  return obj { "url", h.url, "project", h.project, "events", ev, "signed", h.secret ~= false,
    "signature", obj { "header", s.header, "algorithm", s.algorithm, "encoding", s.encoding, "prefix", s.prefix },
    "fields", h.fields, "timeout_ms", h.timeout_ms, "retry_ms", h.retry_ms, "max_failures", h.max_failures,
    "active", h.active, "failures", h.failures, "pending", M.pending(h) }
end

function M.delivery_json(d)
  return obj { "seq", d.seq, "EventUniqueID", d.id, "Type", d.type, "attempt", d.attempt, "status", d.status,
    "error", d.error or NULL, "ms", d.ms, "fault", d.fault or NULL }
end

return M
