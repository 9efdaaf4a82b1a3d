-- Webhooks (sandbox/lua/sbx/webhooks.lua; sandbox/README.md, "Webhooks"):
-- the sandbox POSTs to a real receiver on 127.0.0.1 (webhook_receiver.py,
-- which logs every request and answers the status a file says); every
-- signature is checked with python's hmac, never with the sandbox's code.
local dir = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = dir .. "?.lua;" .. package.path
local H = require "helper"
local cjson = H.json
local q = H.q

local function sleep(s) os.execute("sleep " .. s) end

-- wait(pred, what [, seconds]) -> pred's value, or an error saying what was awaited
local function wait(pred, what, seconds)
  for _ = 1, math.floor((seconds or 10) / 0.05) do
    local v = pred()
    if v then return v end
    sleep(0.05)
  end
  error("timed out waiting for " .. what, 2)
end

-- The receiver --------------------------------------------------------------------

local R = {}

-- start_receiver([tls]): tls true (the sandbox's own certificate) or {cert, key}
local function start_receiver(tls)
  local r = {}
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. q(d)))
  r.dir, r.port_file, r.log, r.status_file = d, d .. "/port", d .. "/log", d .. "/status"
  local extra = ""
  if tls == true then
    local tlsdir = H.CA:match("^(.*)/[^/]+$")
    tls = { tlsdir .. "/server.pem", tlsdir .. "/server.key" }
  end
  if tls then extra = " --tls " .. q(tls[1]) .. " " .. q(tls[2]) end
  assert(os.execute("python3 " .. q(dir .. "webhook_receiver.py") .. " " .. q(r.port_file) .. " " .. q(r.log) ..
    " " .. q(r.status_file) .. extra .. " >" .. q(d .. "/out") .. " 2>&1 & echo $! >" .. q(d .. "/pid")))
  r.port = wait(function() return tonumber(H.readfile(r.port_file) or "") end, "the receiver to listen")
  r.pid = tonumber(H.readfile(d .. "/pid"))
  return r
end

