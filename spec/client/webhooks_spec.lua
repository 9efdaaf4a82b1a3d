-- dialoginsight.webhooks without a server: signatures checked against the openssl
-- command (not against our own code), deliveries read into events, and the store and
-- runner's at-least-once rules.  Lua 5.4, LuaJIT and Lua 5.1 (.busted).
local webhooks = require "dialoginsight.webhooks"
local receiver = require "dialoginsight.webhooks.receiver"
local store = require "dialoginsight.webhooks.store"
local runner = require "dialoginsight.webhooks.runner"

local TMP = os.tmpname()
os.remove(TMP)
os.execute("mkdir -p " .. TMP)

local function spit(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local s = p:read("*a")
  p:close()
  return s
end

-- The signature as the openssl command computes it: hex, or base64 of the raw digest.
local function openssl(alg, secret, body, encoding)
  local f = TMP .. "/body"
  spit(f, body)
  if encoding == "base64" then
    return (sh(string.format("openssl dgst -%s -hmac '%s' -binary < %s | openssl base64 -A", alg, secret, f))
      :gsub("%s+$", ""))
  end
  return (sh(string.format("openssl dgst -%s -hmac '%s' -r < %s", alg, secret, f)):match("^(%x+)"))
end

local SECRET = "whsec-7f3a9c2e51b04d88"
local BODY = '{"Type":"contact_optout","EventUniqueID":"ev-1","dtExecution":"2026-12-07T10:00:00",'
  .. '"idCompany":12,"idProject":1001,"ContactID":{"idContact":42},"f_EMail":"ann@example.com",'
  .. '"f_FirstName":"Ann","optin_Newsletter":false,"isTest":false}'

local function signed(body, opts)
  local o = { secret = SECRET }
  for k, v in pairs(opts or {}) do o[k] = v end
  local name, value = webhooks.sign(body, o)
  return { [name] = value }
end

describe("webhooks.sign and verify", function()
  it("signs as openssl does: HMAC-SHA256 of the raw body, lower-case hex, in X-DI-Signature", function()
    local h = signed(BODY)
    assert.are.equal(openssl("sha256", SECRET, BODY), h["X-DI-Signature"])
  end)

  it("each algorithm and encoding of the scheme agrees with openssl", function()
    for _, alg in ipairs { "sha1", "sha256", "sha512" } do
      for _, enc in ipairs { "hex", "base64" } do
        local name, value = webhooks.sign(BODY, { secret = SECRET, algorithm = alg, encoding = enc,
          header = "X-Sig", prefix = alg .. "=" })
        assert.are.equal("X-Sig", name)
        assert.are.equal(alg .. "=" .. openssl(alg, SECRET, BODY, enc), value)
        assert.is_true(webhooks.verify(BODY, { ["x-sig"] = value }, { secret = SECRET, algorithm = alg,
          encoding = enc, header = "X-Sig", prefix = alg .. "=" }))
      end
    end
  end)

  it("takes the header in any case, and upper-case hex", function()
    local v = signed(BODY)["X-DI-Signature"]
    assert.is_true(webhooks.verify(BODY, { ["x-di-signature"] = v:upper() }, { secret = SECRET }))
  end)

  it("refuses a changed byte, another secret, a repeated header, a missing one", function()
    local h = signed(BODY)
    local changed = BODY:gsub("ev%-1", "ev-2")
    local ok, err = webhooks.verify(changed, h, { secret = SECRET })
    assert.is_nil(ok)
    assert.are.equal("signature", err.kind)
    assert.are.equal(401, err.status)
    assert.is_nil(webhooks.verify(BODY, h, { secret = SECRET .. "x" }))
    ok, err = webhooks.verify(BODY, { ["X-DI-Signature"] = { h["X-DI-Signature"], h["X-DI-Signature"] } },
      { secret = SECRET })
    assert.is_nil(ok)
    assert.truthy(err.message:find("repeated", 1, true))
    ok, err = webhooks.verify(BODY, {}, { secret = SECRET })
    assert.is_nil(ok)
    assert.truthy(err.message:find("no X-DI-Signature header", 1, true))
  end)

  it("names the signature-like headers a delivery has when ours is absent (the guess is wrong)", function()
    local _, err = webhooks.verify(BODY, { ["X-Hub-Signature-256"] = "sha256=00", ["Content-Type"] = "a" },
      { secret = SECRET })
    assert.truthy(err.message:find("X-Hub-Signature-256", 1, true), err.message)
    assert.falsy(err.message:find("Content-Type", 1, true))
  end)

  it("never reads a wrong-length or empty signature as a match", function()
    assert.is_nil(webhooks.verify(BODY, { ["X-DI-Signature"] = "" }, { secret = SECRET }))
    local v = signed(BODY)["X-DI-Signature"]
    assert.is_nil(webhooks.verify(BODY, { ["X-DI-Signature"] = v:sub(1, -2) }, { secret = SECRET }))
    assert.is_nil(webhooks.verify(BODY, { ["X-DI-Signature"] = v .. "0" }, { secret = SECRET }))
  end)

  it("verify = false takes an unsigned delivery; a function replaces the check", function()
    assert.is_true(webhooks.verify(BODY, {}, { verify = false }))
    local seen
    assert.is_true(webhooks.verify(BODY, { a = "b" }, { verify = function(b, h) seen = { b, h.a }; return true end }))
    assert.are.same({ BODY, "b" }, seen)
    local ok, err = webhooks.verify(BODY, {}, { verify = function() return nil, "stale timestamp" end })
    assert.is_nil(ok)
    assert.truthy(err.message:find("stale timestamp", 1, true))
  end)

  it("without a secret or verify = false, raises saying how to choose", function()
    local ok, err = pcall(webhooks.verify, BODY, {}, {})
    assert.is_false(ok)
    assert.truthy(tostring(err):find("DI_WEBHOOK_SECRET", 1, true))
    assert.truthy(tostring(err):find("verify = false", 1, true))
  end)

  it("refuses a misspelled option with the closest name, and a bad value", function()
    local ok, err = pcall(webhooks.verify, BODY, {}, { secert = SECRET })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("did you mean 'secret'", 1, true), tostring(err))
    ok, err = pcall(webhooks.verify, BODY, {}, { secret = SECRET, algorithm = "md5" })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("sha256", 1, true))
    ok = pcall(webhooks.verify, BODY, {}, { verify = "false" })
    assert.is_false(ok)
  end)
