--- The reserve for interactive calls in Lua (docs/limiter.md, "A reserve for
-- interactive calls"): the figures of a limit, as src/di_limiter.c's set_rate
-- makes them, for the Redis backend; and what a state reads as (status).
local BOUNDS = require("dialoginsight.core").limiter_bounds

local M = {}

--- How many interactive calls a batch call leaves room for: none at share 1
-- (batch is then interactive, the limiter without priorities), else
-- (1 - share) x burst rounded, 1 at least.
function M.reserve(burst, share)
  if share >= 1 then return 0 end
  return math.max(1, math.floor((1 - share) * burst + 0.5))
end

--- The figures of rate, burst and share in microseconds (whole), capped as
-- src/di_limiter.c caps them: { interval, tolerance, batch_interval,
-- batch_room, reserve }.  A call may start while the state is at most its
-- room (tolerance; batch_room) ahead of now, and moves it by its cost.
function M.figures(rate, burst, share)
  local slot = BOUNDS.max_slot * 1e6
  local interval = math.min(math.floor(1e6 / rate + 0.5), slot)
  local tolerance = math.min(math.floor((burst - 1) * interval + 0.5), BOUNDS.max_window * 1e6)
  local reserve = M.reserve(burst, share)
  local batch_interval = math.max(interval, math.min(math.floor(interval / share + 0.5), slot))
  -- the furthest ahead a batch may leave the state with reserve interactive calls still free
  local ceiling = tolerance + interval - reserve * interval
  return { interval = interval, tolerance = tolerance, batch_interval = batch_interval,
           batch_room = ceiling > batch_interval and ceiling - batch_interval or 0,
           reserve = reserve }
end

--- Whether the reserve holds with these figures: a batch call from an idle key leaves
-- `reserve` interactive calls free (burst >= reserve + 1/share, after the caps).  When
-- it does not, a batch call would push the shared state a whole batch slot ahead and
-- hold interactive calls: config.lua then makes batch calls interactive ones.
function M.holds(rate, burst, share)
  if share >= 1 then return true end
  local f = M.figures(rate, burst, share)
  return f.tolerance + f.interval - f.reserve * f.interval >= f.batch_interval
end

-- Slack for the rounding of seconds read back from nanoseconds.
local EPS = 1e-9

-- How many calls of cost may start now, one after the other, from a state a
-- seconds ahead, while each starts no more than room ahead.
local function calls(a, room, cost)
  if a > room + EPS then return 0 end
  return math.floor((room - a) / cost + EPS) + 1
end

--- What a state reads as: raw { ahead (seconds the state is ahead of now;
-- negative when idle), interval, tolerance, batch_interval, batch_room (seconds) }
-- -> { available, available_batch, wait, wait_batch, penalty }.  A state further
-- ahead than any call of these figures puts it (tolerance + a batch slot) was
-- pushed by a 429: the pause left is what passes the tolerance.
function M.view(raw)
  -- a state further ahead than any sharer may put it (a file from before a
  -- reboot, a Redis that answers garbage) is reset by the next call: it holds
  -- nothing, and is read as idle, not as a pause of years
  local a = raw.ahead
  if not (a > 0) or a > BOUNDS.max_lead then a = 0 end
  local pushed = a > raw.tolerance + raw.batch_interval + EPS
  return {
    available = calls(a, raw.tolerance, raw.interval),
    available_batch = calls(a, raw.batch_room, raw.batch_interval),
    wait = math.max(0, a - raw.tolerance),
    wait_batch = math.max(0, a - raw.batch_room),
    penalty = pushed and a - raw.tolerance or 0,
  }
end

return M
