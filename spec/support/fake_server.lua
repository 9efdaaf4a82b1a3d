-- A lying dependency for the Dependencies property (issue 21): a Redis
-- (RESP) or an HTTP/1.1 server on a loopback port whose answers a spec
-- chooses, down to the byte and its pace.  Run by spec/support/fake.lua:
--   lua5.4 spec/support/fake_server.lua redis|http
-- prints "PORT CONTROL_PORT", then serves both until killed.
--
-- Honest by default: as Redis, AUTH/SELECT answer +OK, SCRIPT LOAD a sha,
-- EVALSHA runs the limiter's GCRA (limiter/redis.lua's script, in Lua,
-- on this process's clock); as HTTP, every POST gets a 200 OFC4 envelope.
-- The control port speaks RESP:
--   FAKE PLAN <lua table>  the lie (below), counting from now; {} is honest
--   FAKE STATS             *4: commands (requests), EVALSHA, connections,
--                          lies told, since the last PLAN
-- A plan: { on = "EVALSHA" | "SCRIPT" | "AUTH" | "SELECT" | "POST" | "ANY",
--   from = N (the Nth matching command lies first; 1), count = N (how many
--   lie; all), bytes = the raw answer, pad = { byte =, count = } streamed
--   after it, drip = ms between pieces of chunk bytes (1), cut = bytes sent
--   before closing, then_close = true (close after the answer), silence =
--   true (never answer), close = true (close at once) }.
local socket = require "socket"

local MODE = arg[1] == "http" and "http" or "redis"

local function clock() return socket.gettime() end

-- Coroutines, one per connection, each yielding what it waits for:
-- "r" (its socket readable), "w" (writable) or a time to wake at.
local tasks = {}

