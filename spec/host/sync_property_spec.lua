-- The Sync promise as a property (issue 21): every row of the input ends
-- exactly once merged (in Dialog Insight, with its data) or in the rejects
-- file (with its line and reason), or the run says it is incomplete (exit
-- 1 or 130, resumable); a run never says complete (exit 0 or 2, journal E)
-- while a row is in neither; and --resume refuses an input whose confirmed
-- part changed.
--
-- The adversary, per scenario: rows good and bad (a NUL, bad UTF-8, a
-- wrong type, a ragged row, a quote that never closes, a row the server
-- refuses for the whole call), server faults through the sandbox (500/503,
-- drops, cut and malformed replies, latency, replies that say nothing of
-- their records or name them in camelCase, whole-call refusals that name
-- the record or not), kill -9 and Ctrl-C at random moments (sometimes two
-- signals), and changes to the input between runs (rows swapped at the same
-- size, rows appended, rows cut; rows appended after a run that completed).
-- Rows share keys (an e-mail again, in other cases): a contact must end
-- with its LAST merged row's data.  Between runs the adversary also removes
-- or empties the rejects file, or resumes with another target's settings:
-- --resume must refuse both.  The runs are the real host
-- (bin/dialoginsight) against the real sandbox; they resume until the input
-- is done, or the faults are taken away and one last run must finish.
-- spec/support/property.lua prints the seed; DI_PROPERTY_SEED and
-- DI_PROPERTY_SCENARIO replay one.
local sbx = require "support.sandbox"
local H = require "support.host"
local pcsv = require "support.csv"
local property = require "support.property"

local TMP = H.TMP
local q, slurp, spit = H.q, H.slurp, H.spit

-- What tells that a run wrote a file: its inode, size and modification time to the
-- nanosecond ("none" when it is not there).  Its text does not: a --restart that
-- confirms the same batches as the run before writes the same journal, byte for byte,
-- and the model took it for a run that had not written one (it then required a later
-- --resume to refuse for a rejects file that the --restart had written afresh).
local function written_stamp(path)
  local p = io.popen("stat -c '%i %s %.9Y' " .. q(path) .. " 2>/dev/null")
  local stamp = p:read("l")
  p:close()
  return stamp or "none"
end

-- A row of the input: its text (a line without its end) and its fate:
-- "merged" with the fields the contact must hold, or "rejected".
local function good_row(rng, email)
  local name = rng:pick { "N", "Zoé", "Ann-Marie", "O'Neil" } .. rng:int(1, 99999)
  local points = rng:chance(0.2) and "" or tostring(rng:int(-1000, 100000))
  local quoted = rng:chance(0.15)
  local text = email .. "," .. (quoted and ('"' .. name .. ', Jr."') or name) .. "," .. points
  return { text = text, email = email, fate = "merged", first = quoted and (name .. ", Jr.") or name,
           points = tonumber(points) }
end

-- Rows the client refuses before sending, and the one the server refuses.
local BAD = {
  function(e) return e .. ",A\0n,1" end,              -- a NUL
  function(e) return e .. ",Zo\233,2" end,            -- not UTF-8
  function(e) return e .. ",Ann,many" end,            -- not an integer
  function(e) return e .. ",Ann,3,extra" end,         -- ragged
  function(e) return e .. ',"Bob,4' end,              -- a quote that never closes
  function(e) return e .. ",POISON,5" end,            -- refused by the server, whole call
}

