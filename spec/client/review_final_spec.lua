-- Final review: the webhook runner's lease and the sync state's index size (no server).
local core = require "dialoginsight.core"
local webhooks = require "dialoginsight.webhooks"
local store = require "dialoginsight.webhooks.store"
local runner = require "dialoginsight.webhooks.runner"

local TMP = os.tmpname()
os.remove(TMP)
os.execute("mkdir -p " .. TMP)

local function event(id)
  local body = core.encode { Type = "contact_optout", EventUniqueID = id, ContactID = { idContact = 1 } }
  return assert(webhooks.parse(body, {}, { verify = false })), body
end

describe("review final: webhooks runner", function()
  it("never runs an event whose lease it lost before starting it, unannounced", function()
    -- Runner A claims a and b under one lease (10 s); a's handler takes 20 s, so b's lease
    -- ends before A reaches it.  Runner B claims b (attempts 2), handles it (retry), marks
    -- it done.  A then runs b's handler again, announced as a first run (retry false).
    local s = assert(store.open(TMP .. "/lease.db"))
    local ea, ba = event("a")
    local eb, bb = event("b")
    s:put(ea, ba, 0)
    s:put(eb, bb, 0)
    local t = 0
    local clock = function() return t end
    local runs = {}
    local hb = { lease = 10, handler = function(e) runs[#runs + 1] = e.id .. (e.retry and "!" or "") end }
    local ha = { lease = 10, handler = function(e)
      runs[#runs + 1] = e.id .. (e.retry and "!" or "")
      if e.id == "a" then
        t = 20 -- a slow handler
        assert(runner.run_due(s, hb, clock)) -- runner B, meanwhile
      end
    end }
    assert(runner.run_due(s, ha, clock))
    -- b ran on B (announced); A must not run it again, or must announce it
    local b_unannounced = 0
    for _, r in ipairs(runs) do if r == "b" then b_unannounced = b_unannounced + 1 end end
    local b_runs = 0
    for _, r in ipairs(runs) do if r:sub(1, 1) == "b" then b_runs = b_runs + 1 end end
    assert.is_true(b_runs == 1 or b_unannounced == 0, table.concat(runs, ","))
  end)
end)

describe("review final: sync state index", function()
  local state = require "dialoginsight.cli.sync.state"
  local function vmsize()
    local f = io.open("/proc/self/status")
    if not f then return nil end
    local s = f:read("*a")
    f:close()
    return tonumber(s:match("VmSize:%s*(%d+)"))
  end

  it("is sized for the keys the state holds, not for every confirmation ever made", function()
    -- meta 'seq' counts confirmations since the state was made (never reset, not even when
    -- another key field empties it); load() sizes the keyset at 2 x seq.  50 nightly runs
    -- confirming a million rows each: a 1-row state maps 2^27 slots (2 GB).
    local path = TMP .. "/seq.di-state"
    local meta = { target = "t", project = "p", key = "EMail", types = "x" }
    local s = assert(state.open(path, meta))
    assert(s:confirm({ { "a@x", '{"ID":{"key_EMail":"a@x"}}' } }, { "a@x" }, 1))
    assert(s.db:query("UPDATE meta SET v = '50000000' WHERE k = 'seq'"))
    s:close()
    local before = vmsize()
    if not before then pending("no /proc") return end
    local s2 = assert(state.open(path, meta))
    local grew = vmsize() - before
    s2:close()
    assert.is_true(grew < 100 * 1024, "a 1-row state's index took " .. grew .. " kB")
  end)
end)
