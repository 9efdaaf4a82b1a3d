-- The hostile review of issue 26's second step (the stream's leaner path; the first
-- step's review is review26_spec.lua), each finding a spec: a call's duration counts its
-- limiter waits, the calls a raise or stop() leaves are counted; on a transport and a
-- limiter of their own clock (no network).
local config = require "dialoginsight.config"
local client_mod = require "dialoginsight.client"
local metrics = require "dialoginsight.metrics"

-- A transport on its own clock.  replies[n]: the n-th request's { took = s, r = reply };
-- perform returns every completion due at the earliest completion time.
local function fake(replies)
  local t = { clock = 0, n = 0, sent = 0, completed = 0 }
  function t.now() return t.clock end
  function t.sleep(_, s) t.clock = t.clock + s end
  local function answer()
    t.n = t.n + 1
    local a = replies[t.n] or { took = 0.1, r = { status = 200, body = '{"Success":true}' } }
    local r = {}
    for k, v in pairs(a.r) do r[k] = v end
    return a.took, r
  end
  function t.post() local took, r = answer(); t.clock = t.clock + took; t.completed = t.completed + 1; return r end
  function t.multi()
    local m, pending = {}, {}
    function m.add(_, tag, url, body)
      t.adds = t.adds or {}
      t.adds[#t.adds + 1] = { url = url, body = body }
      local took, r = answer()
      r.tag = tag
      pending[#pending + 1] = { at = t.clock + took, r = r }
      t.sent = t.sent + 1
    end
    function m.perform(_, wait)
      table.sort(pending, function(a, b) return a.at < b.at end)
      local first = pending[1]
      if not first or first.at > t.clock + wait then t.clock = t.clock + wait; return {} end
      local out, at = {}, first.at
      while pending[1] and pending[1].at <= at do out[#out + 1] = table.remove(pending, 1).r end
      t.clock = math.max(t.clock, at)
      t.completed = t.completed + #out
      return out
    end
    function m.pending() return #pending end
    function m.close() end
    return m
  end
  return t
end

-- One call per `every` seconds of t's clock, burst 1.
local function limiter(t, every)
  local free = 0
  return {
    acquire = function()
      if t.clock >= free then free = math.max(t.clock, free) + every; return 0 end
      return free - t.clock
    end,
    penalize = function() end, close = function() end, configure = function() end,
  }
end

local function client(t, lim)
  local s = config.resolve { key_id = 1, key = "k", project = 1, env = false, base_url = "https://fake.invalid/",
                             rate = false, timeout = 5, retries = { retries = 2, random = function() return 1 end } }
  local c = client_mod.new(s, t, lim)
  c.engine.metrics = metrics.new() -- a registry of the spec's own
  return c
end

local function value(c, name, labels)
  return metrics.value(c.engine.metrics:snapshot(), name, labels)
end

local function durations(c)
  local sum, count = 0, 0
  for _, s in ipairs(c.engine.metrics:snapshot().dialoginsight_call_duration_seconds.samples) do
    if s.name:match("_sum$") then sum = sum + s.value end
    if s.name:match("_count$") then count = count + s.value end
  end
  return sum, count
end

local LIST = { "projects", "List" }

describe("review of issue 26's second step", function()
  it("counts a stream call's limiter waits in its duration, also behind a held call", function()
    -- one call a second: call k waits k - 1 s; each takes 0.1 s.  Counting from a call's
    -- first ask for a slot (the reviewed version) gave 0.1 + 1.1 + 1.1
    local t = fake {}
    local c = client(t, limiter(t, 1))
    local _, failures = c:call_many({ LIST, LIST, LIST }, { concurrency = 8 })
    assert.equal(0, failures)
    local sum, count = durations(c)
    assert.equal(3, count)
    assert.near(0.1 + 1.1 + 2.1, sum, 1e-6)
  end)

  it("counts the call prepared beyond the free places from when a place frees, as its deadline", function()
    -- four calls of 1 s, one at a time: each call's own second (docs/metrics.md)
    local replies = {}
    for i = 1, 4 do replies[i] = { took = 1, r = { status = 200, body = '{"Success":true}' } } end
    local c = client(fake(replies))
    c:call_many({ LIST, LIST, LIST, LIST }, { concurrency = 1 })
    local sum, count = durations(c)
    assert.equal(4, count)
    assert.near(4, sum, 1e-6)
  end)

  it("counts the calls completed with the one whose hook raised, as abandoned", function()
    local t = fake {
      { took = 0.1, r = { status = 500, body = '{"Success":false,"ErrorCode":"X"}' } },
      { took = 0.1, r = { status = 200, body = '{"Success":true}' } },
    }
    local c = client(t)
    c.on_retry = function() error("hook raised") end
    assert.is_false(pcall(c.call_many, c, { LIST, LIST }, { concurrency = 2 }))
    assert.equal(2, t.completed)
    -- the raising call's 5xx, and call 2's attempt, read but never settled
    assert.equal(2, value(c, "dialoginsight_attempts_total"))
    assert.equal(1, value(c, "dialoginsight_attempts_total", { code = "5xx" }))
    assert.equal(1, value(c, "dialoginsight_calls_total", { outcome = "abandoned" }))
  end)

  it("counts a call stop() drops while it waits for its retry, as abandoned", function()
    local t = fake { { took = 0.1, r = { status = 500, body = '{"Success":false,"ErrorCode":"X"}' } } }
    local c = client(t)
    local stopping, dones, n = false, 0, 0
    c.on_retry = function() stopping = true end -- (Ctrl-C, say, during the back-off)
    c:call_stream(function() n = n + 1; if n <= 1 then return LIST end end,
      function() dones = dones + 1 end, { concurrency = 1, stop = function() return stopping end })
    assert.equal(1, t.sent)
    assert.equal(0, dones) -- (stop's contract: done is not called for what it drops)
    assert.equal(1, value(c, "dialoginsight_attempts_total", { code = "5xx" }))
    assert.equal(1, value(c, "dialoginsight_calls_total", { outcome = "abandoned" }))
    assert.equal(1, value(c, "dialoginsight_calls_total"))
  end)

  it("counts a call once when done raises while expire() fails the calls past their deadline", function()
    -- (the second review: the calls expire() had told were still in the ready FIFO when
    -- done raised, and were counted again as abandoned)
    local t = fake {
      { took = 0.1, r = { status = 500, body = '{"Success":false,"ErrorCode":"X"}' } },
      { took = 0.2, r = { status = 200, body = '{"Success":true}' } },
    }
    local c = client(t)
    local n = 0
    assert.is_false(pcall(c.call_stream, c, function() n = n + 1; if n <= 2 then return LIST end end,
      function(i)
        if i == 2 then t.clock = t.clock + 20 end -- the caller's work on call 2 takes 20 s
        if i == 1 then error("done raised") end   -- call 1: its deadline passed, from expire()
      end, { concurrency = 2, deadline = 10 }))
    assert.equal(2, value(c, "dialoginsight_calls_total"))
    assert.equal(1, value(c, "dialoginsight_calls_total", { outcome = "timeout" }))
    local _, count = durations(c)
    assert.equal(2, count)
  end)

  it("starts a stream call's deadline when next_req has made it, not before", function()
    -- (the second review: one clock reading per pull started it before the producer ran)
    local t = fake {}
    local c = client(t)
    local n, told = 0, {}
    c:call_stream(function()
      n = n + 1
      if n > 2 then return nil end
      t.clock = t.clock + 0.9 -- the producer takes 0.9 s a call
      return LIST
    end, function(i, r) told[i] = r.kind or "ok" end, { concurrency = 1, deadline = 1 })
    assert.equal("ok", told[1]) -- made at 0.9, a place at 1.8 (call 2 made), deadline 1.9
    assert.equal(2, t.sent)
  end)

  it("counts no call that stop(\"now\") leaves added to the multi but never sent", function()
    -- (the second review: added, then "now" before any perform: nothing went on the wire)
    local t = fake {}
    local c = client(t)
    local asks, n = 0, 0
    c:call_stream(function() n = n + 1; if n <= 2 then return LIST end end, function() end,
      { concurrency = 2, stop = function() asks = asks + 1; return asks >= 3 and "now" or false end })
    assert.equal(2, t.sent) -- (added to the fake's multi: sent only by a perform)
    assert.equal(0, t.completed)
    assert.equal(0, value(c, "dialoginsight_attempts_total"))
    assert.equal(0, value(c, "dialoginsight_calls_total"))
  end)

  it("counts a call stop(\"now\") leaves waiting for its retry, once", function()
    local t = fake { { took = 0.1, r = { status = 500, body = '{"Success":false,"ErrorCode":"X"}' } } }
    local c = client(t)
    local stopping, n = false, 0
    c.on_retry = function() stopping = "now" end
    c:call_stream(function() n = n + 1; if n <= 2 then return LIST end end,
      function() end, { concurrency = 1, stop = function() return stopping end })
    -- call 1 waits for its retry; call 2 took its place before call 1 was settled (the
    -- pipeline) and is in flight: both counted once, abandoned
    assert.equal(2, t.sent)
    assert.equal(2, value(c, "dialoginsight_calls_total"))
    assert.equal(2, value(c, "dialoginsight_calls_total", { outcome = "abandoned" }))
    assert.equal(1, value(c, "dialoginsight_attempts_total", { code = "5xx" }))
    assert.equal(1, value(c, "dialoginsight_attempts_total", { outcome = "abandoned" }))
  end)
end)

-- Issue 26, third step: a stream fills the request of a call that has ended for a later
-- call (request.build's into), so that a call makes no table of its own.
describe("a stream's request, filled again for a later call", function()
  local MERGE = function(i)
    return { "contacts", "Merge", { Records = { { ID = { key_f_EMail = "c" .. i .. "@x.test" } } } } }
  end

  it("sends each call's own method and body", function()
    local t = fake {}
    local c = client(t)
    local calls = {}
    for i = 1, 12 do calls[i] = i % 3 == 0 and LIST or MERGE(i) end
    for _, run in ipairs { "call_many", "call_stream" } do
      t.adds = {}
      if run == "call_many" then
        local _, failures = c:call_many(calls, { concurrency = 2 })
        assert.equal(0, failures)
      else
        local k = 0
        c:call_stream(function() k = k + 1; return calls[k] end, function() end, { concurrency = 2 })
      end
      assert.equal(12, #t.adds, run)
      for i, sent in ipairs(t.adds) do
        if i % 3 == 0 then
          assert.truthy(sent.url:find("projects.ashx?method=List", 1, true), run .. " " .. i)
          assert.is_nil(sent.body:find("Records", 1, true), run .. " " .. i)
        else
          assert.truthy(sent.url:find("contacts.ashx?method=Merge", 1, true), run .. " " .. i)
          assert.truthy(sent.body:find('"c' .. i .. '@x.test"', 1, true), run .. " " .. i)
        end
      end
    end
  end)

  -- (the second review: call_route's stream read the client's project once, at its start)
  it("reads the client's project for each call of a long stream, as before", function()
    local t = fake {}
    local c = client(t)
    local k = 0
    c:call_stream(function() k = k + 1; if k <= 4 then return { "contacts", "Merge", {} } end end,
      function() c.project = 2 end, { concurrency = 1 })
    assert.equal(4, #t.adds)
    assert.truthy(t.adds[1].body:find('"idProject":1', 1, true))
    assert.truthy(t.adds[4].body:find('"idProject":2', 1, true), t.adds[4].body)
  end)

  it("keeps nothing of an ended call's attempts in a later one", function()
    -- call 1 is refused (its last attempt: an auth error); call 3 is made in its table
    -- and held by the limiter past its deadline: its error names no last attempt
    local t = fake { { took = 0.1, r = { status = 401, body = '{"Success":false,"ErrorCode":"InvalidAuthKey"}' } } }
    local asked = 0
    local lim = {
      acquire = function() asked = asked + 1; return asked <= 2 and 0 or 100 end,
      penalize = function() end, close = function() end, configure = function() end,
    }
    local c = client(t, lim)
    local results, failures = c:call_many({ LIST, LIST, LIST }, { concurrency = 1, deadline = 1 })
    assert.equal(2, failures)
    assert.equal("auth", results[1].kind)
    assert.is_nil(results[2].kind)
    assert.equal("rate_limited", results[3].kind)
    assert.equal(0, results[3].attempts)
    assert.is_nil(results[3].last)
    assert.is_false(results[3].sent)
  end)
end)
