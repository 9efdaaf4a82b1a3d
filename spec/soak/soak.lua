-- The fault soak (issue 9), run by scripts/soak (`make soak`), which starts a
-- private sandbox and sources its env file first.
--
--   1. writes a CSV of SOAK_ROWS rows, ~1 % of them invalid in seven ways (bad
--      e-mail, a non-integer Points, text over 100 characters, an impossible
--      date, invalid UTF-8, a ragged row, a runaway quote: an opening quote
--      never closed), the valid ones exercising quotes, embedded newlines,
--      multibyte text, empty cells and both date forms;
--   2. resets the sandbox and injects faults on contacts.merge: 5 % 503,
--      2 % 429 (Retry-After 1), 1 % dropped connections (after processing),
--      1 % truncated bodies, and 0-50 ms latency on every call;
--   3. runs `bin/dialoginsight sync contacts FILE --key-field EMail` on a small disk
--      (a tmpfs holding FILE, its journal and its rejects file, with room for
--      about half of what the run writes), kill -9s it once about a third of
--      the rows are journaled, then --resume until it ends: a run that stops
--      on exhausted retries (exit 1) is resumed again; the one that fills the
--      disk must stop (exit 1, "No space left on device", the journal not
--      complete), and is resumed once the disk is grown;
--   4. checks through the control API: every valid row is in the sandbox with
--      exactly the CSV's values, every invalid row is in the rejects file once
--      with its reason and line, no row both or neither, the summary accounts
--      for every line of the file, and the Merge calls (failed ones included,
--      less the batches in flight when the disk filled) stay within
--      1.25 x ceil(valid rows / 100).
-- Needs root (mount).  Prints the figures; exits 1 on any violation.
local cjson = require "cjson"

local ROOT = assert(os.getenv("SOAK_ROOT"), "run through scripts/soak")
package.path = ROOT .. "/spec/?.lua;" .. package.path
local parse_csv = require("support.csv").parse
local ROWS = tonumber(os.getenv("SOAK_ROWS") or "200000")
local DIR = os.getenv("SOAK_DIR") or (ROOT .. "/build/soak")
local BIN = os.getenv("DI_HOST_BIN") or (ROOT .. "/bin/dialoginsight")
local BATCH, CONCURRENCY, KILL_AT = 100, 8, 0.3
local MAX_RATIO = 1.25
local DISK = DIR .. "/disk"            -- a tmpfs: the full disk
local FILE = DISK .. "/contacts.csv"

