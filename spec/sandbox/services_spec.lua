-- projects, relationaltables, messages, segments, sendings, campaigns and
-- reports, in the request shapes of docs/wire.md.
local dir = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = dir .. "?.lua;" .. package.path
local H = require "helper"

local fc, combo = H.fc, H.combo

local function new_message(name)
  local j = H.ok(H.call("messages", "Create", { Message = { Name = name or "Test message", isHostingImages = false,
    isTrackingLinks = true, idCategory = 1, MessageVersions = { { Name = "v1", Culture = "en-CA", SenderName = "Spec",
      SenderEMail = "spec@example.com", Subject = "Hello", ReplyToEMail = "spec@example.com",
      MessageBodies = { { MIMEType = "text/html",
        Content = '<p><a href="https://shop.example.com/a">A</a> <a href="https://shop.example.com/b">B</a></p>' } } } } } }))
  return j.idMessage
end

describe("projects", function()
  before_each(function() H.reset() end)

  it("List returns only the projects the key may access", function()
    local j = H.ok(H.api("projects", "List", {}))
    assert.equal(1, #j.Records)
    assert.equal(H.PROJECT, j.Records[1].idProject)
    assert.equal("string", type(j.Records[1].ProjectName))
  end)

  it("Get describes typed ProjectFields and OptinFields", function()
    local j = H.ok(H.call("projects", "Get", {}))
    local info = j.ProjectInfo
    local types = {}
    for _, f in ipairs(info.ProjectFields) do types[f.Code] = f.DataType end
    assert.same({ EMail = "Text", FirstName = "Text", LastName = "Text", City = "Text", BirthDate = "Date",
      Points = "Integer" }, types)
    assert.is_true(info.ProjectFields[1].isRequired)
    assert.equal("E-mail", info.ProjectFields[1].Labels[1].Value)
    assert.equal("Newsletter", info.OptinFields[1].Code)
    assert.equal("Promotions", info.OptinFields[2].Code)
  end)
end)

describe("relationaltables", function()
  before_each(function() H.reset() end)

  local function tcall(method, fields)
    local body = { idTable = H.TABLE }
    for k, v in pairs(fields) do body[k] = v end
    return H.api("relationaltables", method, body)
  end

  it("Merge inserts and updates rows keyed by key_<column>, with idTable and no idProject", function()
    local j = H.ok(tcall("Merge", { Records = {
      { ID = { key_idReservation = 10 }, Data = { idContact = 2, Destination = "Oslo", dtTravel = "2025-03-04" } },
      { ID = { key_idReservation = 1 }, Data = { Destination = "Porto" } },
      { ID = { key_idReservation = 11 }, Data = { Destination = string.rep("x", 101) } },
      { ID = { key_idReservation = 12 }, Data = { Nope = 1 } },
      { ID = { key_idReservation = 13 }, Data = { idContact = 9999 } },
    }, MergeOptions = { ReturnRecordsOnSuccess = true } }))
    assert.equal(1, j.CreatedRecords)
    assert.equal(1, j.UpdatedRecords)
    assert.equal("Created", j.Records[1].Status)
    assert.equal("2025.03.04", j.Records[1].Record.dtTravel)
    assert.equal("Updated", j.Records[2].Status)
    assert.equal("TooLong", j.Records[3].ValidationResult)
    assert.equal("UnknownField", j.Records[4].ValidationResult)
    assert.equal("InvalidReference", j.Records[5].ValidationResult)
    local g = H.ok(tcall("Get", { Clause = fc("Destination", "Equal", "porto") }))
    assert.equal(1, #g.Records)
    assert.same({ idReservation = 1, idContact = 1, Destination = "Porto", dtTravel = "2024.06.01" }, g.Records[1])
  end)

  it("Get filters and pages; Delete removes the matches", function()
    local g = H.ok(tcall("Get", { Clause = fc("idContact", "Equal", 1) }))
    assert.equal(2, g.TotalRecords)
    assert.same({ 1, 3 }, { g.Records[1].idReservation, g.Records[2].idReservation })
    local p = H.ok(tcall("Get", { Clause = fc("idReservation", "IsNotNull"), MaxRows = 1, StartRow = 1 }))
    assert.equal(3, p.TotalRecords)
    assert.equal(2, p.Records[1].idReservation)
    local d = H.ok(tcall("Delete", { Clause = combo("And", fc("idContact", "Equal", 1), fc("dtTravel", "GreaterThan", "2024.12.31")) }))
    assert.equal(1, d.DeletedRecords)
    assert.equal(2, H.ok(tcall("Get", { Clause = fc("idReservation", "IsNotNull") })).TotalRecords)
  end)
end)

describe("messages", function()
  before_each(function() H.reset() end)

  it("Create returns an idMessage that Get gives back", function()
    local id = new_message("Autumn news")
    assert.equal("number", type(id))
    local j = H.ok(H.call("messages", "Get", { idMessage = id }))
    assert.equal(id, j.Message.idMessage)
    assert.equal("Autumn news", j.Message.Name)
    assert.equal("Hello", j.Message.MessageVersions[1].Subject)
    local bad = H.call("messages", "Create", { Message = { Name = "x" } })
    assert.equal("InvalidParameter", bad.json.ErrorCode)
    assert.equal("InvalidParameter", H.call("messages", "Get", { idMessage = 9999 }).json.ErrorCode)
  end)
end)

describe("segments", function()
  before_each(function() H.reset() end)

  local function by_name(list, name)
    for _, s in ipairs(list) do if s.Name == name then return s end end
  end

  it("List counts members; a dynamic segment's clause is evaluated when read", function()
    local l = H.ok(H.call("segments", "List", {})).Records
    local nl = by_name(l, "Newsletter subscribers")
    assert.is_true(nl.isDynamic)
    assert.equal(8, nl.ContactCount)
    assert.is_false(by_name(l, "VIP (static)").isDynamic)
    H.ok(H.merge({ H.rec("joiner@example.com", { optin_Newsletter = "1" }), H.rec("frank@example.com", { optin_Newsletter = true }) }))
    l = H.ok(H.call("segments", "List", {})).Records
    assert.equal(10, by_name(l, "Newsletter subscribers").ContactCount)
  end)

  it("GetContacts returns flat contacts with paging", function()
    local l = H.ok(H.call("segments", "List", {})).Records
    local mtl = by_name(l, "Montréal")
    local j = H.ok(H.call("segments", "GetContacts", { idSegment = mtl.idSegment, MaxRows = 2, StartRow = 1 }))
    assert.equal(3, j.TotalRecords)
    assert.same({ 4, 7 }, { j.Records[1].idContact, j.Records[2].idContact })
    assert.equal("dave@example.com", j.Records[1].f_EMail)
  end)

  it("Merge creates and updates dynamic segments", function()
    local j = H.ok(H.call("segments", "Merge", { Segment = { Name = "Big spenders", Clause = fc("f_Points", "GreaterThan", 200) } }))
    assert.is_true(j.Created)
    local c = H.ok(H.call("segments", "GetContacts", { idSegment = j.idSegment }))
    assert.same({ 3, 7, 9 }, { c.Records[1].idContact, c.Records[2].idContact, c.Records[3].idContact })
    local u = H.ok(H.call("segments", "Merge", { Segment = { idSegment = j.idSegment, Name = "Bigger", Clause = fc("f_Points", "GreaterThan", 400) } }))
    assert.is_false(u.Created)
    assert.equal(1, H.ok(H.call("segments", "GetContacts", { idSegment = j.idSegment })).TotalRecords)
    assert.equal("InvalidParameter", H.call("segments", "Merge", { Segment = { Name = "x", Clause = fc("f_Nope", "Equal", 1) } }).json.ErrorCode)
  end)
end)

describe("sendings", function()
  before_each(function() H.reset() end)

  it("SendSingle sends to the contacts of a Clauses filter", function()
    local id = new_message()
    local j = H.ok(H.call("sendings", "SendSingle", { idMessage = id, ContactFilter = { Mode = "Clauses",
      TableClauses = { { TableCode = "Contact", Clause = fc("f_City", "Equal", "Toronto") } } } }))
    assert.equal(2, j.AffectedContacts)
  end)

  it("SendSingle2 sends to one contact with parameters (lower-case contactFilter accepted)", function()
    local id = new_message()
    local j = H.ok(H.call("sendings", "SendSingle2", { idMessage = id, contactFilter = { Mode = "Single", idContact = 3 },
      SendSingleOptions = { idMessageVersion = H.null, MessageParameterValues = { code = "ABC123" },
        DiscardParametersAfterSending = false }, Attachments = H.null }))
    assert.equal(1, j.AffectedContacts)
    local h = H.ok(H.call("reports", "GetContactHistory", { idContact = 3 }))
    local last = h.Records[#h.Records]
    assert.equal(id, last.idMessage)
    assert.equal("InvalidParameter", H.call("sendings", "SendSingle2", { idMessage = id,
      ContactFilter = { Mode = "Single", idContact = 4242 } }).json.ErrorCode)
  end)

  it("SendBatch sends to All or to segments (idFilters), and GetBatches lists the batches", function()
    local id = new_message()
    local all = H.ok(H.call("sendings", "SendBatch", { idMessage = id, ContactFilter = { Mode = "All" },
      SendBatchOptions = { isDelayed = false, PrepareNow = true, AutoApprove = true } }))
    assert.equal("number", type(all.idBatch))
    local seg = H.ok(H.call("sendings", "SendBatch", { idMessage = id, ContactFilter = { Mode = "idFilters", idFilters = { 3 } },
      SendBatchOptions = { isDelayed = true, dtLaunch = "2099.01.01 10:00:00", PrepareNow = true, AutoApprove = true } }))
    local b = H.ok(H.call("sendings", "GetBatches", { BatchFilter = { BatchFilterMode = "idBatch",
      idBatch_Min = all.idBatch, idBatch_Max = seg.idBatch } }))
    assert.equal(2, #b.Records)
    assert.same({ all.idBatch, id, 12, "Sent" }, { b.Records[1].idBatch, b.Records[1].idMessage, b.Records[1].ContactCount, b.Records[1].Status })
    assert.same({ 3, "Scheduled", "2099.01.01 10:00:00" }, { b.Records[2].ContactCount, b.Records[2].Status, b.Records[2].dtLaunch })
    -- a launch time already past is sent at once, with its events
    local past = H.ok(H.call("sendings", "SendBatch", { idMessage = id, ContactFilter = { Mode = "All" },
      SendBatchOptions = { isDelayed = true, dtLaunch = "2020-01-01 00:00:00" } }))
    assert.equal("Sent", past.Status)
    local opens = H.ok(H.call("reports", "GetOpens", { idBatch = past.idBatch }))
    assert.is_true(opens.TotalRecords > 0)
    for _, o in ipairs(opens.Records) do assert.equal(past.idBatch, o.idBatch) end
    assert.equal("InvalidParameter", H.call("sendings", "SendBatch", { idMessage = 777, ContactFilter = { Mode = "All" } }).json.ErrorCode)
  end)
end)

describe("campaigns and reports", function()
  before_each(function() H.reset() end)

  local function stats_after(seed)
    H.reset({ seed = seed })
    local id = new_message()
    local c = H.ok(H.call("campaigns", "Create", { Campaign = { Name = "Auto", Channel = "Email", idMessage = id, isAutomated = true } }))
    local t = H.ok(H.call("campaigns", "Trigger", { idCampaign = c.idCampaign, ContactFilter = { Mode = "All" },
      Parameters = { coupon = "X1" } }))
    assert.equal(12, t.AffectedContacts)
    H.ok(H.call("campaigns", "Trigger", { idCampaign = c.idCampaign, ContactFilter = { Mode = "idFilters", idFilters = { 1 } } }))
    return H.ok(H.call("campaigns", "GetStatistics", { idCampaign = c.idCampaign })).Statistics
  end

  it("GetStatistics is computed from the events and repeats for a given seed", function()
    local a, b = stats_after(7), stats_after(7)
    assert.same(a, b)
    assert.equal(20, a.Sent)
    assert.equal(a.Sent, a.Delivered + a.Bounced)
    assert.is_true(a.Opened >= a.UniqueOpened and a.UniqueOpened <= a.Delivered)
    assert.is_true(a.Clicked >= a.UniqueClicked and a.UniqueClicked <= a.UniqueOpened)
    local c = stats_after(8)
    assert.are_not.same(a, c, "another seed gives other numbers")
  end)

  it("has seeded campaigns with non-trivial statistics and repeatable reports", function()
    local s = H.ok(H.call("campaigns", "GetStatistics", { idCampaign = 1 })).Statistics
    assert.equal(12, s.Sent)
    assert.is_true(s.UniqueOpened > 0 and s.UniqueOpened < 12)
    local clicks = H.ok(H.call("reports", "GetClicks", { idMessage = 2, dtFrom = "2024.01.01", dtTo = "2024.12.31",
      MaxRows = 100, StartRow = 0 }))
    assert.equal(s.Clicked, clicks.TotalRecords)
    local opens = H.ok(H.call("reports", "GetOpens", { idMessage = 2, dtFrom = "2024.01.01 00:00:00", dtTo = "2024-12-31" }))
    assert.equal(s.Opened, opens.TotalRecords)
    if clicks.TotalRecords > 0 then
      local r = clicks.Records[1]
      assert.truthy(r.Url:match("^https://www%.example%.com/"))
      assert.truthy(r.dtEvent:match("^2024%.03%.2%d %d%d:%d%d:%d%d$"))
    end
    for i = 2, #opens.Records do
      assert.is_true(opens.Records[i - 1].dtEvent <= opens.Records[i].dtEvent, "reports are in time order")
    end
    local none = H.ok(H.call("reports", "GetOpens", { idMessage = 2, dtFrom = "2025.01.01", dtTo = "2025.12.31" }))
    assert.equal(0, none.TotalRecords)
    H.reset()
    local again = H.ok(H.call("reports", "GetOpens", { idMessage = 2, dtFrom = "2024.01.01 00:00:00", dtTo = "2024-12-31" }))
    assert.same(opens.Records, again.Records)
  end)

  it("GetContactHistory lists the batches a contact was in with Opened/Clicked", function()
    local h = H.ok(H.call("reports", "GetContactHistory", { idContact = 1 }))
    assert.equal(2, #h.Records) -- welcome (first half) + spring promo
    for _, r in ipairs(h.Records) do
      assert.equal("boolean", type(r.Opened))
      assert.equal("boolean", type(r.Clicked))
      assert.truthy(r.dtSent:match("^2024%."))
    end
  end)

  it("refuses to trigger a campaign that is not automated", function()
    local r = H.call("campaigns", "Trigger", { idCampaign = 1, ContactFilter = { Mode = "All" } })
    assert.equal("InvalidParameter", r.json.ErrorCode)
    local bad = H.call("campaigns", "Create", { Campaign = { Name = "x", Channel = "Fax", idMessage = 1 } })
    assert.equal("InvalidParameter", bad.json.ErrorCode)
  end)
end)
