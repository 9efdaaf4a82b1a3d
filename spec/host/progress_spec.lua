-- The progress line of a long job (cli/progress.lua) on a terminal of any
-- width: every count visible, the bar full only at the end.  (The host's
-- own module: Lua 5.4.)
local progress = require "dialoginsight.cli.progress"

local function line(width, st, total)
  local p = progress.new { tty = true, width = width, total = total or 1000 }
  p.started = 0
  return p:line(st, 10)
end

describe("progress", function()
  it("offers new and nothing for the specs only", function()
    local names = {}
    for k in pairs(progress) do names[#names + 1] = k end
    assert.are.same({ "new" }, names)
  end)

  local big = { rows = 123456, created = 120001, updated = 3001, rejected = 454, pos = 970 }

  for _, width in ipairs { 120, 80, 60, 40 } do
    it("keeps every count visible at " .. width .. " columns", function()
      local text = line(width, big)
      assert.is_true(#text <= width - 1, #text .. " columns: " .. text)
      for _, n in ipairs { "123456", "120001", "3001", "454" } do
        assert.truthy(text:find(n, 1, true), n .. " is missing from: " .. text)
      end
    end)
  end

  it("shows a full bar only when everything was read", function()
    local at97 = line(80, { rows = 1, created = 0, updated = 0, rejected = 0, pos = 999 })
    assert.truthy(at97:find("%.%]"), "99.9 % drew a full bar: " .. at97)
    assert.truthy(at97:find(" 99%", 1, true), at97)
    local done = line(80, { rows = 1, created = 0, updated = 0, rejected = 0, pos = 1000 })
    assert.is_nil(done:find(".]", 1, true), done)
    assert.truthy(done:find("100%", 1, true), done)
  end)
end)
