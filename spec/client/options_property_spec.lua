-- #property: a misspelled option never passes (issue 22, lua/dialoginsight/
-- options.lua).  Each scenario takes a public method (a client call, a
-- resource method, or di.new's settings), one of its names (read from its
-- own refusal, so that no list here can drift from the code), misspells it
-- by one edit, and passes it: the call must raise before anything reaches
-- the sandbox, naming the misspelling and suggesting a known name at least
-- as close to it as the one misspelled.  A name that is not an identifier (a key given as a name) must be
-- described, never shown.
local di = require "dialoginsight"
local config = require "dialoginsight.config"
local property = require "support.property"
local sbx = require "support.sandbox"

-- Edit distance, by memoized recursion: an oracle written apart from the
-- library's (errors.lua's closest).
local function distance(a, b)
  local memo = {}
  local function d(i, j)
    if i > #a then return #b - j + 1 end
    if j > #b then return #a - i + 1 end
    local k = i * 1000 + j
    if memo[k] == nil then
      local same = a:sub(i, i) == b:sub(j, j) and 0 or 1
      memo[k] = math.min(d(i + 1, j) + 1, d(i, j + 1) + 1, d(i + 1, j + 1) + same)
    end
    return memo[k]
  end
  return d(1, 1)
end

-- name, function(client, opts): each raises on an unknown option before a call.
local W = { EMail = "p@example.com" }
local METHODS = {
  { "client:call", function(c, o) return c:call("projects", "List", {}, o) end },
  { "client:call_many", function(c, o) return c:call_many({ { "projects", "List" } }, o) end },
  { "client:call_stream", function(c, o) return c:call_stream(function() end, function() end, o) end },
  { "contacts:merge", function(c, o) return c.contacts:merge(W, o) end },
  { "contacts:merge_many", function(c, o) return c.contacts:merge_many({ W }, o) end },
  { "contacts:each", function(c, o) return c.contacts:each(W, o) end },
  { "contacts:all", function(c, o) return c.contacts:all(o) end },
  { "contacts:get", function(c, o) return c.contacts:get(W, o) end },
  { "contacts:find", function(c, o) return c.contacts:find(W, o) end },
  { "contacts:delete", function(c, o) return c.contacts:delete(W, o) end },
  { "segments:list", function(c, o) return c.segments:list(o) end },
  { "segments:each_contact", function(c, o) return c.segments:each_contact(1, o) end },
  { "segments:contacts", function(c, o) return c.segments:contacts(1, o) end },
  { "segments:save", function(c, o) return c.segments:save({ name = "s", where = W }, o) end },
  { "campaigns:create", function(c, o) return c.campaigns:create({ name = "c", message = 1 }, o) end },
  { "campaigns:trigger", function(c, o) return c.campaigns:trigger(1, o) end },
  { "campaigns:stats", function(c, o) return c.campaigns:stats(1, o) end },
  { "sendings:send", function(c, o) return c.sendings:send(1, 2, o) end },
  { "sendings:send_batch", function(c, o) return c.sendings:send_batch(1, o) end },
  { "sendings:batches", function(c, o) return c.sendings:batches(o) end },
  { "messages:create", function(c, o) return c.messages:create({}, o) end },
  { "messages:get", function(c, o) return c.messages:get(1, o) end },
  { "reports:opens", function(c, o) return c.reports:opens(o) end },
  { "reports:clicks", function(c, o) return c.reports:clicks(o) end },
  { "reports:history", function(c, o) return c.reports:history(1, o) end },
  { "projects:list", function(c, o) return c.projects:list(o) end },
  { "projects:get", function(c, o) return c.projects:get(o) end },
  { "projects:fields", function(c, o) return c.projects:fields(o) end },
  { "table:merge", function(c, o) return c:table(9):merge({ a = 1 }, o) end },
  { "table:merge_many", function(c, o) return c:table(9):merge_many({ { a = 1 } }, o) end },
  { "table:get", function(c, o) return c:table(9):get({ a = 1 }, o) end },
  { "table:delete", function(c, o) return c:table(9):delete({ a = 1 }, o) end },
}

