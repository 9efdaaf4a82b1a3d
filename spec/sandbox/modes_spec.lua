-- The sandbox's modes for the questions docs/wire.md leaves open
-- (sandbox/README.md, "Modes for the open questions"): paging honoured,
-- ignored or of a fixed size, TotalRecords given or not, the call limit as a
-- 429 or as the service's authentication error, other Merge status names;
-- the sandbox identifying itself; AuthKey values compared case-sensitively;
-- and the abandoned cart fed by the e-commerce relational tables.
local dir = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = dir .. "?.lua;" .. package.path
local H = require "helper"

local CART, ITEMS = 510, 511 -- the e-commerce tables (sandbox/README.md)

local function config(t)
  local j, r = H.control("POST", "config", t)
  assert(j.ok, r.raw)
  return j
end

local ALL = H.fc("idContact", "IsNotNull")

local function ids(recs)
  local out = {}
  for i, r in ipairs(recs) do out[i] = r.idContact end
  return out
end

-- Every paged method, called with MaxRows/StartRow: its reply.
local PAGED = {
  { "contacts.Get", function(p) return H.call("contacts", "Get", { Clause = ALL, MaxRows = p.MaxRows, StartRow = p.StartRow }) end },
  { "segments.GetContacts", function(p) return H.call("segments", "GetContacts", { idSegment = 1, MaxRows = p.MaxRows, StartRow = p.StartRow }) end },
  { "reports.GetOpens", function(p) return H.call("reports", "GetOpens", { MaxRows = p.MaxRows, StartRow = p.StartRow }) end },
  { "relationaltables.Get", function(p)
    return H.api("relationaltables", "Get", { idTable = H.TABLE, Clause = H.fc("idReservation", "IsNotNull"),
      MaxRows = p.MaxRows, StartRow = p.StartRow })
  end },
}

