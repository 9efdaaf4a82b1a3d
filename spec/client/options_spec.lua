-- One option checker (issue 22, lua/dialoginsight/options.lua): settings,
-- call options, resource options and retry members are refused by name with
-- the closest known one, values by what they must be, and the raise points
-- at the caller's line.  Nothing reaches the sandbox: every case raises
-- before a call.
local di = require "dialoginsight"
local sbx = require "support.sandbox"

local THIS = "options_spec.lua:"

-- The message fn raises, which must hold every needle.
local function raises(fn, ...)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected a raise")
  err = tostring(err)
  for _, needle in ipairs { ... } do
    assert.truthy(err:find(needle, 1, true), err .. "\n  (expected: " .. needle .. ")")
  end
  return err
end

describe("options: did you mean", function()
  local client
  setup(function() client = di.new(sbx.settings()) end)
  teardown(function() if client then client:close() end end)

  it("for a setting", function()
    raises(function() di.new(sbx.settings { tiemout = 3 }) end,
      "setting 'tiemout' is not a known setting (did you mean 'timeout'?)")
    raises(function() di.new(sbx.settings { limiter_dri = "/tmp" }) end, "(did you mean 'limiter_dir'?)")
  end)

  it("for a call option", function()
    raises(function() client:call("projects", "List", {}, { timout = 1 }) end,
      "client:call has no option 'timout' (did you mean 'timeout'?)", "its options: concurrency, deadline")
    raises(function() client:call_many({ { "projects", "List" } }, { concurency = 2 }) end,
      "client:call_many has no option 'concurency' (did you mean 'concurrency'?)")
    raises(function() client:call_stream(function() end, function() end, { stpo = print }) end,
      "(did you mean 'stop'?)")
  end)

  it("for a resource option", function()
    raises(function() client.contacts:get({ EMail = "x@example.com" }, { limt = 1 }) end,
      "contacts:get has no option 'limt' (did you mean 'limit'?)")
    raises(function() client.contacts:merge({ EMail = "x@example.com" }, { upadte = false }) end,
      "contacts:merge has no option 'upadte' (did you mean 'update'?)")
    raises(function() client:table(501):merge_many({}, { batchsize = 3 }) end,
      "table:merge_many has no option 'batchsize' (did you mean 'batch_size'?)")
  end)

  it("for a member of a retry policy, as a setting or an option", function()
    raises(function() di.new(sbx.settings { retries = { retires = 3 } }) end,
      "setting 'retries' has no member 'retires' (did you mean 'retries'?)")
    raises(function() client:call("projects", "List", {}, { retries = { cpa = 1 } }) end,
      "option 'retries' has no member 'cpa' (did you mean 'cap'?)")
  end)

  it("names a bad value of a resource option the way settings are named", function()
    raises(function() client.contacts:get({ EMail = "x@example.com" }, { limit = 0 }) end,
      "option 'limit' must be a positive integer (got 0)")
    raises(function() client.contacts:merge_many({}, { batch_size = 1.5 }) end,
      "option 'batch_size' must be a positive integer (got 1.5)")
    raises(function() client.segments:each_contact(1, { page_size = math.huge }) end,
      "option 'page_size' must be a positive integer (got inf)")
    raises(function() client.projects:list { timeout = 0 } end, "option 'timeout' must be a number of seconds")
    raises(function() client:call_many({}, { concurrency = 2^40 }) end,
      "option 'concurrency' must be a whole number of calls from 1 to 2^31 (got 1099511627776")
  end)

  it("never echoes a name that is not an identifier (it may be the key)", function()
    local key = sbx.env("DI_KEY")
    local err = raises(function() client:call("projects", "List", {}, { [key] = 1 }) end,
      "client:call has no option (a string of " .. #key .. " bytes)")
    assert.falsy(err:find(key, 1, true), err)
    err = raises(function() client.contacts:merge({ EMail = "x@example.com" }, { [key] = true }) end,
      "has no option (a string of")
    assert.falsy(err:find(key, 1, true), err)
    -- a key of letters and digits reads as an identifier: its length gives it away
    local alnum = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
    err = raises(function() client.projects:list { [alnum] = 1 } end, "(a string of 32 bytes)")
    assert.falsy(err:find(alnum, 1, true), err)
    err = raises(function() di.new(sbx.settings { [alnum] = 1 }) end, "a string of 32 bytes")
    assert.falsy(err:find(alnum, 1, true), err)
  end)

  it("raises at the caller's line, whichever public method checks", function()
    local cases = {
      function() client:call("projects", "List", {}, { timout = 1 }) end,
      function() client:call("projects", "List", {}, { retries = -1 }) end,
      function() client:call("bad name", "List") end,
      function() client:call_many({ { "projects", "List" } }, { timeout = 0 }) end,
      function() client:call_many({ { "projects", 7 } }) end,
      function() client.contacts:get({ EMail = "x@example.com" }, { limt = 1 }) end,
      function() client.contacts:merge_many({ 7 }) end,
      function() client.reports:opens { page_size = 0 } end,
      function() client:table(501):merge_many({ 7 }) end,
    }
    for i, fn in ipairs(cases) do
      local _, err = pcall(fn)
      assert.truthy(tostring(err):find(THIS, 1, true), "case " .. i .. ": " .. tostring(err))
    end
  end)
end)
