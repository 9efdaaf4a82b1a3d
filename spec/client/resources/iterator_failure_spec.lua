-- Iterators raise the error object when a call fails (issue 22, item 5),
-- on the real path: the sandbox answers the first page, then a fault (a
-- 500, a dropped connection) hits the next.  spec/client/raise_spec.lua
-- holds the cases that need no server, Lua 5.1's included.
local sbx = require "support.sandbox"
local raised = require "support.raised"
local runtime = require "support.runtime"
local H = require "client.resources.common"
local di = require "dialoginsight"
local W = di.where

local ITERATORS = {
  { "contacts:each", "contacts.get", function(c) return c.contacts:each(W.not_null("EMail"), { page_size = 5 }) end },
  { "contacts:all", "contacts.get", function(c) return c.contacts:all { page_size = 5 } end },
  { "segments:each_contact", "segments.getcontacts",
    function(c) return c.segments:each_contact(1, { page_size = 5 }) end },
  { "reports:opens", "reports.getopens", function(c) return c.reports:opens { page_size = 5 } end },
  { "reports:clicks", "reports.getclicks", function(c) return c.reports:clicks { page_size = 5 } end },
}

local FAULTS = {
  { "a 500", { type = "status", status = 500 }, "http" },
  { "a dropped connection", { type = "drop" }, "network" },
}

describe("an iterator whose call fails on a page after the first", function()
  before_each(function() sbx.reset(); sbx.clear_faults() end)
  after_each(function() sbx.clear_faults() end)

  for _, i in ipairs(ITERATORS) do
    for _, f in ipairs(FAULTS) do
      it(i[1] .. " raises the error object on " .. f[1] .. ", and then ends", function()
        local c = H.client { retries = 0 }
        local iter, state = i[3](c)
        local got = 0
        local err = raised.failure(state, function()
          for rec in iter do
            assert.is_table(rec)
            got = got + 1
            if got == 1 then
              local fault = { method = i[2] }
              for k, v in pairs(f[2]) do fault[k] = v end
              sbx.faults { fault }
            end
          end
        end)
        assert.is_true(di.is_error(err), tostring(err))
        assert.equal(f[3], err.kind, tostring(err))
        assert.equal("string", type(err.message))
        if f[3] == "http" then assert.equal(500, err.status) end
        assert.equal(5, got) -- the first page, yielded before the failure
        assert.is_nil(iter())
        c:close()
      end)
    end
  end

  it("contacts:get, on the same failure, returns nil, err", function()
    sbx.faults { { type = "status", status = 500, method = "contacts.get" } }
    local list, err = H.client({ retries = 0 }).contacts:get(W.not_null("EMail"), { page_size = 5 })
    assert.is_nil(list)
    assert.equal("http", err and err.kind, tostring(err))
  end)
end)

describe("the README's loop over clicks, when the call fails", function()
  after_each(function() sbx.clear_faults() end)

  it("prints what failed, not 'attempt to index a boolean value'", function()
    sbx.faults { { type = "status", status = 500, method = "reports.getclicks" } }
    local script = [[local di = require "dialoginsight"
local client = di.new { retries = 0 }
for e in client.reports:clicks{ batch = 3 } do print(e.Url) end]]
    local p = assert(io.popen(runtime.lua .. " -e '" .. script:gsub("'", "'\\''") .. "' 2>&1; echo rc=$?"))
    local out = p:read("*a")
    p:close()
    assert.truthy(out:find("^" .. runtime.bin .. ": dialoginsight reports.GetClicks: http ServerError: "), out)
    assert.truthy(out:find("HTTP 500", 1, true), out)
    assert.truthy(out:find("rc=1\n", 1, true), out)
    assert.falsy(out:find("attempt to index", 1, true), out)
    assert.falsy(out:find(sbx.env("DI_KEY"), 1, true), out)
  end)
end)
