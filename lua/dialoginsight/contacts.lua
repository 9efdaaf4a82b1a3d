--- client.contacts: merge, get, each, find and delete contacts, with
-- friendly field names (fields.lua) and where-clauses (where.lua).
local core = require "dialoginsight.core"
local errors = require "dialoginsight.errors"
local fields = require "dialoginsight.fields"
local where = require "dialoginsight.where"
local pager = require "dialoginsight.pager"
local merge = require "dialoginsight.merge"

local M = {}

local Contacts = {}
Contacts.__index = Contacts

function M.new(client)
  return setmetatable({ client = client }, Contacts)
end

-- A where-clause's resolver for contact fields: friendly names to wire
-- names, and comparison values to the field's wire form.
local function resolver(idx)
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

--- The wire clause of a contact where-clause (a table, a di.where clause, or
-- an idContact), or nil, err.  Shared by segments, sendings and campaigns.
function M.clause(client, w, opts, service, method)
  if type(w) == "number" then w = { idContact = w } end
  local idx, err = fields.for_call(client, opts)
  if idx == nil then return nil, err end
  local clause, problems = where.compile(w, resolver(idx or nil))
  if #problems > 0 then return nil, fields.invalid(problems, service, method) end
  return clause
end

--- The ContactFilter of "a where-clause or an idContact": Single for an
-- idContact, Clauses otherwise.
function M.filter(client, contact, opts, service, method)
  if type(contact) == "number" then
    return { Mode = "Single", idContact = contact }
  end
  local clause, err = M.clause(client, contact, opts, service, method)
  if not clause then return nil, err end
  return { Mode = "Clauses",
           TableClauses = core.array { { TableCode = "Contact", Clause = clause } } }
end

local function check_table(v, what, level)
  if type(v) ~= "table" then
    error("dialoginsight: " .. what .. " must be a table, got " .. type(v), level or 3)
  end
end

-- The wire records of a list of contacts: items for merge.many.
local function prepare(list, idx, opts)
  local items = {}
  for i, contact in ipairs(list) do
    check_table(contact, "contact #" .. i, 4)
    local rec, problems = fields.contact_record(contact, idx or nil, opts.key)
    if #problems > 0 then
      for _, p in ipairs(problems) do p.record = i end
      items[i] = { problems = problems }
    else
      items[i] = { record = rec }
    end
  end
  return items
end

--- Inserts or updates one contact.  Returns { outcome = "created" |
-- "updated" | "skipped" | "rejected", id = idContact, reason =, field = },
-- or nil, err (err.kind == "validation" with err.problems when the contact
-- was refused before sending).
-- opts: key (key field, default the project's), insert, update,
-- skip_duplicates, skip_unmatched, return_records, strict, timeout, retries.
function Contacts:merge(contact, opts)
  check_table(contact, "contact")
  opts = opts or {}
  local idx, err = fields.for_call(self.client, opts)
  if idx == nil then return nil, err end
  local item = prepare({ contact }, idx, opts)[1]
  if item.problems then return nil, fields.invalid(item.problems, "contacts", "Merge") end
  local recs
  recs, err = pager.result(self.client, "contacts", "Merge",
    { Records = core.array { item.record }, MergeOptions = merge.options(opts) }, opts)
  if not recs then return nil, err end
  if type(recs[1]) ~= "table" then
    return nil, errors.new { kind = "decode", service = "contacts",
      method = "Merge", message = "the Merge reply has no outcome for the record" }
  end
  return merge.outcome(recs[1], fields.friendly, fields.from_wire)
end

--- Merges a list of contacts, opts.batch_size (default 100) per call, the
-- calls running concurrently.  Invalid contacts are not sent and come back
-- rejected, with the problems.  Returns { created =, updated =, skipped =,
-- rejected =, failed =, records = { outcome per contact, input order } }
-- or nil, err when the project's fields cannot be read.
function Contacts:merge_many(list, opts)
  check_table(list, "the list of contacts")
  opts = opts or {}
  local idx, err = fields.for_call(self.client, opts)
  if idx == nil then return nil, err end
  return merge.many(self.client, "contacts", prepare(list, idx, opts), opts,
    fields.friendly, fields.from_wire)
end

--- Iterates over the contacts matching where, paging transparently:
--   for c, err in client.contacts:each({ City = "Paris" }) do ... end
-- A failure yields false, err and ends the loop.  opts: page_size, limit,
-- strict.
function Contacts:each(w, opts)
  local clause, err = M.clause(self.client, w, opts, "contacts", "Get")
  if not clause then return pager.failing(err) end
  return pager.each(self.client, "contacts", "Get", { Clause = clause }, opts, fields.from_wire)
end

--- The contacts matching where, as a list (opts.limit caps it), or nil, err.
function Contacts:get(w, opts)
  return pager.collect(self:each(w, opts))
end

--- The first contact matching where, or nil (and nil, err on failure).
function Contacts:find(w, opts)
  local o = { limit = 1 }
  for k, v in pairs(opts or {}) do if k ~= "limit" then o[k] = v end end
  local list, err = self:get(w, o)
  if not list then return nil, err end
  return list[1]
end

--- Deletes the contacts matching where; returns how many, or nil, err.
-- opts.max caps the number deleted (MaxRows).
function Contacts:delete(w, opts)
  local clause, err = M.clause(self.client, w, opts, "contacts", "Delete")
  if not clause then return nil, err end
  local params = { Clause = clause }
  if opts and opts.max then params.MaxRows = opts.max end
  return pager.result(self.client, "contacts", "Delete", params, opts)
end

return M