local violations = {}
local function violation(fmt, ...)
  local msg = string.format(fmt, ...)
  violations[#violations + 1] = msg
  if #violations <= 20 then io.stderr:write("soak: VIOLATION: ", msg, "\n") end
end

local function log(fmt, ...) io.stderr:write("soak: ", string.format(fmt, ...), "\n") end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function now()
  local p = io.popen("date +%s.%N")
  local t = tonumber(p:read("l"))
  p:close()
  return t
end

local function sleep(s) os.execute("sleep " .. s) end

-- The control API, through the curl CLI (never through the library under test).
local function control(method, path, body)
  local url = os.getenv("DI_SANDBOX_URL") .. "_sandbox/" .. path
  local cmd = string.format("curl -sS --fail-with-body --max-time 120 --cacert %q -X %s",
    os.getenv("DI_CA_FILE"), method)
  local tmp
  if body then
    tmp = os.tmpname()
    local f = assert(io.open(tmp, "wb"))
    f:write(cjson.encode(body))
    f:close()
    cmd = cmd .. " -H 'Content-Type: application/json' --data-binary @" .. q(tmp)
  end
  local p = assert(io.popen(cmd .. " " .. q(url)))
  local out = p:read("a")
  local ok = p:close()
  if tmp then os.remove(tmp) end
  if not ok then error("control " .. method .. " " .. path .. " failed: " .. out:sub(1, 300)) end
  return cjson.decode(out)
end

-- 1. The CSV ---------------------------------------------------------------------

local FIRST = { "Ann", "Bob", "Chloé", "Dmitri", "Émile", "Fatou", "Gus", "Hana", "Zoë", "李" }
local CITIES = { "Montréal", "Québec", "Paris", "Lyon", "Toronto", "Gatineau", "Sherbrooke", "Zürich" }
local NL = { "1", "0", "true", "false" }
local NL_VALUE = { ["1"] = true, ["0"] = false, ["true"] = true, ["false"] = false }

-- The six kinds of invalid rows, and what their reason must say.
local KINDS = {
  { name = "bad e-mail", reason = "e%-mail" },           -- refused by the server
  { name = "non-integer Points", reason = "Points expects an integer" },
  { name = "text over 100", reason = "LastName is longer than 100 characters" },
  { name = "bad date", reason = "BirthDate is not a valid date" },
  { name = "bad UTF-8", reason = "City is not valid UTF%-8" },
  { name = "ragged row", reason = "has 8 fields, the header has 7" },
  { name = "runaway quote", reason = "^unterminated quote: the quoted field opened on line %d+ " },
}

local function csv_field(s)
  if s:find('[",\r\n]') then return '"' .. s:gsub('"', '""') .. '"' end
  return s
end

-- Writes FILE; returns the expected outcome of every row:
-- valid[email] = { line =, values = { wire = value | cjson.null } },
-- invalid[line] = { kind =, email = }, the counts, the file's lines and an
-- estimate of what the run writes (rejects file and journal, bytes).
local function generate()
  local valid, invalid, nvalid, ninvalid, out_bytes = {}, {}, 0, 0, 0
  local f = assert(io.open(FILE, "wb"))
  f:write("EMail,FirstName,LastName,City,BirthDate,Points,Newsletter\n")
  local line, buf = 2, {}
  for i = 1, ROWS do
    local email = string.format("soak%07d@example.com", i)
    local first = FIRST[i % #FIRST + 1]
    if i % 10 == 5 then first = first .. ", Jr." end               -- quoted, with a comma
    if i % 53 == 0 then first = 'Ann "The Hammer"' end              -- doubled quotes
    if i % 97 == 0 then first = "Two\nLines" end                    -- a row over two lines
    local last = "Doe-" .. i
    if i % 89 == 0 then last = string.rep("é", 100) end             -- 100 characters, 200 bytes
    local city = i % 31 == 0 and "" or CITIES[i % #CITIES + 1]
    local y, m, d = 1940 + i % 60, i % 12 + 1, i % 28 + 1
    local birth = string.format(i % 2 == 0 and "%04d-%02d-%02d" or "%04d.%02d.%02d", y, m, d)
    if i % 41 == 0 then birth = "" end
    local points = tostring((i % 7 == 0 and -1 or 1) * (i * 7919 % 100000))
    local nl = i % 43 == 0 and "" or NL[i % 4 + 1]
    local extra
    local kind = i % 100 == 50 and (i // 100) % #KINDS + 1 or nil
    if kind == 1 then email = string.format("soak%07d.example.com", i)
    elseif kind == 2 then points = "lots"
    elseif kind == 3 then last = string.rep("ü", 101)
    elseif kind == 4 then birth = string.format("%04d-02-30", y)
    elseif kind == 5 then city = "Montr\233al" -- Latin-1
    elseif kind == 6 then extra = "extra"
    elseif kind == 7 then first = "Runaway" end
    local fields = { email, first, last, city, birth, points, nl, extra }
    for k, v in ipairs(fields) do fields[k] = csv_field(v) end
    -- the runaway quote: it pairs with the next quoted field of the file
    if kind == 7 then fields[2] = '"' .. fields[2] end
    buf[#buf + 1] = table.concat(fields, ",") .. "\n"
    if kind then
      invalid[line] = { kind = kind, email = email }
      ninvalid = ninvalid + 1
      out_bytes = out_bytes + #buf[#buf] + 120 -- the row, di_line and di_reason
    else
      local null = cjson.null
      valid[email] = { line = line, values = {
        f_FirstName = first, f_LastName = last,
        f_City = city ~= "" and city or null,
        f_BirthDate = birth ~= "" and string.format("%04d.%02d.%02d", y, m, d) or null,
        f_Points = tonumber(points),
        optin_Newsletter = NL_VALUE[nl] == nil and null or NL_VALUE[nl],
      } }
      nvalid = nvalid + 1
    end
    line = line + 1 + select(2, first:gsub("\n", ""))
    if #buf == 2000 then f:write(table.concat(buf)); buf = {} end
  end
  f:write(table.concat(buf))
  f:close()
  out_bytes = out_bytes + (ROWS // BATCH + 2 * CONCURRENCY) * 80 -- journal lines (DIJ3)
  return valid, invalid, nvalid, ninvalid, line - 1, out_bytes
end

-- 3. Running the host ------------------------------------------------------------

local ENV = "DI_RATE=2000 DI_BURST=200 "
-- the sync state off the small disk: the full disk is the journal's and the rejects
-- file's (spec/host/state_spec.lua fills the state's own)
local STATE = DIR .. "/contacts.di-state"
local ARGS = " sync contacts " .. q(FILE) .. " --key-field EMail --concurrency " .. CONCURRENCY
  .. " --batch-size " .. BATCH .. " --trace --progress-interval 5 --state " .. q(STATE)

-- Rows the journal confirms so far.
local function journaled()
  local s = slurp(FILE .. ".di-journal") or ""
  local n = 0
  for a, b in s:gmatch("\nB (%d+) (%d+)") do n = n + tonumber(b) - tonumber(a) + 1 end
  return n
end

local runs = {}
local function record_run(name, rc, err)
  local retries = 0
  for attempt in err:gmatch("contacts%.Merge attempt (%d+)") do
    if tonumber(attempt) > 1 then retries = retries + 1 end
  end
  runs[#runs + 1] = { name = name, rc = rc, retries = retries }
  log("%s: exit %d, %d retries", name, rc, retries)
end

-- The first run, in the background; kill -9 once KILL_AT of the rows are journaled.
local function first_run()
  local base = DIR .. "/run1"
  os.remove(base .. ".rc")
  os.remove(base .. ".pid")
  os.execute(string.format("( %s%s%s > %s.out 2> %s.err & echo $! > %s.pid; wait $!; "
    .. "echo $? > %s.rc ) > /dev/null 2>&1 &", ENV, q(BIN), ARGS, base, base, base, base))
  local pid
  for _ = 1, 200 do
    pid = tonumber(slurp(base .. ".pid") or "")
    if pid then break end
    sleep(0.05)
  end
  assert(pid, "the host did not start")
  local killed = false
  local deadline = now() + 900
  while now() < deadline do
    if slurp(base .. ".rc") then break end
    local jn = journaled()
    if jn >= ROWS * KILL_AT then
      os.execute("kill -9 " .. pid)
      killed = true
      break
    end
    sleep(0.1)
  end
  local rc
  for _ = 1, 600 do
    rc = tonumber(slurp(base .. ".rc") or "")
    if rc then break end
    sleep(0.1)
  end
  if not rc then os.execute("kill -9 " .. pid); error("the first run did not end") end
  if not killed then violation("the first run ended (exit %d) before it could be killed", rc) end
  if killed and rc ~= 137 then violation("the killed run exited %d, not 137", rc) end
  record_run("run 1 (kill -9 at " .. journaled() .. " journaled rows)", rc, slurp(base .. ".err") or "")
  return killed
end

local function resume(n)
  local base = DIR .. "/resume" .. n
  local cmd = string.format("timeout -s KILL 1800 env %s%s%s --resume > %s.out 2> %s.err",
    ENV, q(BIN), ARGS, base, base)
  local _, _, rc = os.execute(cmd)
  local out, err = slurp(base .. ".out") or "", slurp(base .. ".err") or ""
  record_run("resume " .. n, rc, err)
  return rc, out, err
end

-- 4. Checking --------------------------------------------------------------------

local function check_sandbox(valid, invalid, nvalid)
  local t = now()
  local state = control("GET", "state?contacts=1")
  local have = state.contacts or {}
  local seeded, mismatches = 0, 0
  for email in pairs(have) do
    if not email:match("^soak%d+@example%.com$") then seeded = seeded + 1 end
  end
  local present = 0
  for email, v in pairs(valid) do
    local c = have[email]
    if not c then
      violation("line %d: %s is missing from the sandbox", v.line, email)
    else
      present = present + 1
      for k, want in pairs(v.values) do
        local got = c[k]
        if type(want) == "number" and type(got) == "number" then got = math.tointeger(got) or got end
        if got ~= want then
          mismatches = mismatches + 1
          violation("line %d: %s: %s is %s, the CSV says %s", v.line, email, k,
            cjson.encode(got), cjson.encode(want))
        end
      end
      if c.f_EMail ~= email then violation("%s: f_EMail is %s", email, tostring(c.f_EMail)) end
    end
  end
  for line, b in pairs(invalid) do
    if have[b.email] then violation("line %d (%s) is invalid but in the sandbox", line, KINDS[b.kind].name) end
  end
  local soak_contacts = 0
  for email in pairs(have) do if email:match("^soak") then soak_contacts = soak_contacts + 1 end end
  if soak_contacts ~= nvalid then
    violation("the sandbox holds %d soak contacts, the CSV has %d valid rows", soak_contacts, nvalid)
  end
  log("sandbox checked in %.1f s: %d/%d valid rows present, %d field mismatches, %d seeded contacts",
    now() - t, present, nvalid, mismatches, seeded)
end

local function check_rejects(valid, invalid, ninvalid)
  local s = slurp(FILE .. ".rejects.csv")
  if not s then violation("no rejects file"); return 0 end
  local recs = parse_csv(s)
  local header = table.remove(recs, 1)
  if header[#header] ~= "di_reason" or header[#header - 1] ~= "di_line" then
    violation("rejects header is %s", table.concat(header, ","))
  end
  local valid_lines = {}
  for _, v in pairs(valid) do valid_lines[v.line] = true end
  local seen, count = {}, 0
  for _, r in ipairs(recs) do
    local line, reason = tonumber(r[#r - 1]), r[#r]
    count = count + 1
    if not line then
      violation("reject without a line: %s", table.concat(r, ","):sub(1, 120))
    elseif valid_lines[line] then
      violation("line %d is valid but rejected: %s", line, reason)
    elseif not invalid[line] then
      violation("line %d is rejected but is no row's first line: %s", line, reason)
    else
      seen[line] = (seen[line] or 0) + 1
      if seen[line] == 2 then violation("line %d is rejected more than once", line) end
      local kind = KINDS[invalid[line].kind]
      if not reason:find(kind.reason) then
        violation("line %d (%s): reason %q does not say %q", line, kind.name, reason, kind.reason)
      end
      if r[1] ~= invalid[line].email then
        violation("line %d: rejects row starts %q, expected %q", line, r[1], invalid[line].email)
      end
    end
  end
  for line, b in pairs(invalid) do
    if not seen[line] then violation("line %d (%s) is missing from the rejects file", line, KINDS[b.kind].name) end
  end
  if count ~= ninvalid then violation("%d rejects for %d invalid rows", count, ninvalid) end
  return count
end

-- Merge calls after seq `since`, from the request log.
local function merge_calls(since)
  local r = control("GET", "log?since=" .. since)
  local calls, records, ok, faults = 0, 0, 0, {}
  for _, e in ipairs(r.entries or {}) do
    if e.service == "contacts" and e.method == "merge" then
      calls = calls + 1
      if e.status == 200 and (e.fault == cjson.null or not tostring(e.fault):find("truncate")) then
        ok = ok + 1
        records = records + (tonumber(e.records) or 0)
      end
      if e.fault ~= cjson.null and e.fault then
        local kind = tostring(e.fault):gsub("latency:%d+%+?", "")
        if kind ~= "" then faults[kind] = (faults[kind] or 0) + 1 end
      end
    end
  end
  return calls, ok, records, faults, #(r.entries or {}) >= 100000
end

-- Main ---------------------------------------------------------------------------

-- The small disk: mounted large enough to write the CSV, then shrunk to the
-- CSV and about half of what the run writes.
local function sh(cmd, what)
  if not os.execute(cmd) then
    violation("%s failed (%s): the soak needs root, to mount a tmpfs", what, cmd)
    error("soak: cannot go on without the small disk", 0)
  end
end

local function disk_size(bytes)
  sh(string.format("mount -o remount,size=%d %s", bytes, q(DISK)), "resizing the tmpfs")
end

os.execute("mkdir -p " .. q(DISK))
for _, sfx in ipairs { "", "-wal", "-shm", "-journal" } do os.remove(STATE .. sfx) end
os.execute("umount " .. q(DISK) .. " 2> /dev/null")
sh("mount -t tmpfs -o size=4g tmpfs " .. q(DISK), "mount -t tmpfs")

local t0 = now()
local valid, invalid, nvalid, ninvalid, nlines, out_bytes = generate()
log("generated %d rows (%d valid, %d invalid) on %d lines in %.1f s", ROWS, nvalid, ninvalid,
  nlines, now() - t0)
local input_pages = math.ceil(#slurp(FILE) / 4096)
local room = math.max(2, math.ceil(out_bytes * 0.55 / 4096))
disk_size((input_pages + room) * 4096)
log("the disk holds the CSV and %d KiB more (the run writes about %d KiB)", room * 4, out_bytes // 1024)

control("POST", "reset", { seed = 9 })
-- Faults are tried in order and the first terminal one that fires wins, so
-- each probability is conditional on the earlier ones not firing: the
-- marginal rates are then exactly 5 %, 2 %, 1 % and 1 %.
local p503, p429, pdrop, ptrunc = 0.05, 0.02, 0.01, 0.01
control("POST", "faults", { faults = {
  { type = "latency", ms = 0, jitter_ms = 50, method = "contacts.merge" },
  { type = "status", status = 503, probability = p503, method = "contacts.merge" },
  { type = "status", status = 429, retry_after = 1, method = "contacts.merge",
    probability = p429 / (1 - p503) },
  { type = "drop", after_processing = true, method = "contacts.merge",
    probability = pdrop / (1 - p503 - p429) },
  { type = "truncate", method = "contacts.merge",
    probability = ptrunc / (1 - p503 - p429 - pdrop) },
} })
local since = control("GET", "log").last_seq or 0

-- A run that stopped because the disk is full: it must say so and leave the
-- journal unfinished; the disk is then grown for the next resume.
local disk_full
local function check_disk_full(n, err)
  if not err:find("No space left on device", 1, true) then return end
  disk_full = n
  local j = slurp(FILE .. ".di-journal") or ""
  if j:find("\nE\n", 1, true) then violation("resume %d: the disk filled, yet the journal says complete", n) end
  if not err:find("cannot write the", 1, true) then violation("resume %d: no message names the file", n) end
  disk_size(4 * 1024 ^ 3)
end

local t_sync = now()
first_run()
local rc, out = nil, ""
local resumes, exhausted = 0, 0
for n = 1, 20 do
  resumes = n
  local err
  rc, out, err = resume(n)
  if rc ~= 1 then break end
  check_disk_full(n, err)
  if disk_full ~= n then exhausted = exhausted + 1 end
end
local wall = now() - t_sync
if not disk_full then violation("the disk never filled: the full-disk case was not tested") end
if rc ~= 2 then violation("the last run exited %s, expected 2 (done, some rows rejected)", tostring(rc)) end
local summary = out:match("sync contacts [^\n]*")
log("%s", summary or "(no summary line)")
local want = string.format("%d rows, %d merged", ROWS, nvalid)
if not (summary and summary:find(want, 1, true)) then violation("summary does not say %q", want) end
if not (summary and summary:find(ninvalid .. " rejected", 1, true)) then
  violation("summary does not say %d rejected", ninvalid)
end
local lines = string.format("rows on lines 2-%d of %d", nlines, nlines)
if not (summary and summary:find(lines, 1, true)) then violation("summary does not say %q", lines) end
local journal = slurp(FILE .. ".di-journal") or ""
if not journal:find("\nE\n$") then violation("the journal does not end with E") end

control("DELETE", "faults")
check_sandbox(valid, invalid, nvalid)
local rejected = check_rejects(valid, invalid, ninvalid)
local calls, ok_calls, ok_records, faults, capped = merge_calls(since)
if capped then violation("the request log overflowed (100,000 entries): calls undercounted") end
local minimum = math.ceil(nvalid / BATCH)
-- The run stopped by the full disk sends again the batches it had in flight
-- and the one whose journal line failed: a cost of the stop, not of retries.
local allowance = disk_full and CONCURRENCY + 1 or 0
local ratio = (calls - allowance) / minimum
if ratio > MAX_RATIO then
  violation("%d Merge calls (%d of them allowed for the full disk): %.3f x the minimum %d (limit %.2f)",
    calls, allowance, ratio, minimum, MAX_RATIO)
end
local retries = 0
for _, r in ipairs(runs) do retries = retries + r.retries end
local fault_list = {}
for k, v in pairs(faults) do fault_list[#fault_list + 1] = k .. " " .. v end
table.sort(fault_list)

print(string.format("soak: rows %d, valid %d, rejected %d (expected %d)", ROWS, nvalid, rejected, ninvalid))
print(string.format("soak: Merge calls %d (%d answered 200, %d records in them), minimum %d, ratio %.3f "
  .. "(limit %.2f, after %d calls allowed for the full disk's stop)", calls, ok_calls, ok_records,
  minimum, ratio, MAX_RATIO, allowance))
print(string.format("soak: faults injected: %s", table.concat(fault_list, ", ")))
print(string.format("soak: retries seen %d; runs %d (1 killed with kill -9, %d resumes, %d of them after "
  .. "retries ran out, 1 stopped by the full disk: resume %s)", retries, #runs, resumes, exhausted,
  tostring(disk_full)))
print(string.format("soak: sync wall time %.1f s (generation and checks excluded)", wall))
os.execute("umount " .. q(DISK))
if #violations > 0 then
  print(string.format("soak: FAILED, %d violations (the first ones above)", #violations))
  os.exit(1)
end
print("soak: OK")