describe("sandbox modes: paging", function()
  before_each(function() H.reset({ contacts = 100 }) end)

  for _, m in ipairs(PAGED) do
    it(m[1] .. " honours, ignores or fixes the page as the paging switch says", function()
      local all = H.ok(m[2] { MaxRows = 10000 }).Records
      assert.is_true(#all >= 3, m[1] .. " has too few records for the test: " .. #all)
      local one = H.ok(m[2] { MaxRows = 1, StartRow = 1 })
      assert.equal(1, #one.Records)
      assert.equal(#all, one.TotalRecords)

      config { paging = "ignored" }
      local ign = H.ok(m[2] { MaxRows = 1, StartRow = 1 })
      assert.same(all, ign.Records, "every match, whatever MaxRows and StartRow say")
      assert.equal(#all, ign.TotalRecords)

      config { paging = "fixed", page_size = 2 }
      local fixed = H.ok(m[2] { MaxRows = 1, StartRow = 1 })
      assert.same({ all[2], all[3] }, fixed.Records, "two records from StartRow, whatever MaxRows says")

      config { paging = "honoured", total_records = false }
      local bare = H.ok(m[2] { MaxRows = 1 })
      assert.equal(1, #bare.Records)
      assert.is_nil(bare.TotalRecords, "TotalRecords left out of " .. m[1])
      assert.is_nil(bare.TotalRecords)

      config { total_records = "page" }
      local lying = H.ok(m[2] { MaxRows = 2, StartRow = 1 })
      assert.same({ all[2], all[3] }, lying.Records)
      assert.equal(2, lying.TotalRecords, "TotalRecords the count of the reply, not of the matches")
    end)
  end

  it("orders Contacts.Get by idContact, by e-mail or descending, StartRow counting in that order", function()
    local asc = ids(H.ok(H.get(ALL, { MaxRows = 10000 })).Records)
    assert.equal(112, #asc)
    config { contacts_order = "descending" }
    local desc = H.ok(H.get(ALL, { MaxRows = 3, StartRow = 1 }))
    assert.same({ 111, 110, 109 }, ids(desc.Records))
    assert.equal(112, desc.TotalRecords)
    config { contacts_order = "email" }
    local byemail = H.ok(H.get(ALL, { MaxRows = 10000 })).Records
    assert.equal(112, #byemail)
    for i = 2, #byemail do
      assert.is_true(byemail[i - 1].f_EMail:lower() <= byemail[i].f_EMail:lower(), "not in e-mail order at " .. i)
    end
    assert.not_same(asc, ids(byemail))
    assert.same(ids(byemail), ids(H.ok(H.get(H.fc("idContact", "GreaterThan", 0), { MaxRows = 10000 })).Records))
  end)

  it("ignores the Clause of Contacts.Get when the clause switch says so, still refusing a bad one", function()
    local ann = H.fc("f_EMail", "Equal", "ann@example.com")
    assert.same({ 1 }, ids(H.ok(H.get(ann, {})).Records))
    config { clause = "ignored" }
    local every = H.ok(H.get(ann, { MaxRows = 5 }))
    assert.same({ 1, 2, 3, 4, 5 }, ids(every.Records))
    assert.equal(112, every.TotalRecords)
    local bad = H.get(H.fc("f_Nope", "Equal", "x"), {})
    assert.equal("InvalidParameter", bad.json.ErrorCode)
    for _, v in ipairs { "sometimes", true } do
      local j = H.control("POST", "config", { clause = v })
      assert.is_false(j.ok)
    end
    local j = H.control("POST", "config", { total_records = "sometimes" })
    assert.is_false(j.ok)
    j = H.control("POST", "config", { contacts_order = "random" })
    assert.is_false(j.ok)
  end)

  it("still refuses a bad MaxRows when it ignores paging, and a reset restores every switch", function()
    config { paging = "ignored" }
    local r = H.get(ALL, { MaxRows = -1 })
    assert.equal("InvalidParameter", r.json.ErrorCode)
    config { paging = "fixed", page_size = 7, total_records = false, limit = "auth", limit_status = 403,
             limit_code = false, merge_statuses = { Created = "Inserted" }, identify = false,
             contacts_order = "descending", clause = "ignored" }
    H.reset()
    local c = H.control("GET", "config")
    assert.same({ "honoured", 50, true, "429", 200, "InvalidAuthKey", "Created", true, "idContact", "honoured" },
      { c.paging, c.page_size, c.total_records, c.limit, c.limit_status, c.limit_code,
        c.merge_statuses.Created, c.identify, c.contacts_order, c.clause })
    assert.same({ 1, 2, 3 }, ids(H.ok(H.get(ALL, { MaxRows = 3 })).Records))
  end)
end)

describe("sandbox modes: the call limit", function()
  before_each(function() H.reset() end)

  local function limited(r, status, code)
    assert.equal(status, r.status, r.raw)
    assert.is_false(r.json.Success)
    if code then assert.equal(code, r.json.ErrorCode) else assert.equal(H.null, r.json.ErrorCode) end
    return r.json
  end

  it("is a 429 with Retry-After by default, from the rate limit or a limit fault", function()
    H.control("POST", "ratelimit", { rate = 1, burst = 1 })
    H.ok(H.api("projects", "List", {}))
    local r = H.api("projects", "List", {})
    limited(r, 429, "TooManyRequests")
    assert.truthy(tonumber(r.headers["retry-after"]) >= 1)
    H.control("POST", "ratelimit", { rate = 0 })
    H.faults { { type = "limit", next = 1, retry_after = 3 } }
    r = H.api("projects", "List", {})
    limited(r, 429, "TooManyRequests")
    assert.equal("3", r.headers["retry-after"])
    assert.equal("limit", H.log()[#H.log()].fault)
    H.ok(H.api("projects", "List", {}))
  end)

  for _, case in ipairs {
    { 200, "InvalidAuthKey" }, { 401, "InvalidAuthKey" }, { 403, false }, { 200, false },
  } do
    local status, code = case[1], case[2]
    it("is the authentication error in HTTP " .. status .. " with ErrorCode " .. tostring(code)
       .. " in the auth style, with no Retry-After", function()
      config { limit = "auth", limit_status = status, limit_code = code }
      H.control("POST", "ratelimit", { rate = 1, burst = 1 })
      H.ok(H.api("projects", "List", {}))
      for _, r in ipairs { H.api("projects", "List", {}), (function()
        H.control("POST", "ratelimit", { rate = 0 })
        H.faults { { type = "limit", next = 1 } }
        return H.call("contacts", "Get", { Clause = ALL })
      end)() } do
        local j = limited(r, status, code or nil)
        assert.equal("Authentication failed: the number of calls allowed has been exceeded.", j.ErrorMessage)
        assert.is_nil(r.headers["retry-after"])
        assert.is_nil(r.raw:find(H.KEY, 1, true))
      end
      local e = H.log()
      assert.same({ status, code or H.null }, { e[#e].status, e[#e].code })
    end)
  end
end)

describe("sandbox modes: Merge status names", function()
  before_each(function() H.reset() end)

  it("renames Created, Updated and Skipped in contacts and relational tables, ValidationResult OK", function()
    config { merge_statuses = { Created = "Inserted", updated = "Merged", Skipped = "Unchanged" } }
    local r = H.ok(H.merge({ H.rec("new@example.com"), H.rec("ann@example.com", { f_City = "Laval" }),
      H.rec("bob@example.com") }, { AllowUpdate = false }))
    assert.same({ "Inserted", "Unchanged" }, { r.Records[1].Status, r.Records[2].Status })
    r = H.ok(H.merge({ H.rec("ann@example.com", { f_City = "Laval" }), H.rec("x") }))
    assert.same({ "Merged", "OK" }, { r.Records[1].Status, r.Records[1].ValidationResult })
    assert.same({ "Error", "InvalidType" }, { r.Records[2].Status, r.Records[2].ValidationResult })
    assert.equal(1, r.UpdatedRecords)
    assert.equal("Laval", H.contact("ann@example.com").f_City)
    local t = H.ok(H.api("relationaltables", "Merge", { idTable = H.TABLE, Records = {
      { ID = { key_idReservation = 9 }, Data = { idContact = 1, Destination = "Oslo" } } } }))
    assert.same({ "Inserted", "OK", 1 }, { t.Records[1].Status, t.Records[1].ValidationResult, t.CreatedRecords })
  end)

  it("can say Updated for every accepted record, as the real service shows", function()
    config { merge_statuses = { Created = "Updated" } }
    local r = H.ok(H.merge({ H.rec("new@example.com"), H.rec("ann@example.com") }))
    assert.same({ "Updated", "Updated" }, { r.Records[1].Status, r.Records[2].Status })
    assert.same({ 1, 1 }, { r.CreatedRecords, r.UpdatedRecords })
    assert.is_table(H.contact("new@example.com"))
  end)
end)

describe("sandbox: identification and keys", function()
  before_each(function() H.reset() end)

  it("answers sandbox.Identify with Sandbox true, and 404 UnknownMethod when identify is off", function()
    local j = H.ok(H.api("sandbox", "Identify", {}))
    assert.is_true(j.Sandbox)
    assert.equal(401, H.api("sandbox", "Identify", { AuthKey = false }).status)
    config { identify = false }
    local r = H.api("sandbox", "Identify", {})
    assert.equal(404, r.status)
    assert.equal("UnknownMethod", r.json.ErrorCode)
    assert.is_nil(r.raw:find("Sandbox\":", 1, true))
  end)

  it("compares the AuthKey's value case-sensitively (documented) and its idKey as a number", function()
    local flipped = H.KEY:gsub("%a", function(ch)
      return ch == ch:lower() and ch:upper() or ch:lower()
    end)
    assert.are_not.equal(H.KEY, flipped)
    assert.equal(401, H.api("projects", "List", { AuthKey = H.auth(H.KEY_ID, flipped) }).status)
    assert.equal(401, H.api("projects", "List", { AuthKey = H.auth(H.KEY_ID, H.KEY:upper()) }).status)
    assert.equal(401, H.api("projects", "List", { AuthKey = H.auth(H.KEY_ID, H.KEY .. " ") }).status)
    H.ok(H.api("projects", "List", { AuthKey = H.auth(tostring(H.KEY_ID), H.KEY) }))
  end)
end)

describe("sandbox: the abandoned cart", function()
  before_each(function() H.reset() end)

  local function merge(tid, records)
    return H.ok(H.api("relationaltables", "Merge", { idTable = tid, Records = records }))
  end
  local function sends(since)
    local out = {}
    for _, b in ipairs(H.control("GET", "batches?since=" .. (since or 3)).batches) do
      if b.kind == "Automated" then out[#out + 1] = b end
    end
    return out
  end

  it("sends the seeded campaign's message when a cart is merged as abandoned, once", function()
    merge(ITEMS, {
      { ID = { key_idCartItem = "C-77/1" }, Data = { idCart = "C-77", SKU = "TEA-01", ProductName = "Green tea",
        Quantity = 2, UnitPrice = 8.5 } },
      { ID = { key_idCartItem = "C-77/2" }, Data = { idCart = "C-77", SKU = "MUG-07", ProductName = "Blue mug",
        Quantity = 1, UnitPrice = 14 } } })
    merge(CART, { { ID = { key_idCart = "C-77" }, Data = { idContact = 3, Status = "Active", Total = 31,
      Currency = "CAD", ItemCount = 2 } } })
    assert.same({}, sends(), "an active cart sends nothing")
    merge(CART, { { ID = { key_idCart = "C-77" }, Data = { Status = "Abandoned", dtUpdated = "2026.11.29 10:00:00" } } })
    local s = sends()
    assert.equal(1, #s)
    assert.same({ 3, 3, { 3 } }, { s[1].idCampaign, s[1].idMessage, s[1].contacts })
    assert.same({ cart_id = "C-77", cart_items = "2 x Green tea, 1 x Blue mug", cart_size = "2",
                  cart_total = "31.00 CAD", cart_url = "" }, s[1].params)
    -- merged again as abandoned: no second send; the history and statistics show the one
    merge(CART, { { ID = { key_idCart = "C-77" }, Data = { Status = "abandoned" } } })
    assert.equal(1, #sends())
    local hist = H.ok(H.call("reports", "GetContactHistory", { idContact = 3 })).Records
    assert.equal(s[1].idBatch, hist[#hist].idBatch)
    local st = H.ok(H.call("campaigns", "GetStatistics", { idCampaign = 3 })).Statistics
    assert.same({ 3, "Abandoned cart", 1 }, { st.idCampaign, st.Name, st.Sent })
    -- a new cart abandoned at once sends too; one without a contact does not
    merge(CART, { { ID = { key_idCart = "C-78" }, Data = { idContact = 1, Status = "Abandoned" } },
                  { ID = { key_idCart = "C-79" }, Data = { Status = "Abandoned" } } })
    assert.equal(2, #sends())
  end)

  it("seeds the two tables, with one converted cart, and refuses a cart for an unknown contact", function()
    local s = H.control("GET", "state")
    assert.same({ "ECommerce_Cart", 1, "ECommerce_CartItem", 1 },
      { s.tables["510"].name, s.tables["510"].rows, s.tables["511"].name, s.tables["511"].rows })
    local r = merge(CART, { { ID = { key_idCart = "C-80" }, Data = { idContact = 999, Status = "Abandoned" } } })
    assert.same({ "Error", "InvalidReference" }, { r.Records[1].Status, r.Records[1].ValidationResult })
    assert.same({}, sends())
  end)
end)
