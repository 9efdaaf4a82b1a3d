--- `dialoginsight sync contacts FILE.csv`: streams a CSV file into
-- Contacts.Merge, batch by batch, without ever holding the file.
--
-- Every row ends either merged (created or updated) or in the rejects file,
-- with its line number and the reason.  A journal next to the input
-- (FILE.csv.di-journal) records each batch once it is settled, so that
-- --resume after a crash, a kill -9 or Ctrl-C skips what the server already
-- confirmed and re-sends the rest; Merge is an upsert, so a batch that was
-- sent but not confirmed does no harm when sent again.
--
-- Journal lines (text, appended, flushed after each batch, fsync'd at most
-- once a second and at the end):
--   DIJ1 size=<input bytes> key=<key field>
--   B <first record> <last record> <created> <updated> <rejected> <rejects file size>
--   E
-- Records are counted from 1 after the header.  A batch covers a contiguous
-- range of records, invalid ones included (their rejects are written when
-- the batch settles), so the ranges alone say what is done.  The rejects
-- file is cut back to the size the last B line recorded, which drops any
-- rejects written for a batch whose B line never made it to the journal.
local core = require "dialoginsight.core"
local host = require "dialoginsight.host"
local fields = require "dialoginsight.fields"
local merge = require "dialoginsight.merge"
local errors = require "dialoginsight.errors"
local csv = require "dialoginsight.cli.csv"
local progress = require "dialoginsight.cli.progress"

local M = {}

-- Failures of a whole batch that say something about these rows: its rows
-- go to the rejects file.  Any other failure (network, auth, rate limit
-- after the retries, 5xx) would hit every following batch too: the run
-- stops, and --resume picks it up later.
local ROW_KINDS = { api = true, validation = true, decode = true }

local function say(...)
  io.stderr:write("dialoginsight: sync: ", ...)
  io.stderr:write("\n")
end

-- Columns -> fields --------------------------------------------------------------