end)

describe("webhooks.parse", function()
  local opts = { secret = SECRET }

  it("reads a delivery into an event with friendly names", function()
    local e = assert(webhooks.parse(BODY, signed(BODY), opts))
    assert.are.equal("contact_optout", e.type)
    assert.are.equal("ev-1", e.id)
    assert.are.equal(42, e.contact)
    assert.are.equal(1001, e.project)
    assert.are.equal(12, e.company)
    assert.are.equal(false, e.test)
    assert.are.equal("2026-12-07T10:00:00", e.executed)
    assert.are.equal("ann@example.com", e.fields.EMail)
    assert.are.equal("Ann", e.fields.FirstName)
    assert.are.equal(false, e.fields.optin.Newsletter)
    assert.are.equal("ev-1", e.raw.EventUniqueID)
  end)

  it("reads plain field names too (EMail), and a numeric EventUniqueID as text", function()
    local b = '{"Type":"sending_Bounce","EventUniqueID":123456789012,"EMail":"b@example.com",'
      .. '"idSendLog":9,"idMessage":3,"dtProcessed":"2026-12-07T10:00:01","isTest":"true"}'
    local e = assert(webhooks.parse(b, signed(b), opts))
    assert.are.equal("123456789012", e.id)
    assert.are.equal("b@example.com", e.fields.EMail)
    assert.are.equal(9, e.send_log)
    assert.are.equal(3, e.message)
    assert.is_true(e.test)
  end)

  local function refused(body, o, kind, status)
    local e, err = webhooks.parse(body, signed(body), o or opts)
    assert.is_nil(e)
    assert.are.equal(kind, err.kind, tostring(err))
    assert.are.equal(status, err.status)
    return err
  end

  it("refuses with a typed error: too large 413 (before anything else), bad JSON 400", function()
    local big = '{"Type":"x","EventUniqueID":"a","pad":"' .. string.rep("x", 2000) .. '"}'
    local err = refused(big, { secret = SECRET, max_bytes = 1000 }, "too_large", 413)
    assert.are.equal(1000, err.limit)
    refused('{"Type":', nil, "decode", 400)
    refused("[1,2]", nil, "decode", 400)
    refused("[]", nil, "decode", 400)
    refused('"text"', nil, "decode", 400)
  end)

  it("refuses a delivery without EventUniqueID or Type, or with bad members (400)", function()
    assert.are.equal("EventUniqueID", refused('{"Type":"x"}', nil, "validation", 400).field)
    refused('{"Type":"x","EventUniqueID":""}', nil, "validation", 400)
    refused('{"Type":"x","EventUniqueID":"a\\nb"}', nil, "validation", 400)
    refused('{"EventUniqueID":"a"}', nil, "validation", 400)
    refused('{"Type":"x","EventUniqueID":"a","isTest":"maybe"}', nil, "validation", 400)
    refused('{"Type":"x","EventUniqueID":"a","ContactID":{"idContact":"7"}}', nil, "validation", 400)
    refused('{"Type":"x","EventUniqueID":"a","idProject":1.5}', nil, "validation", 400)
  end)

  it("refuses another project's event (403) when project is set", function()
    refused(BODY, { secret = SECRET, project = 1002 }, "project", 403)
    assert.truthy(webhooks.parse(BODY, signed(BODY), { secret = SECRET, project = 1001 }))
  end)
end)

