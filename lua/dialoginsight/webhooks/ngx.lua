--- The nginx home of a webhook receiver: a content handler that answers once the event is
-- stored, and a timer per worker that hands stored events to the handler.
-- @module dialoginsight.webhooks.ngx
-- @usage -- init_by_lua_block:
-- events = require("dialoginsight.webhooks.ngx").new { secret = ..., store = ..., handler = ... }
-- -- init_worker_by_lua_block { events:start() }
-- -- location = /dialoginsight/events { content_by_lua_block { events:serve() } }
local core = require "dialoginsight.core"
local receiver = require "dialoginsight.webhooks.receiver"
local webhooks = require "dialoginsight.webhooks"
local redis = require "dialoginsight.limiter.redis"
local transport = require "dialoginsight.transport.ngx"
local log = require "dialoginsight.log"

local M = {}

local Home = {}
Home.__index = Home

--- A receiver for nginx (receiver.OPTIONS): Redis through cosockets.
function M.new(opts)
  local nginx = { phases = transport.PHASES, connect = transport.connect }
  local r = receiver.new(opts, function(url, timeout) return redis.connect_ngx(url, timeout, nginx) end)
  return setmetatable({ r = r, max = opts.max_bytes or webhooks.MAX_BYTES, busy = false }, Home)
end

-- The body, up to max + 1 bytes (more is refused anyway), from memory or nginx's temp file.
local function body_of(max)
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then return body end
  local path = ngx.req.get_body_file()
  if not path then return "" end
  local f = io.open(path, "rb")
  if not f then return nil end
  body = f:read(max + 1)
  f:close()
  return body or ""
end

local function reply(status, t)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Cache-Control"] = "no-store"
  ngx.print(core.encode(t))
  return ngx.exit(ngx.OK) -- the status is set: the reply is sent
end

-- Hands the stored events to the handler until none is due, in worker 0 alone: two
-- workers' claims would wait on each other's transactions inside their event loops
-- (bench/README.md, scenario 8).  Between two claims (claim_size events) the worker serves
-- requests: SQLite and a handler that does not yield would otherwise hold it for the whole
-- backlog.
local function drainer() return (ngx.worker.id() or 0) == 0 end

local function drain(premature, self)
  self.kicked = false
  if premature or self.busy or not drainer() then return end
  self.busy = true
  local ok, err = pcall(function()
    for _ = 1, 1000 do
      local counts, why = self.r:run_due()
      if not counts then log.warn("dialoginsight: webhooks: " .. tostring(why)); return end
      if counts.claimed == 0 then return end
      ngx.sleep(0.001)
    end
  end)
  self.busy = false
  if not ok then log.warn("dialoginsight: webhooks: the runner failed: " .. tostring(err)) end
end

--- The content handler: POST only; 2xx once stored (or already stored), 401, 400, 403,
-- 413, 503 otherwise (docs/webhooks.md).
function Home:serve()
  if ngx.req.get_method() ~= "POST" then
    ngx.header["Allow"] = "POST"
    return reply(405, { ok = false, error = "method" })
  end
  local announced = tonumber(ngx.var.http_content_length)
  if announced and announced > self.max then return reply(413, { ok = false, error = "too_large" }) end
  local body = body_of(self.max)
  if not body then return reply(500, { ok = false, error = "body" }) end
  local status, t = self.r:receive(body, ngx.req.get_headers(200))
  -- handled soon, in one claim with the events that arrive meanwhile
  if t.stored and not self.kicked and drainer() then
    self.kicked = true
    ngx.timer.at(0.02, drain, self)
  end
  return reply(status, t)
end

--- Starts the handling (init_worker_by_lua, in every worker; worker 0 does it): every
-- interval seconds (1), and soon after an event is stored there, the due events go to the
-- handler; events stored while nginx was down are taken up at start.
function Home:start()
  if not drainer() then return end
  local every = self.r.opts.interval or 1
  local ok, err = ngx.timer.every(every, drain, self)
  if not ok then log.warn("dialoginsight: webhooks: cannot start the timer: " .. tostring(err)) end
  ngx.timer.at(0, drain, self)
end

--- The receiver (its store, its run_due), for a status page or a test.
function Home:receiver() return self.r end

return M
