-- The whole-call deadline (issue 13): the client's `deadline` setting or a
-- call's opts.deadline bounds a call's attempts, limiter waits and back-offs
-- together, on both paths of call/scheduler.lua.  First with a fake
-- transport on an injected clock (exact timings), then against the sandbox
-- with latency and status faults.
local di = require "dialoginsight"
local config = require "dialoginsight.config"
local client_mod = require "dialoginsight.client"
local sbx = require "support.sandbox"

local EPS = 1e-9

-- A transport on a clock of its own.  server(n) answers the n-th request:
-- the seconds its reply takes (math.huge: it never answers) and the reply.
-- Records each attempt's timeout and each sleep.
local function fake(server)
  local t = { clock = 0, sleeps = {}, timeouts = {}, n = 0 }
  function t.now() return t.clock end
  function t.sleep(_, s)
    t.sleeps[#t.sleeps + 1] = s
    t.clock = t.clock + s
  end
  local function answer(timeout)
    timeout = timeout or t.default -- nil: the client's timeout, as a transport does
    t.n = t.n + 1
    t.timeouts[#t.timeouts + 1] = timeout
    local took, r = server(t.n)
    if took >= timeout then return timeout, { kind = "timeout", message = "timed out", sent = true } end
    return took, r
  end
  function t.post(_, _, _, timeout)
    local took, r = answer(timeout)
    t.clock = t.clock + took
    return r
  end
  function t.multi()
    local m, pending = {}, {}
    function m.add(_, tag, _, _, timeout)
      local took, r = answer(timeout)
      r.tag = tag
      pending[#pending + 1] = { at = t.clock + took, r = r }
    end
    function m.perform(_, wait)
      table.sort(pending, function(a, b) return a.at < b.at end)
      local first = pending[1]
      if first and first.at <= t.clock + wait then
        table.remove(pending, 1)
        t.clock = math.max(t.clock, first.at)
        return { first.r }
      end
      t.clock = t.clock + wait
      return {}
    end
    function m.pending() return #pending end
    function m.close() end
    return m
  end
  return t
end

local function hangs() return math.huge end
local function fails_503()
  return 0.1, { status = 503, body = '{"Success":false,"ErrorCode":"ServerError"}' }
end

-- A client on transport t; retries back off 0.5, 1, 2, ... s exactly.
local function client(t, extra, limiter)
  local s = sbx.settings { retries = { retries = 5, random = function() return 1 end }, timeout = 1 }
  for k, v in pairs(extra or {}) do s[k] = v end
  t.default = s.timeout
  return client_mod.new(config.resolve(s), t, limiter)
end

local function says_deadline(err, attempts)
  assert.truthy(di.is_error(err), tostring(err))
  assert.equal("timeout", err.kind)
  assert.truthy(err.message:find("deadline", 1, true), err.message)
  assert.equal(attempts, err.attempts)
  assert.is_false(err.retryable)
end

describe("the deadline, on an injected clock", function()
  it("cuts the last attempt's timeout to what is left, and ends on time", function()
    local t = fake(hangs)
    local _, err = client(t, { deadline = 2.2 }):call("projects", "List", {})
    says_deadline(err, 2)
    assert.truthy(err.message:find("passed during attempt 2", 1, true), err.message)
    assert.equal(1, t.timeouts[1])
    assert.near(0.7, t.timeouts[2], 1e-9)
    assert.same({ 0.5 }, t.sleeps)
    assert.is_true(t.clock <= 2.2 + EPS, "ended at " .. t.clock)
    assert.equal("timeout", err.last.kind)
  end)

  it("does not take a back-off that would pass it", function()
    local t = fake(fails_503)
    local c = client(t, { deadline = 1.2 })
    local retried = 0
    c.on_retry = function() retried = retried + 1 end
    local _, err = c:call("projects", "List", {})
    says_deadline(err, 2)
    assert.truthy(err.message:find("would pass during the 1 s wait before attempt 3", 1, true),
      err.message)
    assert.equal(503, err.last.status)
    assert.truthy(tostring(err):find("ServerError", 1, true), tostring(err))
    assert.same({ 0.5 }, t.sleeps)        -- the 1 s back-off was not slept
    assert.equal(1, retried)              -- nor announced
    assert.near(0.7, t.clock, 1e-9)
  end)

  it("does not wait for the limiter past it, spends no slot, and says it is the rate limit", function()
    local acquired = 0
    local limiter = { acquire = function() acquired = acquired + 1; return 10 end,
                      penalize = function() end, close = function() end }
    local t = fake(hangs)
    local _, err = client(t, { deadline = 3 }, limiter):call("projects", "List", {})
    -- the rate limit, not a time-out: a handler answers 503 + Retry-After
    assert.equal("rate_limited", err.kind)
    assert.equal(10, err.retry_after)
    assert.equal(0, err.attempts)
    assert.truthy(err.message:find("past the call's deadline (3 s)", 1, true), err.message)
    assert.is_false(err.sent)
    assert.equal(0, t.n)
    assert.same({}, t.sleeps)
    assert.equal(1, acquired)
    -- a wait that fits is taken
    local waits = { 0.5, 0 }
    limiter.acquire = function() return table.remove(waits, 1) or 0 end
    t = fake(function() return 0.1, { status = 200, body = '{"Success":true}' } end)
    assert.truthy(client(t, { deadline = 3 }, limiter):call("projects", "List", {}))
    assert.same({ 0.5 }, t.sleeps)
  end)

  it("ends a limit reply whose back-off passes it as rate_limited, with retry_after", function()
    for _, case in ipairs {
      { 429, '{"Success":false,"ErrorCode":"TooManyRequests"}', 20 },
      { 200, '{"Success":false,"ErrorCode":"InvalidAuthKey","ErrorMessage":"The number of calls allowed has been exceeded"}', nil },
    } do
      local t = fake(function() return 0.1, { status = case[1], retry_after = case[3], body = case[2] } end)
      local penalties = {}
      local limiter = { acquire = function() return 0 end, close = function() end,
                        penalize = function(_, secs) penalties[#penalties + 1] = secs end }
      local _, err = client(t, { deadline = 0.4 }, limiter):call("projects", "List", {})
      assert.equal("rate_limited", err.kind, tostring(err))
      assert.is_number(err.retry_after)
      assert.is_true(err.retry_after > 0.3, tostring(err.retry_after))
      assert.equal(1, err.attempts)
      assert.equal(1, t.n)
      assert.same({}, t.sleeps)
      assert.equal(1, #penalties) -- every sharer was still told to back off
    end
  end)

  it("call_many: a call the limiter holds past it is rate_limited", function()
    local limiter = { acquire = function() return 7 end, penalize = function() end, close = function() end }
    local t = fake(hangs)
    local results, failures = client(t, { deadline = 1 }, limiter):call_many(
      { { "projects", "List" }, { "projects", "List" } }, { concurrency = 2 })
    assert.equal(2, failures)
    for i = 1, 2 do
      assert.equal("rate_limited", results[i].kind)
      assert.equal(7, results[i].retry_after)
    end
    assert.equal(0, t.n)
  end)

  it("per call: opts.deadline overrides the client's, and false lifts it", function()
    local t = fake(hangs)
    local c = client(t, { deadline = 1, timeout = 3 })
    local _, err = c:call("projects", "List", {}, { retries = 0, deadline = false })
    assert.equal("timeout", err.kind)
    assert.falsy(err.message:find("deadline", 1, true), err.message)
    assert.same({ 3 }, t.timeouts)
    _, err = c:call("projects", "List", {}, { retries = 0, deadline = 0.25 })
    says_deadline(err, 1)
    assert.same({ 3, 0.25 }, t.timeouts)
    -- and without any deadline, nothing changes: every attempt, every back-off
    t = fake(hangs)
    _, err = client(t, { retries = 2 }):call("projects", "List", {})
    assert.equal("timeout", err.kind)
    assert.equal(3, err.attempts)
    assert.same({ 1, 1, 1 }, t.timeouts)
    assert.equal(2, #t.sleeps)
  end)

  it("call_many and call_stream: each call's attempts are cut, no back-off passes it", function()
    local t = fake(hangs)
    local c = client(t, { deadline = 2.2 })
    local results, failures = c:call_many({ { "projects", "List" }, { "projects", "List" },
                                            { "projects", "List" } })
    assert.equal(3, failures)
    for i = 1, 3 do says_deadline(results[i], 2) end
    assert.is_true(t.clock <= 2.2 + EPS, "ended at " .. t.clock)
    table.sort(t.timeouts)
    for i = 1, 3 do assert.near(0.7, t.timeouts[i], 1e-9) end
    for i = 4, 6 do assert.equal(1, t.timeouts[i]) end

    t = fake(fails_503)
    c = client(t, { deadline = 1.2 })
    local got, n = {}, 0
    c:call_stream(function()
      n = n + 1
      if n <= 2 then return { "projects", "List" } end
    end, function(i, r) got[i] = r end)
    for i = 1, 2 do
      says_deadline(got[i], 2)
      assert.equal(503, got[i].last.status)
    end
  end)
end)

describe("the deadline of a retry waiting for a free place", function()
  it("ends it on time, not when the call holding the place ends", function()
    -- concurrency 1: call 1 fails at once (503) and backs off 0.5 s; call 2
    -- takes its place at 0.1 s and hangs until its own deadline (2.1 s);
    -- call 1's retry waits for the place, and its deadline (2.0 s) comes first
    local t = fake(function(n)
      if n == 1 then return fails_503() end
      return math.huge
    end)
    local c = client(t, { deadline = 2, timeout = 10 })
    local ended, got, n = {}, {}, 0
    c:call_stream(function()
      n = n + 1
      if n <= 2 then return { "projects", "List" } end
    end, function(i, r) got[i], ended[i] = r, t.clock end, { concurrency = 1 })
    says_deadline(got[1], 1)
    assert.truthy(got[1].message:find("before its next attempt could start", 1, true),
      got[1].message)
    assert.is_true(ended[1] <= 2 + EPS, "call 1 ended at " .. ended[1])
    says_deadline(got[2], 1)
    assert.near(2.1, ended[2], 1e-9)
    assert.equal(2, t.n) -- call 1 was not tried again
  end)
end)

describe("the deadline, against the sandbox", function()
  before_each(function()
    sbx.reset()
  end)
  after_each(function() sbx.clear_faults() end)

  local function timed(fn)
    local core = require "dialoginsight.core"
    local t0 = core.now()
    local a, b = fn()
    return core.now() - t0, a, b
  end

  it("ends a call to a server that does not answer at its deadline, not after every attempt", function()
    sbx.faults { { type = "latency", ms = 4000, method = "projects.list" } }
    local c = di.new(sbx.settings { timeout = 10, deadline = 1 })
    local since = sbx.mark()
    local secs, r, err = timed(function() return c:call("projects", "List", {}) end)
    assert.is_nil(r)
    says_deadline(err, 1)
    assert.is_true(secs >= 0.95 and secs < 1.6, string.format("took %.2f s", secs))
    assert.equal(1, #sbx.log(since))
  end)

  it("stops retrying 503s when the next back-off would pass the deadline", function()
    sbx.faults { { type = "status", status = 503, method = "projects.list" } }
    local c = di.new(sbx.settings { retries = { retries = 50, base = 0.3, cap = 0.3 }, deadline = 1.2 })
    local since = sbx.mark()
    local secs, _, err = timed(function() return c:call("projects", "List", {}) end)
    assert.equal("timeout", err.kind)
    assert.truthy(err.message:find("deadline", 1, true), err.message)
    assert.equal(503, err.last.status)
    assert.is_true(err.attempts >= 3, tostring(err.attempts))
    assert.equal(err.attempts, #sbx.log(since))
    assert.is_true(secs < 1.25, string.format("took %.2f s", secs))
  end)

  it("answers the service's limit within the deadline as rate_limited, then holds every call of the penalty", function()
    sbx.faults { { type = "limit", retry_after = 5, next = 1, method = "projects.list" } }
    -- a limiter file of its own: the 5 s penalty must not hold other specs
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -m 700 " .. dir))
    local c = di.new(sbx.settings { deadline = 1, limiter_dir = dir })
    local secs, r, err = timed(function() return c:call("projects", "List", {}) end)
    assert.is_nil(r)
    assert.equal("rate_limited", err.kind, tostring(err))
    assert.is_true(err.retry_after >= 4, tostring(err.retry_after))
    assert.is_true(secs < 0.5, string.format("took %.2f s", secs))
    -- the next call meets the shared penalty at once, and says when to come back
    local since = sbx.mark()
    secs, r, err = timed(function() return c:call("projects", "List", {}) end)
    assert.is_nil(r)
    assert.equal("rate_limited", err.kind, tostring(err))
    assert.is_true(err.retry_after > 3 and err.retry_after <= 5, tostring(err.retry_after))
    assert.is_false(err.sent)
    assert.is_true(secs < 0.1, string.format("took %.2f s", secs))
    assert.equal(0, #sbx.log(since))
  end)

  it("call_many: every call ends by its deadline, concurrently", function()
    sbx.faults { { type = "latency", ms = 4000, method = "projects.list" } }
    local c = di.new(sbx.settings { timeout = 10 })
    local calls = {}
    for i = 1, 4 do calls[i] = { "projects", "List" } end
    local secs, results, failures = timed(function()
      return c:call_many(calls, { deadline = 1, concurrency = 4 })
    end)
    assert.equal(4, failures)
    for i = 1, 4 do says_deadline(results[i], 1) end
    assert.is_true(secs >= 0.95 and secs < 1.6, string.format("took %.2f s", secs))
  end)
end)

-- rev2 (the hostile review's second round): libcurl reads a timeout of 0 ms
-- as none, and the C session rounded a timeout under 0.5 ms to 0: a call to
-- a silent server then waited forever, past its timeout and its deadline.
-- Each case runs in a child bounded by timeout(1), against a fake HTTP
-- server that never answers, so that a regression cannot hang the suite.
describe("a timeout under a millisecond", function()
  local fakes = require "support.fake"
  local LUA = require("support.runtime").lua
  local f
  setup(function() f = fakes.start("http"); f.plan { on = "POST", silence = true } end)
  teardown(function() f.stop() end)

  local function child(body)
    local script = os.tmpname()
    local fh = assert(io.open(script, "w"))
    fh:write("local core = require 'dialoginsight.core'\nlocal URL = ", string.format("%q", f.url), "\n", body)
    fh:close()
    local t0 = require("dialoginsight.core").now()
    local out, ok = sbx.sh("timeout 5 " .. LUA .. " " .. script .. " 2>&1")
    os.remove(script)
    return out, ok, require("dialoginsight.core").now() - t0
  end

  it("is at least 1 ms in the C session: post and multi end at once, as a timeout", function()
    local out, ok, took = child [[
local s = core.session { verify = true, http2 = false, timeout = 1e-4, connect_timeout = 1e-4,
  user_agent = "t", max_reply_bytes = 65536 }
local r = s:post(URL, "{}")
print("default", r.kind)
r = s:post(URL, "{}", 1e-5)
print("given", r.kind)
local m = s:multi()
m:add(1, URL, "{}", 1e-6)
local got = {}
while #got == 0 do got = m:perform(1) end
print("multi", got[1].kind)
print("perform", #m:perform(1e300), #m:perform(0 / 0))
]]
    assert.is_true(ok, "still waiting after 5 s (a timeout of 0 ms: none): " .. out)
    assert.truthy(out:find("default\ttimeout", 1, true), out)
    assert.truthy(out:find("given\ttimeout", 1, true), out)
    assert.truthy(out:find("multi\ttimeout", 1, true), out)
    assert.truthy(out:find("perform\t0\t0", 1, true), out)
    assert.is_true(took < 4, took)
  end)

  it("is refused by di.new and by a call's options, naming the setting", function()
    for _, s in ipairs { { timeout = 1e-4 }, { connect_timeout = 1e-4 }, { deadline = 1e-4 },
                         { timeout = 1e-4, deadline = 1 } } do
      local opts = { env = false, key_id = 1, key = "k", project = 1, base_url = f.url, allow_http = true,
        rate = false, retries = 0 }
      for k, v in pairs(s) do opts[k] = v end
      local ok, err = pcall(di.new, opts)
      assert.is_false(ok)
      local name = s.timeout and "timeout" or next(s)
      assert.truthy(tostring(err):find("setting '" .. name .. "' must be a number of seconds from 0.001 (1 ms)",
        1, true), tostring(err))
    end
    local c = di.new { env = false, key_id = 1, key = "k", project = 1, base_url = f.url, allow_http = true,
      rate = false, retries = 0, timeout = 0.5 }
    for _, o in ipairs { { timeout = 1e-4 }, { deadline = 5e-4 } } do
      local ok, err = pcall(c.call, c, "projects", "List", {}, o)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("from 0.001 (1 ms)", 1, true), tostring(err))
    end
    -- the smallest taken ends on time
    local t0 = require("dialoginsight.core").now()
    local r, err = c:call("projects", "List", {}, { timeout = 0.001, deadline = 0.001 })
    assert.is_nil(r)
    assert.equal("timeout", err.kind)
    assert.is_true(require("dialoginsight.core").now() - t0 < 1)
  end)
end)
