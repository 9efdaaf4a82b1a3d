--- Hands stored events to the user's handler, at least once: an event leaves the store's
-- pending set only when its handler succeeded; a failure is retried with back-off, then the
-- event is parked as dead with its error until `events replay`.  Shared by the nginx timer
-- (webhooks/ngx.lua) and `dialoginsight events run` (cli/events.lua).
-- @module dialoginsight.webhooks.runner
local webhooks = require "dialoginsight.webhooks"
local metrics = require "dialoginsight.metrics"

local M = {}

--- Defaults: attempts per round before an event is dead (5), the first back-off and its cap
-- (seconds: 1, doubling, 300), the lease of a claimed event (300 s: a runner that dies
-- gives its events back after it), and events claimed at once (20).
M.DEFAULTS = { attempts = 5, backoff = 1, backoff_cap = 300, lease = 300, claim_size = 20 }

-- A handler failed when it raised, returned false (false, err: another common convention),
-- or nil, err (the library's); returning nothing is success.
local function call(fn, event)
  local ok, r, err = pcall(fn, event)
  if not ok then return nil, r end
  if r == false then return nil, err or "the handler returned false" end
  if r == nil and err ~= nil then return nil, err end
  return true
end

local function text(why)
  local s = tostring(why)
  return #s > 2000 and (s:sub(1, 2000) .. "...") or s
end

-- One claimed event: its handler run, its outcome recorded; the counts' key, or nil, err.
local function run_one(store, h, clock, row)
  -- checked when it was received; read again from the stored bytes (an event that cannot
  -- be read, by a later version say, is dead at once: no retry would read it either)
  local read, event, why = pcall(webhooks.read, row.body)
  if not read then event, why = nil, event end
  local fn = event and (event.test and h.on_test or (not event.test and h.handler))
  local ok
  if event then
    event.attempt = row.attempts - row.round
    event.retry = row.attempts > 1 -- a run before may have done its work
    event.received = row.received
    if fn then ok, why = call(fn, event) else ok = true end
  end
  local now = clock()
  if ok then
    local kept, err = store:done(row, now)
    if kept == nil then return nil, err end
    if not kept then return "lost" end
    return event.test and not fn and "test" or "handled"
  end
  local n = row.attempts - row.round
  local due
  if event and n < (h.attempts or M.DEFAULTS.attempts) then
    due = now + math.min(h.backoff_cap or M.DEFAULTS.backoff_cap,
      (h.backoff or M.DEFAULTS.backoff) * 2 ^ (n - 1))
  end
  local kept, err = store:fail(row, text(why), due, now)
  if kept == nil then return nil, err end
  return not kept and "lost" or due and "failed" or "dead"
end

--- Runs the handler on the events due now, once each: counts { handled, failed, dead, test,
-- lost (the lease ran out first: another runner has it) }, or nil, err when the store failed.
-- @tparam table store a webhooks.store
-- @tparam table h handler = function(event), on_test (test events; absent: they are only
-- marked done), attempts, backoff, backoff_cap, lease, claim_size (DEFAULTS)
-- @tparam function clock the wall clock (core.wall)
function M.run_due(store, h, clock)
  local counts = { handled = 0, failed = 0, dead = 0, test = 0, lost = 0 }
  local rows, err = store:claim(h.claim_size or M.DEFAULTS.claim_size, clock(), h.lease or M.DEFAULTS.lease)
  if not rows then return nil, err end
  for _, row in ipairs(rows) do
    -- the claim's lease (row.due) covers every event of it: one whose lease ran out while
    -- the ones before it ran is another runner's now, and is never started here
    local which = "lost"
    if clock() < row.due then
      which, err = run_one(store, h, clock, row)
      if not which then return nil, err end
    end
    counts[which] = counts[which] + 1
    metrics.default():event("handled", which)
  end
  counts.claimed = #rows
  return counts
end

return M
