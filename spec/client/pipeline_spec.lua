-- The pipeline of call_stream (call/scheduler.lua): one call is prepared
-- beyond the places in flight, and when a call completes the prepared one
-- is sent before the completed one is settled (its reply decoded, the
-- caller's done run); stop() keeps a prepared call from ever being sent.
local core = require "dialoginsight.core"
local config = require "dialoginsight.config"
local client_mod = require "dialoginsight.client"

-- A transport whose multi completes its oldest call at each perform, and
-- logs every add and every completion, in order.
local function fake(log)
  local t = { clock = 0 }
  function t.now() return t.clock end
  function t.sleep(_, s) t.clock = t.clock + s end
  function t.multi()
    local m, queue = {}, {}
    function m.add(_, tag) queue[#queue + 1] = tag; log[#log + 1] = "add " .. tag end
    function m.pending() return #queue end
    function m.perform(_, wait)
      if wait == 0 or #queue == 0 then return {} end
      local tag = table.remove(queue, 1)
      log[#log + 1] = "complete " .. tag
      return { { tag = tag, status = 200, http_version = 1.1, seconds = 0,
                 body = core.encode { Success = true, Records = {} } } }
    end
    function m.close() end
    return m
  end
  return t
end

local function client(t)
  local s = config.resolve { key_id = 1, key = "pipeline-spec-key", project = 1, env = false,
                             base_url = "https://fake.invalid/", rate = false }
  return client_mod.new(s, t)
end

describe("call_stream's pipeline", function()
  it("sends the prepared call before the completed one is settled", function()
    local log = {}
    local c = client(fake(log))
    local n = 0
    c:call_stream(function()
      n = n + 1
      if n > 4 then return nil end
      log[#log + 1] = "prepare " .. n
      return { "contacts", "Get", {} }
    end, function(i) log[#log + 1] = "done " .. i end, { concurrency = 2 })
    local pos = {}
    for k, e in ipairs(log) do pos[e] = k end
    -- two in flight and one prepared before anything completes
    assert.is_true(pos["prepare 3"] < pos["complete 1"], table.concat(log, ", "))
    -- the prepared call goes out before the completed one is settled
    assert.is_true(pos["add 3"] < pos["done 1"], table.concat(log, ", "))
    assert.is_true(pos["add 4"] < pos["done 2"], table.concat(log, ", "))
    for i = 1, 4 do assert.truthy(pos["done " .. i], "call " .. i .. " was not settled") end
  end)

  it("never sends a prepared call once stop() says so, nor settles it", function()
    local log, stopped = {}, false
    local c = client(fake(log))
    local n = 0
    c:call_stream(function()
      n = n + 1
      if n > 10 then return nil end
      return { "contacts", "Get", {} }
    end, function(i)
      log[#log + 1] = "done " .. i
      if i == 1 then stopped = true end -- Ctrl-C, say, while call 1 settles
    end, { concurrency = 2, stop = function() return stopped end })
    local adds, dones = 0, 0
    for _, e in ipairs(log) do
      if e:match("^add") then adds = adds + 1 end
      if e:match("^done") then dones = dones + 1 end
    end
    -- 1 and 2 in flight, 3 sent when 1 completed (before stop): 3 sent, 3 settled
    assert.equal(3, adds, table.concat(log, ", "))
    assert.equal(3, dones, table.concat(log, ", "))
    assert.is_true(n <= 5, n .. " calls were prepared")
  end)

  it("stop(n) is told the calls in flight; \"now\" abandons them, unsettled, within 0.2 s", function()
    local log, now, seen, waits = {}, false, {}, {}
    local t = fake(log)
    local multi = t.multi
    function t.multi()
      local m = multi()
      local perform = m.perform
      function m.perform(self, wait)
        waits[#waits + 1] = wait
        return perform(self, wait)
      end
      return m
    end
    local c = client(t)
    local n = 0
    c:call_stream(function()
      n = n + 1
      if n > 10 then return nil end
      return { "contacts", "Get", {} }
    end, function(i)
      log[#log + 1] = "done " .. i
      if i == 2 then now = true end -- a second Ctrl-C while call 2 settles
    end, { concurrency = 3, stop = function(inflight)
      seen[#seen + 1] = inflight
      return now and "now"
    end })
    local adds, dones = 0, 0
    for _, e in ipairs(log) do
      if e:match("^add") then adds = adds + 1 end
      if e:match("^done") then dones = dones + 1 end
    end
    -- 1-3 in flight, 4 and 5 sent as 1 and 2 completed; 2 settled, 3 abandoned
    assert.equal(5, adds, table.concat(log, ", "))
    assert.equal(2, dones, table.concat(log, ", "))
    local max = 0
    for _, k in ipairs(seen) do max = math.max(max, k) end
    assert.equal(3, max, table.concat(seen, " "))
    for _, w in ipairs(waits) do assert.is_true(w <= 0.2, "perform waited " .. w .. " s") end
  end)
end)
