--- Merge, shared by contacts and relational tables: MergeOptions from user
-- options, per-record outcomes, and chunked batches through call_many.
local core = require "dialoginsight.core"
local errors = require "dialoginsight.errors"

local M = {}

M.BATCH_SIZE = 100 -- records per Merge call [assumed], as API.md's default

-- Status -> outcome.  Only "Updated" was ever seen on the wire; the others
-- are [assumed] (API.md).
M.STATUS = { Created = "created", Updated = "updated", Skipped = "skipped" }

--- MergeOptions of opts: insert / update (default true), skip_duplicates,
-- skip_unmatched, return_records (default false).
function M.options(opts)
  opts = opts or {}
  return {
    AllowInsert = opts.insert ~= false,
    AllowUpdate = opts.update ~= false,
    SkipDuplicateRecords = opts.skip_duplicates == true,
    SkipUnmatchedRecords = opts.skip_unmatched == true,
    ReturnRecordsOnSuccess = opts.return_records == true,
    ReturnRecordsOnError = false,
  }
end

--- The outcome of a Records[i] the server accepted (created, updated or
-- skipped), or nil when outcome() would say rejected.  It builds no table:
-- a sync asks it first for each of its rows.
function M.accepted(rec)
  local st = M.STATUS[rec.Status]
  if st and (rec.ValidationResult == nil or rec.ValidationResult == "OK") then return st end
  return nil
end

--- The outcome of one Records[i] of a Merge reply:
-- { outcome = created|updated|skipped|rejected, id =, reason =, code =, field = }.
-- friendly(wire) names a field the server's message quotes; from_wire maps
-- a returned Record.
function M.outcome(rec, friendly, from_wire)
  local o = { id = (rec.IdRecord ~= nil and rec.IdRecord ~= 0) and rec.IdRecord or nil }
  local st = M.accepted(rec)
  if st then
    o.outcome, o.reason = st, rec.Message
  else
    o.outcome = "rejected"
    o.reason = rec.Message or rec.ValidationResult or tostring(rec.Status)
    o.code = rec.ValidationResult
    -- the server quotes the field it refuses: "Field 'f_Points' expects ..."
    local quoted = type(rec.Message) == "string" and rec.Message:match("'([%w_]+)'")
    if quoted then o.field = friendly(quoted) end
  end
  if rec.Record and from_wire then o.record = from_wire(rec.Record) end
  return o
end

local function rejected(problems)
  local msgs = {}
  for _, p in ipairs(problems) do msgs[#msgs + 1] = "field '" .. p.field .. "' " .. p.message end
  return { outcome = "rejected", reason = table.concat(msgs, "; "), code = "Validation",
           field = problems[1].field, problems = problems }
end

local function count(summary, i, o)
  summary.records[i] = o
  summary[o.outcome] = summary[o.outcome] + 1
end

-- items[i] = { record = <wire record> } or { problems = {...} }
local function chunks(items, size)
  local list, cur = {}, nil
  for i, item in ipairs(items) do
    if item.record then
      if not cur or #cur.index == size then
        cur = { index = {}, records = {} }
        list[#list + 1] = cur
      end
      cur.index[#cur.index + 1] = i
      cur.records[#cur.records + 1] = item.record
    end
  end
  return list
end

local function missing(res, k)
  return errors.new { kind = "decode", service = res.service, method = res.method,
    message = "the Merge reply has no outcome for record " .. k }
end

--- Sends the valid items in chunks of opts.batch_size through call_many and
-- returns the summary { created, updated, skipped, rejected, failed,
-- records = { outcome per item, in input order } }.  A failed chunk marks
-- each of its records failed, with the error.  scope: members every call
-- carries (a relational table's idTable).
function M.many(client, service, items, opts, friendly, from_wire, scope)
  opts = opts or {}
  local size = opts.batch_size or M.BATCH_SIZE
  if type(size) ~= "number" or size < 1 or size ~= math.floor(size) then
    error("dialoginsight: batch_size must be a positive integer", 3)
  end
  local summary = { created = 0, updated = 0, skipped = 0, rejected = 0, failed = 0, records = {} }
  for i, item in ipairs(items) do
    if item.problems then count(summary, i, rejected(item.problems)) end
  end
  local parts, calls = chunks(items, size), {}
  local mo = M.options(opts)
  for j, part in ipairs(parts) do
    local params = { Records = core.array(part.records), MergeOptions = mo }
    for k, v in pairs(scope or {}) do params[k] = v end
    calls[j] = { service, "Merge", params }
  end
  local results = #calls > 0 and client:call_many(calls, opts) or {}
  for j, part in ipairs(parts) do
    local res = results[j]
    for k, i in ipairs(part.index) do
      local rec = not errors.is_error(res) and type(res.Records) == "table" and res.Records[k]
      if errors.is_error(res) then
        count(summary, i, { outcome = "failed", error = res, reason = tostring(res) })
      elseif not rec then
        local err = missing({ service = service, method = "Merge" }, k)
        count(summary, i, { outcome = "failed", error = err, reason = tostring(err) })
      else
        count(summary, i, M.outcome(rec, friendly, from_wire))
      end
    end
  end
  return summary
end

return M
