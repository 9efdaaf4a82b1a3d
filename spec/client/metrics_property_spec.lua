-- SECURITY.md, "Metrics tell the truth": against a randomized adversary (faults of every
-- kind, on idempotent and non-idempotent methods, through call, call_many and call_stream
-- ended by stop() at a random point, with random retry policies and deadlines), every HTTP
-- request the sandbox logged is counted once in dialoginsight_attempts_total under its
-- status class, and every call once in dialoginsight_calls_total under the outcome its
-- caller got, or as abandoned when a stream dropped it after an attempt.  Prints its seed.
local di = require "dialoginsight"
local core = require "dialoginsight.core"
local metrics = require "dialoginsight.metrics"
local property = require "support.property"
local sbx = require "support.sandbox"
local sm = require "support.metrics"
local delta = sm.delta

local function same(x, y)
  for k, v in pairs(x) do if y[k] ~= v then return false end end
  for k, v in pairs(y) do if x[k] ~= v then return false end end
  return true
end

local function show(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do out[#out + 1] = k .. ": " .. t[k] end
  return "{ " .. table.concat(out, "; ") .. " }"
end

-- The methods drawn: two idempotent, one not (a 5xx or a time-out is then final).
local METHODS = {
  { "projects", "List", "projects.list", function() return {} end },
  { "contacts", "Merge", "contacts.merge", function(i)
    return { Records = { { ID = { key_f_EMail = "prop" .. i .. "@example.com" }, Data = {} } } }
  end },
  { "messages", "Create", "messages.create", function()
    return { Message = { Name = "property", MessageVersions = { {
      Name = "fr", Culture = "fr-CA", SenderName = "Shop", SenderEMail = "shop@example.com",
      Subject = "Hi", MessageBodies = { { MIMEType = "text/html", Content = "<p>Hi</p>" } } } } } }
  end },
}

local function fault(rng, method)
  local f = rng:pick {
    { type = "status", status = 429, retry_after = 0 },
    { type = "status", status = 503 },
    { type = "status", status = 500 },
    { type = "drop" },
    { type = "latency", ms = 400 },
  }
  local copy = { method = method, next = rng:int(1, 2) }
  for k, v in pairs(f) do copy[k] = v end
  return copy
end

describe("metrics against an adversary", function()
  before_each(function() sbx.reset() end)
  after_each(function() sbx.clear_faults() end)

  it("counts every attempt the sandbox logged, and every call, exactly once", function()
    property.check("metrics", { scenarios = 12 }, function(rng)
      sbx.clear_faults()
      local client = di.new(sbx.settings {
        timeout = 0.25,
        retries = { retries = rng:int(0, 2), base = 0.001, cap = 0.005, max_retry_after = 0.01 },
      })
      local before = client:metrics()
      local mark = sbx.mark()
      -- dropped: calls a stream took up and never told; sure: those of them known to have
      -- made an attempt
      local outcomes, dropped, sure = {}, 0, 0
      local function got(m, r)
        local k = string.format("dialoginsight_calls_total{method=%s,outcome=%s,service=%s}", m[2],
          di.is_error(r) and r.kind or "ok", m[1])
        outcomes[k] = (outcomes[k] or 0) + 1
      end
      for i = 1, rng:int(1, 4) do
        local m = rng:pick(METHODS)
        if rng:chance(0.7) then sbx.faults { fault(rng, m[3]) } end
        if rng:chance(0.5) then
          local r, err = client:call(m[1], m[2], m[4](i), { deadline = rng:chance(0.2) and 0.3 or nil })
          got(m, r or err)
        elseif rng:chance(0.6) then
          local n = rng:int(1, 3)
          local calls = {}
          for k = 1, n do calls[k] = { m[1], m[2], m[4](i * 10 + k) } end
          local results = client:call_many(calls, { concurrency = rng:int(1, 3) })
          for k = 1, n do got(m, results[k]) end
        else
          -- a stream that stop() ends after a random number of results: the calls it drops
          -- waiting for a retry count as abandoned, those never sent not at all
          local n, taken, told, after_n = rng:int(2, 5), 0, 0, rng:int(0, 2)
          -- with an on_call hook (which also takes the other counting path), the calls that
          -- made an attempt are known: those dropped are then exactly the abandoned ones
          local ids, hooked = {}, rng:chance(0.5)
          if hooked then client.on_call = function(ev) ids[ev.call_id] = true end end
          local b = client:metrics()
          client:call_stream(function()
            if taken == n then return nil end
            taken = taken + 1
            return { m[1], m[2], m[4](i * 10 + taken) }
          end, function(_, r) told = told + 1; got(m, r) end,
          { concurrency = rng:int(1, 2), stop = function() return told >= after_n end })
          client.on_call = nil
          if hooked then
            local tried = 0
            for _ in pairs(ids) do tried = tried + 1 end
            -- (each call told made an attempt: no deadline here; stop() is never "now", so
            -- none is abandoned in flight): this stream's abandoned calls, exactly
            local this = 0
            for k, v in pairs(delta(b, client:metrics(), "dialoginsight_calls_total")) do
              if k:find("outcome=abandoned", 1, true) then this = this + v end
            end
            if this ~= tried - told then
              return false, string.format("a stream dropped %d calls after an attempt, %d counted "
                .. "abandoned", tried - told, this)
            end
            sure = sure + this
          end
          dropped = dropped + (taken - told)
        end
        sbx.clear_faults()
      end
      local after = client:metrics()
      local attempts = delta(before, after, "dialoginsight_attempts_total")
      local counted = 0
      for _, v in pairs(attempts) do counted = counted + v end
      -- the sandbox logs an attempt the client gave up on once it is done with it
      local entries
      for _ = 1, 40 do
        entries = sbx.log(mark)
        if #entries >= counted then break end
        core.sleep(0.05)
      end
      -- by status class: an outcome the client saw without a reply (a drop read as a
      -- time-out, say) is the client's to name, the class is the wire's
      local function by_code(t)
        local out = {}
        for k, v in pairs(t) do
          local c = k:gsub(",outcome=[^,}]*", "")
          out[c] = (out[c] or 0) + v
        end
        return out
      end
      local want, seen = by_code(sm.attempts_of(entries, di.registry.lookup)), by_code(attempts)
      if not same(want, seen) then
        return false, "attempts by status class: the sandbox logged " .. show(want)
          .. ", the metrics say " .. show(seen)
      end
      local calls = delta(before, after, "dialoginsight_calls_total")
      local abandoned = 0
      for k, v in pairs(calls) do
        if k:find("outcome=abandoned", 1, true) then abandoned = abandoned + v; calls[k] = nil end
      end
      if not same(outcomes, calls) then
        return false, "calls: the callers got " .. show(outcomes) .. ", the metrics say " .. show(calls)
      end
      if abandoned > dropped or abandoned < sure then
        return false, abandoned .. " calls counted abandoned, of " .. dropped .. " a stream dropped, "
          .. sure .. " of them after an attempt"
      end
      local d = metrics.value(after, "dialoginsight_call_duration_seconds")
        - metrics.value(before, "dialoginsight_call_duration_seconds")
      local n = abandoned
      for _, v in pairs(outcomes) do n = n + v end
      if d ~= n then return false, n .. " calls, " .. d .. " durations" end
      return true
    end)
  end)
end)
