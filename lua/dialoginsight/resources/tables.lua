--- client:table(id): a relational table, scoped by idTable, with bare column names (the key's ID form: `key_<column>`).
-- @classmod dialoginsight.resources.tables
-- @usage local t = client:table(501)
-- t:merge({ idReservation = 4, idContact = 1, Destination = "Oslo" }, { key = "idReservation" })
local base = require "dialoginsight.resources.base"
local pager = require "dialoginsight.resources.pager"
local record = require "dialoginsight.records.record"
local where = require "dialoginsight.records.where"

local M = {}

local MERGE, MERGE_MANY = base.MERGE, base.MERGE_MANY
local GET = base.set(pager.LIMIT, base.CALL)
local DELETE = base.set(base.DELETE, base.CALL)

local Table = {}
Table.__index = Table

--- The table idTable of client (`client:table` is the public way).
-- @local
function M.new(client, id)
  if type(id) ~= "number" or id ~= math.floor(id) or id < 1 then
    error("dialoginsight: client:table expects an idTable, got " .. tostring(id), 3)
  end
  return setmetatable({ client = client, id = id }, Table)
end

local function same(name) return name end

--- Inserts or updates one row, as `dialoginsight.resources.contacts:merge` does a contact.
-- @tparam table row bare column names
-- @tparam[opt] table opts key (the key column), and the other options of `dialoginsight.resources.contacts:merge`
-- @treturn[1] table { outcome =, id =, status =, reason = }
function Table:merge(row, opts)
  base.check(opts, MERGE, "table:merge")
  if type(row) ~= "table" then error("dialoginsight: merge expects a row table", 2) end
  opts = opts or {}
  local item = base.items({ row }, record.rows(opts.key), "row")[1]
  return base.merge_one(self.client, "relationaltables", item, opts, { idTable = self.id }, same)
end

--- Merges many rows in chunks; returns the summary of contacts:merge_many.
-- @tparam {table,...} rows
-- @tparam[opt] table opts batch_size, concurrency, and the options of `Table:merge`
function Table:merge_many(rows, opts)
  base.check(opts, MERGE_MANY, "table:merge_many")
  if type(rows) ~= "table" then error("dialoginsight: merge_many expects a list of rows", 2) end
  opts = opts or {}
  local items, why = base.items(rows, record.rows(opts.key), "row")
  if not items then error(why, 2) end
  return base.merge_many(self.client, "relationaltables", items, opts, { idTable = self.id }, same)
end

-- Get and Delete take the same clause, and a row cap under another option's name.
local function by_clause(self, method, w, cap, opts)
  local p = { idTable = self.id, Clause = (where.compile(w, where.bare)) }
  if cap then p.MaxRows = cap end
  return base.result(self.client, "relationaltables", method, p, opts)
end

--- The rows matching where (bare column names), or nil, err.
-- @param w a where (`dialoginsight.records.where`), on bare column names
-- @tparam[opt] table opts limit, and timeout, retries, deadline: as `client:call`'s
function Table:get(w, opts)
  base.check(opts, GET, "table:get")
  return by_clause(self, "Get", w, opts and opts.limit, opts)
end

--- Deletes the rows matching where; returns how many, or nil, err.
-- @param w a where (an empty one raises)
-- @tparam[opt] table opts max, and timeout, retries, deadline: as `client:call`'s
function Table:delete(w, opts)
  base.check(opts, DELETE, "table:delete")
  return by_clause(self, "Delete", w, opts and opts.max, opts)
end

return M
