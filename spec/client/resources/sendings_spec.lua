-- client.sendings against the sandbox.
local di = require "dialoginsight"
local fields = require "dialoginsight.records.fields"
local sbx = require "support.sandbox"
local H = require "client.resources.common"

describe("sendings", function()
  local c, message
  before_each(function()
    sbx.reset()
    c = H.client()
    message = assert(c.messages:create { name = "Hi", subject = "Hi",
      sender_email = "news@example.com", html = "<p>Hi</p>" })
  end)

  it("send goes through SendSingle2 for an idContact, SendSingle for a where", function()
    local mark = sbx.mark()
    assert.equal(1, c.sendings:send(message, 2, { params = { code = "SPRING", n = 3 } }))
    assert.equal(1, #H.calls(mark, "sendings.sendsingle2"))
    local paris = 0
    for _, s in pairs(H.stored()) do if s.f_City == "Paris" then paris = paris + 1 end end
    assert.equal(paris, c.sendings:send(message, { City = "Paris" }))
    assert.equal(1, #H.calls(mark, "sendings.sendsingle"))
    assert.equal(paris, c.sendings:send(message, di.where.eq("City", "Paris"), { params = { a = "b" } }))
    assert.equal(2, #H.calls(mark, "sendings.sendsingle2"))
  end)

  it("send validates before sending", function()
    local mark = sbx.mark()
    local r, err = c.sendings:send(message, nil, { params = { x = {} } })
    assert.is_nil(r)
    H.invalid(err, { "contact", "params.x" })
    r, err = c.sendings:send(message, { Cty = "Paris" })
    assert.is_nil(r)
    H.invalid(err, { "Cty" })
    assert.equal(0, #H.calls(mark, "sendings.sendsingle") + #H.calls(mark, "sendings.sendsingle2"))
    assert.has_error(function() c.sendings:send("12", 1) end)
  end)

  it("send reports API errors, and is not retried once it may have been sent", function()
    local r, err = c.sendings:send(9999, 1)
    assert.is_nil(r)
    assert.equal("api", err.kind)
    assert.equal("InvalidParameter", err.code)
    sbx.faults { { type = "status", status = 503, next = 1, after_processing = true } }
    local mark = sbx.mark()
    r, err = c.sendings:send(message, 1)
    assert.is_nil(r)
    assert.equal("unknown", err.outcome)
    assert.equal(1, #H.calls(mark, "sendings.sendsingle2"))
  end)

  it("send_batch sends to segments now, or plans a sending to all", function()
    local seg = {}
    for _, id in ipairs { 1, 2 } do
      for _, x in ipairs(assert(c.segments:contacts(id))) do seg[x.idContact] = true end
    end
    local union = 0
    for _ in pairs(seg) do union = union + 1 end
    local b = assert(c.sendings:send_batch(message, { segments = { 1, 2 } }))
    local list = assert(c.sendings:batches { min = b, max = b })
    assert.equal(1, #list)
    assert.equal(union, list[1].ContactCount)
    assert.equal(message, list[1].idMessage)

    local at = os.date("*t", os.time() + 30 * 86400)
    local planned = assert(c.sendings:send_batch(message, { all = true, at = at }))
    list = assert(c.sendings:batches { min = planned })
    assert.equal(planned, list[1].idBatch)
    assert.equal("Scheduled", list[1].Status)
    assert.equal(fields.datetime(at), list[1].dtLaunch)
    assert.equal(#assert(c.contacts:get(di.where.not_null("EMail"))), list[1].ContactCount)
  end)

  it("send_batch validates, and reports API errors", function()
    local mark = sbx.mark()
    for _, opts in ipairs { {}, { all = true, segments = { 1 } }, { segments = {} } } do
      local r, err = c.sendings:send_batch(message, opts)
      assert.is_nil(r)
      H.invalid(err, { "segments" })
    end
    local r, err = c.sendings:send_batch(message, { all = true, at = "2024-02-30 10:00" })
    assert.is_nil(r)
    H.invalid(err, { "at" })
    assert.equal(0, #H.calls(mark, "sendings.sendbatch"))
    r, err = c.sendings:send_batch(message, { segments = { 999 } })
    assert.is_nil(r)
    assert.equal("InvalidParameter", err.code)
  end)

  it("batches lists batches by id range; validation and API errors", function()
    local all = assert(c.sendings:batches())
    assert.is_true(#all >= 3) -- the sandbox's seed batches
    for i = 2, #all do assert.is_true(all[i].idBatch > all[i - 1].idBatch) end
    local some = assert(c.sendings:batches { min = all[2].idBatch })
    assert.equal(#all - 1, #some)
    local r, err = c.sendings:batches { min = -1 }
    assert.is_nil(r)
    H.invalid(err, { "min" })
    r, err = H.noperm().sendings:batches()
    assert.is_nil(r)
    assert.equal("auth", err.kind)
  end)
end)
