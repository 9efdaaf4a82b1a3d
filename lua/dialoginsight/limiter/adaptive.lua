--- A limiter backend wrapped so that this process adapts its own rate to the server's limit.
local core = require "dialoginsight.core"

local M = {}

-- Adapting to the server's own limit (docs/limiter.md) -----------------------------
-- A 429 pauses every sharer, but a rate above the server's would meet the limit
-- again after each pause; so this process also lowers its own rate, once per pause
-- (the 429s of one burst are one signal): by half when the 429 came soon after the
-- last pause, else by a tenth.  Without a 429 it climbs back, quickly to just under
-- the rate of the last 429, then slowly.  Per process: the shared state holds only
-- the arrival time.
M.ADAPT = { halve_within = 1, cut = 0.9, fast = 0.10, slow = 0.005, near = 0.95, floor = 1 }

local Adaptive = {}
Adaptive.__index = Adaptive

--- Wraps a backend (acquire, penalize, configure, close) limited
-- to rate calls/s with burst; now: the clock (core.now by default).
function M.new(lim, rate, burst, now)
  now = now or core.now
  local t = now()
  return setmetatable({ lim = lim, max = rate, rate = rate, burst = burst, now = now,
                        ceiling = rate, quiet_from = t, resumed = t, until_t = 0,
                        penalties = 0 }, Adaptive)
end

function Adaptive:set(rate)
  rate = math.max(M.ADAPT.floor, math.min(self.max, rate))
  if rate ~= self.rate then
    self.rate = rate
    self.lim:configure(rate, math.max(1, math.min(self.burst, rate)))
  end
end

--- 0 when a call may start now (its slot taken), else seconds to wait;
-- budget: the most a shared backend may spend deciding (limiter/redis.lua);
-- priority: "interactive" (nil) or "batch" (docs/limiter.md).
function Adaptive:acquire(budget, priority)
  if self.rate < self.max then
    local t = self.now()
    local quiet = t - self.quiet_from
    if quiet >= 0.1 then
      local a = M.ADAPT
      local step = self.rate < a.near * self.ceiling and a.fast or a.slow
      local r = self.rate * (1 + step) ^ quiet
      if step == a.fast then r = math.min(r, a.near * self.ceiling) end
      self:set(r)
      self.quiet_from = t
    end
  end
  return self.lim:acquire(budget, priority)
end

--- The backend's state (its status), with the configured rate and this
-- process's adapted one (rate_now).
function Adaptive:status()
  local st, why = self.lim:status()
  if st then st.rate, st.rate_now = self.max, self.rate end
  return st, why
end

--- A 429: every sharer waits `seconds`; this process slows down.
function Adaptive:penalize(seconds, budget)
  local t = self.now()
  self.lim:penalize(seconds, budget)
  self.penalties = self.penalties + 1
  if t >= self.until_t then
    local a = M.ADAPT
    if t - self.resumed < a.halve_within then
      self:set(self.rate * 0.5)
      self.ceiling = self.rate * 1.2 -- the limit is somewhere above: probe it slowly
    else
      self.ceiling = self.rate
      self:set(self.rate * a.cut)
    end
  end
  self.until_t = t + seconds
  self.resumed, self.quiet_from = self.until_t, self.until_t
end

function Adaptive:close() return self.lim:close() end

function Adaptive:configure(rate, burst)
  self.max, self.ceiling, self.burst = rate, rate, burst or self.burst
  self.rate = rate
  self.lim:configure(rate, burst)
end

return M
