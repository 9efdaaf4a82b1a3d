-- Seeded pseudo-random generator: Lehmer / Park-Miller "minimal standard"
-- (x = x * 48271 mod 2^31-1). Every intermediate fits in 2^53, so it gives the
-- same sequence under LuaJIT (doubles) and Lua 5.4 (integers): results repeat for
-- a given seed on any machine.
local floor = math.floor
local M = {}
M.__index = M

local MOD = 2147483647

local function fix(seed)
  seed = floor(tonumber(seed) or 1) % MOD
  if seed <= 0 then seed = seed + MOD - 1 end
  if seed == 0 then seed = 1 end
  return seed
end

-- new(seed [, stream]) -> generator. `stream` derives an independent sequence
-- (e.g. one per batch) from the same seed.
function M.new(seed, stream)
  local s = fix(seed)
  if stream then s = fix(s * 69069 + floor(stream) * 1000003 + 12345) end
  local g = setmetatable({ x = s }, M)
  g:next(); g:next()
  return g
end

function M:next()
  local x = (self.x * 48271) % MOD
  self.x = x
  return x
end

-- float in [0, 1)
function M:float()
  return (self:next() - 1) / (MOD - 1)
end

-- integer in [lo, hi]
function M:int(lo, hi)
  return lo + floor(self:float() * (hi - lo + 1))
end

function M:chance(p)
  return self:float() < p
end

function M:pick(list)
  return list[self:int(1, #list)]
end

return M
