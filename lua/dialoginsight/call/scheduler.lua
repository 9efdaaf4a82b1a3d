--- The only executor of calls, one at a time or many at once: limiter,
-- transport, reply (call/reply.lua), hooks (documented in client.lua) and
-- retries (call/retry.lua).  Both paths settle an attempt through settle(),
-- so every hook fires on both.  Deadlines: docs/limiter.md.
local core = require "dialoginsight.core"
local errors = require "dialoginsight.errors"
local reply = require "dialoginsight.call.reply"
local retry = require "dialoginsight.call.retry"

local M = {}

-- The shortest attempt worth making when a deadline cuts it (the C core
-- counts in milliseconds).
local MIN_ATTEMPT = 0.001

local Scheduler = {}
Scheduler.__index = Scheduler

--- parts: transport, limiter, policy, timeout, deadline (nil: none),
-- redact, limits, hooks (read at each event: a user may set them any time),
-- metrics (a registry of metrics/init.lua, or nil: none counted), priority (the
-- calls' default).
function M.new(parts)
  return setmetatable({
    transport = parts.transport, limiter = parts.limiter, policy = parts.policy,
    timeout = parts.timeout, deadline = parts.deadline,
    redact = parts.redact, limits = parts.limits, hooks = parts.hooks,
    metrics = parts.metrics, priority = parts.priority or "interactive",
    -- (false, not nil: read per call, a field the table has is found without a look
    -- through the metatable)
    paused_until = false,
  }, Scheduler)
end

local function fire(self, name, event)
  local hook = self.hooks[name]
  if hook then hook(event) end
end

-- Calls taken up by this process: each call's number, its id in the hooks' events
-- and the logs (log.call_id).
local taken = 0

--- The state of one call, taken up now: kept in its request itself (a table less per
-- call, issue 26; request.build's table has room for these fields), so a state sl is
-- its request.  i: its place in a stream; span: its deadline in seconds (req.deadline
-- is the option given); ends: when that deadline passes; t0: when the call's time began, for its duration in the metrics (false when
-- none are kept).  Both start when the call is taken up, but a stream's call prepared
-- beyond the free places starts both when a place frees (start).
function Scheduler:state(req, i)
  local d = req.deadline
  if d == nil then d = self.deadline end
  taken = taken + 1
  if req.attempts then -- (a request taken up again: what its last run left is cleared)
    req.last, req.held_until, req.span, req.ends, req.ok, req.later = nil, nil, nil, nil, nil, nil
    req.told = nil
  end
  req.i, req.attempts, req.id, req.t0 = i, 0, taken, false
  if d or self.metrics then
    local now = self.transport:now()
    req.t0 = now
    if d then req.span, req.ends = d, now + d end
  end
  return req
end

--- Counts a call that ended, with err or (nil) well; sl: its state, or nil for a call
-- refused before it had one.
function Scheduler:ended(req, sl, err)
  local t0 = sl and sl.t0
  self.metrics:call(req.entry, err and err.kind or "ok",
    t0 and self.transport:now() - t0 or 0, err ~= nil and err.outcome == "unknown", sl and sl.ok)
end

--- The error of a call the transport refuses up front (transport/ngx.lua,
-- a phase without cosockets), before a limiter slot or a retry is spent.
function Scheduler:refused(req)
  local t = self.transport
  local why = t.refuse and t:refuse()
  if not why then return nil end
  local err = reply.failure(req.entry, { kind = "network", message = why, sent = false },
    self.redact)
  err.retryable, err.attempts = false, 0
  return err
end

--- The error of a call whose deadline passed, or would pass before `when`.
function Scheduler:expired(sl, when)
  local entry, last = sl.entry, sl.last
  local msg = string.format("the call's deadline (%g s) %s", sl.span, when)
  if last then
    msg = msg .. "; last attempt: " .. last.kind .. (last.code and (" " .. last.code) or "")
      .. ": " .. tostring(last.message)
  end
  return errors.new {
    kind = "timeout", message = msg, service = entry.service, method = entry.method,
    deadline = sl.span, attempts = sl.attempts, retryable = false, last = last,
    sent = last ~= nil and last.sent ~= false, outcome = last and last.outcome,
  }
end

local LATE = "passed before its next attempt could start"
local LIMITER_WAIT = "would pass before the rate limiter lets the call go"

--- The error of a call slot() did not let go: the rate limit, if that is
-- what it would wait for (a handler can answer 503 + Retry-After).
function Scheduler:unslotted(sl, why, wait)
  if not wait then return self:expired(sl, why) end
  local entry, last = sl.entry, sl.last
  return errors.new {
    kind = "rate_limited", service = entry.service, method = entry.method,
    message = string.format("the rate limit holds calls for %.3g s, past the call's deadline (%g s)",
      wait, sl.span), retry_after = wait, deadline = sl.span, attempts = sl.attempts,
    retryable = true, last = last, sent = last ~= nil and last.sent ~= false, outcome = last and last.outcome,
  }
end

-- The service's limit answered (a 429, its Retry-After clamped to `seconds`):
-- on_limit "hit" once per pause, however many replies of one burst say so.
function Scheduler:limit_hit(entry, seconds)
  local now = self.transport:now()
  if not (self.paused_until and now < self.paused_until) then
    self.hit_at = now
    fire(self, "on_limit", { state = "hit", service = entry.service, method = entry.method,
                             retry_after = seconds, ["until"] = core.wall() + seconds })
  end
  self.paused_until = math.max(self.paused_until or now, now + seconds)
end

--- A slot for sl: 0 (taken), the seconds to wait, or nil, why, wait when
-- its deadline leaves no time for an attempt.
function Scheduler:slot(sl, now)
  local ends = sl.ends
  if ends and now >= ends - MIN_ATTEMPT then return nil, LATE end
  -- a pause is over when a call asks after it ends: nothing watches the clock
  if self.paused_until and now >= self.paused_until then
    self.paused_until = false
    fire(self, "on_limit", { state = "over", waited = now - self.hit_at })
  end
  local wait = self.limiter:acquire(ends and ends - MIN_ATTEMPT - now,
    sl.priority or self.priority)
  if wait > 0 then return self:held(sl, wait) end
  return 0
end

--- slot()'s answer when the limiter holds sl for `wait` seconds: wait (counted and
-- told once per hold), or nil, why, wait when sl's deadline would pass first.
function Scheduler:held(sl, wait)
  local now = self.transport:now() -- (a shared limiter may have taken some of it)
  local ends = sl.ends
  if ends and now + wait > ends - MIN_ATTEMPT then return nil, LIMITER_WAIT, wait end
  local held_until = sl.held_until
  if not (held_until and now < held_until) then
    sl.held_until = now + wait
    local m = self.metrics
    if m then m:wait(sl.priority or self.priority, wait) end
    fire(self, "on_wait", { service = sl.entry.service, method = sl.entry.method,
                            delay = wait, call_id = sl.id })
  end
  return wait
