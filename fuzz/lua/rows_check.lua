--- The C column plan (src/di_rows.c) against the Lua record builder
-- (records/record.lua), on one CSV file read twice side by side: through
-- the plan (reader:next_record) and as plain rows (reader:next) built by
-- the builder, the reference.  For every record:
--
--   * taken by the plan: the builder takes the row too, and the plan's JSON
--     decodes to what core.encode makes of the builder's record; the batch
--     gives back the row's fields and line as read;
--   * declined by the plan: the row comes back as next() reads it, and the
--     builder refuses it (a row the plan declines but the builder takes
--     would only be slower, but it means the two disagree on a value);
--   * a bad record, the end, a failure: the same from both.
--
-- Used by fuzz/lua/fuzz_rows.lua and spec/client/rows_spec.lua.
local core = require "dialoginsight.core"
local fields = require "dialoginsight.records.fields"
local record = require "dialoginsight.records.record"

local function fail(fmt, ...)
  error("rows_check: " .. string.format(fmt, ...), 0)
end

local M = {}

M.KINDS = { "Text", "Integer", "Decimal", "Date", "DateTime", "Boolean", "any", "id", "raw", "skip" }

-- The builder and its steps for the columns' kinds (kinds[j], one of
-- M.KINDS), column keycol the key.
local function plan_for(kinds, keycol)
  local builder = record.contacts(nil, "c" .. keycol)
  local steps = {}
  for j, kind in ipairs(kinds) do
    if kind == "skip" then
      steps[j] = false
    elseif kind == "id" then
      steps[j] = { field = "idContact", id = true }
    elseif kind == "raw" then
      steps[j] = { field = "key_f_c" .. j, raw = true, wire = "key_f_c" .. j }
    else
      local meta = kind ~= "any" and { type = kind } or nil
      steps[j] = { field = "c" .. j, name = "c" .. j, wire = "f_c" .. j, conv = fields.converter(meta),
                   kind = fields.kind(meta), key = j == keycol }
    end
  end
  return builder, steps, builder:plan(steps)
end

local function same_value(a, b, path)
  if type(a) ~= type(b) then fail("%s: %s against %s", path, type(a), type(b)) end
  if type(a) ~= "table" then
    if a ~= b and not (a ~= a and b ~= b) then
      fail("%s: %s against %s", path, tostring(a), tostring(b))
    end
    return
  end
  for k, v in pairs(a) do same_value(v, b[k], path .. "." .. tostring(k)) end
  for k in pairs(b) do
    if a[k] == nil then fail("%s.%s: missing against %s", path, tostring(k), tostring(b[k])) end
  end
end

local function same_row(a, b, what)
  if #a ~= #b then fail("%s: %d fields against %d", what, #a, #b) end
  for i = 1, #a do
    if a[i] ~= b[i] then fail("%s: field %d is %q against %q", what, i, a[i], b[i]) end
  end
end

local function reason(probs)
  local out = {}
  for _, p in ipairs(probs) do out[#out + 1] = p.field .. " " .. p.message end
  return table.concat(out, "; ")
end

-- One record of each reader; returns "taken", "declined", "other", or nil
-- at the end.
local function step_both(r1, r2, builder, steps, plan)
  local b = core.row_batch()
  local got, a, line, bad = r1:next_record(plan, b)
  local row, a2, line2, bad2 = r2:next()
  if got == true then
    if type(row) ~= "table" or a ~= a2 then fail("the plan took a record next() reads as %s", tostring(row)) end
    local rec, probs = builder:row(row, steps)
    if probs then fail("line %d: the plan took a row the builder refuses: %s", a, reason(probs)) end
    local want = assert(core.decode(assert(core.encode(rec))))
    local json = assert(core.encode(b))
    local have = core.decode(json)
    if type(have) ~= "table" or #have ~= 1 then fail("line %d: the plan wrote %q", a, json) end
    same_value(have[1], want, "line " .. a)
    same_row(b:row(1), row, "line " .. a .. " as kept")
    if b:line(1) ~= a then fail("line %d kept as line %s", a, tostring(b:line(1))) end
  elseif type(got) == "table" then
    if type(row) ~= "table" or a ~= a2 then fail("a declined row that next() reads as %s", tostring(row)) end
    same_row(got, row, "line " .. a .. " declined")
    if b:count() ~= 0 then fail("line %d: declined, yet in the batch", a) end
    local _, probs = builder:row(row, steps)
    if not probs then fail("line %d: the plan declined a row the builder takes", a) end
  else
    if got ~= row or a ~= a2 or line ~= line2 then
      fail("next_record gave %s, %s, %s; next() %s, %s, %s", tostring(got), tostring(a), tostring(line),
        tostring(row), tostring(a2), tostring(line2))
    end
    if got == false then same_row(bad, bad2, "bad record") end
  end
  b:close()
  if got == nil then return nil end
  return got == true and "taken" or type(got) == "table" and "declined" or "other"
end

--- Reads the CSV file at path both ways with columns of the given kinds,
-- column keycol the key; raises on any disagreement.  Returns the count of
-- records of each outcome: { taken =, declined =, other = }.
function M.check(path, kinds, keycol, limit)
  local r1, r2 = assert(core.csv_open(path)), assert(core.csv_open(path))
  local counts = { taken = 0, declined = 0, other = 0 }
  if r1:header() and r2:header() then
    local builder, steps, plan = plan_for(kinds, keycol)
    local n = 0
    while true do
      local what = step_both(r1, r2, builder, steps, plan)
      if not what then break end
      counts[what] = counts[what] + 1
      n = n + 1
      if limit and n > limit then fail("%d records from a file of %d bytes: the reader loops", n, limit) end
    end
  end
  r1:close()
  r2:close()
  return counts
end

return M

