-- client.campaigns against the sandbox; the rates are checked against the
-- sandbox's raw events, read with plain client:call.
local di = require "dialoginsight"
local sbx = require "support.sandbox"
local H = require "client.resources.common"

local W = di.where

describe("campaigns", function()
  local c, message
  before_each(function()
    sbx.reset()
    c = H.client()
    message = assert(c.messages:create { name = "Cart", subject = "Your cart",
      sender_email = "shop@example.com", html = '<a href="https://shop.example.com/cart">cart</a>' })
  end)

  it("create returns an id; validation and API errors", function()
    local id = assert(c.campaigns:create { name = "Spec", message = message, channel = "email" })
    assert.is_number(id)
    assert.equal(0, c.campaigns:stats(id).Sent)
    local r, err = c.campaigns:create { channel = "Fax" }
    assert.is_nil(r)
    H.invalid(err, { "name", "channel", "message" })
    r, err = c.campaigns:create { name = "x", message = 9999 }
    assert.is_nil(r)
    assert.equal("api", err.kind)
    assert.equal("InvalidParameter", err.code)
  end)

  it("trigger sends an automated campaign to an idContact or a where", function()
    local id = assert(c.campaigns:create { name = "Cart", message = message, automated = true })
    assert.equal(1, c.campaigns:trigger(id, { contact = 1, params = { cart = "3 items", total = 42.5 } }))
    local montreal = 0
    for _, s in pairs(H.stored()) do if s.f_City == "Montréal" then montreal = montreal + 1 end end
    assert.equal(montreal, c.campaigns:trigger(id, { contact = { City = "Montréal" } }))
    local hist = assert(c.reports:history(1))
    assert.equal(message, hist[#hist].idMessage)
  end)

  it("trigger validates, and reports API errors", function()
    local id = assert(c.campaigns:create { name = "Cart", message = message, automated = true })
    local mark = sbx.mark()
    local r, err = c.campaigns:trigger(id, { params = { cart = {} } })
    assert.is_nil(r)
    H.invalid(err, { "contact", "params.cart" })
    r, err = c.campaigns:trigger(id, { contact = { Citi = "Paris" } })
    assert.is_nil(r)
    H.invalid(err, { "Citi" })
    assert.equal(0, #H.calls(mark, "campaigns.trigger"))
    local manual = assert(c.campaigns:create { name = "Manual", message = message })
    r, err = c.campaigns:trigger(manual, { contact = 1 })
    assert.is_nil(r)
    assert.equal("InvalidParameter", err.code)
  end)

  it("stats adds open and click rates that match the sandbox's events", function()
    sbx.reset { contacts = 300 }
    message = assert(c.messages:create { name = "Cart", subject = "Your cart",
      sender_email = "shop@example.com", html = '<a href="https://shop.example.com/cart">cart</a>' })
    local id = assert(c.campaigns:create { name = "Cart", message = message, automated = true })
    assert.equal(312, c.campaigns:trigger(id, { contact = W.not_null("EMail") }))
    local batches = assert(c:call("sendings", "GetBatches", { BatchFilter = { BatchFilterMode = "All" } })).Records
    local batch = batches[#batches].idBatch
    local function uniques(method)
      local r = assert(c:call("reports", method, { idBatch = batch, MaxRows = 100000 }))
      local set, n = {}, 0
      for _, e in ipairs(r.Records) do
        if not set[e.idContact] then set[e.idContact] = true; n = n + 1 end
      end
      return n
    end
    local opened, clicked = uniques("GetOpens"), uniques("GetClicks")
    local raw = assert(c:call("campaigns", "GetStatistics", { idCampaign = id })).Statistics
    assert.is_true(opened > 0 and clicked > 0 and raw.Delivered > opened)
    local s = assert(c.campaigns:stats(id))
    assert.equal(raw.Delivered, s.Delivered)
    assert.equal(opened, s.UniqueOpened)
    assert.equal(clicked, s.UniqueClicked)
    assert.near(opened / raw.Delivered, s.open_rate, 1e-12)
    assert.near(clicked / raw.Delivered, s.click_rate, 1e-12)
  end)

  it("stats is 0 without deliveries, and reports API errors", function()
    local id = assert(c.campaigns:create { name = "Idle", message = message, automated = true })
    local s = assert(c.campaigns:stats(id))
    assert.equal("Idle", s.name) -- the statistics' Name [assumed]: dashboards show names
    assert.equal(0, s.Delivered)
    assert.equal(0, s.open_rate)
    assert.equal(0, s.click_rate)
    local r, err = c.campaigns:stats(9999)
    assert.is_nil(r)
    assert.equal("api", err.kind)
    assert.has_error(function() c.campaigns:stats("1") end)
  end)
end)
