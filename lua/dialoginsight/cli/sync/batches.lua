--- The batches of a sync: records read from the CSV reader (src/di_csv.c),
-- built into wire records through the column plan (cli/sync/plan.lua), the
-- bad ones set aside as rejects with their line, in batches that never span
-- a range an earlier run confirmed (cli/sync/journal.lua); and the outcome
-- of each record from its batch's Merge reply (records/merge.lua).  No I/O
-- but the reader's.
local errors = require "dialoginsight.errors"
local fields = require "dialoginsight.records.fields"
local merge = require "dialoginsight.records.merge"
local csv = require "dialoginsight.cli.csv"

local M = {}

-- Failures of a whole batch that say the server refused these rows: its
-- rows go to the rejects file.  Any other failure (network, auth, rate limit
-- after the retries, 5xx) would hit every following batch too; and a reply
-- that cannot be read (decode) may come from a server that merged the rows:
-- the run stops, the batch unconfirmed, and --resume sends it again.
local ROW_KINDS = { api = true, validation = true }

local function reject_line(run, row, line, reason)
  local out, n = {}, math.max(#row, #run.header)
  for j = 1, n do out[j] = row[j] or "" end
  out[n + 1], out[n + 2] = tostring(line), reason
  return csv.line(out, run.sep)
end

--- Sets a row of batch b aside for the rejects file, with its line and why.
function M.reject(run, b, line, row, reason)
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

-- The end of the input, or a reader that cannot go on (a read error, a
-- runaway quote in a stream): run.eof, or run.fatal naming the line.
local function ended(run, err)
  run.done_reading = true
  if not err then
    run.eof = true
    return
  end
  if not err:match("^line %d+: ") then
    err = "line " .. (run.reader:lines() + 1) .. ": " .. err
  end
  run.fatal = run.fatal or ("reading " .. run.opts.file .. " failed at " .. err)
end

--- The next batch of records, or nil once reading is done: { first, last,
-- records, rows, lines, rejects, created, updated }.  A batch the reader
-- stopped in the middle of is returned with what it holds: those records
-- are whole.
function M.next(run)
  if run.done_reading then return nil end
  local b
  while true do
    local row, a, line, bad = run.reader:next()
    if row == nil then
      ended(run, a)
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
        M.reject(run, b, line, bad or {}, (a:gsub("^line %d+: ", "")))
      else
        local rec, probs = run.builder:row(row, run.steps)
        if probs then
          M.reject(run, b, a, row, reason_of(probs))
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

-- The first record of a Merge reply of n records that has no outcome, if
-- any: the reply does not say what happened to it.
local function missing_outcome(res, n)
  local recs = res.Records
  if type(recs) ~= "table" then return 1 end
  for k = 1, n do
    if type(recs[k]) ~= "table" then return k end
  end
  return nil
end

--- The outcome of each record of batch b from the result of its Merge call
-- (a response, or the error of a call that failed for good): counted in b,
-- or set aside with M.reject.  Returns the error that must stop the run, if
-- any: a failure that says nothing about these rows, or a reply that leaves
-- any of them unknown (the server may hold them: the batch stays
-- unconfirmed, for --resume).  run: header and sep (the rejects file's).
function M.outcomes(run, b, res)
  local n = #b.rows
  if errors.is_error(res) then
    if not ROW_KINDS[res.kind] then return res end
    for k = 1, n do
      M.reject(run, b, b.lines[k], b.rows[k], "batch refused: " .. tostring(res))
    end
    return nil
  end
  local k = missing_outcome(res, n)
  if k then
    return errors.new { kind = "decode", service = "contacts", method = "Merge",
      message = "the Merge reply has no outcome for record " .. k .. " of the batch of lines "
        .. b.lines[1] .. "-" .. b.lines[n] .. ": the batch is unconfirmed" }
  end
  merge.settle(res, n, "contacts", function(i, outcome, rec)
    if outcome == "created" then
      b.created = b.created + 1
    elseif outcome == "updated" or outcome == "accepted" then
      -- accepted: a status this library does not know with ValidationResult
      -- OK (records/merge.lua): merged, and counted with the updates
      b.updated = b.updated + 1
    else
      local o = merge.outcome(rec, fields.friendly)
      M.reject(run, b, b.lines[i], b.rows[i],
        "refused by the server: " .. tostring(o.reason or outcome))
    end
  end)
  return nil
end

return M
