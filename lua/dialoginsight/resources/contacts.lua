--- client.contacts: merge, get, each, find and delete contacts, by friendly field names.
-- @classmod dialoginsight.resources.contacts
local base = require "dialoginsight.resources.base"
local pager = require "dialoginsight.resources.pager"
local pager_ids = require "dialoginsight.resources.pager_ids"
local fields = require "dialoginsight.records.fields"
local record = require "dialoginsight.records.record"

local Contacts = base.class()

local MERGE, MERGE_MANY = base.MERGE, base.MERGE_MANY
local EACH = base.set(pager.OPTIONS, base.STRICT, base.CALL)
local DELETE = base.set(base.DELETE, base.STRICT, base.CALL)

-- The items of a list of contacts, nil, err (the fields unread), or false, why (raised).
local function items(self, list, opts)
  local idx, err = base.schema(self.client, opts)
  if idx == nil then return nil, err end
  local key = opts.key or self.client.settings.key_field
  local ok, builder = pcall(record.contacts, idx or nil, key)
  if not ok then return false, builder end
  return base.items(list, builder, "contact")
end

--- Inserts or updates one contact.
-- @tparam table contact friendly field names: { EMail =, FirstName =, optin = { Newsletter = true } }
-- @tparam[opt] table opts key (the key field: the key_field setting, else the project's), insert, update,
-- skip_duplicates, skip_unmatched, return_records, strict, and timeout, retries, deadline: as `client:call`'s
-- @treturn[1] table { outcome = "created" | "updated" | "skipped" | "accepted" (a status this library does not
-- know, ValidationResult OK), id = idContact, status =, reason = }
-- @return[2] nil, err (`dialoginsight.errors`): "validation" (err.problems) before sending, "rejected"
-- (err.field, err.code) by the server
-- @usage local r, err = client.contacts:merge{ EMail = "ann@example.com", FirstName = "Ann", optin = { Newsletter = true } }
function Contacts:merge(contact, opts)
  base.check(opts, MERGE, "contacts:merge")
  base.check_table(contact, "contact")
  opts = opts or {}
  local list, err = items(self, { contact }, opts)
  if list == false then error(err, 2) end
  if not list then return nil, err end
  return base.merge_one(self.client, "contacts", list[1], opts, nil,
    fields.friendly, fields.from_wire)
end

--- Merges a list of contacts, opts.batch_size (default 100) per call, the calls concurrent.
-- Invalid contacts are not sent: they come back rejected, with the problems.
-- @tparam {table,...} list contacts, as `merge` takes them
-- @tparam[opt] table opts batch_size, concurrency, the options of `merge`
-- @treturn[1] table { created =, updated =, skipped =, accepted =, rejected =, failed =, records = (outcomes, input order) }
-- @return[2] nil, err (`dialoginsight.errors`), when the project's fields cannot be read
-- @usage local s = client.contacts:merge_many(list, { batch_size = 100, insert = true, update = true })
function Contacts:merge_many(list, opts)
  base.check(opts, MERGE_MANY, "contacts:merge_many")
  base.check_table(list, "the list of contacts")
  opts = opts or {}
  local err
  list, err = items(self, list, opts)
  if list == false then error(err, 2) end
  if not list then return nil, err end
  return base.merge_many(self.client, "contacts", list, opts, nil,
    fields.friendly, fields.from_wire)
end

--- Iterates over the contacts matching where, each at most once, paging by windows of idContact.
-- Without opts.limit, it ends only once the replies prove it yielded every contact that matched throughout.
-- A failure, or replies that cannot be trusted, raise the error object and end the loop.
-- @param w a where (`dialoginsight.records.where`): { City = "Paris" }, or a clause
-- @tparam[opt] table opts page_size, limit, max_calls, strict, and timeout, retries, deadline: as `client:call`'s
-- @return an iterator of contacts (friendly names), and its state (calls, yielded, proven, failed)
-- @usage for c in client.contacts:each({ City = "Paris" }) do
--   print(c.idContact, c.FirstName)
-- end
function Contacts:each(w, opts)
  base.check(opts, EACH, "contacts:each")
  local clause, err = base.clause(self.client, w, opts, "contacts", "Get")
  if not clause then return pager.failing(err) end
  return pager_ids.each(self.client, "contacts", "Get", clause, "idContact", opts, fields.from_wire)
end

--- Iterates over every contact of the project, as idContact > 0: an empty where is refused
-- (in a delete it would mean everything) [assumed: GreaterThan is not seen on the wire, docs/wire.md].
function Contacts:all(opts)
  base.check(opts, EACH, "contacts:all")
  local where = require "dialoginsight.records.where"
  return self:each(where.gt("idContact", 0), opts)
end

--- The contacts matching where, as a list (opts.limit caps it), or nil, err.
-- @usage local list = client.contacts:get({ City = "Paris" }, { limit = 500 })
function Contacts:get(w, opts)
  base.check(opts, EACH, "contacts:get")
  return pager.collect(self:each(w, opts))
end

--- The first contact matching where, or nil (and nil, err on failure).
-- @usage local ann = client.contacts:find{ EMail = "ann@example.com" }
function Contacts:find(w, opts)
  base.check(opts, EACH, "contacts:find")
  local o = { limit = 1 }
  for k, v in pairs(opts or {}) do if k ~= "limit" then o[k] = v end end
  local list, err = self:get(w, o)
  if not list then return nil, err end
  return list[1]
end

--- Deletes the contacts matching where; returns how many, or nil, err.
-- @param w a where (an empty one raises)
-- @tparam[opt] table opts max (the most to delete: MaxRows), strict, and timeout, retries, deadline: as `client:call`'s
function Contacts:delete(w, opts)
  base.check(opts, DELETE, "contacts:delete")
  local clause, err = base.clause(self.client, w, opts, "contacts", "Delete")
  if not clause then return nil, err end
  local params = { Clause = clause }
  if opts and opts.max then params.MaxRows = opts.max end
  return base.result(self.client, "contacts", "Delete", params, opts)
end

return Contacts
