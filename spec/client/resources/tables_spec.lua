-- client:table(id) against the sandbox's Reservations table.
local di = require "dialoginsight"
local sbx = require "support.sandbox"
local H = require "client.resources.common"

local W = di.where

describe("relational tables", function()
  local c, t
  before_each(function()
    sbx.reset()
    c = H.client()
    t = c:table(tonumber(sbx.env("DI_TABLE")))
  end)

  local KEY = { key = "idReservation" }

  it("merge creates and updates rows with bare columns and idTable scope", function()
    local r = assert(t:merge({ idReservation = 9, idContact = 2, Destination = "Oslo",
                               dtTravel = { year = 2025, month = 3, day = 4 } }, KEY))
    assert.equal("created", r.outcome)
    local rows = assert(t:get { idReservation = 9 })
    assert.same({ { idReservation = 9, idContact = 2, Destination = "Oslo", dtTravel = "2025.03.04" } }, rows)
    r = assert(t:merge({ key_idReservation = 9, Destination = "Bergen" }))
    assert.equal("updated", r.outcome)
    assert.equal("Bergen", t:get({ idReservation = 9 })[1].Destination)
  end)

  it("merge validates the key, and reports rejections and API errors", function()
    local r, err = t:merge({ idContact = 1 }, KEY)
    assert.is_nil(r)
    H.invalid(err, { "idReservation" })
    r, err = t:merge { idContact = 1 }
    assert.is_nil(r)
    H.invalid(err, { "key" })
    r, err = t:merge({ idReservation = 5, Nope = 1 }, KEY)
    assert.is_nil(r)
    assert.equal("rejected", err.kind)
    assert.equal("Nope", err.field)
    r, err = c:table(tonumber(sbx.env("DI_TABLE")) + 1):merge({ idOrder = 1 }, { key = "idOrder" })
    assert.is_nil(r)
    assert.equal("AccessDenied", err.code)
    assert.has_error(function() c:table("501") end)
  end)

  it("merge_many keeps every row's outcome in order", function()
    local s = assert(t:merge_many({ { idReservation = 20, idContact = 1 }, { idContact = 2 },
      { idReservation = 21, idContact = 9999 }, { idReservation = 1, Destination = "Porto" } },
      { key = "idReservation", batch_size = 2 }))
    local got = {}
    for i, o in ipairs(s.records) do got[i] = o.outcome end
    assert.same({ "created", "rejected", "rejected", "updated" }, got)
    assert.same({ 1, 1, 2 }, { s.created, s.updated, s.rejected })
    assert.equal("Porto", t:get({ idReservation = 1 })[1].Destination)
  end)

  it("get takes where-clauses on bare columns; API errors", function()
    local rows = assert(t:get(W.all { W.eq("idContact", 1), W.gt("dtTravel", "2024.12.31") }))
    assert.equal(1, #rows)
    assert.equal("Reykjavík", rows[1].Destination)
    assert.equal(3, #assert(t:get(W.not_null("idReservation"))))
    local r, err = t:get { Nope = 1 }
    assert.is_nil(r)
    assert.equal("api", err.kind)
    assert.has_error(function() t:get {} end)
  end)

  it("delete returns the count; API errors", function()
    assert.equal(2, t:delete { idContact = 1 })
    assert.same({}, assert(t:get { idContact = 1 }))
    local r, err = t:delete { Nope = 1 }
    assert.is_nil(r)
    assert.equal("InvalidParameter", err.code)
  end)
end)
