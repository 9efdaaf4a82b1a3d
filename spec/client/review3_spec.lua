-- Hostile review 3 (of the review-22 fixes): findings about the library,
-- each a spec that fails on the code it was written against.
local di = require "dialoginsight"
local options = require "dialoginsight.options"
local sbx = require "support.sandbox"

describe("review 3: a merge's returned record whose member takes the opt-ins' place", function()
  -- fields.from_wire now returns nil, why for such a record; contacts:get
  -- and :each make that a protocol error (resources/pager.lua), but
  -- records/merge.lua's outcome keeps only the first value: o.record = nil,
  -- the why dropped, and the merge reads as a success whose record the
  -- caller asked for (return_records = true) and silently did not get.
  local BODY = '{"Success":true,"Records":[{"IdRecord":7,"ValidationResult":"OK","Status":"Updated",'
    .. '"Record":{"idContact":7,"f_EMail":"r3-optin@example.com","f_optin":"yes","optin_news":true}}]}'
  local client
  setup(function() client = di.new(sbx.settings { strict = false }) end)
  teardown(function() if client then client:close() end end)
  before_each(function()
    sbx.clear_faults()
    sbx.faults { { type = "body", method = "contacts.merge", body = BODY } }
  end)
  after_each(function() sbx.clear_faults() end)

  it("contacts:merge with return_records: the record, or an error, never a silent nil", function()
    local o, err = client.contacts:merge({ EMail = "r3-optin@example.com" }, { return_records = true })
    if o then
      assert.is_table(o.record, "outcome " .. tostring(o.outcome) .. " without its record, and no error")
    else
      assert.is_true(di.is_error(err), tostring(err))
    end
  end)

  it("contacts:merge_many with return_records: the record, or the row counted failed", function()
    local s = client.contacts:merge_many({ { EMail = "r3-optin@example.com" } }, { return_records = true })
    local o = s.records[1]
    assert.truthy(o.record ~= nil or o.outcome == "failed",
      "outcome " .. tostring(o.outcome) .. " without its record, and no error")
  end)
end)

describe("review 3: settings given through a metatable", function()
  -- options.problem refuses an options table with a metatable, and
  -- config.resolve does too; but di.new copies the settings first
  -- (init.lua gather, with pairs): a settings table whose defaults sit
  -- behind __index is neither refused nor read.  deadline = 5 behind
  -- __index gives a client with no deadline at all, silently; env = false
  -- behind __index is honoured (gather reads opts.env), the rest dropped.
  it("di.new refuses them, or reads every setting behind __index", function()
    local s = sbx.settings()
    local ok, c = pcall(di.new, setmetatable(s, { __index = { deadline = 5, timeout = 2 } }))
    if ok then
      local got = c.settings.deadline
      c:close()
      assert.are.equal(5, got, "di.new took the table and dropped deadline = 5 (deadline "
        .. tostring(got) .. ")")
    else
      assert.truthy(tostring(c):find("metatable", 1, true), tostring(c))
    end
  end)
end)

describe("review 3: the key given where a name goes, when it is not hex", function()
  -- options.field hides a name only by its shape (16 hex digits in a row);
  -- config.lua takes any printable key.  A key of letters and digits
  -- (base62, as many providers issue) given as the merge key or as a field
  -- is quoted whole in the validation error, though the client holds the
  -- key and a redactor for it (engine.redact) that these messages skip.
  local K = "Zq8RmT2xWpL9vKn3YbHs7Jd4Xc6Nf1Gh"
  local client
  setup(function() client = di.new(sbx.settings { key = K, strict = false }) end)
  teardown(function() if client then client:close() end end)

  it("is never quoted as the merge key option", function()
    local ok, r, err = pcall(client.contacts.merge, client.contacts, { EMail = "r3@example.com" }, { key = K })
    local text = tostring(ok and err or r)
    assert.falsy(text:find(K, 1, true), "the client's own key in: " .. (text:gsub(K, "<KEY>")))
  end)

  it("is never quoted as a record's field name", function()
    local ok, r, err = pcall(client.contacts.merge, client.contacts, { EMail = "r3@example.com", [K] = "\255" })
    local text = tostring(ok and err or r)
    assert.falsy(text:find(K, 1, true), "the client's own key in: " .. (text:gsub(K, "<KEY>")))
  end)
end)

