--- Client settings: defaults, the DI_* environment, and validation.
--
-- A bad setting is a programming or deployment error, so it raises, and the
-- message names the setting. The key's value never appears in a message.
local M = {}

M.REGIONS = {
  ca = "https://app.dialoginsight.com/webservices/ofc4/",
  fr = "https://app.mydialoginsight.com/webservices/ofc4/",
}

M.DEFAULTS = {
  region = "ca",
  timeout = 30,
  connect_timeout = 10,
  user_agent = "dialoginsight-lua/0.1",
  tls_verify = true,
  http2 = true,
  concurrency = 8,
}

-- Environment variable of each setting read by di.new() with no argument.
M.ENV = {
  key_id = "DI_KEY_ID", key = "DI_KEY", project = "DI_PROJECT",
  region = "DI_REGION", base_url = "DI_BASE_URL", ca_file = "DI_CA_FILE",
}

local KNOWN = {
  key_id = true, key = true, project = true, region = true, base_url = true,
  ca_file = true, timeout = true, connect_timeout = true, user_agent = true,
  tls_verify = true, allow_http = true, trace = true, concurrency = true,
  retries = true, transport = true, rate = true, burst = true,
  limiter_dir = true, http2 = true, strict = true,
}

local function bad(name, why)
  error("dialoginsight: setting '" .. name .. "' " .. why, 0)
end

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

--- Reads the DI_* variables into a settings table (unset ones are absent).
function M.from_env(getenv)
  getenv = getenv or os.getenv
  local s = {}
  for name, var in pairs(M.ENV) do
    local v = getenv(var)
    if v ~= nil and v ~= "" then s[name] = v end
  end
  return s
end

--- Validates user settings and returns a new, complete settings table.
function M.resolve(opts)
  if type(opts) ~= "table" then
    error("dialoginsight.new: settings must be a table", 0)
  end
  for k in pairs(opts) do
    if not KNOWN[k] then bad(tostring(k), "is not a known setting") end
  end
  local s = {}
  for k, v in pairs(M.DEFAULTS) do s[k] = v end
  for k, v in pairs(opts) do s[k] = v end

  s.key_id = positive_integer("key_id", s.key_id, true)
  if s.key == nil then bad("key", "is missing") end
  if type(s.key) ~= "string" or s.key == "" then
    bad("key", "must be a non-empty string")
  end
  if s.key:find("[^\33-\126]") then
    -- it goes into every JSON body: a byte that cannot travel there would
    -- fail every call later, with a less clear message (the value is not shown)
    bad("key", "must be printable ASCII without spaces (check for a stray newline or encoding)")
  end
  s.project = positive_integer("project", s.project, false)

  if opts.base_url == nil then
    local url = M.REGIONS[s.region]
    if not url then bad("region", "must be \"ca\" or \"fr\"") end
    s.base_url = url
  elseif type(s.base_url) ~= "string" then
    bad("base_url", "must be a string")
  else
    if not s.base_url:match("^https?://[^/]+") then
      bad("base_url", "must be an http(s) URL")
    end
    if s.base_url:sub(-1) ~= "/" then s.base_url = s.base_url .. "/" end
  end
  if s.base_url:match("^http://") and not s.allow_http then
    bad("base_url", "is plain http, which would send the key in clear; "
        .. "set allow_http = true to do so on purpose")
  end
  if s.ca_file ~= nil then
    if type(s.ca_file) ~= "string" then bad("ca_file", "must be a path") end
    local f = io.open(s.ca_file, "r")
    if not f then bad("ca_file", "names a file that cannot be read: " .. s.ca_file) end
    f:close()
  end
  s.timeout = seconds("timeout", s.timeout)
  s.connect_timeout = seconds("connect_timeout", s.connect_timeout)
  if type(s.user_agent) ~= "string" then bad("user_agent", "must be a string") end
  if type(s.tls_verify) ~= "boolean" then bad("tls_verify", "must be a boolean") end
  if type(s.http2) ~= "boolean" then bad("http2", "must be a boolean") end
  s.concurrency = positive_integer("concurrency", s.concurrency, true)
  if s.trace ~= nil and s.trace ~= true and s.trace ~= false
     and type(s.trace) ~= "function" then
    bad("trace", "must be a boolean or a function(event)")
  end
  if s.rate ~= nil and s.rate ~= false then
    if type(s.rate) ~= "number" or not (s.rate > 0) or s.rate > 1e6 then
      bad("rate", "must be calls per second (> 0), or false to turn limiting off")
    end
  end
  if s.burst ~= nil and (type(s.burst) ~= "number" or not (s.burst >= 1) or s.burst > 1e6) then
    bad("burst", "must be a number of calls >= 1")
  end
  if s.limiter_dir ~= nil and type(s.limiter_dir) ~= "string" then
    bad("limiter_dir", "must be a directory path")
  end
  return s
end

return M