end

--- The timeout of sl's next attempt, cut to what its deadline leaves.
function Scheduler:attempt_timeout(sl, now)
  local timeout = sl.timeout
  if not sl.ends then return timeout, false end
  local left = math.max(MIN_ATTEMPT, sl.ends - now)
  timeout = timeout or self.timeout
  if left < timeout then return left, true end
  return timeout, false
end

--- Settles attempt sl.attempts: resp; or nil, err and the delay before the
-- next attempt (nil: err is final).
function Scheduler:settle(sl, started, r, cut)
  local entry, status = sl.entry, r.status
  local resp, err
  if status then -- an HTTP reply, else a transfer that got none (docs/transport.md)
    resp, err = reply.interpret(entry, status, r.body, r.retry_after, self.redact, self.limits,
      sl.decode)
  else
    err = reply.failure(entry, r, self.redact)
  end
  local attempt = sl.attempts
  local m = self.metrics
  local on_call = self.hooks.on_call
  if m then
    -- an attempt that went well ends its call: counted with it (ended), in one registry
    -- call; unless a hook runs first (one that raises ends the call uncounted, never
    -- its attempts: docs/metrics.md)
    if err or on_call then m:attempt(entry, err and err.kind or "ok", status) else sl.ok = status end
  end
  if on_call then
    on_call {
      service = entry.service, method = entry.method, attempt = attempt,
      status = status, kind = err and err.kind, error = err and err.message,
      request_id = err and err.request_id or resp and resp.idRequest,
      seconds = self.transport:now() - started, call_id = sl.id,
    }
  end
  if resp then return resp end
  local again = retry.classify(entry, err)
  err.attempts = attempt
  sl.last = err
  local p = sl.policy or self.policy
  -- the caller reads the wait this call honours, never the server's number
  -- (kept as retry_after_raw): a limit reply pauses every process sharing the key
  if err.kind == "rate_limited" then
    err.retry_after = retry.penalty(p, err)
    self.limiter:penalize(err.retry_after, sl.ends and math.max(0, sl.ends - self.transport:now()))
    self:limit_hit(entry, err.retry_after)
  elseif err.retry_after then
    err.retry_after = math.min(err.retry_after, p.max_retry_after)
  end
  if cut and err.kind == "timeout" then
    return nil, self:expired(sl, "passed during attempt " .. attempt)
  end
  if not again or attempt > p.retries then return nil, err end
  local d = retry.delay(p, attempt, err)
  if sl.ends and self.transport:now() + d > sl.ends - MIN_ATTEMPT then
    -- a limit reply stays what it is: the caller learns when to come back
    if err.kind == "rate_limited" then
      err.retry_after = math.max(err.retry_after, d)
      return nil, err
    end
    return nil, self:expired(sl, string.format("would pass during the %.3g s wait before "
      .. "attempt %d", d, attempt + 1))
  end
  if m then m:retry(entry, err.kind) end
  fire(self, "on_retry", { service = entry.service, method = entry.method,
                          attempt = attempt, delay = d, error = err, call_id = sl.id })
  return nil, err, d