describe("review 3: names hidden for 16 hex digits in a row", function()
  -- decimal digits are hex digits: a name with a 16-digit number (a
  -- timestamp, an order or card-range id) is described as "a string of
  -- N bytes" in every message, so the user cannot tell which column is at fault
  it("a field name with a 16-digit stamp is shown", function()
    assert.are.equal("'Import_2024011509300012'", options.field("Import_2024011509300012"))
  end)
end)

describe("review 3: the redactor (errors.redactor) and an echo of part of the key", function()
  -- the CLI refuses any 16 hex digits of the key on argv ("half a key is
  -- half a secret"), but a server's echo is redacted only when it holds
  -- the whole key: an echo cut short by the server (a column limit, an
  -- ellipsis) keeps all but its last bytes in err.message.
  local client, key
  setup(function()
    local s = sbx.settings()
    key = s.key
    client = di.new(s)
  end)
  teardown(function() if client then client:close() end end)

  it("hides a key the server echoes cut short", function()
    local req = assert(client:prepare("projects", "List", {}))
    local part = key:sub(1, -5)
    local body = '{"Success":false,"ErrorCode":"InvalidAuthKey","ErrorMessage":"Invalid key ' .. part .. '...",'
      .. '"idRequest":1}'
    local _, err = client:interpret(req, 401, body)
    local text = tostring(err)
    assert.falsy(text:find(key:sub(1, 20), 1, true),
      #part .. " of the key's " .. #key .. " bytes in: " .. (text:gsub(part:gsub("%p", "%%%0"), "<PART>")))
  end)
end)

describe("review 3: a project field whose code is optin (f_optin)", function()
  -- fields.from_wire strips f_, so a project's own field optin lands on
  -- c.optin, the opt-ins' place: every contact of such a project is now a
  -- protocol error, and contacts:get of the project fails whatever is asked
  local BODY = '{"Success":true,"Records":[{"idContact":5,"f_EMail":"r3-f@example.com",'
    .. '"f_optin":"web form","optin_news":true}],"TotalRecords":1}'
  local client
  setup(function() client = di.new(sbx.settings { strict = false }) end)
  teardown(function() if client then client:close() end end)
  before_each(function()
    sbx.clear_faults()
    sbx.faults { { type = "body", method = "contacts.get", body = BODY } }
  end)
  after_each(function() sbx.clear_faults() end)

  it("contacts:get reads the contact, its opt-ins and its field optin both", function()
    -- (limit 1: the fault answers every page alike, the proof of the end included)
    local list, err = client.contacts:get({ EMail = "r3-f@example.com" }, { limit = 1 })
    assert.is_table(list, "contacts:get failed: " .. tostring(err))
    assert.are.equal(true, list[1].optin.news)
    assert.are.equal("web form", list[1].f_optin)
  end)
end)

describe("review 3: a merge's returned record holding a bare member optin", function()
  -- a member named optin without a wire prefix would take the opt-ins' place:
  -- the outcome keeps its verdict (the server merged it) and says why the record is missing
  local BODY = '{"Success":true,"Records":[{"IdRecord":7,"ValidationResult":"OK","Status":"Updated",'
    .. '"Record":{"idContact":7,"f_EMail":"r3-bare@example.com","optin":3}}]}'
  local client
  setup(function() client = di.new(sbx.settings { strict = false }) end)
  teardown(function() if client then client:close() end end)
  before_each(function()
    sbx.clear_faults()
    sbx.faults { { type = "body", method = "contacts.merge", body = BODY } }
  end)
  after_each(function() sbx.clear_faults() end)

  it("contacts:merge keeps the verdict and gives record_problem, never a silent nil", function()
    local o = assert(client.contacts:merge({ EMail = "r3-bare@example.com" }, { return_records = true }))
    assert.are.equal("updated", o.outcome)
    assert.is_nil(o.record)
    assert.matches("optin", o.record_problem)
  end)
end)
