-- The curl transport's connections against a server that answers at once: a real
-- nginx returning a Merge reply from its configuration, each request logged with its
-- connection's number.  libcurl's own cap on the connections it keeps follows the calls
-- in flight at the moment one ends; calls that completed as soon as they were sent left
-- one or two in the multi, and an idle connection was closed and opened again: for about
-- one call in 25 against bench/static's nginx, and here a ninth connection for the second
-- call_many at concurrency 8 (issue 26; checked by passing no concurrency).
-- call/scheduler.lua now gives the multi its concurrency (src/di_http.c, session_multi).
local di = require "dialoginsight"
local sbx = require "support.sandbox"
local H = require "nginx.helper"

local REPLY = '{"Success":true,"idRequest":"fast","Records":[{"IdRecord":1,"Status":"Created"}]}'

describe("call_many against a server that answers at once", function()
  local inst, port

  setup(function()
    port = H.free_port()
    inst = H.start_conf("keepalive", H.PREAMBLE .. [[
pid @PREFIX@/nginx.pid;
error_log @PREFIX@/logs/error.log warn;
events {}
http {
  log_format conn '$connection $connection_requests';
  access_log @PREFIX@/logs/access.log conn buffer=64k flush=100ms;
  client_body_temp_path @PREFIX@/tmp;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:]] .. port .. [[;
    location /webservices/ofc4/ {
      default_type application/json;
      return 200 ']] .. REPLY .. [[';
    }
  }
}
]])
  end)

  teardown(function() if inst then inst.stop() end end)

  for _, concurrency in ipairs { 8, 2 } do
    it("keeps its " .. concurrency .. " connections for its next calls", function()
      local log = inst.dir .. "/logs/access.log"
      H.write(log, "")
      H.sh("kill -USR1 " .. H.read(inst.dir .. "/nginx.pid"):match("%d+")) -- reopen the log
      local c = di.new(sbx.settings { base_url = "http://127.0.0.1:" .. port .. "/webservices/ofc4/",
                                      allow_http = true, rate = 1e6, burst = 1e6 })
      local calls = {}
      for i = 1, 2000 do
        calls[i] = { "contacts", "Merge", { Records = { { ID = { key_f_EMail = "k" .. i .. "@example.com" } } } } }
      end
      -- a first, short call_many opens the connections; the client keeps them for the next
      local _, failures = c:call_many({ table.unpack(calls, 1, 100) }, { concurrency = concurrency })
      assert.equal(0, failures)
      _, failures = c:call_many({ table.unpack(calls, 101, 2000) }, { concurrency = concurrency })
      c:close()
      assert.equal(0, failures)
      local conns, n, lines = {}, 0, 0
      for _ = 1, 50 do -- (nginx writes a line once its request ends)
        lines = select(2, H.read(log):gsub("\n", ""))
        if lines >= 2000 then break end
        H.sh("sleep 0.1")
      end
      for id in H.read(log):gmatch("(%d+) %d+\n") do
        if not conns[id] then conns[id], n = true, n + 1 end
      end
      assert.equal(2000, lines)
      assert.is_true(n <= concurrency, n .. " connections for 2,000 calls, " .. concurrency .. " at a time")
    end)
  end
end)
