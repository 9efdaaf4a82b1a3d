-- Issue 25: the metrics (lua/dialoginsight/metrics) and the JSON logs (log.lua), against
-- the sandbox.  The counters must equal the sandbox's own request log, label for label:
-- the sandbox counts what arrived, the client what it saw, and they must agree.
local di = require "dialoginsight"
local core = require "dialoginsight.core"
local metrics = require "dialoginsight.metrics"
local sbx = require "support.sandbox"
local sm = require "support.metrics"

local FAST = { retries = 2, base = 0.01, cap = 0.02, max_retry_after = 1 }

local delta, promtool = sm.delta, sm.promtool

local function create_message(c)
  return c:call("messages", "Create", { Message = {
    Name = "metrics spec", MessageVersions = { {
      Name = "fr", Culture = "fr-CA", SenderName = "Shop", SenderEMail = "shop@example.com",
      Subject = "Hello", MessageBodies = { { MIMEType = "text/html", Content = "<p>Hi</p>" } },
    } } } })
end

describe("metrics against the sandbox", function()
  before_each(function() sbx.reset() end)
  after_each(function() sbx.clear_faults() end)

  it("counts every attempt as the sandbox logged it, label for label, and every call's end", function()
    local c = di.new(sbx.settings { retries = FAST, timeout = 0.3 })
    local before = c:metrics()
    local mark = sbx.mark()
    -- ok, ok
    assert(c:call("projects", "List"))
    assert(c:call("projects", "Get", { idProject = tonumber(sbx.env("DI_PROJECT")) }))
    -- a 429, then ok; a 503, then ok (both retried)
    sbx.faults { { type = "status", status = 429, retry_after = 0, next = 1, method = "projects.list" } }
    assert(c:call("projects", "List"))
    sbx.faults { { type = "status", status = 503, next = 1, method = "projects.list" } }
    assert(c:call("projects", "List"))
    -- a time-out on every attempt: three attempts, the call fails
    sbx.faults { { type = "latency", ms = 700, next = 3, method = "projects.list" } }
    local r, err = c:call("projects", "List")
    assert.is_nil(r)
    assert.equal("timeout", err.kind)
    -- a 503 on a send: not retried, its outcome unknown
    sbx.faults { { type = "status", status = 503, next = 1, method = "messages.create" } }
    r, err = create_message(c)
    assert.is_nil(r)
    assert.equal("unknown", err.outcome)
    local after = c:metrics()

    -- the sandbox logs a timed-out attempt once it has answered: wait for all of them
    local entries
    for _ = 1, 50 do
      entries = sbx.log(mark)
      if #entries >= 10 then break end
      core.sleep(0.1)
    end
    local want = sm.attempts_of(entries, di.registry.lookup)
    assert.equal(10, #entries)
    assert.same(want, delta(before, after, "dialoginsight_attempts_total"))

    assert.same({
      ["dialoginsight_calls_total{method=List,outcome=ok,service=projects}"] = 3,
      ["dialoginsight_calls_total{method=Get,outcome=ok,service=projects}"] = 1,
      ["dialoginsight_calls_total{method=List,outcome=timeout,service=projects}"] = 1,
      ["dialoginsight_calls_total{method=Create,outcome=http,service=messages}"] = 1,
    }, delta(before, after, "dialoginsight_calls_total"))
    assert.same({
      ["dialoginsight_retries_total{kind=rate_limited,method=List,service=projects}"] = 1,
      ["dialoginsight_retries_total{kind=http,method=List,service=projects}"] = 1,
      ["dialoginsight_retries_total{kind=timeout,method=List,service=projects}"] = 2,
    }, delta(before, after, "dialoginsight_retries_total"))
    assert.same({ ["dialoginsight_rate_limited_total{method=List,service=projects}"] = 1 },
      delta(before, after, "dialoginsight_rate_limited_total"))
    assert.same({ ["dialoginsight_unknown_outcome_total{method=Create,service=messages}"] = 1 },
      delta(before, after, "dialoginsight_unknown_outcome_total"))
    -- one duration per call: six calls
    assert.equal(6, metrics.value(after, "dialoginsight_call_duration_seconds")
      - metrics.value(before, "dialoginsight_call_duration_seconds"))
    -- the timed-out call took its three attempts of 0.3 s at least
    local d = delta(before, after, "dialoginsight_call_duration_seconds")
    assert.is_true(d["dialoginsight_call_duration_seconds_sum{method=List,service=projects}"] >= 0.9)
    local ok, out = promtool(metrics.render(after))
    assert.is_true(ok, out)
  end)

  it("counts call_many's calls, those its deadline ends included; metrics = false counts nothing", function()
    local c = di.new(sbx.settings { retries = 0 })
    local before = c:metrics()
    local calls = {}
    for i = 1, 5 do calls[i] = { "projects", "List" } end
    sbx.faults { { type = "latency", ms = 800, next = 2, method = "projects.list" } }
    local results, failures = c:call_many(calls, { concurrency = 5, deadline = 0.3 })
    assert.equal(2, failures)
    local after = c:metrics()
    assert.same({
      ["dialoginsight_calls_total{method=List,outcome=ok,service=projects}"] = 3,
      ["dialoginsight_calls_total{method=List,outcome=timeout,service=projects}"] = 2,
    }, delta(before, after, "dialoginsight_calls_total"))
    assert.equal(5, #results)

    local off = di.new(sbx.settings { metrics = false })
    before = off:metrics()
    assert(off:call("projects", "List"))
    assert(off:call_many({ { "projects", "List" }, { "projects", "List" } }))
    assert.same({}, delta(before, off:metrics(), "dialoginsight_calls_total"))
    assert.same({}, delta(before, off:metrics(), "dialoginsight_attempts_total"))
  end)

  it("counts the limiter's waits, by priority, in seconds", function()
    local c = di.new(sbx.settings { rate = 20, burst = 1 })
    local before = c:metrics()
    for _ = 1, 4 do assert(c:call("projects", "List")) end
    local after = c:metrics()
    local waits = metrics.value(after, "dialoginsight_limiter_waits_total")
      - metrics.value(before, "dialoginsight_limiter_waits_total")
    local secs = metrics.value(after, "dialoginsight_limiter_wait_seconds_total")
      - metrics.value(before, "dialoginsight_limiter_wait_seconds_total")
    -- 4 calls at 20/s burst 1: the last three wait about 0.05 s each
    assert.is_true(waits >= 3 and waits <= 4, "waits " .. waits)
    assert.is_true(secs > 0.1 and secs < 0.25, "seconds " .. secs)
  end)
end)

describe("metrics' text format", function()
  it("escapes hostile label values, which promtool accepts and a snapshot reads back", function()
    local reg = metrics.new()
    local hostile = { 'a"b', "back\\slash", "new\nline", "é€", "}{,=", "" }
    for _, v in ipairs(hostile) do reg:event("received", v) end
    reg:rows("created", 3)
    reg:rows("updated", 0) -- (nothing counted)
    local snap = reg:snapshot()
    local text = metrics.render(snap)
    local ok, out = promtool(text)
    assert.is_true(ok, out .. "\n" .. text)
    local seen = {}
    for _, s in ipairs(snap.dialoginsight_webhook_events_total.samples) do seen[s.labels.result] = s.value end
    for _, v in ipairs(hostile) do assert.equal(1, seen[v], v) end
    assert.equal(3, metrics.value(snap, "dialoginsight_sync_rows_total"))
    assert.equal(0, metrics.value(snap, "dialoginsight_sync_rows_total", { outcome = "updated" }))
    assert.has_error(function() metrics.value(snap, "dialoginsight_nope") end,
      "dialoginsight: metrics: no family dialoginsight_nope")
  end)

  it("keeps histogram buckets cumulative and complete, +Inf equal to the count", function()
    local reg = metrics.new()
    local e = { service = "contacts", method = "Merge" }
    local values = { 0.001, 0.004, 0.2, 0.2, 3, 100, 0.0049999 }
    for _, v in ipairs(values) do reg:call(e, "ok", v, false) end
    local snap = reg:snapshot()
    local buckets, prev = 0, -1
    local sum = 0
    for _, v in ipairs(values) do sum = sum + v end
    for _, s in ipairs(snap.dialoginsight_call_duration_seconds.samples) do
      if s.name:match("_bucket$") then
        buckets = buckets + 1
        assert.is_true(s.value >= prev)
        prev = s.value
        local le = s.labels.le == "+Inf" and math.huge or tonumber(s.labels.le)
        local n = 0
        for _, v in ipairs(values) do if v <= le then n = n + 1 end end
        assert.equal(n, s.value, "le=" .. s.labels.le)
      elseif s.name:match("_sum$") then
        assert.is_true(math.abs(s.value - sum) < 1e-9)
      else
        assert.equal(#values, s.value)
      end
    end
    assert.equal(#metrics.BUCKETS + 1, buckets)
    assert.is_true((promtool(metrics.render(snap))))
  end)
end)

describe("JSON logs", function()
  local real = io.stderr
  local lines
  before_each(function()
    lines = {}
    local buf = ""
    io.stderr = { write = function(_, ...) -- luacheck: ignore 122
      buf = buf .. table.concat({ ... })
      for line in buf:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
      buf = buf:match("[^\n]*$")
      return true
    end }
  end)
  after_each(function()
    io.stderr = real -- luacheck: ignore 122
    require("dialoginsight.log").configure("text")
    sbx.clear_faults()
  end)

  it("writes one JSON object per event, with its call id and request id, and never the key", function()
    -- back-offs (0.25 to 0.5 s) longer than a slot (0.2 s): the retry never waits, the
    -- next call, right after, does
    local c = di.new(sbx.settings { trace = true, log_format = "json", rate = 5, burst = 1,
                                    retries = { retries = 2, base = 0.5, cap = 0.5 } })
    sbx.faults { { type = "status", status = 503, next = 1, method = "projects.list" } }
    assert(c:call("projects", "List"))
    assert(c:call("projects", "List"))
    require("dialoginsight.log").warn("dialoginsight: WARNING: a warning")
    io.stderr = real -- luacheck: ignore 122
    local events = {}
    for _, l in ipairs(lines) do
      assert.is_nil(l:find(sbx.env("DI_KEY"), 1, true), "the key in a log line")
      local ev = assert(core.decode(l), "not JSON: " .. l)
      assert.is_string(ev.ts)
      assert.truthy(ev.ts:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"))
      events[#events + 1] = ev
    end
    local kinds = {}
    for _, ev in ipairs(events) do kinds[#kinds + 1] = ev.event end
    -- attempt 1 (503), its retry, attempt 2 (ok); the second call waits for the limiter, then goes
    assert.same({ "call", "retry", "call", "wait", "call", "warning" }, kinds)
    assert.is_true(events[4].delay > 0.1 and events[4].delay <= 0.2, events[4].delay)
    assert.equal(events[1].call_id, events[2].call_id)
    assert.equal(events[1].call_id, events[3].call_id)
    assert.not_equal(events[1].call_id, events[5].call_id)
    assert.equal(events[4].call_id, events[5].call_id)
    assert.truthy(events[1].call_id:match("^%d+%-%d+$"))
    assert.equal(503, events[1].status)
    assert.equal("http", events[1].outcome)
    assert.equal("ok", events[3].outcome)
    assert.is_string(events[3].request_id)
    assert.equal("http", events[2].kind)
    assert.equal("warn", events[6].level)
    assert.equal("a warning", events[6].message)
  end)

  it("refuses a log format it does not know, naming the setting; DI_LOG_FORMAT sets it", function()
    local bad = sbx.settings { log_format = "yaml" } -- (without the sandbox: how to start it)
    assert.has_error(function() di.new(bad) end,
      'dialoginsight: setting \'log_format\' must be "text" or "json" (got a string of 4 bytes)')
    local s = di.config.from_env(function(k) return k == "DI_LOG_FORMAT" and "json" or nil end)
    assert.equal("json", s.log_format)
  end)
end)
