--- Client settings: the one schema of every setting, read from the environment or a
-- config file and validated; di.new, the nginx examples and the command all use it.
-- A bad setting raises naming it (the key's value never appears in a message).
-- @module dialoginsight.config
local core = require "dialoginsight.core"
local errors = require "dialoginsight.errors"
local log = require "dialoginsight.log"
local options = require "dialoginsight.options"
local registry = require "dialoginsight.registry"
local redis = require "dialoginsight.limiter.redis"
local reserve = require "dialoginsight.limiter.reserve"
local retry = require "dialoginsight.call.retry"

local M = {}

--- The base URL of each `region`.
M.REGIONS = {
  ca = "https://app.dialoginsight.com/webservices/ofc4/",
  fr = "https://app.mydialoginsight.com/webservices/ofc4/",
}

--- Every setting, in the order of the help: name, kind (how text converts: "text",
-- "number", "boolean"), default, env, file (a config file may set it), doc (before the
-- first "; ": the help's text; scripts/settings-doc writes the `settings` block from it).
-- @table SETTINGS
M.SETTINGS = {
  { name = "key_id", kind = "text", env = "DI_KEY_ID", file = true,
    doc = "the API key's id (idKey), from the platform's UI; required" },
  { name = "key", kind = "text", env = "DI_KEY", file = true,
    doc = "the API key's secret (AuthKey); required; never put it in code or argv" },
  { name = "project", kind = "text", env = "DI_PROJECT", file = true,
    doc = "idProject for project-scoped calls; a call may pass its own idProject" },
  { name = "region", kind = "text", default = "ca", env = "DI_REGION", file = true,
    doc = "\"ca\" (the default) or \"fr\"; ca: app.dialoginsight.com, fr: app.mydialoginsight.com" },
  { name = "base_url", kind = "text", env = "DI_BASE_URL", file = true,
    doc = "instead of region: any OFC4 base URL; http(s)://HOST[:PORT]/PATH in printable ASCII, "
      .. "without user info, query or fragment" },
  { name = "ca_file", kind = "text", env = "DI_CA_FILE", file = true,
    doc = "CA bundle to verify the server with; default: the system store; ignored in nginx, "
      .. "where lua_ssl_trusted_certificate decides" },
  { name = "timeout", kind = "number", default = 30, file = true,
    doc = "seconds per attempt (30), from 0.001 to 86400" },
  { name = "connect_timeout", kind = "number", default = 10, file = true,
    doc = "seconds to connect, per attempt (10), from 0.001 to 86400" },
  { name = "deadline", kind = "number", file = true,
    doc = "seconds for a whole call: its attempts, limiter waits and back-offs together "
      .. "(default: none)" },
  { name = "max_reply_bytes", kind = "number", default = 64 * 1024 * 1024, file = true,
    doc = "the largest reply body read, in bytes (64 MiB); a larger one fails with a `too_large` "
      .. "error, not retried, and is not kept in memory" },
  { name = "user_agent", kind = "text", default = "dialoginsight-lua/0.1", file = true,
    doc = "the User-Agent header (dialoginsight-lua/0.1); at most 256 bytes, no control characters" },
  { name = "tls_verify", kind = "boolean", default = true, file = true,
    doc = "true (the default); false only for a throwaway test, never in production" },
  { name = "http2", kind = "boolean", default = true, file = true,
    doc = "true (the default): offer HTTP/2 where the server speaks it; each call in flight still "
      .. "has a connection of its own; false: HTTP/1.1 only" },
  { name = "allow_http", kind = "boolean", default = false,
    doc = "false (the default): a plain http:// base_url is refused (the key would travel in "
      .. "clear) unless this is true" },
  { name = "concurrency", kind = "number", default = 8,  file = true,
    doc = "calls in flight at once in call_many and call_stream (8)" },
  { name = "retries", kind = "number", file = true,
    doc = "retries after the first attempt (2), or a table { retries =, base =, cap =, "
      .. "max_retry_after = } (call/retry.lua)" },
  { name = "rate", kind = "number", default = 10, env = "DI_RATE", file = true,
    doc = "the shared limit, calls per second per key on this host (10); from 0.01 to 1e6; "
      .. "false turns it off" },
  { name = "burst", kind = "number", default = 10, env = "DI_BURST", file = true,
    doc = "calls allowed back to back (10); from 1 to 1e6; a burst spans 60 s at most" },
  { name = "priority", kind = "text", default = "interactive", env = "DI_PRIORITY", file = true,
    doc = "\"interactive\" (the default) or \"batch\": the calls' priority for the rate limit; "
      .. "batch calls leave a reserve to interactive ones (docs/limiter.md); a call's option "
      .. "priority overrides it; sync and export default to batch" },
  { name = "batch_share", kind = "number", default = 0.8, env = "DI_BATCH_SHARE", file = true,
    doc = "the part of rate batch calls may take alone, above 0 and at most 1 (0.8); 1: no reserve" },
  { name = "limiter_dir", kind = "text", env = "DI_LIMITER_DIR", file = true,
    doc = "where the shared limit lives, an absolute path; default: $XDG_RUNTIME_DIR, else "
      .. "/tmp/dialoginsight-UID" },
  { name = "limiter_url", kind = "text", env = "DI_LIMITER_URL", file = true,
    doc = "share the limit between hosts through Redis; redis://[:password@]host:port[/db] or "
      .. "unix:///path" },
  { name = "hosts", kind = "number", default = 1, env = "DI_HOSTS", file = true,
    doc = "how many hosts share the key, for the default fallback_rate (1)" },
  { name = "fallback_rate", kind = "number", env = "DI_FALLBACK_RATE", file = true,
    doc = "this host's own limit while Redis is away (rate / hosts)" },
  { name = "strict", kind = "boolean", default = true,
    doc = "true (the default): check field names and types against the project's fields "
      .. "before sending" },
  { name = "key_field", kind = "text", env = "DI_KEY_FIELD", file = true,
    doc = "the contacts' key field; default: the one Projects.Get marks isKey, else EMail" },
  { name = "trace", kind = "boolean",
    doc = "true logs each attempt to stderr; a function receives each event (see the client's "
      .. "on_call)" },
  { name = "log_format", kind = "text", env = "DI_LOG_FORMAT", file = true,
    doc = "\"text\" (the default) or \"json\": one JSON object per log line (docs/logging.md); "
      .. "the process's: set by a client that gives it, kept by one that does not" },
  { name = "metrics", kind = "boolean", default = true, file = true,
    doc = "true (the default): count calls, waits and retries into the process's metrics "
      .. "(docs/metrics.md); false: this client counts nothing" },
  { name = "methods", kind = "object",
    doc = "corrections of the registry, by the library's name of a method: "
      .. "{ [\"segments.List\"] = { service =, method =, result =, paging = ... } } (registry.lua)" },
  { name = "methods_file", kind = "text", env = "DI_METHODS_FILE", file = true,
    doc = "corrections of the registry as a JSON file, shaped as methods; a regular file of "
      .. "1 MiB at most" },
  { name = "limit_messages", kind = "object",
    doc = "more patterns of the service's call-limit message (Lua patterns, lower case)" },
  { name = "transport", kind = "object",
    doc = "a transport table of your own (docs/transport.md); default: libcurl, or cosockets "
      .. "inside nginx" },
  { name = "env", kind = "boolean", default = true,
    doc = "true (the default); false: the DI_* environment fills nothing in" },
  -- the receiver's (dialoginsight.webhooks, `dialoginsight events`), not di.new's
  { name = "webhook_secret", kind = "text", env = "DI_WEBHOOK_SECRET", file = true, home = "webhooks",
    doc = "the secret that signs Dialog Insight's webhook deliveries; never put it in code or argv" },
  { name = "webhook_store", kind = "text", env = "DI_WEBHOOK_STORE", file = true, home = "webhooks",
    doc = "the received events' SQLite file, for `dialoginsight events`" },
}

--- The settings of `dialoginsight.new` and the command: the table's value, else DI_*, else the default.
-- Durations are in seconds, not milliseconds as in resty libraries (over 600 s warns once).
-- Unknown settings raise, with the closest name.  Fields: scripts/settings-doc.
-- @table settings
-- @usage local client = di.new {
--   key_id = 12, key = os.getenv("DI_KEY"), project = 3456,
--   timeout = 30, connect_timeout = 10,   -- seconds, per attempt
--   rate = 10, burst = 10,
-- }

local BY_NAME = {}
for _, s in ipairs(M.SETTINGS) do BY_NAME[s.name] = s end

--- The schema entry of a setting, or nil.
-- @treturn ?table { name, kind, default, env, file }
function M.setting(name) return BY_NAME[name] end

local function bad(name, why)
  error("dialoginsight: setting '" .. name .. "' " .. why, 0)
end

--- The value of a setting given as text (a variable, a config-file line), or raises naming `where`.
-- @tparam string name the setting
-- @tparam string text its value as text
-- @tparam string where what to name in a message (the variable, or the file and line)
function M.from_text(name, text, where)
  local kind = BY_NAME[name].kind
  if kind == "number" then
    local n = tonumber(text)
    if not n then error(where .. ": expects a number", 0) end
    return n
  elseif kind == "boolean" then
    if text == "true" then return true elseif text == "false" then return false end
    error(where .. ": expects true or false", 0)
  end
  return text
end

--- The settings the DI_* environment variables give (unset ones are absent).
-- @tparam[opt=os.getenv] function getenv
-- @tparam[opt] string home "webhooks": that module's settings; nil: di.new's
function M.from_env(getenv, home)
  getenv = getenv or os.getenv
  local s = {}
  for _, def in ipairs(M.SETTINGS) do
    local v = def.env and def.home == home and getenv(def.env) or nil
    if v ~= nil and v ~= "" then s[def.name] = M.from_text(def.name, v, def.env) end
  end
  return s
end

-- Checks ----------------------------------------------------------------------

local function positive_integer(name, v, required)
  if v == nil then
    if required then bad(name, "is missing") end
    return nil
  end
  local n = tonumber(v)
  if n == nil or n ~= math.floor(n) or n < 1 or n > 2^53 then
    bad(name, "must be a positive integer (got " .. errors.describe(v) .. ")")
  end
  return math.tointeger and math.tointeger(n) or n
end

local function seconds(name, v)
  local why = options.seconds(v)
  if why then bad(name, why .. " (got " .. errors.describe(v) .. ")") end
  options.warn_long("setting '" .. name .. "'", v)
  return v
end

--- The smallest max_reply_bytes: an error envelope must fit.
M.MIN_REPLY_BYTES = 1024
--- The largest: 1 TiB (a transport keeps a reply in memory).
M.MAX_REPLY_BYTES = 2 ^ 40

local function reply_bytes(v)
  if type(v) ~= "number" or v ~= math.floor(v) or not (v >= M.MIN_REPLY_BYTES and v <= M.MAX_REPLY_BYTES) then
    bad("max_reply_bytes", "must be a whole number of bytes from " .. M.MIN_REPLY_BYTES
      .. " to 2^40 (got " .. errors.describe(v) .. ")")
  end
  return v
end

-- Every setting of kind "boolean" takes true or false, nothing that merely
-- reads as one: allow_http = "false" or 0 is truthy in Lua and would send the
-- key in clear.  trace may also be a function.
local function check_booleans(s)
  for _, def in ipairs(M.SETTINGS) do
    local v = s[def.name]
    if def.kind == "boolean" and v ~= nil and type(v) ~= "boolean"
        and not (def.name == "trace" and type(v) == "function") then
      local also = def.name == "trace" and " or a function(event)" or ""
      bad(def.name, "must be true or false" .. also .. " (got " .. errors.describe(v) .. ")")
    end
  end
end

local function check_key(key)
  if key == nil then bad("key", "is missing") end
  if type(key) ~= "string" or key == "" then bad("key", "must be a non-empty string") end
  if key:find("[^\33-\126]") then
    -- it goes into every JSON body: a byte that cannot travel there would
    -- fail every call later, with a less clear message (the value is not shown)
    bad("key", "must be printable ASCII without spaces (check for a stray newline or encoding)")
  end
end

-- A base URL goes into every request line and the limiter file's name: CR, LF, spaces,
-- control bytes, or a password (user:pass@, shown by tostring(client)) are refused here.
local function check_base_url(u)
  if type(u) ~= "string" then
    bad("base_url", "must be a string (got " .. errors.describe(u) .. ")")
  end
  if u:find("[^\33-\126]") then
    bad("base_url", "must be a URL of printable ASCII, without spaces, CR, LF or other "
      .. "control characters (got " .. errors.describe(u) .. ")")
  end
  local authority = u:match("^https?://([^/?#]*)")
  if not authority or authority == "" then bad("base_url", "must be an http(s) URL") end
  if authority:find("@", 1, true) then
    bad("base_url", "must not hold user info (user:password@): the API key is the only "
      .. "credential, and a password there would show in messages and file names")
  end
  if u:find("[?#]") then bad("base_url", "must not hold a query or a fragment (? or #)") end
  local host, port = authority:match("^([%w%.%-]+):?(%d*)$")
  if not host then host, port = authority:match("^(%[[%x:%.]+%]):?(%d*)$") end
  if not host or (port ~= "" and not (tonumber(port) >= 1 and tonumber(port) <= 65535)) then
    bad("base_url", "must be http(s)://HOST[:PORT]/PATH with a host name or address")
  end
end

local function check_url(s, given)
  if not given then
    s.base_url = M.REGIONS[s.region]
    if not s.base_url then bad("region", "must be \"ca\" or \"fr\"") end
  else
    check_base_url(s.base_url)
    if s.base_url:sub(-1) ~= "/" then s.base_url = s.base_url .. "/" end
  end
  if s.base_url:match("^http://") and not s.allow_http then
    bad("base_url", "is plain http, which would send the key in clear; "
        .. "set allow_http = true to do so on purpose")
  end
end

-- The User-Agent header's value: CR or LF there would add headers of the
-- caller's choosing to every request (both transports write it as given).
local function check_user_agent(v)
  if type(v) ~= "string" or #v > 256 or v:find("%c") then
    bad("user_agent", "must be text of at most 256 bytes without CR, LF or other control "
      .. "characters (got " .. errors.describe(v) .. ")")
  end
end

-- Why the file at path cannot be used (a FIFO, device or directory would block or fail),
-- or nil; the reason never holds the path, a setting's value (errors.describe).
local function open_problem(path)
  local ok, why = core.read_file(path, 0)
  return not ok and why or nil
end

local function check_files(s)
  if s.ca_file ~= nil then
    if type(s.ca_file) ~= "string" then
      bad("ca_file", "must be a path (got " .. errors.describe(s.ca_file) .. ")")
    end
    local why = open_problem(s.ca_file)
    if why then bad("ca_file", "names a file that cannot be read (" .. why .. ")") end
  end
  local dir = s.limiter_dir
  if dir ~= nil and (type(dir) ~= "string" or dir:sub(1, 1) ~= "/") then
    -- absolute: every process sharing the limit must find the same file,
    -- whatever its working directory
    bad("limiter_dir", "must be an absolute directory path (got " .. errors.describe(dir) .. ")")
  end
end

--- The lowest rate (and fallback_rate), calls per second: one per 100 s; slower is a
-- schedule, and each slot holds every sharer of the key that long (src/di_limiter.c).
M.MIN_RATE = 0.01
--- The highest rate taken, calls per second.
M.MAX_RATE = 1e6
--- The largest burst taken, calls (a burst spans 60 s at most: src/di_limiter.c).
M.MAX_BURST = 1e6

local function calls_per_second(name, v)
  if type(v) ~= "number" or not (v >= M.MIN_RATE and v <= M.MAX_RATE) then
    bad(name, "must be calls per second from " .. M.MIN_RATE .. " (one call per 100 s) to 1e6"
      .. (name == "rate" and ", or false to turn limiting off" or "")
      .. " (got " .. errors.describe(v) .. ")")
  end
end

local function check_limits(s)
  if s.rate ~= false then calls_per_second("rate", s.rate) end
  if type(s.burst) ~= "number" or not (s.burst >= 1) or s.burst > M.MAX_BURST then
    bad("burst", "must be a number of calls from 1 to 1e6 (got " .. errors.describe(s.burst) .. ")")
  end
  if s.limiter_url ~= nil then
    -- (the URL may hold a password: the message never shows it)
    local ok, why = redis.parse_url(s.limiter_url)
    if not ok then bad("limiter_url", why) end
  end
  local why = options.priority(s.priority)
  if why then bad("priority", why .. " (got " .. errors.describe(s.priority) .. ")") end
  if type(s.batch_share) ~= "number" or not (s.batch_share > 0 and s.batch_share <= 1) then
    bad("batch_share", "must be a number above 0 and at most 1, the part of rate batch calls "
      .. "may take (got " .. errors.describe(s.batch_share) .. ")")
  end
  s.hosts = positive_integer("hosts", s.hosts, true)
  if s.fallback_rate ~= nil then calls_per_second("fallback_rate", s.fallback_rate) end
  -- a share the burst cannot keep a reserve for would hold interactive calls a whole batch
  -- slot: batch calls then go as interactive ones (limit_status says so: reserve_void)
  if s.rate ~= false and s.batch_share < 1 and not reserve.holds(s.rate, s.burst, s.batch_share) then
    s.reserve_void = string.format("batch_share %g needs a larger burst (burst >= reserve + 1/share): "
      .. "no reserve, batch calls go as interactive ones", s.batch_share)
    s.batch_share = 1
  end
end

-- The corrections of guesses (docs/wire.md): registry, call-limit patterns, key field.
local function check_guesses(s)
  s.registry = registry.of_settings(s.methods, s.methods_file)
  if s.limit_messages ~= nil then
    local ok = type(s.limit_messages) == "table"
    for _, p in ipairs(ok and s.limit_messages or {}) do
      ok = ok and type(p) == "string" and pcall(string.find, "", p)
    end
    if not ok then bad("limit_messages", "must be a list of Lua patterns (strings)") end
  end
  if s.key_field ~= nil and (type(s.key_field) ~= "string" or not s.key_field:match("^[%a_][%w_]*$")) then
    bad("key_field", "must be a field name such as \"EMail\"")
  end
end

-- No other setting may hold the key: text settings travel (headers, request lines,
-- tostring(client)) or name files.
local function check_key_elsewhere(s)
  local key = s.key
  for _, def in ipairs(M.SETTINGS) do
    local v = s[def.name]
    if def.name ~= "key" and type(v) == "string"
        and (v == key or (#key >= 8 and v:find(key, 1, true))) then
      bad(def.name, "holds the API key: it belongs in 'key' only")
    end
  end
end

-- Names only: a value's check needs the others (base_url and allow_http).
local NAMES = {}
for k, def in pairs(BY_NAME) do NAMES[k] = not def.home or nil end
NAMES = options.set(NAMES)
NAMES.noun = "setting"

local function resolve(opts)
  local why = options.problem(opts, NAMES, "di.new")
  if why then error(why, 0) end
  local s = {}
  for _, def in ipairs(M.SETTINGS) do s[def.name] = def.default end
  for k, v in pairs(opts) do s[k] = v end

  check_booleans(s) -- first: check_url reads allow_http
  s.key_id = positive_integer("key_id", s.key_id, true)
  check_key(s.key)
  check_key_elsewhere(s)
  s.project = positive_integer("project", s.project, false)
  check_url(s, opts.base_url ~= nil)
  check_files(s)
  s.timeout = seconds("timeout", s.timeout)
  s.connect_timeout = seconds("connect_timeout", s.connect_timeout)
  if s.deadline ~= nil then s.deadline = seconds("deadline", s.deadline) end
  s.max_reply_bytes = reply_bytes(s.max_reply_bytes)
  check_user_agent(s.user_agent)
  s.concurrency = positive_integer("concurrency", s.concurrency, true)
  s.retries, why = retry.policy(s.retries, "setting")
  if not s.retries then error(why, 0) end
  check_limits(s)
  check_guesses(s)
  if s.log_format ~= nil and not log.FORMATS[s.log_format] then
    bad("log_format", "must be \"text\" or \"json\" (got " .. errors.describe(s.log_format) .. ")")
  end
  if s.transport ~= nil and type(s.transport) ~= "table" then
    bad("transport", "must be a transport table (docs/transport.md) (got "
      .. errors.describe(s.transport) .. ")")
  end
  return s
end

--- Validates user settings and returns a new, complete settings table (defaults filled in).
-- Raises naming the setting; the key's value is redacted should a check ever quote it.
-- @tparam table opts the settings given (`settings`)
function M.resolve(opts)
  if type(opts) ~= "table" then
    error("dialoginsight.new: settings must be a table", 0)
  end
  local ok, s = pcall(resolve, opts)
  if ok then return s end
  error(errors.redactor(opts.key)(s), 0)
end

return M
