-- The transport contract (docs/transport.md) on the ngx transport, inside a
-- real nginx: the cases of spec/support/transport_cases.lua, each run by
-- spec/nginx/handler.lua's /t/transport endpoint, with the sandbox's faults
-- set from here.  spec/client/transport_spec.lua runs them on curl.
local sbx = require "support.sandbox"
local H = require "nginx.helper"
local cases = require "support.transport_cases"

describe("transport contract (ngx, in nginx)", function()
  local inst, t, closed
  setup(function()
    sbx.reset()
    local port = H.free_port()
    closed = "https://localhost:" .. H.free_port() .. "/x.ashx?method=List"
    inst = H.start_example("transport", { workers = 1, extra = table.concat({
      "server {",
      "  listen 127.0.0.1:" .. port .. ";",
      "  location /t/ { set $di_root @ROOT@; content_by_lua_file @ROOT@/spec/nginx/handler.lua; }",
      "}",
    }, "\n") })
    t = "http://127.0.0.1:" .. port .. "/t/transport?closed=" .. closed .. "&case="
  end)
  teardown(function()
    if inst then inst.stop() end
    pcall(sbx.clear_faults)
  end)
  before_each(function() sbx.clear_faults() end)

  for i, c in ipairs(cases.cases) do
    it(c.name, function()
      if c.faults then sbx.faults(c.faults) end
      local status, r = H.get_json(t .. i)
      assert.equal(200, status)
      assert.equal(c.name, r.name)
      assert.is_true(r.ok, r.why)
    end)
  end
end)
