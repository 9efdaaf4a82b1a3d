-- contacts.ashx: Merge semantics and validation, Get/Delete with every clause
-- operator, ComboClause and paging.
local dir = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = dir .. "?.lua;" .. package.path
local H = require "helper"

local fc, combo, rec = H.fc, H.combo, H.rec

local function ids(j)
  local out = {}
  for i, r in ipairs(j.Records) do out[i] = r.idContact end
  return out
end

describe("contacts.Merge", function()
  before_each(function() H.reset() end)

  it("creates and updates, counting each, with IdRecord the contact id", function()
    local j = H.ok(H.merge({ rec("new@example.com", { f_FirstName = "Nina" }), rec("ann@example.com", { f_City = "Laval" }) }))
    assert.equal(1, j.CreatedRecords)
    assert.equal(1, j.UpdatedRecords)
    assert.equal("Created", j.Records[1].Status)
    assert.equal("OK", j.Records[1].ValidationResult)
    assert.equal(13, j.Records[1].IdRecord)
    assert.equal("Updated", j.Records[2].Status)
    assert.equal(1, j.Records[2].IdRecord)
    assert.same({ key_f_EMail = "ann@example.com" }, j.Records[2].ID)
    assert.equal(H.null, j.Records[1].Record)
    assert.equal("Laval", H.contact("ann@example.com").f_City)
    assert.equal("Ann", H.contact("ann@example.com").f_FirstName, "fields not sent stay untouched")
    assert.equal("Nina", H.contact("new@example.com").f_FirstName)
  end)

  it("takes an empty Records array, and refuses an object in its place", function()
    local auth = require("cjson").encode(H.auth())
    local j = H.ok(H.api("contacts", "Merge",
      '{"AuthKey":' .. auth .. ',"idProject":' .. H.PROJECT .. ',"Records":[]}'))
    assert.equal(0, j.CreatedRecords)
    local r = H.api("contacts", "Merge",
      '{"AuthKey":' .. auth .. ',"idProject":' .. H.PROJECT .. ',"records" : {}}')
    local bad = require("cjson").decode(r.body)
    assert.is_false(bad.Success)
    assert.equal("InvalidParameter", bad.ErrorCode)
    assert.truthy(bad.ErrorMessage:find("Records must be an array", 1, true))
  end)

  it("matches by idContact in ID", function()
    local j = H.ok(H.merge({ { ID = { idContact = 2 }, Data = { f_LastName = "Black" } } }))
    assert.equal("Updated", j.Records[1].Status)
    assert.equal("Black", H.contact("bob@example.com").f_LastName)
    j = H.ok(H.merge({ { ID = { idContact = 999 }, Data = {} } }))
    assert.equal("Error", j.Records[1].Status)
    assert.equal("NotFound", j.Records[1].ValidationResult)
  end)

  it("accepts opt-ins as \"1\"/\"0\" and booleans, and dates with dots or dashes", function()
    H.ok(H.merge({ rec("o1@example.com", { optin_Newsletter = "1", optin_Promotions = false, f_BirthDate = "1990-02-03" }),
      rec("o2@example.com", { optin_Newsletter = true, optin_Promotions = "0", f_BirthDate = "1991.12.31" }) }))
    local a, b = H.contact("o1@example.com"), H.contact("o2@example.com")
    assert.is_true(a.optin_Newsletter); assert.is_false(a.optin_Promotions)
    assert.is_true(b.optin_Newsletter); assert.is_false(b.optin_Promotions)
    assert.equal("1990.02.03", a.f_BirthDate)
    assert.equal("1991.12.31", b.f_BirthDate)
  end)

  it("rejects bad records one by one with a ValidationResult naming the field; the call still succeeds", function()
    local long = string.rep("x", 101)
    local j = H.ok(H.merge({
      rec("v1@example.com", { f_Nope = "x" }),
      rec("v2@example.com", { f_Points = "many" }),
      rec("v3@example.com", { f_LastName = long }),
      rec("v4@example.com", { f_BirthDate = "2024-02-30" }),
      rec("v5@example.com", { f_BirthDate = "31/12/2024" }),
      { ID = {}, Data = { f_FirstName = "x" } },
      rec("v6@example.com", { f_LastName = string.rep("é", 100) }),
      rec("v7@example.com", { optin_Newsletter = "maybe" }),
    }, { ReturnRecordsOnError = true }))
    local r = j.Records
    assert.equal(8, #r)
    assert.same({ "UnknownField", "InvalidType", "TooLong", "InvalidType", "InvalidType", "MissingKey", "OK", "InvalidType" },
      { r[1].ValidationResult, r[2].ValidationResult, r[3].ValidationResult, r[4].ValidationResult,
        r[5].ValidationResult, r[6].ValidationResult, r[7].ValidationResult, r[8].ValidationResult })
    assert.truthy(r[1].Message:find("f_Nope", 1, true))
    assert.truthy(r[2].Message:find("f_Points", 1, true))
    assert.truthy(r[3].Message:find("f_LastName", 1, true))
    assert.truthy(r[4].Message:find("f_BirthDate", 1, true))
    assert.equal("Error", r[1].Status)
    assert.same({ f_Nope = "x" }, r[1].Data, "ReturnRecordsOnError echoes the rejected Data")
    assert.equal("Created", r[7].Status, "100 characters (not bytes) is allowed")
    assert.equal(1, j.CreatedRecords)
    assert.is_nil(H.contact("v1@example.com"), "a rejected record changes nothing")
    assert.is_nil(H.contact("v3@example.com"))
  end)

  it("ReturnRecordsOnSuccess returns the stored flat record", function()
    local j = H.ok(H.merge({ rec("ret@example.com", { f_FirstName = "Rita", f_Points = "7" }) }, { ReturnRecordsOnSuccess = true }))
    local stored = j.Records[1].Record
    assert.equal(13, stored.idContact)
    assert.equal("ret@example.com", stored.f_EMail)
    assert.equal(7, stored.f_Points, "numeric strings are stored as integers")
    assert.equal(H.null, stored.f_City)
  end)

  it("AllowInsert=false rejects unknown contacts; SkipUnmatchedRecords skips them", function()
    local j = H.ok(H.merge({ rec("nobody@example.com"), rec("ann@example.com", { f_Points = 1 }) }, { AllowInsert = false }))
    assert.equal("Error", j.Records[1].Status)
    assert.equal("NotFound", j.Records[1].ValidationResult)
    assert.equal("Updated", j.Records[2].Status)
    j = H.ok(H.merge({ rec("nobody@example.com") }, { SkipUnmatchedRecords = true }))
    assert.equal("Skipped", j.Records[1].Status)
    assert.equal(0, j.CreatedRecords)
    assert.is_nil(H.contact("nobody@example.com"))
  end)

  it("AllowUpdate=false skips existing contacts and still inserts new ones", function()
    local j = H.ok(H.merge({ rec("ann@example.com", { f_City = "X" }), rec("fresh@example.com") }, { AllowUpdate = false }))
    assert.equal("Skipped", j.Records[1].Status)
    assert.equal("Created", j.Records[2].Status)
    assert.equal("Montréal", H.contact("ann@example.com").f_City)
  end)

  it("SkipDuplicateRecords skips a key repeated in the same call", function()
    local recs = { rec("dup@example.com", { f_FirstName = "One" }), rec("DUP@example.com", { f_FirstName = "Two" }) }
    local j = H.ok(H.merge(recs, { SkipDuplicateRecords = true }))
    assert.equal("Created", j.Records[1].Status)
    assert.equal("Skipped", j.Records[2].Status)
    assert.equal("One", H.contact("dup@example.com").f_FirstName)
    H.reset()
    j = H.ok(H.merge(recs))
    assert.equal("Created", j.Records[1].Status)
    assert.equal("Updated", j.Records[2].Status)
    assert.equal("Two", H.contact("dup@example.com").f_FirstName)
  end)

  it("accepts lower-case property names and a string idKey in the exact docs/wire.md shape", function()
    local body = { AuthKey = false, authKey = { idKey = tostring(H.KEY_ID), Key = H.KEY }, idProject = H.PROJECT,
      records = { { id = { KEY_F_EMAIL = "lc@example.com" }, data = { F_FIRSTNAME = "Low", OPTIN_NEWSLETTER = "1" } } },
      mergeOptions = { allowInsert = true, allowUpdate = true, skipDuplicateRecords = false, skipUnmatchedRecords = false,
        returnRecordsOnSuccess = false, returnRecordsOnError = false, fieldOptions = H.null } }
    local j = H.ok(H.api("contacts", "Merge", body))
    assert.equal(1, j.CreatedRecords)
    assert.equal("Low", H.contact("lc@example.com").f_FirstName)
  end)

  it("takes a 1000-record call", function()
    local recs = {}
    for i = 1, 1000 do recs[i] = rec("k" .. i .. "@example.com", { f_Points = i }) end
    local j = H.ok(H.merge(recs))
    assert.equal(1000, j.CreatedRecords)
    assert.equal(1000, #j.Records)
    local e = H.log()
    assert.equal(1000, e[#e].records)
  end)
end)

describe("contacts.Get and Delete", function()
  before_each(function() H.reset() end)

  it("supports every FieldClause operator", function()
    assert.same({ 1 }, ids(H.ok(H.get(fc("f_EMail", "Equal", "ANN@example.com")))))
    assert.same({ 3, 7 }, ids(H.ok(H.get(fc("f_Points", "GreaterThan", 250)))))
    assert.same({ 4, 6, 10, 11 }, ids(H.ok(H.get(fc("f_Points", "LessThan", "11")))))
    assert.same({ 2, 6, 9 }, ids(H.ok(H.get(fc("f_BirthDate", "LessThan", "1980-01-01")))))
    assert.same({ 1, 4, 7 }, ids(H.ok(H.get(fc("f_City", "Contains", "ntr")))))
    assert.same({ 1, 4, 7 }, ids(H.ok(H.get(fc("f_City", "StartsWith", "mont")))))
    assert.same({ 8 }, ids(H.ok(H.get(fc("f_Points", "IsNull")))))
    assert.equal(11, #H.ok(H.get(fc("f_Points", "IsNotNull"))).Records)
    assert.equal(9, #H.ok(H.get(fc("f_City", "NotEqual", "Toronto"))).Records)
    assert.same({ 4, 11 }, ids(H.ok(H.get(fc("f_BirthDate", "IsNull")))))
    assert.equal(10, #H.ok(H.get(fc("f_BirthDate", "IsNotNull"))).Records)
    assert.same({ 2, 3, 5, 7, 10 }, ids(H.ok(H.get(fc("optin_Promotions", "Equal", "1")))))
    assert.same({ 5 }, ids(H.ok(H.get(fc("idContact", "Equal", "5")))))
  end)

  it("treats NotEqual and comparisons as false on null values and Text as case-insensitive", function()
    -- 12 contacts; Toronto x2, City null x1 -> 9
    assert.equal(9, #H.ok(H.get(fc("f_City", "NotEqual", "TORONTO"))).Records)
    assert.same({ 8 }, ids(H.ok(H.get(fc("f_Points", "IsNull")))))
    assert.same({ 2, 6, 9 }, ids(H.ok(H.get(fc("f_BirthDate", "LessThan", "1980.01.01")))))
  end)

  it("supports nested ComboClause And/Or", function()
    local c = combo("Or",
      combo("And", fc("f_City", "Equal", "Montréal"), fc("optin_Newsletter", "Equal", true)),
      fc("f_EMail", "StartsWith", "judy"))
    assert.same({ 1, 4, 7, 10 }, ids(H.ok(H.get(c))))
    assert.same({}, ids(H.ok(H.get(combo("And", fc("f_City", "Equal", "Paris"), fc("f_City", "Equal", "Lyon"))))))
  end)

  it("pages with 0-based StartRow and MaxRows, reporting TotalRecords", function()
    local all = fc("idContact", "IsNotNull")
    local p1 = H.ok(H.get(all, { MaxRows = 5, StartRow = 0 }))
    local p3 = H.ok(H.get(all, { MaxRows = 5, StartRow = 10 }))
    assert.equal(12, p1.TotalRecords)
    assert.same({ 1, 2, 3, 4, 5 }, ids(p1))
    assert.same({ 11, 12 }, ids(p3))
    assert.equal(12, p3.TotalRecords)
    local beyond = H.ok(H.get(all, { MaxRows = 5, StartRow = 50 }))
    assert.same({}, beyond.Records)
    assert.truthy(H.get(all, { MaxRows = 5, StartRow = 50 }).raw:find('"Records": [],', 1, true), "an empty page is []")
  end)

  it("deletes what a clause matches, at most MaxRows", function()
    local j = H.ok(H.call("contacts", "Delete", { Clause = fc("f_EMail", "Equal", "ann@example.com"), MaxRows = 1 }))
    assert.equal(1, j.DeletedRecords)
    assert.is_nil(H.contact("ann@example.com"))
    j = H.ok(H.call("contacts", "Delete", { Clause = fc("f_City", "Equal", "Toronto"), MaxRows = 1 }))
    assert.equal(1, j.DeletedRecords)
    assert.equal(1, #H.ok(H.get(fc("f_City", "Equal", "Toronto"))).Records)
    j = H.ok(H.call("contacts", "Delete", { Clause = fc("optin_Newsletter", "Equal", false) }))
    assert.equal(3, j.DeletedRecords) -- carol (Toronto) already gone: frank, heidi, mallory
    assert.equal(7, H.control("GET", "state").projects[tostring(H.PROJECT)].contacts)
  end)
end)
