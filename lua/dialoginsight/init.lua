--- dialoginsight: Dialog Insight's OFC4 web services as Lua tables.
--
-- `di.new` makes a client (see `dialoginsight.client`); the rest of this
-- table is what a script needs beside it: JSON values, the CSV reader,
-- where-clauses, and the test for an error object.
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
local registry = require "dialoginsight.registry"
local limiter = require "dialoginsight.limiter"

local M = {
  --- The library's name and version.
  _VERSION = "dialoginsight 0.1.0",
  --- JSON null, for values that must be sent as null (and read in arrays).
  -- @usage client.contacts:merge{ EMail = "ann@example.com", City = di.null }  -- clears City
  null = core.null,
  --- Marks a table as a JSON array, so that an empty one is sent as [].
  -- @function array
  -- @tparam[opt] table t the list (a new empty one when absent)
  -- @treturn table t, marked
  array = core.array,
  --- JSON text of a Lua value, as requests are encoded (or nil, why).
  -- Integers are written exactly; NaN, infinity, invalid UTF-8, cycles,
  -- holes and mixed keys are refused, naming the field.
  -- @function encode
  -- @param value a table, string, number, boolean, `null` or `array`
  -- @treturn[1] string the JSON text
  -- @treturn[2] nil
  -- @treturn[2] string why, naming the field (`Records[3].Data.f_City: invalid UTF-8 at byte 7`)
  encode = core.encode,
  --- The Lua value of JSON text, integers exact (or nil, why).
  -- A number a Lua number cannot hold as written comes back as a string;
  -- text that is not JSON is refused (README.md, "JSON").
  -- @function decode
  -- @tparam string text JSON text (a UTF-8 BOM is fine)
  -- @return[1] the value
  -- @treturn[2] nil
  -- @treturn[2] string why
  -- @usage local r = di.decode('{"idBatch": 9007199254740993, "Score": 12.5}')
  -- -- r.idBatch == "9007199254740993", r.Score == 12.5
  decode = core.decode,
  --- A streaming CSV reader (RFC 4180; ',' or ';'; a BOM; quotes over
  -- lines), as the sync reads its input: di.csv(path) -> reader, or nil,
  -- err; reader:header(), reader:next(), reader:close() (src/di_csv.c).
  -- @function csv
  -- @tparam string path the CSV file
  -- @return[1] the reader
  -- @treturn[2] nil
  -- @treturn[2] string why
  csv = core.csv_open,
  --- True for an error object of this library (`dialoginsight.errors`).
  -- @function is_error
  -- @param v any value
  -- @treturn boolean
  is_error = errors.is_error,
  --- Every OFC4 method the library knows: scope, idempotency, paging,
  -- result member, evidence (registry.lua).
  registry = registry,
  --- The settings' schema and checks (`dialoginsight.config`).
  config = config,
  --- Where-clauses: di.where.gt("Points", 10), di.where.any{ ... } (records/where.lua).
  -- See `dialoginsight.records.where`.
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
  -- region and base_url are two ways to say one thing: a region given
  -- explicitly wins over the environment's base URL too
  if opts.region ~= nil and opts.base_url == nil then s.base_url = nil end
  for k, v in pairs(opts) do
    if k ~= "env" then s[k] = v end
  end
  return s
end

--- Creates a client.  Each setting comes from the table given, else from
-- its DI_* environment variable, else its default (config.lua); with
-- env = false, from the table and the defaults only.
-- A missing, invalid or unknown setting raises, naming it.
-- @tparam[opt] table opts the settings (`dialoginsight.config.settings`)
-- @treturn dialoginsight.client.Client the client
-- @usage local client = di.new()                    -- the environment alone
-- local client = di.new { project = 7, deadline = 5 }   -- the rest from DI_*
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
