--- A webhook receiver: each delivery verified, de-duplicated by EventUniqueID and stored
-- before it is acknowledged; stored events handed to the handler at least once (runner).
-- The nginx home is webhooks/ngx.lua; `dialoginsight events` runs the same store in batch.
-- @module dialoginsight.webhooks.receiver
-- @usage local receiver = require("dialoginsight.webhooks.receiver").new {
--   secret = os.getenv("DI_WEBHOOK_SECRET"), store = "/var/lib/di/events.db",
--   handler = function(event) crm.opt_out(event.fields.EMail) end,
-- }
-- local status, reply = receiver:receive(body, headers)   -- 200 only once stored
local core = require "dialoginsight.core"
local errors = require "dialoginsight.errors"
local options = require "dialoginsight.options"
local webhooks = require "dialoginsight.webhooks"
local store = require "dialoginsight.webhooks.store"
local runner = require "dialoginsight.webhooks.runner"
local shared = require "dialoginsight.webhooks.shared"
local redis = require "dialoginsight.limiter.redis"
local log = require "dialoginsight.log"
local metrics = require "dialoginsight.metrics"

local M = {}

local function fn(v) if type(v) ~= "function" then return "must be a function(event)" end end

--- The receiver's options: verify's and parse's (webhooks.OPTIONS), and store (the SQLite
-- file), handler, on_test, attempts, backoff, backoff_cap, lease, claim_size (runner.DEFAULTS),
-- limiter_url (de-duplicate across hosts), dedup_ttl (seconds an id is remembered there:
-- 7 days), name (the receiver's among others on that Redis: default its store's path),
-- interval (seconds between the nginx timer's rounds: 1).
M.OPTIONS = options.set(webhooks.OPTIONS, {
  store = store.path_problem,
  name = function(v)
    if type(v) ~= "string" or v == "" or #v > 200 then return "must be text of 1 to 200 bytes" end
  end,
  handler = fn, on_test = fn,
  attempts = options.count, backoff = options.seconds, backoff_cap = options.seconds,
  lease = options.seconds, claim_size = options.count, interval = options.seconds,
  limiter_url = function(v) local ok, why = redis.parse_url(v); if not ok then return why end end,
  dedup_ttl = function(v)
    if type(v) ~= "number" or not (v >= 60 and v <= 90 * 86400) then return "must be seconds from 60 to 90 days" end
  end,
})

local Receiver = {}
Receiver.__index = Receiver

local function pid()
  local ngx = rawget(_G, "ngx")
  return ngx and ngx.worker and ngx.worker.pid() or 0
end

--- A receiver.  Raises on a bad option, and when neither secret nor verify = false is given.
-- @tparam table opts M.OPTIONS
-- @tparam[opt] function connect function(url, timeout) for Redis (default: the C core's
-- client; webhooks/ngx.lua gives cosockets)
function M.new(opts, connect)
  options.check(opts, M.OPTIONS, "webhooks.receiver")
  if type(opts) ~= "table" then error("dialoginsight: webhooks.receiver: options must be a table", 2) end
  if opts.secret == nil and opts.verify == nil then
    error("dialoginsight: webhooks.receiver: option 'secret' is missing: give the webhook's secret "
      .. "(DI_WEBHOOK_SECRET), or verify = false to take unsigned deliveries on purpose", 2)
  end
  if opts.store == nil then error("dialoginsight: webhooks.receiver: option 'store' is missing (a file path)", 2) end
  local r = setmetatable({ opts = opts, parse_opts = {}, seq = 0 }, Receiver)
  for _, k in ipairs(webhooks.OPTIONS.names) do r.parse_opts[k] = opts[k] end
  errors.protect(r, opts.secret)
  -- hosts of one receiver share ids in Redis; other receivers (another webhook, staging)
  -- must not: the namespace is the receiver's name (its store's path), keyed with the
  -- secret, and hashed so that neither shows in Redis
  local ns = core.hmac("sha256", opts.secret or "unsigned", opts.name or opts.store):sub(1, 16)
  local prefix = "dialoginsight:webhooks:" .. (opts.project or "any") .. ":" .. ns .. ":"
  r.shared = shared.new(opts.limiter_url, opts.dedup_ttl or 7 * 86400, connect or redis.connect_core, prefix)
  return r
end

--- The store of this process (opened on first use: an nginx worker opens its own).
function Receiver:store()
  if self.db and self.pid == pid() then return self.db end
  local s, err = store.open(self.opts.store)
  if not s then return nil, err end
  self.db, self.pid = s, pid()
  return s
end

--- Receives a delivery: the HTTP status to answer and a reply table ({ ok, stored |
-- duplicate | error }).  2xx only when the event is in the store (or was already).
-- @tparam string body the raw body
-- @tparam table headers its headers
-- @return status, reply, and the event (or the error)
function Receiver:receive(body, headers)
  local event, err = webhooks.parse(body, headers, self.parse_opts)
  if not event then
    log.warn("dialoginsight: webhooks: delivery refused (" .. err.status .. "): " .. tostring(err.message))
    metrics.default():event("received", err.kind)
    return err.status, { ok = false, error = err.kind }, err
  end
  self.seq = self.seq + 1
  local token = pid() .. ":" .. self.seq .. ":" .. string.format("%.6f", core.wall())
  local claim = self.shared and self.shared:claim(event.id, token) or "alone"
  if claim == "stored" then
    metrics.default():event("received", "duplicate")
    return 200, { ok = true, duplicate = true }, event
  end
  if claim == "busy" then
    metrics.default():event("received", "busy")
    return 503, { ok = false, error = "busy", message = "another host is storing this event" }, event
  end
  local s
  s, err = self:store()
  local put
  if s then put, err = s:put(event, body, core.wall()) end
  if not put then
    if claim == "mine" then self.shared:release(event.id, token) end
    log.warn("dialoginsight: webhooks: " .. tostring(err.message) .. ": answered 503")
    metrics.default():event("received", "store")
    return 503, { ok = false, error = "store" }, err
  end
  if claim == "mine" then self.shared:confirm(event.id) end
  metrics.default():event("received", put == "duplicate" and "duplicate" or "stored")
  if put == "duplicate" then return 200, { ok = true, duplicate = true }, event end
  return 200, { ok = true, stored = true }, event
end

--- Runs the handler on the events due now (runner.run_due): counts, or nil, err.
function Receiver:run_due()
  local s, err = self:store()
  if not s then return nil, err end
  return runner.run_due(s, self.opts, core.wall)
end

return M
