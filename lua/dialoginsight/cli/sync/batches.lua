--- The batches of a sync: records read from the CSV reader, built into wire
-- records through the column plan (cli/sync/plan.lua; the C core, src/di_rows.c,
-- builds straight into the batch's JSON, and records/record.lua the rows it
-- declines), the bad ones set aside as rejects, in batches that never span a
-- range an earlier run confirmed; and each record's outcome from its Merge reply.
-- The rules are docs/sync.md's.  No I/O but the reader's.
local core = require "dialoginsight.core"
local errors = require "dialoginsight.errors"
local fields = require "dialoginsight.records.fields"
local merge = require "dialoginsight.records.merge"
local csv = require "dialoginsight.cli.csv"
local state = require "dialoginsight.cli.sync.state"

local M = {}

local function reject_line(run, row, line, reason)
  local out, n = {}, math.max(#row, #run.header)
  for j = 1, n do out[j] = row[j] or "" end
  out[n + 1], out[n + 2] = tostring(line), reason
  return csv.line(out, run.sep)
end

-- The fields of record k of batch b, as read.
local function row_of(b, k)
  return b.rows[k] or b.json:row(k)
end

--- Sets a row of batch b aside for the rejects file, with its line and why.
function M.reject(run, b, line, row, reason)
  b.rejects[#b.rejects + 1] = { line, reject_line(run, row, line, reason) }
  if run.on_reject then run.on_reject(line, row, reason) end
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

-- The end of the input, or a reader that cannot go on: run.eof, or run.fatal naming the line.
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

local function new_batch(run)
  return { first = run.recno + 1, json = core.row_batch(), rows = {}, lines = {}, rejects = {},
           created = 0, updated = 0, superseded = 0, unchanged = 0, keys = {}, srec = {} }
end

-- Rows of one key (docs/sync.md) ----------------------------------------------------
-- Two rows of one key never share a call, and a batch holding a key of an unsettled
-- batch waits for it (M.ready); run.owner maps each unsettled key to its last batch.

--- The columns whose value keys a row in the sync's state, by kind, whatever their order in
-- the file: the key field, then idContact ("#" before it), then key_* ("key_x:" before it).
function M.state_columns(steps)
  local cols = {}
  for pass = 1, 3 do
    for j, st in ipairs(steps) do
      if st and ((pass == 1 and st.key) or (pass == 2 and st.id) or (pass == 3 and st.raw)) then
        cols[#cols + 1] = { j, pass == 1 and "" or pass == 2 and "#" or (tostring(st.wire) .. ":") }
      end
    end
  end
  return cols
end

--- The state's key of a row as read (a table of fields), or nil.
function M.state_key(run, row)
  for _, c in ipairs(run.state_cols) do
    local k = merge.key(row[c[1]])
    if k then return c[2] .. k end
  end
  return nil
end

--- The columns that identify a row (the key field, idContact, key_*), for
-- the steps of the column plan (cli/sync/plan.lua).
function M.key_columns(steps)
  local cols = {}
  for j, s in ipairs(steps) do
    if s and (s.key or s.id or s.raw) then cols[#cols + 1] = j end
  end
  return cols
end

-- The keys of record n of batch b (run.kbuf, reused).
local function keys_of(run, b, n)
  run.kbuf = run.kbuf or {}
  local cols, kb, row = run.key_cols, run.kbuf, b.rows[n]
  local c = 0
  for i = 1, #cols do
    local k
    if row then k = merge.key(row[cols[i]]) else k = b.json:key(n, cols[i]) end
    if k then c = c + 1; kb[c] = k end
  end
  kb.n = c
  return kb
end

-- The unsettled batch that holds one of the keys, if any.
local function holder(run, kb)
  local owner = run.owner
  for i = 1, kb.n do
    local o = owner[kb[i]]
    if o then return o end
  end
  return nil
end

local function own(run, b, kb)
  local owner, keys = run.owner, b.keys
  for i = 1, kb.n do
    local k = kb[i]
    owner[k] = b
    keys[#keys + 1] = k
  end
end

-- Record n of b (on record number recno) holds a key an unsettled batch holds:
-- b ends before it and the row starts the next batch (run.carry), which waits;
-- or b waits itself, when the row is its first.  True when b ends here.
local function placed(run, b, n)
  if not run.owner then return false end
  local kb = keys_of(run, b, n)
  local o = holder(run, kb)
  if not o then own(run, b, kb); return false end
  if n == 1 then
    b.deps = b.deps or {}
    b.deps[#b.deps + 1] = o
    own(run, b, kb)
    return false
  end
  local nb = new_batch(run)
  nb.first, nb.last, nb.deps = run.recno, run.recno, { o }
  b.json:move_last(nb.json)
  nb.rows[1], nb.lines[1], nb.srec[1] = b.rows[n], b.lines[n], b.srec[n]
  b.rows[n], b.lines[n], b.srec[n] = nil, nil, nil
  b.last = run.recno - 1
  own(run, nb, kb)
  run.carry = nb
  return true
end

--- Whether batch b may be sent: every batch it waits for is settled.
function M.ready(b)
  for _, d in ipairs(b.deps or {}) do
    if not d.settled then return false end
  end
  return true
end

--- Batch b is settled: the keys it held are free.
function M.release(run, b)
  b.settled = true
  local owner = run.owner
  if not owner then return end
  for _, k in ipairs(b.keys) do
    if owner[k] == b then owner[k] = nil end
  end
  b.keys, b.deps = nil, nil
end

-- A row the column plan declined: the record builder says why, or adds it to the batch.
local function build(run, b, row, line)
  local rec, probs = run.builder:row(row, run.steps)
  local ok, err = false, nil
  if not probs then ok, err = b.json:add(rec, line) end
  if not ok then
    M.reject(run, b, line, row, probs and reason_of(probs) or tostring(err))
    return
  end
  local n = #b.lines + 1
  b.rows[n], b.lines[n] = row, line
end

-- The sync's state (cli/sync/state.lua) -------------------------------------------

-- Record n of b against the state: true when it is unchanged (the wire record the server
-- last confirmed for its key, and no row of the key sent yet in this run: a later row
-- must not be skipped for matching what an earlier one replaces), and it is not sent.
-- Otherwise its key and JSON are kept for the state (b.srec, written once confirmed).
-- run.on_plan, when set, hears each verdict.
local function against_state(run, b, n)
  local st, row = run.state, b.rows[n]
  -- the key's hash, made in C for a row the plan built (no string for an unchanged row)
  local kh, col
  local cols = run.state_cols
  for i = 1, #cols do
    local c = cols[i]
    if row then
      local k = merge.key(row[c[1]])
      kh = k and core.hash64(c[2] .. k)
    else
      kh = b.json:key_hash(n, c[1], c[2])
    end
    if kh then col = c; break end
  end
  if not kh then return false end
  local old, held = st.ix:look(kh)
  if run.compare and not held and old and old == b.json:hash(n) then
    if run.on_plan then run.on_plan(b.lines[n], col[2] .. (row and merge.key(row[col[1]]) or b.json:key(n, col[1])), "unchanged") end
    return true
  end
  local key = col[2] .. (row and merge.key(row[col[1]]) or b.json:key(n, col[1]))
  local json = b.json:json(n)
  -- the same record with its members in another order (a column moved) is unchanged too
  if run.compare and not held and old and state.same(json, st:record(key)) then
    if run.on_plan then run.on_plan(b.lines[n], key, "unchanged") end
    return true
  end
  st:sent(key, kh)
  b.srec[n] = { key, json }
  if run.on_plan then
    local rec = old and st:record(key)
    run.on_plan(b.lines[n], key, rec and "changed" or "new", rec and state.diff(json, rec))
  end
  return false
end

-- A row read past (confirmed by an earlier run, superseded, or rejected before sending):
-- its key was in the file (the missing keys are the others).
local function seen(run, row)
  if not run.state or type(row) ~= "table" then return end
  local k = M.state_key(run, row)
  if k then run.state:look(k) end
end
M.seen = seen

--- The records of a settled batch, for the state: { key, json } of each record it sent
-- that the server did not reject (merged), and the keys of all it sent (no longer in doubt).
function M.confirmed(b)
  local rejected, list, keys = {}, {}, {}
  for _, r in ipairs(b.rejects) do rejected[r[1]] = true end
  for i, line in ipairs(b.lines) do
    local sr = b.srec[i]
    if sr then
      keys[#keys + 1] = sr[1]
      if not rejected[line] then list[#list + 1] = sr end
    end
  end
  return list, keys
end

--- The state's keys of batch b's records, to put in doubt before it is sent.
function M.keys_sent(b)
  local keys = {}
  for i = 1, #b.lines do
    if b.srec[i] then keys[#keys + 1] = b.srec[i][1] end
  end
  return keys
end

--- The next batch of records, or nil once reading is done: { first, last, json,
-- rows, lines, rejects, created, updated }; a batch the reader stopped in is whole.
function M.next(run)
  local b = run.carry
  run.carry = nil
  if run.done_reading and not b then return nil end
  local reader, plan, size, sup = run.reader, run.plan, run.opts.batch_size, run.superseded
  while not run.done_reading and not run.fatal do
    -- read past: a record an earlier run confirmed, or one superseded (M.superseded)
    local skip = confirmed(run, run.recno + 1)
    if skip and b then break end
    if not skip then b = b or new_batch(run) end
    local row, a, line, bad
    if skip then row, a, line, bad = reader:next() else row, a, line, bad = reader:next_record(plan, b.json) end
    if row == nil then
      ended(run, a)
      break
    end
    run.recno = run.recno + 1
    if skip then seen(run, row) end
    if not skip then
      b.last = run.recno
      local before = #b.lines
      if row == true then
        b.lines[before + 1] = a
      elseif row == false then
        M.reject(run, b, line, bad or {}, (a:gsub("^line %d+: ", "")))
      else
        build(run, b, row, a)
      end
      local n = #b.lines
      if n > before and sup and sup[run.recno] then
        -- a valid row superseded: counted, not sent (a bad one is still a reject)
        if run.state then seen(run, row_of(b, n) or {}) end
        b.json:drop_last()
        b.rows[n], b.lines[n] = nil, nil
        b.superseded = b.superseded + 1
      elseif n > before and run.state and against_state(run, b, n) then
        b.json:drop_last()
        b.rows[n], b.lines[n] = nil, nil
        b.unchanged = b.unchanged + 1
      elseif n > before and (placed(run, b, n) or n == size) then
        break
      end
    end
  end
  run.st.pos = reader:tell()
  if b and not b.last then return nil end -- the input ended before any record
  if b then
    local offset, hash, cut = reader:mark()
    b.mark = { offset = offset, hash = hash, cut = cut }
  end
  return b
end

--- For a resumed run whose journal `old` has a hole (a kill -9 with calls in
-- flight): the records of the holes that a later confirmed record of their key
-- superseded (docs/sync.md, "Rows of one key"); rejected: the lines the rejects
-- file holds.  Reads the input again through a reader of its own, after checking
-- the journal's hash.  Returns { [record] = true } and its size, nil (no hole), or
-- nil, why.
function M.superseded(run, old, rejected)
  local ranges, last = old.ranges, 0
  local hole = false
  for _, r in ipairs(ranges) do
    if r[1] > last + 1 then hole = true end
    last = math.max(last, r[2])
  end
  if not hole then return nil end
  local file = run.opts.file
  local reader, why = core.csv_open(file)
  if not reader then return nil, why end
  local function fail(msg) reader:close(); return nil, msg end
  local m = old.mark
  local hash = reader:digest(m.offset)
  if hash ~= m.hash then return fail(file .. " changed while it was being checked") end
  if not reader:header() then return fail("cannot read the header of " .. file .. " again") end
  local held, set, n, ri = {}, {}, 0, 1
  local cols = run.key_cols
  for recno = 1, last do
    local row, line = reader:next()
    if row == nil then return fail(file .. " ended before record " .. recno .. " when read again") end
    while ranges[ri] and ranges[ri][2] < recno do ri = ri + 1 end
    local done = ranges[ri] ~= nil and ranges[ri][1] <= recno
    -- a confirmed row the rejects file holds supersedes nothing
    if type(row) == "table" and not (done and rejected[line]) then
      for i = 1, #cols do
        local k = merge.key(row[cols[i]])
        if k and not done then
          local l = held[k] or {}
          l[#l + 1] = recno
          held[k] = l
        elseif k and held[k] then
          for _, r in ipairs(held[k]) do
            if not set[r] then set[r], n = true, n + 1 end
          end
          held[k] = nil
        end
      end
    end
  end
  reader:close()
  return set, n
end

--- The first call of batch b: a part holding all its records.  A part is { batch,
-- json, n, pos (the batch's record of each; nil: the same) }; the batch is done when
-- no part waits for its reply (b.waiting).
function M.whole(b)
  b.waiting = 1
  return { batch = b, json = b.json, n = #b.lines }
end

-- The records list of part, as a new part (a refused call sent again).
local function sub(part, list)
  local pos = {}
  for i, k in ipairs(list) do pos[i] = part.pos and part.pos[k] or k end
  return { batch = part.batch, json = part.json:pick(list), n = #list, pos = pos }
end

--- The outcome of each record of a part from its Merge result (docs/sync.md, "The
-- outcome of a row"): counted in its batch, or set aside with M.reject.  Returns the
-- error that must stop the run (one that would hit every later batch too, or a
-- reply that leaves a row unknown: the batch stays unconfirmed, for --resume); or,
-- for a refusal of the whole call, nil and the part to send next (its first half;
-- the second follows, part.after).  run: header and sep (the rejects file's).
function M.outcomes(run, part, res)
  local b, n = part.batch, part.n
  local function at(k) return part.pos and part.pos[k] or k end
  if errors.is_error(res) and merge.REFUSED[res.kind] then
    local a, c = merge.split(res, n)
    if not a then
      -- refused alone: the record's rejection, unless the same answer to every record
      -- says it is about the call (the batch stays unconfirmed, its rejects unwritten)
      run.streak = run.streak or merge.streak()
      if run.streak:refused(res) then return merge.streak_error("contacts", res) end
      local k = at(1)
      M.reject(run, b, b.lines[k], row_of(b, k), "refused by the server: " .. tostring(res))
      b.waiting = b.waiting - 1
      return nil, { part.after }
    end
    -- depth first (docs/sync.md, "A call refused as a whole"): single records come
    -- after a few calls, and a streak shows early
    b.waiting = b.waiting + 1
    local first, second = sub(part, a), sub(part, c)
    first.after, second.after = second, part.after
    return nil, { first }
  end
  if errors.is_error(res) then return res end
  local unknown
  merge.settle(res, n, "contacts", function(_, outcome, _, err)
    if outcome == "failed" then unknown = unknown or err end
  end)
  if unknown then
    return errors.new { kind = "decode", service = "contacts", method = "Merge",
      outcome = "unknown", message = unknown.message .. "; the batch of lines " .. b.lines[1]
        .. "-" .. b.lines[#b.lines] .. " is unconfirmed" }
  end
  merge.settle(res, n, "contacts", function(i, outcome, rec)
    if outcome ~= "rejected" and run.streak then run.streak:taken() end
    if outcome ~= "rejected" and b.srec and b.srec[at(i)] then
      -- the contact the record went to: two keys of one contact (e-mail, idContact) meet
      -- in the state by it
      local id = merge.member(rec, "IdRecord")
      b.srec[at(i)][3] = type(id) == "number" and id > 0 and id or nil
    end
    if outcome == "created" then
      b.created = b.created + 1
    elseif outcome == "updated" or outcome == "accepted" then
      -- accepted: a status this library does not know with ValidationResult
      -- OK (records/merge.lua): merged, and counted with the updates
      b.updated = b.updated + 1
    else
      local o = merge.outcome(rec, fields.friendly)
      local k = at(i)
      M.reject(run, b, b.lines[k], row_of(b, k),
        "refused by the server: " .. tostring(o.reason or outcome))
    end
  end)
  b.waiting = b.waiting - 1
  return nil, { part.after }
end

return M
