-- The property harness itself (spec/support/property.lua): a seed replays
-- the same scenarios on every runtime, and a broken property is reported
-- with the seed and the scenario that broke it.
local property = require "support.property"

describe("property harness", function()
  it("draws the same numbers from a seed on every runtime", function()
    local r = property.rng(42)
    local got = {}
    for i = 1, 5 do got[i] = r:int(1, 1000000) end
    -- Park-Miller from 42: fixed values, the same under Lua 5.4, 5.1 and LuaJIT
    assert.same({ 329, 524588, 735424, 263306, 376224 }, got)
  end)

  it("reports the seed and the scenario of a violation, and stops there", function()
    local seen = 0
    local ok, err = pcall(property.check, "planted", { scenarios = 50 }, function(rng, n)
      seen = seen + 1
      if n == 7 then return false, "planted at " .. rng:int(1, 9) end
      return true
    end)
    assert.is_false(ok)
    assert.equal(7, seen)
    assert.matches("property planted broken: seed %d+, scenario 7 of %d+: planted at %d", err)
    assert.matches("DI_PROPERTY_SEED=%d+ DI_PROPERTY_SCENARIO=7", err)
  end)

  it("reports an error raised by a scenario as a violation", function()
    local ok, err = pcall(property.check, "raising", { scenarios = 3 }, function(_, n)
      if n == 2 then error("boom") end
      return true
    end)
    assert.is_false(ok)
    assert.matches("scenario 2 of %d+: .*boom", err)
  end)
end)
