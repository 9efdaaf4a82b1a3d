--- The limiter backend of a fleet of hosts: the same GCRA as the local
-- backend (src/di_limiter.c), as one Redis script, so that every process on
-- every host that uses one API key draws from one budget (README.md,
-- "Several hosts").
--
-- The state of a limit is one Redis string, the theoretical arrival time in
-- microseconds of Redis's own clock (TIME): hosts with skewed clocks agree.
-- Its key is derived from the API host and the key *id*, never the secret.
--
-- When Redis is away or slow, every call falls back at once to a local
-- limiter (this host's share of the rate: fallback_rate), a warning says so
-- at most once a minute, and Redis is tried again at most every
-- RETRY_INTERVAL seconds; no call ever waits on Redis longer than its
-- timeouts, and no call is lost.
local host_of = require("dialoginsight.limiter.host").of

local unpack = table.unpack or unpack -- luacheck: ignore 143

local M = {}

M.TIMEOUT = 0.05        -- seconds to connect, and per command
M.RETRY_INTERVAL = 5    -- seconds between attempts to reach Redis again
M.WARN_EVERY = 60       -- seconds between two warnings of one process

-- KEYS[1]: the limit's key.  ARGV: op ("acquire" | "penalize" | "delay":
-- the wait acquire would answer, nothing taken), interval
-- and tolerance (microseconds: 1/rate and (burst - 1)/rate), the penalty
-- (microseconds), the furthest ahead a sound state can be (microseconds).
-- Returns { wait_us, reset }: wait_us 0 when the call may go (its slot
-- taken); reset 1 when the stored state was further ahead than any clamp
-- allows (written by someone else) and was started afresh.
M.SCRIPT = [[
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, tolerance = tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local reset = 0
if tat > now + tonumber(ARGV[5]) then tat = 0; reset = 1 end
local start = math.max(tat, now)
local new
if ARGV[1] == 'delay' then return { math.max(0, start - now - tolerance), reset } end
if ARGV[1] == 'acquire' then
  if start - now > tolerance then return { start - now - tolerance, reset } end
  new = start + interval
else
  new = math.max(tat, now + tonumber(ARGV[4]) + tolerance)
end
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.floor((new - now) / 1000) + 1000)
return { 0, reset }
]]

--- The parts of a limiter_url: { host, port, password, user, db } or
-- { path, password, db }; or nil, why (the why never holds the password).
function M.parse_url(url)
  if type(url) ~= "string" then return nil, "must be a redis:// or unix:// URL" end
  local path = url:match("^unix://(/.+)$")
  if path then
    local p, q = path:match("^([^?]*)%??(.*)$")
    return { path = p, db = tonumber(q:match("db=(%d+)") or "0"),
             password = q:match("password=([^&]+)") }
  end
  local rest = url:match("^redis://(.+)$")
  if not rest then return nil, "must be redis://[:password@]host:port[/db] or unix:///path" end
  local userinfo, hostpart = rest:match("^(.*)@([^@]+)$")
  hostpart = hostpart or rest
  local user, password
  if userinfo then user, password = userinfo:match("^([^:]*):(.*)$") end
  if userinfo and not password then password = userinfo end
  local host, port, db = hostpart:match("^([%w%.%-]+):(%d+)/?(%d*)$")
  if not host then
    host, db = hostpart:match("^([%w%.%-]+)/?(%d*)$")
    port = "6379"
  end
  if not host then return nil, "has no host:port (redis://HOST:PORT)" end
  port = tonumber(port)
  if port < 1 or port > 65535 then return nil, "has a bad port" end
  return { host = host, port = port, db = tonumber(db) or 0,
           user = user ~= "" and user or nil, password = password ~= "" and password or nil }
end

--- The Redis key of the limit of key_id on the API host of base_url (its
-- canonical identity: limiter/host.lua).
function M.key(base_url, key_id)
  return "dialoginsight:gcra:" .. host_of(base_url) .. ":" .. tostring(key_id)
end

-- Connectors ------------------------------------------------------------------
--
-- A connector is function(url, timeout) -> conn | nil, why | false (Redis
-- cannot be reached from here now, and that is no failure: an nginx phase
-- without cosockets).  conn:command(...) -> value | nil, message, "redis"
-- (an error reply) or "io"; conn:close().

--- Through the C core's hiredis client: one connection per client.
function M.connect_core(url, timeout)
  return require("dialoginsight.core").redis_connect {
    host = url.host, port = url.port, path = url.path, timeout = timeout,
  }
end

--- Through nginx's cosockets (Debian's lua-nginx-redis): a pooled
-- connection per command, since a cosocket belongs to one request.
function M.connect_ngx(url, timeout)
  local phases = require("dialoginsight.transport.ngx").PHASES
  if not phases[ngx.get_phase()] then return false end
  local redis = require "nginx.redis"
  redis.add_commands("evalsha", "select")
  local ms = math.max(1, math.floor(timeout * 1000 + 0.5))
  local pool = "dialoginsight:redis:" .. (url.path or (url.host .. ":" .. url.port)) .. ":" .. url.db
  local conn = {}
  function conn.command(_, cmd, ...)
    local red = redis:new()
    red:set_timeout(ms)
    local ok, err
    if url.path then ok, err = red:connect("unix:" .. url.path, { pool = pool })
    else ok, err = red:connect(url.host, url.port, { pool = pool }) end
    if not ok then return nil, err, "io" end
    -- AUTH and SELECT belong to the connection: only a new one needs them
    if (red:get_reused_times() or 0) == 0 then
      if url.password then
        if url.user then ok, err = red:auth(url.user, url.password)
        else ok, err = red:auth(url.password) end
        if not ok then red:close(); return nil, err, "redis" end
      end
      if url.db ~= 0 then
        ok, err = red:select(url.db)
        if not ok then red:close(); return nil, err, "redis" end
      end
    end
    if cmd == "AUTH" or cmd == "SELECT" then red:set_keepalive(60000, 16); return "OK" end
    local res
    res, err = red[cmd:lower()](red, ...)
    if res == nil then red:close(); return nil, err, "io" end
    red:set_keepalive(60000, 16)
    if res == false then return nil, err, "redis" end
    if res == ngx.null then return nil end
    return res
  end
  function conn.close() end
  return conn
