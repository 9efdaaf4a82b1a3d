--- The example's shared parts: one dialoginsight client per nginx worker,
-- the dashboard's campaign list, and JSON replies.
--
-- init_by_lua calls app.init{...}; the client itself is created there too
-- (creating one needs no cosocket; only calls are bound to request phases
-- and timers), so every worker inherits it, and the shared limiter's file is
-- mapped once, before the fork.
local di = require "dialoginsight"

local M = {}

local client, campaigns

--- "1=Spring promo 2024;2=Welcome series" -> { {id=1, name=...}, ... }.
-- A bare id ("7") gets no name here: the dashboard shows the one its
-- statistics carry (campaigns:stats' name [assumed]), else "Campaign 7".
function M.parse_campaigns(spec)
  local list = {}
  for item in tostring(spec or ""):gmatch("[^;]+") do
    local id, name = item:match("^%s*(%d+)%s*=%s*(.-)%s*$")
    if not id then id = item:match("^%s*(%d+)%s*$") end
    if id then
      id = tonumber(id)
      list[#list + 1] = { id = id, name = (name and name ~= "") and name or nil }
    end
  end
  return list
end

--- opts: rate, burst, limiter_dir (nil: the library's default), campaigns
-- (the dashboard's list, see parse_campaigns), deadline (seconds for a
-- whole call, attempts, limiter waits and back-offs together: 5).  The key,
-- key id, project and base URL come from the DI_* environment, which
-- nginx.conf passes to Lua with `env` directives, so the key is never
-- written in nginx.conf.
function M.init(opts)
  opts = opts or {}
  local settings = di.config.from_env()
  settings.ca_file = nil -- in nginx the CA is lua_ssl_trusted_certificate's
  settings.rate = opts.rate
  settings.burst = opts.burst
  settings.limiter_dir = opts.limiter_dir
  settings.timeout = opts.timeout or 10
  settings.connect_timeout = opts.connect_timeout or 5
  -- a visitor waits for the handler: without a deadline a hung backend
  -- would hold /subscribe for every attempt's timeout and back-off (31 s)
  settings.deadline = opts.deadline or 5
  client = di.new(settings)
  campaigns = M.parse_campaigns(opts.campaigns)
end

function M.client()
  if not client then error("di_example.app.init{} was not called from init_by_lua", 2) end
  return client
end

function M.campaigns() return campaigns or {} end

--- Sends a JSON reply and ends the request.
function M.json(status, t, headers)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json; charset=utf-8"
  ngx.header["Cache-Control"] = "no-store"
  for k, v in pairs(headers or {}) do ngx.header[k] = v end
  ngx.say(di.encode(t))
  return ngx.exit(ngx.HTTP_OK)
end

-- What the public is told of each kind of failure.  The library's own
-- message stays in nginx's error log: it names internal addresses
-- ("cannot connect to localhost:8443"), and the server's text is not ours
-- to pass on.
local PUBLIC = {
  network = "Dialog Insight could not be reached",
  timeout = "Dialog Insight did not answer in time",
  tls = "the connection to Dialog Insight could not be secured",
  http = "Dialog Insight answered with an error",
  auth = "Dialog Insight refused this site's credentials",
  rate_limited = "too many requests to Dialog Insight for now",
  api = "Dialog Insight refused the request",
  decode = "Dialog Insight's answer could not be read",
  validation = "the request was not valid",
}

--- A library error as the public sees it: its kind, code, a fixed message
-- per kind, the request id to quote to support, and when to retry (never
-- the library's message: see PUBLIC).
function M.public_error(err)
  return {
    kind = err.kind, code = err.code, message = PUBLIC[err.kind] or "the call failed",
    request_id = err.request_id, retry_after = err.retry_after,
  }
end

return M
