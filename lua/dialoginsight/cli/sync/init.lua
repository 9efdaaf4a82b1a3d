--- `dialoginsight sync contacts FILE.csv`: streams a CSV file into
-- Contacts.Merge, batch by batch, without ever holding the file.
--
-- Every row ends either merged (created or updated) or in the rejects file,
-- with its line number and the reason.  The journal (cli/sync/journal.lua)
-- records each batch once it is settled, so that --resume skips what the
-- server already confirmed; the column plan (cli/sync/plan.lua) resolves
-- the header once; each record's outcome is read as contacts:merge_many
-- reads it (records/merge.lua).
local core = require "dialoginsight.core"
local host = require "dialoginsight.host"
local errors = require "dialoginsight.errors"
local fields = require "dialoginsight.records.fields"
local merge = require "dialoginsight.records.merge"
local record = require "dialoginsight.records.record"
local csv = require "dialoginsight.cli.csv"
local progress = require "dialoginsight.cli.progress"
local journal = require "dialoginsight.cli.sync.journal"
local plan = require "dialoginsight.cli.sync.plan"

local M = { name = "sync", needs_client = true, options = {
  help = "flag", key = "value", map = "list", ["batch-size"] = "value", concurrency = "value",
  ["dry-run"] = "flag", resume = "flag", restart = "flag", rejects = "value",
  ["progress-interval"] = "value", skip = "list",
} }

M.help = [[
usage: dialoginsight sync contacts FILE.csv [options]

Merges every row of FILE.csv into the project's contacts (Contacts.Merge,
an upsert).  Column headers are field names (FirstName, f_FirstName),
opt-ins (Newsletter, optin_Newsletter), or idContact.

options:
  --key FIELD         the key field (default: the project's, e.g. EMail)
  --map COL=FIELD     read column COL as FIELD (repeatable); COL= ignores COL
  --skip COL          ignore column COL (repeatable)
  --batch-size N      records per Merge call (default 100)
  --concurrency N     calls in flight (default 8)
  --rejects PATH      where rejected rows go (default FILE.csv.rejects.csv)
  --dry-run           validate only: nothing is sent, no journal
  --resume            continue an interrupted run from its journal
  --restart           discard an unfinished journal and start over
  --progress-interval S   seconds between progress lines when not on a TTY (5)

Every row ends merged or in the rejects file (its fields, then di_line and
di_reason).  The journal FILE.csv.di-journal records each confirmed batch;
--resume skips those and re-sends the rest.
exit status: 0 all merged, 2 some rows rejected, 1 error, 130 Ctrl-C
(the journal is written: run again with --resume).
]]

-- Failures of a whole batch that say something about these rows: its rows
-- go to the rejects file.  Any other failure (network, auth, rate limit
-- after the retries, 5xx) would hit every following batch too: the run
-- stops, and --resume picks it up later.
local ROW_KINDS = { api = true, validation = true, decode = true }

local function say(...)
  io.stderr:write("dialoginsight: sync: ", ...)
  io.stderr:write("\n")
end

-- The command line ----------------------------------------------------------------

local function count(v, default, max)
  if v == nil then return default end
  local n = math.tointeger(tonumber(v))
  if not n or n < 1 or n > max then return nil end
  return n
end

--- Checks the options and turns them into the run's: nil, or a usage message.
function M.check(opts, pos)
  if pos[1] ~= "contacts" or #pos ~= 2 then return "sync contacts FILE.csv [options]" end
  opts.batch_size = count(opts["batch-size"], 100, 10000)
  if not opts.batch_size then return "--batch-size must be 1..10000" end
  opts.concurrency = count(opts.concurrency, 8, 64)
  if not opts.concurrency then return "--concurrency must be 1..64" end
  if opts.resume and opts.restart then return "--resume and --restart exclude each other" end
  local map = {}
  for _, m in ipairs(opts.map or {}) do
    local col, field = m:match("^(.-)=(.*)$")
    if not col or col == "" then return "--map expects COL=FIELD, got " .. m end
    map[col] = field
  end
  for _, col in ipairs(opts.skip or {}) do map[col] = "" end
  opts.map, opts.file, opts.dry_run = map, pos[2], opts["dry-run"]
  opts.interval = tonumber(opts["progress-interval"] or "") or 5
  return nil
end

-- Setting up ------------------------------------------------------------------------

