-- contacts.ashx: Merge / Get / Delete, plus the record helpers that segments,
-- sendings and relational tables share (flat records, clause selection,
-- paging, the generic Merge loop).
local json = require "sbx.json"
local util = require "sbx.util"
local clause = require "sbx.clause"
local state = require "sbx.state"
local config = require "sbx.config"
local webhooks = require "sbx.webhooks"

local obj, NULL, isnull = json.obj, json.null, json.isnull
local norm, lcase, coerce, int = util.norm, util.lcase, util.coerce, util.int
local lower, find, type, pairs, tostring = string.lower, string.find, type, pairs, tostring
local min = math.min

local M = {}

M.MAX_ROWS = 10000       -- [assumed] largest page a Get returns
M.MAX_MERGE = 10000      -- [assumed] most records one Merge call accepts

-- flat(layout, r) -> ordered object { idContact, f_..., optin_... }
local function flat(layout, r)
  local o, n = {}, 0
  for i = 1, #layout do
    local m = layout[i]
    local v = r[m.slot]
    o[n + 1] = m.wire
    if v == nil then v = NULL end
    o[n + 2] = v
    n = n + 2
  end
  return obj(o)
end
M.flat = flat

-- paging(req) -> start (0-based), max | nil, err.  The values are checked
-- whatever the mode; then config.paging says what the server does with
-- them: "honoured" (the sandbox's choice [assumed]), "ignored" (every
-- match, each time) or "fixed" (StartRow honoured, config.page_size rows
-- whatever MaxRows says).
function M.paging(req)
  local start, max = 0, M.MAX_ROWS
  if not isnull(req.startrow) then
    start = int(req.startrow)
    if not start or start < 0 then return nil, "StartRow must be a non-negative integer (0-based)" end
  end
  if not isnull(req.maxrows) then
    max = int(req.maxrows)
    if not max or max < 0 then return nil, "MaxRows must be a non-negative integer" end
    if max == 0 or max > M.MAX_ROWS then max = M.MAX_ROWS end
  end
  if config.paging == "ignored" then return 0, math.huge end
  if config.paging == "fixed" then return start, config.page_size end
  return start, max
end

-- The members of a paged reply: Records, and TotalRecords unless
-- config.total_records is off ("page": the count of this reply, a lie).
function M.paged(recs, total)
  if not config.total_records then return { "Records", recs } end
  if config.total_records == "page" then total = #recs end
  return { "Records", recs, "TotalRecords", total }
end

-- select_contacts(P, pred, hint, fn): calls fn(c) for every matching contact in
-- idContact order; an Equal on the key field or idContact uses the indexes.
function M.each_match(P, pred, hint, fn)
  if hint then
    local meta = hint.meta
    local c
    if meta.slot == 1 then c = P.byId[hint.value]
    elseif meta.slot == P.emailSlot and type(hint.value) == "string" then c = P.byEmail[hint.value] end
    if meta.slot == 1 or meta.slot == P.emailSlot then
      if c and pred(c) then fn(c) end
      return
    end
  end
  local byId = P.byId
  for id = 1, P.maxId do
    local c = byId[id]
    if c and pred(c) and fn(c) == false then return end
  end
end

-- the contact ids selected by a clause, in order
function M.select(P, cl)
  local pred, err, _, hint = clause.compile(cl, P.ckeys)
  if not pred then return nil, err end
  local list, n = {}, 0
  M.each_match(P, pred, hint, function(c) n = n + 1; list[n] = c end)
  return list
end

