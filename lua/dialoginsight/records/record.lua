--- The one record builder: a contact, a relational table row or a CSV row -> the wire
-- { ID =, Data = } of a Merge, and its problems (sorted by field; nil when none).  Each name is
-- resolved once per builder into a step, so that a file of a million rows resolves each column once.
-- A record is identified by idContact, an ID member given as key_<wire name>, or else its key
-- field's (or column's) value, moved from Data to ID as key_<wire name> (key_f_EMail).
local core = require "dialoginsight.core"
local fields = require "dialoginsight.records.fields"
local options = require "dialoginsight.options"

local M = {}

local NULL = core.null

local Builder = {}
Builder.__index = Builder

local MAX_GUESSES = 100 -- unknown names given a "did you mean", per builder

local function new(b)
  b.steps, b.guessed = {}, 0
  return setmetatable(b, Builder)
end

--- The builder of contacts, validated against idx (fields.index of the
-- project's schema), or only renamed when idx is nil.  key names the key
-- field (friendly or wire; default: the field Projects.Get marks isKey, else
-- EMail).  A key that is not a field of the project, or no key at all (a
-- project with neither), raises (without a position: the resource says
-- where).
function M.contacts(idx, key)
  if key == nil and idx and idx.key == nil then
    error("dialoginsight: the project has no " .. fields.DEFAULT_KEY .. " field and marks no key "
      .. "field: name the key field with the key_field setting of di.new (or opts.key)", 0)
  end
  local name = key or (idx and idx.key) or fields.DEFAULT_KEY
  local keymeta = fields.resolve(name, idx)
  if not keymeta then
    -- shown only as a name can be: a key given here by mistake never shows
    error("dialoginsight: key field " .. options.shown(name) .. " is not a field of the project", 0)
  end
  return new {
    idx = idx, what = "field", key_wire = keymeta.wire, key_name = keymeta.name,
    missing = "is missing: it is the key field (or give idContact)",
  }
end

--- The builder of relational table rows: bare column names, values passed
-- as they are (dates given as tables become wire dates); key: the key column.
function M.rows(key)
  return new {
    rows = true, what = "column", key_wire = key, key_name = key or "key",
    missing = key and "is missing: it is the key column" or "no key: pass opts.key = <column>",
  }
end

local function contact_step(b, name)
  if name == "idContact" then return { field = name, id = true } end
  if name:match("^key_") then return { field = name, raw = true, wire = name } end
  -- the closest field is guessed for the first unknown names only
  local meta, why = fields.resolve(name, b.idx, b.guessed >= MAX_GUESSES)
  if not meta then
    b.guessed = b.guessed + 1
    return { field = name, fixed = why }
  end
  return { field = name, name = meta.name, wire = meta.wire, conv = fields.converter(meta),
           kind = fields.kind(meta), required = meta.required, key = meta.wire == b.key_wire }
end

--- The step of a member (or column) name: { field, name, wire, conv, required, key }, { field, id }
-- (idContact), { field, raw, wire } (an ID member as is) or { field, fixed = why } (not sendable).
function Builder:step(name)
  local s = self.steps[name]
  if s then return s end
  local why = fields.text_problem(name)
  if why then
    s = { field = name, fixed = "cannot be a " .. self.what .. " name: it " .. why }
  elseif self.rows then
    s = name:match("^key_") and { field = name, raw = true, wire = name }
      or { field = name, wire = name, conv = fields.converter(nil), kind = "any",
           key = name == self.key_wire }
  else
    s = contact_step(self, name)
  end
  self.steps[name] = s
  return s
end

--- The step of an opt-in named without its prefix (contacts only).
function Builder:optin_step(name)
  local k = "optin." .. name
  local s = self.steps[k]
  if s then return s end
  local meta, why = fields.resolve_optin(name, self.idx)
  local bad = fields.text_problem(name)
  if bad then meta, why = nil, "cannot be an opt-in name: it " .. bad end
  s = meta and { field = k, name = meta.name, wire = meta.wire, conv = fields.converter(meta),
                 kind = fields.kind(meta) }
    or { field = k, fixed = why }
  self.steps[k] = s
  return s
end

-- fills id or data; returns the value when it is the key's, and why on a problem
local function put(s, v, id, data)
  if s.fixed then return nil, s.fixed end
  if s.id then
    local n = fields.integer(v)
    if not n or n < 1 then return nil, "must be a positive integer" end
    id.idContact = n
    return nil
  end
  if s.raw then
    local why = type(v) == "string" and fields.text_problem(v)
    if why then return nil, why end
    id[s.wire] = v
    return nil
  end
  local val, why
  if v == NULL then
    if s.required then return nil, "is required and cannot be cleared" end
    val = NULL
  else
    val, why = s.conv(v)
    if val == nil then return nil, why end
  end
  data[s.wire] = val
  if s.key then return val end
  return nil
end

local function add(problems, field, message)
  problems = problems or {}
  problems[#problems + 1] = { field = field, message = message }
  return problems
end

local function by_field(a, b) return a.field < b.field end

function Builder:finish(id, data, key_value, problems)
  if next(id) == nil then
    if key_value == nil or key_value == NULL or key_value == "" then
      problems = add(problems, self.key_name, self.missing)
    else
      id["key_" .. self.key_wire] = key_value
      data[self.key_wire] = nil -- it is the ID; sending it twice says nothing more
    end
  end
  if problems and problems[2] then table.sort(problems, by_field) end
  return { ID = id, Data = data }, problems
end

--- The record of a table of members (name = value; a contact's opt-ins as
-- optin = { Name = true }).
function Builder:map(t)
  local id, data, key_value, problems = {}, {}, nil, nil
  local function one(s, v)
    local kv, why = put(s, v, id, data)
    if why then problems = add(problems, s.field, why) end
    if kv ~= nil then key_value = kv end
  end
  for k, v in pairs(t) do
    if type(k) ~= "string" then
      problems = add(problems, tostring(k), self.what .. " names must be strings")
    elseif k == "optin" and not self.rows then
      if type(v) ~= "table" then
        problems = add(problems, "optin", "must be a table such as { Newsletter = true }")
      else
        for name, on in pairs(v) do one(self:optin_step(tostring(name)), on) end
      end
    else
      one(self:step(k), v)
    end
  end
  return self:finish(id, data, key_value, problems)
end

--- The plan of steps (false: a column skipped) for src/di_rows.c, which builds CSV rows'
-- records as Builder:row would, and hands it the rows it declines.
function Builder:plan(steps)
  local out = {}
  for j = 1, #steps do
    local s = steps[j]
    out[j] = s and not s.fixed and { kind = s.id and "id" or s.raw and "raw" or s.kind,
                                     wire = s.wire or "idContact", key = s.key or false } or false
  end
  return core.row_plan(out, fields.MAX_TEXT)
end

--- The record of a row of values (a CSV record; an empty cell is left out), steps[j] reading values[j].
function Builder:row(values, steps)
  local id, data, key_value, problems = {}, {}, nil, nil
  for j = 1, #steps do
    local s, v = steps[j], values[j]
    if s and v ~= nil and v ~= "" then
      local kv, why = put(s, v, id, data)
      if why then problems = add(problems, s.field, why) end
      if kv ~= nil then key_value = kv end
    end
  end
  return self:finish(id, data, key_value, problems)
end

return M
