--- client.contacts: merge, get, each, find and delete contacts, with
-- friendly field names (records/fields.lua) and where-clauses
-- (records/where.lua).
-- @classmod dialoginsight.resources.contacts
local base = require "dialoginsight.resources.base"
local pager = require "dialoginsight.resources.pager"
local pager_ids = require "dialoginsight.resources.pager_ids"
local fields = require "dialoginsight.records.fields"
local record = require "dialoginsight.records.record"

local Contacts = base.class()

-- The options of each method, beside its code.
local MERGE, MERGE_MANY = base.MERGE, base.MERGE_MANY
local EACH = base.set(pager.OPTIONS, base.STRICT, base.CALL)
local DELETE = base.set(base.DELETE, base.STRICT, base.CALL)

-- The items of a list of contacts for base.merge_one/merge_many, or nil,
-- err when the project's fields cannot be read, or false, why for a bad
-- key or a contact that is not a table (the public method raises it).
local function items(self, list, opts)
  local idx, err = base.schema(self.client, opts)
  if idx == nil then return nil, err end
  local key = opts.key or self.client.settings.key_field
  local ok, builder = pcall(record.contacts, idx or nil, key)
  if not ok then return false, builder end
  return base.items(list, builder, "contact")
end

--- Inserts or updates one contact.  Returns { outcome = "created" |
-- "updated" | "skipped" | "accepted" (a status this library does not know,
-- with ValidationResult OK; `status` holds it), id = idContact, status =,
-- reason = }, or nil, err: err.kind == "validation" (with err.problems)
-- when the contact was refused before sending, "rejected" (with err.field
-- and err.code) when the server refused it.
-- opts: key (key field, default the key_field setting, else the project's:
-- see records/record.lua), insert, update,
-- skip_duplicates, skip_unmatched, return_records, strict, timeout, retries.
-- @tparam table contact friendly field names: { EMail =, FirstName =, optin = { Newsletter = true } }
-- @tparam[opt] table opts key, insert, update, skip_duplicates, skip_unmatched,
-- return_records, strict, and timeout, retries, deadline: as `client:call`'s
-- @treturn[1] table { outcome =, id =, status =, reason = }
-- @treturn[2] nil
-- @treturn[2] dialoginsight.errors.Error err
-- @usage local r, err = client.contacts:merge{ EMail = "ann@example.com", FirstName = "Ann",
--                                       optin = { Newsletter = true } }
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

--- Merges a list of contacts, opts.batch_size (default 100) per call, the
-- calls running concurrently.  Invalid contacts are not sent and come back
-- rejected, with the problems.  Returns { created =, updated =, skipped =,
-- accepted =, rejected =, failed =, records = { outcome per contact, input order } }
-- or nil, err when the project's fields cannot be read.
-- @tparam {table,...} list contacts, as `merge` takes them
-- @tparam[opt] table opts batch_size, concurrency, the options of `merge`
-- @treturn[1] table the summary
-- @treturn[2] nil
-- @treturn[2] dialoginsight.errors.Error err
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

--- Iterates over the contacts matching where, paging by windows of
-- idContact (resources/pager_ids.lua): each contact at most once; without
-- opts.limit, the loop ends only once the replies prove that every contact
-- that matched throughout was yielded.  A failure, or replies that cannot
-- be trusted, yield false, err and end the loop.  opts: page_size, limit,
-- max_calls, strict.  Returns the iterator and its state (calls, yielded,
-- proven, failed: resources/pager.lua).
-- @param w a where (`dialoginsight.records.where`): { City = "Paris" }, or a clause
-- @tparam[opt] table opts page_size, limit, max_calls, strict, and timeout, retries, deadline: as `client:call`'s
-- @return an iterator of contacts (friendly names)
-- @usage for c, err in client.contacts:each({ City = "Paris" }) do
--   if not c then error(err) end
--   print(c.idContact, c.FirstName)
-- end
function Contacts:each(w, opts)
  base.check(opts, EACH, "contacts:each")
  local clause, err = base.clause(self.client, w, opts, "contacts", "Get")
  if not clause then return pager.failing(err) end
  return pager_ids.each(self.client, "contacts", "Get", clause, "idContact", opts, fields.from_wire)
end

--- Iterates over every contact of the project (an empty where is refused,
-- since in a delete it would mean everything): the clause idContact > 0,
-- which every contact matches [assumed: GreaterThan is not seen on the
-- wire, docs/wire.md].  opts as each().
-- @tparam[opt] table opts as `each`'s
-- @return an iterator of contacts
function Contacts:all(opts)
  base.check(opts, EACH, "contacts:all")
  local where = require "dialoginsight.records.where"
  return self:each(where.gt("idContact", 0), opts)
end

--- The contacts matching where, as a list (opts.limit caps it), or nil, err.
-- @param w a where
-- @tparam[opt] table opts as `each`'s
-- @treturn[1] {table,...} the contacts
-- @treturn[2] nil
-- @treturn[2] dialoginsight.errors.Error err
-- @usage local list = client.contacts:get({ City = "Paris" }, { limit = 500 })
function Contacts:get(w, opts)
  base.check(opts, EACH, "contacts:get")
  return pager.collect(self:each(w, opts))
end

--- The first contact matching where, or nil (and nil, err on failure).
-- @param w a where
-- @tparam[opt] table opts as `each`'s
-- @treturn ?table the contact
-- @treturn ?dialoginsight.errors.Error err
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
-- opts.max caps the number deleted (MaxRows).
-- @param w a where (an empty one raises)
-- @tparam[opt] table opts max, strict, and timeout, retries, deadline: as `client:call`'s
-- @treturn[1] integer how many were deleted
-- @treturn[2] nil
-- @treturn[2] dialoginsight.errors.Error err
function Contacts:delete(w, opts)
  base.check(opts, DELETE, "contacts:delete")
  local clause, err = base.clause(self.client, w, opts, "contacts", "Delete")
  if not clause then return nil, err end
  local params = { Clause = clause }
  if opts and opts.max then params.MaxRows = opts.max end
  return base.result(self.client, "contacts", "Delete", params, opts)
end

return Contacts