local LETTERS = "abcdefghijklmnopqrstuvwxyz_"

-- name misspelled by one edit: a letter dropped, added, changed or two swapped.
local function misspell(rng, name)
  local i = rng:int(1, #name)
  local kind = rng:int(1, 4)
  local c = LETTERS:sub(rng:int(1, #LETTERS), rng:int(1, #LETTERS)):sub(1, 1)
  if kind == 1 and #name > 3 then return name:sub(1, i - 1) .. name:sub(i + 1) end
  if kind == 2 then return name:sub(1, i) .. c .. name:sub(i + 1) end
  if kind == 3 then return name:sub(1, i - 1) .. c .. name:sub(i + 1) end
  if i < #name then return name:sub(1, i - 1) .. name:sub(i + 1, i + 1) .. name:sub(i, i) .. name:sub(i + 2) end
  return name .. c
end

describe("options #property", function()
  local client, names
  setup(function()
    client = di.new(sbx.settings())
    names = {}
    for _, m in ipairs(METHODS) do
      local ok, err = pcall(m[2], client, { zzqqxxyy = 1 })
      assert.is_false(ok, m[1])
      local list = tostring(err):match("its options: (.-)$")
      assert.truthy(list, m[1] .. ": " .. tostring(err))
      names[m[1]] = {}
      for n in list:gmatch("[%w_]+") do names[m[1]][#names[m[1]] + 1] = n end
    end
    names["di.new"] = {}
    -- di.new's settings (the webhook receiver's, home = "webhooks", are not its own)
    for _, def in ipairs(config.SETTINGS) do
      if not def.home then names["di.new"][#names["di.new"] + 1] = def.name end
    end
  end)
  teardown(function() if client then client:close() end end)

  it("refuses every misspelled name with the closest known name, before any call", function()
    local all = {}
    for _, m in ipairs(METHODS) do all[#all + 1] = m end
    all[#all + 1] = { "di.new", function(_, o)
      local s = sbx.settings()
      for k, v in pairs(o) do s[k] = v end
      return di.new(s)
    end }
    local mark = sbx.mark()
    property.check("options-misspelled", { scenarios = 3000, seconds = 10 }, function(rng)
      local m = rng:pick(all)
      local known = names[m[1]]
      local set = {}
      for _, n in ipairs(known) do set[n] = true end
      local name = rng:pick(known)
      local bad = misspell(rng, name)
      if set[bad] then return true end -- another real name: not a misspelling
      local ok, err = pcall(m[2], client, { [bad] = rng:pick { true, 1, "x", {} } })
      err = tostring(err)
      if ok then return false, m[1] .. " took '" .. bad .. "' (from " .. name .. ")" end
      if not err:find("'" .. bad .. "'", 1, true) then return false, m[1] .. ": " .. err end
      local guess = err:match("did you mean '([%w_]+)'")
      -- (a swap is two edits: the guess is as close as the name misspelled, or closer)
      if not guess or not set[guess] or distance(bad, guess) > distance(bad, name) then
        return false, m[1] .. " for '" .. bad .. "' (from " .. name .. "): " .. err
      end
      return true
    end)
    assert.are.same({}, sbx.log(mark), "something reached the sandbox")
  end)

  it("never shows a name that is not an identifier", function()
    local mark = sbx.mark()
    property.check("options-hostile-names", { scenarios = 2000, seconds = 8 }, function(rng)
      local m = rng:pick(METHODS)
      local bytes = {}
      for i = 1, rng:int(21, 64) do bytes[i] = string.char(rng:int(33, 126)) end
      local name = table.concat(bytes)
      local ok, err = pcall(m[2], client, { [name] = 1 })
      err = tostring(err)
      if ok then return false, m[1] .. " took a hostile name" end
      if err:find(name, 1, true) then return false, m[1] .. " showed the name: " .. err end
      if not err:find("(a string of " .. #name .. " bytes)", 1, true) then return false, err end
      return true
    end)
    assert.are.same({}, sbx.log(mark), "something reached the sandbox")
  end)
end)
