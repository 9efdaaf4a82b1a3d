--- client:table(id): a relational table, scoped by idTable, with bare
-- column names.  Its key column's ID form is key_<column>.
--   local t = client:table(501)
--   t:merge({ idReservation = 4, idContact = 1, Destination = "Oslo" }, { key = "idReservation" })
local core = require "dialoginsight.core"
local errors = require "dialoginsight.errors"
local fields = require "dialoginsight.fields"
local where = require "dialoginsight.where"
local pager = require "dialoginsight.pager"
local merge = require "dialoginsight.merge"

local M = {}

local Table = {}
Table.__index = Table

function M.new(client, id)
  if type(id) ~= "number" or id ~= math.floor(id) or id < 1 then
    error("dialoginsight: client:table expects an idTable, got " .. tostring(id), 3)
  end
  return setmetatable({ client = client, id = id }, Table)
end

-- The wire record of a row and its problems.  The key is opts.key's column,
-- or a key_<column> member already in the row.
local function record(row, key)
  local rec, problems = { ID = {}, Data = {} }, {}
  for k, v in pairs(row) do
    if type(k) ~= "string" then
      problems[#problems + 1] = { field = tostring(k), message = "column names must be strings" }
    elseif k:match("^key_") then
      rec.ID[k] = v
    else
      local val, why = fields.convert(nil, v)
      if val == nil then problems[#problems + 1] = { field = k, message = why }
      elseif k == key then rec.ID["key_" .. k] = val
      else rec.Data[k] = val end
    end
  end
  if next(rec.ID) == nil then
    problems[#problems + 1] = { field = key or "key",
      message = key and "is missing: it is the key column" or "no key: pass opts.key = <column>" }
  end
  return rec, problems
end

local function items(rows, opts)
  local list = {}
  for i, row in ipairs(rows) do
    if type(row) ~= "table" then error("dialoginsight: row #" .. i .. " must be a table", 4) end
    local rec, problems = record(row, opts.key)
    for _, p in ipairs(problems) do p.record = i end
    list[i] = #problems > 0 and { problems = problems } or { record = rec }
  end
  return list
end

local function same(name) return name end

--- Inserts or updates one row; returns its outcome (as contacts:merge), or
-- nil, err.  opts: key (the key column), insert, update, ...
function Table:merge(row, opts)
  if type(row) ~= "table" then error("dialoginsight: merge expects a row table", 2) end
  opts = opts or {}
  local item = items({ row }, opts)[1]
  if item.problems then return nil, fields.invalid(item.problems, "relationaltables", "Merge") end
  local recs, err = pager.result(self.client, "relationaltables", "Merge", {
    idTable = self.id, Records = core.array { item.record }, MergeOptions = merge.options(opts),
  }, opts)
  if not recs then return nil, err end
  if type(recs[1]) ~= "table" then
    return nil, errors.new { kind = "decode",
      service = "relationaltables", method = "Merge", message = "the reply has no outcome" }
  end
  return merge.outcome(recs[1], same)
end

--- Merges many rows in chunks; returns the summary of contacts:merge_many.
function Table:merge_many(rows, opts)
  if type(rows) ~= "table" then error("dialoginsight: merge_many expects a list of rows", 2) end
  opts = opts or {}
  return merge.many(self.client, "relationaltables", items(rows, opts), opts, same, nil,
    { idTable = self.id })
end

local function clause(w)
  return (where.compile(w, where.bare))
end

--- The rows matching where (bare column names), or nil, err.
function Table:get(w, opts)
  local c = clause(w)
  local p = { idTable = self.id, Clause = c }
  if opts and opts.limit then p.MaxRows = opts.limit end
  return pager.result(self.client, "relationaltables", "Get", p, opts)
end

--- Deletes the rows matching where; returns how many, or nil, err.
function Table:delete(w, opts)
  local p = { idTable = self.id, Clause = clause(w) }
  if opts and opts.max then p.MaxRows = opts.max end
  return pager.result(self.client, "relationaltables", "Delete", p, opts)
end

return M