-- A store in a fresh file; a clock the test moves.
local n = 0
local function fresh()
  n = n + 1
  local path = TMP .. "/events" .. n .. ".db"
  return assert(store.open(path)), path
end

local function event(id, extra)
  local t = { Type = "contact_optout", EventUniqueID = id, ContactID = { idContact = 1 } }
  for k, v in pairs(extra or {}) do t[k] = v end
  local body = require("dialoginsight.core").encode(t)
  return assert(webhooks.parse(body, {}, { verify = false })), body
end

describe("webhooks.store and runner", function()
  it("stores an event once: a second delivery of its id is a duplicate", function()
    local s = fresh()
    local e, b = event("a")
    assert.are.equal("stored", s:put(e, b, 1))
    assert.are.equal("duplicate", s:put(e, b, 2))
    assert.are.equal(1, s:counts().pending)
  end)

  it("creates the file 0600 and refuses a symbolic link and a file that is no store", function()
    local _, path = fresh()
    assert.are.equal("600", sh("stat -c %a " .. path):match("%d+"))
    os.execute("ln -sf " .. path .. " " .. TMP .. "/link.db")
    local s, err = store.open(TMP .. "/link.db")
    assert.is_nil(s)
    assert.are.equal("store", err.kind)
    spit(TMP .. "/notes.txt", "not a database, some text that SQLite cannot read as one\n")
    s, err = store.open(TMP .. "/notes.txt")
    assert.is_nil(s)
    assert.are.equal(503, err.status)
  end)

  it("hands each event to the handler once, in order, and never a test event", function()
    local s = fresh()
    for i, id in ipairs { "a", "b", "t", "c" } do
      local e, b = event(id, id == "t" and { isTest = true } or nil)
      s:put(e, b, i)
    end
    local seen, tests = {}, {}
    local h = { handler = function(e) seen[#seen + 1] = e.id .. (e.retry and "!" or "") end }
    local c = assert(runner.run_due(s, h, function() return 10 end))
    assert.are.same({ "a", "b", "c" }, seen)
    assert.are.equal(3, c.handled)
    assert.are.equal(1, c.test)
    h.on_test = function(e) tests[#tests + 1] = e.id end
    assert.are.equal(0, runner.run_due(s, h, function() return 11 end).claimed)
    assert.are.same({}, tests)
    assert.are.equal(4, s:counts().done)
  end)

  it("gives a test event to on_test only", function()
    local s = fresh()
    local e, b = event("t", { isTest = true })
    s:put(e, b, 1)
    local seen, tests = {}, {}
    runner.run_due(s, { handler = function(x) seen[#seen + 1] = x.id end,
      on_test = function(x) tests[#tests + 1] = x.id end }, function() return 2 end)
    assert.are.same({}, seen)
    assert.are.same({ "t" }, tests)
  end)

  it("retries a failing handler with back-off, then parks the event as dead with its error", function()
    local s = fresh()
    local e, b = event("x")
    s:put(e, b, 0)
    local calls = 0
    local h = { attempts = 3, backoff = 10, handler = function() calls = calls + 1; error("CRM is down") end }
    local t = 0
    local clock = function() return t end
    assert.are.equal(1, runner.run_due(s, h, clock).failed)
    t = 9 -- not due before its back-off (10 s)
    assert.are.equal(0, runner.run_due(s, h, clock).claimed)
    t = 10
    assert.are.equal(1, runner.run_due(s, h, clock).failed)
    t = 29 -- the second back-off doubles: 20 s
    assert.are.equal(0, runner.run_due(s, h, clock).claimed)
    t = 30
    assert.are.equal(1, runner.run_due(s, h, clock).dead)
    assert.are.equal(3, calls)
    local dead = s:list("dead")
    assert.are.equal(1, #dead)
    assert.truthy(dead[1].error:find("CRM is down", 1, true))
    -- replayed: a new round, and the handler is told it is a retry
    assert.are.equal(1, s:replay(nil, 31))
    local retry
    h.handler = function(x) retry = x.retry end
    t = 31
    assert.are.equal(1, runner.run_due(s, h, clock).handled)
    assert.is_true(retry)
    assert.are.equal(1, s:counts().done)
  end)

  it("takes nil, err from a handler as a failure", function()
    local s = fresh()
    local e, b = event("y")
    s:put(e, b, 0)
    local c = runner.run_due(s, { handler = function() return nil, "refused by the CRM" end }, function() return 1 end)
    assert.are.equal(1, c.failed)
    assert.truthy(s:list("pending")[1].error:find("refused by the CRM", 1, true))
  end)

  it("gives an event whose runner died back after its lease, as a retry; the late runner's word is lost", function()
    local s = fresh()
    local e, b = event("z")
    s:put(e, b, 0)
    local rows = s:claim(10, 1, 5) -- a runner takes it, then dies
    assert.are.equal(1, #rows)
    assert.are.equal(0, #s:claim(10, 5.9, 5)) -- still leased
    local retry
    local c = runner.run_due(s, { handler = function(x) retry = x.retry end, lease = 5 }, function() return 6.5 end)
    assert.are.equal(1, c.handled)
    assert.is_true(retry)
    -- the first runner comes back: its done no longer counts
    assert.is_false(s:done(rows[1], 7))
  end)

  it("purges handled events only (and dead ones when asked), never pending ones", function()
    local s = fresh()
    for i, id in ipairs { "d1", "d2", "p1" } do local e, b = event(id); s:put(e, b, i) end
    runner.run_due(s, { handler = function(x) if x.id == "p1" then error("no") end end, claim_size = 2 },
      function() return 10 end)
    runner.run_due(s, { handler = function() error("no") end, attempts = 1 }, function() return 10 end)
    assert.are.same({ pending = 0, running = 0, done = 2, dead = 1, purged = 0 }, s:counts())
    assert.are.equal(2, s:purge(nil, false))
    assert.are.equal(1, s:counts().dead)
    local e, b = event("p2")
    s:put(e, b, 20)
    assert.are.equal(1, s:purge(nil, true))
    assert.are.equal(1, s:counts().pending)
  end)
end)

describe("webhooks.receiver", function()
  it("answers 200 once stored, 200 for a duplicate, 401 for a bad signature (nothing stored)", function()
    n = n + 1
    local r = receiver.new { secret = SECRET, store = TMP .. "/recv" .. n .. ".db" }
    local st, reply = r:receive(BODY, signed(BODY))
    assert.are.equal(200, st)
    assert.is_true(reply.stored)
    st, reply = r:receive(BODY, signed(BODY))
    assert.are.equal(200, st)
    assert.is_true(reply.duplicate)
    local other = BODY:gsub("ev%-1", "ev-9")
    st = r:receive(other, signed(BODY))
    assert.are.equal(401, st)
    assert.are.equal(1, r:store():counts().pending)
  end)

  it("answers 503 when the store cannot take the event: never a 2xx for what is not stored", function()
    local r = receiver.new { secret = SECRET, store = TMP } -- a directory
    local st, reply = r:receive(BODY, signed(BODY))
    assert.are.equal(503, st)
    assert.are.equal("store", reply.error)
  end)

  it("refuses to start without a secret unless verify = false is said", function()
    local ok, err = pcall(receiver.new, { store = TMP .. "/x.db" })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("verify = false", 1, true))
    assert.truthy(receiver.new { verify = false, store = TMP .. "/x.db" })
  end)

  it("never shows the secret in an error, even when a check quotes it", function()
    n = n + 1
    local r = receiver.new { store = TMP .. "/s" .. n .. ".db", secret = SECRET,
      verify = function() return nil, "expected " .. SECRET end }
    local _, _, err = r:receive(BODY, {})
    assert.are.equal("signature", err.kind)
    assert.falsy(tostring(err):find(SECRET, 1, true), tostring(err))
  end)
end)
