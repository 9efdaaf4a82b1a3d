-- The hostile review of issue 25 (metrics, JSON logs, the reserve, limit_status): each
-- finding, as the spec that failed before its fix.
local di = require "dialoginsight"
local core = require "dialoginsight.core"
local log = require "dialoginsight.log"
local metrics = require "dialoginsight.metrics"
local sbx = require "support.sandbox"

local function calls(snap, labels)
  return metrics.value(snap, "dialoginsight_calls_total", labels)
end

describe("review 25: metrics", function()
  before_each(function() sbx.reset() end)
  after_each(function() sbx.clear_faults() end)

  it("keeps the counts of a client that is gone, and of methods the registry does not know", function()
    local before = di.new(sbx.settings {}):metrics()
    for _ = 1, 3 do
      local c = di.new(sbx.settings {})
      assert(c:call("projects", "List"))
      c:close()
    end
    local c = di.new(sbx.settings { retries = 0 })
    for i = 1, 3 do c:call("contacts", "Custom" .. i, {}) end -- unknown: 404, counted by its name
    c = nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    local after = di.new(sbx.settings {}):metrics()
    assert.equal(3, calls(after, { service = "projects", method = "List", outcome = "ok" })
      - calls(before, { service = "projects", method = "List", outcome = "ok" }))
    assert.equal(1, calls(after, { service = "contacts", method = "Custom2" })
      - calls(before, { service = "contacts", method = "Custom2" }))
  end)

  it("counts at most MAX_METHODS methods apart, the rest as other.other", function()
    local reg = metrics.new()
    for i = 1, metrics.MAX_METHODS + 50 do
      local e = { service = "custom", method = "M" .. i }
      reg:attempt(e, "ok", 200)
      reg:call(e, "ok", 0.01, false)
      reg:retry(e, "http")
    end
    local snap = reg:snapshot()
    local names = {}
    for _, s in ipairs(snap.dialoginsight_calls_total.samples) do names[s.labels.method] = s.value end
    local n = 0
    for _ in pairs(names) do n = n + 1 end
    assert.equal(metrics.MAX_METHODS + 1, n)
    assert.equal(50, names.other)
    assert.equal(metrics.MAX_METHODS + 50, metrics.value(snap, "dialoginsight_calls_total"))
    assert.equal(metrics.MAX_METHODS + 50, metrics.value(snap, "dialoginsight_retries_total"))
  end)

  it("counts a reply without its result member as the decode failure its caller gets", function()
    local c = di.new(sbx.settings { methods = { ["projects.List"] = { result = "NoSuchMember" } } })
    local before = c:metrics()
    local r, err = c:call_result("projects", "List")
    assert.is_nil(r)
    assert.equal("decode", err.kind)
    local after = c:metrics()
    assert.equal(1, calls(after, { service = "projects", method = "List", outcome = "decode" })
      - calls(before, { service = "projects", method = "List", outcome = "decode" }))
    assert.equal(0, calls(after, { service = "projects", method = "List", outcome = "ok" })
      - calls(before, { service = "projects", method = "List", outcome = "ok" }))
    -- and the result member itself when it is there
    local ok = di.new(sbx.settings {})
    assert.is_table(assert(ok:call_result("projects", "List")))
  end)

  it("counts the calls call_stream abandons in flight (stop = 'now') as abandoned", function()
    local c = di.new(sbx.settings { retries = 0 })
    local before = c:metrics()
    sbx.faults { { type = "latency", ms = 1500, next = 3, method = "projects.list" } }
    local n, t0 = 0, core.now()
    c:call_stream(function()
      n = n + 1
      if n <= 3 then return { "projects", "List" } end
    end, function() end, { concurrency = 3, stop = function() return core.now() - t0 > 0.3 and "now" end })
    local after = c:metrics()
    assert.equal(3, calls(after, { outcome = "abandoned" }) - calls(before, { outcome = "abandoned" }))
    assert.equal(3, metrics.value(after, "dialoginsight_attempts_total", { outcome = "abandoned", code = "none" })
      - metrics.value(before, "dialoginsight_attempts_total", { outcome = "abandoned", code = "none" }))
  end)

  it("takes a closed client's fallback back from the gauge", function()
    local gauge = function() return metrics.value(metrics.default():snapshot(), "dialoginsight_limiter_fallback") end
    local g0 = gauge()
    local c = di.new(sbx.settings { limiter_url = "redis://127.0.0.1:1", rate = 1000, burst = 100 })
    assert(c:call("projects", "List")) -- Redis refused: the call goes on the fallback
    assert.equal(g0 + 1, gauge())
    assert.equal("fallback", c:limit_status().backend)
    c:close()
    assert.equal(g0, gauge())
    local st, why = c:limit_status()
    assert.is_nil(st)
    assert.equal("dialoginsight: the client is closed", why)
  end)
end)

describe("review 25: the reserve", function()
  it("gives no reserve rather than a harmful one when the burst cannot keep it", function()
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -m 700 " .. dir)
    for _, case in ipairs {
      { burst = 1, share = 0.8 }, { burst = 10, share = 0.05 }, { burst = 10, share = 0.001 },
    } do
      local batch = di.new(sbx.settings { rate = 10, burst = case.burst, batch_share = case.share,
                                          priority = "batch", limiter_dir = dir })
      local st = batch:limit_status()
      assert.equal(1, st.batch_share)
      assert.truthy(st.reserve_void and st.reserve_void:find("needs a larger burst", 1, true))
      assert(batch:call("projects", "List")) -- one batch call on an idle key
      local inter = di.new(sbx.settings { rate = 10, burst = case.burst, limiter_dir = dir })
      st = inter:limit_status()
      -- never worse than without a reserve: one call's slot at most
      assert.is_true(st.wait <= 0.1 + 1e-6, "burst " .. case.burst .. " share " .. case.share .. ": waits " .. st.wait)
      batch:close()
      inter:close()
      os.execute("rm -f " .. dir .. "/*")
    end
    -- the default share with the default burst keeps its reserve
    local ok = di.new(sbx.settings { rate = 10, burst = 10, limiter_dir = dir })
    assert.equal(0.8, ok:limit_status().batch_share)
    assert.is_nil(ok:limit_status().reserve_void)
    os.execute("rm -rf " .. dir)
  end)
end)

describe("review 25: JSON logs", function()
  local real = io.stderr
  local lines
  before_each(function()
    lines = {}
    io.stderr = { write = function(_, ...) -- luacheck: ignore 122
      lines[#lines + 1] = table.concat({ ... }):gsub("\n$", "")
      return true
    end }
  end)
  after_each(function()
    io.stderr = real -- luacheck: ignore 122
    log.configure("text")
  end)

  it("keeps a line valid JSON and short whatever a message holds", function()
    log.configure("json")
    log.event("call", { error = ("é"):rep(3000) .. "\255" }, "text")
    log.warn("dialoginsight: WARNING: héllo \255 wörld")
    io.stderr = real -- luacheck: ignore 122
    assert.equal(2, #lines)
    for _, l in ipairs(lines) do
      assert.is_true(#l < 2048, #l .. " bytes")
      assert.is_table(core.decode(l), l)
    end
    assert.equal("héllo ? wörld", core.decode(lines[2]).message)
  end)

  it("keeps the process's format when a later client does not give one", function()
    di.new(sbx.settings { log_format = "json" })
    di.new(sbx.settings {})
    assert.equal("json", log.format())
    di.new(sbx.settings { log_format = "text" })
    assert.equal("text", log.format())
  end)
end)
