-- Compiles a FieldClause / ComboClause tree into a predicate over stored
-- records (arrays with one slot per field; see state.lua).
--
-- [assumed] semantics (see sandbox/README.md):
--   * Text comparisons are case-insensitive (SQL Server's default collation).
--   * A null value matches only IsNull; every other operator is false on null
--     (SQL three-valued logic), so NotEqual does not return nulls.
--   * IsNull also matches the empty string.
local util = require "sbx.util"
local json = require "sbx.json"

local lower, find, sub, type, tostring = string.lower, string.find, string.sub, type, tostring
local norm, lcase, isnull = util.norm, util.lcase, json.isnull

local M = {}

local function str(v)
  if type(v) == "number" then return json.number(v) end
  if type(v) == "boolean" then return v and "1" or "0" end
  return lower(v)
end

-- comparison value converted to the field's type, or nil, reason
local function convert(dtype, v)
  if isnull(v) then return nil, "ComparisonValue is required" end
  if dtype == "Text" then
    if type(v) == "table" then return nil, "ComparisonValue must be a string" end
    return str(v)
  elseif dtype == "Integer" then
    -- the field's own type: 1.5 or 1e300 cannot be compared with an Int32
    local n = util.int(v)
    if not n then return nil, "ComparisonValue must be an integer from -2147483648 to 2147483647" end
    return n
  elseif dtype == "Decimal" then
    local n = util.decimal(v)
    if not n then return nil, "ComparisonValue must be a finite number within +-7.9e28" end
    return n
  elseif dtype == "Date" then
    local d = util.date(v)
    if not d then return nil, "ComparisonValue must be a date (YYYY.MM.DD)" end
    return d
  elseif dtype == "DateTime" then
    local d = util.datetime(v)
    if not d then return nil, "ComparisonValue must be a date-time (YYYY.MM.DD HH:MM:SS)" end
    return d
  elseif dtype == "Boolean" then
    local b = util.bool(v)
    if b == nil then return nil, "ComparisonValue must be a boolean" end
    return b
  end
  return nil, "unsupported field type"
end

local OPS = {
  equal = true, notequal = true, greaterthan = true, lessthan = true,
  contains = true, startswith = true, isnull = true, isnotnull = true,
}
M.OPERATORS = { "Equal", "NotEqual", "GreaterThan", "LessThan", "Contains", "StartsWith", "IsNull", "IsNotNull" }

local function field_clause(c, ckeys)
  local f = c.field
  local name
  if type(f) == "string" then name = f
  elseif type(f) == "table" then
    local nf = norm(f)
    name = nf and nf.name
  end
  if type(name) ~= "string" then return nil, "FieldClause.Field.Name is required" end
  local meta = ckeys[lcase(name)]
  if not meta then return nil, "unknown field '" .. name .. "'" end
  local op = c.typeoperator
  if type(op) ~= "string" or not OPS[lcase(op)] then
    return nil, "unknown TypeOperator '" .. tostring(op) .. "'"
  end
  op = lcase(op)
  local slot, dtype = meta.slot, meta.dtype
  if op == "isnull" then
    return function(r) local v = r[slot]; return v == nil or v == "" end, nil, meta
  elseif op == "isnotnull" then
    return function(r) local v = r[slot]; return v ~= nil and v ~= "" end, nil, meta
  end
  local cv, err = convert(dtype, c.comparisonvalue)
  if cv == nil then return nil, err end
  local pred
  if op == "contains" or op == "startswith" then
    local needle = str(type(cv) == "string" and cv or (type(cv) == "number" and json.number(cv)) or tostring(cv))
    if op == "contains" then
      pred = function(r) local v = r[slot]; return v ~= nil and find(str(v), needle, 1, true) ~= nil end
    else
      local n = #needle
      pred = function(r) local v = r[slot]; return v ~= nil and sub(str(v), 1, n) == needle end
    end
  elseif dtype == "Text" then
    if op == "equal" then pred = function(r) local v = r[slot]; return v ~= nil and lower(v) == cv end
    elseif op == "notequal" then pred = function(r) local v = r[slot]; return v ~= nil and lower(v) ~= cv end
    elseif op == "greaterthan" then pred = function(r) local v = r[slot]; return v ~= nil and lower(v) > cv end
    else pred = function(r) local v = r[slot]; return v ~= nil and lower(v) < cv end end
  elseif dtype == "Boolean" then
    if op == "equal" then pred = function(r) local v = r[slot]; return v ~= nil and v == cv end
    elseif op == "notequal" then pred = function(r) local v = r[slot]; return v ~= nil and v ~= cv end
    else return nil, "GreaterThan/LessThan do not apply to a Boolean field" end
  else
    if op == "equal" then pred = function(r) local v = r[slot]; return v ~= nil and v == cv end
    elseif op == "notequal" then pred = function(r) local v = r[slot]; return v ~= nil and v ~= cv end
    elseif op == "greaterthan" then pred = function(r) local v = r[slot]; return v ~= nil and v > cv end
    else pred = function(r) local v = r[slot]; return v ~= nil and v < cv end end
  end
  local hint
  if op == "equal" then hint = { meta = meta, value = cv } end
  return pred, nil, meta, hint
end

local compile

compile = function(clause, ckeys, depth)
  if depth > 32 then return nil, "clause nested too deeply" end
  local c = norm(clause)
  if not c then return nil, "Clause must be an object" end
  local ty = c["$type"]
  ty = type(ty) == "string" and lcase(ty) or (c.clauses ~= nil and "comboclause") or "fieldclause"
  if ty == "fieldclause" then
    return field_clause(c, ckeys)
  elseif ty == "comboclause" then
    local op = type(c.operator) == "string" and lcase(c.operator) or nil
    if op ~= "and" and op ~= "or" then
      return nil, "ComboClause.Operator must be And or Or"
    end
    local list = c.clauses
    if type(list) ~= "table" or isnull(list) then return nil, "ComboClause.Clauses must be an array" end
    local preds, n = {}, 0
    for i = 1, #list do
      local p, err = compile(list[i], ckeys, depth + 1)
      if not p then return nil, err end
      n = n + 1; preds[n] = p
    end
    if op == "and" then
      return function(r)
        for i = 1, n do if not preds[i](r) then return false end end
        return true
      end
    else
      return function(r)
        for i = 1, n do if preds[i](r) then return true end end
        return false
      end
    end
  end
  return nil, "unknown clause $type '" .. tostring(c["$type"]) .. "'"
end

-- compile(clause, ckeys) -> pred, nil, meta, hint | nil, errmsg
-- hint = {meta=, value=} for a top-level Equal (used for O(1) index lookups).
function M.compile(clause, ckeys)
  return compile(clause, ckeys, 0)
end

return M
