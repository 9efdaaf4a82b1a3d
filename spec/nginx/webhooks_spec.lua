-- The webhook receiver (webhooks/ngx.lua) in a real nginx with two workers, its store on
-- disk, its handler in a timer (spec/nginx/events_app.lua): what is acknowledged is
-- stored and handled, through kill -9, duplicates, bad deliveries and a second host.
-- Single deliveries are signed with the openssl command; bulk ones with webhooks.sign,
-- which spec/client/webhooks_spec.lua checks against openssl.
local H = require "nginx.helper"
local property = require "support.property"
local webhooks = require "dialoginsight.webhooks"
local core = require "dialoginsight.core"

local SECRET = "spec-hook-secret-51ab"

local function conf(port, extra)
  -- as root, workers would run as nobody and could not write the store
  local user = H.sh("id -u"):match("^0%s") and "user root;\n" or ""
  return H.PREAMBLE .. user .. ([[
worker_processes 2;
pid @PREFIX@/nginx.pid;
error_log @PREFIX@/logs/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path @PREFIX@/tmp/body;
  proxy_temp_path @PREFIX@/tmp/proxy;
  fastcgi_temp_path @PREFIX@/tmp/fastcgi;
  uwsgi_temp_path @PREFIX@/tmp/uwsgi;
  scgi_temp_path @PREFIX@/tmp/scgi;
  lua_package_path "@ROOT@/lua/?.lua;@ROOT@/lua/?/init.lua;@ROOT@/spec/nginx/?.lua;;";
  lua_package_cpath "@ROOT@/build/luajit/?.so;;";
  lua_socket_log_errors off;
  init_by_lua_block {
    require("events_app").init { dir = "@PREFIX@", secret = "SECRET", project = 1001, EXTRA }
  }
  init_worker_by_lua_block { require("events_app").start() }
  server {
    listen 127.0.0.1:PORT;
    location = /events {
      client_max_body_size 4m;
      client_body_buffer_size 64k;
      content_by_lua_block { require("events_app").serve() }
    }
  }
}
]]):gsub("SECRET", SECRET):gsub("PORT", tostring(port)):gsub("EXTRA", extra or "")
end

