--- The only executor of calls, one at a time or many at once.
--
-- For each attempt of a request (call/request.lua) it waits for the
-- limiter, posts through the transport, reads the reply (call/reply.lua),
-- fires the hooks, and asks the retry policy (call/retry.lua) whether and
-- when to try again.  Both paths settle an attempt through the same
-- function, so every hook fires on both:
--   on_call{ service, method, attempt, status, kind, error, request_id, seconds }
--   on_retry{ service, method, attempt, delay, error }
--   on_wait{ service, method, delay }   (the limiter holds the call)
-- Hooks are read from `hooks` at each event (the client, whose fields a
-- user may set at any time).
local errors = require "dialoginsight.errors"
local reply = require "dialoginsight.call.reply"
local retry = require "dialoginsight.call.retry"

local M = {}

local Scheduler = {}
Scheduler.__index = Scheduler

--- parts: transport (docs/transport.md), limiter (limiter/init.lua),
-- policy (retry.policy), redact (errors.redactor), hooks.
function M.new(parts)
  return setmetatable({
    transport = parts.transport, limiter = parts.limiter, policy = parts.policy,
    redact = parts.redact, hooks = parts.hooks,
  }, Scheduler)
end

local function fire(self, name, event)
  local hook = self.hooks[name]
  if hook then hook(event) end
end

--- The error of a call the transport refuses up front (transport/ngx.lua,
-- in an nginx phase without cosockets), before a limiter slot or a retry
-- is spent; nil when it may go.
function Scheduler:refused(req)
  local t = self.transport
  local why = t.refuse and t:refuse()
  if not why then return nil end
  local err = reply.failure(req.entry, { kind = "network", message = why, sent = false },
    self.redact)
  err.retryable, err.attempts = false, 0
  return err
end

--- Asks the limiter for a slot: 0 when req may start now (the slot taken),
-- else the seconds to wait.  on_wait fires once per wait (`held`: a table
-- that remembers until when this request was said to wait).
function Scheduler:slot(req, now, held)
  local wait = self.limiter:acquire()
  if wait > 0 and not (held.until_t and now < held.until_t) then
    held.until_t = now + wait
    fire(self, "on_wait", { service = req.entry.service, method = req.entry.method, delay = wait })
  end
  return wait
end

--- Settles one attempt from its transport reply r: returns resp; or nil,
-- err and the delay before the next attempt (nil when err is final).
function Scheduler:settle(req, attempt, started, r)
  local entry = req.entry
  local resp, err = reply.read(entry, r, self.redact)
  local on_call = self.hooks.on_call
  if on_call then
    on_call {
      service = entry.service, method = entry.method, attempt = attempt,
      status = r.status, kind = err and err.kind, error = err and err.message,
      request_id = err and err.request_id or resp and resp.idRequest,
      seconds = self.transport:now() - started,
    }
  end
  if resp then return resp end
  local again = retry.classify(entry, err)
  err.attempts = attempt
  -- a 429 tells every process sharing the key to back off, not only us
  if err.status == 429 then
    self.limiter:penalize(retry.penalty(req.policy or self.policy, err))
  end
  local p = req.policy or self.policy
  if not again or attempt > p.retries then return nil, err end
  local d = retry.delay(p, attempt, err)
  fire(self, "on_retry", { service = entry.service, method = entry.method,
                          attempt = attempt, delay = d, error = err })
  return nil, err, d
end

--- One call, with its retries: the response, or nil, err.
function Scheduler:call(req)
  local err = self:refused(req)
  if err then return nil, err end
  local t, held, attempt = self.transport, {}, 0
  while true do
    attempt = attempt + 1
    local wait = self:slot(req, t:now(), held)
    while wait > 0 do
      t:sleep(wait)
      wait = self:slot(req, t:now(), held)
    end
    local started = t:now()
    local resp, d
    resp, err, d = self:settle(req, attempt, started,
      t:post(req.url, req.body, req.timeout, req.fresh))
    if resp then return resp end
    if not d then return nil, err end
    t:sleep(d)
  end
end

-- Many calls ----------------------------------------------------------------------

-- The state of one streamed call: which call it is, its attempts so far,
-- and when its next attempt may start (after a back-off).
local function new_slot(i, req)
  return { i = i, req = req, attempts = 0, held = {} }