-- The plan of each column: { kind = "field" | "optin" | "skip", name = }.
-- Returns the list, or nil and the problems.
local function plan_columns(header, map, idx, key)
  local plan, problems, targets = {}, {}, {}
  for j, raw in ipairs(header) do
    local col = raw:gsub("^%s+", ""):gsub("%s+$", "")
    local target = map[col]
    if target == nil and col:match("^di_") then target = "" end -- a rejects file's own columns
    if target == nil then target = col end
    local p
    if target == "" or target == "-" then
      p = { kind = "skip" }
    else
      local optin = target:match("^optin[._](.+)$")
      local meta, why
      if optin then
        meta, why = fields.resolve_optin(optin, idx)
      else
        meta, why = fields.resolve(target, idx)
      end
      if not meta then
        problems[#problems + 1] = "column " .. j .. " '" .. col .. "' " .. why
      elseif meta.optin then
        p = { kind = "optin", name = meta.name }
      else
        p = { kind = "field", name = meta.name }
      end
      if p then
        local t = (p.kind == "optin" and "optin_" or "") .. p.name:lower()
        if targets[t] then
          problems[#problems + 1] = "columns " .. targets[t] .. " and " .. j .. " both map to " .. p.name
        end
        targets[t] = j
      end
    end
    plan[j] = p or { kind = "skip" }
  end
  local keymeta = fields.resolve(key, idx)
  local keyname = keymeta and keymeta.name or key
  if not targets[keyname:lower()] and not targets.idcontact then
    problems[#problems + 1] = "no column holds the key field '" .. keyname
      .. "' (or idContact); use --map COLUMN=" .. keyname .. " or --key FIELD"
  end
  if #problems > 0 then return nil, problems end
  return plan
end

local function reason_of(problems)
  local parts = {}
  for _, p in ipairs(problems) do
    parts[#parts + 1] = tostring(p.field) .. " " .. tostring(p.message)
  end
  return table.concat(parts, "; ")
end

-- The journal --------------------------------------------------------------------

local function read_journal(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local j = { ranges = {}, created = 0, updated = 0, rejected = 0, rows = 0,
              rejects_size = 0, good = 0 }
  local pos = 1
  while true do
    local nl = text:find("\n", pos, true)
    if not nl then break end -- a torn last line was never confirmed
    local line = text:sub(pos, nl - 1)
    pos = nl + 1
    j.good = nl
    local size, key = line:match("^DIJ1 size=(%d+) key=(.*)$")
    if size then
      j.size, j.key = tonumber(size), key
    elseif line == "E" then
      j.complete = true
    else
      local a, b, cr, up, rj, off = line:match("^B (%d+) (%d+) (%d+) (%d+) (%d+) (%d+)$")
      if not a then return nil, "line '" .. line:sub(1, 40) .. "' is not a journal line" end
      a, b = tonumber(a), tonumber(b)
      j.ranges[#j.ranges + 1] = { a, b }
      j.created, j.updated = j.created + tonumber(cr), j.updated + tonumber(up)
      j.rejected = j.rejected + tonumber(rj)
      j.rows = j.rows + (b - a + 1)
      j.rejects_size = tonumber(off)
    end
  end
  if not j.size then return nil, "it has no header line" end
  table.sort(j.ranges, function(x, y) return x[1] < y[1] end)
  return j
end

-- The run ------------------------------------------------------------------------

local function summary_line(st, elapsed, opts)
  local merged = st.created + st.updated
  local s = string.format("sync contacts %s: %d rows, %d merged (%d created, %d updated), "
    .. "%d rejected", opts.file, st.rows, merged, st.created, st.updated, st.rejected)
  if opts.dry_run then
    s = string.format("sync contacts %s (dry run, nothing sent): %d rows, %d valid, %d rejected",
      opts.file, st.rows, st.valid, st.rejected)
  end
  if st.resumed > 0 then s = s .. string.format(" (%d rows done by earlier runs)", st.resumed) end
  s = s .. string.format(" in %.1f s (%d rows/s), peak memory %d MB",
    elapsed, elapsed > 0 and math.floor((st.rows - st.resumed) / elapsed) or 0,
    math.floor(host.rss() / 1024 + 0.5))
  return s
end

--- opts: file, key, map, batch_size, concurrency, dry_run, resume, restart,
-- rejects, interval.  Returns the exit status.
function M.run(client, opts)
  local file = opts.file
  local started = core.now()
  local reader, why = core.csv_open(file)
  if not reader then say(why); return 1 end
  local header
  header, why = reader:header()
  if not header then say(file, ": ", why); reader:close(); return 1 end
  local sep = reader:separator()
  local total = host.size(file) or 0

  local schema, err = client.projects:fields()
  if not schema then say("cannot read the project's fields: ", tostring(err)); return 1 end
  local idx = fields.index(schema)
  local key = opts.key or schema.key or fields.DEFAULT_KEY
  if not fields.resolve(key, idx) then
    say("--key ", key, ": ", select(2, fields.resolve(key, idx))); return 1
  end
  local plan, problems = plan_columns(header, opts.map, idx, key)
  if not plan then
    for _, p in ipairs(problems) do say(p) end
    say("map or skip columns with --map COLUMN=FIELD or --skip COLUMN; "
      .. "`dialoginsight fields` lists the project's fields")
    return 1
  end

  -- each column's field and converter, resolved once for the whole file
  local to_record = fields.row_converter(plan, idx, key)

  -- journal and rejects
  local jpath = file .. ".di-journal"
  local rpath = opts.rejects or (file .. ".rejects.csv")
  local st = { rows = 0, created = 0, updated = 0, rejected = 0, valid = 0, resumed = 0, pos = 0 }
  local done_ranges, jfile, rfile = {}, nil, nil
  if not opts.dry_run then
    local old
    old, why = read_journal(jpath)
    if why then say("journal ", jpath, ": ", why, "; remove it or use --restart"); return 1 end
    if old and opts.resume then
      if old.size ~= total then
        say(file, " changed since the journal was written (", old.size, " bytes then, ",
          total, " now): cannot resume; use --restart to start over")
        return 1
      end
      if old.complete then
        say("the journal says this file was already synced completely; use --restart to sync it again")
        return 0
      end
      done_ranges = old.ranges
      st.created, st.updated, st.rejected = old.created, old.updated, old.rejected
      st.rows, st.resumed = old.rows, old.rows
      host.truncate(jpath, old.good)
      jfile = assert(io.open(jpath, "ab"))
      if host.size(rpath) and old.rejects_size > 0 then
        host.truncate(rpath, old.rejects_size)
        rfile = assert(io.open(rpath, "ab"))
      end
      say("resuming: ", old.rows, " rows were confirmed by earlier runs")
    elseif old and not old.complete and not opts.restart then
      say("an unfinished journal exists (", jpath, "): use --resume to continue it, "
        .. "or --restart to start over")
      return 1
    elseif opts.resume then
      say("no journal to resume (", jpath, "): starting from the beginning")
    end
    if not jfile then
      jfile, why = io.open(jpath, "wb")
      if not jfile then say(why); return 1 end
      jfile:write(string.format("DIJ1 size=%d key=%s\n", total, key))
      jfile:flush()
      host.fsync(jfile)
    end
  end
  if not rfile then
    rfile, why = io.open(rpath, "wb")
    if not rfile then say(why); return 1 end
    local h = {}
    for j, name in ipairs(header) do h[j] = name end
    h[#h + 1], h[#h + 2] = "di_line", "di_reason"
    rfile:write(csv.line(h, sep))
    rfile:flush()
  end

  local bar = progress.new { tty = host.isatty(2), width = host.width(),
    interval = opts.interval, total = total }
  local last_sync = core.now()

  local function reject_line(row, line, reason)
    local out, n = {}, math.max(#row, #header)
    for j = 1, n do out[j] = row[j] or "" end
    out[n + 1], out[n + 2] = tostring(line), reason
    return csv.line(out, sep)
  end

  -- A batch is settled: its rejects, then its journal line.
  local function settle(b)
    table.sort(b.rejects, function(x, y) return x[1] < y[1] end)
    for _, r in ipairs(b.rejects) do rfile:write(r[2]) end
    rfile:flush()
    st.created, st.updated = st.created + b.created, st.updated + b.updated
    st.rejected = st.rejected + #b.rejects
    st.rows = st.rows + (b.last - b.first + 1)
    if jfile then
      jfile:write(string.format("B %d %d %d %d %d %d\n", b.first, b.last, b.created,
        b.updated, #b.rejects, rfile:seek("cur")))
      jfile:flush()
      if core.now() - last_sync >= 1 then
        host.fsync(rfile)
        host.fsync(jfile)
        last_sync = core.now()
      end
    end
  end

  -- Reading: the next batch of records, skipping confirmed ranges.
  local recno, ri, eof = 0, 1, false
  local function next_batch()
    if eof then return nil end
    local b
    while true do
      local row, a, line, bad = reader:next()
      if row == nil then
        if a then error("reading " .. file .. ": " .. a, 0) end
        eof = true
        break
      end
      recno = recno + 1
      while done_ranges[ri] and done_ranges[ri][2] < recno do ri = ri + 1 end
      local r = done_ranges[ri]
      if r and r[1] <= recno then
        if b then break end -- a batch never spans a confirmed range
      else
        b = b or { first = recno, records = {}, rows = {}, lines = {}, rejects = {},
                   created = 0, updated = 0 }
        b.last = recno
        if row == false then
          b.rejects[#b.rejects + 1] = { line, reject_line(bad or {}, line, (a:gsub("^line %d+: ", ""))) }
        else
          local rec, probs = to_record(row)
          if probs then
            b.rejects[#b.rejects + 1] = { a, reject_line(row, a, reason_of(probs)) }
          else
            local n = #b.records + 1
            b.records[n], b.rows[n], b.lines[n] = rec, row, a
            if n == opts.batch_size then break end
          end
        end
      end
    end
    st.pos = reader:tell()
    return b
  end

  local fatal, interrupted = nil, false
  host.graceful(true)
  if opts.dry_run then
    while true do
      local b = next_batch()
      if not b then break end
      st.valid = st.valid + #b.records
      settle(b)
      bar:update(st)
      if host.interrupted() then interrupted = true; break end
    end
  else
    local pending, n = {}, 0
    local options = merge.options {}
    local function next_call()
      while true do
        if fatal then return nil end
        if host.interrupted() then interrupted = true; return nil end
        local b = next_batch()
        if not b then return nil end
        bar:update(st)
        if #b.records == 0 then
          settle(b)
        else
          n = n + 1
          pending[n] = b
          return { "contacts", "Merge", { Records = core.array(b.records), MergeOptions = options } }
        end
      end
    end
    local function done(i, res)
      local b = pending[i]
      pending[i] = nil
      if errors.is_error(res) then
        if not ROW_KINDS[res.kind] then
          fatal = fatal or res
          return
        end
        for k, row in ipairs(b.rows) do
          local line = b.lines[k]
          b.rejects[#b.rejects + 1] = { line, reject_line(row, line, "batch refused: " .. tostring(res)) }
        end
      else
        local recs = type(res.Records) == "table" and res.Records or {}
        for k, row in ipairs(b.rows) do
          local rec = recs[k]
          -- most records were merged: their status says so without the
          -- outcome table, which is built only for the others
          local outcome, reason = type(rec) == "table" and merge.accepted(rec), nil
          if outcome ~= "created" and outcome ~= "updated" then
            local o = type(rec) == "table" and merge.outcome(rec, fields.friendly)
              or { outcome = "rejected", reason = "the server returned no outcome for this record" }
            outcome, reason = o.outcome, o.reason
          end
          if outcome == "created" then
            b.created = b.created + 1
          elseif outcome == "updated" then
            b.updated = b.updated + 1
          else
            local line = b.lines[k]
            b.rejects[#b.rejects + 1] = { line, reject_line(row, line,
              "refused by the server: " .. tostring(reason or outcome)) }
          end
        end
      end
      settle(b)
      bar:update(st)
    end
    client:call_stream(next_call, done, { concurrency = opts.concurrency })
  end
  host.graceful(false)
  reader:close()
  bar:finish(st)
  local complete = eof and not fatal and not interrupted
  if jfile then
    if complete then jfile:write("E\n") end
    host.fsync(jfile)
    jfile:close()
  end
  host.fsync(rfile)
  rfile:close()

  local elapsed = core.now() - started
  io.stdout:write(summary_line(st, elapsed, opts), "\n")
  if st.rejected > 0 then
    io.stdout:write(st.rejected, st.rejected == 1 and " row" or " rows", " rejected: see ", rpath,
      " (the original fields, then di_line and di_reason)\n")
  end
  io.stdout:flush()
  if fatal then
    say("stopped: ", tostring(fatal))
    say("the batches confirmed so far are in ", jpath, "; run again with --resume")
    return 1
  end
  if interrupted then
    say("interrupted: the batches in flight were finished and the journal written; "
      .. "run again with --resume to continue")
    return 130
  end
  return st.rejected > 0 and 2 or 0
end

return M
