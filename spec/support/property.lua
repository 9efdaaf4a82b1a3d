--- Property tests: a promise checked against a randomized adversary.
--
--   local property = require "support.property"
--   property.check("iteration", { scenarios = 200 }, function(rng, n)
--     ... build a scenario from rng, run it ...
--     return ok, "what went wrong" -- or raise
--   end)
--
-- Each scenario draws from a generator of its own, seeded from the run's
-- seed and the scenario's number, so one scenario replays alone:
--   DI_PROPERTY_SEED=S DI_PROPERTY_SCENARIO=N busted ...
-- The run's seed is printed before the first scenario and in every failure.
-- DI_PROPERTY_SCALE multiplies the scenario counts (`make soak` raises it);
-- DI_PROPERTY_SEED fixes the seed.  The generator is Park-Miller (exact in
-- doubles), so a seed replays the same scenarios under Lua 5.4, 5.1 and
-- LuaJIT alike.
local M = {}

local MOD = 2147483647

local Rng = {}
Rng.__index = Rng

local function new_rng(seed)
  local x = math.floor(seed) % MOD
  if x <= 0 then x = x + MOD - 1 end
  return setmetatable({ x = x }, Rng)
end

--- A float in [0, 1).
function Rng:float()
  self.x = (self.x * 16807) % MOD
  return (self.x - 1) / (MOD - 1)
end

--- An integer in [a, b].
function Rng:int(a, b)
  return a + math.floor(self:float() * (b - a + 1))
end

--- true with probability p.
function Rng:chance(p) return self:float() < p end

--- One element of a list.
function Rng:pick(list) return list[self:int(1, #list)] end

--- The list, shuffled in place (and returned).
function Rng:shuffle(list)
  for i = #list, 2, -1 do
    local j = self:int(1, i)
    list[i], list[j] = list[j], list[i]
  end
  return list
end

--- A generator of one's own: new_rng(seed), for a spec that needs one
-- outside check().
M.rng = new_rng

local function env_number(name)
  local v = os.getenv(name)
  if v == nil or v == "" then return nil end
  return tonumber(v) or error("spec/support/property.lua: " .. name .. " must be a number, got " .. v)
end

--- The seed of this process's runs: DI_PROPERTY_SEED, else one drawn from
-- the clock.
function M.seed()
  if not M._seed then
    M._seed = env_number("DI_PROPERTY_SEED")
      or (os.time() * 1000 + math.floor((os.clock() * 1e6) % 1000)) % (MOD - 1) + 1
  end
  return M._seed
end

--- How many scenarios a count becomes under DI_PROPERTY_SCALE.
function M.scaled(n)
  return math.max(1, math.floor(n * (env_number("DI_PROPERTY_SCALE") or 1)))
end

-- The seed of scenario n of a run seeded with seed.
local function scenario_seed(seed, n)
  return (seed * 7919 + n * 104729) % (MOD - 1) + 1
end

--- Runs the scenarios of one property: fn(rng, n) returns true, or false
-- (or nil) and a description of the violation, or raises.  opts.scenarios
-- and opts.seconds, a budget after which no new scenario starts (both
-- scaled by DI_PROPERTY_SCALE; the count run is printed).  Raises on the first
-- violation, naming the seed and the scenario; returns the number run.
-- DI_PROPERTY_SCALE scales the budget as it scales the count.
function M.check(name, opts, fn)
  local seed = M.seed()
  local total = M.scaled(opts.scenarios or 100)
  local seconds = opts.seconds and opts.seconds * (env_number("DI_PROPERTY_SCALE") or 1)
  local only = env_number("DI_PROPERTY_SCENARIO")
  local started = os.time()
  local run = 0
  local first, last = only or 1, only or total
  for n = first, last do
    if seconds and only == nil and os.time() - started >= seconds and run > 0 then break end
    run = run + 1
    local ok, okv, why = pcall(fn, new_rng(scenario_seed(seed, n)), n)
    if not ok or not okv then
      local msg = not ok and tostring(okv) or tostring(why or "the property does not hold")
      error(("property %s broken: seed %d, scenario %d of %d: %s\nreplay: DI_PROPERTY_SEED=%d "
        .. "DI_PROPERTY_SCENARIO=%d"):format(name, seed, n, total, msg, seed, n), 0)
    end
  end
  io.stdout:write(("\nproperty %s: seed %d, %d scenarios, none broke it (DI_PROPERTY_SEED=%d replays)\n")
    :format(name, seed, run, seed))
  io.stdout:flush()
  return run
end

return M