end

-- Keeps just enough calls ready to fill the free places.
local function pull(run)
  local ready = run.ready
  while not run.exhausted and (#ready - run.head + 1) < run.max - run.ninflight do
    local req = run.next_req()
    if req == nil then
      run.exhausted = true
    else
      run.produced = run.produced + 1
      local err = errors.is_error(req) and req or run.s:refused(req)
      if err then
        run.done(run.produced, err)
      else
        ready[#ready + 1] = new_slot(run.produced, req)
      end
    end
  end
  if run.head > 64 and run.head > #ready / 2 then -- compact the FIFO now and then
    local rest = {}
    for k = run.head, #ready do rest[#rest + 1] = ready[k] end
    run.ready, run.head = rest, 1
  end
end

-- Moves the slots whose back-off is over to the ready FIFO; returns the
-- soonest time another one will be.
local function wake(run, now)
  local soonest
  for k = #run.later, 1, -1 do
    local sl = run.later[k]
    if sl.at <= now then
      run.ready[#run.ready + 1] = sl
      table.remove(run.later, k)
    elseif not soonest or sl.at < soonest then
      soonest = sl.at
    end
  end
  return soonest
end

-- Starts ready calls while there is room and the limiter agrees; returns
-- the soonest time the limiter may agree again, if it held one.
local function start(run, now, soonest)
  local s, t = run.s, run.t
  while run.ninflight < run.max and run.head <= #run.ready do
    local sl = run.ready[run.head]
    local wait = s:slot(sl.req, now, sl.held)
    if wait > 0 then return math.min(soonest or now + wait, now + wait) end
    run.head = run.head + 1
    sl.attempts, sl.started = sl.attempts + 1, t:now()
    local req = sl.req
    run.m:add(sl.i, req.url, req.body, req.timeout, req.fresh)
    run.inflight[sl.i] = sl
    run.ninflight = run.ninflight + 1
  end
  return soonest
end

local function finish(run, r)
  local sl = run.inflight[r.tag]
  run.inflight[r.tag] = nil
  run.ninflight = run.ninflight - 1
  local resp, err, d = run.s:settle(sl.req, sl.attempts, sl.started, r)
  if resp then return run.done(sl.i, resp) end
  if not d then return run.done(sl.i, err) end
  sl.at = run.t:now() + d
  run.later[#run.later + 1] = sl
end

-- The scheduling loop of stream().
local function loop(run)
  local t = run.t
  pull(run)
  while run.head <= #run.ready or run.ninflight > 0 or #run.later > 0 do
    local now = t:now()
    local soonest = start(run, now, wake(run, now))
    local budget = soonest and math.max(0, soonest - t:now()) or 1
    if run.ninflight == 0 then
      if budget > 0 then t:sleep(budget) end
    else
      for _, r in ipairs(run.m:perform(math.min(budget, 1))) do finish(run, r) end
    end
    pull(run)
  end
end

--- Many calls through one multi, streamed: memory holds only the calls in
-- flight or waiting for a back-off, whatever the total.
--   next_req()       -> a request, an error object (a call that failed
--                       before it could be sent; handed straight to done),
--                       or nil when there are no more
--   done(i, result)  -> called once per call, i counting from 1 in the order
--                       next_req produced them; result is the response or
--                       the error object
-- The limiter's waits and the back-offs are scheduled here, so they never
-- hold up the calls already in flight.
function Scheduler:stream(next_req, done, concurrency)
  local run = {
    s = self, t = self.transport, next_req = next_req, done = done, max = concurrency,
    ready = {}, head = 1, later = {}, inflight = {}, ninflight = 0, produced = 0,
  }
  local m = self.transport:multi()
  run.m = m
  local ok, why = pcall(loop, run)
  m:close()
  if not ok then error(why, 0) end
end

--- Many calls at once: reqs[i] is a request or an error object.  Returns
-- the results in input order, and the number of failures.
function Scheduler:many(reqs, concurrency)
  local results, failures, n = {}, 0, 0
  self:stream(function()
    n = n + 1
    return reqs[n]
  end, function(i, r)
    results[i] = r
    if errors.is_error(r) then failures = failures + 1 end
  end, concurrency)
  return results, failures
end

return M