local function new_row(rng, s, poison)
  s.next_id = s.next_id + 1
  local email = string.format("r%d.%d@example.com", s.next_id, s.salt)
  if #s.rows > 0 and rng:chance(s.dups) then
    -- a key again (the service matches e-mails in any case)
    email = s.rows[rng:int(math.max(1, #s.rows - 40), #s.rows)].email
    if rng:chance(0.3) then email = email:upper() end
  end
  if rng:chance(0.12) then
    local k = rng:int(1, poison and #BAD or #BAD - 1)
    return { text = BAD[k](email), email = email, fate = "rejected" }
  end
  return good_row(rng, email)
end

-- The file's bytes from its rows (the last one without a line end when
-- s.no_eol).
local function render(s)
  local lines = { "EMail,FirstName,Points" }
  for i, r in ipairs(s.rows) do lines[i + 1] = r.text end
  return table.concat(lines, "\n") .. (s.no_eol and "" or "\n")
end

-- The journal: the furthest mark of its B lines, whether it is complete,
-- whether it has any batch.
local function journal(path)
  local text = slurp(path)
  if not text then return nil end
  local j = { complete = false, ranges = {}, rejected = 0, header = text:find("^DIJ3 [^\n]*\n") ~= nil }
  for line in text:gmatch("([^\n]*)\n") do
    local a, b, rj, off, cut = line:match("^B (%d+) (%d+) %d+ %d+ (%d+) %d+ %d+ (%d+) %x+ ([01])$")
    if a then
      j.ranges[#j.ranges + 1] = { tonumber(a), tonumber(b) }
      j.rejected = j.rejected + tonumber(rj)
      off = tonumber(off)
      if not j.offset or off > j.offset then j.offset, j.cut = off, cut == "1" end
    elseif line == "E" then
      j.complete = true
    end
  end
  return j
end

-- Whether the ranges cover 1..n, each record once.
local function covers(j, n)
  table.sort(j.ranges, function(x, y) return x[1] < y[1] end)
  local at = 1
  for _, r in ipairs(j.ranges) do
    if r[1] ~= at then return false end
    at = r[2] + 1
  end
  return at == n + 1
end

-- What each contact must hold at the end: its rows merged in order (an
-- empty Points leaves the field as it is), by lower-cased e-mail; and which
-- e-mails have a merged row.
local function expected(s)
  local want = {}
  for _, row in ipairs(s.rows) do
    if row.fate == "merged" then
      local k = row.email:lower()
      local w = want[k] or {}
      w.first = row.first
      if row.points ~= nil then w.points = row.points end
      want[k] = w
    end
  end
  return want
end

-- Every row of the input ends once, where its fate says: nil, or what is
-- wrong.
local function check_rows(s, path)
  local state = {}
  for e, c in pairs(sbx.control("GET", "state?contacts=1").contacts or {}) do state[e:lower()] = c end
  local want = expected(s)
  local recs = pcsv.parse(slurp(path .. ".rejects.csv") or "")
  table.remove(recs, 1)
  local rejected = {}
  for _, r in ipairs(recs) do
    local line = tonumber(r[#r - 1])
    if not line then return "a rejects row without di_line" end
    if rejected[line] then return "line " .. line .. " is in the rejects file twice" end
    rejected[line] = r[#r]
  end
  for i, row in ipairs(s.rows) do
    local key = row.email:lower()
    local line, c, w = i + 1, state[key], want[key]
    if row.fate == "merged" then
      if rejected[line] then
        return "line " .. line .. " (" .. row.email .. ") rejected: " .. rejected[line]
      end
      if not c then return "line " .. line .. " (" .. row.email .. ") is in neither place" end
      local points = c.f_Points
      if type(points) ~= "number" then points = nil end
      -- (a key of rows cut from the input may hold what a run sent of them)
      if not s.tainted[key] and (c.f_FirstName ~= w.first or points ~= w.points) then
        return "line " .. line .. " (" .. row.email .. "): Dialog Insight holds " .. tostring(c.f_FirstName)
          .. ", " .. tostring(c.f_Points) .. ", not the last merged row's " .. tostring(w.first) .. ", "
          .. tostring(w.points)
      end
    else
      if not rejected[line] then
        return "line " .. line .. " (" .. row.email .. ", bad) is not in the rejects file"
          .. (c and " (it is in Dialog Insight)" or "")
      end
      if c and not w and not s.tainted[key] then return "line " .. line .. " (bad) is in Dialog Insight too" end
    end
    rejected[line] = nil
  end
  local extra = next(rejected)
  if extra then return "the rejects file has line " .. extra .. ", which is no bad row" end
  local j = journal(path .. ".di-journal")
  if not (j and j.complete and covers(j, #s.rows)) then
    return "the journal is not complete, or does not cover every record once"
  end
  return nil
end

-- The sandbox's faults for a scenario.
local function faults(rng, poison)
  local list = {}
  local function maybe(p, f)
    if rng:chance(p) then
      f.method = "contacts.merge"
      list[#list + 1] = f
    end
  end
  maybe(0.4, { type = "latency", ms = rng:int(0, 40), jitter_ms = rng:int(0, 60) })
  maybe(0.4, { type = "status", status = rng:pick { 500, 503 }, probability = rng:float() * 0.15,
               after_processing = rng:chance(0.5) })
  maybe(0.3, { type = "drop", probability = rng:float() * 0.06, after_processing = rng:chance(0.5) })
  maybe(0.3, { type = "truncate", probability = rng:float() * 0.06 })
  maybe(0.3, { type = "malformed", probability = rng:float() * 0.06, after_processing = rng:chance(0.5) })
  maybe(0.4, { type = "outcomes", shape = rng:pick { "empty", "none", "short" },
               probability = rng:float() * 0.12 })
  maybe(0.3, { type = "outcomes", shape = "camel", probability = rng:float() * 0.5 })
  if poison then
    list[#list + 1] = { type = "refuse", match = "POISON", name = rng:chance(0.5),
                        method = "contacts.merge" }
  end
  return list
end

-- One change to the input between runs; returns what it did.
local function change(rng, s, kind)
  local n = #s.rows
  kind = kind or rng:pick { "swap", "append", "cut" }
  if kind == "swap" and n >= 2 then
    local i = rng:int(1, n - 1)
    local j = rng:int(i + 1, n)
    -- the same size: two rows of the same length swap places
    for k = j, n do
      if #s.rows[k].text == #s.rows[i].text and k ~= i then j = k; break end
    end
    s.rows[i], s.rows[j] = s.rows[j], s.rows[i]
    return "swapped lines " .. (i + 1) .. " and " .. (j + 1)
  elseif kind == "cut" and n >= 2 then
    local keep = rng:int(1, n - 1)
    for k = n, keep + 1, -1 do
      s.tainted[s.rows[k].email:lower()] = true
      s.rows[k] = nil
    end
    return "cut to " .. keep .. " rows"
  end
  for _ = 1, rng:int(1, 15) do s.rows[#s.rows + 1] = new_row(rng, s, s.poison) end
  s.no_eol = false -- what is appended starts on a line of its own
  return "appended rows up to " .. #s.rows
end

-- Runs the host once; kills it at random moments when kill is set.
-- Returns its exit status.
local function run_host(rng, args, kill, n, env)
  local name = "prop" .. n
  local h = H.spawn(args, name, env)
  if kill then
    os.execute(string.format("sleep %.3f", rng:float() * 0.4))
    local sig = rng:pick { "-9", "-INT", "-TERM" }
    os.execute("kill " .. sig .. " " .. h.pid .. " 2> /dev/null")
    -- a second Ctrl-C abandons the calls in flight (issue 22): its own path
    if rng:chance(sig ~= "-9" and 0.5 or 0.3) then
      os.execute(string.format("sleep %.3f", rng:float() * 0.1))
      os.execute("kill " .. rng:pick { "-9", "-INT", "-INT" } .. " " .. h.pid .. " 2> /dev/null")
    end
  end
  local rc, out, err = h.wait(120)
  return rc, out or "", err or ""
end

-- Whether --resume must refuse the input now: the bytes the confirmed
-- batches were read from changed, or the file grew past a row that ended
-- with it.
local function must_refuse(j, old, new)
  if not j or not j.offset then return false end
  if new:sub(1, j.offset) ~= old:sub(1, j.offset) or #new < j.offset then return true end
  return j.cut and #new ~= j.offset
end

-- What --resume must refuse for, and with which words.
local REFUSALS = {
  input = { "changed since the journal was written", "grew after its last row" },
  rejects = { "the rejects file " },
  target = { "was written for another target" },
}

local function refused_for(err)
  for why, words in pairs(REFUSALS) do
    for _, w in ipairs(words) do
      if err:find(w, 1, true) then return why end
    end
  end
  return nil
end

local function scenario(rng, n)
  sbx.reset({ contacts = 0 })
  local s = { rows = {}, next_id = 0, salt = n, no_eol = rng:chance(0.2), poison = rng:chance(0.5),
              dups = rng:pick { 0, 0.1, 0.4 }, tainted = {} }
  for _ = 1, rng:int(10, 150) do s.rows[#s.rows + 1] = new_row(rng, s, s.poison) end
  local path = TMP .. "/prop.csv"
  os.remove(path .. ".di-journal")
  os.remove(path .. ".rejects.csv")
  spit(path, render(s))
  local fl = faults(rng, s.poison)
  sbx.clear_faults()
  if #fl > 0 then sbx.faults(fl) end
  local base = "sync contacts " .. q(path) .. " --batch-size " .. rng:int(1, 20)
    .. " --concurrency " .. rng:int(1, 4)
  local other = "DI_BASE_URL=" .. sbx.env("DI_BASE_URL"):gsub("127%.0%.0%.1", "localhost") .. " "
  local story, mode = {}, ""
  local changes = 0
  local basis = slurp(path) -- the input as the journal's last run read it
  -- (run 10 only after a last run refused as the model said it must: see below)
  for attempt = 1, 10 do
    local last = attempt >= 9
    if last then
      -- the faults taken away: this run must finish
      sbx.clear_faults()
      if s.poison then sbx.faults { fl[#fl] } end
    end
    if attempt > 1 and changes < 2 and not last and rng:chance(mode == "grown" and 1 or 0.25) then
      -- (after a complete run, mostly growth: an export that got longer)
      story[#story + 1] = change(rng, s, mode == "grown" and rng:chance(0.7) and "append" or nil)
      changes = changes + 1
      spit(path, render(s))
    end
    if mode == "grown" then mode = "--resume" end
    local new = slurp(path)
    local jbefore = written_stamp(path .. ".di-journal")
    local j = journal(path .. ".di-journal")
    local resumes = mode == "--resume" and j ~= nil and j.header
    -- what this run must refuse for: another target first, then the input,
    -- then the rejects file
    local refuse = resumes and must_refuse(j, basis, new) and "input" or nil
    local env
    if resumes and not last and rng:chance(0.12) then
      env, refuse = other, "target"
      story[#story + 1] = "another target"
    end
    if resumes and not last and rng:chance(0.12) then
      local gone = rng:chance(0.5)
      if gone then os.remove(path .. ".rejects.csv") else spit(path .. ".rejects.csv", "") end
      story[#story + 1] = gone and "rejects file removed" or "rejects file emptied"
      s.rejects_bad = true
    end
    -- (until a run writes it afresh, however many resumes were refused first;
    -- a journal that counts no rejected row loses nothing with it, and
    -- starts one afresh)
    if resumes and s.rejects_bad == true and j.rejected > 0 then refuse = refuse or "rejects" end
    local kill = not last and not refuse and rng:chance(0.45)
    local rc, out, err = run_host(rng, base .. " " .. mode, kill, n, env)
    story[#story + 1] = string.format("run %d%s%s: exit %s", attempt, mode ~= "" and (" " .. mode) or "",
      kill and " (signalled)" or "", tostring(rc))
    local refused = rc == 1 and refused_for(err)
    -- a run that wrote its journal read the input as it is now (one killed
    -- before that, or refused, left the journal of an earlier input)
    local jwrote = written_stamp(path .. ".di-journal") ~= jbefore
    if jwrote then
      basis, s.rejects_bad = new, nil
    elseif kill and not refused and s.rejects_bad then
      s.rejects_bad = "maybe"
    end
    if refuse and refused ~= refuse then
      return false, "--resume should have refused (" .. refuse .. ") and did not, or not for that ("
        .. table.concat(story, "; ") .. ")\n" .. out .. err
    end
    -- (a run killed before its journal showed whether it wrote a rejects file afresh)
    local maybe = refused == "rejects" and s.rejects_bad == "maybe" and refuse == nil
    if refused and not refuse and not maybe then
      return false, "--resume refused (" .. refused .. ") when it should not have ("
        .. table.concat(story, "; ") .. ")\n" .. err
    end
    local jn = journal(path .. ".di-journal")
    -- (a journal this run did not write says nothing of it: a run killed
    -- before it opened its journal leaves an earlier run's E, about the
    -- input before it grew)
    if not refused and (rc == 0 or rc == 2 or (jn and jn.complete and jwrote)) then
      local why = check_rows(s, path)
      if why then
        return false, why .. " after a run that said complete (exit " .. tostring(rc) .. "; "
          .. table.concat(story, "; ") .. ")\n" .. out .. err
      end
      -- (a signal after the journal's E may still end the process 130, 137 or 143)
      if (rc == 0 or rc == 2) and (rc == 2) ~= (#(pcsv.parse(slurp(path .. ".rejects.csv"))) > 1) then
        return false, "exit " .. rc .. " does not match the rejects file"
      end
      -- rows appended after a complete run: --resume must sync them too
      if last or changes >= 2 or not rng:chance(0.3) then return true end
      mode = "grown"
    else
      -- (143: a SIGTERM before the host set its handlers, as a kill -9 ends it)
      if rc ~= 1 and rc ~= 130 and rc ~= 137 and rc ~= 143 then
        return false, "exit " .. tostring(rc) .. " (" .. table.concat(story, "; ") .. ")\n" .. err
      end
      -- A refusal the model predicted may first show on the last run: a run
      -- checks one reason, another target's first, so runs refused for
      -- another target hide the input's (a row without a line end, then
      -- rows appended) or the rejects file's until the next --resume.  That
      -- refusal is right (it says why, and to use --restart); the run that
      -- must finish is then the --restart it asks for, once.
      local told = (refuse and refused == refuse) or maybe
      if last and not (attempt == 9 and told) then
        return false, "a run without faults or signals did not finish (" .. table.concat(story, "; ")
          .. ")\n" .. out .. err
      end
      mode = (refused == "input" or refused == "rejects") and "--restart" or "--resume"
    end
  end
end

describe("sync #property", function()
  teardown(function() sbx.clear_faults() end)

  it("every row ends once merged or rejected, or the run says it is incomplete", function()
    property.check("sync", { scenarios = 40, seconds = 60 }, scenario)
  end)
end)
