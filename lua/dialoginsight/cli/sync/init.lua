--- `dialoginsight sync contacts FILE.csv`: streams a CSV file into
-- Contacts.Merge, batch by batch, without ever holding the file (docs/sync.md).
-- Every row ends either merged or in the rejects file, with its line and the
-- reason; a row the server may hold is never reported rejected, and a run that
-- cannot write stops, exit 1, with a journal that --resume continues.
local core = require "dialoginsight.core"
local host = require "dialoginsight.host"
local fields = require "dialoginsight.records.fields"
local merge = require "dialoginsight.records.merge"
local record = require "dialoginsight.records.record"
local csv = require "dialoginsight.cli.csv"
local commands = require "dialoginsight.cli.commands"
local options = require "dialoginsight.options"
local progress = require "dialoginsight.cli.progress"
local batches = require "dialoginsight.cli.sync.batches"
local journal = require "dialoginsight.cli.sync.journal"
local output = require "dialoginsight.cli.sync.output"
local paths = require "dialoginsight.cli.sync.paths"
local plan = require "dialoginsight.cli.sync.plan"
local state = require "dialoginsight.cli.sync.state"
local metrics = require "dialoginsight.metrics"

-- The command line (cli/main.lua builds the parser and the help from it).
-- priority: its calls are batch ones, leaving a reserve to interactive callers
-- of the key (docs/limiter.md), unless DI_PRIORITY or the config file says otherwise
local M = { name = "sync", needs_client = true, priority = "batch", usage = "sync contacts FILE.csv|- [options]", options = {
  { "--key-field", "FIELD", "the key field (default: DI_KEY_FIELD, else the project's, e.g. EMail)" },
  { "--map", "COL=FIELD", "read column COL as FIELD (repeatable); COL= ignores COL", many = true },
  { "--skip", "COL", "ignore column COL (repeatable)", many = true },
  { "--batch-size", "N", "records per Merge call (default 100)" },
  { "--concurrency", "N", "calls in flight (default 8)" },
  { "--rejects", "PATH", "where rejected rows go (default FILE.csv.rejects.csv)" },
  { "--out-dir", "DIR", "where the run's files go (the journal, the rejects file): for an input "
    .. "in a directory you cannot write (default: beside FILE.csv)" },
  { "--dry-run", nil, "validate only: nothing is sent, no journal" },
  { "--resume", nil, "continue an interrupted run from its journal" },
  { "--restart", nil, "discard an unfinished journal and start over" },
  { "--progress-interval", "S", "seconds between progress lines when not on a TTY (5)" },
  { "--changed-only", nil, "send only the rows whose record differs from what the last runs "
    .. "confirmed (the sync state); the others are counted unchanged" },
  { "--plan", nil, "say what a --changed-only run would do (new, changed, unchanged, rejected, "
    .. "missing keys): nothing is sent" },
  { "--plan-out", "FILE", "with --plan: every row of the file and its action, as CSV" },
  { "--state", "PATH", "the sync state (default FILE.csv.di-state, beside the journal)" },
  { "--missing-out", "FILE", "the keys of the state that the file does not have, one per line "
    .. "(never deleted from Dialog Insight)" },
} }

M.help = [[
Merges every row of FILE.csv into the project's contacts (Contacts.Merge,
an upsert).  Column headers are field names (FirstName, f_FirstName),
opt-ins (Newsletter, optin_Newsletter), or idContact.  FILE.csv - reads
stdin (its journal and rejects file: stdin.di-journal and
stdin.rejects.csv in the current directory, or --out-dir).]]

M.epilog = [[
Every row ends merged or in the rejects file (its fields, then di_line and
di_reason); for rows of one key, the last one is what Dialog Insight holds.
The journal FILE.csv.di-journal records each confirmed batch, the bytes of
FILE.csv it was read from and where the rows went; --resume skips those
batches and re-sends the rest (and rows appended since, also after a
complete run), and refuses a file whose confirmed part changed, other
settings (base URL, key id, project), or a rejects file that is missing,
emptied, cut or another one.  A batch the server refuses as a whole
is sent again without the row it names, or in halves, until the row is
found: only that row is rejected.  --out-dir DIR puts the journal and the
rejects file in DIR (named after FILE.csv).  A stream (a pipe, /dev/stdin)
gets its journal and rejects file in the current directory (or DIR) and
cannot be resumed.  One run at a time per file: a second one stops, naming
the first.  The first Ctrl-C lets the calls in flight finish and writes the
journal; a second one stops at once (the calls in flight are not waited
for: --resume sends their rows again).
exit status: 0 all merged, 2 some rows rejected, 1 error (a call that
failed for good, an unreadable input, an output that cannot be written:
run again with --resume), 130 Ctrl-C (the journal is written: run again
with --resume).
]]

