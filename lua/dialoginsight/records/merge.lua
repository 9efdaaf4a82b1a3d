--- Merge for contacts, relational tables and the sync: MergeOptions, and each record's outcome.
-- Pure: resources/base.lua and cli/sync make the calls.
local errors = require "dialoginsight.errors"
local options = require "dialoginsight.options"
local reply = require "dialoginsight.call.reply"

local M = {}

M.BATCH_SIZE = 100 -- records per Merge call [assumed], as docs/wire.md's default

-- only "Updated" was seen on the wire; the others are [assumed] (docs/wire.md)
M.STATUS = { created = "created", updated = "updated", skipped = "skipped" }

-- [assumed]: a server that reports a refusal in Status alone, whatever ValidationResult says
M.ERROR_STATUS = { error = true, failed = true, failure = true, rejected = true, invalid = true }

-- a whole call refused for what it holds: its records are sent again in parts (M.split)
-- until the refusal is a single record's
M.REFUSED = { api = true, validation = true }

--- The options of a Merge.  They are guards (update = false keeps contacts as they are):
-- a value that merely reads as false ("false", 0) is refused, not taken for true.
M.OPTIONS = {
  -- the key field or column: a name (records/record.lua checks it is one of the project's)
  key = function(v) if type(v) ~= "string" then return "must be a field or column name" end end,
  insert = options.boolean, update = options.boolean, skip_duplicates = options.boolean,
  skip_unmatched = options.boolean, return_records = options.boolean,
}

local function flag(v, default)
  if v == nil then return default end
  return v
end

--- MergeOptions of opts (checked against M.OPTIONS).
function M.options(opts)
  opts = opts or {}
  return {
    AllowInsert = flag(opts.insert, true),
    AllowUpdate = flag(opts.update, true),
    SkipDuplicateRecords = flag(opts.skip_duplicates, false),
    SkipUnmatchedRecords = flag(opts.skip_unmatched, false),
    ReturnRecordsOnSuccess = flag(opts.return_records, false),
    ReturnRecordsOnError = false,
  }
end

M.member = reply.member

-- in any case, as the service reads names; two spellings of one member that differ say
-- nothing (false): neither can be taken as the server's word
local function said(rec)
  local vr, st, bad
  for k, v in pairs(rec) do
    local l = type(k) == "string" and #k <= 16 and k:lower()
    if l == "validationresult" then
      bad = bad or (vr ~= nil and vr ~= v)
      vr = v
    elseif l == "status" then
      bad = bad or (st ~= nil and st ~= v)
      st = v
    end
  end
  if bad then return false end
  return vr, st
end

--- What the server said of a Merge reply's record: created, updated, skipped, accepted (OK, a
-- status unknown here) or rejected; nil when it says neither: unknown, never read as rejected.
-- Builds no table: a sync asks it for each of its rows.
function M.verdict(rec)
  if type(rec) ~= "table" then return nil end
  local vr, st = said(rec)
  if vr == false or (vr ~= nil and type(vr) ~= "string") or (st ~= nil and type(st) ~= "string") then
    return nil
  end
  local ok = vr ~= nil and vr:upper() == "OK"
  if vr ~= nil and not ok then return "rejected" end
  if st ~= nil then
    local l = st:lower()
    if M.ERROR_STATUS[l] then return "rejected" end
    if M.STATUS[l] then return M.STATUS[l] end
  end
  return ok and "accepted" or nil
end

--- The error of a record whose outcome the reply leaves unknown (the server may hold it).
function M.unknown(service, why)
  return errors.new { kind = "decode", service = service, method = "Merge", outcome = "unknown",
                      message = why .. ": what became of the record is unknown" }
end

--- { outcome =, status = (as sent), id =, reason =, code =, field =, record =, record_problem =
-- (why a returned Record could not be read) } of a reply's record whose
-- verdict is known; friendly(wire) names a quoted field, from_wire maps a returned Record.
function M.outcome(rec, friendly, from_wire)
  local vr, st = said(rec)
  local id, msg = M.member(rec, "IdRecord"), M.member(rec, "Message")
  local o = { id = (id ~= nil and id ~= 0) and id or nil, status = st,
              outcome = M.verdict(rec) }
  if o.outcome == "rejected" then
    o.reason = msg or vr or tostring(st)
    o.code = vr
    -- the server quotes the field it refuses: "Field 'f_Points' expects ..."
    local quoted = type(msg) == "string" and msg:match("'([%w_]+)'")
    if quoted then o.field = friendly(quoted) end
  else
    o.reason = msg
  end
  local r = M.member(rec, "Record")
  if type(r) == "table" and from_wire then o.record, o.record_problem = from_wire(r) end
  return o
