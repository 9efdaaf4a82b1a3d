-- Iterators raise on failure, like io.lines, and a failure reads as text
-- wherever Lua shows it, PUC-Rio Lua 5.1 included (issue 22, item 5;
-- docs/conventions.md).  No server: the fake pages of spec/support/fake_pages.lua
-- answer in process, and the scripts run by the interpreter fail against a
-- closed port.  Run under Lua 5.4, LuaJIT and Lua 5.1 (.busted).
local fake = require "support.fake_pages"
local runtime = require "support.runtime"
local di = require "dialoginsight"

local raised_form = require("support.raised").form

local function contacts(n)
  local list = {}
  for id = 1, n do list[id] = { idContact = id, f_City = "X" } end
  return list
end

-- A fake server whose call number `bad` answers HTTP 500.
local function failing_on(bad, records)
  local s = fake.new { records = records or contacts(30) }
  local transport = s.transport
  function s.transport(self)
    local t, n = transport(self), 0
    local post = t.post
    function t.post(tt, url, body)
      n = n + 1
      s.posts = n
      if n == bad then
        return { status = 500, seconds = 0, http_version = 1.1,
                 body = '{"Success":false,"ErrorCode":"ServerError","ErrorMessage":"boom"}' }
      end
      return post(tt, url, body)
    end
    return t
  end
  return s
end

describe("an iterator over a failing call", function()
  for _, case in ipairs {
    { "contacts:each", function(c) return c.contacts:each({ City = "X" }, { page_size = 10 }) end, "contacts.Get" },
    { "segments:each_contact", function(c) return c.segments:each_contact(1, { page_size = 10 }) end,
      "segments.GetContacts" },
    { "reports:opens", function(c) return c.reports:opens { page_size = 10 } end, "reports.GetOpens" },
  } do
    it(case[1] .. " raises the error object on a page after the first, then ends", function()
      local s = failing_on(2)
      local iter, state = case[2](s:client())
      local got = 0
      local ok, raised = pcall(function()
        for rec in iter do
          assert.is_table(rec)
          got = got + 1
        end
      end)
      assert.is_false(ok)
      assert.equal(10, got) -- the first page, yielded before the failure
      local err = state.failed
      assert.is_true(di.is_error(err), tostring(err))
      assert.equal("http", err.kind)
      assert.equal(500, err.status)
      assert.equal("string", type(err.message))
      assert.equal(raised_form(err), raised)
      local text = tostring(err)
      assert.truthy(text:find("dialoginsight " .. case[3] .. ": http", 1, true), text)
      assert.truthy(text:find("HTTP 500", 1, true), text)
      -- once failed, the iterator is over: no record after the error
      assert.is_nil(iter())
      assert.equal(2, s.posts) -- no call after the failed one
    end)
  end

  it("a failure found before the first call (a bad filter) raises at the first step", function()
    local iter, state = fake.new({ records = contacts(3) }):client().reports:opens { batch = 1.5 }
    local ok, raised = pcall(iter)
    assert.is_false(ok)
    assert.equal("validation", state.failed.kind)
    assert.equal(raised_form(state.failed), raised)
    assert.is_nil(iter())
  end)

  it("get and contacts still return nil, err on the same failure", function()
    local list, err = failing_on(2):client().contacts:get({ City = "X" }, { page_size = 10 })
    assert.is_nil(list)
    assert.is_true(di.is_error(err), tostring(err))
    assert.equal("http", err.kind)
    list, err = failing_on(1):client().segments:contacts(1)
    assert.is_nil(list)
    assert.equal("http", err and err.kind)
    assert.equal(30, #assert(fake.new { records = contacts(30) }:client().contacts:get { City = "X" }))
  end)

  it("an error raised by the loop's own body is not taken for a failure of the iterator", function()
    local iter, state = fake.new({ records = contacts(3) }):client().contacts:each { City = "X" }
    local ok, raised = pcall(function()
      for _ in iter do error("the caller's own bug", 0) end
    end)
    assert.is_false(ok)
    assert.equal("the caller's own bug", raised)
    assert.is_nil(state.failed)
  end)
end)

describe("di.assert", function()
  it("returns every value given when the first is true", function()
    local a, b, c = di.assert(1, nil, 3)
    assert.equal(1, a)
    assert.is_nil(b)
    assert.equal(3, c)
  end)

  it("raises the error object (its text under PUC-Rio Lua 5.1), and a plain message as given", function()
    local err = require("dialoginsight.errors").new { kind = "auth", message = "bad key", service = "contacts",
                                                      method = "Merge" }
    local ok, raised = pcall(di.assert, nil, err)
    assert.is_false(ok)
    assert.equal(raised_form(err), raised)
    ok, raised = pcall(di.assert, di.decode("{"))
    assert.is_false(ok)
    assert.equal(select(2, di.decode("{")), raised)
    ok, raised = pcall(di.assert, false)
    assert.is_false(ok)
    assert.truthy(tostring(raised):find("assertion failed!", 1, true))
  end)
end)

-- The interpreter's own report of a failure nobody catches: readable on
-- every runtime (PUC-Rio 5.1's reads no __tostring of a table).
describe("a script that fails, run by " .. runtime.bin .. " -e", function()
  local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
  local SETUP = [[local di = require "dialoginsight"
local client = di.new { key_id = 1, key = "not-the-key-of-anyone", project = 1, env = false,
  base_url = "https://127.0.0.1:1/webservices/ofc4/", retries = 0, strict = false, rate = false }
]]

  local function run(body)
    local p = assert(io.popen(runtime.lua .. " -e " .. q(SETUP .. body) .. " 2>&1; echo \"rc=$?\""))
    local out = p:read("*a")
    p:close()
    return out
  end

  local function readable(out, where)
    assert.truthy(out:find("^" .. runtime.bin .. ": dialoginsight " .. where .. ": network: "), out)
    assert.truthy(out:find("rc=1\n", 1, true), out)
    assert.falsy(out:find("attempt to index", 1, true), out)
    assert.falsy(out:find("error object is not a string", 1, true), out)
  end

  it("a README-like for loop prints what failed", function()
    readable(run [[for e in client.reports:clicks { batch = 3 } do print(e.Url) end]], "reports.GetClicks")
  end)

  it("di.assert of a failed call prints what failed", function()
    readable(run [[di.assert(client.contacts:merge { EMail = "ann@example.com" })]], "contacts.Merge")
  end)

  it("the key never shows in the report", function()
    local out = run [[for c in client.contacts:each { City = "X" } do print(c) end]]
    readable(out, "contacts.Get")
    assert.falsy(out:find("not-the-key-of-anyone", 1, true), out)
  end)
end)