local open_state, finish_state, journal_opts -- defined below

local function say(...)
  local parts = table.pack(...)
  for i = 1, parts.n do parts[i] = tostring(parts[i]) end
  io.stderr:write("dialoginsight: sync: ", commands.cli_terms(table.concat(parts, "", 1, parts.n)), "\n")
end

-- A note (not an error, not the summary): left out by -q.
local quiet = false
local function note(...)
  if not quiet then say(...) end
end

-- The command line ----------------------------------------------------------------

local function count(v, default, max)
  if v == nil then return default end
  local n = math.tointeger(tonumber(v))
  if not n or n < 1 or n > max then return nil end
  return n
end

--- Checks the options and turns them into the run's: nil, or a usage message.
function M.reads_stdin(pos) return { pos[2] } end

function M.check(opts, pos)
  if pos[1] ~= "contacts" then
    return "sync: " .. (pos[1] and ("unknown resource " .. options.shown(pos[1])) or "which resource?")
      .. ": only contacts can be synced "
      .. "(sync contacts FILE.csv)"
  end
  if #pos ~= 2 then
    return "sync contacts: expected one FILE.csv (or - for stdin), got " .. commands.count(#pos - 1, "file")
  end
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
  opts.name = pos[2] -- the input as typed, for messages ("-", not /dev/stdin)
  opts.key = opts["key-field"]
  if opts.file == "-" then
    if opts.resume then
      return "--resume cannot continue stdin (-): a journal needs an input that a later run can "
        .. "read again; save the input to a file and sync that file (then --resume works), or "
        .. "sync stdin again from the start with --restart (Merge is an upsert)"
    end
    opts.file = "/dev/stdin" -- a stream (cli/sync/paths.lua): outputs named stdin.*
  end
  opts.changed_only, opts.plan = opts["changed-only"], opts.plan
  opts.plan_out, opts.missing_out = opts["plan-out"], opts["missing-out"]
  if opts.plan_out and not opts.plan then return "--plan-out goes with --plan" end
  if opts.plan and (opts.resume or opts["dry-run"]) then
    return "--plan sends nothing and keeps no journal: it goes without --resume and --dry-run"
  end
  if opts.plan then opts.dry_run, opts.changed_only = true, true end
  opts.out_dir = opts["out-dir"]
  if opts.rejects == "-" then return "--rejects -: the rejects file must be a file (name it)" end
  if opts.out_dir == "" or opts.out_dir == "-" then return "--out-dir expects a directory" end
  local every = opts["progress-interval"]
  opts.interval = tonumber(every or "5")
  if not opts.interval or not (opts.interval > 0 and opts.interval < math.huge) then
    return "--progress-interval expects seconds (a positive number), got '" .. every .. "'"
  end
  return nil
end

-- Setting up ------------------------------------------------------------------------

local MAX_PROBLEMS = 20 -- problems of the header said, at most

-- The input, its header and the column plan: fills run, or returns false
-- after saying why.
local function open_input(run, client)
  local file = run.opts.file
  local reader, why = core.csv_open(file)
  if not reader then say(why); return false end
  run.reader = reader
  run.header, why = reader:header()
  if not run.header then say(file, ": ", why); return false end
  run.first_line = reader:lines() + 1
  run.sep, run.total = reader:separator(), host.size(file) or 0
  local schema, err = client.projects:fields()
  if not schema then say("cannot read the project's fields: ", tostring(err)); return false end
  local idx = fields.index(schema)
  run.key = run.opts.key or client.settings.key_field or schema.key or fields.DEFAULT_KEY
  local ok, meta_or_why = pcall(record.contacts, idx, run.key)
  if not ok then
    say(run.opts.key and "--key-field " or "the key field ", run.key, ": ", select(2, fields.resolve(run.key, idx)) or meta_or_why)
    return false
  end
  local problems
  run.steps, problems = plan.columns(run.header, run.opts.map, meta_or_why)
  if not run.steps then
    -- a header of a million unknown columns is said in a screenful
    for i = 1, math.min(#problems, MAX_PROBLEMS) do say(problems[i]) end
    if #problems > MAX_PROBLEMS then
      say("... and ", #problems - MAX_PROBLEMS, " more problems with the header's columns")
    end
    say("map or skip columns with --map COLUMN=FIELD or --skip COLUMN; "
      .. "`dialoginsight fields` lists the project's fields")
    return false
  end
  run.builder = meta_or_why
  -- the field types the state's records were built with (cli/sync/state.lua)
  local types = {}
  for _, f in ipairs(schema.fields) do types[#types + 1] = f.wire .. ":" .. tostring(f.type) end
  table.sort(types)
  run.types = core.digest("sha256", table.concat(types, ",")):sub(1, 16)
  run.state_cols = batches.state_columns(run.steps)
  run.plan = run.builder:plan(run.steps)
  run.key_cols = batches.key_columns(run.steps)
  return true
end

-- The rejects file's first line: the input's header, then di_line and
-- di_reason.
local function rejects_header(run)
  local h = {}
  for j, name in ipairs(run.header) do h[j] = name end
  h[#h + 1], h[#h + 2] = "di_line", "di_reason"
  return csv.line(h, run.sep)
end

-- Why the rejects file (out, size bytes, first: its first bytes) cannot be
-- the one a resumed journal old counts on, or nil.
local function not_resumable(run, out, size, first, head)
  local old, path = run.journal.old, out.path
  local advice = ": cannot resume; use --restart to sync the file again from the start "
    .. "(Merge is an upsert)"
  if host.fileid(path) ~= old.rejects_id then
    return "the rejects file " .. path .. " is not the one the journal's runs wrote ("
      .. old.rejects .. ", as named then): run with the --rejects or --out-dir of the first "
      .. "run, or use --restart to sync the file again from the start"
  end
  if size == 0 then
    return "the rejects file " .. path .. " is empty, and the journal counts "
      .. commands.count(old.rejected, "rejected row") .. " in it" .. advice
  end
  if first ~= head then
    return "the rejects file " .. path .. " does not start with the header line it was written "
      .. "with: it was changed" .. advice
  end
  if size < old.rejects_size then
    return "the rejects file " .. path .. " is shorter than the journal says (" .. size
      .. " bytes, " .. old.rejects_size .. " recorded): it was changed" .. advice
  end
  return nil
end

-- The rejects file, locked, then cut back to what the resumed journal
-- recorded, or started afresh with its header line: the output, or nil,
-- message.  Resumed, it must be the file the journal names, as long as it
-- says; started afresh, an existing file is overwritten only when it is
-- empty, the file the journal being replaced names, or a rejects file of
-- this input (it starts with the same header line): never another file
-- that --rejects happens to name.
local function open_rejects(run)
  local path, old = run.paths.rejects, run.journal and run.journal.old
  local _, kind = host.fileid(path)
  if old and old.rejected == 0 then
    -- the journal counts no rejected row: whatever became of its rejects
    -- file (removed, emptied, another), nothing is lost by starting one
    -- afresh, which the journal then names (Journal:renew_rejects)
    old, run.rejects_renewed = nil, true
  end
  if old and kind == "none" then
    return nil, "the rejects file " .. path .. " is missing, and the journal counts "
      .. commands.count(old.rejected, "rejected row") .. " in it: cannot resume; run with the --rejects or "
      .. "--out-dir of the first run, or use --restart to sync the file again from the start"
  end
  local out, err = output.open(path, "rejects file")
  if not out then return nil, err end
  local function fail(...) out:close(); return nil, ... end
  local ok, size, first
  ok, err = out:lock()
  if not ok then return fail(err) end
  size, err = out:size()
  if not size then return fail(err) end
  local head = rejects_header(run)
  if size > 0 then
    first, err = out:read_head(#head)
    if not first then return fail(err) end
  end
  if old then
    local why = not_resumable(run, out, size, first, head)
    if why then return fail(why) end
    ok, err = out:truncate(math.max(old.rejects_size, #head))
  else
    local prev = run.journal and run.journal.prev
    -- the rows a stream rejected (this input now, or the earlier run's: a journal
    -- marked input=stream) can be made by nothing again: never emptied unasked
    local streamed = run.paths.stream or (prev and prev.input == "stream")
    local rows = false
    if streamed and not run.opts.restart and size > 0 then
      -- rows: anything after its header line (a header past 64 KiB counts as rows)
      local text = out:read_head(65536)
      if not text then return fail("cannot read the rejects file " .. path) end
      local nl = text:find("\n", 1, true)
      rows = not nl or nl < #text
    end
    if rows then
      return fail("the rejects file " .. path .. " holds the rejected rows of an earlier run, which "
        .. "this run would replace and no stream can make again: move it away, give --out-dir, "
        .. "or use --restart to replace it")
    end
    if size > 0 and first ~= head and not (prev and prev.rejects_id == host.fileid(path)) then
      return fail("the rejects file " .. path .. " exists and is not a rejects file of "
        .. (run.opts.name or run.opts.file) .. " (its first line is not the input's header followed by di_line and "
        .. "di_reason): refusing to overwrite it; remove it, or name another with --rejects")
    end
    ok, err = out:truncate(0)
    if ok then ok, err = out:write(head) end
    if ok then ok, err = out:sync() end
  end
  if not ok then return fail(err) end
  return out
end

-- The lines of the rows a rejects file holds (its di_line column), or nil,
-- why.
local function rejected_lines(path)
  local _, kind = host.fileid(path)
  if kind ~= "file" then return {} end -- missing: open_rejects refuses it
  local r, why = core.csv_open(path)
  if not r then return nil, why end
  local lines = {}
  if r:header() then
    while true do
      local row, err = r:next()
      if row == nil then
        if err then r:close(); return nil, "cannot read the rejects file " .. path .. ": " .. err end
        break
      end
      if type(row) == "table" and tonumber(row[#row - 1]) then lines[tonumber(row[#row - 1])] = true end
    end
  end
  r:close()
  return lines
end

-- A resumed run whose journal has holes: the rows of them that a later
-- confirmed row of their key superseded (batches.superseded).  true, or
-- nil, why.
local function superseded(run)
  local old = run.journal.old
  local rejected, why = rejected_lines(run.paths.rejects)
  if not rejected then return nil, why end
  local set, n = batches.superseded(run, old, rejected)
  if set == nil then return n == nil, n end
  if n > 0 then
    run.superseded = set
    note("resuming: ", commands.count(n, "row"), " of unconfirmed batches superseded by "
      .. "later rows of their key that earlier runs confirmed: not sent again")
  end
  return true
end

-- What the journal is opened with: where, and the run's target and settings.
function journal_opts(run, client)
  local o = run.opts
  return { path = run.paths.journal, file = o.file, key = run.key,
           target = journal.target(client.base_url), key_id = client.key_id,
           project = client.project, rejects = run.paths.rejects, resume = o.resume,
           restart = o.restart, stream = run.paths.stream }
end

-- The journal (not in a dry run: it is locked and read first, written only
-- once the rejects file is open) and the rejects file: fills run, or says
-- why and returns false, exit status.  A failure leaves no journal behind
-- that this run made.
local function open_outputs(run, client)
  local o = run.opts
  if not o.dry_run then
    local j, why, status = journal.open(journal_opts(run, client), note)
    if not j then say(why); return false, status end
    run.journal = j
    local old = j.old
    why = old and journal.check_input(old, run.reader, o.file)
    -- (read before the rejects file is opened: closing a second descriptor
    -- of it would drop this run's lock on it, host.lock)
    if old and not why then why = select(2, superseded(run)) end
    if why then
      say(why)
      j:abandon()
      return false, 1
    end
    if old then
      note("resuming: ", commands.count(old.rows, "row"), old.rows == 1 and " was" or " were",
        " confirmed by earlier runs")
      run.done_ranges = old.ranges
      local st = run.st
      st.created, st.updated, st.rejected = old.created, old.updated, old.rejected
      st.superseded, st.rows, st.resumed = old.superseded, old.rows, old.rows
      st.unchanged = old.unchanged
    end
  end
  -- a plan writes no rejects file (its rejections are in its report): the last real run's stays
  local rejects, why
  if o.plan then rejects = output.null() else rejects, why = open_rejects(run) end
  local ok = rejects ~= nil
  if ok and run.journal then ok, why = run.journal:start(host.fileid(run.paths.rejects)) end
  if ok and run.rejects_renewed then
    ok, why = run.journal:renew_rejects(run.paths.rejects, host.fileid(run.paths.rejects))
  end
  if not ok then
    say(why)
    if run.journal then run.journal:abandon() end
    if rejects then rejects:close() end
    return false, 1
  end
  run.rejects = rejects
  return true
end

-- Settling -------------------------------------------------------------------------

-- An output failed: the run stops, and nothing more is written (the journal
-- must not get ahead of the rejects file, nor past a hole).
local function broke(run, err)
  run.broken = true
  run.fatal = run.fatal or err
end

-- A batch is settled: its rejects, then its journal line; then it counts.
local function settle(run, b)
  -- its records' JSON and fields are no longer needed: freed now, not when
  -- the GC gets round to a userdata it thinks is small
  if b.json then b.json:close() end
  batches.release(run, b)
  if run.broken then return end
  table.sort(b.rejects, function(x, y) return x[1] < y[1] end)
  local out, ok, err = run.rejects, true, nil
  for _, r in ipairs(b.rejects) do
    ok, err = out:write(r[2])
    if not ok then break end
  end
  if ok then ok, err = out:flush() end
  -- the state before the journal: a kill between them sends the batch again, which the
  -- state then finds unchanged; never a journal line whose rows the state lacks
  if ok and run.state and not run.opts.dry_run then
    local list, keys = batches.confirmed(b)
    ok, err = run.state:confirm(list, keys, core.wall())
  end
  if ok and run.journal then ok, err = run.journal:record(b, out) end
  if not ok then return broke(run, err) end
  local st = run.st
  st.created, st.updated = st.created + b.created, st.updated + b.updated
  st.rejected, st.superseded = st.rejected + #b.rejects, st.superseded + b.superseded
  st.unchanged = st.unchanged + b.unchanged
  st.rows = st.rows + (b.last - b.first + 1)
  if not run.opts.dry_run then -- (--metrics FILE)
    local m = metrics.default()
    m:rows("created", b.created)
    m:rows("updated", b.updated)
    m:rows("rejected", #b.rejects)
    m:rows("unchanged", b.unchanged)
    m:rows("superseded", b.superseded) -- (a later row of the key was sent instead)
  end
end

-- The state (cli/sync/state.lua) ----------------------------------------------------

local PLAN_SHOWN = 10 -- rows of each action the plan prints (--plan-out has them all)

-- A cell a spreadsheet would run as a formula (=, +, -, @, a tab or CR first) starts with '.
local function inert(v)
  v = tostring(v)
  if v:match("^[=+%-@\t\r]") then return "'" .. v end
  return v
end

-- Opens the state (every real run keeps it; a dry run reads it for --changed-only), and
-- for --plan the report's collector.  true, or false and the exit status (said and closed).
function open_state(run, client)
  local o = run.opts
  if o.dry_run and not o.changed_only then return true end
  local function fail(why)
    say(why)
    if run.state then run.state:close() end
    run.reader:close()
    return false, 1
  end
  local s, emptied = state.open(run.paths.state, { target = journal.target(client.base_url),
    project = client.project or "", key = run.key, types = run.types }, o.dry_run)
  if not s then return fail(emptied) end
  if emptied then say(emptied) end
  run.state, run.compare = s, o.changed_only
  s.links = o.changed_only -- only a comparing run needs a sent key's contact (State:sent)
  -- a row rejected before sending is in the file all the same (never a missing key)
  function run.on_reject(line, row, reason)
    batches.seen(run, row)
    if run.on_plan then run.on_plan(line, batches.state_key(run, row) or "", "rejected", reason) end
  end
  if o.plan then
    local p = { new = 0, changed = 0, rejected = 0, shown = {} }
    local out
    if o.plan_out then
      local why
      out, why = output.open(o.plan_out, "--plan-out file")
      if out then local ok; ok, why = out:truncate(0); if not ok then out = nil end end
      if not out then return fail(why) end
      out:write(csv.line({ "di_line", "key", "action", "detail" }, ","))
    end
    p.out = out
    run.planned = p
    function run.on_plan(line, key, action, diff)
      if p[action] then p[action] = p[action] + 1 end
      local detail = type(diff) == "string" and diff or ""
      if type(diff) == "table" then
        local parts = {}
        for _, d in ipairs(diff) do
          parts[#parts + 1] = fields.friendly(d[1]) .. ": " .. (d[2] or "(none)") .. " -> " .. (d[3] or "(none)")
        end
        detail = table.concat(parts, "; ")
      end
      local shown = p.shown[action] or {}
      p.shown[action] = shown
      if #shown < PLAN_SHOWN and action ~= "unchanged" then
        shown[#shown + 1] = string.format("line %d: %s%s", line, key, detail ~= "" and (": " .. detail) or "")
      end
      if out and not run.fatal then
        local ok, why = out:write(csv.line({ tostring(line), inert(key), action, inert(detail) }, ","))
        if not ok then run.fatal = "the --plan-out file: " .. tostring(why) end
      end
    end
  end
  return true
end

-- The end of a run for the state: the keys missing from the file (a whole read only),
-- written to --missing-out; the plan's report and file.
function finish_state(run)
  local s, o = run.state, run.opts
  if not s then return end
  local complete = run.eof and not run.fatal and not run.interrupted
  if complete then
    local n, each = s:missing()
    run.missing = n
    local p = run.planned
    if n and n > 0 and p and p.out then
      -- the plan file lists them too (no line: they are not in the file)
      for key in select(2, s:missing()) do
        if not p.out:write(csv.line({ "", inert(key), "missing", "in the state, not in this file" }, ",")) then break end
      end
    end
    if n and o.missing_out then
      local out, why = output.open(o.missing_out, "--missing-out file")
      local ok = out ~= nil
      if ok then ok, why = out:truncate(0) end
      if ok then ok, why = out:write("key\n") end
      for key in each do
        if not ok then break end
        ok, why = out:write(csv.line({ inert(key) }, ","))
      end
      if ok then ok, why = out:sync() end
      if out then out:close() end
      if not ok then broke(run, "the --missing-out file: " .. tostring(why)) end
    end
  end
  local p = run.planned
  if p then
    if p.out then p.out:sync(); p.out:close() end
    for _, action in ipairs { "new", "changed", "rejected" } do
      for _, line in ipairs(p.shown[action] or {}) do io.stdout:write(action, ": ", commands.cli_terms(line), "\n") end
      if (p[action] or 0) > PLAN_SHOWN then
        io.stdout:write(action, ": ... and ", p[action] - PLAN_SHOWN, " more", o.plan_out and "" or
          " (--plan-out FILE lists every row)", "\n")
      end
    end
  end
  s:close()
end

-- Running -----------------------------------------------------------------------------

local function dry_run(run)
  while not run.fatal do
    local b = batches.next(run)
    if not b then break end
    run.st.valid = run.st.valid + #b.lines
    settle(run, b)
    run.bar:update(run.st)
    if host.interrupted() then run.interrupted = true; break end
  end
end

local function send(run, client)
  local pending, n, waiting, again = {}, 0, 0, {}
  local held -- a batch that waits for earlier ones holding its keys (batches.ready)
  local merge_options = merge.options {}
  run.owner, run.kbuf = {}, {}
  local function next_call()
    while true do
      if run.fatal then return nil end
      if host.interrupted() then run.interrupted = true; return nil end
      -- the parts of a refused call first (batches.outcomes); then the input
      local part = table.remove(again, 1)
      if not part then
        local b = held
        held = nil
        if not b then
          b = batches.next(run)
          if not b then
            -- a call in flight may still be refused and sent again in parts
            if waiting > 0 then return false end
            return nil
          end
          run.bar:update(run.st)
        end
        if #b.lines == 0 then
          settle(run, b)
        elseif batches.ready(b) then
          part = batches.whole(b)
          if run.state then
            local ok, why = run.state:doubt(batches.keys_sent(b))
            if not ok then run.fatal = why; return nil end
          end
        elseif waiting > 0 then
          held = b -- asked again once a call completes
          return false
        else
          run.fatal = "internal error: the batch of lines " .. b.lines[1] .. "-"
            .. b.lines[#b.lines] .. " waits for batches that are not in flight"
          return nil
        end
      end
      if part then
        n, waiting = n + 1, waiting + 1
        pending[n] = part
        return { "contacts", "Merge", { Records = part.json, MergeOptions = merge_options } }
      end
    end
  end
  local function done(i, res)
    local part = pending[i]
    pending[i], waiting = nil, waiting - 1
    local b = part.batch
    local fatal, parts = batches.outcomes(run, part, res)
    if part.json ~= b.json then part.json:close() end
    if fatal then
      run.fatal = run.fatal or fatal
      run.halted = true -- a failed call: send nothing more
      return
    end
    for _, p in ipairs(parts or {}) do again[#again + 1] = p end
    if b.waiting == 0 then
      settle(run, b)
      run.bar:update(run.st)
    end
  end
  -- The stream keeps one batch prepared beyond the calls in flight, sent
  -- the moment a place is free; after Ctrl-C or a failed call nothing more
  -- is sent (stop), and a batch prepared but not sent is never settled: not
  -- in the journal, so --resume reads it again.  (A reader that cannot go
  -- on stops the reading only: the batch it ended is whole, and is sent.)
  -- A batch is settled once every part of it has its outcome.  The replies
  -- are read for the records' outcomes only (src/di_json_pick.c).
  -- A second Ctrl-C: "now", the calls in flight abandoned (their batches
  -- never settled: --resume sends them again).
  local function stop(inflight)
    host.inflight(inflight)
    local presses = host.interrupted()
    if presses then run.interrupted = true end
    if presses and presses >= 2 then run.abandoned = true; return "now" end
    return run.interrupted or run.halted
  end
  client:call_stream(next_call, done, { concurrency = run.opts.concurrency, outcomes = true,
                                        stop = stop })
  host.inflight(0)
  -- a batch still waiting for a part was never settled: never complete
  if (waiting > 0 or #again > 0 or held) and not (run.fatal or run.interrupted) then
    run.fatal = "calls of " .. commands.count(waiting + #again, "part") .. " of batches got no answer"
  end
end

-- Finishing ---------------------------------------------------------------------------

-- Which lines of the input the rows covered: every line is the header's, a
-- row's (the rows are contiguous from the line after the header), or blank.
local function lines_part(run)
  local last, blank = run.reader:lines()
  if not run.eof or run.fatal then return string.format(", read to line %d", last) end
  if last < run.first_line then return string.format(", no rows after the header (lines 1-%d)", last) end
  local s = string.format(", rows on lines %d-%d of %d", run.first_line, last, last)
  if blank > 0 then s = s .. string.format(" (%d blank)", blank) end
  return s
end

local function summary_line(run, elapsed)
  local st, opts = run.st, run.opts
  local merged = st.created + st.updated
  local s = string.format("sync contacts %s: %s, %d merged (%d created, %d updated), "
    .. "%d rejected", opts.name or opts.file, commands.count(st.rows, "row"), merged, st.created, st.updated,
    st.rejected)
  if opts.changed_only and not opts.dry_run then
    s = s .. string.format(", %d unchanged (not sent)", st.unchanged)
  end
  if opts.plan then
    local p = run.planned
    s = string.format("sync contacts %s (plan, nothing sent): %s: %d new, %d changed, %d unchanged, "
      .. "%d rejected", opts.name or opts.file, commands.count(st.rows, "row"), p.new, p.changed,
      st.unchanged, st.rejected)
  elseif opts.dry_run then
    s = string.format("sync contacts %s (dry run, nothing sent): %s, %d valid, %d rejected",
      opts.name or opts.file, commands.count(st.rows, "row"), st.valid, st.rejected)
    if opts.changed_only then s = s .. string.format(" (%d of them unchanged)", st.unchanged) end
  end
  if run.missing and run.missing > 0 then
    s = s .. string.format(", %s of the state not in this file (never deleted)",
      commands.count(run.missing, "key"))
  end
  if st.superseded > 0 then
    s = s .. string.format(", %d superseded (a later row of the same key was confirmed first)",
      st.superseded)
  end
  if st.resumed > 0 then s = s .. " (" .. commands.count(st.resumed, "row") .. " done by earlier runs)" end
  s = s .. lines_part(run)
  s = s .. string.format(" in %.1f s (%d rows/s), peak memory %d MB",
    elapsed, elapsed > 0 and math.floor((st.rows - st.resumed) / elapsed) or 0,
    math.floor(host.rss() / 1024 + 0.5))
  return s
end

-- Closes the outputs: the rejects file first, since the journal may say
-- complete only once every reject is on disk.
local function close_outputs(run)
  local complete = run.eof and not run.fatal and not run.interrupted
  local ok, err = run.rejects:sync()
  local cok, cerr = run.rejects:close()
  if ok then ok, err = cok, cerr end
  if not ok then broke(run, err); complete = false end
  if run.journal then
    ok, err = run.journal:close(complete)
    if not ok then broke(run, err) end
  end
end

-- What to do after a run that did not finish.
local function stop_advice(run)
  local o = run.opts
  if o.dry_run then return "the rejects file is incomplete; run the dry run again" end
  if run.paths.stream then
    return "the journal " .. run.paths.journal .. " lists the confirmed batches; a stream "
      .. "cannot be resumed: sync it again with --restart (Merge is an upsert)"
  end
  local same = (o.out_dir and " --out-dir " .. o.out_dir or "")
    .. (o.rejects and " --rejects " .. o.rejects or "")
  return "the batches confirmed so far are in " .. run.paths.journal
    .. "; run again with --resume" .. (same ~= "" and (" (and" .. same .. ")") or "")
end

-- Closes everything, prints the summary; returns the exit status.
local function finish(run)
  run.bar:finish(run.st)
  finish_state(run)
  close_outputs(run)
  local st = run.st
  io.stdout:write(summary_line(run, core.now() - run.started), "\n")
  run.reader:close()
  if st.rejected > 0 and not run.opts.plan then
    io.stdout:write(st.rejected, st.rejected == 1 and " row" or " rows", " rejected: see ",
      run.paths.rejects, " (the original fields, then di_line and di_reason)\n")
  end
  io.stdout:flush()
  if run.fatal then
    say("stopped: ", tostring(run.fatal))
    say(stop_advice(run))
    return 1
  end
  if run.abandoned then
    say("stopped at once (second Ctrl-C): the calls in flight were not waited for ("
      .. (run.paths.stream and "their rows may or may not be in Dialog Insight"
        or "--resume sends their rows again") .. "); the journal holds every batch confirmed before")
    say(stop_advice(run))
    return 130
  end
  if run.interrupted then
    say("interrupted: the batches in flight were finished and the journal written")
    say(stop_advice(run))
    return 130
  end
  return st.rejected > 0 and 2 or 0
end

--- Runs a sync (opts as check() leaves them); returns the exit status.
function M.run(client, opts, _, g)
  quiet = g and g.quiet or false
  local run = {
    opts = opts, started = core.now(),
    st = { rows = 0, created = 0, updated = 0, rejected = 0, superseded = 0, valid = 0, resumed = 0,
           unchanged = 0, pos = 0 },
    done_ranges = {}, ri = 1, recno = 0,
  }
  local why
  run.paths, why = paths.resolve(opts)
  if not run.paths then say(why); return 1 end
  if not open_input(run, client) then
    if run.reader then run.reader:close() end
    return 1
  end
  -- the state first: a run refused for it leaves the last run's journal and rejects
  -- untouched; a --resume that its journal refuses (another target) says so first
  local status
  if opts.resume then why, status = journal.refused(journal_opts(run, client)) end
  if why then say(why); run.reader:close(); return status end
  local ok
  ok, status = open_state(run, client)
  if not ok then return status end
  ok, status = open_outputs(run, client)
  if not ok then
    run.reader:close()
    if run.state then run.state:close() end
    if run.planned and run.planned.out then run.planned.out:close() end
    return status
  end
  run.bar = progress.new { tty = host.isatty(2), width = host.width(),
    interval = opts.interval, total = run.total, off = quiet }
  -- graceful until the outputs are closed: a Ctrl-C never cuts a write
  host.graceful("stream")
  if opts.dry_run then dry_run(run) else send(run, client) end
  status = finish(run)
  host.graceful(false)
  return status
end

return M
