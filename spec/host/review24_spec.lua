-- Review of issue 24 ("a sync that remembers"): the sync state, --changed-only, --plan and
-- --missing-out, as an attacker and a careless user run them.  Each `it` is a finding,
-- failing on the code as reviewed.  The real host and the sandbox (its env sourced).
local sbx = require "support.sandbox"
local H = require "support.host"
local q, slurp, spit, run = H.q, H.slurp, H.spit, H.run

local dir

local function sqlite(path, query)
  local p = io.popen(string.format("sqlite3 %s %s", q(path), q(query)))
  local s = p:read("a")
  p:close()
  return (s:gsub("%s+$", ""))
end

local function first_name(email)
  local c = H.contacts()[email]
  return c and c.f_FirstName
end

describe("review 24: the sync state", function()
  setup(function()
    sbx.reset()
    dir = H.TMP .. "/review24"
    os.execute("rm -rf " .. q(dir) .. " && mkdir -p " .. q(dir))
  end)
  after_each(function() sbx.clear_faults() end)

  it("a Merge whose outcome is unknown: --resume --changed-only does not skip the row that undoes it", function()
    -- The server merged B but the reply was lost (500 after processing): the state still
    -- says A.  The unconfirmed part of the file may change before --resume (only the
    -- confirmed part is checked); back to A, the row is found "unchanged" and skipped:
    -- Dialog Insight keeps B, the file and the state say A.
    local path = dir .. "/unknown.csv"
    spit(path, "EMail,FirstName\nunk1@example.com,A\n")
    assert.are.equal(0, run("sync contacts " .. q(path) .. " -q").code)
    spit(path, "EMail,FirstName\nunk1@example.com,B\n")
    sbx.faults { { type = "status", status = 500, method = "contacts.merge", after_processing = true } }
    local r = run("sync contacts " .. q(path) .. " -q --changed-only")
    sbx.clear_faults()
    assert.are.equal(1, r.code, r.out .. r.err)
    assert.are.equal("B", first_name("unk1@example.com")) -- the server did it
    spit(path, "EMail,FirstName\nunk1@example.com,A\n")
    r = run("sync contacts " .. q(path) .. " -q --changed-only --resume")
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.are.equal("A", first_name("unk1@example.com"), "the state said A while the server held B: row skipped")
  end)

  it("--plan (a dry run) leaves the state as it was, also with another --key-field", function()
    -- docs/sync.md: "a dry run and --plan only read it".  state.open writes meta and, for
    -- another key field, DELETE FROM rows: a what-if plan wipes the state, and the next
    -- nightly --changed-only run sends every row.
    local path = dir .. "/plankey.csv"
    spit(path, "EMail,FirstName\npk1@example.com,A\npk2@example.com,B\n")
    assert.are.equal(0, run("sync contacts " .. q(path) .. " -q").code)
    local st = path .. ".di-state"
    assert.are.equal("2", sqlite(st, "select count(*) from rows"))
    run("sync contacts " .. q(path) .. " --plan --key-field FirstName")
    assert.are.equal("2", sqlite(st, "select count(*) from rows"), "--plan emptied the state")
    assert.are.equal("EMail", sqlite(st, "select v from meta where k = 'key'"), "--plan rewrote the state's meta")
    -- and a dry run of a new file makes no state file
    local fresh = dir .. "/dryfresh.csv"
    spit(fresh, "EMail,FirstName\ndf1@example.com,A\n")
    run("sync contacts " .. q(fresh) .. " --dry-run --changed-only")
    assert.is_nil(slurp(fresh .. ".di-state"), "--dry-run --changed-only created a state file")
  end)

  it("--plan keeps the rejects file of the last real run (a row the server rejected stays listed)", function()
    -- --plan is a dry run and rewrites FILE.csv.rejects.csv with its own (local) rejects:
    -- the rows the server rejected in the real run vanish from it, and a --resume of that
    -- journal is then refused ("shorter than the journal says"), or cut mid-line.
    local path = dir .. "/planrej.csv"
    local rows = { "EMail,FirstName" }
    for i = 1, 10 do rows[#rows + 1] = string.format("pr%d@example.com,%s", i, i == 3 and "SRVBAD" or "N" .. i) end
    spit(path, table.concat(rows, "\n") .. "\n")
    sbx.faults { { type = "refuse", match = "SRVBAD" } }
    local r = run("sync contacts " .. q(path) .. " -q --batch-size 5")
    sbx.clear_faults()
    assert.are.equal(2, r.code, r.out .. r.err)
    assert.truthy((slurp(path .. ".rejects.csv") or ""):find("pr3@example.com", 1, true))
    run("sync contacts " .. q(path) .. " --plan")
    assert.truthy((slurp(path .. ".rejects.csv") or ""):find("pr3@example.com", 1, true),
      "--plan replaced the rejects file: the server-rejected row is gone")
  end)

  it("a row rejected before sending is in the file: its key is not listed as missing", function()
    -- A row the column plan rejects (Points not an integer) never calls state:saw, so its key
    -- is counted "of the state not in this file" and written to --missing-out: a user who
    -- deletes the missing keys deletes a contact the file still has.  (On --resume, rows read
    -- past are noted whatever they were: the same file gives another count.)
    local path = dir .. "/rejmiss.csv"
    spit(path, "EMail,FirstName,Points\nrm1@example.com,A,1\nrm2@example.com,B,2\n")
    assert.are.equal(0, run("sync contacts " .. q(path) .. " -q").code)
    spit(path, "EMail,FirstName,Points\nrm1@example.com,A,notanumber\nrm2@example.com,B,2\n")
    local out = dir .. "/rejmiss.missing"
    local r = run("sync contacts " .. q(path) .. " --changed-only --missing-out " .. q(out))
    assert.are.equal(2, r.code, r.out .. r.err)
    assert.falsy((slurp(out) or ""):find("rm1@example.com", 1, true), "a key the file has is listed missing")
    assert.falsy(r.out:find("not in this file", 1, true), r.out)
  end)

  it("rows of one contact by e-mail and by idContact: --changed-only ends with the input's last row", function()
    -- The state keys a row by its first non-empty key column (keys_of(...)[1]), the sync's
    -- ordering by all of them.  After a run of [ann by e-mail: A] then [ann by idContact 1:
    -- B], the state says "ann@example.com" -> A while the server holds B.  The same rows in
    -- the other order are both "unchanged": nothing is sent, ann stays B, the file ends with A
    -- (without --changed-only the run sends both and ann ends A).
    local path = dir .. "/idmix.csv"
    spit(path, "EMail,idContact,FirstName\nann@example.com,,A\n,1,B\n")
    assert.are.equal(0, run("sync contacts " .. q(path) .. " -q").code)
    assert.are.equal("B", first_name("ann@example.com"))
    spit(path, "EMail,idContact,FirstName\n,1,B\nann@example.com,,A\n")
    local r = run("sync contacts " .. q(path) .. " -q --changed-only")
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.are.equal("A", first_name("ann@example.com"), "the input's last row of ann is A")
  end)

  it("the same rows with idContact and EMail swapped in the header: unchanged, and no key missing", function()
    -- The state's key is the first key column in header order: reordering the columns makes
    -- every row "new" and every key of the state "missing" (--missing-out lists them all,
    -- though every one is in the file).
    local path = dir .. "/idorder.csv"
    spit(path, "EMail,idContact,FirstName\nbob@example.com,2,Bob\ncarol@example.com,3,Carol\n")
    assert.are.equal(0, run("sync contacts " .. q(path) .. " -q").code)
    spit(path, "idContact,EMail,FirstName\n2,bob@example.com,Bob\n3,carol@example.com,Carol\n")
    os.remove(path .. ".rejects.csv") -- another header: the dry run would refuse the old one
    local out = dir .. "/idorder.missing"
    local r = run("sync contacts " .. q(path) .. " --plan --missing-out " .. q(out))
    assert.truthy(r.out:find("0 new, 0 changed, 2 unchanged", 1, true), r.out)
    assert.falsy((slurp(out) or ""):find("bob@example.com", 1, true), slurp(out))
  end)

  it("--state FILE.csv.di keeps the sync's journal (SQLite's rollback journal is FILE.csv.di-journal)", function()
    -- paths.lua checks --state against the input and the outputs, not SQLite's own files
    -- beside it (STATE-journal, STATE-wal, STATE-shm).  With --state FILE.csv.di the state's
    -- first transaction writes, then deletes, FILE.csv.di-journal: the sync's journal.  The
    -- run's "run again with --resume" then finds no journal and starts over.
    local path = dir .. "/sidecar.csv"
    spit(path, H.csv_of(20, "side"))
    sbx.faults { { type = "status", status = 400, method = "contacts.merge" } }
    local r = run("sync contacts " .. q(path) .. " -q --batch-size 5 --concurrency 1 --state " .. q(path .. ".di"))
    sbx.clear_faults()
    -- fixed by refusing the path up front: the state's SQLite journal would be the sync's
    assert.are.equal(1, r.code, r.out .. r.err)
    assert.truthy(r.err:find("sync state's SQLite journal " .. path .. ".di-journal is the same file as "
      .. "the journal", 1, true), r.err)
    -- and a journal that exists is never touched by it
    spit(path .. ".di-journal", "DIJ3 key=EMail\n")
    r = run("sync contacts " .. q(path) .. " -q --state " .. q(path .. ".di"))
    assert.are.equal(1, r.code)
    assert.are.equal("DIJ3 key=EMail\n", slurp(path .. ".di-journal"))
  end)

  it("the state's hash column is what docs/sync.md says: FNV-1a 64 of the record's bytes", function()
    -- (the review found an HMAC with an empty key stored as a "SHA-256"; the column is now
    -- h64, checked here against an FNV-1a of our own, not the core's)
    local path = dir .. "/hash.csv"
    spit(path, "EMail,FirstName\nhash1@example.com,A\n")
    assert.are.equal(0, run("sync contacts " .. q(path) .. " -q").code)
    local st = path .. ".di-state"
    local record, h64 = sqlite(st, "select record from rows"), sqlite(st, "select h64 from rows")
    local h = -3750763034362895579 -- 14695981039346656037 as a signed 64-bit integer
    for i = 1, #record do h = (h ~ record:byte(i)) * 1099511628211 end
    assert.are.equal(tostring(h), h64)
  end)

  it("--plan-out neutralizes a cell that a spreadsheet would run as a formula", function()
    -- The plan file is meant to be opened and read; a key (or a detail) starting with = + - @
    -- is written as is: "=hyperlink(""http://x"")@example.com" is a live formula in a
    -- spreadsheet (CSV injection).  Expected: such a cell prefixed with ' (or a tab).
    local path = dir .. "/inject.csv"
    spit(path, 'EMail,FirstName\n"=HYPERLINK(""http://x"")@example.com",Y\n')
    local out = dir .. "/inject.plan.csv"
    run("sync contacts " .. q(path) .. " --plan --plan-out " .. q(out))
    local text = slurp(out) or ""
    assert.truthy(text:find("hyperlink", 1, true), text) -- the row is there
    for line in text:gmatch("[^\r\n]+") do
      for cell in (line .. ","):gmatch('("?[^,]*),') do
        assert.falsy(cell:match('^"?[=+@]'), "a formula cell: " .. line)
      end
    end
  end)
  it("a run refused for its --state keeps the last run's rejects file and journal", function()
    -- open_state runs after open_outputs: the rejects file is already cut to its header and
    -- the journal restarted when the state is refused (not a sync state, another target or
    -- project, busy, a full disk).  The last run's report of its rejected rows is gone, and
    -- its complete journal with it, though this run did nothing.
    local path = dir .. "/refused.csv"
    spit(path, "EMail,FirstName,Points\nrf1@example.com,A,notanumber\nrf2@example.com,B,2\n")
    assert.are.equal(2, run("sync contacts " .. q(path) .. " -q").code)
    local rejects, journal = slurp(path .. ".rejects.csv"), slurp(path .. ".di-journal")
    assert.truthy(rejects:find("rf1@example.com", 1, true))
    local other = dir .. "/refused.other"
    spit(other, "not a sync state") -- any state open_state refuses
    local r = run("sync contacts " .. q(path) .. " -q --state " .. q(other))
    assert.are.equal(1, r.code, r.out .. r.err)
    assert.are.equal(rejects, slurp(path .. ".rejects.csv"), "the refused run emptied the rejects file")
    assert.are.equal(journal, slurp(path .. ".di-journal"), "the refused run replaced the journal")
  end)
end)
