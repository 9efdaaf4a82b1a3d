--- Client settings: the one schema of every setting (its kind, default,
-- environment variable and config-file key), reading them from the
-- environment or a config file's text, and validating a settings table.
--
-- di.new, the nginx examples and the dialoginsight command all read this
-- schema, so a setting has one name, one default and one check wherever it
-- is given.  A bad setting is a programming or deployment error, so it
-- raises, and the message names the setting. The key's value never appears
-- in a message.
local core = require "dialoginsight.core"
local registry = require "dialoginsight.registry"
local redis = require "dialoginsight.limiter.redis"
local retry = require "dialoginsight.call.retry"

local M = {}

M.REGIONS = {
  ca = "https://app.dialoginsight.com/webservices/ofc4/",
  fr = "https://app.mydialoginsight.com/webservices/ofc4/",
}

-- Every setting, in the order `dialoginsight --help` and the README list
-- them.  kind says how a value read as text (environment, config file) is
-- converted: "text", "number" or "boolean" (true/false only); the checks
-- below decide what is valid.  env: the DI_* variable; file: whether a
-- config file may set it.
M.SETTINGS = {
  { name = "key_id", kind = "text", env = "DI_KEY_ID", file = true },
  { name = "key", kind = "text", env = "DI_KEY", file = true },
  { name = "project", kind = "text", env = "DI_PROJECT", file = true },
  { name = "region", kind = "text", default = "ca", env = "DI_REGION", file = true },
  { name = "base_url", kind = "text", env = "DI_BASE_URL", file = true },
  { name = "ca_file", kind = "text", env = "DI_CA_FILE", file = true },
  { name = "timeout", kind = "number", default = 30, file = true },
  { name = "connect_timeout", kind = "number", default = 10, file = true },
  { name = "user_agent", kind = "text", default = "dialoginsight-lua/0.1", file = true },
  { name = "tls_verify", kind = "boolean", default = true, file = true },
  { name = "http2", kind = "boolean", default = true, file = true },
  { name = "allow_http", kind = "boolean", default = false },
  { name = "concurrency", kind = "number", default = 8, file = true },
  { name = "retries", kind = "number", file = true }, -- or a table (call/retry.lua)
  { name = "rate", kind = "number", default = 10, env = "DI_RATE", file = true },
  { name = "burst", kind = "number", default = 10, env = "DI_BURST", file = true },
  { name = "limiter_dir", kind = "text", env = "DI_LIMITER_DIR", file = true },
  { name = "limiter_url", kind = "text", env = "DI_LIMITER_URL", file = true },
  { name = "hosts", kind = "number", default = 1, env = "DI_HOSTS", file = true },
  { name = "fallback_rate", kind = "number", env = "DI_FALLBACK_RATE", file = true },
  { name = "strict", kind = "boolean", default = true },
  { name = "key_field", kind = "text", env = "DI_KEY_FIELD", file = true },
  { name = "trace", kind = "boolean" }, -- or a function(event)
  { name = "methods", kind = "object" }, -- registry overrides (registry.lua)
  { name = "methods_file", kind = "text", env = "DI_METHODS_FILE", file = true },
  { name = "limit_messages", kind = "object" }, -- call-limit message patterns (call/reply.lua)
  { name = "transport", kind = "object" },
}

local BY_NAME = {}
for _, s in ipairs(M.SETTINGS) do BY_NAME[s.name] = s end

--- The schema entry of a setting, or nil.
function M.setting(name) return BY_NAME[name] end

local function bad(name, why)
  error("dialoginsight: setting '" .. name .. "' " .. why, 0)
end

--- The value of a setting given as text (an environment variable or a
-- config-file line), or raises naming `where`.
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
function M.from_env(getenv)
  getenv = getenv or os.getenv
  local s = {}
  for _, def in ipairs(M.SETTINGS) do
    local v = def.env and getenv(def.env)
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
    bad(name, "must be a positive integer (got " .. string.format("%q", tostring(v)) .. ")")
  end
  return math.tointeger and math.tointeger(n) or n
end

local function seconds(name, v)
  if type(v) ~= "number" or v <= 0 or v > 86400 or v ~= v then
    bad(name, "must be a number of seconds between 0 and 86400")
  end
  return v
end

local function boolean(name, v)
  if type(v) ~= "boolean" then bad(name, "must be a boolean") end
  return v
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

