--- The limiter backend of a fleet of hosts: src/di_limiter.c's GCRA as one Redis script
-- (docs/limiter.md).  The state is the theoretical arrival time in Redis's TIME (skewed
-- hosts agree), keyed by API host and key *id*, never the secret; when Redis fails, the
-- local limiter takes over.  Each exchange lasts TIMEOUT at most, never past the call's
-- deadline; no call is lost, and no reply of Redis can raise, loop, or hold a call longer.
local host_of = require("dialoginsight.limiter.host").of
local reserve = require "dialoginsight.limiter.reserve"

local unpack = table.unpack or unpack -- luacheck: ignore 143

local M = {}

M.TIMEOUT = 0.05        -- seconds to connect, and per command (its whole reply)
M.RETRY_INTERVAL = 5    -- seconds between attempts to reach Redis again
M.WARN_EVERY = 60       -- seconds between two warnings of one process

-- KEYS[1]: the limit's key; KEYS[2]: the largest lead its sharers declared
-- (microseconds; beside the state, with its expiry).  ARGV: op ("acquire" |
-- "penalize"),
-- interval and tolerance (microseconds: 1/rate and (burst - 1)/rate), the
-- penalty (microseconds), this caller's lead (the furthest ahead its own
-- settings can put the state: Backend:configure), and the largest lead any
-- settings can declare (core.limiter_bounds.max_lead); for acquire, the call's
-- cost and room (microseconds: interval and tolerance for an interactive
-- call, the batch slot and batch room for a batch one: limiter/reserve.lua).
-- A state is honoured up to the largest lead declared (src/di_limiter.c, lead_of):
-- a shorter max_retry_after never erases another sharer's longer penalty; a state
-- further ahead than any lead is reset.  Returns { wait_us, reset }: wait_us 0 when
-- the call may go (its slot taken), else at most this caller's lead less its
-- tolerance; reset 1 when the stored state was reset.
M.SCRIPT = [[
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, tolerance = tonumber(ARGV[2]), tonumber(ARGV[3])
local own, cap = tonumber(ARGV[5]), tonumber(ARGV[6])
local lead = math.max(own, math.min(tonumber(redis.call('GET', KEYS[2]) or '0') or 0, cap))
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local reset = 0
if tat > now + lead then tat = 0; reset = 1 end
local start = math.max(tat, now)
local most = own - tolerance
local new
if ARGV[1] == 'acquire' then
  local cost, room = tonumber(ARGV[7]), tonumber(ARGV[8])
  if start - now > room then return { math.min(most, start - now - room), reset } end
  new = start + cost
else
  new = math.max(tat, now + tonumber(ARGV[4]) + tolerance)
end
local ttl = math.floor((new - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', ttl)
redis.call('SET', KEYS[2], string.format('%.0f', lead), 'PX', ttl)
return { 0, reset }
]]

-- The state as it stands, read only: Redis's clock (seconds, microseconds)
-- and the stored arrival time ('0' when there is none), as strings.
M.STATUS_SCRIPT = [[
local t = redis.call('TIME')
return { t[1], t[2], redis.call('GET', KEYS[1]) or '0' }
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

--- The Redis key of the limit of key_id on the API host of base_url (limiter/host.lua).
function M.key(base_url, key_id)
  return "dialoginsight:gcra:" .. host_of(base_url) .. ":" .. tostring(key_id)
end

-- Connectors ------------------------------------------------------------------
-- function(url, timeout) -> conn | nil, why | false (not reachable from here, no
-- failure: an nginx phase without cosockets).  conn:command(budget, ...) -> value
-- | nil, message, "redis" | "io", within budget seconds; conn:close().

--- Through the C core's hiredis client: one connection per client.
function M.connect_core(url, timeout)
  return require("dialoginsight.core").redis_connect {
    host = url.host, port = url.port, path = url.path, timeout = timeout,
  }
end

-- RESP on a cosocket ---------------------------------------------------------
-- lua-resty-redis renews its per-operation timeout for a reply dripped a byte at
-- a time, and keeps whatever length a reply announces.  So this reads RESP
-- itself, within the exchange's time left, M.MAX_REPLY bytes and M.MAX_ELEMENTS
-- (src/di_redis.c holds the C path to the same bounds).
M.MAX_REPLY = 65536
M.MAX_ELEMENTS = 64

local function resp_command(args)
  local out = { "*", #args, "\r\n" }
  for _, a in ipairs(args) do
    a = tostring(a)
    out[#out + 1] = "$" .. #a .. "\r\n"
    out[#out + 1] = a
    out[#out + 1] = "\r\n"
  end
  return table.concat(out)
end

local Reader = {}
Reader.__index = Reader

-- More bytes, within the exchange's deadline and M.MAX_REPLY.
function Reader:fill()
  local left = self.deadline - self.clock()
  if left <= 0 then return nil, "Redis did not answer in time" end
  self.sock:settimeout(math.max(1, math.floor(left * 1000 + 0.5)))
  local data, err = self.sock:receiveany(4096)
  if not data then
    if err == "timeout" then return nil, "Redis did not answer in time" end
    return nil, "reading from Redis failed: " .. tostring(err)
  end
  self.got = self.got + #data
  if self.got > M.MAX_REPLY then return nil, "Redis sent a reply longer than any reply of the limiter" end
  self.buf = self.buf:sub(self.pos) .. data
  self.pos = 1
  return true
end

function Reader:line()
  while true do
    local i = self.buf:find("\r\n", self.pos, true)
    if i then
      local line = self.buf:sub(self.pos, i - 1)
      self.pos = i + 2
      return line
    end
    local ok, err = self:fill()
    if not ok then return nil, err end
  end
end

function Reader:bytes(n)
  while #self.buf - self.pos + 1 < n + 2 do
    local ok, err = self:fill()
    if not ok then return nil, err end
  end
  local s = self.buf:sub(self.pos, self.pos + n - 1)
  if self.buf:sub(self.pos + n, self.pos + n + 1) ~= "\r\n" then return nil, "Redis sent a reply that is not RESP" end
  self.pos = self.pos + n + 2
  return s
end

local NOT_RESP = "Redis sent a reply that is not RESP"

-- One reply: value, or nil, message, "redis" | "io"; a nil reply is (nil, nil).
function Reader:value(depth)
  local line, err = self:line()
  if not line then return nil, err, "io" end
  local t, rest = line:sub(1, 1), line:sub(2)
  if t == "+" then return rest end
  if t == "-" then return nil, rest, "redis" end
  local n = rest:match("^%-?%d+$") and tonumber(rest)
  if not n then return nil, NOT_RESP, "io" end
  if t == ":" then return n end
  if n == -1 and (t == "$" or t == "*") then return nil end
  if t == "$" then
    if n < 0 or n > M.MAX_REPLY then return nil, NOT_RESP, "io" end
    local s
    s, err = self:bytes(n)
    if not s then return nil, err, "io" end
    return s
  end
  if t ~= "*" or n < 0 then return nil, NOT_RESP, "io" end
  if n > M.MAX_ELEMENTS or depth >= 7 then
    return nil, "Redis answered a list longer or deeper than any reply of the limiter", "io"
  end
  local list = { n = n }
  for i = 1, n do
    local v, e, kind = self:value(depth + 1)
    if e and kind == "io" then return nil, e, kind end
    if e then v = false end -- an error inside a list: not a value the limiter reads
    list[i] = v
  end
  return list
end

-- A key of this process for the pool names of connect_ngx.
local POOL_SALT = tostring({}) .. tostring(os.time()) .. tostring(math.random())

--- Through nginx's cosockets: a pooled connection per command, since a
-- cosocket belongs to one request.  nginx: { phases, connect } of the
-- cosocket transport (limiter/init.lua's open).
function M.connect_ngx(url, timeout, nginx)
  if not nginx.phases[ngx.get_phase()] then return false end
  local clock = require("dialoginsight.core").now
  -- connections are authenticated (AUTH) when made, so the credentials are
  -- part of the pool's name: a client with another password, or none, never
  -- reuses a connection that this one authenticated.  A keyed hash, never
  -- the password itself (pool names may reach a debug log).
  local pool = "dialoginsight:redis:" .. (url.path or (url.host .. ":" .. url.port)) .. ":" .. url.db
  if url.password or url.user then
    pool = pool .. ":" .. ngx.encode_base64(ngx.hmac_sha1(POOL_SALT, (url.user or "") .. "\0" .. (url.password or "")))
  end
  local connect_s = timeout

  -- one command on sock, by deadline: value | nil, message, kind
  local function exchange(sock, deadline, args)
    local left = deadline - clock()
    if left <= 0 then return nil, "Redis did not take the command in time", "io" end
    sock:settimeout(math.max(1, math.floor(left * 1000 + 0.5)))
    local ok, err = sock:send(resp_command(args))
    if not ok then return nil, "sending to Redis failed: " .. tostring(err), "io" end
    local r = setmetatable({ sock = sock, deadline = deadline, clock = clock,
                             buf = "", pos = 1, got = 0 }, Reader)
    local v, e, kind = r:value(0)
    if kind ~= "io" and r.pos <= #r.buf then
      return nil, "Redis sent more than one reply to a command", "io"
    end
    return v, e, kind
  end

  local conn = {}
  function conn.command(_, budget, cmd, ...)
    local deadline = clock() + budget
    local sock = ngx.socket.tcp()
    local within = math.min(connect_s, budget)
    sock:settimeout(math.max(1, math.floor(within * 1000 + 0.5)))
    local ok, err
    if url.path then ok, err = sock:connect("unix:" .. url.path, { pool = pool })
    else ok, err = nginx.connect(sock, url.host, url.port, { pool = pool }, within) end
    if not ok then return nil, "cannot connect to Redis: " .. tostring(err), "io" end
    -- AUTH and SELECT belong to the connection: only a new one needs them
    if (sock:getreusedtimes() or 0) == 0 then
      local prep = {}
      if url.password then
        prep[1] = url.user and { "AUTH", url.user, url.password } or { "AUTH", url.password }
      end
      if url.db ~= 0 then prep[#prep + 1] = { "SELECT", tostring(url.db) } end
      for _, args in ipairs(prep) do
        local v, e, kind = exchange(sock, deadline, args)
        if v ~= "OK" then
          sock:close()
          return nil, e or "Redis answered " .. args[1] .. " with something else than OK", kind or "redis"
        end
      end
    end
    if cmd == "AUTH" or cmd == "SELECT" then sock:setkeepalive(60000, 16); return "OK" end
    local v, e, kind = exchange(sock, deadline, { cmd, ... })
    if kind == "io" then sock:close() else sock:setkeepalive(60000, 16) end
    return v, e, kind
  end
  function conn.close() end
  return conn
end

-- The backend ----------------------------------------------------------------

local Backend = {}
Backend.__index = Backend

--- opts: url (parsed), key (M.key), rate, burst, share (batch_share; default 1), max_ahead
-- (a penalty's clamp), fallback (the local backend), connect (see Connectors), now, warn
-- (function(msg)), events (optional: events.fallback(active, why) at each switch, and (false, "closed", true) when closed on the fallback).
function M.new(opts)
  local b = setmetatable({ url = opts.url, key = opts.key, fallback = opts.fallback,
    connect_fn = opts.connect, now = opts.now, warn_fn = opts.warn, max_ahead = opts.max_ahead,
    fallback_rate = opts.fallback_rate, next_try = 0, last_warn = -math.huge,
    events = opts.events or {}, transitions = 0, share = opts.share or 1 }, Backend)
  b:configure(opts.rate, opts.burst)
  return b
end

-- The local limiter's bounds (src/di_limiter.c), kept here too: a slot,
-- a burst's window and a penalty are capped alike in both backends.
local BOUNDS = require("dialoginsight.core").limiter_bounds

function Backend:configure(rate, burst, share)
  self.rate, self.burst, self.share = rate, burst, share or self.share
  self.f = reserve.figures(rate, burst, self.share)
  self.interval, self.tolerance = self.f.interval, self.f.tolerance
  -- The longest wait this process is told, as the local limiter's lead
  -- (src/di_limiter.c, own_lead): a penalty, a batch slot (a slot at least)
  -- and a second of slack; a longer hold is asked again after it, and a reply
  -- asking more is not believed.
  self.bound = math.floor((math.min(self.max_ahead, BOUNDS.max_penalty) + 1) * 1e6) + self.f.batch_interval
  -- the fallback is this host's share, and follows the adaptation down
  local own = math.min(self.fallback_rate, rate)
  self.fallback:configure(own, math.max(1, math.min(burst, own)), self.share)
end

function Backend:warn(msg)
  local t = self.now()
  if t - self.last_warn >= M.WARN_EVERY then
    self.last_warn = t
    self.warn_fn(msg)
  end
end

-- What Redis answered, for a warning: never the bytes of a long or binary
-- answer (they would go to a log as they are).
local function said(v, err)
  if err ~= nil then
    err = tostring(err)
    if #err > 120 or err:find("[%c\128-\255]") then return "an error reply of " .. #err .. " bytes" end
    return err
  end
  if type(v) == "table" then return "a list of " .. tostring(v.n or #v) end
  if type(v) == "string" then
    if #v > 60 or v:find("[%c\128-\255]") then return "a string of " .. #v .. " bytes" end
    return "the string \"" .. v .. "\""
  end
  return tostring(v)
end

local function is_count(v)
  return type(v) == "number" and v >= 0 and v == math.floor(v)
end

-- The script's reply { wait_us, reset } when it is one the script can give
-- (two integers, 0 <= wait_us <= bound, reset 0 or 1), else nil.
local function script_reply(r, bound)
  if type(r) ~= "table" or r.n ~= 2 then return nil end
  local wait, reset = r[1], r[2]
  if not (is_count(wait) and wait <= bound and (reset == 0 or reset == 1)) then return nil end
  return r
end

local function is_sha(v)
  return type(v) == "string" and #v == 40 and v:find("^%x+$") ~= nil
end

-- The time an exchange may take now: TIMEOUT, or less if the call's deadline leaves less.
function Backend:left()
  local t = self.now()
  if self.until_t and self.until_t - t < M.TIMEOUT then return self.until_t - t end
  return M.TIMEOUT
end

function Backend:command(c, ...)
  local left = self:left()
  self.cut = left < M.TIMEOUT
  if left <= 0 then return nil, "no time left before the call's deadline", "io" end
  return c:command(left, ...)
end

-- Redis failed, or answered what no sound Redis answers: the connection is
-- dropped (a reply may still be on its way), calls fall back, and Redis is
-- tried again after RETRY_INTERVAL.  An "io" failure only for want of the
-- deadline's time (cut) is no fault of Redis: the next decision reconnects.
function Backend:drop(c, what, kind)
  c:close()
  local t = self.now()
  if kind == "io" and self.cut then
    self.c, self.next_try = nil, t
    return
  end
  self.c = nil
  self:down(t, what)
  self.next_try = t + M.RETRY_INTERVAL
  self:warn(what .. ": limiting this host alone at " .. string.format("%g", self.fallback_rate)
    .. " calls/s; trying again every " .. M.RETRY_INTERVAL .. " s")
end

-- Marks the switch to the fallback at t (once per outage), told to
-- events.fallback with why (our own message: never the password).
function Backend:down(t, why)
  if self.down_since then return end
  self.down_since, self.why = t, why
  self.transitions = self.transitions + 1
  if self.events.fallback then self.events.fallback(true, why) end
end

-- The connection, made (and prepared: AUTH, SELECT, SCRIPT LOAD) when there
-- is none and the retry interval has passed; nil while Redis is away.
function Backend:conn()
  if self.c then return self.c end
  local t = self.now()
  if t < self.next_try then return nil end
  self.next_try = t + M.RETRY_INTERVAL
  local left = self:left()
  if left <= 0 then self.next_try = t; return nil end
  local c, why = self.connect_fn(self.url, left)
  if c == false or (not c and left < M.TIMEOUT) then
    -- not from here, now (no failure), or not within the deadline: try next time
    self.next_try = t
    return nil
  end
  if not c then
    self:down(t, "Redis is unreachable (" .. tostring(why) .. ")")
    self:warn("Redis is unreachable (" .. tostring(why) .. "): limiting this host alone at "
      .. string.format("%g", self.fallback_rate) .. " calls/s; trying again every " .. M.RETRY_INTERVAL .. " s")
    return nil
  end
  local ok, err, kind = "OK", nil, nil
  if self.url.password then
    if self.url.user then ok, err, kind = self:command(c, "AUTH", self.url.user, self.url.password)
    else ok, err, kind = self:command(c, "AUTH", self.url.password) end
  end
  if ok == "OK" and self.url.db ~= 0 then ok, err, kind = self:command(c, "SELECT", tostring(self.url.db)) end
  if ok ~= "OK" then
    self:drop(c, "Redis refused the limiter (" .. said(ok, err) .. ")", kind)
    return nil
  end
  local sha
  sha, err, kind = self:command(c, "SCRIPT", "LOAD", M.SCRIPT)
  if not is_sha(sha) then
    self:drop(c, (kind == "io" and "Redis failed (" or "Redis refused the limiter (")
      .. said(sha, err) .. ")", kind)
    return nil
  end
  self.sha, self.c = sha, c
  if self.down_since then
    self.warn_fn("Redis is back: the limit is shared again")
    self.down_since, self.last_warn, self.why = nil, -math.huge, nil
    self.transitions = self.transitions + 1
    if self.events.fallback then self.events.fallback(false, "Redis is back") end
  end
  return c
end

-- Runs the script within budget seconds (nil: TIMEOUT per exchange): { wait_us,
-- reset }, or nil after a failure or a reply no sound Redis gives (dropped).
function Backend:run(op, penalty_us, budget, priority)
  self.until_t = budget and self.now() + budget or nil
  local c = self:conn()
  if not c then return nil end
  local args = { "EVALSHA", self.sha, "2", self.key, self.key .. ":lead", op,
                 string.format("%.0f", self.interval), string.format("%.0f", self.tolerance),
                 string.format("%.0f", penalty_us or 0), string.format("%.0f", self.bound + self.tolerance),
                 string.format("%.0f", BOUNDS.max_lead * 1e6) }
  if op == "acquire" then
    local batch = priority == "batch"
    args[#args + 1] = string.format("%.0f", batch and self.f.batch_interval or self.interval)
    args[#args + 1] = string.format("%.0f", batch and self.f.batch_room or self.tolerance)
  end
  local r, err, kind = self:command(c, unpack(args))
  if not r and kind == "redis" and tostring(err):find("NOSCRIPT", 1, true) then
    local sha
    sha, err, kind = self:command(c, "SCRIPT", "LOAD", M.SCRIPT)
    if is_sha(sha) then
      self.sha, args[2] = sha, sha
      r, err, kind = self:command(c, unpack(args))
    elseif kind == nil then -- (a reply, but no sha)
      err, kind = "SCRIPT LOAD answered " .. said(sha), "redis"
    end
  end
  local reply = script_reply(r, self.bound)
  if not reply then
    if kind == "io" then
      self:drop(c, "Redis failed (" .. said(nil, err) .. ")", kind)
    elseif kind == "redis" then
      self:drop(c, "Redis refused the limiter's script (" .. said(nil, err) .. ")")
    else
      self:drop(c, "Redis answered the limiter's script with " .. said(r, err)
        .. ", not a wait the script can answer")
    end
    return nil
  end
  if reply[2] == 1 then
    self:warn("the shared limit in Redis was further ahead than any penalty allows: "
      .. "started afresh (" .. self.key .. ")")
  end
  return reply
end

--- 0 when a call may start now (its slot taken), else seconds to wait;
-- budget: the seconds Redis may take at most (what is left of the call's
-- deadline; nil: TIMEOUT per exchange).
function Backend:acquire(budget, priority)
  local r = self:run("acquire", nil, budget, priority)
  if r then return r[1] / 1e6 end
  return self.fallback:acquire(nil, priority)
end

local function digits(v, max)
  return type(v) == "string" and #v <= max and v:find("^%d+$") ~= nil
end

--- The state as it stands, read without a change (a read-only script):
-- figures and how far ahead it is (seconds), backend "redis", key; while Redis
-- is away or answers what the script cannot, the fallback's, as backend "fallback".
function Backend:status()
  self.until_t = nil -- (TIMEOUT per exchange: no call's deadline, a past one included, bounds a read)
  local c = self:conn()
  local r
  if c then
    local left = self:left()
    r = left > 0 and c:command(left, "EVAL", M.STATUS_SCRIPT, "1", self.key) or nil
  end
  if type(r) == "table" and r.n == 3 and digits(r[1], 12) and digits(r[2], 6) and digits(r[3], 20) then
    local f = self.f
    local now = tonumber(r[1]) * 1e6 + tonumber(r[2])
    return { backend = "redis", key = self.key, ahead = (tonumber(r[3]) - now) / 1e6,
             interval = f.interval / 1e6, tolerance = f.tolerance / 1e6,
             batch_interval = f.batch_interval / 1e6, batch_room = f.batch_room / 1e6,
             reserve = f.reserve, share = self.share, fallback_transitions = self.transitions }
  end
  local st, why = self.fallback:status()
  if not st then return nil, why end
  st.backend, st.key, st.fallback_transitions = "fallback", self.key, self.transitions
  st.why = self.why or (c and "Redis answered the status script with something else than its state")
    or "Redis is away"
  return st
end

--- Every sharer, on every host, waits `seconds` (already clamped).
function Backend:penalize(seconds, budget)
  seconds = math.min(seconds, BOUNDS.max_penalty) -- (as the local backend's max_penalty)
  self:run("penalize", math.floor(seconds * 1e6 + 0.5), budget)
  self.fallback:penalize(seconds)
end

function Backend:close()
  if self.c then self.c:close(); self.c = nil end
  -- a client closed on its fallback no longer limits on its own (the metrics' gauge)
  if self.down_since and self.events.fallback then self.events.fallback(false, "closed", true) end
  self.down_since = nil
  self.fallback:close()
end

return M
