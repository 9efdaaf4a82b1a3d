--- dialoginsight: Dialog Insight's OFC4 web services as Lua tables.
--
--   local di = require "dialoginsight"
--   local client = di.new()                 -- reads DI_KEY_ID, DI_KEY, ...
--   local r, err = client:call("contacts", "Merge", { Records = {...} })
local core = require "dialoginsight.core"
local config = require "dialoginsight.config"
local client = require "dialoginsight.client"
local errors = require "dialoginsight.errors"
local registry = require "dialoginsight.registry"
local limiter = require "dialoginsight.limiter"

local M = {
  _VERSION = "dialoginsight 0.1.0",
  --- JSON null, for values that must be sent as null (and read in arrays).
  null = core.null,
  --- Marks a table as a JSON array, so that an empty one is sent as [].
  array = core.array,
  --- JSON text of a Lua value, as requests are encoded (or nil, why).
  encode = core.encode,
  --- The Lua value of JSON text, integers exact (or nil, why).
  decode = core.decode,
  --- A streaming CSV reader (RFC 4180; ',' or ';'; a BOM; quotes over
  -- lines), as the sync reads its input: di.csv(path) -> reader, or nil,
  -- err; reader:header(), reader:next(), reader:close() (src/di_csv.c).
  csv = core.csv_open,
  is_error = errors.is_error,
  registry = registry,
  config = config,
  --- Where-clauses: di.where.gt("Points", 10), di.where.any{ ... } (records/where.lua).
  where = require "dialoginsight.records.where",
}

-- Turning TLS verification off must be loud, but once per process: a job
-- that builds a client per batch should not bury its own output.
local warned_insecure = false
local function warn_insecure(settings)
  if settings.tls_verify == false and not warned_insecure then
    warned_insecure = true
    io.stderr:write("dialoginsight: WARNING: TLS verification is off (tls_verify = false): ",
      "anyone on the path can read the API key and the data\n")
  end
end

-- The settings of di.new(opts): what opts gives, then what the DI_*
-- environment gives (config.SETTINGS), then the defaults; `env = false` in
-- opts leaves the environment out.
local function gather(opts)
  if opts == nil then return config.from_env() end
  if type(opts) ~= "table" then return opts end -- config.resolve says why
  if opts.env ~= nil and type(opts.env) ~= "boolean" then
    error("dialoginsight: setting 'env' must be true or false", 3)
  end
  local s = opts.env == false and {} or config.from_env()
  for k, v in pairs(opts) do
    if k ~= "env" then s[k] = v end
  end
  return s
end

--- Creates a client.  Each setting comes from the table given, else from
-- its DI_* environment variable, else its default (config.lua); with
-- env = false, from the table and the defaults only.
function M.new(opts)
  local settings = config.resolve(gather(opts))
  warn_insecure(settings)
  local transport = settings.transport
  if transport == nil then
    -- inside nginx the bytes must go through cosockets (never block a
    -- worker); everywhere else through libcurl
    local ngx_transport = require "dialoginsight.transport.ngx"
    if ngx_transport.available() then
      transport = ngx_transport.new(settings)
    else
      transport = require("dialoginsight.transport.curl").new(settings)
    end
  end
  local lim, why = limiter.open(settings)
  if not lim then error("dialoginsight: setting 'limiter_dir': " .. why, 2) end
  return client.new(settings, transport, lim)
end

return M
