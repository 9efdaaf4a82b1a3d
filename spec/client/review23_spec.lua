-- Review of issue 23 (webhooks): each `it` is a finding, failing on the code as reviewed.
-- No server: Redis is an in-memory fake given to receiver.new's connect.
local webhooks = require "dialoginsight.webhooks"
local receiver = require "dialoginsight.webhooks.receiver"
local store = require "dialoginsight.webhooks.store"
local core = require "dialoginsight.core"

local TMP = os.tmpname()
os.remove(TMP)
os.execute("mkdir -p " .. TMP)

local n = 0
local function path(name)
  n = n + 1
  return TMP .. "/" .. (name or "events") .. n .. ".db"
end

local SECRET = "whsec-review23"

local function body_of(id, extra)
  local t = { Type = "contact_optout", EventUniqueID = id, idProject = 1001, ContactID = { idContact = 5 },
    f_EMail = "ann@example.com", isTest = false }
  for k, v in pairs(extra or {}) do t[k] = v end
  return core.encode(t)
end

local function headers(body)
  local name, value = webhooks.sign(body, { secret = SECRET })
  return { [name] = value }
end

-- An in-memory Redis (SET [NX] [PX], GET, DEL), shared by every connection made from it.
local function fake_redis()
  local keys = {}
  return function()
    return {
      command = function(_, _, cmd, k, v, ...)
        if cmd == "SET" then
          local nx = false
          for _, a in ipairs { ... } do if a == "NX" then nx = true end end
          if nx and keys[k] ~= nil then return nil end
          keys[k] = v
          return "OK"
        elseif cmd == "GET" then return keys[k]
        elseif cmd == "DEL" then keys[k] = nil; return 1 end
        return nil, "ERR unknown command", "redis"
      end,
      close = function() end,
    }
  end
end

