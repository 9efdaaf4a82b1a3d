-- Review of issue 23 (webhooks): `dialoginsight events` as a careless user runs it.
-- Each `it` is a finding, failing on the code as reviewed.  No sandbox is needed (no network).
local H = require "support.host"
local receiver = require "dialoginsight.webhooks.receiver"
local core = require "dialoginsight.core"
local q, run = H.q, H.run

local dir

describe("review 23: dialoginsight events", function()
  setup(function()
    dir = H.TMP .. "/review23"
    os.execute("rm -rf " .. q(dir) .. " && mkdir -p " .. q(dir))
  end)

  it("list and purge of a mistyped --store say there is no store, and create none", function()
    -- store.open creates the file: `events list --store /var/lib/di/event.db` (for
    -- events.db) answers "0 pending" with exit 0, so the operator concludes nothing waits,
    -- and leaves a new empty store (with -wal and -shm) behind.
    local typo = dir .. "/evnets.db"
    local r = run("events list --store " .. q(typo))
    local made = io.open(typo, "rb")
    if made then made:close() end
    local p = run("events purge --store " .. q(dir .. "/other-typo.db"))
    assert.is_nil(made, "events list created " .. typo)
    assert.are_not.equal(0, r.code, r.err)
    assert.are_not.equal(0, p.code, p.err)
  end)

  it("list --limit takes a whole number, refused as usage (64), not a store error", function()
    local path = dir .. "/events.db"
    local rc = receiver.new { verify = false, store = path }
    assert.are.equal(200, (rc:receive(core.encode { Type = "contact_optout", EventUniqueID = "l-1" }, {})))
    rc:store():close()
    for _, limit in ipairs { "1.5", "1e30" } do
      local r = run("events list --limit " .. limit .. " --store " .. q(path))
      assert.falsy(r.err:find("datatype mismatch", 1, true), "--limit " .. limit .. ": " .. r.err)
      assert.are.equal(64, r.code, "--limit " .. limit .. ": " .. r.err)
    end
  end)
end)
