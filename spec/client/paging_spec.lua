-- Paging that cannot loop or repeat (resources/pager.lua), against fake
-- replies in each way a server may treat MaxRows/StartRow: honoured,
-- ignored (every match each time), another page size than asked, a page
-- repeated, TotalRecords left out, and replies that contradict each other.
-- spec/client/resources/modes_spec.lua runs the same against the sandbox's
-- paging modes.
local core = require "dialoginsight.core"
local config = require "dialoginsight.config"
local client_mod = require "dialoginsight.client"

local N = 150 -- contacts the fake server holds

-- A transport that answers contacts.Get from N records as `mode` says.
local function fake(mode)
  local t = { calls = 0 }
  function t.now() return 0 end
  function t.sleep() end
  function t.post(_, url, body)
    t.calls = t.calls + 1
    local req = core.decode(body)
    local max, start = req.MaxRows or N, req.StartRow or 0
    if mode == "ignored" then max, start = N, 0 end
    if mode == "fixed" then max = 50 end
    if mode == "repeat" or mode == "shuffled-ids" then start = 0 end
    local recs = {}
    for id = start + 1, math.min(N, start + max) do
      recs[#recs + 1] = { idContact = id, f_EMail = id .. "@example.com" }
    end
    if mode == "shuffled-ids" then -- new ids on every page, forever
      for i = 1, #recs do recs[i].idContact = t.calls * 1000 + i end
    end
    local r = { Success = true, Records = core.array(recs), idRequest = t.calls }
    if mode ~= "no-total" and mode ~= "shuffled-ids" then r.TotalRecords = N end
    if mode == "lying-total" then r.TotalRecords = 10 end
    assert(url:find("contacts.ashx?method=Get", 1, true), url)
    return { status = 200, body = core.encode(r), seconds = 0, http_version = 1.1 }
  end
  return t
end

local function client(mode)
  local t = fake(mode)
  local s = config.resolve { key_id = 1, key = "paging-spec-key", project = 1,
                             base_url = "https://fake.invalid/", strict = false, rate = false }
  return client_mod.new(s, t), t
end

local function ids(list)
  local seen, out = {}, {}
  for _, c in ipairs(list) do
    assert.is_nil(seen[c.idContact], "idContact " .. tostring(c.idContact) .. " came twice")
    seen[c.idContact] = true
    out[#out + 1] = c.idContact
  end
  return out
end

describe("paging", function()
  for _, mode in ipairs { "honoured", "ignored", "fixed", "repeat", "no-total" } do
    it("yields every record once when the server's paging is " .. mode, function()
      local c, t = client(mode)
      local list = assert(c.contacts:get({ City = "X" }, { page_size = 40 }))
      local got = ids(list)
      if mode == "repeat" then
        -- the server serves page 1 whatever StartRow says: 40 records, then nothing new
        assert.equal(40, #got)
      else
        assert.equal(N, #got)
      end
      assert.is_true(t.calls <= N / 40 + 3, t.calls .. " calls")
    end)
  end

  it("honours limit when the server ignores MaxRows (1,000 asked, 150 distinct exist)", function()
    local c, t = client("ignored")
    local list = assert(c.contacts:get({ City = "X" }, { limit = 1000 }))
    assert.equal(N, #ids(list))
    assert.equal(1, t.calls) -- everything at once, and TotalRecords says that was all
    list = assert(c.contacts:get({ City = "X" }, { limit = 7 }))
    assert.equal(7, #ids(list))
  end)

  it("never runs forever: each() over a server that ignores paging ends", function()
    local c, t = client("ignored")
    local n = 0
    for rec, err in c.contacts:each({ City = "X" }) do
      assert.truthy(rec, tostring(err))
      n = n + 1
      assert.is_true(n <= N, "more records than exist")
    end
    assert.equal(N, n)
    assert.is_true(t.calls <= 3)
  end)

  it("stops on a protocol error when a page holds more than TotalRecords says", function()
    local c = client("lying-total")
    local list, err = c.contacts:get({ City = "X" }, { page_size = 40 })
    assert.is_nil(list)
    assert.equal("protocol", err.kind)
    assert.truthy(tostring(err):find("TotalRecords", 1, true), tostring(err))
  end)

  it("bounds the calls of one iteration (max_calls) when every page brings new ids", function()
    local c, t = client("shuffled-ids")
    local list, err = c.contacts:get({ City = "X" }, { page_size = 40, max_calls = 25 })
    assert.is_nil(list)
    assert.equal("protocol", err.kind)
    assert.equal(25, t.calls)
  end)
end)
