--- Where-clauses (`di.where`): a small builder over OFC4's FieldClause and ComboClause.
-- Only FieldClause/Equal was seen on the wire; the rest is [assumed] (docs/wire.md).
-- An empty where raises: it would match everything.
-- @module dialoginsight.records.where
-- @usage
-- { EMail = "ann@example.com" }              -- Equal
-- { City = "Montréal", Points = 10 }         -- Equal on each, joined by And
-- di.where.gt("Points", 10)                  -- GreaterThan
-- di.where.any{ di.where.eq("City", "Paris"), di.where.starts_with("EMail", "a") }
local core = require "dialoginsight.core"
local fields = require "dialoginsight.records.fields"

local M = {}

local Node = { __name = "dialoginsight.where" }

-- Raises at the caller of the public constructor (binary's function, is_null), or
-- without a position (level 0) for a where table's key: M.compile adds the caller's.
local function field(op, name, value, level)
  if type(name) ~= "string" or name == "" then
    error("dialoginsight.where: the field name must be a non-empty string", level or 3)
  end
  return setmetatable({ op = op, field = name, value = value }, Node)
end

local function binary(op)
  return function(name, value)
    if value == nil then
      error("dialoginsight.where: " .. op .. " on '" .. tostring(name)
        .. "' needs a value (use is_null for a missing one)", 2)
    end
    return field(op, name, value)
  end
end

--- The field equals value (Equal).  Each builder below takes the same arguments.
-- @function eq
-- @tparam string name the field (friendly: "City", or wire: "f_City")
-- @param value the value, as the field's type takes it
-- @return a clause
M.eq = binary("Equal")
--- The field differs from value (NotEqual).
-- @function ne
M.ne = binary("NotEqual")
--- The field is greater than value (GreaterThan).
-- @function gt
M.gt = binary("GreaterThan")
--- The field is less than value (LessThan).
-- @function lt
M.lt = binary("LessThan")
--- The field contains the text (Contains).
-- @function contains
M.contains = binary("Contains")
--- The field starts with the text (StartsWith).
-- @function starts_with
M.starts_with = binary("StartsWith")
--- The field is empty (IsNull).
function M.is_null(name) return field("IsNull", name) end
--- The field is not empty (IsNotNull).
function M.not_null(name) return field("IsNotNull", name) end

local function combo(operator)
  return function(list)
    if type(list) ~= "table" or list[1] == nil then
      error("dialoginsight.where: " .. operator .. " needs a non-empty list of clauses", 2)
    end
    -- a nil hole ({ a, nil, b }) would drop b: an And matching more than meant, fatal in a delete
    local n, max = 0, 0
    for k in pairs(list) do
      n = n + 1
      if type(k) ~= "number" or k < 1 or k ~= math.floor(k) then max = math.huge; break end
      if k > max then max = k end
    end
    if n ~= max then
      error("dialoginsight.where: " .. operator .. " needs a list of clauses without holes "
        .. "or other keys (a nil in the list?)", 2)
    end
    return setmetatable({ combo = operator, list = list }, Node)
  end
end

--- Every clause must hold (And).
-- @function all
-- @tparam {clause,...} list clauses, or tables of Equals
-- @usage W.all{ W.eq("City", "Paris"), W.not_null("BirthDate") }
M.all = combo("And")
--- At least one clause must hold (Or).
-- @function any
-- @tparam {clause,...} list clauses, or tables of Equals
-- @usage W.any{ W.gt("Points", 100), { City = "Paris" } }
M.any = combo("Or")

--- True for a clause made by this builder.
function M.is_clause(v) return getmetatable(v) == Node end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    if type(k) == "string" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  return keys
end

-- list items are clauses, named members Equals (optin = { X = true }: one on each opt-in)
local function from_table(t)
  local list = {}
  for _, c in ipairs(t) do list[#list + 1] = c end
  for _, k in ipairs(sorted_keys(t)) do
    local v = t[k]
    if k == "optin" and type(v) == "table" and not M.is_clause(v) then
      for _, name in ipairs(sorted_keys(v)) do
        list[#list + 1] = field("Equal", "optin_" .. name, v[name], 0)
      end
    else
      list[#list + 1] = field("Equal", k, v, 0)
    end
  end
  local n = #list
  for k in pairs(t) do
    if type(k) ~= "string" and not (type(k) == "number" and k >= 1 and k <= #t) then
      error("dialoginsight.where: bad key " .. tostring(k) .. " in a where table", 0)
    end
  end
  if n == 0 then
    error("dialoginsight.where: an empty where-clause would match everything; "
      .. "say what to match", 0)
  end
  if n == 1 and M.is_clause(list[1]) then return list[1] end
  return setmetatable({ combo = "And", list = list }, Node)
end

local compile

local function compile_field(node, resolve, problems)
  local wire, value = resolve(node.field, node.op, node.value)
  if wire == nil then
    problems[#problems + 1] = { field = node.field, message = value }
    return nil
  end
  return { ["$type"] = "FieldClause", Field = { Name = wire },
           TypeOperator = node.op, ComparisonValue = value }
end

compile = function(w, resolve, problems, depth)
  if depth > 32 then error("dialoginsight.where: clause nested too deeply", 0) end
  if type(w) ~= "table" then
    error("dialoginsight.where: a where-clause must be a table, got " .. type(w), 0)
  end
  if w["$type"] ~= nil then return w end -- already a wire clause: untouched
  if not M.is_clause(w) then w = from_table(w) end
  if w.op then return compile_field(w, resolve, problems) end
  local clauses = {}
  for i, c in ipairs(w.list) do
    clauses[i] = compile(c, resolve, problems, depth + 1) or false
  end
  return { ["$type"] = "ComboClause", Operator = w.combo, Clauses = core.array(clauses) }
end

--- The wire clause of w, and the list of problems; a malformed where raises.
-- @param w a clause, a table of Equals, or a wire clause (with $type), sent as is
-- @tparam function resolve (name, op, value) -> wire name, wire value | nil, why
-- @treturn table the wire clause
-- @treturn table problems { { field =, message = }, ... }
function M.compile(w, resolve)
  local problems = {}
  local ok, clause = pcall(compile, w, resolve, problems, 0)
  if not ok then error(clause, 3) end
  return clause, problems
end

--- resolve for names used as they are (relational table columns).
function M.bare(name, _, value) return name, value end

--- resolve for contact fields: friendly names to wire names, values to the field's wire form.
-- @tparam ?table idx fields.index of the project's schema, or nil to rename only
-- @treturn function resolve
function M.contact_fields(idx)
  return function(name, op, value)
    local meta, why = fields.resolve(name, idx)
    if not meta then return nil, why end
    if value == nil or op == "Contains" or op == "StartsWith" then
      if value ~= nil and type(value) ~= "string" then value = tostring(value) end
      return meta.wire, value
    end
    local v
    v, why = fields.convert(meta, value)
    if v == nil then return nil, why end
    return meta.wire, v
  end
end

--- The ContactFilter of sendings and campaigns: Single for an idContact, else Clauses.
-- @param contact an idContact, or a where
-- @tparam table clause the wire clause of contact, when a where
function M.contact_filter(contact, clause)
  if type(contact) == "number" then return { Mode = "Single", idContact = contact } end
  return { Mode = "Clauses",
           TableClauses = core.array { { TableCode = "Contact", Clause = clause } } }
end

return M
