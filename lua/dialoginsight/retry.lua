--- When to try a call again, and how long to wait first.
--
-- Idempotent methods (per the registry) are retried after any transient
-- failure.  A non-idempotent one (a send, a trigger, a create) is retried
-- only when the request provably never reached the server: the connection
-- was never made, or a 429 refused it before processing.  After a timeout,
-- a dropped connection or a 5xx, its error says outcome = "unknown", since
-- the server may have acted, and the caller must decide.
local errors = require "dialoginsight.errors"

local M = {}

M.DEFAULTS = {
  retries = 2,          -- attempts = retries + 1
  base = 0.5,           -- first back-off, seconds
  cap = 8,              -- longest back-off, seconds
  max_retry_after = 30, -- longest Retry-After honoured, seconds
}

local RETRY_STATUS = { [429] = true, [500] = true, [502] = true, [503] = true, [504] = true }

--- Builds a policy from nil (defaults), a number (retries) or a table.
function M.policy(opt)
  local p = {}
  for k, v in pairs(M.DEFAULTS) do p[k] = v end
  if type(opt) == "number" then
    p.retries = opt
  elseif type(opt) == "table" then
    for k, v in pairs(opt) do
      if M.DEFAULTS[k] == nil and k ~= "random" then
        error("dialoginsight: unknown retry setting '" .. tostring(k) .. "'", 0)
      end
      p[k] = v
    end
  elseif opt ~= nil then
    error("dialoginsight: setting 'retries' must be a number or a table", 0)
  end
  for k in pairs(M.DEFAULTS) do
    if type(p[k]) ~= "number" or p[k] < 0 or p[k] ~= p[k] then
      error("dialoginsight: retry setting '" .. k .. "' must be a number >= 0", 0)
    end
  end
  if p.retries ~= math.floor(p.retries) then
    error("dialoginsight: setting 'retries' must be a whole number", 0)
  end
  p.random = p.random or math.random
  return p
end

--- Decides whether err, from a call of the registry entry, may be retried.
-- Sets err.retryable, and err.outcome = "unknown" where the server may have
-- acted on a non-idempotent call.
function M.classify(entry, err)
  local retryable, maybe_done = false, false
  if err.kind == "decode" then
    retryable, maybe_done = entry.idempotent, true -- a reply came, garbled
  elseif err.status then
    if err.status == 429 then
      retryable = true -- refused before processing: safe for any method
    elseif RETRY_STATUS[err.status] then
      retryable, maybe_done = entry.idempotent, true
    end
  elseif err.kind == "network" or err.kind == "timeout" then
    if err.sent == false then
      retryable = true -- never left this host
    else
      retryable, maybe_done = entry.idempotent, true
    end
  end
  if maybe_done and not entry.idempotent then
    err.outcome = "unknown"
    if err.kind ~= "timeout" and err.kind ~= "network" then err.kind = "http" end
  end
  err.retryable = retryable
  return retryable
end

--- Seconds to wait before attempt number `attempt` + 1.  Honours the
-- server's Retry-After up to the cap; otherwise exponential back-off from
-- `base`, doubling, capped, with "equal jitter": between half and all of it.
function M.delay(p, attempt, err)
  if err and err.retry_after then
    return math.min(err.retry_after, p.max_retry_after)
  end
  local d = math.min(p.cap, p.base * 2 ^ (attempt - 1))
  return d / 2 + p.random() * d / 2
end

local function on_retry(client, req, attempt, delay, err)
  local hook = client.on_retry
  if hook then
    hook { service = req.entry.service, method = req.entry.method,
           attempt = attempt, delay = delay, error = err }
  end
end

--- One call, with retries.
function M.run(client, req)
  local p = req.retries ~= nil and M.policy(req.retries) or client.retry
  local attempt = 0
  while true do
    attempt = attempt + 1
    client:throttle(req)
    local resp, err = client:attempt(req, attempt)
    if resp then return resp end
    local again = M.classify(req.entry, err)
    err.attempts = attempt
    client:penalize(err)
    if not again or attempt > p.retries then return nil, err end
    local d = M.delay(p, attempt, err)
    on_retry(client, req, attempt, d, err)
    client.transport:sleep(d)
  end
end

--- Many calls through one multi.  reqs[i] is a prepared request, or an
-- error object already (a call that failed validation).
function M.run_many(client, reqs, concurrency)
  local t = client.transport
  local results, failures, remaining = {}, 0, 0
  local ready, head = {}, 1     -- FIFO of indices ready to start
  local later = {}               -- { i, at } waiting for a back-off
  local attempts, started = {}, {}
  local inflight = 0
  local policy = {}
  for i, req in ipairs(reqs) do
    if errors.is_error(req) then
      results[i], failures = req, failures + 1
    else
      ready[#ready + 1] = i
      remaining = remaining + 1
      policy[i] = req.retries ~= nil and M.policy(req.retries) or client.retry
    end
  end
  if remaining == 0 then return results, failures end

  local m = t:multi()
  local ok, why = pcall(function()
    while remaining > 0 do
      local now = t:now()
      local soonest
      for k = #later, 1, -1 do
        local w = later[k]
        if w.at <= now then
          ready[#ready + 1] = w.i
          table.remove(later, k)
        elseif not soonest or w.at < soonest then
          soonest = w.at
        end
      end
      while inflight < concurrency and head <= #ready do
        local wait = client:throttle_wait(reqs[ready[head]])
        if wait > 0 then
          soonest = math.min(soonest or now + wait, now + wait)
          break
        end
        local i = ready[head]
        head = head + 1
        attempts[i] = (attempts[i] or 0) + 1
        started[i] = t:now()
        m:add(i, reqs[i].url, reqs[i].body, reqs[i].timeout, reqs[i].fresh)
        inflight = inflight + 1
      end
      local budget = soonest and math.max(0, soonest - t:now()) or 1
      if inflight == 0 then
        t:sleep(budget)
      else
        for _, c in ipairs(m:perform(math.min(budget, 1))) do
          local i = c.tag
          local req = reqs[i]
          inflight = inflight - 1
          local resp, err
          if c.status then
            resp, err = client:interpret(req, c.status, c.body, c.retry_after)
          else
            err = client:transport_error(req, c.kind, c.message, c.sent)
          end
          client:notify(req, attempts[i], started[i], resp, err, c.status)
          if resp then
            results[i], remaining = resp, remaining - 1
          else
            local again = M.classify(req.entry, err)
            err.attempts = attempts[i]
            client:penalize(err)
            if again and attempts[i] <= policy[i].retries then
              local d = M.delay(policy[i], attempts[i], err)
              on_retry(client, req, attempts[i], d, err)
              later[#later + 1] = { i = i, at = t:now() + d }
            else
              results[i], failures, remaining = err, failures + 1, remaining - 1
            end
          end
        end
      end
    end
  end)
  m:close()
  if not ok then error(why, 0) end
  return results, failures
end

return M
