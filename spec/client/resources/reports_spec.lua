-- client.reports against the sandbox's seeded events; expectations come
-- from plain client:call on the same methods.
local sbx = require "support.sandbox"
local H = require "client.resources.common"
local di = require "dialoginsight"
local raised = require "support.raised"

describe("reports", function()
  local c
  before_each(function()
    sbx.reset()
    c = H.client()
  end)

  local function raw(method, params)
    params.MaxRows = 100000
    return assert(c:call("reports", method, params)).Records
  end

  it("opens pages through every event, several pages deep", function()
    local all = raw("GetOpens", {})
    assert.is_true(#all >= 12)
    local size = math.floor(#all / 3)
    local mark = sbx.mark()
    local n = 0
    for e in c.reports:opens { page_size = size } do
      n = n + 1
      assert.equal(all[n].idContact, e.idContact)
      assert.equal(all[n].dtEvent, e.dtEvent)
    end
    assert.equal(#all, n)
    -- each page after the first starts at the last event of the one before,
    -- and the one with fewer events than the first ends the iteration
    assert.equal(math.floor((#all - 1) / (size - 1)) + 1, #H.calls(mark, "reports.getopens"))
  end)

  it("opens and clicks filter by batch, message and date range", function()
    local n = 0
    for e in c.reports:opens { batch = 3 } do
      n = n + 1
      assert.equal(3, e.idBatch)
    end
    assert.equal(#raw("GetOpens", { idBatch = 3 }), n)
    local want = raw("GetClicks", { dtFrom = "2024.03.01", dtTo = "2024.03.10", idMessage = 1 })
    local got = {}
    for e in c.reports:clicks { from = { year = 2024, month = 3, day = 1 }, to = "2024-03-10", message = 1 } do
      assert.is_string(e.Url)
      assert.is_true(e.dtEvent >= "2024.03.01" and e.dtEvent <= "2024.03.10 23:59:59")
      got[#got + 1] = e
    end
    assert.equal(#want, #got)
  end)

  it("opens and clicks raise the error object for a bad filter or an API error, and then end", function()
    local iter, state = c.reports:opens { from = "last week", batch = 1.5 }
    H.invalid(raised.failure(state, iter), { "from", "batch" })
    assert.is_nil(iter())
    iter, state = H.noperm().reports:clicks()
    local err = raised.failure(state, iter)
    assert.is_true(di.is_error(err), tostring(err))
    assert.equal("auth", err.kind)
    assert.is_nil(iter())
  end)

  it("history returns a contact's mailings; validation and API errors", function()
    local h = assert(c.reports:history(1))
    local want = assert(c:call("reports", "GetContactHistory", { idContact = 1 })).Records
    assert.is_true(#h >= 1)
    assert.same(want, h)
    local r, err = c.reports:history(0)
    assert.is_nil(r)
    H.invalid(err, { "idContact" })
    r, err = H.noperm().reports:history(1)
    assert.is_nil(r)
    assert.equal("auth", err.kind)
  end)
end)