local function check_url(s, given)
  if not given then
    s.base_url = M.REGIONS[s.region]
    if not s.base_url then bad("region", "must be \"ca\" or \"fr\"") end
  elseif type(s.base_url) ~= "string" then
    bad("base_url", "must be a string")
  else
    if not s.base_url:match("^https?://[^/]+") then bad("base_url", "must be an http(s) URL") end
    if s.base_url:sub(-1) ~= "/" then s.base_url = s.base_url .. "/" end
  end
  if s.base_url:match("^http://") and not s.allow_http then
    bad("base_url", "is plain http, which would send the key in clear; "
        .. "set allow_http = true to do so on purpose")
  end
end

local function check_limits(s)
  if s.rate ~= false and (type(s.rate) ~= "number" or not (s.rate > 0) or s.rate > 1e6) then
    bad("rate", "must be calls per second (> 0), or false to turn limiting off")
  end
  if type(s.burst) ~= "number" or not (s.burst >= 1) or s.burst > 1e6 then
    bad("burst", "must be a number of calls >= 1")
  end
  if s.limiter_dir ~= nil and type(s.limiter_dir) ~= "string" then
    bad("limiter_dir", "must be a directory path")
  end
  if s.limiter_url ~= nil then
    -- (the URL may hold a password: the message never shows it)
    local ok, why = redis.parse_url(s.limiter_url)
    if not ok then bad("limiter_url", why) end
  end
  s.hosts = positive_integer("hosts", s.hosts, true)
  if s.fallback_rate ~= nil and (type(s.fallback_rate) ~= "number" or not (s.fallback_rate > 0)
      or s.fallback_rate > 1e6) then
    bad("fallback_rate", "must be calls per second (> 0)")
  end
end

-- The registry overrides of the settings: methods_file's (a JSON object of
-- the same shape as `methods`) under `methods`, entry by entry.
function M.methods(s)
  if s.methods_file == nil then return s.methods end
  if type(s.methods_file) ~= "string" then bad("methods_file", "must be a path") end
  local f, why = io.open(s.methods_file, "rb")
  if not f then bad("methods_file", "cannot be read: " .. why) end
  local text = f:read("a")
  f:close()
  local t, err = core.decode(text)
  if type(t) ~= "table" then
    bad("methods_file", "is not a JSON object of service.Method overrides: " .. tostring(err))
  end
  for k, v in pairs(s.methods or {}) do t[k] = v end
  return t
end

--- Validates user settings and returns a new, complete settings table
-- (defaults filled in).
function M.resolve(opts)
  if type(opts) ~= "table" then
    error("dialoginsight.new: settings must be a table", 0)
  end
  for k in pairs(opts) do
    if not BY_NAME[k] then bad(tostring(k), "is not a known setting") end
  end
  local s = {}
  for _, def in ipairs(M.SETTINGS) do s[def.name] = def.default end
  for k, v in pairs(opts) do s[k] = v end

  s.key_id = positive_integer("key_id", s.key_id, true)
  check_key(s.key)
  s.project = positive_integer("project", s.project, false)
  check_url(s, opts.base_url ~= nil)
  if s.ca_file ~= nil then
    if type(s.ca_file) ~= "string" then bad("ca_file", "must be a path") end
    local f = io.open(s.ca_file, "r")
    if not f then bad("ca_file", "names a file that cannot be read: " .. s.ca_file) end
    f:close()
  end
  s.timeout = seconds("timeout", s.timeout)
  s.connect_timeout = seconds("connect_timeout", s.connect_timeout)
  if type(s.user_agent) ~= "string" then bad("user_agent", "must be a string") end
  boolean("tls_verify", s.tls_verify)
  boolean("http2", s.http2)
  boolean("strict", s.strict)
  if s.key_field ~= nil and (type(s.key_field) ~= "string" or not s.key_field:match("^[%a_][%w_]*$")) then
    bad("key_field", "must be a field name such as \"EMail\"")
  end
  s.concurrency = positive_integer("concurrency", s.concurrency, true)
  s.retries = retry.policy(s.retries) -- raises on a bad one, naming it
  if s.trace ~= nil and type(s.trace) ~= "boolean" and type(s.trace) ~= "function" then
    bad("trace", "must be a boolean or a function(event)")
  end
  check_limits(s)
  s.registry = registry.new(M.methods(s))
  if s.limit_messages ~= nil then
    local ok = type(s.limit_messages) == "table"
    for _, p in ipairs(ok and s.limit_messages or {}) do
      ok = ok and type(p) == "string" and pcall(string.find, "", p)
    end
    if not ok then bad("limit_messages", "must be a list of Lua patterns (strings)") end
  end
  return s
end

return M
