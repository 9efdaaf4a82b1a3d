--- The nginx transport: HTTP/1.1 over cosockets, so that a call from a request handler or a timer
-- yields to the event loop instead of blocking the worker.  The contract and the reply tables are
-- docs/transport.md's; what it means for users, docs/openresty.md.
local core = require "dialoginsight.core"

local ngx = ngx
local tcp = ngx and ngx.socket and ngx.socket.tcp
local spawn, wait, kill = ngx and ngx.thread.spawn, ngx and ngx.thread.wait,
  ngx and ngx.thread.kill

local M = {}

--- Phases in which cosockets, ngx.sleep and light threads are available.
M.PHASES = {
  rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

M.POOL_SIZE = 32          -- idle connections kept per host:port
M.KEEPALIVE = 60          -- seconds an idle connection stays in the pool
M.MAX_HEAD = 65536        -- bytes of a reply's status line and headers
M.CHUNK = 65536           -- bytes asked of one receiveany

function M.available()
  return type(ngx) == "table" and type(ngx.get_phase) == "function"
    and tcp ~= nil
end

--- The reason calls cannot be made in the current phase, or nil.
function M.phase_problem()
  local phase = ngx.get_phase()
  if M.PHASES[phase] then return nil end
  return "cosockets are not available in nginx's " .. phase .. " phase: make "
    .. "dialoginsight calls from a rewrite, access or content handler, or "
    .. "from a timer started with ngx.timer.at(0, function() ... end)"
end

local Transport = {}
Transport.__index = Transport

--- settings: the client's resolved settings.  ca_file is ignored: lua-nginx-module 0.10.23 (Debian 12)
-- has no per-socket CA, so nginx.conf's lua_ssl_trusted_certificate is the CA.
function M.new(settings)
  if not M.available() then
    error("dialoginsight: the ngx transport needs nginx with lua-nginx-module", 2)
  end
  -- written into every request's head: CR or LF would add headers (config.lua refuses it first)
  if type(settings.user_agent) ~= "string" or settings.user_agent:find("%c") then
    error("dialoginsight: the user_agent must be text without control characters (CR, LF, ...)", 2)
  end
  return setmetatable({
    verify = settings.tls_verify,
    timeout = settings.timeout,
    connect_timeout = settings.connect_timeout,
    user_agent = settings.user_agent,
    max_reply = settings.max_reply_bytes,
    sessions = {}, -- TLS session per pool, for resumption on new connections
  }, Transport)
end

local url_cache = {}

-- nginx checks a certificate against a host name only (X509_check_host), never an IP address
local function is_ip(host)
  return host:match("^%d+%.%d+%.%d+%.%d+$") ~= nil or host:find(":", 1, true) ~= nil
end

local function parse(url)
  local u = url_cache[url]
  if u then return u end
  local scheme, authority, path = url:match("^(%a+)://([^/]+)(.*)$")
  if not scheme then return nil end
  scheme = scheme:lower()
  if scheme ~= "https" and scheme ~= "http" then return nil end
  local host, port = authority:match("^%[(.+)%]:?(%d*)$")
  if not host then host, port = authority:match("^([^:]+):?(%d*)$") end
  if not host then return nil end
  local tls = scheme == "https"
  port = tonumber(port) or (tls and 443 or 80)
  -- nginx's resolver never reads /etc/hosts
  local addr = host:lower() == "localhost" and "127.0.0.1" or host
  u = {
    tls = tls, host = host, port = port, addr = addr,
    authority = authority, path = path ~= "" and path or "/",
    pool = "dialoginsight:" .. host .. ":" .. port .. (tls and ":tls" or ":plain"),
  }
  url_cache[url] = u
  return u
end
M.parse = parse

local function ms(seconds)
  return math.max(1, math.floor(seconds * 1000 + 0.5))
end

local function fail(kind, message, sent)
  return { kind = kind, message = message, sent = sent }
end

local function io_error(u, what, err, sent)
  if err == "timeout" then
    return fail("timeout", what .. " " .. u.authority .. " timed out", sent)
  end
  if err == "closed" then
    return fail("network", "connection closed by " .. u.authority .. " while " .. what, sent)
  end
  return fail("network", what .. " " .. u.authority .. " failed: " .. tostring(err), sent)
end

-- true, or a failure reply.  pcall: lua-nginx-module 0.10.23's resty.core raises an assertion
-- when a handshake that finished at once then fails verification.
function Transport:handshake(sock, u)
  local ok, sess, err = pcall(sock.sslhandshake, sock, self.sessions[u.pool] or nil,
    u.host, self.verify)
  if ok and sess then
    if type(sess) == "cdata" or type(sess) == "userdata" then
      self.sessions[u.pool] = sess
    end
    return true
  end
  self.sessions[u.pool] = nil
  local why = ok and tostring(err) or "the server's certificate did not verify"
  local msg = "TLS handshake with " .. u.authority .. " failed: " .. why
  if self.verify then
    msg = msg .. " (nginx verifies against lua_ssl_trusted_certificate in nginx.conf; "
      .. "the client's ca_file cannot be applied to a cosocket"
    if is_ip(u.host) then
      msg = msg .. "; nginx checks host names only, not IP addresses: use a host name "
        .. "in base_url"
    end
    msg = msg .. ")"
  end
  return fail("tls", msg, false)
end

--- sock:connect(host, port, opts) within seconds, the name's lookup included: ok | nil, err.
-- nginx bounds a lookup by resolver_timeout (30 s by default), not by the connect timeout, so
-- the connect to a name runs in a light thread raced against a sleep.  Also limiter/redis.lua's.
function M.connect(sock, host, port, opts, seconds)
  if is_ip(host) then return sock:connect(host, port, opts) end
  local res = {}
  local co = spawn(function() res.ok, res.err = sock:connect(host, port, opts); res.done = true end)
  if coroutine.status(co) ~= "dead" then
    local timer = spawn(function() ngx.sleep(math.max(0.001, seconds)) end)
    wait(co, timer)
    if coroutine.status(co) ~= "dead" then
      kill(co)
      return nil, "timeout"
    end
    kill(timer)
  end
  if not res.done then return nil, "the connect raised" end
  return res.ok, res.err
end

-- sock, reused | nil, a failure reply
function Transport:connect(u, fresh, timeout)
  local sock = tcp()
  local t = ms(math.min(self.connect_timeout, timeout))
  sock:settimeouts(t, ms(timeout), ms(timeout))
  -- a fresh connection (a send: never written twice) comes from a pool that is never filled
  -- connections verified and not verified never share a pool
  local pool = u.pool .. (self.verify and ":verified" or ":unverified")
  local ok, err = M.connect(sock, u.addr, u.port, { pool = fresh and (pool .. ":fresh") or pool },
    math.min(self.connect_timeout, timeout))
  if not ok then
    if err == "timeout" then
      return nil, fail("timeout", "connecting to " .. u.authority .. " timed out", false)
    end
    local msg = "cannot connect to " .. u.authority .. ": " .. tostring(err)
    if tostring(err):find("resolver", 1, true) then
      msg = msg .. " (add a 'resolver' directive to nginx.conf to use host names)"
    end
    return nil, fail("network", msg, false)
  end
  local reused = (sock:getreusedtimes() or 0) > 0
  if u.tls and not reused then
    local shaken = self:handshake(sock, u)
    if shaken ~= true then
      sock:close()
      return nil, shaken
    end
  end
  return sock, reused
end

local function request_head(self, u, body, fresh)
  return {
    "POST ", u.path, " HTTP/1.1\r\n",
    "Host: ", u.authority, "\r\n",
    "User-Agent: ", self.user_agent, "\r\n",
    "Content-Type: application/json\r\n",
    "Accept: application/json\r\n",
    "Content-Length: ", tostring(#body), "\r\n",
    "Connection: ", fresh and "close" or "keep-alive", "\r\n",
    "\r\n", body,
  }
end

-- A reply's bytes, read with receiveany, every wait cut to what is left until `ends`: a cosocket's
-- timeout is per operation, and a reply dripped a byte at a time would renew it for as long as it drips.
local Reader = {}
Reader.__index = Reader

local function reader(sock, ends, max_body)
  return setmetatable({ sock = sock, ends = ends, max = max_body, buf = "", pos = 1, head = 0 },
    Reader)
end

function Reader:recv()
  local left = self.ends - core.now()
  if left <= 0 then return nil, "timeout" end
  self.sock:settimeout(ms(left))
  return self.sock:receiveany(M.CHUNK)
end

function Reader:buffered() return #self.buf - self.pos + 1 end

function Reader:line()
  while true do
    local i = self.buf:find("\n", self.pos, true)
    if i then
      local line = self.buf:sub(self.pos, i - 1):gsub("\r$", "")
      self.head = self.head + (i - self.pos + 1)
      self.pos = i + 1
      if self.head > M.MAX_HEAD then return nil, "head" end
      return line
    end
    if self.head + self:buffered() > M.MAX_HEAD then return nil, "head" end
    local data, err = self:recv()
    if not data then return nil, err end
    self.buf = self.buf:sub(self.pos) .. data
    self.pos = 1
  end
end

-- n bytes (nil: up to the close) appended to parts, total counting the body against max:
-- the new total | nil, err, the bytes got of n
function Reader:take(n, parts, total)
  if n and total + n > self.max then return nil, "too_large", 0 end
  local got = 0
  while n == nil or got < n do
    local avail = self:buffered()
    if avail > 0 then
      local k = n and math.min(avail, n - got) or avail
      if total + k > self.max then return nil, "too_large", got end
      parts[#parts + 1] = self.buf:sub(self.pos, self.pos + k - 1)
      self.pos, got, total = self.pos + k, got + k, total + k
      if #parts >= 4096 then -- tiny chunks must not cost more than their bytes
        local whole = table.concat(parts)
        for i = #parts, 2, -1 do parts[i] = nil end
        parts[1] = whole
      end
      if self.pos > #self.buf then self.buf, self.pos = "", 1 end
    else
      local data, err = self:recv()
      if not data then
        if n == nil and err == "closed" then return total end
        return nil, err, got
      end
      self.buf, self.pos = data, 1
    end
  end
  return total
end

-- status, version, headers (lower-case names) | nil, err, whether any byte came back
local function read_head(rd)
  local line, err = rd:line()
  if not line then return nil, err, rd.head > 0 or rd:buffered() > 0 end
  local version, status = line:match("^HTTP/(%d%.?%d?) (%d%d%d)")
  if not status then return nil, "bad status line", true end
  local headers = {}
  while true do
    local h
    h, err = rd:line()
    if not h then return nil, err, true end
    if h == "" then break end
    local name, value = h:match("^([^:]+):%s*(.-)%s*$")
    if name then
      name = name:lower()
      if headers[name] then
        headers[name] = headers[name] .. ", " .. value
      else
        headers[name] = value
      end
    end
  end
  status = tonumber(status)
  if status >= 100 and status < 200 then -- 100 Continue and friends: skip
    return read_head(rd)
  end
  return status, tonumber(version), headers
end

-- body | nil, err, truncated
local function read_chunked(rd)
  local parts, total = {}, 0
  while true do
    rd.head = 0 -- (each line of the framing within MAX_HEAD; not kept)
    local line, err = rd:line()
    if not line then return nil, err, err == "closed" end
    local hex = line:match("^%s*(%x+)")
    local size = hex and #hex <= 12 and tonumber(hex, 16)
    if not size then return nil, "bad chunk size line" end
    if size == 0 then break end
    local got
    total, err, got = rd:take(size, parts, total)
    if not total then return nil, err, err == "closed", got end
    local crlf = rd:line()
    if crlf ~= "" then return nil, crlf and "bad chunk end" or "closed", crlf == nil end
  end
  rd.head = 0
  while true do -- trailers
    local line, err = rd:line()
    if not line then return nil, err, err == "closed" end
    if line == "" then break end
  end
  return table.concat(parts)
end

local function too_large(self, u, len)
  local r = fail("too_large", "the reply from " .. u.authority .. " is larger than max_reply_bytes ("
    .. string.format("%d", self.max_reply) .. " bytes"
    .. (len and len > self.max_reply and ("; the server announced " .. string.format("%d", len)) or "")
    .. "): not read further; raise the max_reply_bytes setting if replies this large are expected",
    true)
  r.limit = self.max_reply
  return r
end

-- body | nil, a failure
function Transport:read_body(rd, u, status, headers)
  local te, cl = headers["transfer-encoding"], headers["content-length"]
  local len = cl and cl:match("^%d+$") and tonumber(cl)
  if cl and not len then
    return nil, fail("network", "the reply from " .. u.authority .. " has a bad Content-Length", true)
  end
  local body, err, truncated
  if status == 204 or status == 304 then
    return ""
  elseif te and te:lower():find("chunked", 1, true) then
    body, err, truncated = read_chunked(rd)
  elseif len then
    if len > self.max_reply then return nil, too_large(self, u, len) end
    local parts = {}
    local total, got
    total, err, got = rd:take(len, parts, 0)
    if total then body = table.concat(parts)
    elseif err == "closed" then
      truncated = true
      err = "got " .. got .. " of " .. len .. " bytes"
    end
  else -- no length: the body ends when the server closes the connection
    local parts = {}
    local total
    total, err = rd:take(nil, parts, 0)
    if total then body = table.concat(parts) end
  end
  if body then return body end
  if err == "too_large" then return nil, too_large(self, u) end
  if truncated then
    return nil, fail("network", "truncated reply from " .. u.authority .. ": the connection "
      .. "closed before the end of the body (" .. tostring(err) .. ")", true)
  end
  return nil, io_error(u, "reading the body of the reply of", err, true)
end

local function reusable(fresh, status, version, headers, rd)
  local conn = (headers["connection"] or ""):lower()
  local framed = headers["transfer-encoding"] or headers["content-length"]
    or status == 204 or status == 304
  -- (bytes after the reply answer nothing: the connection is out of step)
  return not fresh and framed and rd:buffered() == 0 and not conn:find("close", 1, true)
    and (version >= 1.1 or conn:find("keep-alive", 1, true))
end

-- A reply table, and true when a pooled connection the server had closed took no byte of the
-- request: worth one more try on a new connection, as libcurl does.
function Transport:exchange(u, body, timeout, fresh, started)
  local ends = core.now() + timeout
  local sock, reused = self:connect(u, fresh, timeout)
  if not sock then return reused end
  sock:settimeout(ms(math.max(0.001, ends - core.now())))
  local ok, err = sock:send(request_head(self, u, body, fresh))
  if not ok then
    sock:close()
    return io_error(u, "sending to", err, true), reused and err == "closed"
  end
  local rd = reader(sock, ends, self.max_reply)
  local status, version, headers = read_head(rd)
  if not status then
    sock:close()
    local got_any = headers
    if version == "bad status line" then
      return fail("network", "the reply from " .. u.authority .. " is not HTTP", true)
    end
    if version == "head" then
      return fail("network", "the reply from " .. u.authority .. " has a head over "
        .. M.MAX_HEAD .. " bytes", true)
    end
    return io_error(u, "reading the reply of", version, true),
      reused and not got_any and version == "closed"
  end
  local reply, failure = self:read_body(rd, u, status, headers)
  if not reply then
    sock:close()
    return failure
  end
  if reusable(fresh, status, version, headers, rd) then
    sock:setkeepalive(M.KEEPALIVE * 1000, M.POOL_SIZE)
  else
    sock:close()
  end
  return { status = status, body = reply, seconds = core.now() - started,
           http_version = version, retry_after = headers["retry-after"] }
end

--- post(url, body, timeout, fresh) -> a reply table (docs/transport.md).
function Transport:post(url, body, timeout, fresh)
  local problem = M.phase_problem()
  if problem then return fail("network", problem, false) end
  local u = parse(url)
  if not u then return fail("network", "unsupported URL " .. tostring(url), false) end
  timeout = timeout or self.timeout
  local started = core.now()
  local r, stale = self:exchange(u, body, timeout, fresh, started)
  if stale then
    r = self:exchange(u, body, math.max(0.001, timeout - (core.now() - started)), true, started)
  end
  return r
end

--- Refuses calls up front in phases without cosockets (the scheduler asks
-- before spending a limiter slot or a retry).
function Transport:refuse()
  return M.phase_problem()
end

-- 1 ms at least: ngx.sleep counts whole milliseconds, and Debian's nginx logs a warning for each
-- ngx.sleep(0) (it lacks OpenResty's delayed-events patch)
local function nap(s)
  ngx.sleep(math.max(0.001, s))
end

--- Concurrent calls: one light thread (ngx.thread.spawn) per call.
local Multi = {}
Multi.__index = Multi

function Transport:multi()
  return setmetatable({ t = self, threads = {}, tags = {}, n = 0 }, Multi)
end

function Multi:add(tag, url, body, timeout, fresh)
  local t = self.t
  local th = spawn(function()
    -- a thread never raises (pcall may yield in LuaJIT): perform() then
    -- only ever sees completions and its own sleeper
    local ok, r = pcall(t.post, t, url, body, timeout, fresh)
    if not ok then r = fail("network", "internal error: " .. tostring(r), true) end
    r.tag = tag
    return r
  end)
  self.n = self.n + 1
  self.threads[self.n] = th
  self.tags[th] = tag
end

function Multi:pending()
  return self.n
end

local function drop(self, th)
  for i = 1, self.n do
    if self.threads[i] == th then
      table.remove(self.threads, i)
      self.n = self.n - 1
      break
    end
  end
  self.tags[th] = nil
end

--- Waits up to wait_seconds for a call to finish; returns the completions (possibly none).
function Multi:perform(wait_seconds)
  if self.n == 0 then return {} end
  local delay = wait_seconds or 0
  local sleeper = spawn(function() nap(delay) end)
  local ok, res = wait(sleeper, unpack(self.threads, 1, self.n))
  if not ok or type(res) ~= "table" then return {} end -- the sleeper: time is up
  kill(sleeper)
  for i = 1, self.n do
    if self.tags[self.threads[i]] == res.tag and coroutine.status(self.threads[i]) == "dead" then
      drop(self, self.threads[i])
      break
    end
  end
  return { res }
end

function Multi:close()
  for i = 1, self.n do kill(self.threads[i]) end
  self.threads, self.tags, self.n = {}, {}, 0
end

function Transport:now() return core.now() end

function Transport:sleep(s)
  if s > 0 then nap(s) end
end

--- Pooled connections belong to the worker, not to the client: nothing to do.
function Transport:close() end

return M
