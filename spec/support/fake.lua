--- The lying dependencies of the Dependencies property (issue 21): starts
-- spec/support/fake_server.lua (a Redis or an HTTP server on loopback whose
-- answers are planned), and draws the adversary's plans.
--
--   local fake = require "support.fake"
--   local f = fake.start("redis")    -- f.url, f.port
--   f.plan(fake.redis_lie(rng))       -- or f.plan{} : honest
--   local s = f.stats()               -- commands, evalsha, connections, lies
--   f.stop()
local core = require "dialoginsight.core"
local socket = require "socket"
local sbx = require "support.sandbox"

local M = {}

local ROOT = assert(io.popen("pwd")):read("*l")

-- A Lua literal of a plan (strings, numbers, booleans, tables of them).
local function literal(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) ~= "table" then return tostring(v) end
  local parts = {}
  for k, x in pairs(v) do parts[#parts + 1] = "[" .. literal(k) .. "]=" .. literal(x) end
  return "{" .. table.concat(parts, ",") .. "}"
end

--- Starts a fake server ("redis" or "http"); returns its handle.
function M.start(mode)
  local out, err = os.tmpname(), os.tmpname()
  local pid = sbx.sh(string.format("cd %q && exec lua5.4 spec/support/fake_server.lua %s > %q 2> %q & echo $!",
    ROOT, mode, out, err)):match("%d+")
  local line
  for _ = 1, 200 do
    local f = io.open(out)
    line = f and f:read("*l")
    if f then f:close() end
    if line then break end
    core.sleep(0.02)
  end
  assert(line, "the fake server did not start: " .. (io.open(err):read("*a") or ""))
  local port, cport = line:match("^(%d+) (%d+)$")
  local h = { port = tonumber(port), pid = pid, err = err }
  h.url = mode == "redis" and ("redis://127.0.0.1:" .. port)
    or ("http://127.0.0.1:" .. port .. "/webservices/ofc4/")
  -- the control port through LuaSocket: independent of the library's own
  -- Redis client, which is what is tested
  local ctl
  local function control(...)
    local args = { "FAKE", ... }
    local msg = { "*" .. #args .. "\r\n" }
    for _, a in ipairs(args) do msg[#msg + 1] = "$" .. #a .. "\r\n" .. a .. "\r\n" end
    if not ctl then
      ctl = assert(socket.connect("127.0.0.1", tonumber(cport)))
      ctl:settimeout(5)
    end
    assert(ctl:send(table.concat(msg)))
    local head = assert(ctl:receive("*l"))
    if head:sub(1, 1) == "+" then return head:sub(2) end
    if head:sub(1, 1) ~= "*" then error("fake server: " .. head) end
    local list = {}
    for i = 1, tonumber(head:sub(2)) do list[i] = tonumber(assert(ctl:receive("*l")):sub(2)) end
    return list
  end
  --- Sets the lie (a plan: spec/support/fake_server.lua), counting from now.
  function h.plan(p) return control("PLAN", literal(p or {})) end
  --- What it served since the last plan.
  function h.stats()
    local r = control("STATS")
    return { commands = r[1], evalsha = r[2], connections = r[3], lies = r[4] }
  end
  function h.stop()
    if ctl then ctl:close(); ctl = nil end
    sbx.sh("kill " .. pid .. " 2>/dev/null")
    os.remove(out)
  end
  return h
end

--- What an instrumented allocator adds to a bound on resident memory:
-- under check-asan (libasan preloaded), ASan's quarantine keeps up to
-- 256 MB of freed blocks, plus their shadow and redzones.
M.RSS_ALLOWANCE = (os.getenv("LD_PRELOAD") or ""):find("asan", 1, true) and 320 * 1048576 or 0

--- This process's peak resident memory (VmHWM), in bytes.
function M.peak_rss()
  local f = io.open("/proc/self/status")
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+) kB")) * 1024
end

--- This process's resident memory now (VmRSS), in bytes.
function M.rss()
  local f = io.open("/proc/self/status")
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+) kB")) * 1024
end

-- The adversary -------------------------------------------------------------------

local function int(n) return ":" .. n .. "\r\n" end
local function pair(a, b) return "*2\r\n" .. a .. b end

local function garbage(rng)
  local t = {}
  for i = 1, rng:int(1, 48) do t[i] = string.char(rng:int(0, 255)) end
  if rng:chance(0.3) then t[#t + 1] = "\r\n" end
  return table.concat(t)
end

-- Answers to EVALSHA that no sound Redis running the limiter's script gives,
-- or gives slowly; each { name, plan fields }.
local SCRIPT_LIES = {
  { "a status", { bytes = "+OK\r\n" } },
  { "a string", { bytes = "$5\r\nhello\r\n" } },
  { "a number as a string", { bytes = pair("$3\r\n100\r\n", int(0)) } },
  { "nil", { bytes = "$-1\r\n" } },
  { "a nil list", { bytes = "*-1\r\n" } },
  { "an integer alone", { bytes = int(0) } },
  { "an error reply", { bytes = "-ERR something broke\r\n" } },
  { "a long error reply", { bytes = "-ERR " .. string.rep("\1bad\n", 2000) .. "\r\n" } },
  { "a nested list", { bytes = pair("*2\r\n" .. int(0) .. int(0), int(0)) } },
  { "an empty list", { bytes = "*0\r\n" } },
  { "a list of one", { bytes = "*1\r\n" .. int(0) } },
  { "a list of three", { bytes = "*3\r\n" .. int(0) .. int(0) .. int(0) } },
  { "a list with a nil", { bytes = pair("$-1\r\n", int(0)) } },
  { "a negative wait", { bytes = pair(int(-5), int(0)) } },
  { "a wait of -1", { bytes = pair(int(-1), int(0)) } },
  { "an hour's wait", { bytes = pair(int(3600000000), int(0)) } },
  { "the largest integer", { bytes = pair(int("9223372036854775807"), int(0)) } },
  { "the smallest integer", { bytes = pair(int("-9223372036854775808"), int(0)) } },
  { "an integer beyond 64 bits", { bytes = pair(int("99999999999999999999999"), int(0)) } },
  { "a fraction", { bytes = pair(":1.5\r\n", int(0)) } },
  { "nan", { bytes = pair(":nan\r\n", int(0)) } },
  { "inf", { bytes = pair(":inf\r\n", int(0)) } },
  { "an exponent", { bytes = pair(":1e9\r\n", int(0)) } },
  { "a reset of 2", { bytes = pair(int(0), int(2)) } },
  { "a reset of -1", { bytes = pair(int(0), int(-1)) } },
  { "a list announced of 2,000,000,000", { bytes = "*2000000000\r\n" } },
  { "a string announced of 4 GB", { bytes = "$4294967296\r\n" } },
  { "an oversized string (100 MB)", { bytes = "$100000000\r\n", pad = { byte = "x", count = 100000000 } } },
  { "an oversized list", { bytes = "*60000\r\n", pad = { byte = ":", count = 1000000 } } },
  { "two replies", { bytes = pair(int(0), int(0)) .. pair(int(0), int(0)) } },
  { "a valid reply dripped", { bytes = pair(int(0), int(0)), drip = 8 } },
  { "a valid wait dripped in pieces", { bytes = pair(int(1000), int(0)), drip = 3, chunk = 2 } },
  { "a close mid-reply", { bytes = pair(int(0), int(0)), cut = 6 } },
  { "a close at once", { close = true } },
  { "silence", { silence = true } },
  { "a wait of 30 s (sound, the longest a penalty asks)", { bytes = pair(int(30000000), int(0)) } },
}

local SHA_LIES = {
  { "a sha of 39 hex digits", { bytes = "$39\r\n" .. string.rep("a", 39) .. "\r\n" } },
  { "a sha that is not hex", { bytes = "$40\r\n" .. string.rep("z", 40) .. "\r\n" } },
  { "a status for a sha", { bytes = "+OK\r\n" } },
  { "an integer for a sha", { bytes = int(1) } },
  { "nil for a sha", { bytes = "$-1\r\n" } },
  { "a list for a sha", { bytes = pair(int(0), int(0)) } },
  { "an error for a sha", { bytes = "-ERR no scripts\r\n" } },
  { "a sha dripped", { bytes = "$40\r\n" .. string.rep("a", 40) .. "\r\n", drip = 4 } },
  { "silence", { silence = true } },
}

local OK_LIES = {
  { "an error", { bytes = "-WRONGPASS invalid username-password pair\r\n" } },
  { "a list", { bytes = pair(int(0), int(0)) } },
  { "nil", { bytes = "$-1\r\n" } },
  { "OK dripped", { bytes = "+OK\r\n", drip = 15 } },
  { "a close mid-reply", { bytes = "+OK\r\n", cut = 2 } },
}

--- A lie of Redis to the limiter: plan, description.  auth/db: whether the
-- client sends AUTH / SELECT (lies about them too).
function M.redis_lie(rng, auth, db)
  local on, list = "EVALSHA", SCRIPT_LIES
  local r = rng:float()
  if r < 0.2 then
    -- a sound reply, dripped: each byte within any per-read timeout, the
    -- whole past any budget
    local ms = rng:pick { 8, 20, 40, 40 }
    local sound = rng:chance(0.7) and { "EVALSHA", pair(int(0), int(0)) }
      or { "SCRIPT", "$40\r\n" .. string.rep("a", 40) .. "\r\n" }
    on, list = sound[1], { { "a sound reply dripped a byte every " .. ms .. " ms", { bytes = sound[2], drip = ms } } }
  elseif r < 0.32 then on, list = "SCRIPT", SHA_LIES
  elseif r < 0.39 and auth then on, list = "AUTH", OK_LIES
  elseif r < 0.44 and db then on, list = "SELECT", OK_LIES
  elseif r < 0.49 then on = "ANY"; list = { { "garbage", { bytes = garbage(rng) } } } end
  local pick = rng:pick(list)
  local p = {}
  for k, v in pairs(pick[2]) do p[k] = v end
  p.on, p.from = on, rng:int(1, 3)
  if rng:chance(0.5) then p.count = 1 end
  return p, on .. " answered " .. pick[1] .. " (lying from the command #" .. p.from .. " on, "
    .. (p.count and "once" or "always") .. ")"
end

local function http(status, headers, body)
  return "HTTP/1.1 " .. status .. "\r\n" .. table.concat(headers, "\r\n")
    .. (#headers > 0 and "\r\n" or "") .. "\r\n" .. (body or "")
end
local function json200(body)
  return http("200 OK", { "Content-Type: application/json", "Content-Length: " .. #body }, body)
end

local SHAPES = {
  "[]", "\"x\"", "1", "null", "true", "{}", '{"Success":true}', '{"Success":true,"Records":"x"}',
  '{"Success":true,"Records":[1,"a",null,[]]}', '{"Success":true,"Records":{"a":1}}',
  '{"Success":"true","Records":[]}', '{"Success":false,"ErrorCode":{"x":1},"ErrorMessage":[1],"idRequest":{}}',
  '{"Success":false,"ErrorCode":"' .. string.rep("E", 5000) .. '"}',
  '{"Success":true,"Records":[{"idProject":1e400,"Name":{"x":[]}}],"TotalRecords":-1}',
  '{"Success":true,"Records":[],"TotalRecords":"many"}',
  string.rep("[", 100000) .. string.rep("]", 100000),
  '{"Success":true,"Records":[' .. string.rep('{"idProject":1},', 5000) .. '{}]}',
  '{"Success":true,"Records":[{"Name":"\\ud800"}]}', "{\"Success\":true,\"Records\":[{\"Name\":\"\255\254\"}]}",
}

--- A lie of an HTTP server: plan, description.  cap: the client's
-- max_reply_bytes; from: the first request that gets the lie (1 or 2).
function M.http_lie(rng, cap, from)
  local body = '{"Success":true,"idRequest":7,"Records":[],"TotalRecords":0}'
  local choices = {
    function() local s = rng:pick(SHAPES); return { bytes = json200(s) }, "a body of the wrong shape: " .. s:sub(1, 40) end,
    function()
      return { bytes = http("200 OK", { "Content-Length: 1500000000" }, body), silence = rng:chance(0.5) },
        "a Content-Length of 1.5 GB"
    end,
    function()
      return { bytes = http("200 OK", { "Content-Length: " .. (cap * 4) }, ""), pad = { byte = " ", count = cap * 4 } },
        "a body of 4 x max_reply_bytes with its Content-Length"
    end,
    function()
      return { bytes = http("200 OK", { "Connection: close" }, body), pad = { byte = " ", count = cap * 3 },
               then_close = true },
        "a body of 3 x max_reply_bytes, no length, until close"
    end,
    function()
      return { bytes = http("200 OK", { "Content-Type: application/json" }, ""), pad = { byte = " ", count = 256 * 1048576 },
               then_close = true },
        "a body of 256 MB, no length, until close"
    end,
    function()
      return { bytes = http("200 OK", { "Transfer-Encoding: chunked" }, string.format("%x\r\n", cap * 2)),
               pad = { byte = " ", count = cap * 2 } }, "a chunk of 2 x max_reply_bytes"
    end,
    function()
      return { bytes = http("200 OK", { "Transfer-Encoding: chunked" }, "ffffffffffff\r\n" .. body) },
        "a chunk announced of 281 TB"
    end,
    function()
      return { bytes = http("200 OK", { "Content-Length: -5" }, body) }, "a negative Content-Length"
    end,
    function()
      return { bytes = json200(body), drip = rng:int(2, 9) }, "a valid reply dripped"
    end,
    function()
      return { bytes = json200(body), cut = rng:int(1, 120) }, "a close mid-reply"
    end,
    function() return { bytes = garbage(rng) }, "garbage" end,
    function() return { bytes = garbage(rng), silence = true }, "garbage, then silence" end,
    function() return { silence = true }, "silence" end,
    function() return { close = true }, "a close at once" end,
    function()
      return { bytes = "HTTP/1.1 200 OK\r\nX-Pad: ", pad = { byte = "h", count = cap * 2 } },
        "a header line of 2 x max_reply_bytes"
    end,
    function()
      return { bytes = http("429 Too Many Requests", { "Retry-After: 99999999999", "Content-Length: 2" }, "{}") },
        "a 429 asking for 3,000 years"
    end,
    function()
      local v = rng:pick { "nan", "NaN", "inf", "-inf", "1e300", "-5", "0x10", "", "soon",
        "Fri, 31 Dec 9999 23:59:59 GMT", "Thu, 01 Jan 1970 00:00:00 GMT", string.rep("9", 300) }
      return { bytes = http("429 Too Many Requests", { "Retry-After: " .. v, "Content-Length: 2" }, "{}") },
        "a 429 with Retry-After: " .. v
    end,
  }
  local p, what = rng:pick(choices)()
  p.on, p.from = "POST", from or rng:int(1, 2)
  if rng:chance(0.5) then p.count = 1 end
  return p, what .. " (lying from the request #" .. p.from .. " on, " .. (p.count and "once" or "always") .. ")"
end

return M
