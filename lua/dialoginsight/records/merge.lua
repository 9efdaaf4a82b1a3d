--- Merge, shared by contacts, relational tables and the sync: MergeOptions
-- from user options, and the outcome of each record of a reply.  Pure: the
-- calls are made by resources/base.lua and cli/sync.
local errors = require "dialoginsight.errors"

local M = {}

M.BATCH_SIZE = 100 -- records per Merge call [assumed], as docs/wire.md's default

-- Status -> outcome.  Only "Updated" was ever seen on the wire; the others
-- are [assumed] (docs/wire.md).  A status not in this table is read by its
-- ValidationResult alone: OK means the server took the record ("accepted",
-- the raw status kept), anything else is a rejection.
M.STATUS = { Created = "created", Updated = "updated", Skipped = "skipped" }

-- Statuses that say the record was refused whatever ValidationResult says
-- [assumed]: a server that reports a refusal in Status alone.
M.ERROR_STATUS = { Error = true, Failed = true, Failure = true, Rejected = true, Invalid = true }

-- A boolean option: true or false only, its default when absent.  These
-- are guards (update = false keeps existing contacts as they are), so a
-- value that merely reads as false ("false", 0) must not turn them off.
local function flag(opts, name, default)
  local v = opts[name]
  if v == nil then return default end
  if type(v) ~= "boolean" then
    error("dialoginsight: option '" .. name .. "' must be true or false (got "
      .. errors.describe(v) .. ")", 0)
  end
  return v
end

--- MergeOptions of opts: insert / update (default true), skip_duplicates,
-- skip_unmatched, return_records (default false).  Raises on a value that
-- is not a boolean.
function M.options(opts)
  opts = opts or {}
  return {
    AllowInsert = flag(opts, "insert", true),
    AllowUpdate = flag(opts, "update", true),
    SkipDuplicateRecords = flag(opts, "skip_duplicates", false),
    SkipUnmatchedRecords = flag(opts, "skip_unmatched", false),
    ReturnRecordsOnSuccess = flag(opts, "return_records", false),
    ReturnRecordsOnError = false,
  }
end

--- The outcome of a Records[i] the server accepted (created, updated,
-- skipped, or "accepted" for a status this library does not know), or nil
-- when outcome() would say rejected.  It builds no table: a sync asks it
-- first for each of its rows.
function M.accepted(rec)
  local vr = rec.ValidationResult
  if vr ~= nil and vr ~= "OK" then return nil end
  local st = M.STATUS[rec.Status]
  if st then return st end
  if M.ERROR_STATUS[rec.Status] then return nil end
  -- an unknown status with ValidationResult OK (or none) and an id: taken
  if vr == "OK" or (rec.IdRecord ~= nil and rec.IdRecord ~= 0) then return "accepted" end
  return nil
end

--- The outcome of one Records[i] of a Merge reply:
-- { outcome = created|updated|skipped|accepted|rejected, status = (the
-- server's Status, as sent), id =, reason =, code =, field = }.
-- friendly(wire) names a field the server's message quotes; from_wire maps
-- a returned Record.
function M.outcome(rec, friendly, from_wire)
  local o = { id = (rec.IdRecord ~= nil and rec.IdRecord ~= 0) and rec.IdRecord or nil,
              status = rec.Status }
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

--- The outcome of a record refused before sending, from its problems.
function M.rejected(problems)
  local msgs = {}
  for _, p in ipairs(problems) do msgs[#msgs + 1] = "field '" .. p.field .. "' " .. p.message end
  return { outcome = "rejected", reason = table.concat(msgs, "; "), code = "Validation",
           field = problems[1].field, problems = problems }
end

--- Reads the result of one Merge call of n records (the response, or the
-- error object of a call that failed) record by record: calls
-- visit(k, outcome, rec, err) for k = 1..n, where outcome is "created",
-- "updated", "skipped" or "accepted" (rec: the reply's Records[k]), "rejected" (rec:
-- as outcome() reads it), or "failed" (err: why no outcome is known).
-- Builds no table per record: a sync reads its rows through it.
function M.settle(res, n, service, visit)
  if errors.is_error(res) then
    for k = 1, n do visit(k, "failed", nil, res) end
    return
  end
  local recs = type(res.Records) == "table" and res.Records or {}
  for k = 1, n do
    local rec = recs[k]
    if type(rec) ~= "table" then
      visit(k, "failed", nil, errors.new { kind = "decode", service = service, method = "Merge",
        message = "the Merge reply has no outcome for record " .. k })
    else
      visit(k, M.accepted(rec) or "rejected", rec)
    end
  end
end

return M
