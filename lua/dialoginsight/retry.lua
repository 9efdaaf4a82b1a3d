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

-- What follows a failed attempt, for call and for the multi loop alike:
-- classify it, let a 429 hold back every sharer of the key, and return the
-- delay before the next attempt, or nil when the error is final.
local function after_failure(client, req, p, attempt, err)
  local again = M.classify(req.entry, err)
  err.attempts = attempt
  client:penalize(err)
  if not again or attempt > p.retries then return nil end
  local d = M.delay(p, attempt, err)
  on_retry(client, req, attempt, d, err)
  return d
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
    local d = after_failure(client, req, p, attempt, err)
    if not d then return nil, err end
    client.transport:sleep(d)
  end
end

-- The state of one call inside run_stream.
local function slot(client, i, req)
  return { i = i, req = req, attempts = 0,
           policy = req.retries ~= nil and M.policy(req.retries) or client.retry }
end

--- Many calls through one multi, streamed: memory holds only the calls in
-- flight or waiting for a back-off, whatever the total.
--   next_req()       -> a prepared request, an error object (a call that
--                       failed validation; handed straight to done), or nil
--                       when there are no more
--   done(i, result)  -> called once per call, i counting from 1 in the order
--                       next_req produced them; result is the response or
--                       the error object
-- The limiter's waits and the back-offs are scheduled here, so they never
-- hold up the calls already in flight.
function M.run_stream(client, next_req, done, concurrency)
  local t = client.transport
  local ready, head = {}, 1   -- FIFO of slots ready to start
  local later = {}             -- slots waiting for a back-off, with .at
  local inflight, produced, exhausted = {}, 0, false
  local ninflight = 0

  local function pull()
    -- keep just enough calls ready to fill the free places
    while not exhausted and (#ready - head + 1) < concurrency - ninflight do
      local req = next_req()
      if req == nil then
        exhausted = true
      else
        produced = produced + 1
        if errors.is_error(req) then
          done(produced, req)
        else
          ready[#ready + 1] = slot(client, produced, req)
        end
      end
    end
    if head > 64 and head > #ready / 2 then -- compact the FIFO now and then
      local rest = {}
      for k = head, #ready do rest[#rest + 1] = ready[k] end
      ready, head = rest, 1
    end
  end

  local function finish(sl, c)
    local req = sl.req
    local resp, err
    if c.status then
      resp, err = client:interpret(req, c.status, c.body, c.retry_after)
    else
      err = client:transport_error(req, c.kind, c.message, c.sent)
    end
    client:notify(req, sl.attempts, sl.started, resp, err, c.status)
    if resp then return done(sl.i, resp) end
    local d = after_failure(client, req, sl.policy, sl.attempts, err)
    if not d then return done(sl.i, err) end
    sl.at = t:now() + d
    later[#later + 1] = sl
  end

  local m = t:multi()
  local ok, why = pcall(function()
    pull()
    while head <= #ready or ninflight > 0 or #later > 0 do
      local now = t:now()
      local soonest
      for k = #later, 1, -1 do
        local sl = later[k]
        if sl.at <= now then
          ready[#ready + 1] = sl
          table.remove(later, k)
        elseif not soonest or sl.at < soonest then
          soonest = sl.at
        end
      end
      while ninflight < concurrency and head <= #ready do
        local sl = ready[head]
        local wait = client:throttle_wait(sl.req)
        if wait > 0 then
          soonest = math.min(soonest or now + wait, now + wait)
          break
        end
        head = head + 1
        sl.attempts, sl.started = sl.attempts + 1, t:now()
        m:add(sl.i, sl.req.url, sl.req.body, sl.req.timeout, sl.req.fresh)
        inflight[sl.i] = sl
        ninflight = ninflight + 1
      end
      local budget = soonest and math.max(0, soonest - t:now()) or 1
      if ninflight == 0 then
        if budget > 0 then t:sleep(budget) end
      else
        for _, c in ipairs(m:perform(math.min(budget, 1))) do
          local sl = inflight[c.tag]
          inflight[c.tag] = nil
          ninflight = ninflight - 1
          finish(sl, c)
        end
      end
      pull()
    end
  end)
  m:close()
  if not ok then error(why, 0) end
end

--- Many calls at once: reqs[i] is a prepared request or an error object.
-- Returns the results in input order, and the number of failures.
function M.run_many(client, reqs, concurrency)
  local results, failures, n = {}, 0, 0
  M.run_stream(client, function()
    n = n + 1
    return reqs[n]
  end, function(i, r)
    results[i] = r
    if errors.is_error(r) then failures = failures + 1 end
  end, concurrency)
  return results, failures
end

return M
