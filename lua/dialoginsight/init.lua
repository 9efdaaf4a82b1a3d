--- dialoginsight: Dialog Insight's OFC4 web services as Lua tables.
-- @module dialoginsight
-- @usage
-- local di = require "dialoginsight"
-- local client = di.new()                 -- reads DI_KEY_ID, DI_KEY, ...
-- local r, err = client:call("contacts", "Merge", { Records = {...} })
local found, core = pcall(require, "dialoginsight.core")
if not found and not tostring(core):find("module 'dialoginsight.core' not found", 1, true) then
  error(core, 0) -- found, but it does not load: its own message says why
elseif not found then
  error("dialoginsight's C core (dialoginsight.core) is not built or not on package.cpath: run "
    .. "`make` in the checkout (then LUA_CPATH=\"$PWD/build/lua5.4/?.so;;\", or build/luajit, build/lua5.1), or install the rock "
    .. "(luarocks make, then eval \"$(luarocks path)\")\n" .. tostring(core), 0)
end
local config = require "dialoginsight.config"
local client = require "dialoginsight.client"
local errors = require "dialoginsight.errors"
local log = require "dialoginsight.log"
local registry = require "dialoginsight.registry"
local limiter = require "dialoginsight.limiter"
local metrics = require "dialoginsight.metrics"

local M = {
  --- The library's name and version.
  _VERSION = "dialoginsight 0.1.0",
  --- JSON null, for values that must be sent as null (and read in arrays).
  -- @usage client.contacts:merge{ EMail = "ann@example.com", City = di.null }  -- clears City
  null = core.null,
  --- Marks a table (or a new one) as a JSON array, so that an empty one is sent as [].
  -- @function array
  array = core.array,
  --- JSON text of a Lua value, as requests are encoded (or nil, why).
  -- @function encode
  -- @param value a table, string, number, boolean, `null` or `array`
  -- @return the JSON text, or nil and why, naming the field (`Records[3].Data.f_City: invalid UTF-8 at byte 7`)
  encode = core.encode,
  --- The Lua value of JSON text (or nil, why); a number a Lua number cannot hold exactly stays a string.
  -- @function decode
  -- @tparam string text JSON text (a UTF-8 BOM is fine)
  -- @usage local r = di.decode('{"idBatch": 9007199254740993, "Score": 12.5}')
  -- -- r.idBatch == "9007199254740993", r.Score == 12.5
  decode = core.decode,
  --- A streaming CSV reader (RFC 4180, ',' or ';'), with reader:header(), reader:next(), reader:close().
  -- @function csv
  -- @tparam string path the CSV file
  csv = core.csv_open,
  --- True for an error object of this library (`dialoginsight.errors`).
  -- @function is_error
  is_error = errors.is_error,
  --- As Lua's assert, for a call that returns `nil, err`: the values given
  -- when the first is true, else raises err (its text under PUC-Rio Lua 5.1,
  -- whose assert refuses a table, and in nginx: docs/conventions.md).
  -- @function assert
  -- @usage local r = di.assert(client.contacts:merge{ EMail = "ann@example.com" })
  assert = function(v, err, ...)
    if v then return v, err, ... end
    if err == nil then error("assertion failed!", 2) end
    errors.raise(err)
  end,
  --- Every OFC4 method the library knows: scope, idempotency, paging, result member, evidence.
  registry = registry,
  --- The settings' schema and checks (`dialoginsight.config`).
  config = config,
  --- Metrics: `render` a snapshot (`client:metrics()`) as Prometheus text, `value` of a family (`dialoginsight.metrics`).
  metrics = require "dialoginsight.metrics",
  --- Where-clauses, such as di.where.gt("Points", 10) (`dialoginsight.records.where`).
  where = require "dialoginsight.records.where",
}

-- once per process: a job that builds a client per batch must not bury its output
local warned_insecure = false
local function warn_insecure(settings)
  if settings.tls_verify == false and not warned_insecure then
    warned_insecure = true
    log.warn("dialoginsight: WARNING: TLS verification is off (tls_verify = false): "
      .. "anyone on the path can read the API key and the data")
  end
end

local function gather(opts)
  if opts == nil then return config.from_env() end
  -- not a table, or one with a metatable (its members behind __index would be dropped
  -- by the copy below): config.resolve says why
  if type(opts) ~= "table" or getmetatable(opts) ~= nil then return opts end
  if opts.env ~= nil and type(opts.env) ~= "boolean" then
    error("dialoginsight: setting 'env' must be true or false", 3)
  end
  local s = opts.env == false and {} or config.from_env()
  -- an explicit region wins over the environment's base URL too
  if opts.region ~= nil and opts.base_url == nil then s.base_url = nil end
  for k, v in pairs(opts) do
    if k ~= "env" then s[k] = v end
  end
  return s
end

--- Creates a client.  Each setting comes from opts, else its DI_* variable (not with
-- env = false), else its default; a missing, invalid or unknown setting raises.
-- @tparam[opt] table opts the settings (`dialoginsight.config.settings`)
-- @treturn dialoginsight.client.Client the client
-- @usage local client = di.new()                    -- the environment alone
-- local client = di.new { project = 7, deadline = 5 }   -- the rest from DI_*
function M.new(opts)
  local settings = config.resolve(gather(opts))
  warn_insecure(settings)
  -- inside nginx, cosockets (never block a worker), for Redis too
  local ngx_transport = require "dialoginsight.transport.ngx"
  local nginx = ngx_transport.available()
    and { phases = ngx_transport.PHASES, connect = ngx_transport.connect } or nil
  local transport = settings.transport
  if transport == nil then
    transport = nginx and ngx_transport.new(settings)
      or require("dialoginsight.transport.curl").new(settings)
  end
  -- Redis's fallback, counted and (in JSON) logged as an event of its own; the
  -- limiter's warning already says it in text
  local counted = settings.metrics ~= false and metrics.default() or nil
  local lim, why = limiter.open(settings, nginx, { fallback = function(active, reason, gone)
    if counted then counted:fallback(active, gone) end
    if not gone then
      log.event("fallback", { active = active, message = reason }, nil, active and "warn" or "info")
    end
  end })
  if not lim then error("dialoginsight: setting 'limiter_dir': " .. why, 2) end
  return client.new(settings, transport, lim)
end

return M