local function stop_receiver(r)
  if r and r.pid then os.execute("kill " .. r.pid .. " 2>/dev/null") end
  if r then os.execute("rm -rf " .. q(r.dir)) end
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- the requests received so far: { t, path, headers, body (text), json (decoded) }
local function received(r)
  r = r or R.plain
  local out = {}
  -- whole lines only: the receiver may be writing the last one
  for line in (H.readfile(r.log) or ""):gmatch("([^\n]+)\n") do
    local rec = cjson.decode(line)
    rec.json = cjson.decode(rec.body)
    out[#out + 1] = rec
  end
  return out
end

local function got(n, r)
  return wait(function() local l = received(r); return #l >= n and l end, n .. " deliveries")
end

-- the receiver answers `status` (to the next n requests, then 200)
local function answer(status, n, r)
  write((r or R.plain).status_file, status and (status .. (n and (" " .. n) or "")) or "")
end

-- python's HMAC of a body: hex, or base64
local function hmac(alg, key, body, encoding)
  local bf, kf = os.tmpname(), os.tmpname()
  write(bf, body)
  write(kf, key)
  local p = io.popen("python3 -c " .. q("import sys,hmac,hashlib,base64\n" ..
    "d = hmac.new(open(sys.argv[2],'rb').read(), open(sys.argv[1],'rb').read(), getattr(hashlib, sys.argv[3])).digest()\n" ..
    "print(base64.b64encode(d).decode() if sys.argv[4] == 'base64' else d.hex())") ..
    " " .. q(bf) .. " " .. q(kf) .. " " .. alg .. " " .. encoding)
  local out = p:read("a"):gsub("%s+$", "")
  p:close()
  os.remove(bf); os.remove(kf)
  return out
end

-- Control -------------------------------------------------------------------------

local function hook(cfg, r)
  cfg = cfg or {}
  if cfg.url == nil then cfg.url = "http://127.0.0.1:" .. (r or R.plain).port .. "/hook" end
  local j, res = H.control("POST", "webhooks", cfg)
  assert(res.status == 200, "POST webhooks: " .. res.raw)
  return j.webhook
end

local function state(since) return H.control("GET", "webhooks" .. (since and ("?since=" .. since) or "")) end

local function emit(b)
  local j, res = H.control("POST", "webhooks/emit", b)
  return j, res
end

local BRIEF = "999999999999" -- since: no delivery records in the reply

local function uid_counter(id) return tonumber(id:match("%-(%x+)$"), 16) end

local DT = "^%d%d%d%d%.%d%d%.%d%d %d%d:%d%d:%d%d$"
local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

describe("webhooks", function()
  setup(function() R.plain = start_receiver() end)
  teardown(function() stop_receiver(R.plain) end)
  before_each(function()
    H.reset()
    write(R.plain.log, "")
    answer(nil)
  end)

  describe("events from the API", function()
    it("a Merge that creates a contact delivers contact_created, signed (HMAC-SHA256, hex) by default", function()
      local w = hook { secret = "s3cret", events = { "contact_created" } }
      assert.same({ true, true, { "contact_created" }, "X-DI-Signature", "sha256", "hex", "", "prefixed" },
        { w.active, w.signed, w.events, w.signature.header, w.signature.algorithm, w.signature.encoding,
          w.signature.prefix, w.fields })
      assert.is_nil(w.secret)
      local m = H.ok(H.merge({ H.rec("nina@example.com", { f_FirstName = "Nina", f_Points = 7 }) }))
      local id = m.Records[1].IdRecord
      local d = got(1)[1]
      assert.equal("/hook", d.path)
      assert.equal("application/json", d.headers["content-type"])
      assert.equal("DialogInsight-Webhook (sandbox)", d.headers["user-agent"])
      assert.equal(hmac("sha256", "s3cret", d.body, "hex"), d.headers["x-di-signature"])
      local b = d.json
      assert.equal("contact_created", b.Type)
      assert.matches(UUID, b.EventUniqueID)
      assert.matches(DT, b.dtExecution)
      assert.is_number(b.idCompany)
      assert.equal(H.PROJECT, b.idProject)
      assert.same({ idContact = id }, b.ContactID)
      assert.equal(13, id)
      assert.is_false(b.isTest)
      assert.same({ "nina@example.com", "Nina", 7, cjson.null, cjson.null },
        { b.f_EMail, b.f_FirstName, b.f_Points, b.f_City, b.optin_Newsletter })
      assert.is_nil(b.idSendLog)
      -- the order of the members: Type first, the fields last
      assert.truthy(d.body:find('^{"Type":"contact_created","EventUniqueID":"[^"]+","dtExecution":"[^"]+","idCompany":%d+,'
        .. '"idProject":%d+,"ContactID":{"idContact":13},"isTest":false,"f_EMail":'))
      local s = state()
      assert.same({ 1, 0, 1 }, { s.sent, s.pending, #s.deliveries })
      assert.same({ b.EventUniqueID, "contact_created", 1, 200, cjson.null },
        { s.deliveries[1].EventUniqueID, s.deliveries[1].Type, s.deliveries[1].attempt, s.deliveries[1].status,
          s.deliveries[1].error })
      -- an update is not subscribed: nothing more
      H.ok(H.merge({ H.rec("nina@example.com", { f_City = "Laval" }) }))
      sleep(0.3)
      assert.equal(1, #received())
    end)

    it("an update delivers contact_updated; an opt-in set false (from true) contact_optout, set true contact_optin", function()
      hook { secret = "k", events = "all" }
      H.ok(H.merge({ H.rec("ann@example.com", { optin_Newsletter = false, f_City = "Laval" }) }))
      local l = got(2)
      assert.same({ "contact_updated", "contact_optout" }, { l[1].json.Type, l[2].json.Type })
      assert.same({ 1, 1, false, "Laval" }, { l[1].json.ContactID.idContact, l[2].json.ContactID.idContact,
        l[2].json.optin_Newsletter, l[2].json.f_City })
      assert.are_not.equal(l[1].json.EventUniqueID, l[2].json.EventUniqueID)
      -- false again: no second opt-out; true: an opt-in
      H.ok(H.merge({ H.rec("ann@example.com", { optin_Newsletter = false }) }))
      H.ok(H.merge({ H.rec("ann@example.com", { optin_Newsletter = true }) }))
      l = got(5)
      assert.same({ "contact_updated", "contact_updated", "contact_optin" }, { l[3].json.Type, l[4].json.Type, l[5].json.Type })
      sleep(0.2)
      assert.equal(5, #received())
    end)

    it("another project's webhook hears nothing of this project", function()
      hook { events = "all", project = H.OTHER_PROJECT }
      H.ok(H.merge({ H.rec("nobody-else@example.com") }))
      sleep(0.3)
      assert.same({}, received())
    end)

    it("a send delivers sending_Sent per contact (idSendLog, idMessage, dtProcessed), then its bounces and unsubscribes", function()
      hook { secret = "k", events = { "sending_Sent", "sending_Bounce", "contact_optout" } }
      H.ok(H.call("sendings", "SendSingle", { idMessage = 1, ContactFilter = { Mode = "Single", idContact = 2 } }))
      local b = got(1)[1].json
      assert.same({ "sending_Sent", 2, 1 }, { b.Type, b.ContactID.idContact, b.idMessage })
      assert.is_number(b.idSendLog)
      assert.matches(DT, b.dtProcessed)
      write(R.plain.log, "")
      -- every contact of the project, seeded run: some bounce
      H.ok(H.call("sendings", "SendBatch", { idMessage = 2, ContactFilter = { Mode = "All" } }))
      local sent, bounced, logs = {}, {}, {}
      wait(function()
        local x = received()
        local n = 0
        for _, r in ipairs(x) do if r.json.Type == "sending_Sent" then n = n + 1 end end
        return n == 12 and x
      end, "12 sending_Sent")
      sleep(0.3)
      for i, r in ipairs(received()) do
        local j = r.json
        if j.Type == "sending_Sent" then sent[#sent + 1] = i; logs[j.ContactID.idContact] = j.idSendLog
        elseif j.Type == "sending_Bounce" then
          bounced[#bounced + 1] = i
          assert.equal(logs[j.ContactID.idContact], j.idSendLog, "a bounce names its send")
          assert.equal(2, j.idMessage)
        end
      end
      assert.equal(12, #sent)
      assert.equal(12, sent[12], "the Sent events come first")
      local seen = {}
      for _, v in pairs(logs) do assert.is_nil(seen[v]); seen[v] = true end
      -- the simulation's 6 % of bounces: some, not all, after the Sent events
      assert.is_true(#bounced < 12)
      for _, i in ipairs(bounced) do assert.is_true(i > 12) end
    end)

    it("a send to 10,000 contacts does not block: the call returns at once, the events follow", function()
      H.reset { contacts = 10000 }
      hook { events = { "sending_Sent" } }
      local r = H.call("sendings", "SendBatch", { idMessage = 2, ContactFilter = { Mode = "All" } })
      H.ok(r)
      assert.is_true(r.time < 2, "the send took " .. r.time .. " s")
      local s = state(BRIEF)
      assert.is_true(s.pending + s.sent == 10012)
      wait(function() local x = state(BRIEF); return x.pending == 0 and x.sent == 10012 end, "10,012 deliveries", 60)
      assert.equal(10012, #received())
    end)
  end)

  describe("signatures", function()
    it("signs in each mode: algorithm, encoding, prefix, header", function()
      local modes = {
        { algorithm = "sha1", encoding = "hex" },
        { algorithm = "sha512", encoding = "base64", prefix = "sha512=" },
        { algorithm = "sha256", encoding = "base64", header = "X-Hub-Signature-256" },
        { algorithm = "sha256", encoding = "hex", prefix = "sha256=" },
      }
      for i, m in ipairs(modes) do
        write(R.plain.log, "")
        local w = hook { secret = "secret " .. i, signature = m, events = { "contact_quarantine" } }
        assert.equal(m.header or "X-DI-Signature", w.signature.header)
        assert.equal(1, emit({ type = "contact_quarantine", email = "bob@example.com" }).queued)
        local d = got(1)[1]
        local header = (m.header or "X-DI-Signature"):lower()
        assert.equal((m.prefix or "") .. hmac(m.algorithm, "secret " .. i, d.body, m.encoding), d.headers[header],
          "mode " .. i)
        if m.header then assert.is_nil(d.headers["x-di-signature"]) end
      end
    end)

    it("sends no signature without a secret (secret false or absent)", function()
      local w = hook { secret = false }
      assert.is_false(w.signed)
      emit { type = "contact_optout", idContact = 3 }
      local d = got(1)[1]
      assert.is_nil(d.headers["x-di-signature"])
      assert.equal("contact_optout", d.json.Type)
      assert.equal(3, d.json.ContactID.idContact)
    end)

    it("writes the fields plain (EMail) in the fields = \"plain\" mode", function()
      hook { fields = "plain" }
      emit { type = "contact_updated", email = "carol@example.com" }
      local b = got(1)[1].json
      assert.same({ "carol@example.com", "Carol", cjson.null }, { b.EMail, b.FirstName, b.f_EMail or cjson.null })
      assert.equal(false, b.optin_Newsletter)
    end)

    it("delivers over https, verifying the receiver against the sandbox's CA", function()
      local r = start_receiver(true)
      local ok, err = pcall(function()
        hook({ url = "https://localhost:" .. r.port .. "/tls", secret = "k" }, r)
        emit { type = "contact_created", idContact = 4 }
        local d = got(1, r)[1]
        assert.equal("/tls", d.path)
        assert.equal(hmac("sha256", "k", d.body, "hex"), d.headers["x-di-signature"])
        assert.equal(200, state().deliveries[1].status)
        -- 127.0.0.1 is checked as localhost
        hook({ url = "https://127.0.0.1:" .. r.port .. "/ip" }, r)
        emit { type = "contact_created", idContact = 4 }
        assert.equal("/ip", got(2, r)[2].path)
      end)
      stop_receiver(r)
      assert(ok, err)
    end)

    it("refuses an https receiver whose certificate the sandbox's CA did not sign", function()
      local d = os.tmpname()
      os.remove(d)
      assert(os.execute("mkdir -p " .. q(d) .. " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes " ..
        "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -days 1 -keyout " .. q(d .. "/k.pem") ..
        " -out " .. q(d .. "/c.pem") .. " >/dev/null 2>&1"))
      local r = start_receiver({ d .. "/c.pem", d .. "/k.pem" })
      local ok, err = pcall(function()
        hook({ url = "https://localhost:" .. r.port .. "/", retry_ms = 0, max_failures = 1 }, r)
        emit { type = "contact_created", idContact = 4 }
        local s = wait(function() local x = state(); return #x.alerts == 1 and x end, "the alert")
        assert.equal(0, s.deliveries[1].status)
        assert.matches("^tls: ", s.deliveries[1].error)
        assert.same({}, received(r))
      end)
      stop_receiver(r)
      os.execute("rm -rf " .. q(d))
      assert(ok, err)
    end)
  end)

  describe("retries", function()
    it("retries a failing delivery with the same body and back-off, then deactivates the webhook with an alert", function()
      answer(500)
      hook { secret = "k", retry_ms = 100, max_failures = 4 }
      emit { type = "sending_Bounce", email = "dave@example.com" }
      local s = wait(function() local x = state(); return #x.alerts == 1 and x end, "the alert")
      local l = received()
      assert.equal(4, #l)
      for i = 2, 4 do
        assert.equal(l[1].body, l[i].body)
        assert.equal(l[1].headers["x-di-signature"], l[i].headers["x-di-signature"])
      end
      -- back-off: 100, 200, 400 ms
      for i, want in ipairs({ 0.1, 0.2, 0.4 }) do
        local gap = l[i + 1].t - l[i].t
        assert.is_true(gap >= want * 0.9 and gap < want + 0.5, "gap " .. i .. ": " .. gap)
      end
      assert.same({ false, 4, 1 }, { s.webhooks[1].active, s.webhooks[1].failures, s.pending })
      assert.matches("deactivated after 4 failed deliveries", s.alerts[1].reason)
      assert.matches("HTTP 500", s.alerts[1].reason)
      assert.equal(s.webhooks[1].url, s.alerts[1].url)
      assert.matches(DT, s.alerts[1].at)
      local att = {}
      for i, d in ipairs(s.deliveries) do att[i] = { d.attempt, d.status, d.EventUniqueID } end
      local id = l[1].json.EventUniqueID
      assert.same({ { 1, 500, id }, { 2, 500, id }, { 3, 500, id }, { 4, 500, id } }, att)
      -- deactivated: new events wait; re-activated: the queue resumes, in order
      emit { type = "contact_updated", email = "dave@example.com" }
      sleep(0.3)
      assert.equal(4, #received())
      answer(nil)
      local a = H.control("POST", "webhooks/activate", {})
      assert.is_true(a.webhook.active)
      l = got(6)
      assert.same({ id, "contact_updated" }, { l[5].json.EventUniqueID, l[6].json.Type })
      s = state()
      assert.same({ true, 0, 0, 2 }, { s.webhooks[1].active, s.webhooks[1].failures, s.pending, s.sent })
    end)

    it("a failure followed by success resets the count; a refused connection fails as status 0", function()
      answer(503, 2)
      hook { retry_ms = 50, max_failures = 3 }
      emit { type = "contact_created", idContact = 5, count = 2 }
      local l = got(4)
      assert.same({ 503, 503, 200, 200 }, { l[1].status, l[2].status, l[3].status, l[4].status })
      assert.equal(l[1].json.EventUniqueID, l[3].json.EventUniqueID)
      wait(function() return state().sent == 2 end, "2 sent")
      assert.equal(0, state().webhooks[1].failures)
      -- nothing listens on the port of a stopped receiver
      local r = start_receiver()
      stop_receiver(r)
      sleep(0.2)
      hook({ retry_ms = 0, max_failures = 2 }, r)
      emit { type = "contact_created", idContact = 5 }
      local s = wait(function() local x = state(); return #x.alerts == 1 and x end, "the alert")
      local d = s.deliveries
      assert.equal(6, #d, "the records of the webhook before are kept")
      assert.same({ 0, 0 }, { d[5].status, d[6].status })
      assert.matches("^connect: ", d[5].error)
    end)

    it("a receiver slower than timeout_ms is a failure", function()
      -- a listener that never answers: nc-less, python's socket that accepts and waits
      local d = os.tmpname()
      os.remove(d)
      os.execute("python3 -c " .. q("import socket,sys,time\ns=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(8)\n" ..
        "open(sys.argv[1]+'.tmp','w').write(str(s.getsockname()[1]))\nimport os; os.rename(sys.argv[1]+'.tmp', sys.argv[1])\n" ..
        "c=[]\nwhile True: c.append(s.accept())") .. " " .. q(d) .. " >/dev/null 2>&1 & echo $! >" .. q(d .. ".pid"))
      local port = wait(function() return tonumber(H.readfile(d) or "") end, "the silent listener")
      local ok, err = pcall(function()
        hook { url = "http://127.0.0.1:" .. port .. "/", timeout_ms = 300, retry_ms = 0, max_failures = 2 }
        emit { type = "contact_created", idContact = 6 }
        local s = wait(function() local x = state(); return #x.alerts == 1 and x end, "the alert")
        assert.same({ 0, "timeout" }, { s.deliveries[1].status, s.deliveries[1].error:match("timeout") })
        assert.is_true(s.deliveries[1].ms >= 250 and s.deliveries[1].ms < 1500, "ms " .. s.deliveries[1].ms)
      end)
      os.execute("kill $(cat " .. q(d .. ".pid") .. ") 2>/dev/null; rm -f " .. q(d) .. " " .. q(d .. ".pid"))
      assert(ok, err)
    end)
  end)

  describe("faults", function()
    it("webhook_duplicate sends a delivery twice", function()
      H.faults { { type = "webhook_duplicate", next = 1 } }
      hook { secret = "k" }
      emit { type = "contact_created", idContact = 1, count = 2 }
      local l = got(3)
      sleep(0.2)
      assert.equal(3, #received())
      assert.equal(l[1].body, l[2].body)
      assert.equal(l[1].headers["x-di-signature"], l[2].headers["x-di-signature"])
      assert.are_not.equal(l[2].json.EventUniqueID, l[3].json.EventUniqueID)
      local s = state()
      assert.same({ cjson.null, "duplicate", cjson.null }, { s.deliveries[1].fault, s.deliveries[2].fault, s.deliveries[3].fault })
      assert.equal(2, s.sent)
    end)

    it("webhook_reorder holds the next N events and delivers them in reverse order", function()
      H.faults { { type = "webhook_reorder", count = 3, next = 1 } }
      hook {}
      emit { type = "contact_updated", idContact = 1, count = 4 }
      local l = got(4)
      local order = {}
      for i, r in ipairs(l) do order[i] = uid_counter(r.json.EventUniqueID) end
      assert.same({ 3, 2, 1, 4 }, order)
      assert.matches("^reorder:3/3", state().deliveries[1].fault)
    end)

    it("webhook_late delays a delivery by ms", function()
      H.faults { { type = "webhook_late", ms = 700, next = 1 } }
      hook {}
      local p = io.popen("date +%s.%N")
      local t0 = tonumber(p:read("a"))
      p:close()
      emit { type = "contact_created", idContact = 2 }
      local d = got(1)[1]
      assert.is_true(d.t - t0 >= 0.65, "delivered after " .. (d.t - t0) .. " s")
      assert.equal("late:700", state().deliveries[1].fault)
    end)

    it("webhook_bad_signature signs one attempt wrongly; a receiver that refuses it gets the retry signed right", function()
      H.faults { { type = "webhook_bad_signature", next = 1 } }
      answer(401, 1)
      hook { secret = "k", retry_ms = 50 }
      emit { type = "contact_created", idContact = 2 }
      local l = got(2)
      assert.equal(l[1].body, l[2].body)
      assert.are_not.equal(hmac("sha256", "k", l[1].body, "hex"), l[1].headers["x-di-signature"])
      assert.matches("^%x+$", l[1].headers["x-di-signature"])
      assert.equal(64, #l[1].headers["x-di-signature"])
      assert.equal(hmac("sha256", "k", l[2].body, "hex"), l[2].headers["x-di-signature"])
      local s = state()
      assert.same({ "bad_signature", 401, cjson.null, 200 },
        { s.deliveries[1].fault, s.deliveries[1].status, s.deliveries[2].fault, s.deliveries[2].status })
    end)

    it("webhook_test marks deliveries isTest: true, as emit's isTest does", function()
      H.faults { { type = "webhook_test", next = 1 } }
      hook {}
      emit { type = "contact_created", idContact = 2, count = 2 }
      emit { type = "contact_created", idContact = 2, isTest = true }
      local l = got(3)
      assert.same({ true, false, true }, { l[1].json.isTest, l[2].json.isTest, l[3].json.isTest })
      assert.equal("test", state().deliveries[1].fault)
    end)

    it("a webhook fault with event fires only for that type, and never touches the API calls", function()
      H.faults { { type = "webhook_duplicate", event = "sending_bounce", probability = 1 },
                 { type = "webhook_test", next = 1 } }
      hook {}
      H.ok(H.merge({ H.rec("plain@example.com") }))
      emit { type = "sending_Bounce", idContact = 1 }
      local l = got(3)
      assert.same({ "contact_created", "sending_Bounce", "sending_Bounce" }, { l[1].json.Type, l[2].json.Type, l[3].json.Type })
      assert.same({ true, false }, { l[1].json.isTest, l[2].json.isTest })
      assert.equal(cjson.null, H.log()[1].fault)
      local f = H.control("GET", "faults").faults
      assert.same({ "webhook_duplicate", "sending_Bounce", 1 }, { f[1].type, f[1].event, f[1].fired })
    end)

    it("refuses a webhook fault with a bad member", function()
      for _, bad in ipairs({
        { type = "webhook_late", ms = -1 }, { type = "webhook_late", method = "contacts.merge" },
        { type = "webhook_reorder", count = 1 }, { type = "webhook_duplicate", event = "nope" },
        { type = "webhook_test", after_processing = true }, { type = "webhook_test", ms = 5 },
      }) do
        local j, r = H.control("POST", "faults", { faults = { bad } })
        assert.equal(400, r.status, cjson.encode(bad))
        assert.is_false(j.ok)
      end
      assert.same({}, H.control("GET", "faults").faults)
    end)
  end)

  describe("the control API", function()
    it("emit queues count events (1 to 10,000), each with its own EventUniqueID, delivered in order", function()
      hook {}
      local j = emit { type = "sending_Sent", email = "EVE@example.com", count = 200 }
      assert.same({ true, 200 }, { j.ok, j.queued })
      local l = got(200)
      local seen = {}
      for i, r in ipairs(l) do
        assert.is_nil(seen[r.json.EventUniqueID])
        seen[r.json.EventUniqueID] = true
        assert.equal(i, uid_counter(r.json.EventUniqueID))
        assert.equal(5, r.json.ContactID.idContact)
        assert.is_number(r.json.idSendLog)
      end
      for _, bad in ipairs({ { type = "sending_Sent", idContact = 1, count = 0 },
        { type = "sending_Sent", idContact = 1, count = 10001 }, { type = "nope", idContact = 1 },
        { type = "sending_Sent" }, { type = "sending_Sent", idContact = 1, email = "ann@example.com" },
        { type = "sending_Sent", idContact = 1, isTest = "yes" }, { type = "sending_Sent", idContact = 1, extra = 1 } }) do
        local _, r = emit(bad)
        assert.equal(400, r.status, cjson.encode(bad))
      end
      local _, r = emit { type = "sending_Sent", idContact = 999 }
      assert.equal(404, r.status)
      -- a type the webhook does not take: nothing queued
      hook { events = { "contact_created" } }
      local n = emit { type = "sending_Sent", idContact = 1 }
      assert.same({ true, 0 }, { n.ok, n.queued })
    end)

    it("refuses a bad webhook, all or nothing, keeping the one set", function()
      hook { secret = "k", events = { "contact_optout" } }
      local port = R.plain.port
      for _, bad in ipairs({
        {}, { url = "http://example.com/" }, { url = "ftp://127.0.0.1/" }, { url = "http://10.0.0.1:80/" },
        { url = "http://127.0.0.1:" .. port .. "/", nope = 1 },
        { url = "http://127.0.0.1:" .. port .. "/", secret = 5 },
        { url = "http://127.0.0.1:" .. port .. "/", events = { "contact_created", "nope" } },
        { url = "http://127.0.0.1:" .. port .. "/", events = {} },
        { url = "http://127.0.0.1:" .. port .. "/", events = "some" },
        { url = "http://127.0.0.1:" .. port .. "/", project = 9999 },
        { url = "http://127.0.0.1:" .. port .. "/", signature = { algorithm = "md5" } },
        { url = "http://127.0.0.1:" .. port .. "/", signature = { encoding = "base32" } },
        { url = "http://127.0.0.1:" .. port .. "/", signature = { header = "X Bad" } },
        { url = "http://127.0.0.1:" .. port .. "/", signature = { salt = "x" } },
        { url = "http://127.0.0.1:" .. port .. "/", fields = "camel" },
        { url = "http://127.0.0.1:" .. port .. "/", timeout_ms = 0 },
        { url = "http://127.0.0.1:" .. port .. "/", retry_ms = -1 },
        { url = "http://127.0.0.1:" .. port .. "/", max_failures = 0 },
      }) do
        local j, r = H.control("POST", "webhooks", bad)
        assert.equal(400, r.status, cjson.encode(bad))
        assert.is_false(j.ok)
        assert.is_string(j.error)
      end
      local w = state().webhooks
      assert.equal(1, #w)
      assert.same({ "contact_optout" }, w[1].events)
      assert.is_true(w[1].signed)
    end)

    it("DELETE removes the webhook; emit then answers 409", function()
      hook {}
      local j = H.control("DELETE", "webhooks")
      assert.same({}, j.webhooks)
      assert.same({}, state().webhooks)
      local _, r = emit { type = "contact_created", idContact = 1 }
      assert.equal(409, r.status)
      assert.equal(409, select(2, H.control("POST", "webhooks/activate", {})).status)
      H.ok(H.merge({ H.rec("quiet@example.com") }))
      sleep(0.2)
      assert.same({}, received())
    end)

    it("bounds the queue at 100,000: the oldest dropped, with an alert", function()
      local r = start_receiver()
      stop_receiver(r)
      hook({ retry_ms = 60000, max_failures = 1 }, r)
      for _ = 1, 11 do emit { type = "contact_updated", idContact = 1, count = 10000 } end
      local s = state(BRIEF)
      assert.same({ 100000, 10000 }, { s.pending, s.dropped })
      local found
      for _, a in ipairs(s.alerts) do if a.reason:find("queue full", 1, true) then found = a end end
      assert.truthy(found, cjson.encode(s.alerts))
    end)

    it("reset clears the webhook, its queue, the deliveries and the alerts", function()
      answer(500)
      hook { retry_ms = 0, max_failures = 1 }
      emit { type = "contact_created", idContact = 1, count = 3 }
      wait(function() return #state().alerts == 1 end, "the alert")
      local s = state()
      assert.same({ 3, 1 }, { s.pending, #s.deliveries })
      H.reset()
      s = state()
      assert.same({ {}, {}, {}, 0, 0 }, { s.webhooks, s.alerts, s.deliveries, s.pending, s.sent })
    end)
  end)
end)
