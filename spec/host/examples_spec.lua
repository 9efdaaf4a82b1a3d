-- The examples, run by the host as a user runs them, against the sandbox and
-- against a target that is not the sandbox (the same sandbox answering
-- sandbox.Identify as Dialog Insight would: 404 UnknownMethod).  No example
-- creates or sends unless asked for exactly that: demo data is made only
-- when the target identifies itself as the sandbox, or with an explicit
-- flag.  Checks go through the sandbox's control API.
local sbx = require "support.sandbox"
local H = require "support.host"

local q, run = H.q, H.run

local function example(args) return run("run " .. q(H.ROOT .. "/examples/" .. args[1] .. ".lua") .. " "
  .. table.concat(args, " ", 2)) end

-- Every method that creates, changes, deletes or sends.
local WRITES = {
  ["contacts.merge"] = true, ["contacts.delete"] = true, ["relationaltables.merge"] = true,
  ["relationaltables.delete"] = true, ["sendings.sendsingle"] = true, ["sendings.sendsingle2"] = true,
  ["sendings.sendbatch"] = true, ["messages.create"] = true, ["segments.merge"] = true,
  ["campaigns.create"] = true, ["campaigns.trigger"] = true,
}

-- The calls after mark, by "service.method", and the writes among them.
local function calls(mark)
  local by, writes = {}, {}
  for _, e in ipairs(sbx.log(mark)) do
    local name = e.service .. "." .. e.method
    by[name] = (by[name] or 0) + 1
    if WRITES[name] then writes[#writes + 1] = name end
  end
  return by, writes
end

local function batches(since) return sbx.control("GET", "batches?since=" .. (since or 0)).batches end

describe("examples against the sandbox", function()
  before_each(function() sbx.reset { contacts = 50 } end)

  for _, ex in ipairs { { "newsletter" }, { "crm_sync" }, { "abandoned_cart" }, { "abandoned_cart_send" },
                        { "dashboard" }, { "dashboard", "--demo" }, { "quickstart" } } do
    it(table.concat(ex, " ") .. " runs and makes its own demo data", function()
      local r = example(ex)
      assert.are.equal(0, r.code, r.out .. r.err)
      assert.truthy(#r.out > 0)
    end)
  end

  it("abandoned_cart writes the cart into the e-commerce tables, and the automated campaign sends it", function()
    local mark = sbx.mark()
    local r = example { "abandoned_cart" }
    assert.are.equal(0, r.code, r.out .. r.err)
    local by = calls(mark)
    -- through RelationalTables.Merge only: no API call triggers the campaign
    assert.are.equal(3, by["relationaltables.merge"]) -- the items, the cart, the cart abandoned
    assert.is_nil(by["campaigns.trigger"])
    assert.is_nil(by["sendings.sendsingle2"])
    local s = sbx.control("GET", "state?contacts=1")
    local shopper = s.contacts["shopper@example.com"]
    local cart
    for _, row in pairs(s.tables["510"].records) do
      if row.idContact == shopper.idContact then cart = row end
    end
    assert.are.equal("Abandoned", cart.Status)
    assert.are.equal(3, s.tables["511"].rows) -- the seeded item and two
    local sent = batches(3)
    assert.are.equal(1, #sent)
    assert.are.same({ "Automated", 3, 3, { shopper.idContact } },
      { sent[1].kind, sent[1].idCampaign, sent[1].idMessage, sent[1].contacts })
    assert.are.equal("2 x Green tea, 1 x Blue mug", sent[1].params.cart_items)
    assert.truthy(r.out:find("the automated campaign sent message 3", 1, true), r.out)
  end)

  it("abandoned_cart_send sends the message once, with the cart as parameters (SendSingle2)", function()
    local mark = sbx.mark()
    local r = example { "abandoned_cart_send" }
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.are.equal(1, calls(mark)["sendings.sendsingle2"])
    local sent = batches(3)
    assert.are.same({ "SendSingle2", 3, "2 x Green tea, 1 x Blue mug" },
      { sent[1].kind, sent[1].idMessage, sent[1].params.cart_items })
  end)

  it("dashboard shows the campaigns' names; --demo makes three campaigns, each sent once", function()
    local r = example { "dashboard", "1", "2", "3" }
    assert.are.equal(0, r.code, r.out .. r.err)
    for _, name in ipairs { "Spring promo 2024", "Welcome series", "Abandoned cart" } do
      assert.truthy(r.out:find(name, 1, true), r.out)
    end
    local mark = sbx.mark()
    r = example { "dashboard", "--demo" }
    assert.are.equal(0, r.code, r.out .. r.err)
    local by = calls(mark)
    assert.are.same({ 3, 3, 3 }, { by["messages.create"], by["campaigns.create"], by["sendings.sendbatch"] })
    for _, name in ipairs { "Spring sale", "Newsletter #12", "Loyalty points" } do
      assert.truthy(r.out:find(name, 1, true), r.out)
    end
  end)
end)

describe("examples against a target that is not the sandbox", function()
  before_each(function()
    sbx.reset { contacts = 50 }
    -- the sandbox answers sandbox.Identify as Dialog Insight does
    sbx.control("POST", "config", { identify = false })
  end)

  for _, case in ipairs {
    { { "newsletter" }, 64 }, { { "crm_sync" }, 64 }, { { "abandoned_cart" }, 64 },
    { { "abandoned_cart", "shopper@example.com", "510", "511" }, 64 },
    { { "abandoned_cart_send" }, 64 }, { { "abandoned_cart_send", "ann@example.com", "3" }, 64 },
    { { "dashboard" }, 0 }, { { "dashboard", "--demo" }, 64 }, { { "dashboard", "1", "2" }, 0 },
    { { "quickstart" }, 0 },
  } do
    local ex, code = case[1], case[2]
    it(table.concat(ex, " ") .. " creates and sends nothing (exit " .. code .. ")", function()
      local before = sbx.control("GET", "state")
      local mark = sbx.mark()
      local r = example(ex)
      assert.are.equal(code, r.code, r.out .. r.err)
      local _, writes = calls(mark)
      assert.are.same({}, writes, "a write against a non-sandbox target")
      local after = sbx.control("GET", "state")
      assert.are.same(before.projects, after.projects)
      assert.are.same(before.tables, after.tables)
      if code == 64 then assert.truthy(r.err:find("--demo", 1, true) or r.err:find("EMAIL", 1, true), r.err) end
    end)
  end

  it("dashboard without ids lists the recent sendings, read-only", function()
    local r = example { "dashboard" }
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("2024.03.20 10:00:00", 1, true), r.out)
    assert.truthy(r.out:find("no method lists the campaigns", 1, true), r.out)
  end)

  it("writes and sends what is named explicitly, and only that", function()
    local mark = sbx.mark()
    local r = example { "newsletter", "named@example.com" }
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.are.same({ "contacts.merge" }, select(2, calls(mark)))
    mark = sbx.mark()
    r = example { "abandoned_cart", "--demo", "ann@example.com", "510", "511" }
    assert.are.equal(0, r.code, r.out .. r.err)
    local by, writes = calls(mark)
    assert.are.equal(3, #writes)
    assert.are.equal(3, by["relationaltables.merge"])
    local sent = batches(3)
    assert.are.same({ "Automated", { 1 } }, { sent[1].kind, sent[1].contacts })
    mark = sbx.mark()
    r = example { "abandoned_cart_send", "--demo", "ann@example.com", "3" }
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.are.same({ "sendings.sendsingle2" }, select(2, calls(mark)))
  end)
end)
