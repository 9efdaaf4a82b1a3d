--- Merge, shared by contacts, relational tables and the sync: MergeOptions
-- from user options, and the outcome of each record of a reply.  Pure: the
-- calls are made by resources/base.lua and cli/sync.
local errors = require "dialoginsight.errors"
local options = require "dialoginsight.options"
local reply = require "dialoginsight.call.reply"

local M = {}

M.BATCH_SIZE = 100 -- records per Merge call [assumed], as docs/wire.md's default

-- Status -> outcome, by the lower-cased status.  Only "Updated" was ever
-- seen on the wire; the others are [assumed] (docs/wire.md).
M.STATUS = { created = "created", updated = "updated", skipped = "skipped" }

-- Statuses that say the record was refused whatever ValidationResult says
-- [assumed]: a server that reports a refusal in Status alone.
M.ERROR_STATUS = { error = true, failed = true, failure = true, rejected = true, invalid = true }

-- Kinds of failure of a whole Merge call that are a refusal of what it
-- holds: the server's (api: Success false) or the encoder's (validation).
-- Its records are sent again in parts (M.split) until the refusal is a
-- single record's.
M.REFUSED = { api = true, validation = true }

--- The options of a Merge (resources and the sync check them with
-- options.check first).  They are guards (update = false keeps existing
-- contacts as they are), so a value that merely reads as false ("false", 0)
-- is refused, not taken for true.
M.OPTIONS = {
  key = true, -- the key field or column (records/record.lua checks it)
  insert = options.boolean, update = options.boolean, skip_duplicates = options.boolean,
  skip_unmatched = options.boolean, return_records = options.boolean,
}

local function flag(v, default)
  if v == nil then return default end
  return v
end

--- MergeOptions of opts (checked against M.OPTIONS): insert / update
-- (default true), skip_duplicates, skip_unmatched, return_records (default
-- false).
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

--- A member of a reply object, in any case (call/reply.lua).
M.member = reply.member

-- ValidationResult and Status of a reply's record, each in any case, as
-- the service reads names (`validationResult` beside `Status` is read);
-- two spellings of one member that differ make the record say nothing
-- (false): neither can be taken as the server's word.
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

--- What the server said of Records[i] of a Merge reply: "created",
-- "updated", "skipped", "accepted" (ValidationResult OK with a status this
-- library does not know) or "rejected" (a ValidationResult other than OK,
-- or a refusal status); nil when it says neither (no ValidationResult and
-- no status it knows, or values that are not text): the outcome is
-- unknown, and the record is never read as rejected.  Builds no table: a
-- sync asks it for each of its rows.
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

--- The error of a record whose outcome the reply leaves unknown (kind
-- decode, outcome "unknown": the server may hold it).
function M.unknown(service, why)
  return errors.new { kind = "decode", service = service, method = "Merge", outcome = "unknown",
                      message = why .. ": what became of the record is unknown" }
end

--- The outcome of one Records[i] of a Merge reply, M.verdict(rec) known:
-- { outcome = created|updated|skipped|accepted|rejected, status = (the
-- server's Status, as sent), id =, reason =, code =, field = }.
-- friendly(wire) names a field the server's message quotes; from_wire maps
-- a returned Record.
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
  if type(r) == "table" and from_wire then o.record = from_wire(r) end
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
-- visit(k, outcome, rec, err) for k = 1..n, where outcome is M.verdict's
-- (rec: the reply's Records[k]), or "failed" (err: why no outcome is
-- known: the call failed, or the reply says nothing of record k, or its
-- Records do not match the call's, one for one).  Builds no table per
-- record: a sync reads its rows through it.
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

--- A guard against a refusal that is about the call, not its records (a
-- project setting, a permission): splitting would send every chunk of n
-- records as 2n - 1 calls, and reject each record alone with the same
-- words.  A streak counts the single-record refusals in a row that say the
-- same (code and message) and name no record; a record taken, or a
-- refusal that names its record, resets it.  streak:refused(err)
-- is true once STREAK of them came in a row: the caller stops, and what
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

--- The record (k of `Records[k]`, counted from 1 as the sandbox does) a
-- refusal names in its message, if any.
function M.named(err)
  return tonumber(tostring(err.message):lower():match("records%[(%d+)%]"))
end

--- How to send again the n records of a Merge call refused as a whole
-- (err, M.REFUSED): two lists of their positions, the record the refusal
-- names alone and the others, or else the two halves; nil when n is 1
-- (the refusal is then the record's).  Each split parts a call in two, so
-- a call of n records costs at most 2n - 1 calls in all, whatever the
-- replies.
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

--- A value that identifies a record (the key field's, idContact, an ID
-- member), as a key for telling records apart: two records of one key never
-- go in one call, nor in two calls at once (base.merge_many, cli/sync), so
-- that the later one wins.  Without the spaces around it, lower-cased, a
-- number without leading zeros; nil when empty.  Two spellings the service
-- might take as one contact are one key here (erring that way only costs a
-- wait).  src/di_rows.c's b:key() says the same of a CSV field.
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

--- The keys of a wire record ({ ID = {...}, Data = {...} }): its ID
-- members' values and its key field's value in Data (a record identified
-- by idContact may set it).  A list, maybe empty.
function M.record_keys(rec, key_wire)
  local keys = {}
  for _, v in pairs(type(rec.ID) == "table" and rec.ID or {}) do keys[#keys + 1] = M.key(v) end
  local data = type(rec.Data) == "table" and rec.Data or {}
  if key_wire then keys[#keys + 1] = M.key(data[key_wire]) end
  return keys
end

return M