end

--- The outcome of a record refused before sending, from its problems.
function M.rejected(problems)
  local msgs = {}
  for _, p in ipairs(problems) do msgs[#msgs + 1] = "field " .. options.field(p.field) .. " " .. p.message end
  return { outcome = "rejected", reason = table.concat(msgs, "; "), code = "Validation",
           field = problems[1].field, problems = problems }
end

--- Calls visit(k, outcome, rec, err) for each of the n records of one Merge call's result (a reply
-- or an error): outcome is M.verdict's, or "failed" with err when none is known (the call failed,
-- the reply says nothing of k, or its Records are not the call's one for one).  Builds no table.
function M.settle(res, n, service, visit)
  if errors.is_error(res) then
    for k = 1, n do visit(k, "failed", nil, res) end
    return
  end
  local recs = type(res) == "table" and M.member(res, "Records") or nil
  local count = type(recs) == "table" and #recs or nil
  if count ~= n then
    local err = M.unknown(service, "the Merge reply has " .. (count and (count .. " outcomes")
      or "no Records") .. " for the " .. n .. " records sent")
    for k = 1, n do visit(k, "failed", nil, err) end
    return
  end
  for k = 1, n do
    local rec = recs[k]
    local v = M.verdict(rec)
    if v then
      visit(k, v, rec)
    else
      visit(k, "failed", nil, M.unknown(service, "the Merge reply says nothing of record " .. k
        .. " (neither a ValidationResult nor a Status this library knows)"))
    end
  end
end

-- A refusal about the call, not its records (a project setting, a permission), would be split
-- into 2n - 1 calls, each record rejected alone with the same words.  A streak counts single-record
-- refusals in a row that say the same and name no record; at STREAK the caller stops, and what
-- it has not settled is not rejected.
M.STREAK = 10

local Streak = {}
Streak.__index = Streak

function M.streak() return setmetatable({ n = 0 }, Streak) end

function Streak:refused(err)
  if M.named(err) then self:taken(); return false end -- about that record
  local answer = tostring(err.code) .. "\0" .. tostring(err.message)
  if answer == self.said then self.n = self.n + 1 else self.said, self.n = answer, 1 end
  return self.n >= M.STREAK
end

function Streak:taken() self.n, self.said = 0, nil end

--- The error that stops a run or a merge_many when a streak trips.
function M.streak_error(service, err)
  return errors.new { kind = err.kind, code = err.code, service = service, method = "Merge",
    message = ("the service refused %d records in a row, each sent alone, with the same answer (%s): "
      .. "likely about the call or a mapping, not each record; stopped before sending every record "
      .. "alone"):format(M.STREAK, tostring(err.message)) }
end

--- The k of a `Records[k]` a refusal names (from 1, as the sandbox counts), if any.
function M.named(err)
  return tonumber(tostring(err.message):lower():match("records%[(%d+)%]"))
end

--- The n records of a call refused as a whole, in two lists of positions: the one the refusal
-- names and the others, else two halves; nil when n is 1.  So n records cost 2n - 1 calls at most.
function M.split(err, n)
  if n < 2 then return nil end
  local k = M.named(err)
  local a, b = {}, {}
  if k and k >= 1 and k <= n then
    a[1] = k
    for i = 1, n do if i ~= k then b[#b + 1] = i end end
  else
    local h = math.floor(n / 2)
    for i = 1, h do a[i] = i end
    for i = h + 1, n do b[#b + 1] = i end
  end
  return a, b
end

--- A record's identifying value as a key: two records of one key never go in one call, nor in
-- two at once, so that the later one wins.  Spellings the service might take as one contact are one
-- key (erring so only costs a wait), as src/di_rows.c's b:key() says of a CSV field.
function M.key(v)
  if v == nil then return nil end
  if type(v) == "number" and v == math.floor(v) and math.abs(v) < 2 ^ 53 then
    v = string.format("%d", v) -- 5, not 5.0 (Lua 5.4), as read from a CSV
  end
  local s = tostring(v):match("^%s*(.-)%s*$")
  if s == "" then return nil end
  if s:match("^%d+$") then return (s:gsub("^0+(%d)", "%1")) end
  return s:lower()
end

--- The keys of a wire record: its ID members' values and its key field's in Data (a record
-- identified by idContact may set it).
function M.record_keys(rec, key_wire)
  local keys = {}
  for _, v in pairs(type(rec.ID) == "table" and rec.ID or {}) do keys[#keys + 1] = M.key(v) end
  local data = type(rec.Data) == "table" and rec.Data or {}
  if key_wire then keys[#keys + 1] = M.key(data[key_wire]) end
  return keys
end

return M
