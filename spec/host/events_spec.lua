-- `dialoginsight events` and `dialoginsight webhooks send`, run as a user runs them, on a
-- store that the library's receiver filled (lua/dialoginsight/webhooks/).
local sbx = require "support.sandbox"
local H = require "support.host"
local receiver = require "dialoginsight.webhooks.receiver"
local core = require "dialoginsight.core"
local q, slurp, spit, run = H.q, H.slurp, H.spit, H.run

local dir
local n = 0

-- A store holding the events of ids (a receiver without signatures, on purpose).
local function filled(ids)
  n = n + 1
  local path = dir .. "/events" .. n .. ".db"
  local r = receiver.new { verify = false, store = path }
  for _, id in ipairs(ids) do
    local body = core.encode { Type = "contact_optout", EventUniqueID = id, ContactID = { idContact = 5 },
      f_EMail = id .. "@example.com", isTest = id:match("^test") and true or false }
    assert(r:receive(body, {}) == 200)
  end
  r:store():close()
  return path
end

-- A handler file: appends "id retry" to out; raises for ids in fail.
local function handler(out, fail)
  local path = dir .. "/handler" .. n .. ".lua"
  spit(path, string.format([[
local fail = { %s }
return function(event)
  if fail[event.id] then error("CRM refused " .. event.id) end
  local f = assert(io.open(%q, "a"))
  f:write(event.id, " ", tostring(event.retry), "\n")
  f:close()
end
]], fail and ("[" .. string.format("%q", fail) .. "] = true") or "", out))
  return path
end

describe("dialoginsight events", function()
  setup(function()
    sbx.env("DI_KEY") -- the specs run beside the sandbox (make test)
    dir = H.TMP .. "/events"
    os.execute("rm -rf " .. q(dir) .. " && mkdir -p " .. q(dir))
  end)

  it("says which store is missing", function()
    local r = run("events list", { env = "DI_WEBHOOK_STORE= " })
    assert.are.equal(1, r.code)
    assert.truthy(r.err:find("--store PATH", 1, true), r.err)
  end)

  it("refuses an unknown action and a run without a handler (usage, 64)", function()
    assert.are.equal(64, run("events frobnicate --store x.db").code)
    assert.are.equal(64, run("events run --store x.db").code)
    assert.are.equal(64, run("events replay --store x.db").code)
  end)

  it("runs the handler on each event once, skips test events, and lists them done", function()
    local db = filled { "a1", "a2", "test-1", "a3" }
    local out = dir .. "/out1"
    local r = run("events run " .. q(handler(out)) .. " --store " .. q(db))
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("a1 false\na2 false\na3 false\n", slurp(out))
    assert.truthy(r.err:find("3 handled, 1 test events skipped, 0 failed, 0 dead", 1, true), r.err)
    r = run("events list --json --store " .. q(db))
    assert.are.equal(0, r.code)
    local states = {}
    for line in r.out:gmatch("[^\n]+") do
      local e = core.decode(line)
      states[e.id] = e.state
    end
    assert.are.same({ a1 = "done", a2 = "done", a3 = "done", ["test-1"] = "done" }, states)
    -- a second run finds nothing to do
    r = run("events run " .. q(handler(out)) .. " --store " .. q(db))
    assert.are.equal(0, r.code)
    assert.are.equal("a1 false\na2 false\na3 false\n", slurp(out))
  end)

  it("exits 1 when a handler fails; the event waits for its retry, then replay hands it back", function()
    local db = filled { "b1", "b2" }
    local out = dir .. "/out2"
    local r = run("events run " .. q(handler(out, "b2")) .. " --wait 0 --store " .. q(db))
    assert.are.equal(1, r.code, r.err)
    assert.are.equal("b1 false\n", slurp(out))
    r = run("events list --state pending --store " .. q(db))
    assert.truthy(r.out:find("b2", 1, true) and r.out:find("CRM refused b2", 1, true), r.out)
    -- the handler fixed: replay takes dead or done events; b2 is pending (due later)
    r = run("events replay b2 --store " .. q(db))
    assert.are.equal(1, r.code)
    assert.truthy(r.err:find("0 events sent back", 1, true), r.err)
  end)

  it("purges handled events only", function()
    local db = filled { "c1", "c2" }
    run("events run " .. q(handler(dir .. "/out3", "c2")) .. " --wait 0 --store " .. q(db))
    local r = run("events purge --store " .. q(db))
    assert.are.equal(0, r.code)
    assert.truthy(r.err:find("1 event purged", 1, true), r.err)
    r = run("events list --json --store " .. q(db))
    assert.truthy(r.out:find('"c2"', 1, true) and not r.out:find('"c1"', 1, true), r.out)
  end)

  it("refuses a handler file that returns no function, saying what it must return", function()
    local db = filled { "d1" }
    local bad = dir .. "/bad.lua"
    spit(bad, "return 42\n")
    local r = run("events run " .. q(bad) .. " --store " .. q(db))
    assert.are.equal(1, r.code)
    assert.truthy(r.err:find("must return a function(event)", 1, true), r.err)
  end)
end)

describe("dialoginsight webhooks send", function()
  it("needs a secret from the environment or the config file, never from argv", function()
    local r = run("webhooks send contact_optout --to http://127.0.0.1:9/events", { env = "DI_WEBHOOK_SECRET= " })
    assert.are.equal(1, r.code)
    assert.truthy(r.err:find("DI_WEBHOOK_SECRET", 1, true), r.err)
    r = run("webhooks send contact_optout --to http://127.0.0.1:9/events --secret abc")
    assert.are.equal(64, r.code)
  end)

  it("checks its arguments (usage, 64)", function()
    assert.are.equal(64, run("webhooks send --to http://127.0.0.1:9/").code)
    assert.are.equal(64, run("webhooks send contact_optout").code)
    assert.are.equal(64, run("webhooks send contact_optout --to ftp://x/").code)
    assert.are.equal(64, run("webhooks send 'a b' --to http://127.0.0.1:9/").code)
    assert.are.equal(64, run("webhooks push x --to http://127.0.0.1:9/").code)
  end)

  it("says why a receiver cannot be reached, and never shows the secret", function()
    local secret = "hook-secret-9d41c07e2b"
    local r = run("-v webhooks send contact_optout --to http://127.0.0.1:9/events",
      { env = "DI_WEBHOOK_SECRET=" .. secret .. " " })
    assert.are.equal(1, r.code)
    assert.truthy(r.err:find("network", 1, true), r.err)
    assert.falsy((r.out .. r.err):find(secret, 1, true))
  end)
end)
