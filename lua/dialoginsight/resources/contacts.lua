--- client.contacts: merge, get, each, find and delete contacts, with
-- friendly field names (records/fields.lua) and where-clauses
-- (records/where.lua).
local base = require "dialoginsight.resources.base"
local pager = require "dialoginsight.resources.pager"
local fields = require "dialoginsight.records.fields"
local record = require "dialoginsight.records.record"

local Contacts = base.class()

-- The items of a list of contacts for base.merge_one/merge_many, or nil,
-- err when the project's fields cannot be read.
local function items(self, list, opts)
  local idx, err = base.schema(self.client, opts)
  if idx == nil then return nil, err end
  local key = opts.key or self.client.settings.key_field
  return base.items(list, record.contacts(idx or nil, key, 3), "contact", 2)
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
function Contacts:merge(contact, opts)
  base.check_opts(opts, "contacts:merge")
  base.check_table(contact, "contact")
  opts = opts or {}
  local list, err = items(self, { contact }, opts)
  if not list then return nil, err end
  return base.merge_one(self.client, "contacts", list[1], opts, nil,
    fields.friendly, fields.from_wire)
end

--- Merges a list of contacts, opts.batch_size (default 100) per call, the
-- calls running concurrently.  Invalid contacts are not sent and come back
-- rejected, with the problems.  Returns { created =, updated =, skipped =,
-- accepted =, rejected =, failed =, records = { outcome per contact, input order } }
-- or nil, err when the project's fields cannot be read.
function Contacts:merge_many(list, opts)
  base.check_opts(opts, "contacts:merge_many")
  base.check_table(list, "the list of contacts")
  opts = opts or {}
  local err
  list, err = items(self, list, opts)
  if not list then return nil, err end
  return base.merge_many(self.client, "contacts", list, opts, nil,
    fields.friendly, fields.from_wire)
end

--- Iterates over the contacts matching where, paging transparently:
--   for c, err in client.contacts:each({ City = "Paris" }) do ... end
-- A failure yields false, err and ends the loop.  opts: page_size, limit,
-- strict.
function Contacts:each(w, opts)
  base.check_opts(opts, "contacts:each")
  local clause, err = base.clause(self.client, w, opts, "contacts", "Get")
  if not clause then return pager.failing(err) end
  return pager.each(self.client, "contacts", "Get", { Clause = clause }, opts, fields.from_wire)
end

--- Iterates over every contact of the project (an empty where is refused,
-- since in a delete it would mean everything): the clause idContact > 0,
-- which every contact matches [assumed: GreaterThan is not seen on the
-- wire, docs/wire.md].  opts as each().
function Contacts:all(opts)
  base.check_opts(opts, "contacts:all")
  local where = require "dialoginsight.records.where"
  return self:each(where.gt("idContact", 0), opts)
end

--- The contacts matching where, as a list (opts.limit caps it), or nil, err.
function Contacts:get(w, opts)
  base.check_opts(opts, "contacts:get")
  return pager.collect(self:each(w, opts))
end

--- The first contact matching where, or nil (and nil, err on failure).
function Contacts:find(w, opts)
  base.check_opts(opts, "contacts:find")
  local o = { limit = 1 }
  for k, v in pairs(opts or {}) do if k ~= "limit" then o[k] = v end end
  local list, err = self:get(w, o)
  if not list then return nil, err end
  return list[1]
end

--- Deletes the contacts matching where; returns how many, or nil, err.
-- opts.max caps the number deleted (MaxRows).
function Contacts:delete(w, opts)
  base.check_opts(opts, "contacts:delete")
  local clause, err = base.clause(self.client, w, opts, "contacts", "Delete")
  if not clause then return nil, err end
  local params = { Clause = clause }
  if opts and opts.max then params.MaxRows = opts.max end
  return base.result(self.client, "contacts", "Delete", params, opts)
end

return Contacts
