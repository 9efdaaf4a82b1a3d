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
-- A bare id ("7") gets the name "Campaign 7".
function M.parse_campaigns(spec)
  local list = {}
  for item in tostring(spec or ""):gmatch("[^;]+") do
    local id, name = item:match("^%s*(%d+)%s*=%s*(.-)%s*$")
    if not id then id = item:match("^%s*(%d+)%s*$") end
    if id then
      id = tonumber(id)
      list[#list + 1] = { id = id, name = (name and name ~= "") and name or ("Campaign " .. id) }
    end
  end
  return list
end

--- opts: rate, burst, limiter_dir (nil: the library's default), campaigns
-- (the dashboard's list, see parse_campaigns).  The key, key id, project
-- and base URL come from the DI_* environment, which nginx.conf passes to
-- Lua with `env` directives, so the key is never written in nginx.conf.
function M.init(opts)
  opts = opts or {}
  local settings = di.config.from_env()
  settings.ca_file = nil -- in nginx the CA is lua_ssl_trusted_certificate's
  settings.rate = opts.rate
  settings.burst = opts.burst
  settings.limiter_dir = opts.limiter_dir
  settings.timeout = opts.timeout or 10
  settings.connect_timeout = opts.connect_timeout or 5
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

--- A library error as the public sees it: its kind and message (error
-- objects never hold the key; the server's Trace is not included).
function M.public_error(err)
  return {
    kind = err.kind, code = err.code, message = err.message,
    request_id = err.request_id, retry_after = err.retry_after,
  }
end

return M
