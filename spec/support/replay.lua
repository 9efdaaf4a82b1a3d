-- Replays the fixtures of `dialoginsight probe --record DIR` through the
-- library: each recorded reply is served by a transport that answers it,
-- and the call must read as the probe read it (a response, or an error of
-- the recorded kind).  Run with `dialoginsight run replay.lua DIR`.
local config = require "dialoginsight.config"
local client_mod = require "dialoginsight.client"
local dir = assert(arg[1], "usage: replay.lua DIR")

local n = 0
for name in io.popen("ls '" .. dir .. "'"):lines() do
  local f = assert(io.open(dir .. "/" .. name, "rb"))
  local fx = di.decode(f:read("*a"))
  f:close()
  local t = {
    now = function() return 0 end, sleep = function() end,
    post = function(_, url)
      assert(url == fx.url, "the call went to " .. url .. ", recorded " .. fx.url)
      return { status = fx.reply.status, body = fx.reply.body, seconds = 0, http_version = 1.1,
               kind = fx.reply.kind, message = fx.reply.message, sent = fx.reply.kind and false }
    end,
  }
  local s = config.resolve { key_id = fx.request.AuthKey.idKey, key = "replay-key-0000",
    project = fx.request.idProject, base_url = fx.url:match("^(.*/)[^/]+$"), rate = false,
    retries = 0, strict = false }
  local c = client_mod.new(s, t)
  local params = {}
  for k, v in pairs(fx.request) do
    if k ~= "AuthKey" and k ~= "idProject" then params[k] = v end
  end
  local service, method = fx.method:match("^(.-)%.(.+)$")
  local resp, err = c:call(service, method, params)
  local body = fx.reply.body and di.decode(fx.reply.body)
  if type(body) == "table" and body.Success == true then
    assert(resp, fx.method .. ": recorded a success, replayed " .. tostring(err))
  else
    assert(err and err.code == (body and body.ErrorCode ~= di.null and body.ErrorCode or nil),
      fx.method .. ": replayed " .. tostring(err or "a success"))
  end
  n = n + 1
end
print("replayed " .. n .. " fixtures")