end

-- One call, its attempts and waits: the reply, or nil, err.
local function attempts(self, sl)
  local t = self.transport
  while true do
    local wait, why, held = self:slot(sl, t:now())
    while wait ~= 0 do
      if not wait then return nil, self:unslotted(sl, why, held) end
      t:sleep(wait)
      wait, why, held = self:slot(sl, t:now())
    end
    sl.attempts = sl.attempts + 1
    local started = t:now()
    local timeout, cut = self:attempt_timeout(sl, started)
    local resp, err, d = self:settle(sl, started, t:post(sl.url, sl.body, timeout, sl.fresh), cut)
    if resp then return resp end
    if not d then return nil, err end
    t:sleep(d)
  end
end

function Scheduler:call(req)
  local err = self.transport.refuse and self:refused(req) or nil -- (nginx's alone refuses)
  local sl, resp
  if not err then
    sl = self:state(req)
    -- (a hook that raises ends the call with its error: its attempts are counted, the
    -- call is not, as it returns nothing; docs/metrics.md)
    resp, err = attempts(self, sl)
    -- req.result (client:call_result): the reply's result member, or the decode error
    if not err and req.result then resp, err = reply.result(req.entry, resp) end
  end
  if self.metrics then self:ended(req, sl, err) end
  return resp, err
end

-- Many calls ----------------------------------------------------------------------

-- (the methods the stream calls per call, as locals: no lookup through the metatable)
local state, ended, settle = Scheduler.state, Scheduler.ended, Scheduler.settle

-- Keeps one call ready beyond the free places: when a call completes, the
-- next goes out before the caller's work on the completed one begins.

-- Hands the end of sl's call, resp or err, to the caller, counted: done(i, result,
-- failed), failed true when result is an error object.
local function conclude(run, sl, resp, err)
  local s = run.s
  sl.told = true -- (counted here: never again as abandoned, whatever raises next)
  if s.metrics then ended(s, sl, sl, err) end
  run.done(sl.i, resp or err, err ~= nil)
  -- told, sl is done with (an error object or a hook's event holds none of it): its
  -- table serves a later call (pull).  Not when done raised: abandon may still read it.
  local spare = run.spare
  spare[#spare + 1] = sl
end

-- Counts the calls a stream leaves without telling their caller an end (stop, or a raise),
-- once.  open: list's calls were added to the multi and never settled (in flight, or
-- completed and not read); one added before a perform has its attempt on the wire, counted
-- with it (code none), one added after the last perform never made that attempt.  Else
-- (waiting for a retry) each attempt was counted as it settled.  A call that never made an
-- attempt is not a call.
local function abandon(run, list, first, open)
  local mx = run.s.metrics
  if not mx then return end
  local now = run.t:now()
  for k = first or 1, #list do
    local sl = list[k]
    if sl and not sl.told then
      sl.told = true
      local entry, made = sl.entry, sl.attempts
      local sent = open and sl.added < run.performs
      if open and not sent then made = made - 1 end
      if sent then
        mx:attempt(entry, "abandoned", nil)
        mx:call(entry, "abandoned", sl.t0 and now - sl.t0 or 0, not entry.idempotent)
      elseif made > 0 then
        mx:call(entry, "abandoned", sl.t0 and now - sl.t0 or 0,
          sl.last ~= nil and sl.last.outcome == "unknown")
      end
    end
  end
end

-- Asks the caller's stop(n): nil/false goes on, true starts nothing more,
-- "now" also leaves the calls in flight.  Never undone.
local function ask_stop(run)
  if run.stop and run.stopped ~= "now" then
    local s = run.stop(run.ninflight)
    if s then run.stopped = s == "now" and "now" or true end
  end
  return run.stopped
end

-- Takes up calls from next_req until one is ready beyond the free places.
local function pull(run)
  if run.stop then ask_stop(run) end
  local ready = run.ready
  if not (run.exhausted or run.stopped) then
    local s, next_req, refuse = run.s, run.next_req, run.t.refuse
    -- the calls to take up: the free places, and one beyond them, less those ready
    local want = run.max - run.ninflight + 1 - (#ready - run.head + 1)
    while want > 0 do
      local spare = run.spare
      local last = #spare
      local req = next_req(spare[last])
      if last > 0 and req == spare[last] then spare[last] = nil end
      if req == nil then
        run.exhausted = true
        break
      elseif req == false then
        break -- none now: asked again once a call completes
      end
      local i = run.produced + 1
      run.produced = i
      -- (a request has its url; an error object of next_req's is a call never made, as
      -- client:call's validation)
      local err = req.url == nil and req or (refuse and s:refused(req)) or nil
      if err then
        if err ~= req and s.metrics then ended(s, req, nil, err) end
        run.done(i, err, true)
      else
        local sl = state(s, req, i)
        if sl.ends then run.deadlines = true end
        -- the call ready beyond the free places: its time (its deadline, its duration)
        -- counts from when a place is free
        if want == 1 then sl.ends, sl.later = nil, true end
        ready[#ready + 1] = sl
        want = want - 1
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

-- Starts ready calls while there is room and the limiter agrees; returns the
-- soonest time it may agree again and how many started.  Once stop() says so,
-- the calls still waiting are dropped (done is not called).
local function start(run, now, soonest)
  if run.stop and ask_stop(run) then
    abandon(run, run.ready, run.head, false) -- (the retries among them)
    abandon(run, run.later, 1, false)
    run.ready, run.head, run.later, run.exhausted = {}, 1, {}, true
    return nil, 0
  end
  local s, ready, inflight, m, max = run.s, run.ready, run.inflight, run.m, run.max
  local limiter, priority = s.limiter, s.priority
  local head, ninflight, n = run.head, run.ninflight, 0
  while ninflight < max and head <= #ready do
    local sl = ready[head]
    if sl.later then
      sl.later = nil
      if sl.t0 then sl.t0 = now end
      if sl.span then sl.ends = now + sl.span end
    end
    local wait, why, held
    if sl.ends or s.paused_until then
      wait, why, held = s:slot(sl, now)
    else -- (slot()'s own path when neither a deadline nor a limit reply's pause has a say)
      wait = limiter:acquire(nil, sl.priority or priority)
      if wait > 0 then wait, why, held = s:held(sl, wait) end
    end
    if wait and wait > 0 then
      soonest = math.min(soonest or now + wait, now + wait)
      break
    end
    head = head + 1
    if not wait then
      run.head, run.ninflight = head, ninflight
      conclude(run, sl, nil, s:unslotted(sl, why, held))
    else
      -- (the attempt's start: now, the loop's clock read just before, unless a deadline
      -- cuts its timeout to the millisecond)
      local started, timeout, cut = now, sl.timeout, false
      if sl.ends then
        started = run.t:now()
        timeout, cut = s:attempt_timeout(sl, started)
      end
      sl.attempts, sl.started, sl.cut = sl.attempts + 1, started, cut
      m:add(sl.i, sl.url, sl.body, timeout, sl.fresh)
      sl.added = run.performs -- (sent by a later perform: abandon)
      inflight[sl.i] = sl
      ninflight, n = ninflight + 1, n + 1
    end
  end
  run.head, run.ninflight = head, ninflight
  return soonest, n
end

-- Fails the ready calls whose deadline leaves no time for an attempt;
-- returns the soonest deadline of the others.
local function expire(run, now)
  local ready, keep, soonest = run.ready, {}, nil
  for k = run.head, #ready do
    local sl = ready[k]
    local ends = sl.ends
    if ends and now >= ends - MIN_ATTEMPT then
      conclude(run, sl, nil, run.s:expired(sl, LATE))
    else
      keep[#keep + 1] = sl
      if ends and not (soonest and soonest <= ends) then soonest = ends end
    end
  end
  run.ready, run.head = keep, 1
  return soonest and soonest - MIN_ATTEMPT
end

-- The longest the loop goes without asking stop(): how soon a "now" is honoured.
local STOP_TICK = 0.2

local function loop(run)
  local s, t, m, inflight, sls = run.s, run.t, run.m, run.inflight, run.settling
  pull(run)
  while (run.head <= #run.ready or run.ninflight > 0 or #run.later > 0) and run.stopped ~= "now" do
    local now = t:now()
    local soonest = #run.later > 0 and wake(run, now) or nil
    local due = run.deadlines and expire(run, now)
    soonest = start(run, now, soonest)
    local budget = soonest and math.max(0, soonest - t:now()) or 1
    if due then budget = math.min(budget, math.max(0, due - t:now())) end
    if run.stop then
      budget = math.min(budget, STOP_TICK)
      ask_stop(run) -- (n: the calls just started count)
    end
    if run.stopped == "now" then
      break
    elseif run.ninflight == 0 then
      if budget > 0 then t:sleep(budget) end
    else
      run.performs = run.performs + 1
      local rs = m:perform(budget < 1 and budget or 1)
      local n = #rs
      if n > 0 then
        -- sls: the completed calls' states, one list for the whole run
        for k = 1, n do
          local tag = rs[k].tag
          sls[k], inflight[tag] = inflight[tag], nil
        end
        run.ninflight = run.ninflight - n
        -- the ready calls take the free places (perform(0) sends them) before
        -- the completed calls are settled
        local _, started = start(run, t:now(), nil)
        if started > 0 then
          run.performs = run.performs + 1
          local more = m:perform(0)
          for k = 1, #more do
            local r = more[k]
            local tag = r.tag
            n = n + 1
            rs[n], sls[n], inflight[tag] = r, inflight[tag], nil
          end
          run.ninflight = run.ninflight - #more
        end
        for k = 1, n do
          local sl = sls[k]
          sls[k] = nil
          local resp, err, d = settle(s, sl, sl.started, rs[k], sl.cut)
          if d then -- another attempt, after d
            sl.at = t:now() + d
            run.later[#run.later + 1] = sl
          else
            conclude(run, sl, resp, err)
          end
        end
      end
    end
    pull(run)
  end
end

--- Many calls through one multi, streamed (client.lua's call_stream has the
-- contract); next_req may also give an error object, handed straight to
-- done, and its false with no call in flight ends the stream.  next_req(spare):
-- spare, when there is one, is a request of this stream's whose call has ended (told
-- to done); next_req may fill it for its call (request.build's into) instead of making
-- a table.  Limiter waits and back-offs are scheduled here, so they never hold up the
-- calls in flight.
-- stop(n) (n: the calls in flight), asked at least every STOP_TICK s: once true,
-- nothing more starts; once "now", the calls in flight are abandoned too.
function Scheduler:stream(next_req, done, concurrency, stop)
  local run = {
    s = self, t = self.transport, next_req = next_req, done = done, max = concurrency, stop = stop,
    ready = {}, head = 1, later = {}, inflight = {}, ninflight = 0, produced = 0, settling = {},
    performs = 0, spare = {},
  }
  local m = self.transport:multi(concurrency)
  run.m = m
  local ok, why = pcall(loop, run)
  m:close()
  -- what stop() said "now" to, or a raise left: calls in flight, calls completed and not
  -- settled (those after the one that raised), calls waiting for a retry
  local inflight = {}
  for _, sl in pairs(run.inflight) do inflight[#inflight + 1] = sl end
  abandon(run, inflight, 1, true)
  local unsettled = {}
  for _, sl in pairs(run.settling) do unsettled[#unsettled + 1] = sl end
  abandon(run, unsettled, 1, true)
  abandon(run, run.ready, run.head, false)
  abandon(run, run.later, 1, false)
  if not ok then error(why, 0) end
end

--- Many calls at once: the results in order, and the number of failures.
function Scheduler:many(next_req, concurrency)
  local results, failures = {}, 0
  self:stream(next_req, function(i, r, failed)
    results[i] = r
    if failed then failures = failures + 1 end
  end, concurrency)
  return results, failures
end

return M