describe("review 23: the runner", function()
  it("a handler that returns false, err has failed: the event is not marked done", function()
    -- `return ok, err` with ok == false is the other common Lua failure convention
    -- (e.g. a CRM client's `return false, "503"`): the event must stay for a retry.
    local r = receiver.new { secret = SECRET, store = path(), attempts = 3,
      handler = function() return false, "the CRM answered 503" end }
    local body = body_of("false-err-1")
    assert.are.equal(200, (r:receive(body, headers(body))))
    local counts = assert(r:run_due())
    local c = r:store():counts()
    r:store():close()
    assert.are.equal(0, counts.handled, "handled although the handler said false, err")
    assert.are.equal(0, c.done, "the event is done: its opt-out never reached the CRM")
    assert.are.equal(1, c.pending + c.dead)
  end)

  it("an event acknowledged at max_bytes = 64 MiB (the largest allowed) reaches the handler", function()
    -- the receiver takes a body of exactly max_bytes; the runner re-parses it with
    -- max_bytes = #body + 1, which options.check refuses above 64 MiB: run_due raises,
    -- the event stays running forever (never handled, never dead) and blocks its batch.
    local calls = 0
    local r = receiver.new { verify = false, store = path("big"), max_bytes = 64 * 1048576,
      handler = function() calls = calls + 1 end }
    local head = '{"Type":"contact_optout","EventUniqueID":"big-1","pad":"'
    local body = head .. string.rep("x", 64 * 1048576 - #head - 2) .. '"}'
    assert.are.equal(64 * 1048576, #body)
    assert.are.equal(200, (r:receive(body, {})))
    body = nil -- luacheck: ignore 311 (the 64 MiB string freed before run_due reads its copy)
    local ok, err = pcall(r.run_due, r)
    local c = r:store():counts()
    r:store():close()
    collectgarbage()
    assert.is_true(ok, "run_due raised: " .. tostring(err))
    assert.are.equal(1, calls)
    assert.are.equal(1, c.done)
  end)

  it("an event stored while the wall clock ran ahead is still handled after the clock is set back", function()
    -- a host that booted with its clock years ahead (bad RTC) and was corrected by NTP:
    -- the events it acknowledged meanwhile have `due` in the future and are never claimed;
    -- nothing warns (events list shows them pending).  The same holds for a lease taken then.
    local s = assert(store.open(path("clock")))
    local now = core.wall()
    local ahead = now + 5 * 365 * 86400
    local body = body_of("clock-1")
    assert.are.equal("stored", s:put({ id = "clock-1", type = "contact_optout", test = false }, body, ahead))
    local body2 = body_of("clock-2")
    assert.are.equal("stored", s:put({ id = "clock-2", type = "contact_optout", test = false }, body2, ahead))
    assert.are.equal(1, #assert(s:claim(1, ahead, 300))) -- clock-1 leased "ahead", its runner died
    local rows = assert(s:claim(10, now + 1, 300))
    s:close()
    local ids = {}
    for _, row in ipairs(rows) do ids[#ids + 1] = row.id end
    table.sort(ids)
    assert.are.same({ "clock-1", "clock-2" }, ids)
  end)
end)

describe("review 23: duplicates", function()
  it("a redelivery after `events purge` is a duplicate, not a second unannounced run", function()
    -- purge with no --older-than deletes every done event at once, and with it the only
    -- memory of its EventUniqueID: Dialog Insight's retry of a delivery whose 200 it did not
    -- get (a timeout on its side) is stored again and handled again with retry == false.
    local runs = {}
    local r = receiver.new { secret = SECRET, store = path("purge"),
      handler = function(e) runs[#runs + 1] = tostring(e.retry) end }
    local body = body_of("purge-1")
    assert.are.equal(200, (r:receive(body, headers(body))))
    assert(r:run_due())
    assert.are.equal(1, assert(r:store():purge(nil, false)))
    local status, reply = r:receive(body, headers(body))
    assert.are.equal(200, status)
    assert(r:run_due())
    r:store():close()
    assert.is_true(reply.duplicate == true, "the redelivery was stored anew")
    assert.are.same({ "false" }, runs, "handled twice, the second unannounced")
  end)

  it("two receivers (two webhooks, two stores) sharing limiter_url each store the event", function()
    -- the Redis key is dialoginsight:webhooks:<project>:<id>, with nothing of the receiver:
    -- a second receiver of the same project (another webhook URL, another handler, or
    -- staging beside production) finds "stored" and answers 200 without storing: its
    -- handler never sees the event.
    local connect = fake_redis()
    local seen = { crm = 0, archive = 0 }
    local a = receiver.new({ secret = SECRET, store = path("crm"), project = 1001,
      limiter_url = "redis://127.0.0.1:6379", handler = function() seen.crm = seen.crm + 1 end }, connect)
    local b = receiver.new({ secret = SECRET, store = path("archive"), project = 1001,
      limiter_url = "redis://127.0.0.1:6379", handler = function() seen.archive = seen.archive + 1 end }, connect)
    local body = body_of("shared-1")
    assert.are.equal(200, (a:receive(body, headers(body))))
    local status, reply = b:receive(body, headers(body))
    assert.are.equal(200, status)
    assert(a:run_due())
    assert(b:run_due())
    local cb = b:store():counts()
    a:store():close()
    b:store():close()
    assert.is_nil(reply.duplicate, "the second receiver answered 200 duplicate without storing")
    assert.are.same({ crm = 1, archive = 1 }, seen)
    assert.are.equal(1, cb.done)
  end)
end)

describe("review 23: the store file", function()
  it("refuses another application's SQLite file instead of rewriting its user_version", function()
    -- store.open runs CREATE TABLE events ... and PRAGMA user_version = 1 on whatever file it
    -- is given, then checks user_version == 1, which it just wrote: a webhook_store pointed
    -- at the app's own database (or `events list --store app.db`) adds tables to it and
    -- resets the user_version its migrations rely on; a future version-2 store is downgraded.
    local p = path("app")
    local db = assert(core.sqlite_open(p, 100))
    assert(db:exec("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT); PRAGMA user_version = 7;"))
    db:close()
    local s, err = store.open(p)
    if s then s:close() end
    db = assert(core.sqlite_open(p, 100))
    local v = db:query("PRAGMA user_version")[1].user_version
    local t = db:query("SELECT count(*) AS n FROM sqlite_master WHERE name = 'events'")[1].n
    db:close()
    assert.is_nil(s, "opened another application's database as an event store")
    assert.truthy(err)
    assert.are.equal(7, v, "its user_version was rewritten")
    assert.are.equal(0, t, "an events table was added to it")
  end)

  it("refuses store = ':memory:' (acknowledged events held in RAM only)", function()
    -- the option check takes any non-empty string; ':memory:' gives a 200 for events that a
    -- restart loses, and db_open's open(2) first drops an empty file named ':memory:' in the
    -- current directory.
    local ok, r = pcall(receiver.new, { verify = false, store = ":memory:" })
    local status
    if ok then
      local body = body_of("mem-1")
      status = r:receive(body, {})
      if r.db then r.db:close() end
    end
    local stray = io.open(":memory:", "rb")
    if stray then stray:close(); os.remove(":memory:") end
    assert.is_false(ok, "receiver.new took ':memory:'")
    assert.is_nil(status)
  end)

  it("core.sqlite_open refuses a path with a NUL byte instead of opening the prefix", function()
    local p = path("nul")
    local db = core.sqlite_open(p .. "\0.other", 100)
    local made = io.open(p, "rb")
    if made then made:close() end
    if db then db:close() end
    assert.is_nil(db, "opened " .. p .. " for a path that names another file")
    assert.is_nil(made)
  end)

  it("README says which SQLite the store needs (UPDATE ... RETURNING: 3.35)", function()
    -- store:claim uses UPDATE ... RETURNING (SQLite 3.35, 2021) and put uses ON CONFLICT
    -- DO NOTHING (3.24): on an older libsqlite3 (RHEL 8: 3.26, Ubuntu 20.04: 3.31) every
    -- delivery is acknowledged and stored, and every claim fails: no event is ever handled.
    -- Nothing checks the version at open, and no document names it.
    local f = assert(io.open("README.md", "rb"))
    local readme = f:read("*a")
    f:close()
    assert.truthy(readme:find("3%.35") or readme:find("[Ss][Qq][Ll]ite 3%.[3-9]%d"),
      "README names no minimum SQLite version")
  end)
end)

describe("review 23: secrets", function()
  it("a numeric secret is not echoed by the option check (nginx's error log, stderr)", function()
    -- secret = tonumber(x), or a number read from a YAML/JSON config: the refusal says
    -- "(got 987654321987)", the secret itself, in the error that nginx logs at start.
    local ok, err = pcall(receiver.new, { secret = 987654321987, store = path() })
    assert.is_false(ok)
    assert.falsy(tostring(err):find("987654321987", 1, true), tostring(err))
    ok, err = pcall(webhooks.verify, "{}", {}, { secret = 987654321987 })
    assert.is_false(ok)
    assert.falsy(tostring(err):find("987654321987", 1, true), tostring(err))
  end)
end)
