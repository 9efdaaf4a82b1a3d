--- Scenario 1, the LuaSocket + LuaSec peer (lua5.4).  LuaSocket's
-- socket.http closes the connection after every request, so to measure the
-- same thing as the others (one keep-alive connection) this is the minimal
-- HTTP/1.1 keep-alive client a user would write on socket.tcp (+ ssl.wrap,
-- peer verified against the CA): send, read the status line and headers,
-- read Content-Length bytes.  JSON through lua-cjson.
package.path = (os.getenv("BENCH_ROOT") or ".") .. "/bench/seq/?.lua;" .. package.path
local common = require "common"
local socket = require "socket"
local cjson = require "cjson"

local host, port, path = common.url:match("^https?://([^:/]+):(%d+)(/.*)$")
local tls = common.url:match("^https:") ~= nil
local conn = assert(socket.tcp())
assert(conn:connect(host, tonumber(port)))
conn:setoption("tcp-nodelay", true)
if tls then
  local ssl = require "ssl"
  conn = assert(ssl.wrap(conn, { mode = "client", protocol = "any", verify = "peer",
    cafile = common.ca_file, options = { "all", "no_sslv2", "no_sslv3" } }))
  conn:sni(host)
  assert(conn:dohandshake())
end

local url = path .. "contacts.ashx?method=Merge"
local params = common.params()
local function call()
  params.AuthKey = { idKey = common.key_id, Key = common.key }
  params.idProject = common.project
  local body = cjson.encode(params)
  assert(conn:send(table.concat {
    "POST ", url, " HTTP/1.1\r\nHost: ", host, ":", port,
    "\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: ",
    #body, "\r\n\r\n", body }))
  local status = assert(conn:receive("*l"))
  local len
  while true do
    local line = assert(conn:receive("*l"))
    if line == "" then break end
    local n = line:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)")
    if n then len = tonumber(n) end
  end
  local reply = assert(conn:receive(len))
  if not status:match("^HTTP/1%.1 200") then error(status, 0) end
  local r = cjson.decode(reply)
  if r.Success ~= true or r.Records[1].Status ~= "Created" then error("unexpected reply", 0) end
end
common.run(call, socket.gettime)
conn:close()
