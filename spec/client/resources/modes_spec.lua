-- The questions docs/wire.md leaves open, asked end to end: the client's
-- resources against the real sandbox in each of its modes (sandbox/README.md,
-- "Modes for the open questions").  spec/client/paging_spec.lua and
-- spec/client/guesses_spec.lua ask the same of fake replies.
--   paging      honoured, ignored (every match each time), a fixed page size
--               whatever MaxRows says, TotalRecords left out
--   the limit   a 429 with Retry-After, or the authentication error "the number
--               of calls allowed has been exceeded" in HTTP 200, 401 or 403
--   Merge       status names the library does not know, ValidationResult OK
local cjson = require "cjson"
local di = require "dialoginsight"
local core = require "dialoginsight.core"
local sbx = require "support.sandbox"
local raised = require "support.raised"
local H = require "client.resources.common"

local W = di.where

local function config(t) return sbx.control("POST", "config", t) end

-- Asserts that list holds no record twice (by key(rec)); returns the keys, sorted.
local function distinct(list, key, what)
  local seen, out = {}, {}
  for _, rec in ipairs(list) do
    local k = key(rec)
    assert.is_nil(seen[k], what .. ": " .. tostring(k) .. " came twice")
    seen[k] = true
    out[#out + 1] = k
  end
  table.sort(out)
  return out
end

local function by_id(c) return c.idContact end
local function event(e) return table.concat({ e.idContact, e.idBatch, e.dtEvent, e.Url or "" }, "|") end

-- The events of list as keys, sorted, repeats kept.
local function events(list)
  local out = {}
  for i, e in ipairs(list) do out[i] = event(e) end
  table.sort(out)
  return out
end

local function collect(iter)
  local list = {}
  for rec in iter do list[#list + 1] = rec end
  return list
end

local PAGING = {
  { "ignored (every match each time)", { paging = "ignored" } },
  { "ignored, without TotalRecords", { paging = "ignored", total_records = false } },
  { "a fixed page of 50 whatever MaxRows says", { paging = "fixed", page_size = 50 } },
  { "a fixed page of 7, without TotalRecords", { paging = "fixed", page_size = 7, total_records = false } },
  { "honoured, without TotalRecords", { total_records = false } },
  { "honoured, TotalRecords the page's count, contacts by e-mail", { total_records = "page", contacts_order = "email" } },
  { "a fixed page of 7, TotalRecords the page's count, contacts newest first",
    { paging = "fixed", page_size = 7, total_records = "page", contacts_order = "descending" } },
  { "a fixed page of 50 with more asked, TotalRecords the page's count",
    { paging = "fixed", page_size = 50, total_records = "page" } },
}

describe("modes: paging", function()
  local c, batch, want
  local EVERYONE = W.not_null("EMail")

  -- The keys of the records of one plain call that asks for everything,
  -- while the sandbox still honours paging, sorted (events repeat: two
  -- opens of one contact in one second are two opens).
  local function everything(service, method, params, key)
    params.MaxRows = 10000
    local out = {}
    for _, rec in ipairs(assert(c:call(service, method, params)).Records) do out[#out + 1] = key(rec) end
    table.sort(out)
    return out
  end

  -- 162 contacts and a batch to all of them (its opens and clicks), and
  -- what each iterator must yield, read without the library's pager
  before_each(function()
    sbx.reset { contacts = 150 }
    c = H.client()
    batch = assert(c.sendings:send_batch(2, { all = true }))
    want = {
      contacts = everything("contacts", "Get", { Clause = { ["$type"] = "FieldClause",
        Field = { Name = "f_EMail" }, TypeOperator = "IsNotNull" } }, by_id),
      segment = everything("segments", "GetContacts", { idSegment = 1 }, by_id),
      opens = everything("reports", "GetOpens", { idBatch = batch }, event),
      clicks = everything("reports", "GetClicks", { idBatch = batch }, event),
    }
    assert.equal(162, #want.contacts)
    assert.is_true(#want.segment > 40 and #want.opens > 40 and #want.clicks > 10,
      #want.segment .. " subscribers, " .. #want.opens .. " opens, " .. #want.clicks .. " clicks")
  end)

  for _, mode in ipairs(PAGING) do
    describe("when paging is " .. mode[1], function()
      before_each(function() config(mode[2]) end)

      -- the calls of one iteration: a bounded number, whatever the mode
      -- (docs/paging.md): contacts by windows of idContact filled to 0.75
      -- of a page, lists by pages that overlap by one
      local function calls(mark, name, n, size)
        local made = #H.calls(mark, name)
        local page = math.min(size, mode[2].page_size or size)
        -- (and a search for the first window when the order gives no density)
        local most = name == "contacts.get" and math.ceil(n / math.max(1, math.floor(0.75 * page))) + 4
            + (mode[2].contacts_order and 2 * math.ceil(math.log(n) / math.log(2)) or 0)
          or math.ceil(n / math.max(1, page - 1)) + 3
        assert.is_true(made <= most, made .. " calls to " .. name .. " for " .. n .. " records")
      end

      it("contacts:each and get yield every contact once, in bounded calls, and honour limit", function()
        local mark = sbx.mark()
        assert.same(want.contacts, distinct(collect(c.contacts:each(EVERYONE, { page_size = 40 })), by_id, "each"))
        calls(mark, "contacts.get", #want.contacts, 40)
        assert.same(want.contacts, distinct(assert(c.contacts:get(EVERYONE, { limit = 1000 })), by_id, "get"))
        for _, n in ipairs { 1, 7, 45 } do
          mark = sbx.mark()
          local some = distinct(assert(c.contacts:get(EVERYONE, { limit = n, page_size = 40 })), by_id, "limit")
          assert.equal(n, #some)
          calls(mark, "contacts.get", n, math.min(n, 40))
        end
        assert.equal("ann@example.com", assert(c.contacts:find { EMail = "ann@example.com" }).EMail)
        assert.equal(7, #collect(c.contacts:all { limit = 7 }))
      end)

      it("segments:contacts and each_contact yield every member once, and honour limit", function()
        local mark = sbx.mark()
        assert.same(want.segment, distinct(assert(c.segments:contacts(1, { page_size = 40 })), by_id, "segment"))
        calls(mark, "segments.getcontacts", #want.segment, 40)
        assert.same(want.segment, distinct(collect(c.segments:each_contact(1, { page_size = 25 })), by_id, "each_contact"))
        assert.equal(9, #distinct(assert(c.segments:contacts(1, { limit = 9 })), by_id, "limit"))
      end)

      it("reports:opens and clicks yield every event once, identical ones too, and honour limit", function()
        local mark = sbx.mark()
        assert.same(want.opens, events(collect(c.reports:opens { batch = batch, page_size = 40 })))
        calls(mark, "reports.getopens", #want.opens, 40)
        assert.same(want.clicks, events(collect(c.reports:clicks { batch = batch, page_size = 10 })))
        assert.equal(11, #collect(c.reports:opens { batch = batch, limit = 11 }))
      end)
    end)
  end
end)

describe("modes: a server that ignores the Clause of Contacts.Get", function()
  after_each(function() sbx.reset() end)

  it("ends contacts:each with a protocol error, never yielding a contact twice", function()
    sbx.reset { contacts = 150 }
    local c = H.client()
    config { clause = "ignored", contacts_order = "email" }
    for _, size in ipairs { 40, 100, 500 } do
      local seen = {}
      local iter, state = c.contacts:each({ City = "Paris" }, { page_size = size })
      local err = raised.failure(state, function()
        for rec in iter do
          assert.is_nil(seen[rec.idContact], "idContact " .. rec.idContact .. " came twice")
          seen[rec.idContact] = true
        end
      end)
      assert.equal("protocol", err and err.kind, tostring(err))
      assert.truthy(tostring(err):find("did not apply the Clause", 1, true), tostring(err))
    end
  end)
end)

-- The call limit in each of its forms: the sandbox's own (a 429 with
-- Retry-After) and the service's documented authentication error.
local LIMITS = {
  { "a 429 with Retry-After", { limit = "429" }, 429 },
  { "the authentication error in HTTP 200", { limit = "auth", limit_status = 200 }, 200 },
  { "the authentication error in HTTP 401", { limit = "auth", limit_status = 401 }, 401 },
  { "the authentication error in HTTP 403, no ErrorCode", { limit = "auth", limit_status = 403, limit_code = false }, 403 },
}

describe("modes: the call limit", function()
  local dir
  before_each(function()
    sbx.reset()
    dir = sbx.sh("mktemp -d"):gsub("%s+$", "")
  end)
  after_each(function()
    sbx.clear_faults()
    sbx.sh("rm -rf '" .. dir .. "'")
  end)

  for _, mode in ipairs(LIMITS) do
    describe("as " .. mode[1], function()
      before_each(function() config(mode[2]) end)

      it("is rate_limited, waited out and retried: the call succeeds in 2 calls", function()
        sbx.faults { { type = "limit", next = 1, method = "contacts.get" } }
        local cl = H.client { limiter_dir = dir, retries = { retries = 2, base = 0.01, cap = 2 } }
        local retried
        cl.on_retry = function(ev) retried = ev end
        local mark, t0 = sbx.mark(), core.now()
        local ann = assert(cl.contacts:find { EMail = "ann@example.com" })
        assert.equal(1, ann.idContact)
        assert.is_true(core.now() - t0 >= 0.95, "waited " .. (core.now() - t0) .. " s, not the 1 s of the limit")
        assert.equal(2, #H.calls(mark, "contacts.get"))
        assert.equal("rate_limited", retried.error.kind)
        assert.equal(mode[3], retried.error.status)
      end)

      it("from the sandbox's rate limit, is typed rate_limited and pushes the shared limiter back", function()
        sbx.control("POST", "ratelimit", { rate = 0.5, burst = 1 })
        local a = H.client { limiter_dir = dir, retries = 0 }
        assert(a:call("projects", "List", {}))
        local _, err = a:call("projects", "List", {})
        assert.equal("rate_limited", err.kind)
        assert.equal(mode[3], err.status)
        assert.is_true(err.retryable)
        -- a second client on the same limiter_dir, which never saw the limit, waits
        local b = H.client { limiter_dir = dir }
        local held = b.limiter:acquire()
        assert.is_true(held > 0.8, "the other client would call after " .. held .. " s")
        sbx.control("POST", "ratelimit", { rate = 0 })
        local t0 = core.now()
        assert(b:call("projects", "List", {}))
        assert.is_true(core.now() - t0 >= 0.8, "the other client called after " .. (core.now() - t0) .. " s")
      end)

      it("refuses a send before it ran: the send is retried, once", function()
        sbx.faults { { type = "limit", next = 1, method = "sendings.sendsingle2" } }
        local cl = H.client { limiter_dir = dir, retries = { retries = 2, base = 0.01, cap = 2 } }
        local mark = sbx.mark()
        assert.equal(1, assert(cl.sendings:send(1, 1, { params = { code = "A" } })))
        assert.equal(2, #H.calls(mark, "sendings.sendsingle2"))
        local sent = 0
        for _, e in ipairs(sbx.log(mark)) do
          if e.method == "sendsingle2" and e.status == 200 and e.code == cjson.null then sent = sent + 1 end
        end
        assert.equal(1, sent)
      end)
    end)
  end
end)

describe("modes: Merge status names", function()
  local c
  before_each(function()
    sbx.reset()
    c = H.client()
  end)

  it("reads Inserted, Merged and Unchanged (ValidationResult OK) as accepted, keeping the status", function()
    config { merge_statuses = { Created = "Inserted", Updated = "Merged", Skipped = "Unchanged" } }
    local o = assert(c.contacts:merge { EMail = "new@example.com", FirstName = "New" })
    assert.same({ "accepted", "Inserted" }, { o.outcome, o.status })
    assert.is_number(o.id)
    o = assert(c.contacts:merge { EMail = "ann@example.com", City = "Laval" })
    assert.same({ "accepted", "Merged", 1 }, { o.outcome, o.status, o.id })
    o = assert(c.contacts:merge({ EMail = "bob@example.com" }, { update = false }))
    assert.same({ "accepted", "Unchanged" }, { o.outcome, o.status })
    local s = assert(c.contacts:merge_many({ { EMail = "m1@example.com" }, { EMail = "ann@example.com" },
      { EMail = "m2@example.com", Points = "many" }, { EMail = "not-an-email" } }))
    assert.same({ 2, 2, 0, 0, 0 }, { s.accepted, s.rejected, s.created, s.updated, s.failed })
    assert.same({ "accepted", "accepted", "rejected", "rejected" },
      { s.records[1].outcome, s.records[2].outcome, s.records[3].outcome, s.records[4].outcome })
    local t = assert(c:table(501):merge({ idReservation = 9, idContact = 1, Destination = "Oslo" },
      { key = "idReservation" }))
    assert.same({ "accepted", "Inserted" }, { t.outcome, t.status })
    assert.equal("Laval", H.stored()["ann@example.com"].f_City)
  end)

  it("reads Updated for a creation, as the real service shows, as updated", function()
    config { merge_statuses = { Created = "Updated" } }
    local o = assert(c.contacts:merge { EMail = "new@example.com" })
    assert.same({ "updated", "Updated" }, { o.outcome, o.status })
    assert.is_table(H.stored()["new@example.com"])
  end)
end)

describe("the sandbox identifies itself", function()
  before_each(function() sbx.reset() end)

  it("client:is_sandbox() is true against it, false when it answers as Dialog Insight would", function()
    local c = H.client()
    assert.is_true(c:is_sandbox())
    local mark = sbx.mark()
    assert.is_true(c:is_sandbox())
    assert.equal(0, #sbx.log(mark), "asked once per client")
    config { identify = false }
    c = H.client()
    local yes, err = c:is_sandbox()
    assert.is_false(yes)
    assert.equal(404, err.status)
    assert.is_false(c:is_sandbox())
  end)

  it("is false, and asked again, when the server cannot be reached", function()
    local c = H.client { base_url = "https://127.0.0.1:9/webservices/ofc4/", retries = 0, timeout = 2 }
    local yes, err = c:is_sandbox()
    assert.is_false(yes)
    assert.equal("network", err.kind)
    assert.is_nil(rawget(c, "identified"))
  end)
end)