end

local Backend = {}
Backend.__index = Backend

--- opts: url (parsed), key (M.key), rate, burst, max_ahead (seconds: the
-- clamp of a penalty), fallback (the local backend: acquire, penalize,
-- configure, close), connect (function(url, timeout) -> conn with
-- conn:command(...) and conn:close(), or nil, why), now, warn (function(msg)).
function M.new(opts)
  local b = setmetatable({ url = opts.url, key = opts.key, fallback = opts.fallback,
    connect_fn = opts.connect, now = opts.now, warn_fn = opts.warn, max_ahead = opts.max_ahead,
    fallback_rate = opts.fallback_rate, next_try = 0, last_warn = -math.huge }, Backend)
  b:configure(opts.rate, opts.burst)
  return b
end

function Backend:configure(rate, burst)
  self.rate, self.burst = rate, burst
  self.interval = math.floor(1e6 / rate + 0.5)
  self.tolerance = math.floor((burst - 1) * 1e6 / rate + 0.5)
  -- the fallback is this host's share, and follows the adaptation down
  local share = math.min(self.fallback_rate, rate)
  self.fallback:configure(share, math.max(1, math.min(burst, share)))
end

function Backend:warn(msg)
  local t = self.now()
  if t - self.last_warn >= M.WARN_EVERY then
    self.last_warn = t
    self.warn_fn(msg)
  end
end

-- The connection, made (and prepared: AUTH, SELECT, SCRIPT LOAD) when there
-- is none and the retry interval has passed; nil while Redis is away.
function Backend:conn()
  if self.c then return self.c end
  local t = self.now()
  if t < self.next_try then return nil end
  self.next_try = t + M.RETRY_INTERVAL
  local c, why = self.connect_fn(self.url, M.TIMEOUT)
  if c == false then -- not from here, now: no failure, try again next time
    self.next_try = t
    return nil
  end
  if not c then
    self:warn("Redis is unreachable (" .. tostring(why) .. "): limiting this host alone at "
      .. string.format("%g", self.fallback_rate) .. " calls/s; trying again every " .. M.RETRY_INTERVAL .. " s")
    return nil
  end
  local ok, err = true, nil
  if self.url.password then
    if self.url.user then ok, err = c:command("AUTH", self.url.user, self.url.password)
    else ok, err = c:command("AUTH", self.url.password) end
  end
  if ok and self.url.db ~= 0 then ok, err = c:command("SELECT", tostring(self.url.db)) end
  if ok then ok, err = c:command("SCRIPT", "LOAD", M.SCRIPT) end
  if not ok then
    c:close()
    self:warn("Redis refused the limiter (" .. tostring(err) .. "): limiting this host alone at "
      .. string.format("%g", self.fallback_rate) .. " calls/s")
    return nil
  end
  self.sha, self.c = ok, c
  if self.down_since then
    self.warn_fn("Redis is back: the limit is shared again")
    self.down_since, self.last_warn = nil, -math.huge
  end
  return c
end

-- Runs the script; returns { wait_us, reset }, or nil after a failure that
-- dropped the connection.
function Backend:run(op, penalty_us)
  local c = self:conn()
  if not c then return nil end
  local args = { "EVALSHA", self.sha, "1", self.key, op, tostring(self.interval),
                 tostring(self.tolerance), tostring(penalty_us or 0),
                 string.format("%.0f", (self.max_ahead + 1) * 1e6 + self.tolerance) }
  local r, err, kind = c:command(unpack(args))
  if not r and kind == "redis" and tostring(err):find("NOSCRIPT", 1, true) then
    self.sha = c:command("SCRIPT", "LOAD", M.SCRIPT)
    args[2] = self.sha
    if self.sha then r, err = c:command(unpack(args)) end
  end
  if type(r) ~= "table" then
    c:close()
    self.c, self.down_since = nil, self.down_since or self.now()
    self.next_try = self.now() + M.RETRY_INTERVAL
    self:warn("Redis failed (" .. tostring(err) .. "): limiting this host alone at "
      .. string.format("%g", self.fallback_rate) .. " calls/s; trying again every " .. M.RETRY_INTERVAL .. " s")
    return nil
  end
  if r[2] == 1 then
    self:warn("the shared limit in Redis was further ahead than any penalty allows: "
      .. "started afresh (" .. self.key .. ")")
  end
  return r
end

--- 0 when a call may start now (its slot taken), else seconds to wait.
function Backend:acquire()
  local r = self:run("acquire")
  if r then return r[1] / 1e6 end
  return self.fallback:acquire()
end

--- Seconds until a call could start, without taking a slot.
function Backend:delay()
  local r = self:run("delay")
  if r then return r[1] / 1e6 end
  return self.fallback:delay()
end

--- Every sharer, on every host, waits `seconds` (already clamped).
function Backend:penalize(seconds)
  self:run("penalize", math.floor(seconds * 1e6 + 0.5))
  self.fallback:penalize(seconds)
end

function Backend:close()
  if self.c then self.c:close(); self.c = nil end
  self.fallback:close()
end

return M
