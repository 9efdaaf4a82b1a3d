-- fields.lua and where.lua on their own: dates, names, clauses (no network:
-- the clauses are built with strict = false, which never reads the project).
local di = require "dialoginsight"
local fields = require "dialoginsight.records.fields"
local record = require "dialoginsight.records.record"
local base = require "dialoginsight.resources.base"
local H = require "client.resources.common"

local W = di.where

describe("fields: dates", function()
  it("normalizes strings to YYYY.MM.DD and YYYY.MM.DD HH:MM:SS", function()
    assert.equal("2024.03.05", fields.date("2024-03-05"))
    assert.equal("2024.03.05", fields.date("2024.3.5"))
    assert.equal("2024.03.05", fields.date("2024-03-05 17:30:00"))
    assert.equal("2024.03.05 17:30:09", fields.datetime("2024-03-05T17:30:09"))
    assert.equal("2024.03.05 17:30:00", fields.datetime("2024.03.05 17:30"))
    assert.equal("2024.03.05 00:00:00", fields.datetime("2024-03-05"))
  end)

  it("takes os.time() numbers and os.date('*t') tables", function()
    local t = os.time { year = 2001, month = 9, day = 8, hour = 7, min = 6, sec = 5 }
    assert.equal("2001.09.08", fields.date(t))
    assert.equal("2001.09.08 07:06:05", fields.datetime(t))
    assert.equal("2001.09.08 07:06:05", fields.datetime(os.date("*t", t)))
    assert.equal("2020.02.29", fields.date { year = 2020, month = 2, day = 29 })
  end)

  it("refuses impossible dates", function()
    for _, bad in ipairs { "2023-02-29", "2024-13-01", "2024-04-31", "24-01-01", "2024-01-01 25:00:00",
                           "yesterday", 0 / 0 } do
      assert.is_nil(fields.datetime(bad), tostring(bad))
    end
    assert.is_nil(fields.date { year = 2021, month = 2, day = 29 })
  end)
end)

describe("fields: names", function()
  it("maps contact records from the wire to friendly names", function()
    local c = fields.from_wire { idContact = 5, f_EMail = "a@b.c", optin_Newsletter = true,
                                 optin_Promotions = "0" }
    assert.same({ idContact = 5, EMail = "a@b.c", optin = { Newsletter = true, Promotions = false } }, c)
  end)

  it("builds ID and Data from a friendly contact without a schema", function()
    local rec, problems = record.contacts(nil):map { EMail = "a@b.c", FirstName = "A",
      f_City = "X", optin = { News = true }, When = { year = 2020, month = 1, day = 2 } }
    assert.is_nil(problems)
    assert.same({ key_f_EMail = "a@b.c" }, rec.ID)
    assert.same({ f_FirstName = "A", f_City = "X", optin_News = true, f_When = "2020.01.02" }, rec.Data)
  end)

  it("refuses per record what the encoder would refuse for the whole call", function()
    -- an untyped field and a key_ member: invalid UTF-8 is this record's
    -- problem (it used to fail the encoding of every record of the call)
    local _, problems = record.contacts(nil):map { EMail = "a@b.c", Note = "caf\233", key_f_X = "\255" }
    assert.same({ { field = "Note", message = "is not valid UTF-8 (invalid UTF-8 at byte 4)" },
                  { field = "key_f_X", message = "is not valid UTF-8 (invalid UTF-8 at byte 1)" } }, problems)
    -- a decimal the encoder cannot send as it is
    local dec = fields.converter { type = "Decimal" }
    assert.same({ nil, 'expects a number, got "1e999"' }, { dec("1e999") })
    assert.same({ nil, 'is beyond 2^53 and cannot be sent exactly: "1e16"' }, { dec("1e16") })
    assert.equal(9007199254740992, dec("9007199254740992"))
    -- an integer beyond 2^53 is refused on every runtime (LuaJIT's
    -- tonumber rounds 2^53 + 1 down to 2^53)
    assert.is_nil(fields.integer("9007199254740993"))
    assert.equal(9007199254740992, fields.integer(" -0009007199254740992 ") * -1)
  end)

  it("suggests the closest name for a misspelling only", function()
    assert.equal("FirstName", require("dialoginsight.errors").closest("firstnme", { "EMail", "FirstName", "LastName" }))
    assert.is_nil(require("dialoginsight.errors").closest("Zebra", { "EMail", "FirstName", "LastName" }))
  end)
end)

describe("where", function()
  local c = H.client { strict = false }
  local function clause(w) return assert(base.clause(c, w, nil)) end

  it("turns { EMail = x } into an Equal FieldClause on f_EMail", function()
    assert.same({ ["$type"] = "FieldClause", Field = { Name = "f_EMail" },
                  TypeOperator = "Equal", ComparisonValue = "x@example.com" },
                clause { EMail = "x@example.com" })
  end)

  it("joins several keys with And, and maps operators", function()
    local w = clause { City = "Paris", Points = 3 }
    assert.equal("ComboClause", w["$type"])
    assert.equal("And", w.Operator)
    assert.equal(2, #w.Clauses)
    assert.equal("f_City", w.Clauses[1].Field.Name)
    assert.equal("f_Points", w.Clauses[2].Field.Name)
    local any = clause(W.any { W.gt("Points", 1), W.lt("Points", 9), W.ne("City", "X"),
      W.contains("City", "ar"), W.starts_with("EMail", "a"), W.is_null("City"), W.not_null("idContact") })
    assert.equal("Or", any.Operator)
    local ops = {}
    for i, f in ipairs(any.Clauses) do ops[i] = f.TypeOperator end
    assert.same({ "GreaterThan", "LessThan", "NotEqual", "Contains", "StartsWith", "IsNull", "IsNotNull" }, ops)
    assert.equal("idContact", any.Clauses[7].Field.Name)
    assert.is_nil(any.Clauses[6].ComparisonValue)
  end)

  it("passes wire clauses and prefixed names through, and raises on misuse", function()
    local raw = { ["$type"] = "FieldClause", Field = { Name = "f_X" }, TypeOperator = "Equal", ComparisonValue = 1 }
    assert.equal(raw, clause(raw))
    assert.equal("optin_Newsletter", clause(W.eq("optin_Newsletter", true)).Field.Name)
    assert.has_error(function() W.eq("City") end)
    assert.has_error(function() W.all {} end)
    assert.has_error(function() W.gt(nil, 1) end)
    assert.has_error(function() base.clause(c, {}, nil) end)
  end)
end)