-- The input, its header and the column plan: fills run, or returns false
-- after saying why.
local function open_input(run, client)
  local file = run.opts.file
  local reader, why = core.csv_open(file)
  if not reader then say(why); return false end
  run.reader = reader
  run.header, why = reader:header()
  if not run.header then say(file, ": ", why); return false end
  run.sep, run.total = reader:separator(), host.size(file) or 0
  local schema, err = client.projects:fields()
  if not schema then say("cannot read the project's fields: ", tostring(err)); return false end
  local idx = fields.index(schema)
  run.key = run.opts.key or schema.key or fields.DEFAULT_KEY
  local ok, meta_or_why = pcall(record.contacts, idx, run.key)
  if not ok then
    say("--key ", run.key, ": ", select(2, fields.resolve(run.key, idx)) or meta_or_why)
    return false
  end
  local problems
  run.steps, problems = plan.columns(run.header, run.opts.map, meta_or_why)
  if not run.steps then
    for _, p in ipairs(problems) do say(p) end
    say("map or skip columns with --map COLUMN=FIELD or --skip COLUMN; "
      .. "`dialoginsight fields` lists the project's fields")
    return false
  end
  run.builder = meta_or_why
  return true
end

-- The journal (not in a dry run) and the rejects file: fills run, or
-- returns false, exit status.
local function open_outputs(run)
  local o = run.opts
  local rpath = run.rpath
  if not o.dry_run then
    local j, why, status = journal.open({ path = o.file .. ".di-journal", file = o.file,
      size = run.total, key = run.key, resume = o.resume, restart = o.restart }, say)
    if not j then say(why); return false, status end
    run.journal = j
    local old = j.old
    if old then
      run.done_ranges = old.ranges
      local st = run.st
      st.created, st.updated, st.rejected = old.created, old.updated, old.rejected
      st.rows, st.resumed = old.rows, old.rows
      if host.size(rpath) and old.rejects_size > 0 then
        host.truncate(rpath, old.rejects_size)
        run.rfile = assert(io.open(rpath, "ab"))
      end
    end
  end
  if not run.rfile then
    local f, why = io.open(rpath, "wb")
    if not f then say(why); return false, 1 end
    local h = {}
    for j, name in ipairs(run.header) do h[j] = name end
    h[#h + 1], h[#h + 2] = "di_line", "di_reason"
    f:write(csv.line(h, run.sep))
    f:flush()
    run.rfile = f
  end
  return true
end

-- Reading -----------------------------------------------------------------------------

local function reject_line(run, row, line, reason)
  local out, n = {}, math.max(#row, #run.header)
  for j = 1, n do out[j] = row[j] or "" end
  out[n + 1], out[n + 2] = tostring(line), reason
  return csv.line(out, run.sep)
end

local function reject(run, b, line, row, reason)
  b.rejects[#b.rejects + 1] = { line, reject_line(run, row, line, reason) }
end

local function reason_of(problems)
  local parts = {}
  for _, p in ipairs(problems) do
    parts[#parts + 1] = tostring(p.field) .. " " .. tostring(p.message)
  end
  return table.concat(parts, "; ")
end

-- Whether record number recno was confirmed by an earlier run.
local function confirmed(run, recno)
  local ranges = run.done_ranges
  while ranges[run.ri] and ranges[run.ri][2] < recno do run.ri = run.ri + 1 end
  local r = ranges[run.ri]
  return r ~= nil and r[1] <= recno
end

-- The next batch of records, skipping confirmed ranges (a batch never spans
-- one), or nil at the end: { first, last, records, rows, lines, rejects,
-- created, updated }.
local function next_batch(run)
  if run.eof then return nil end
  local b
  while true do
    local row, a, line, bad = run.reader:next()
    if row == nil then
      if a then error("reading " .. run.opts.file .. ": " .. a, 0) end
      run.eof = true
      break
    end
    run.recno = run.recno + 1
    if confirmed(run, run.recno) then
      if b then break end
    else
      b = b or { first = run.recno, records = {}, rows = {}, lines = {}, rejects = {},
                 created = 0, updated = 0 }
      b.last = run.recno
      if row == false then
        reject(run, b, line, bad or {}, (a:gsub("^line %d+: ", "")))
      else
        local rec, probs = run.builder:row(row, run.steps)
        if probs then
          reject(run, b, a, row, reason_of(probs))
        else
          local n = #b.records + 1
          b.records[n], b.rows[n], b.lines[n] = rec, row, a
          if n == run.opts.batch_size then break end
        end
      end
    end
  end
  run.st.pos = run.reader:tell()
  return b
end

-- Settling -------------------------------------------------------------------------

-- A batch is settled: its rejects, then its journal line.
local function settle(run, b)
  table.sort(b.rejects, function(x, y) return x[1] < y[1] end)
  for _, r in ipairs(b.rejects) do run.rfile:write(r[2]) end
  run.rfile:flush()
  local st = run.st
  st.created, st.updated = st.created + b.created, st.updated + b.updated
  st.rejected = st.rejected + #b.rejects
  st.rows = st.rows + (b.last - b.first + 1)
  if run.journal then run.journal:record(b, run.rfile) end
end

-- The outcome of each record of batch b from the result of its Merge call.
-- Returns the error that must stop the run, if any.
local function outcomes(run, b, res)
  if errors.is_error(res) and not ROW_KINDS[res.kind] then return res end
  merge.settle(res, #b.rows, "contacts", function(k, outcome, rec, err)
    if outcome == "created" then
      b.created = b.created + 1
    elseif outcome == "updated" or outcome == "accepted" then
      -- accepted: a status this library does not know, ValidationResult OK
      -- (records/merge.lua); merged, and counted with the updates
      b.updated = b.updated + 1
    else
      local reason
      if err == res then
        reason = "batch refused: " .. tostring(res)
      elseif err then
        reason = "refused by the server: the server returned no outcome for this record"
      else
        local o = merge.outcome(rec, fields.friendly)
        reason = "refused by the server: " .. tostring(o.reason or outcome)
      end
      reject(run, b, b.lines[k], b.rows[k], reason)
    end
  end)
  return nil
end

-- Running -----------------------------------------------------------------------------

local function dry_run(run)
  while true do
    local b = next_batch(run)
    if not b then break end
    run.st.valid = run.st.valid + #b.records
    settle(run, b)
    run.bar:update(run.st)
    if host.interrupted() then run.interrupted = true; break end
  end
end

local function send(run, client)
  local pending, n = {}, 0
  local options = merge.options {}
  local function next_call()
    while true do
      if run.fatal then return nil end
      if host.interrupted() then run.interrupted = true; return nil end
      local b = next_batch(run)
      if not b then return nil end
      run.bar:update(run.st)
      if #b.records == 0 then
        settle(run, b)
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
    local fatal = outcomes(run, b, res)
    if fatal then
      run.fatal = run.fatal or fatal
      return
    end
    settle(run, b)
    run.bar:update(run.st)
  end
  client:call_stream(next_call, done, { concurrency = run.opts.concurrency })
end

-- Finishing ---------------------------------------------------------------------------

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

-- Closes everything, prints the summary; returns the exit status.
local function finish(run)
  run.reader:close()
  run.bar:finish(run.st)
  local complete = run.eof and not run.fatal and not run.interrupted
  if run.journal then run.journal:close(complete) end
  host.fsync(run.rfile)
  run.rfile:close()
  local st = run.st
  io.stdout:write(summary_line(st, core.now() - run.started, run.opts), "\n")
  if st.rejected > 0 then
    io.stdout:write(st.rejected, st.rejected == 1 and " row" or " rows", " rejected: see ",
      run.rpath, " (the original fields, then di_line and di_reason)\n")
  end
  io.stdout:flush()
  if run.fatal then
    say("stopped: ", tostring(run.fatal))
    say("the batches confirmed so far are in ", run.opts.file, ".di-journal; run again with --resume")
    return 1
  end
  if run.interrupted then
    say("interrupted: the batches in flight were finished and the journal written; "
      .. "run again with --resume to continue")
    return 130
  end
  return st.rejected > 0 and 2 or 0
end

--- Runs a sync (opts as check() leaves them); returns the exit status.
function M.run(client, opts)
  local run = {
    opts = opts, started = core.now(), rpath = opts.rejects or (opts.file .. ".rejects.csv"),
    st = { rows = 0, created = 0, updated = 0, rejected = 0, valid = 0, resumed = 0, pos = 0 },
    done_ranges = {}, ri = 1, recno = 0,
  }
  if not open_input(run, client) then
    if run.reader then run.reader:close() end
    return 1
  end
  local ok, status = open_outputs(run)
  if not ok then run.reader:close(); return status end
  run.bar = progress.new { tty = host.isatty(2), width = host.width(),
    interval = opts.interval, total = run.total }
  host.graceful(true)
  if opts.dry_run then dry_run(run) else send(run, client) end
  host.graceful(false)
  return finish(run)
end

return M
