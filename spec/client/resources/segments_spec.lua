-- client.segments against the sandbox.
local di = require "dialoginsight"
local sbx = require "support.sandbox"
local H = require "client.resources.common"

local W = di.where

local function count(pred)
  local n = 0
  for _, s in pairs(H.stored()) do if pred(s) then n = n + 1 end end
  return n
end

describe("segments", function()
  local c
  before_each(function()
    sbx.reset()
    c = H.client()
  end)

  it("list returns the segments with their sizes", function()
    local list = assert(c.segments:list())
    assert.is_true(#list >= 2)
    local montreal
    for _, s in ipairs(list) do if s.Name == "Montréal" then montreal = s end end
    assert.equal(count(function(s) return s.f_City == "Montréal" end), montreal.ContactCount)
    local r, err = H.noperm().segments:list()
    assert.is_nil(r)
    assert.equal("auth", err.kind)
  end)

  it("contacts returns a segment's contacts with friendly names", function()
    local list = assert(c.segments:contacts(2))
    assert.equal(count(function(s) return s.f_City == "Montréal" end), #list)
    for _, x in ipairs(list) do
      assert.equal("Montréal", x.City)
      assert.is_number(x.idContact)
      assert.is_table(x.optin)
    end
    local r, err = c.segments:contacts(999)
    assert.is_nil(r)
    assert.equal("api", err.kind)
    assert.equal("InvalidParameter", err.code)
    assert.has_error(function() c.segments:contacts("2") end)
  end)

  it("each_contact pages through a segment", function()
    sbx.reset { contacts = 250 }
    local want = count(function(s) return s.optin_Newsletter == true end)
    local mark = sbx.mark()
    local n, seen = 0, {}
    for x in c.segments:each_contact(1, { page_size = 40 }) do
      assert.is_true(x.optin.Newsletter)
      assert.is_nil(seen[x.idContact])
      seen[x.idContact] = true
      n = n + 1
    end
    assert.equal(want, n)
    -- each page after the first starts at the last member of the one before
    assert.equal(math.floor((want - 1) / 39) + 1, #H.calls(mark, "segments.getcontacts"))
    assert.is_true(#H.calls(mark, "segments.getcontacts") >= 3)
  end)

  it("save creates, then updates, a dynamic segment from a where-clause", function()
    local id = assert(c.segments:save { name = "Big spenders", where = W.gt("Points", 100) })
    local list = assert(c.segments:contacts(id))
    assert.equal(count(function(s) return (s.f_Points or 0) > 100 end), #list)
    for _, x in ipairs(list) do assert.is_true(x.Points > 100) end
    assert.equal(id, c.segments:save { id = id, where = { City = "Paris" } })
    list = assert(c.segments:contacts(id))
    assert.equal(count(function(s) return s.f_City == "Paris" end), #list)
    assert.equal("Paris", list[1].City)
  end)

  it("save validates before sending, and reports API errors", function()
    local mark = sbx.mark()
    local r, err = c.segments:save {}
    assert.is_nil(r)
    H.invalid(err, { "name", "where" })
    r, err = c.segments:save { name = "x", where = { Pints = 1 } }
    assert.is_nil(r)
    H.invalid(err, { "Pints" })
    assert.equal(0, #H.calls(mark, "segments.merge"))
    r, err = c.segments:save { id = 999, where = { City = "Paris" } }
    assert.is_nil(r)
    assert.equal("api", err.kind)
  end)
end)