local function spawn(sock, fn)
  sock:settimeout(0)
  tasks[#tasks + 1] = { sock = sock, co = coroutine.create(fn), wait = "run" }
end

local function wait_for(what) coroutine.yield(what) end

-- Buffered reading on a non-blocking socket.
local function reader(sock)
  local r = { buf = "", closed = false }
  function r.more()
    while true do
      local data, err, partial = sock:receive(65536)
      data = data or partial
      if data and #data > 0 then r.buf = r.buf .. data; return true end
      if err ~= "timeout" then r.closed = true; return false end
      wait_for("r")
    end
  end
  function r.line()
    while true do
      local i = r.buf:find("\r\n", 1, true)
      if i then
        local l = r.buf:sub(1, i - 1)
        r.buf = r.buf:sub(i + 2)
        return l
      end
      if not r.more() then return nil end
    end
  end
  function r.bytes(n)
    while #r.buf < n do
      if not r.more() then return nil end
    end
    local s = r.buf:sub(1, n)
    r.buf = r.buf:sub(n + 1)
    return s
  end
  return r
end

-- Sends s whole (yielding while the socket is full); false once closed.
local function send_all(sock, s)
  local i = 1
  while i <= #s do
    local last, err, partial = sock:send(s, i)
    if last then return true end
    if err ~= "timeout" then return false end
    i = (partial or i - 1) + 1
    wait_for("w")
  end
  return true
end

local function sleep(ms) wait_for(clock() + ms / 1000) end

-- Delivers an answer the way the plan says.  Returns false when the
-- connection must end.
local function deliver(sock, r, bytes, plan)
  if plan and plan.close then return false end
  if plan and plan.silence then -- until the client gives up
    while r.more() do r.buf = "" end
    return false
  end
  local cut = plan and plan.cut
  local drip, chunk = plan and plan.drip, plan and plan.chunk or 1
  local function out(s)
    if cut then
      if cut <= 0 then return false end
      if #s > cut then s = s:sub(1, cut) end
      cut = cut - #s
    end
    if drip then
      for i = 1, #s, chunk do
        if not send_all(sock, s:sub(i, i + chunk - 1)) then return false end
        sleep(drip)
      end
    elseif not send_all(sock, s) then
      return false
    end
    return not (cut and cut <= 0)
  end
  if not out(bytes) then return false end
  local pad = plan and plan.pad
  if pad then
    local piece = string.rep(pad.byte or "x", 65536)
    local left = pad.count
    while left > 0 do
      local s = left >= #piece and piece or piece:sub(1, left)
      if not out(s) then return false end
      left = left - #s
    end
  end
  return not (plan and plan.then_close)
end

-- The plan and its counters ---------------------------------------------------

local plan, seen = {}, 0
local stats = { commands = 0, evalsha = 0, connections = 0, lies = 0 }

local function lie_for(name)
  local on = plan.on
  if not on or not (on == "ANY" or on == name) then return nil end
  seen = seen + 1
  local from, count = plan.from or 1, plan.count or math.huge
  if seen < from or seen >= from + count then return nil end
  stats.lies = stats.lies + 1
  return plan
end

-- RESP --------------------------------------------------------------------------

local function bulk(s) return "$" .. #s .. "\r\n" .. s .. "\r\n" end
local function int(n) return ":" .. string.format("%d", n) .. "\r\n" end

-- One command (a list of bulk strings), or nil when the connection ended.
local function read_command(r)
  local line = r.line()
  if not line then return nil end
  local n = tonumber(line:match("^%*(%d+)$"))
  if not n then return nil end
  local args = {}
  for i = 1, n do
    local len = tonumber((r.line() or ""):match("^%$(%d+)$"))
    if not len then return nil end
    local s = r.bytes(len + 2)
    if not s then return nil end
    args[i] = s:sub(1, len)
  end
  return args
end

local SHA = "5d2f3c1a9b8e7d6c5b4a39281706f5e4d3c2b1a0"
local tats = {}

-- limiter/redis.lua's script, on this clock (KEYS: the state and its lead).
local function gcra(args)
  local key, lkey, op = args[4], args[5], args[6]
  local interval, tolerance = tonumber(args[7]), tonumber(args[8])
  local penalty, own, cap = tonumber(args[9]), tonumber(args[10]), tonumber(args[11])
  local now = math.floor(clock() * 1e6)
  local lead = math.max(own, math.min(tats[lkey] or 0, cap))
  local tat, reset = tats[key] or 0, 0
  if tat > now + lead then tat, reset = 0, 1 end
  local start = math.max(tat, now)
  local most = own - tolerance
  if op == "acquire" then
    if start - now > tolerance then return "*2\r\n" .. int(math.min(most, start - now - tolerance)) .. int(reset) end
    tats[key] = start + interval
  else
    tats[key] = math.max(tat, now + penalty + tolerance)
  end
  tats[lkey] = lead
  return "*2\r\n" .. int(0) .. int(reset)
end

local function honest_redis(args)
  local name = args[1]:upper()
  if name == "AUTH" or name == "SELECT" or name == "PING" then return "+OK\r\n" end
  if name == "SCRIPT" then return bulk(SHA) end
  if name == "EVALSHA" then
    if args[2] ~= SHA then return "-NOSCRIPT No matching script. Please use EVAL.\r\n" end
    return gcra(args)
  end
  return "-ERR unknown command\r\n"
end

local function serve_redis(sock)
  local r = reader(sock)
  while true do
    local args = read_command(r)
    if not args then break end
    local name = (args[1] or ""):upper()
    stats.commands = stats.commands + 1
    if name == "EVALSHA" then stats.evalsha = stats.evalsha + 1 end
    local p = lie_for(name)
    local ok
    if p then ok = deliver(sock, r, p.bytes or "", p)
    else ok = deliver(sock, r, honest_redis(args)) end
    if not ok then break end
  end
  sock:close()
end

-- HTTP --------------------------------------------------------------------------

local HONEST_BODY = '{"Success":true,"idRequest":7,"Records":[{"idProject":1,"Name":"p"}],"TotalRecords":1}'

local function serve_http(sock)
  local r = reader(sock)
  while true do
    local line = r.line()
    if not line or line == "" then break end
    local len = 0
    while true do
      local h = r.line()
      if not h then sock:close(); return end
      if h == "" then break end
      local v = h:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)")
      if v then len = tonumber(v) end
    end
    if len > 0 and not r.bytes(len) then break end
    stats.commands = stats.commands + 1
    local p = lie_for("POST")
    local ok
    if p then ok = deliver(sock, r, p.bytes or "", p)
    else
      ok = deliver(sock, r, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        .. #HONEST_BODY .. "\r\n\r\n" .. HONEST_BODY)
    end
    if not ok then break end
  end
  sock:close()
end

-- Control -----------------------------------------------------------------------

local function serve_control(sock)
  local r = reader(sock)
  while true do
    local args = read_command(r)
    if not args then break end
    local reply
    if args[2] == "PLAN" then
      local fn = load("return " .. (args[3] or "{}"), "plan", "t", { math = math })
      local ok, p = pcall(fn)
      if ok and type(p) == "table" then
        plan, seen = p, 0
        stats = { commands = 0, evalsha = 0, connections = 0, lies = 0 }
        reply = "+OK\r\n"
      else
        reply = "-ERR bad plan\r\n"
      end
    elseif args[2] == "STATS" then
      reply = "*4\r\n" .. int(stats.commands) .. int(stats.evalsha) .. int(stats.connections)
        .. int(stats.lies)
    else
      reply = "-ERR unknown\r\n"
    end
    if not send_all(sock, reply) then break end
  end
  sock:close()
end

-- The loop -----------------------------------------------------------------------

local main = assert(socket.bind("127.0.0.1", 0))
local control = assert(socket.bind("127.0.0.1", 0))
main:settimeout(0)
control:settimeout(0)
io.stdout:write(select(2, main:getsockname()), " ", select(2, control:getsockname()), "\n")
io.stdout:flush()

local serve = MODE == "http" and serve_http or serve_redis

while true do
  local rs, ws, soonest = { main, control }, {}, nil
  local now = clock()
  for _, t in ipairs(tasks) do
    if t.wait == "r" then rs[#rs + 1] = t.sock
    elseif t.wait == "w" then ws[#ws + 1] = t.sock
    elseif type(t.wait) == "number" then soonest = math.min(soonest or t.wait, t.wait) end
  end
  local timeout = soonest and math.max(0, soonest - now) or 1
  local readable, writable = socket.select(rs, ws, timeout)
  local ready = {}
  for _, s in ipairs(readable) do ready[s] = true end
  for _, s in ipairs(writable) do ready[s] = true end
  for _, l in ipairs { main, control } do
    if ready[l] then
      local c = l:accept()
      if c then
        if l == main then
          stats.connections = stats.connections + 1
          spawn(c, function() serve(c) end)
        else
          spawn(c, function() serve_control(c) end)
        end
      end
    end
  end
  now = clock()
  local alive = {}
  for _, t in ipairs(tasks) do
    local go = t.wait == "run" or ((t.wait == "r" or t.wait == "w") and ready[t.sock])
      or (type(t.wait) == "number" and t.wait <= now)
    if go then
      local ok, what = coroutine.resume(t.co)
      if not ok then
        io.stderr:write("fake_server: ", tostring(what), "\n")
        pcall(t.sock.close, t.sock)
      end
      t.wait = what
    end
    if coroutine.status(t.co) ~= "dead" then alive[#alive + 1] = t end
  end
  tasks = alive
end