-- A receiver in build/nginx-spec/<name>: url, dir, stop(), kill() (-9, every process), restart().
local function receiver(name, extra)
  local port = H.free_port()
  local text = conf(port, extra)
  local inst = H.start_conf(name, text)
  H.sh("rm -f " .. inst.dir .. "/*.log " .. inst.dir .. "/events.db* " .. inst.dir .. "/fail_switch")
  inst.stop()
  inst = H.start_conf(name, text)
  inst.url = "http://127.0.0.1:" .. port .. "/events"
  function inst.kill()
    local pid = H.read(inst.dir .. "/nginx.pid"):match("%d+")
    -- the master, then every worker it had (orphans would keep the port)
    H.sh("kids=$(pgrep -P " .. pid .. "); kill -9 " .. pid .. " $kids; for i in $(seq 50); do "
      .. "kill -0 " .. pid .. " $kids 2>/dev/null || break; sleep 0.02; done")
  end
  function inst.restart()
    local again = H.start_conf(name, text)
    inst.stop = again.stop
  end
  function inst.sql(q)
    return (H.sh(string.format("sqlite3 %q %q", inst.dir .. "/events.db", q)):gsub("%s+$", ""))
  end
  -- waits until no event is pending or running (at most secs)
  function inst.drained(secs)
    local t = H.now()
    repeat
      if inst.sql("select count(*) from events where state in ('pending','running')") == "0" then return true end
      H.sh("sleep 0.1")
    until H.now() - t > (secs or 20)
    return false
  end
  function inst.handled()
    local list = {}
    for line in H.read(inst.dir .. "/handled.log"):gmatch("[^\n]+") do
      local id, retry, _, ty, contact, email = line:match("^(%S+) (%d) (%S+) (%S+) (%S+) (%S+)")
      list[#list + 1] = { id = id, retry = retry == "1", type = ty, contact = tonumber(contact), email = email }
    end
    return list
  end
  return inst
end

local function body_of(id, extra)
  local t = { Type = "contact_optout", EventUniqueID = id, idProject = 1001, idCompany = 5,
              ContactID = { idContact = 77 }, f_EMail = "ann@example.com", isTest = false }
  for k, v in pairs(extra or {}) do t[k] = v end
  return assert(core.encode(t))
end

local function openssl_sig(body)
  local f = os.tmpname()
  H.write(f, body)
  local out = H.sh(string.format("openssl dgst -sha256 -hmac %q -r < %q", SECRET, f))
  os.remove(f)
  return out:match("^(%x+)")
end

local function post(url, body, sig)
  local headers = { "Content-Type: application/json" }
  if sig ~= false then headers[2] = "X-DI-Signature: " .. (sig or openssl_sig(body)) end
  local status, reply = H.http(url, { method = "POST", body = body, type = "application/json", headers = headers })
  return status, reply
end

describe("the webhook receiver in nginx", function()
  local r
  setup(function() r = receiver("webhooks") end)
  teardown(function() if r then r.stop() end end)

  it("stores and handles a signed delivery, once", function()
    local status, reply = post(r.url, body_of("one-1"))
    assert.are.equal(200, status, reply)
    assert.truthy(reply:find('"stored":true', 1, true), reply)
    assert.is_true(r.drained())
    local h = r.handled()
    assert.are.equal(1, #h)
    assert.are.equal("one-1", h[1].id)
    assert.is_false(h[1].retry)
  end)

  it("answers a duplicate 2xx and does nothing more", function()
    assert.are.equal(200, (post(r.url, body_of("dup-1"))))
    local status, reply = post(r.url, body_of("dup-1"))
    assert.are.equal(200, status)
    assert.truthy(reply:find('"duplicate":true', 1, true), reply)
    assert.is_true(r.drained())
    local n = 0
    for _, h in ipairs(r.handled()) do if h.id == "dup-1" then n = n + 1 end end
    assert.are.equal(1, n)
    assert.are.equal("1", r.sql("select count(*) from events where id = 'dup-1'"))
  end)

  it("answers 401 to a bad or missing signature, and stores nothing", function()
    local before = r.sql("select count(*) from events")
    assert.are.equal(401, (post(r.url, body_of("bad-1"), string.rep("0", 64))))
    assert.are.equal(401, (post(r.url, body_of("bad-2"), false)))
    -- signed for another body: the signature covers the raw bytes
    assert.are.equal(401, (post(r.url, body_of("bad-3"), openssl_sig(body_of("bad-4")))))
    assert.are.equal(before, r.sql("select count(*) from events"))
  end)

  it("answers 413 to an oversized body, 400 to bad JSON or no EventUniqueID, 403 to another project", function()
    local big = body_of("big-1", { Pad = string.rep("x", 1100000) })
    assert.are.equal(413, (post(r.url, big)))
    assert.are.equal(400, (post(r.url, '{"Type":"contact_optout",')))
    assert.are.equal(400, (post(r.url, '{"Type":"contact_optout","idProject":1001}')))
    assert.are.equal(403, (post(r.url, body_of("other-1", { idProject = 1002 }))))
    assert.are.equal(405, (H.http(r.url)))
    assert.are.equal("0", r.sql("select count(*) from events where id in ('big-1','other-1')"))
  end)

  it("never gives a test event (isTest) to the production handler", function()
    assert.are.equal(200, (post(r.url, body_of("test-1", { isTest = true }))))
    assert.is_true(r.drained())
    for _, h in ipairs(r.handled()) do assert.are_not.equal("test-1", h.id) end
    assert.truthy(H.read(r.dir .. "/tests.log"):find("test-1", 1, true))
  end)

  it("parks a failing event as dead, and `events replay` hands it back to the handler", function()
    H.write(r.dir .. "/fail_switch", "on")
    assert.are.equal(200, (post(r.url, body_of("dead-1", { f_EMail = "fail@example.com" }))))
    assert.is_true(r.drained())
    assert.are.equal("dead", r.sql("select state from events where id = 'dead-1'"))
    assert.truthy(r.sql("select error from events where id = 'dead-1'"):find("the CRM refused dead-1", 1, true))
    local out = H.sh(H.root .. "/bin/dialoginsight events list --state dead --store " .. r.dir .. "/events.db 2>&1")
    assert.truthy(out:find("dead-1", 1, true), out)
    os.remove(r.dir .. "/fail_switch")
    out = H.sh(H.root .. "/bin/dialoginsight events replay dead-1 --store " .. r.dir .. "/events.db 2>&1")
    assert.truthy(out:find("1 event sent back", 1, true), out)
    assert.is_true(r.drained())
    assert.are.equal("done", r.sql("select state from events where id = 'dead-1'"))
    local seen
    for _, h in ipairs(r.handled()) do if h.id == "dead-1" then seen = h end end
    assert.truthy(seen, "the replayed event was not handled")
    assert.is_true(seen.retry)
  end)

  it("loses no acknowledged event to kill -9 while events arrive, and repeats none unannounced", function()
    local n = 120
    local files = r.dir .. "/bulk"
    H.sh("rm -rf " .. files .. " && mkdir -p " .. files)
    for i = 1, n do
      local b = body_of("kill-" .. i)
      local _, sig = webhooks.sign(b, { secret = SECRET })
      H.write(files .. "/" .. i .. ".json", b)
      H.write(files .. "/" .. i .. ".sig", sig)
    end
    -- a sender that records each status, in the background
    local script = files .. "/send.sh"
    H.write(script, string.format([[
for i in $(seq 1 %d); do
  code=$(curl -s -o /dev/null -m 5 -w '%%{http_code}' -H "X-DI-Signature: $(cat %s/$i.sig)" \
    -H 'Content-Type: application/json' --data-binary @%s/$i.json %s)
  echo "kill-$i $code" >> %s/acks
done
]], n, files, files, r.url, files))
    H.sh("bash " .. script .. " > /dev/null 2>&1 &")
    H.sh("sleep 0.6")
    r.kill()
    H.sh("sleep 0.3")
    r.restart()
    -- wait for the sender to finish (each failed post takes a moment)
    local t = H.now()
    while select(2, H.read(files .. "/acks"):gsub("\n", "")) < n and H.now() - t < 60 do H.sh("sleep 0.2") end
    local acked, failed = {}, {}
    for id, code in H.read(files .. "/acks"):gmatch("(%S+) (%d+)") do
      if code == "200" then acked[#acked + 1] = id else failed[#failed + 1] = id end
    end
    assert.truthy(#failed > 0, "the kill landed after the last delivery: nothing was tested")
    -- Dialog Insight sends what was not acknowledged again
    for _, id in ipairs(failed) do
      local i = id:match("%d+")
      assert.are.equal(200, (post(r.url, H.read(files .. "/" .. i .. ".json"), H.read(files .. "/" .. i .. ".sig"))))
      acked[#acked + 1] = id
    end
    assert.is_true(r.drained(30))
    local count, plain = {}, {}
    for _, h in ipairs(r.handled()) do
      count[h.id] = (count[h.id] or 0) + 1
      if not h.retry then plain[h.id] = (plain[h.id] or 0) + 1 end
    end
    for _, id in ipairs(acked) do
      assert.truthy(count[id], "acknowledged, never handled: " .. id)
      assert.truthy((plain[id] or 0) <= 1, "handled twice without being told it was a retry: " .. id)
    end
    assert.are.equal(tostring(n), r.sql("select count(*) from events where id like 'kill-%' and state = 'done'"))
  end)
end)

describe("two receivers sharing Redis (limiter_url)", function()
  local a, b, redis_url
  local function redis(cmd)
    local out, ok = H.sh("DI_REDIS_DIR=" .. H.root .. "/build/redis-webhooks-spec " .. H.root .. "/scripts/redis " .. cmd)
    assert(ok, "scripts/redis " .. cmd .. ": " .. out)
    return out
  end
  setup(function()
    redis_url = redis("start"):match("DI_REDIS_URL=(%S+)")
    H.sh("redis-cli -u " .. redis_url .. " flushall")
    -- two hosts of one receiver: the same name (their stores' paths differ here)
    a = receiver("webhooks-a", 'name = "crm", limiter_url = "' .. redis_url .. '"')
    b = receiver("webhooks-b", 'name = "crm", limiter_url = "' .. redis_url .. '"')
  end)
  teardown(function()
    if a then a.stop() end
    if b then b.stop() end
    pcall(redis, "stop")
  end)

  it("handles each event once, whichever host its deliveries reach", function()
    local n = 30
    for i = 1, n do
      local body = body_of("pair-" .. i)
      local first, second = a, b
      if i % 2 == 0 then first, second = b, a end
      assert.are.equal(200, (post(first.url, body)))
      local status, reply = post(second.url, body)
      assert.are.equal(200, status)
      assert.truthy(reply:find('"duplicate":true', 1, true), reply)
    end
    assert.is_true(a.drained())
    assert.is_true(b.drained())
    local count = {}
    for _, inst in ipairs { a, b } do
      for _, h in ipairs(inst.handled()) do count[h.id] = (count[h.id] or 0) + 1 end
    end
    for i = 1, n do assert.are.equal(1, count["pair-" .. i], "pair-" .. i) end
  end)
end)

describe("the receiver's promise as a property (random deliveries, duplicates, kills)", function()
  local r
  setup(function() r = receiver("webhooks-prop") end)
  teardown(function() if r then r.stop() end end)

  it("every acknowledged event is handled; a repeat is always announced as a retry", function()
    local serial = 0
    property.check("webhook-receiver", { scenarios = 3, seconds = 40 }, function(rng, scenario)
      local acked, sent = {}, {}
      for _ = 1, rng:int(10, 30) do
        local roll = rng:float()
        if roll < 0.1 then
          r.kill()
          if rng:chance(0.5) then H.sh("sleep 0." .. rng:int(1, 5)) end
          r.restart()
        elseif roll < 0.3 and #sent > 0 then
          local id = rng:pick(sent)
          local status = post(r.url, body_of(id), select(2, webhooks.sign(body_of(id), { secret = SECRET })))
          if status == 200 then acked[id] = true end
        else
          serial = serial + 1
          local id = "p" .. scenario .. "-" .. serial
          sent[#sent + 1] = id
          local status = post(r.url, body_of(id), select(2, webhooks.sign(body_of(id), { secret = SECRET })))
          if status == 200 then acked[id] = true end
        end
      end
      if not r.drained(30) then return false, "events still pending after 30 s" end
      local count, plain = {}, {}
      for _, h in ipairs(r.handled()) do
        count[h.id] = (count[h.id] or 0) + 1
        if not h.retry then plain[h.id] = (plain[h.id] or 0) + 1 end
      end
      for id in pairs(acked) do
        if not count[id] then return false, "acknowledged, never handled: " .. id end
        if (plain[id] or 0) > 1 then return false, "handled twice unannounced: " .. id end
      end
      return true
    end)
  end)
end)

-- Fed by the sandbox's own deliveries (sandbox/lua/sbx/webhooks.lua), in each mode of the
-- open questions (docs/wire.md): the signature's scheme and the fields' names.
describe("the receiver fed by the sandbox's deliveries", function()
  local sbx = require "support.sandbox"
  local receivers = {}
  local function with(name, extra)
    receivers[name] = receivers[name] or receiver("webhooks-sbx-" .. name, extra)
    return receivers[name]
  end
  teardown(function()
    pcall(sbx.control, "DELETE", "webhooks")
    for _, r in pairs(receivers) do r.stop() end
  end)
  before_each(function() sbx.reset(); sbx.clear_faults() end)

  local function hook(r, extra)
    local body = { url = r.url, secret = SECRET, retry_ms = 100, max_failures = 3 }
    for k, v in pairs(extra or {}) do body[k] = v end
    return sbx.control("POST", "webhooks", body)
  end

  local function merge(email)
    local reply = H.api("contacts", "Merge", { Records = { { ID = { key_f_EMail = email },
      Data = { f_FirstName = "Hook" } } } })
    assert(reply.Success, "the sandbox refused the Merge")
    return reply.Records[1].IdRecord
  end

  -- waits until the sandbox has nothing left to deliver
  local function delivered(secs)
    local t = H.now()
    repeat
      local w = sbx.control("GET", "webhooks")
      if w.pending == 0 then return w end
      H.sh("sleep 0.1")
    until H.now() - t > (secs or 15)
    error("the sandbox still has deliveries pending")
  end

  local function of(r, email)
    local list = {}
    for _, h in ipairs(r.handled()) do if h.email == email then list[#list + 1] = h end end
    return list
  end

  it("a contact created through the API reaches the handler as contact_created, once", function()
    local r = with("default")
    hook(r)
    local id = merge("hook.created@example.com")
    delivered()
    assert.is_true(r.drained())
    local got = of(r, "hook.created@example.com")
    assert.are.equal(1, #got)
    assert.are.equal("contact_created", got[1].type)
    assert.are.equal(id, got[1].contact)
  end)

  it("duplicate, reordered, late and badly signed deliveries: each event handled once", function()
    local r = with("default")
    hook(r)
    sbx.faults { { type = "webhook_duplicate", next = 2 }, { type = "webhook_bad_signature", next = 1 },
                 { type = "webhook_reorder", next = 3, count = 3, hold_ms = 300 },
                 { type = "webhook_late", next = 1, ms = 200 } }
    for i = 1, 6 do merge("hook.fault" .. i .. "@example.com") end
    local w = delivered(20)
    assert.is_true(r.drained())
    for i = 1, 6 do
      assert.are.equal(1, #of(r, "hook.fault" .. i .. "@example.com"), "hook.fault" .. i)
    end
    local refused = 0
    for _, d in ipairs(w.deliveries) do if d.status == 401 then refused = refused + 1 end end
    assert.truthy(refused >= 1, "the badly signed delivery was not refused") -- twice if also duplicated
  end)

  it("a test delivery (isTest) never reaches the production handler", function()
    local r = with("default")
    hook(r)
    sbx.faults { { type = "webhook_test", next = 1 } }
    merge("hook.test@example.com")
    delivered()
    assert.is_true(r.drained())
    assert.are.equal(0, #of(r, "hook.test@example.com"))
  end)

  it("the fields as plain names (fields = plain) read the same", function()
    local r = with("default")
    hook(r, { fields = "plain" })
    merge("hook.plain@example.com")
    delivered()
    assert.is_true(r.drained())
    assert.are.equal(1, #of(r, "hook.plain@example.com"))
  end)

  it("another signature scheme, set on both sides, is verified", function()
    local r = with("sha1", 'header = "X-Signature", algorithm = "sha1", encoding = "base64", prefix = "sha1="')
    hook(r, { signature = { header = "X-Signature", algorithm = "sha1", encoding = "base64", prefix = "sha1=" } })
    merge("hook.sha1@example.com")
    delivered()
    assert.is_true(r.drained())
    assert.are.equal(1, #of(r, "hook.sha1@example.com"))
  end)

  it("a scheme that contradicts ours is refused and reported by name; the sandbox deactivates the webhook", function()
    local r = with("default")
    hook(r, { signature = { header = "X-Hub-Signature", algorithm = "sha1", encoding = "hex", prefix = "" } })
    merge("hook.other@example.com")
    local t = H.now()
    local w
    repeat
      H.sh("sleep 0.2")
      w = sbx.control("GET", "webhooks")
    until w.webhooks[1].active == false or H.now() - t > 15
    assert.is_false(w.webhooks[1].active)
    assert.truthy(#w.alerts >= 1)
    assert.are.equal(0, #of(r, "hook.other@example.com"))
    -- the receiver's log names what the delivery carried instead
    assert.truthy(H.read(r.errlog):lower():find("the delivery has x-hub-signature", 1, true), "the contradiction is not reported")
  end)
end)
