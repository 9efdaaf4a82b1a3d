-- Paging against servers that order, cut, repeat and change their pages
-- as they like (spec/support/fake_pages.lua): the named cases of issue 21,
-- classes 1, 5 and 6 (docs/paging.md).  spec/client/iteration_property_spec.lua
-- draws thousands of such servers at random; spec/client/resources/modes_spec.lua
-- and spec/host/export_spec.lua run the real path against the sandbox's modes.
local fake = require "support.fake_pages"

local N = 150

-- N contacts with ids 1..N, e-mails in an order that is not the ids'.
local function contacts(n, city)
  local list = {}
  for id = 1, n or N do
    list[id] = { idContact = id, f_EMail = string.format("%03d@example.com", (id * 37) % 1000),
                 f_City = city or "X" }
  end
  return list
end

-- The ids of list, asserting each once; sorted.
local function ids(list)
  local seen, out = {}, {}
  for _, c in ipairs(list) do
    assert.is_nil(seen[c.idContact], "idContact " .. tostring(c.idContact) .. " came twice")
    seen[c.idContact] = true
    out[#out + 1] = c.idContact
  end
  table.sort(out)
  return out
end

local function range(a, b)
  local t = {}
  for i = a, b do t[#t + 1] = i end
  return t
end

local drain = fake.drain

describe("contacts paging by idContact windows", function()
  for _, order in ipairs { "id", "desc", "email", "random" } do
    for _, cap in ipairs { "honoured", 7, 60, 1000, math.huge } do
      for _, total in ipairs { "right", "missing", "page", "random" } do
        it(("yields every contact once: order %s, page %s, TotalRecords %s"):format(order, tostring(cap), total), function()
          local s = fake.new { records = contacts(), order = order, cap = cap, total = total,
                               rng = require("support.property").rng(7) }
          local c = s:client()
          local list = assert(c.contacts:get({ City = "X" }, { page_size = 40 }))
          assert.same(range(1, N), ids(list))
          local page = math.min(40, cap == "honoured" and 40 or cap)
          -- fill 0.75 of a page per window, a few calls to find the first
          -- window and the end; more when the order gives no density
          local most = math.ceil(N / math.max(1, math.floor(0.75 * page))) + 4
            + (order ~= "id" and 2 * math.ceil(math.log(N) / math.log(2)) or 0)
          assert.is_true(s.calls <= most, s.calls .. " calls, more than " .. most)
        end)
      end
    end
  end

  -- class 1 and 6: ids that rise within each page (always true of a page
  -- of one) are no proof of order across pages
  it("yields every contact when pages of one are ordered by e-mail (contacts:all)", function()
    local s = fake.new { records = contacts(40), order = "email" }
    local list = assert(drain(s:client().contacts:all { page_size = 1 }))
    assert.same(range(1, 40), ids(list))
  end)

  -- class 6: TotalRecords equal to the page, a fixed page smaller than MaxRows
  it("is not ended by TotalRecords equal to a fixed page smaller than MaxRows", function()
    local s = fake.new { records = contacts(), cap = 50, total = "page" }
    local list = assert(s:client().contacts:get({ City = "X" }, { page_size = 100 }))
    assert.same(range(1, N), ids(list))
  end)

  -- class 6: a deletion of contacts already yielded shifts every later one
  it("yields every contact that existed throughout when seen ones are deleted between pages", function()
    local s = fake.new { records = contacts(), order = "email",
      before = function(srv, call)
        if call == 3 then -- delete the first 10 contacts of the e-mail order: seen ones
          local keep = srv:matches {}
          for i = 1, 10 do keep[i] = false end
          srv.list = {}
          for _, r in ipairs(keep) do if r then srv.list[#srv.list + 1] = r end end
        end
      end }
    local all = contacts()
    table.sort(all, function(a, b) return a.f_EMail < b.f_EMail end)
    local gone = {}
    for i = 1, 10 do gone[all[i].idContact] = true end
    local list, err = drain(s:client().contacts:each({ City = "X" }, { page_size = 40 }))
    assert.is_nil(err, tostring(err))
    local got = {}
    for _, id in ipairs(ids(list)) do got[id] = true end
    for id = 1, N do
      if not gone[id] then assert.truthy(got[id], "contact " .. id .. " existed throughout and was skipped") end
    end
  end)

  -- class 6: pages that overlap (a new order on every call), one of them
  -- bringing nothing new, which ended the iteration
  it("is not ended by a page that brings nothing new", function()
    local s = fake.new { records = contacts(), order = "random", rng = require("support.property").rng(3) }
    local list = assert(s:client().contacts:get({ City = "X" }, { page_size = 40 }))
    assert.same(range(1, N), ids(list))
  end)

  it("ends with a protocol error, never repeats, when the server ignores the Clause", function()
    for _, cap in ipairs { "honoured", 50, math.huge } do
      local s = fake.new { records = contacts(), clause = "ignored", cap = cap }
      local list, err = drain(s:client().contacts:each({ City = "X" }, { page_size = 40 }))
      assert.equal("protocol", err and err.kind, tostring(err))
      assert.truthy(tostring(err):find("did not apply the Clause", 1, true), tostring(err))
      ids(list)
      assert.is_true(s.calls <= 2)
    end
  end)

  it("ends with a protocol error on a record without idContact, or twice in a reply", function()
    local _, err = drain(fake.new({ records = contacts(10), noid = { [4] = true } }):client().contacts:each { City = "X" })
    assert.equal("protocol", err.kind)
    assert.truthy(tostring(err):find("without a whole-number idContact", 1, true), tostring(err))
    local list = contacts(10)
    list[5].idContact = 4
    _, err = drain(fake.new({ records = list }):client().contacts:each { City = "X" })
    assert.equal("protocol", err.kind)
    assert.truthy(tostring(err):find("twice in one reply", 1, true), tostring(err))
  end)

  it("proves a small result in two calls and checks the tail in a third, and an empty one in one", function()
    local list = contacts(5)
    for i, c in ipairs(list) do c.idContact = 10 * i end -- not contiguous: no id proves itself
    local s = fake.new { records = list, order = "email" }
    assert.same({ 10, 20, 30, 40, 50 }, ids(assert(s:client().contacts:get { City = "X" })))
    assert.equal(3, s.calls)
    -- the second call asks for all but one of the first reply, the third
    -- for what lies beyond the highest id (empty)
    local encode = require("dialoginsight.core").encode
    assert.truthy(encode(s.requests[2].Clause):find("NotEqual", 1, true))
    assert.truthy(encode(s.requests[3].Clause):find('"ComparisonValue":50', 1, true), encode(s.requests[3].Clause))
    s = fake.new { records = contacts(5) }
    assert.same({}, assert(s:client().contacts:get { City = "Y" }))
    assert.equal(1, s.calls)
  end)

  it("honours limit: find is one call, get stops at limit", function()
    local s = fake.new { records = contacts(), order = "email" }
    local c = s:client()
    assert.truthy(c.contacts:find { City = "X" })
    assert.equal(1, s.calls)
    assert.equal(1, s.requests[1].MaxRows)
    assert.equal(7, #ids(assert(c.contacts:get({ City = "X" }, { limit = 7 }))))
    assert.equal(45, #ids(assert(c.contacts:get({ City = "X" }, { limit = 45, page_size = 40 }))))
  end)

  it("bounds the calls of one iteration (max_calls) with an error, never a silent end", function()
    local s = fake.new { records = contacts(), order = "email" }
    local list, err = s:client().contacts:get({ City = "X" }, { page_size = 5, max_calls = 6 })
    assert.is_nil(list)
    assert.equal("protocol", err.kind)
    assert.truthy(tostring(err):find("max_calls", 1, true), tostring(err))
    assert.equal(6, s.calls)
  end)
end)

describe("replies a pager cannot trust", function()
  -- a server whose reply is r(req) for every call
  local function answering(r)
    local s = fake.new { records = contacts(5) }
    s.answer = function(self, req)
      self.calls = self.calls + 1
      local reply = r(req)
      reply.Success = true
      return reply
    end
    return s
  end

  local function first_error(iter, it)
    local _, err = drain(iter, it)
    return err
  end

  it("ends with an error, never as if empty, on a reply without Records", function()
    for _, make in ipairs {
      function(s) return s:client().contacts:each { City = "X" } end,
      function(s) return s:client().segments:each_contact(1) end,
      function(s) return s:client().reports:opens() end,
    } do
      local err = first_error(make(answering(function() return { TotalRecords = 5 } end)))
      assert.equal("decode", err and err.kind, tostring(err))
    end
  end)

  it("ends with an error on Records that is not a list of records", function()
    for _, recs in ipairs { { a = { idContact = 1 } }, { 1, 2, 3 }, { { idContact = 1 }, "x" } } do
      local err = first_error(answering(function() return { Records = recs } end):client().contacts:each { City = "X" })
      assert.equal("protocol", err and err.kind, tostring(err))
    end
  end)

  it("ends with an error on an idContact that is not a positive whole number", function()
    for _, id in ipairs { "5", 0, -3, 2.5, "9007199254740993" } do
      local err = first_error(answering(function() return { Records = { { idContact = id } } } end)
        :client().contacts:each { City = "X" })
      assert.equal("protocol", err and err.kind, tostring(id) .. ": " .. tostring(err))
    end
  end)

  it("refuses a page_size, limit or max_calls that is not a positive integer", function()
    local c = fake.new({ records = contacts(5) }):client()
    for _, name in ipairs { "page_size", "limit", "max_calls" } do
      for _, v in ipairs { 0, -1, 1.5, "10", math.huge } do
        assert.has_error(function() c.contacts:each({ City = "X" }, { [name] = v }) end)
        assert.has_error(function() c.segments:each_contact(1, { [name] = v }) end)
      end
    end
  end)
end)

-- The list methods have no clause on ids: StartRow paging, each page
-- from the last record yielded.
local function members(n)
  local list = contacts(n)
  for i = #list, 2, -1 do local j = (i * 7919) % i + 1; list[i], list[j] = list[j], list[i] end
  return list
end

describe("list paging by StartRow (segments:each_contact)", function()
  for _, start in ipairs { "honoured", "early" } do
    for _, cap in ipairs { "honoured", 2, 7, 60, 1000 } do
      it(("yields every member once: StartRow %s, page %s"):format(start, tostring(cap)), function()
        local s = fake.new { records = members(N), cap = cap, start = start }
        local list = assert(s:client().segments:contacts(1, { page_size = 40 }))
        assert.same(range(1, N), ids(list))
        local page = math.min(40, cap == "honoured" and 40 or cap)
        assert.is_true(s.calls <= math.ceil(N / (page - 1)) + 3, s.calls .. " calls")
      end)
    end
  end

  it("takes a reply that ignores StartRow and MaxRows as every member", function()
    for _, n in ipairs { 3, 40, N } do
      local s = fake.new { records = members(n), cap = math.huge, start = "ignored" }
      assert.same(range(1, n), ids(assert(s:client().segments:contacts(1, { page_size = 40 }))))
    end
  end)

  it("ends with an error when the server ignores StartRow but cuts its reply at MaxRows", function()
    local s = fake.new { records = members(N), start = "ignored" }
    local list, err = s:client().segments:contacts(1, { page_size = 40 })
    assert.is_nil(list)
    assert.equal("protocol", err.kind)
    assert.truthy(tostring(err):find("ignores StartRow", 1, true), tostring(err))
    -- every member at once, but TotalRecords says there is one more
    local more = fake.new { records = members(30), start = "ignored", cap = math.huge, total = 31 }
    list, err = more:client().segments:contacts(1, { page_size = 10 })
    assert.is_nil(list)
    assert.equal("protocol", err.kind)
    assert.truthy(tostring(err):find("TotalRecords says 31", 1, true), tostring(err))
  end)

  -- class 6: a deletion before the page boundary shifts the list
  it("ends with an error, never a silent skip, when members before the boundary are deleted", function()
    local s = fake.new { records = members(N),
      before = function(srv, call) if call == 2 then table.remove(srv.list, 5) end end }
    local list, err = drain(s:client().segments:each_contact(1, { page_size = 40 }))
    assert.equal("protocol", err and err.kind, tostring(err))
    assert.truthy(tostring(err):find("list changed", 1, true), tostring(err))
    assert.equal(40, #ids(list))
  end)

  it("ends with an error when a member already yielded comes again after the boundary", function()
    local s = fake.new { records = members(N),
      before = function(srv, call)
        if call == 2 then -- moved past the boundary, the boundary kept in place by a new member
          local r = table.remove(srv.list, 3)
          table.insert(srv.list, 60, r)
          table.insert(srv.list, 1, { idContact = 1001, f_City = "X" })
        end
      end }
    local _, err = drain(s:client().segments:each_contact(1, { page_size = 40 }))
    assert.equal("protocol", err and err.kind, tostring(err))
    assert.truthy(tostring(err):find("reordered", 1, true), tostring(err))
  end)

  it("skips none and repeats none when members are added before or after the boundary", function()
    local s = fake.new { records = members(N),
      before = function(srv, call)
        if call == 2 then table.insert(srv.list, 10, { idContact = 1001, f_City = "X" }) end
        if call == 3 then table.insert(srv.list, 140, { idContact = 1002, f_City = "X" }) end
      end }
    local got = {}
    for _, id in ipairs(ids(assert(s:client().segments:contacts(1, { page_size = 40 })))) do got[id] = true end
    for id = 1, N do assert.truthy(got[id], "member " .. id .. " existed throughout and was skipped") end
  end)
end)

describe("event paging by StartRow (reports:opens)", function()
  -- class 5: events have no identity: two opens of one contact in one
  -- second are two opens
  local function events()
    local list = {}
    for i = 1, 90 do
      local e = { idContact = (i % 7) + 1, idBatch = 3, dtEvent = string.format("2024-03-01 10:00:%02d", math.floor(i / 5) % 60) }
      list[#list + 1] = e
      if i % 4 == 0 then list[#list + 1] = { idContact = e.idContact, idBatch = 3, dtEvent = e.dtEvent } end
    end
    return list
  end

  local function tally(list)
    local t = {}
    for _, e in ipairs(list) do
      local k = e.idContact .. "|" .. e.dtEvent
      t[k] = (t[k] or 0) + 1
    end
    return t
  end

  for _, cap in ipairs { "honoured", 2, 9, 1000 } do
    it("keeps repeated identical events, page " .. tostring(cap), function()
      local want = events()
      local s = fake.new { records = events(), cap = cap }
      local got = drain(s:client().reports:opens { page_size = 10 })
      assert.equal(#want, #got)
      assert.same(tally(want), tally(got))
    end)
  end

  it("keeps them when the server ignores paging", function()
    local s = fake.new { records = events(), cap = math.huge, start = "ignored" }
    local got, err = drain(s:client().reports:opens { page_size = 10 })
    assert.is_nil(err, tostring(err))
    assert.same(tally(events()), tally(got))
  end)

  it("tells a run of identical events longer than a page from a server that ignores StartRow", function()
    local same = {}
    for i = 1, 25 do same[i] = { idContact = 1, idBatch = 1, dtEvent = "2024-03-01 10:00:00" } end
    local s = fake.new { records = same, cap = 5 }
    local got, err = drain(s:client().reports:opens { page_size = 5 })
    assert.is_nil(err, tostring(err))
    assert.equal(25, #got)
  end)

  it("has no key in the registry's events contract, by which events could be merged", function()
    assert.is_nil(require("dialoginsight.registry").PAGING.events.key)
  end)
end)

describe("a server that drops rows after taking MaxRows (outside the model)", function()
  it("still yields every contact: the tail beyond the last proof is walked until empty", function()
    -- TOP(MaxRows) by idContact, then every 7th contact dropped (soft-deleted):
    -- replies shorter than MaxRows before the end (found by a hostile review:
    -- 91 of 858 in 2 calls, no error)
    local recs = {}
    for id = 1, 1000 do recs[#recs + 1] = { idContact = id, f_EMail = id .. "@x", hidden = id % 7 == 0 } end
    local s = fake.new { records = recs }
    local answer = s.answer
    function s.answer(srv, req, method)
      local r = answer(srv, req, method)
      local keep = {}
      for _, rec in ipairs(r.Records) do if not rec.hidden then keep[#keep + 1] = rec end end
      r.Records, r.TotalRecords = require("dialoginsight.core").array(keep), nil
      return r
    end
    local n, seen = 0, {}
    for rec in s:client().contacts:all { page_size = 100 } do
      assert.is_nil(seen[rec.idContact])
      seen[rec.idContact], n = true, n + 1
    end
    assert.equal(858, n)
  end)
end)
