-- relationaltables.ashx: Merge / Get / Delete, scoped by idTable.
-- Rows are arrays with one slot per column (see state.lua); the key column
-- indexes T.rows.
local json = require "sbx.json"
local util = require "sbx.util"
local clause = require "sbx.clause"
local contacts = require "sbx.contacts"
local state = require "sbx.state"
local config = require "sbx.config"

local obj, NULL, isnull = json.obj, json.null, json.isnull
local norm, lcase, int = util.norm, util.lcase, util.int
local type, pairs, tostring, sort = type, pairs, tostring, table.sort

local M = {}

local function sorted_rows(T)
  local keys = {}
  for k in pairs(T.rows) do keys[#keys + 1] = k end
  sort(keys)
  local list = {}
  for i, k in ipairs(keys) do list[i] = T.rows[k] end
  return list
end
M.sorted_rows = sorted_rows

local function entry(idrec, status, vr, msg, r, opts, ok, stored, T)
  return obj { "IdRecord", idrec or 0, "Status", config.status(status), "ValidationResult", vr, "Message", msg or NULL,
    "ID", (r and r.id) or NULL, "Data", (not ok and opts.retErr and r and r.data) or NULL,
    "Record", (ok and opts.retOk and stored and contacts.flat(T.layout, stored)) or NULL }
end

local function merge_one(T, P, rec, opts, seen)
  local r = norm(rec)
  if not r then return entry(0, "Error", "MissingKey", "Record must be an object with ID and Data", nil, opts, false) end
  local id = norm(r.id)
  local kc = T.keyCol
  local kname = "key_" .. lcase(kc.code)
  if not id or isnull(id[kname]) then
    return entry(0, "Error", "MissingKey", "ID needs key_" .. kc.code, r, opts, false)
  end
  local key, code, why = util.coerce(kc.dtype, id[kname])
  if key == nil or key == NULL then
    return entry(0, "Error", code or "MissingKey", "ID key_" .. kc.code .. " " .. (why or "is required"), r, opts, false)
  end
  local data = r.data
  local changes = {}
  if not isnull(data) then
    if type(data) ~= "table" then return entry(key, "Error", "InvalidType", "Data must be an object", r, opts, false) end
    for k, v in pairs(data) do
      local meta = type(k) == "string" and T.ckeys[lcase(k)]
      if not meta then return entry(key, "Error", "UnknownField", "Unknown column '" .. tostring(k) .. "'", r, opts, false) end
      local val, c2, w2 = util.coerce(meta.dtype, v)
      if val == nil then return entry(key, "Error", c2, "Column '" .. k .. "' " .. w2, r, opts, false) end
      if meta.key and val ~= key then
        return entry(key, "Error", "InvalidType", "Column '" .. k .. "' must equal the ID key", r, opts, false)
      end
      if lcase(meta.code) == "idcontact" and val ~= NULL and not P.byId[val] then
        return entry(key, "Error", "InvalidReference", "Column '" .. k .. "': no contact " .. json.number(val), r, opts, false)
      end
      changes[#changes + 1] = { meta.slot, val }
    end
  end
  local row = T.rows[key]
  if seen[key] and opts.skipDup then
    return entry(key, "Skipped", "OK", "Duplicate record in this call (SkipDuplicateRecords)", r, opts, true, row, T)
  end
  seen[key] = true
  local status
  if row then
    if not opts.allowUpdate then return entry(key, "Skipped", "OK", "Row exists and AllowUpdate is false", r, opts, true, row, T) end
    status = "Updated"
  else
    if opts.skipUnmatched then return entry(0, "Skipped", "OK", "No matching row (SkipUnmatchedRecords)", r, opts, true) end
    if not opts.allowInsert then return entry(0, "Error", "NotFound", "No matching row and AllowInsert is false", r, opts, false) end
    row = {}
    row[kc.slot] = key
    status = "Created"
  end
  -- a table that feeds an automated campaign (the abandoned cart) sees
  -- the row's Status before and after
  local old = T.automation and row[T.ckeys.status.slot]
  for _, ch in ipairs(changes) do
    local v = ch[2]
    if v == NULL then v = nil end
    row[ch[1]] = v
  end
  if status == "Created" then state.add_row(T, row) end
  if T.automation then require("sbx.mail").cart_merged(T, row, old) end
  return entry(key, status, "OK", nil, r, opts, true, row, T), status
end

function M.merge(ctx, req, T)
  local records = req.records
  if type(records) ~= "table" or isnull(records) or (next(records) ~= nil and records[1] == nil) then
    return nil, "InvalidParameter", "Records must be an array"
  end
  if #records > contacts.MAX_MERGE then
    return nil, "InvalidParameter", "Too many records in one call (max " .. contacts.MAX_MERGE .. ")"
  end
  local P = state.S.projects[T.idProject]
  local opts = contacts.merge_options(req)
  local out, created, updated, seen = {}, 0, 0, {}
  for i = 1, #records do
    local e, st = merge_one(T, P, records[i], opts, seen)
    out[i] = e
    if st == "Created" then created = created + 1 elseif st == "Updated" then updated = updated + 1 end
  end
  return { "CreatedRecords", created, "UpdatedRecords", updated, "Records", out }
end

local function matching(T, req)
  if isnull(req.clause) then return nil, "Clause is required" end
  local pred, err = clause.compile(req.clause, T.ckeys)
  if not pred then return nil, "Clause: " .. err end
  local list = {}
  for _, row in ipairs(sorted_rows(T)) do
    if pred(row) then list[#list + 1] = row end
  end
  return list
end

function M.get(ctx, req, T)
  local list, err = matching(T, req)
  if not list then return nil, "InvalidParameter", err end
  local start, max = contacts.paging(req)
  if not start then return nil, "InvalidParameter", max end
  return contacts.paged(contacts.page_of(T.layout, list, start, max))
end

function M.delete(ctx, req, T)
  local list, err = matching(T, req)
  if not list then return nil, "InvalidParameter", err end
  local max = #list
  if not isnull(req.maxrows) then
    local m = int(req.maxrows)
    if not m or m < 0 then return nil, "InvalidParameter", "MaxRows must be a non-negative integer" end
    if m > 0 and m < max then max = m end
  end
  local kslot = T.keyCol.slot
  for i = 1, max do
    T.rows[list[i][kslot]] = nil
    T.count = T.count - 1
  end
  return { "DeletedRecords", max }
end

return M
