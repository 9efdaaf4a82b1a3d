-- The sync state (cli/sync/state.lua, docs/sync.md "The state"): --changed-only, --plan,
-- missing keys, what invalidates the state, and the promise that the state holds only what
-- the server confirmed, through kill -9 and a full disk.  The real host and sandbox; the
-- calls counted in the sandbox's log, the data read back through its control API.
local sbx = require "support.sandbox"
local H = require "support.host"
local property = require "support.property"
local core = require "dialoginsight.core"
local q, slurp, spit, run = H.q, H.slurp, H.spit, H.run

local dir

-- The Merge calls and records since the log's mark.
local function merges(since)
  local calls, records = 0, 0
  for _, e in ipairs(sbx.log(since)) do
    if (e.service .. "." .. e.method):lower() == "contacts.merge" then
      calls, records = calls + 1, records + (e.records or 0)
    end
  end
  return calls, records
end

-- A CSV of rows { email, first, city }.
local function csv(rows, header)
  local out = { header or "EMail,FirstName,City" }
  for _, r in ipairs(rows) do out[#out + 1] = table.concat(r, ",") end
  return table.concat(out, "\n") .. "\n"
end

local function people(n, prefix, suffix)
  local rows = {}
  for i = 1, n do rows[i] = { string.format("%s%d@example.com", prefix, i), "F" .. i .. (suffix or ""), "City" .. (i % 7) } end
  return rows
end

local function sqlite(path, query)
  local p = io.popen(string.format("sqlite3 %s %s", q(path), q(query)))
  local s = p:read("a")
  p:close()
  return (s:gsub("%s+$", ""))
end

-- Every record of the state (path) against what the sandbox holds: nil, or what differs.
-- A key in doubt (sent, outcome unknown: a kill, a lost reply) claims nothing and is left
-- out; with all, every key must be settled.  Read from a copy (a state on a full disk
-- cannot be opened where it is).
local function state_vs_sandbox(path, all)
  local held = H.contacts()
  local copy = H.TMP .. "/state-copy"
  os.execute("rm -rf " .. q(copy) .. " && mkdir -p " .. q(copy) .. " && cp " .. q(path) .. "* " .. q(copy))
  local p = io.popen(string.format("sqlite3 -separator '\t' %s %s; echo \"rc=$?\"",
    q(copy .. "/" .. path:match("[^/]+$")),
    q(all and "select key, record from rows union all select k64, '!' from doubt"
      or "select key, record from rows where k64 not in (select k64 from doubt)")))
  local bad, rc
  for line in p:lines() do
    rc = line:match("^rc=(%d+)$") or rc
    local key, record = line:match("^([^\t]*)\t(.*)$")
    if not key then goto next end
    if record == "!" then bad = bad or (key .. " is still in doubt after a complete run"); goto next end
    local rec = core.decode(record)
    local c = held[key]
    if not c then bad = bad or ("the state holds " .. key .. ", the sandbox does not"); break end
    for k, v in pairs(rec.Data or {}) do
      if c[k] ~= v then bad = bad or (key .. "." .. k .. ": state " .. tostring(v) .. ", sandbox " .. tostring(c[k])) end
    end
    ::next::
  end
  p:close()
  if rc ~= "0" then return "sqlite3 could not read the state (exit " .. tostring(rc) .. ")" end
  return bad
end

describe("sync --changed-only and the state", function()
  setup(function()
    sbx.reset()
    dir = H.TMP .. "/state"
    os.execute("rm -rf " .. q(dir) .. " && mkdir -p " .. q(dir))
  end)
  after_each(function() sbx.clear_faults() end)

  it("a second run of an unchanged 100,000-row file makes 0 Merge calls; 1 % changed, calls for that 1 % only", function()
    local path = dir .. "/big.csv"
    local rows = people(100000, "big")
    spit(path, csv(rows))
    local r = run("sync contacts " .. q(path) .. " -q --batch-size 500")
    assert.are.equal(0, r.code, r.out .. r.err)
    local mark = sbx.mark()
    r = run("sync contacts " .. q(path) .. " -q --changed-only")
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.truthy(r.out:find("100000 rows, 0 merged", 1, true), r.out)
    assert.truthy(r.out:find("100000 unchanged (not sent)", 1, true), r.out)
    assert.are.equal(0, (merges(mark)))
    -- 1 %: every 100th row's FirstName
    for i = 100, 100000, 100 do rows[i][2] = "Changed" .. i end
    spit(path, csv(rows))
    mark = sbx.mark()
    r = run("sync contacts " .. q(path) .. " -q --changed-only --batch-size 100")
    assert.are.equal(0, r.code, r.out .. r.err)
    local calls, records = merges(mark)
    assert.are.equal(1000, records)
    assert.are.equal(10, calls)
    local held = H.contacts()
    assert.are.equal("Changed500", held["big500@example.com"].f_FirstName)
    assert.are.equal("F501", held["big501@example.com"].f_FirstName)
  end)

  it("--plan then a --changed-only run agree row for row", function()
    local path = dir .. "/plan.csv"
    local rows = people(300, "plan")
    spit(path, csv(rows))
    assert.are.equal(0, run("sync contacts " .. q(path) .. " -q").code)
    -- changes: 7 rows changed, 3 new, 4 removed, 2 bad
    for _, i in ipairs { 3, 50, 51, 120, 200, 250, 299 } do rows[i][2] = "P" .. i end
    for i = 1, 3 do rows[#rows + 1] = { "plannew" .. i .. "@example.com", "N" .. i, "X" } end
    for _ = 1, 4 do table.remove(rows, 10) end
    rows[#rows + 1] = { "long@example.com", string.rep("x", 101), "X" } -- over 100 characters
    rows[#rows + 1] = { "", "B", "X" }
    spit(path, csv(rows))
    local r = run("sync contacts " .. q(path) .. " --plan --plan-out " .. q(dir .. "/plan.out.csv"))
    assert.are.equal(2, r.code, r.out .. r.err)
    assert.truthy(r.out:find("3 new, 7 changed, 289 unchanged, 2 rejected", 1, true), r.out)
    assert.truthy(r.out:find("4 keys of the state not in this file (never deleted)", 1, true), r.out)
    assert.truthy(r.out:find('changed: line 4: plan3@example.com: FirstName: "F3" -> "P3"', 1, true), r.out)
    local planned, missing, lines = {}, 0, 0
    for line, key, action in slurp(dir .. "/plan.out.csv"):gmatch("\n(%d*),([^,\n]*),(%a+)") do
      if action == "new" or action == "changed" then planned[key] = true end
      if action == "missing" then missing = missing + 1 end
      if line ~= "" then lines = lines + 1 end
    end
    assert.are.equal(4, missing)
    assert.are.equal(#rows, lines) -- every row once
    local s0 = tonumber(sqlite(path .. ".di-state", "select max(seq) from rows"))
    local mark = sbx.mark()
    r = run("sync contacts " .. q(path) .. " --changed-only")
    assert.are.equal(2, r.code, r.out .. r.err)
    assert.are.equal(10, select(2, merges(mark)))
    -- the rows the run confirmed are the rows the plan named, no more, no fewer
    local sent = {}
    for key in sqlite(path .. ".di-state", "select key from rows where seq > " .. s0)
        :gmatch("[^\n]+") do sent[key] = true end
    assert.are.same(planned, sent)
    -- and a plan now has nothing to do
    r = run("sync contacts " .. q(path) .. " --plan")
    assert.truthy(r.out:find("0 new, 0 changed, 299 unchanged, 2 rejected", 1, true), r.out)
    -- the removed keys were never deleted
    assert.truthy(H.contacts()["plan10@example.com"])
  end)

  it("--missing-out lists the keys of the state the file lacks", function()
    local path = dir .. "/miss.csv"
    spit(path, csv(people(20, "miss")))
    assert.are.equal(0, run("sync contacts " .. q(path) .. " -q").code)
    spit(path, csv({ { "miss1@example.com", "F1", "City1" } }))
    local r = run("sync contacts " .. q(path) .. " --changed-only --missing-out " .. q(dir .. "/missing.csv"))
    assert.are.equal(0, r.code, r.out .. r.err)
    local text = slurp(dir .. "/missing.csv")
    assert.truthy(text:find("^key\n"), text)
    assert.are.equal(19, select(2, text:gsub("\n", "")) - 1)
    assert.truthy(text:find("miss20@example.com", 1, true))
    assert.falsy(text:find("miss1@example.com\n", 1, true))
  end)

  it("a mapping change re-sends what it affects; the same records in another column order send nothing", function()
    local path = dir .. "/map.csv"
    spit(path, csv(people(50, "map")))
    assert.are.equal(0, run("sync contacts " .. q(path) .. " -q").code)
    local mark = sbx.mark()
    local r = run("sync contacts " .. q(path) .. " -q --changed-only --skip City")
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.are.equal(50, select(2, merges(mark)))
    mark = sbx.mark()
    assert.are.equal(0, run("sync contacts " .. q(path) .. " -q --changed-only --skip City").code)
    assert.are.equal(0, select(2, merges(mark)))
    -- columns reordered, City back: its records are the first run's, City included
    local rows = {}
    for i, p in ipairs(people(50, "map")) do rows[i] = { p[3], p[1], p[2] } end
    spit(path, csv(rows, "City,EMail,FirstName"))
    mark = sbx.mark()
    assert.are.equal(0, run("sync contacts " .. q(path) .. " -q --changed-only").code)
    -- City was sent by the first run, then not by the --skip runs: the state holds the
    -- --skip records, so City's rows differ and go; a second run sends nothing
    assert.are.equal(50, select(2, merges(mark)))
    mark = sbx.mark()
    assert.are.equal(0, run("sync contacts " .. q(path) .. " -q --changed-only").code)
    assert.are.equal(0, select(2, merges(mark)))
  end)

  it("a later row of a key is sent when an earlier row of it was, even if it matches the state", function()
    local path = dir .. "/twice.csv"
    spit(path, csv({ { "twice@example.com", "Old", "A" } }))
    assert.are.equal(0, run("sync contacts " .. q(path) .. " -q").code)
    spit(path, csv({ { "twice@example.com", "New", "A" }, { "twice@example.com", "Old", "A" } }))
    local r = run("sync contacts " .. q(path) .. " --changed-only")
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.are.equal("Old", H.contacts()["twice@example.com"].f_FirstName)
  end)

  it("an idContact row sent in a run keeps that contact's e-mail row from being skipped later in it", function()
    -- (final review) run 1: ann by e-mail; run 2: ann by idContact (sent: new key), then by
    -- e-mail as the state has it: the e-mail row must go too, and ann end as the file's last
    local path = dir .. "/link.csv"
    spit(path, "EMail,idContact,FirstName\nann@example.com,,A\n")
    assert.are.equal(0, run("sync contacts " .. q(path) .. " -q").code)
    spit(path, "EMail,idContact,FirstName\n,1,B\nann@example.com,,A\n")
    local r = run("sync contacts " .. q(path) .. " -q --changed-only --batch-size 1")
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.are.equal("A", H.contacts()["ann@example.com"].f_FirstName)
  end)

  it("another key field empties the state; another project refuses it", function()
    spit(dir .. "/kf0.csv", csv(people(5, "kf")))
    assert.are.equal(0, run("sync contacts " .. q(dir .. "/kf0.csv") .. " -q").code)
    local state = " --state " .. q(dir .. "/kf0.csv.di-state")
    local r = run("sync contacts " .. q(dir .. "/kf0.csv") .. " --changed-only --key-field FirstName" .. state)
    assert.truthy(r.err:find("built with another key field: it is emptied", 1, true), r.err)
    -- the same sandbox under another name: another target for the state
    local other = sbx.env("DI_BASE_URL"):gsub("//127%.0%.0%.1:", "//localhost:")
    r = run("sync contacts " .. q(dir .. "/kf0.csv") .. " --changed-only" .. state,
      { env = "DI_BASE_URL=" .. other .. " " })
    assert.are.equal(1, r.code, r.out .. r.err)
    assert.truthy(r.err:find("is of another target", 1, true), r.err)
  end)

  it("the state on a full disk: exit 1 before the journal's line, then --resume agrees with the sandbox", function()
    local disk = dir .. "/disk"
    os.execute("mkdir -p " .. q(disk))
    assert(os.execute("mount -t tmpfs -o size=300k tmpfs " .. q(disk) .. " 2> /dev/null"),
      "mount a tmpfs (a small disk): this spec needs root")
    finally(function() os.execute("umount " .. q(disk) .. " 2> /dev/null") end)
    local path = dir .. "/full.csv"
    spit(path, csv(people(600, "full", string.rep("x", 60))))
    local st = " --state " .. q(disk .. "/full.di-state")
    local r = run("sync contacts " .. q(path) .. " --batch-size 20 --concurrency 1" .. st)
    assert.are.equal(1, r.code, r.out .. r.err)
    assert.truthy(r.err:find("full", 1, true), r.err)
    assert.truthy(tonumber(sqlite(disk .. "/full.di-state", "select count(*) from rows")) > 0,
      "the disk filled before the state held a row: nothing was tested")
    assert.is_nil(state_vs_sandbox(disk .. "/full.di-state"))
    assert(os.execute("mount -o remount,size=4m " .. q(disk)))
    r = run("sync contacts " .. q(path) .. " --resume --changed-only" .. st)
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.is_nil(state_vs_sandbox(disk .. "/full.di-state", true))
    assert.are.equal("600", sqlite(disk .. "/full.di-state", "select count(*) from rows"))
  end)
end)

describe("the state's promise as a property (random changes, kill -9, --resume)", function()
  setup(function()
    sbx.reset()
    dir = H.TMP .. "/state-prop"
    os.execute("rm -rf " .. q(dir) .. " && mkdir -p " .. q(dir))
  end)
  after_each(function() sbx.clear_faults() end)

  it("the state holds only what the sandbox holds, and a resumed run ends with the file's data", function()
    property.check("sync-state", { scenarios = 4, seconds = 90 }, function(rng, scenario)
      local path = string.format("%s/p%d.csv", dir, scenario)
      local rows = people(rng:int(100, 300), "p" .. scenario .. "x")
      spit(path, csv(rows))
      assert(run("sync contacts " .. q(path) .. " -q").code == 0)
      for _ = 1, rng:int(1, 3) do
        -- random changes, then a --changed-only run killed at a random moment, resumed
        for i = 1, #rows do
          if rng:chance(0.2) then rows[i][2] = "R" .. rng:int(1, 1e6) end
        end
        if rng:chance(0.3) then rows[#rows + 1] = { "p" .. scenario .. "n" .. rng:int(1, 1e6) .. "@example.com", "N", "Z" } end
        spit(path, csv(rows))
        sbx.faults { { type = "latency", ms = rng:int(5, 30) } }
        local h = H.spawn("sync contacts " .. q(path) .. " -q --changed-only --batch-size 5 --concurrency 2",
          "prop" .. scenario)
        os.execute("sleep 0." .. rng:int(0, 6))
        os.execute("kill -9 " .. h.pid .. " 2> /dev/null")
        h.wait(30)
        sbx.clear_faults()
        local why = state_vs_sandbox(path .. ".di-state")
        if why then return false, "after the kill: " .. why end
        local r
        for _ = 1, 3 do
          -- a journal the kill left unfinished is resumed; a finished one (the kill came
          -- before this run wrote its own) belongs to the earlier input: a plain run
          local j = slurp(path .. ".di-journal")
          local resume = j and not j:find("\nE\n$") and " --resume" or ""
          r = run("sync contacts " .. q(path) .. " -q --changed-only" .. resume)
          if r.code == 0 then break end
        end
        if r.code ~= 0 then return false, "--resume did not complete: " .. r.out .. r.err end
        why = state_vs_sandbox(path .. ".di-state", true)
        if why then return false, "after --resume: " .. why end
        local held = H.contacts()
        for _, row in ipairs(rows) do
          local c = held[row[1]]
          if not c or c.f_FirstName ~= row[2] then
            return false, row[1] .. ": the file says " .. row[2] .. ", the sandbox " .. tostring(c and c.f_FirstName)
          end
        end
      end
      return true
    end)
  end)
end)