-- page(P, list_or_iter, start, max): records of a page + total
function M.page_of(layout, list, start, max)
  local recs = {}
  local total = #list
  for i = start + 1, min(total, start + max) do
    recs[#recs + 1] = flat(layout, list[i])
  end
  return recs, total
end

-- The matches in another order than idContact's (config.contacts_order):
-- by e-mail, or by idContact descending (newest first).
local function reordered(P, pred, hint)
  local list, n, eslot = {}, 0, P.emailSlot
  M.each_match(P, pred, hint, function(c) n = n + 1; list[n] = c end)
  if config.contacts_order == "email" then
    table.sort(list, function(a, b) return lower(a[eslot] or "") < lower(b[eslot] or "") end)
  else
    for i = 1, math.floor(n / 2) do list[i], list[n + 1 - i] = list[n + 1 - i], list[i] end
  end
  return list
end

local function everyone() return true end

function M.get(ctx, req, P)
  if isnull(req.clause) then return nil, "InvalidParameter", "Clause is required" end
  local start, max = M.paging(req)
  if not start then return nil, "InvalidParameter", max end
  local pred, err, _, hint = clause.compile(req.clause, P.ckeys)
  if not pred then return nil, "InvalidParameter", "Clause: " .. err end
  -- (checked all the same: a bad clause is still refused)
  if config.clause == "ignored" then pred, hint = everyone, nil end
  local recs, total, layout = {}, 0, P.layout
  if config.contacts_order ~= "idContact" then
    recs, total = M.page_of(layout, reordered(P, pred, hint), start, max)
  else
    local last = start + max
    M.each_match(P, pred, hint, function(c)
      total = total + 1
      if total > start and total <= last then recs[#recs + 1] = flat(layout, c) end
    end)
  end
  return M.paged(recs, total)
end

function M.delete(ctx, req, P)
  if isnull(req.clause) then return nil, "InvalidParameter", "Clause is required" end
  local max = math.huge
  if not isnull(req.maxrows) then
    max = int(req.maxrows)
    if not max or max < 0 then return nil, "InvalidParameter", "MaxRows must be a non-negative integer" end
    if max == 0 then max = math.huge end
  end
  local pred, err, _, hint = clause.compile(req.clause, P.ckeys)
  if not pred then return nil, "InvalidParameter", "Clause: " .. err end
  local victims, n = {}, 0
  M.each_match(P, pred, hint, function(c)
    if n >= max then return false end
    n = n + 1; victims[n] = c
  end)
  for i = 1, n do state.remove_contact(P, victims[i]) end
  return { "DeletedRecords", n }
end

-- Merge ---------------------------------------------------------------------

local function bopt(o, name, default)
  local v = o and o[name]
  if isnull(v) then return default end
  local b = util.bool(v)
  if b == nil then return default end
  return b
end

function M.merge_options(req)
  local o = norm(req.mergeoptions)
  return {
    allowInsert = bopt(o, "allowinsert", true),
    allowUpdate = bopt(o, "allowupdate", true),
    skipDup = bopt(o, "skipduplicaterecords", false),
    skipUnmatched = bopt(o, "skipunmatchedrecords", false),
    retOk = bopt(o, "returnrecordsonsuccess", false),
    retErr = bopt(o, "returnrecordsonerror", false),
  }
end

-- A record's outcome; Status as config.merge_statuses names it (the
-- sandbox's Created/Updated/Skipped, or another service's names).
local function entry(idrec, status, vr, msg, rec, opts, ok, stored, layout)
  return obj { "IdRecord", idrec or 0, "Status", config.status(status), "ValidationResult", vr,
    "Message", msg or NULL,
    "ID", (type(rec) == "table" and rec.__id) or NULL,
    "Data", (not ok and opts.retErr and type(rec) == "table" and rec.__data) or NULL,
    "Record", (ok and opts.retOk and stored and flat(layout, stored)) or NULL }
end
M.entry = entry

-- validate Data against a key map -> changes {slot, value, ...} | nil, code, msg
function M.validate_data(data, dkeys, changes)
  local n = 0
  if isnull(data) then return changes, 0 end
  if type(data) ~= "table" then return nil, "InvalidType", "Data must be an object" end
  for k, v in pairs(data) do
    local meta = type(k) == "string" and dkeys[lcase(k)]
    if not meta then
      return nil, "UnknownField", "Unknown field '" .. tostring(k) .. "'"
    end
    local val, code, why = coerce(meta.dtype, v)
    if val == nil then return nil, code, "Field '" .. k .. "' " .. why end
    changes[n + 1] = meta
    changes[n + 2] = val
    n = n + 2
  end
  return changes, n
end

local EMAIL_PAT = "^[^@%s]+@[^@%s]+$"

local function merge_one(P, rec, opts, seen, now)
  local layout = P.layout
  if type(rec) ~= "table" or isnull(rec) then
    return entry(0, "Error", "MissingKey", "Record must be an object with ID and Data", nil, opts, false)
  end
  local r = norm(rec)
  rec = { __id = r.id, __data = r.data }
  local id = norm(r.id)
  if not id then return entry(0, "Error", "MissingKey", "Record has no ID", rec, opts, false) end
  local c, dupkey, email
  local eslot = P.emailSlot
  if not isnull(id.idcontact) then
    local n = int(id.idcontact)
    if not n then return entry(0, "Error", "InvalidType", "ID idContact must be an integer", rec, opts, false) end
    c = P.byId[n]
    dupkey = n
    if not c then
      if opts.skipUnmatched then
        return entry(0, "Skipped", "OK", "No contact with idContact " .. n .. " (SkipUnmatchedRecords)", rec, opts, true)
      end
      return entry(0, "Error", "NotFound", "No contact with idContact " .. n, rec, opts, false)
    end
  else
    local kname = "key_" .. lower(P.keyField.wire)
    local e = id[kname]
    if isnull(e) then
      local other = next(id)
      if other then
        return entry(0, "Error", "UnknownField", "ID '" .. tostring(other) .. "' is not a key field (use " ..
          "key_" .. P.keyField.wire .. " or idContact)", rec, opts, false)
      end
      return entry(0, "Error", "MissingKey", "ID needs key_" .. P.keyField.wire .. " or idContact", rec, opts, false)
    end
    if type(e) ~= "string" or not find(e, EMAIL_PAT) then
      return entry(0, "Error", "InvalidType", "ID key_" .. P.keyField.wire .. " must be an e-mail address", rec, opts, false)
    end
    if util.ulen(e) > util.MAXTEXT then
      return entry(0, "Error", "TooLong", "ID key_" .. P.keyField.wire .. " is longer than 100 characters", rec, opts, false)
    end
    email = e
    dupkey = lower(e)
    c = P.byEmail[dupkey]
  end
  -- validate the data before touching anything (a record is atomic)
  local changes, n, msg = M.validate_data(r.data, P.dkeys, {})
  if not changes then return entry(c and c[1] or 0, "Error", n, msg, rec, opts, false) end
  local newEmail
  for i = 1, n, 2 do
    if changes[i].slot == eslot then
      local v = changes[i + 1]
      if v == NULL or v == "" then
        return entry(c and c[1] or 0, "Error", "Required", "Field '" .. P.keyField.wire .. "' is required", rec, opts, false)
      end
      if not find(v, EMAIL_PAT) then
        return entry(c and c[1] or 0, "Error", "InvalidType", "Field '" .. P.keyField.wire .. "' must be an e-mail address", rec, opts, false)
      end
      newEmail = v
    end
  end
  if newEmail then
    local other = P.byEmail[lower(newEmail)]
    if other and other ~= c then
      return entry(c and c[1] or 0, "Error", "DuplicateKey", "Another contact already has " .. P.keyField.wire .. " '" .. newEmail .. "'", rec, opts, false)
    end
  end
  if seen[dupkey] and opts.skipDup then
    return entry(c and c[1] or 0, "Skipped", "OK", "Duplicate record in this call (SkipDuplicateRecords)", rec, opts, true, c, layout)
  end
  seen[dupkey] = true
  local status
  if c then
    if not opts.allowUpdate then
      return entry(c[1], "Skipped", "OK", "Contact exists and AllowUpdate is false", rec, opts, true, c, layout)
    end
    status = "Updated"
  else
    if opts.skipUnmatched then
      return entry(0, "Skipped", "OK", "No matching contact (SkipUnmatchedRecords)", rec, opts, true)
    end
    if not opts.allowInsert then
      return entry(0, "Error", "NotFound", "No matching contact and AllowInsert is false", rec, opts, false)
    end
    c = state.new_contact(P, P.nextId)
    c[eslot] = email
    status = "Created"
  end
  -- apply
  local oldEmail = c[eslot]
  local hooked, ins, outs = webhooks.hook ~= nil, nil, nil
  for i = 1, n, 2 do
    local meta, v = changes[i], changes[i + 1]
    if v == NULL then v = nil end
    if hooked and meta.kind == "optin" then
      -- the webhook's contact_optin / contact_optout: a change, not a repeat
      if v == true and c[meta.slot] ~= true then ins = true end
      if v == false and c[meta.slot] == true then outs = true end
    end
    c[meta.slot] = v
    if meta.kind == "optin" and v == true then
      -- stamp the opt-in date unless the caller sent one
      local given = false
      for j = 1, n, 2 do if changes[j].slot == meta.dtslot then given = true end end
      if not given and not c[meta.dtslot] then c[meta.dtslot] = now end
    end
  end
  if status == "Created" then
    state.add_contact(P, c)
  elseif newEmail and oldEmail and lower(oldEmail) ~= lower(newEmail) then
    P.byEmail[lower(oldEmail)] = nil
    P.byEmail[lower(newEmail)] = c
  end
  if hooked then webhooks.contact(P, c, status, ins, outs) end
  return entry(c[1], status, "OK", nil, rec, opts, true, c, layout), status
end

local now_t, now_s = 0, nil
function M.merge(ctx, req, P)
  local records = req.records
  if type(records) ~= "table" or isnull(records) or (next(records) ~= nil and records[1] == nil) then
    return nil, "InvalidParameter", "Records must be an array"
  end
  if #records > M.MAX_MERGE then
    return nil, "InvalidParameter", "Too many records in one call (max " .. M.MAX_MERGE .. ")"
  end
  local opts = M.merge_options(req)
  local out, created, updated, seen = {}, 0, 0, {}
  local t = ngx.time()
  if t ~= now_t then now_t, now_s = t, util.from_epoch(t) end
  local now = now_s
  for i = 1, #records do
    local e, st = merge_one(P, records[i], opts, seen, now)
    out[i] = e
    if st == "Created" then created = created + 1 elseif st == "Updated" then updated = updated + 1 end
  end
  return { "CreatedRecords", created, "UpdatedRecords", updated, "Records", out }
end

return M
