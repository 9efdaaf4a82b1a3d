-- Issue 25 in a real nginx: `location /metrics` (metrics/ngx.lua) renders what every
-- worker counted into `lua_shared_dict dialoginsight_metrics`; after a scripted mix of
-- calls (ok, 429, 503 retried, a time-out) the counters equal the sandbox's own log,
-- label for label, and promtool (Debian's prometheus) accepts the text.
local di = require "dialoginsight"
local sbx = require "support.sandbox"
local sm = require "support.metrics"
local H = require "nginx.helper"

local samples, delta, promtool = sm.parse, sm.delta, sm.promtool

-- An nginx of the library alone on port, http{} extra lines, and its server's locations
-- (/metrics always served).
local function bare_nginx(name, port, http_extra, locations)
  return H.start_conf(name, H.PREAMBLE .. [[
pid @PREFIX@/nginx.pid;
error_log @PREFIX@/logs/error.log warn;
events {}
http {
  access_log off;
  lua_package_path "@ROOT@/lua/?.lua;@ROOT@/lua/?/init.lua;;";
  lua_package_cpath "@ROOT@/build/luajit/?.so;;";
  client_body_temp_path @PREFIX@/tmp;
]] .. (http_extra or "") .. [[
  server {
    listen 127.0.0.1:]] .. port .. [[;
    location = /metrics { content_by_lua_block { require("dialoginsight.metrics.ngx").serve() } }
]] .. (locations or "") .. [[
  }
}
]])
end

describe("nginx /metrics", function()
  local inst, t

  setup(function()
    sbx.reset()
    local extra
    extra, t = H.handler_server()
    inst = H.start_example("metrics", { workers = 2, extra = extra })
  end)

  teardown(function()
    sbx.clear_faults()
    if inst then inst.stop() end
  end)

  it("sums every worker's counts, equal to the sandbox's log label for label", function()
    local status, text = H.http(inst.url .. "metrics")
    assert.equal(200, status, text)
    local before = samples(text)
    local mark = sbx.mark()
    local retried = "call?service=projects&method=List&retries=2&backoff=0.01&max_retry_after=1"
    local replies, pids = {}, {}
    local function call(q)
      local _, r = H.get_json(t .. q)
      replies[#replies + 1] = r
      pids[r.pid] = true
      return r
    end
    for _ = 1, 6 do assert.is_true(call("call?service=projects&method=List").ok) end
    sbx.faults { { type = "status", status = 429, retry_after = 0, next = 1, method = "projects.list" } }
    assert.is_true(call(retried).ok)
    sbx.faults { { type = "status", status = 503, next = 1, method = "projects.list" } }
    assert.is_true(call(retried).ok)
    sbx.faults { { type = "latency", ms = 1500, next = 1, method = "projects.list" } }
    local r = call("call?service=projects&method=List&retries=0&deadline=0.5")
    assert.is_false(r.ok)
    assert.equal("timeout", r.kind)

    local entries
    for _ = 1, 50 do -- the timed-out attempt is logged once the sandbox is done with it
      entries = sbx.log(mark)
      if #entries >= 11 then break end
      H.sh("sleep 0.1")
    end
    assert.equal(11, #entries)
    status, text = H.http(inst.url .. "metrics")
    assert.equal(200, status)
    local ok, out = promtool(text)
    assert.is_true(ok, out .. "\n" .. text)
    local after = samples(text)

    for _, e in ipairs(entries) do assert.equal("list", e.method:lower()) end
    local want = sm.attempts_of(entries, di.registry.lookup)
    assert.same(want, delta(before, after, "dialoginsight_attempts_total"))
    assert.same({
      ["dialoginsight_calls_total{method=List,outcome=ok,service=projects}"] = 8,
      ["dialoginsight_calls_total{method=List,outcome=timeout,service=projects}"] = 1,
    }, delta(before, after, "dialoginsight_calls_total"))
    assert.same({
      ["dialoginsight_retries_total{kind=rate_limited,method=List,service=projects}"] = 1,
      ["dialoginsight_retries_total{kind=http,method=List,service=projects}"] = 1,
    }, delta(before, after, "dialoginsight_retries_total"))
    assert.same({ ["dialoginsight_rate_limited_total{method=List,service=projects}"] = 1 },
      delta(before, after, "dialoginsight_rate_limited_total"))
    assert.equal(9, delta(before, after, "dialoginsight_call_duration_seconds_count")
      ["dialoginsight_call_duration_seconds_count{method=List,service=projects}"])
    local n = 0
    for _ in pairs(pids) do n = n + 1 end
    print(string.format("\n  /metrics: %d attempts of 9 calls, served by %d worker(s), match the sandbox's log",
      #entries, n))
  end)

  it("answers 500 and says what to declare when the shared dict is missing", function()
    local port = H.free_port()
    local conf = bare_nginx("metrics-nodict", port)
    local status, body = H.http("http://127.0.0.1:" .. port .. "/metrics")
    conf.stop()
    assert.equal(500, status)
    assert.truthy(body:find("lua_shared_dict dialoginsight_metrics", 1, true), body)
  end)
end)

describe("nginx /metrics with a full shared dict", function()
  it("never evicts a counted series to make room for a new one, and says it is full", function()
    local port = H.free_port()
    local conf = bare_nginx("metrics-full", port, "  lua_shared_dict dialoginsight_metrics 32k;\n", [[
    location = /count {
      content_by_lua_block {
        local m = require("dialoginsight.metrics").default()
        local n = tonumber(ngx.var.arg_n)
        for i = 1, n do
          local e = ngx.var.arg_custom and { service = "custom", method = "M" .. i }
            or { service = "projects", method = "List" }
          m:attempt(e, "ok", 200)
          m:call(e, "ok", 0.01, false)
        end
        ngx.say("ok")
      }
    }
]])
    local base = "http://127.0.0.1:" .. port
    assert.equal(200, (H.http(base .. "/count?n=10")))
    assert.equal(200, (H.http(base .. "/count?n=150&custom=1")))
    local status, text = H.http(base .. "/metrics")
    local log = H.read(conf.errlog)
    conf.stop()
    assert.equal(200, status)
    assert.truthy(text:find('dialoginsight_calls_total{service="projects",method="List",outcome="ok"} 10', 1, true),
      "the first series was evicted:\n" .. text:sub(1, 2000))
    assert.truthy(text:find('dialoginsight_call_duration_seconds_count{service="projects",method="List"} 10', 1, true))
    assert.truthy(log:find("lua_shared_dict dialoginsight_metrics is full", 1, true), log)
  end)
end)

describe("nginx JSON logs", function()
  it("writes the library's warnings into the error log as JSON objects", function()
    local inst = H.start_example("logjson", { log_format = "json" })
    -- a delivery without a signature: the receiver warns, and answers 401
    local status = H.http(inst.url .. "events", { method = "POST", type = "application/json",
      body = '{"EventType":"contact.optout","EventUniqueID":"x1"}' })
    local text = H.read(inst.errlog)
    inst.stop()
    assert.equal(401, status)
    local found
    for line in text:gmatch("[^\n]+") do
      local json = line:match("(%{\"ts\".*%})")
      if json and json:find('"event":"warning"', 1, true) then
        found = assert(require("dialoginsight.core").decode(json), "not JSON: " .. json)
      end
    end
    assert.is_table(found, "no JSON warning in the error log:\n" .. text)
    assert.equal("warn", found.level)
    assert.truthy(found.message:find("delivery refused (401)", 1, true), found.message)
    assert.is_nil(text:find(sbx.env("DI_KEY"), 1, true))
  end)
end)
