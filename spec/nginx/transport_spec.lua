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

-- Issue 21, the Dependencies property on the ngx transport: an HTTP server
-- that lies (spec/support/fake_server.lua, the adversary of
-- spec/client/dependencies_spec.lua) never makes a call raise, outlast its
-- timeout or deadline, or hand over a body over max_reply_bytes.  A few
-- seeded scenarios.
describe("the ngx transport against a lying HTTP server #property", function()
  local property = require "support.property"
  local fake = require "support.fake"
  local f, inst, t
  setup(function()
    f = fake.start("http")
    local port = H.free_port()
    inst = H.start_example("http-lie", { workers = 1, extra = table.concat({
      "server {",
      "  listen 127.0.0.1:" .. port .. ";",
      "  location /t/ { set $di_root @ROOT@; content_by_lua_file @ROOT@/spec/nginx/handler.lua; }",
      "}",
    }, "\n") })
    t = "http://127.0.0.1:" .. port .. "/t/http_lie?url=" .. f.url
  end)
  teardown(function()
    if inst then inst.stop() end
    if f then f.stop() end
  end)

  it("every call returns a result or nil, err, in time, no body over the cap", function()
    property.check("nginx-http", { scenarios = 40, seconds = 20 }, function(rng)
      local cap = rng:pick { 4096, 65536 }
      -- (one call: a lie from the second request would hit only a retry)
      local plan, what = fake.http_lie(rng, cap, 1)
      f.plan(plan)
      local timeout, retries = rng:pick { 0.2, 0.4 }, rng:int(0, 2)
      local deadline = rng:chance(0.5) and rng:pick { 0.3, 0.8 } or nil
      local status, r = H.get_json(string.format("%s&cap=%d&timeout=%g&retries=%d%s", t, cap, timeout,
        retries, deadline and ("&deadline=" .. deadline) or ""))
      if status ~= 200 then return false, what .. ": HTTP " .. tostring(status) end
      if r.raised then return false, what .. ": raised " .. r.raised end
      if not r.ok and not r.kind then return false, what .. ": neither a result nor an error" end
      if r.largest > cap then return false, what .. ": a body of " .. r.largest .. " bytes came through" end
      local most = (deadline or ((retries + 1) * timeout + retries * 0.05)) + 0.25
      if r.elapsed > most then
        return false, string.format("%s: the call took %.3f s (bound %.3f)", what, r.elapsed, most)
      end
      return true
    end)
  end)
end)
