--- What the resources share: classes, argument checks, result members, the field index,
-- where-clauses, and Merge in one call or in concurrent batches.
local core = require "dialoginsight.core"
local errors = require "dialoginsight.errors"
local options = require "dialoginsight.options"
local fields = require "dialoginsight.records.fields"
local merge = require "dialoginsight.records.merge"
local where = require "dialoginsight.records.where"

local M = {}

--- A resource class: Class.new(client) makes one bound to the client.
function M.class()
  local C = {}
  C.__index = C
  function C.new(client) return setmetatable({ client = client }, C) end
  return C
end

--- Each method first calls options.check(opts, SET, where) (options.lua); M.pick picks a set's members.
M.check, M.set, M.pick = options.check, options.set, options.pick

--- The option of every method that validates against the project's fields (M.schema).
M.STRICT = { strict = options.boolean }

--- The options of a method that takes only those of every call.
M.CALL = options.set(options.CALL)

--- The options of a Merge of one record (M.merge_one).
M.MERGE = options.set(merge.OPTIONS, M.STRICT, options.CALL)

--- The option of a delete: max, the most records deleted (MaxRows).
M.DELETE = { max = options.count } -- 0 would read as "no limit" on the wire

--- The option of a call that sends a message: its parameters (records/fields.lua checks them).
M.PARAMS = { params = true }

--- The options merge_many adds to merge's: batch_size and concurrency.
M.MANY = options.set({ batch_size = options.count }, options.MANY)

--- The options of a Merge of many (M.merge_many).
M.MERGE_MANY = options.set(M.MERGE, M.MANY)

--- Raises at the caller's caller unless id is a positive integer.
function M.check_id(id, what)
  if type(id) ~= "number" or id ~= math.floor(id) or id < 1 then
    error("dialoginsight: " .. what .. " must be a positive integer id, got " .. tostring(id), 3)
  end
end

--- Raises at the caller's caller unless v is a table.
function M.check_table(v, what)
  if type(v) ~= "table" then
    error("dialoginsight: " .. what .. " must be a table, got " .. type(v), 3)
  end
end


--- client:call_result's answer: the registry's result member of the reply, or nil, err.
function M.result(client, service, method, params, opts)
  return client:call_result(service, method, params, options.of_call(opts))
end

--- The project's field index when validating, false when not (strict is
-- off: per-call opts.strict, then the client's `strict` setting), or nil, err.
function M.schema(client, opts)
  local strict = opts and opts.strict
  if strict == nil then strict = client.settings.strict end
  if strict == false then return false end
  local schema, err = client.projects:fields()
  if not schema then
    err.before = "reading the project's fields" -- not the caller's own call that failed
    return nil, err
  end
  return fields.index(schema)
end

--- The wire clause of a contact where (a table, a di.where clause, an idContact), or nil, err.
function M.clause(client, w, opts, service, method)
  if type(w) == "number" then w = { idContact = w } end
  local idx, err = M.schema(client, opts)
  if idx == nil then return nil, err end
  local clause, problems = where.compile(w, where.contact_fields(idx or nil))
  if #problems > 0 then return nil, fields.invalid(problems, service, method) end
  return clause
end

--- The ContactFilter of "a where-clause or an idContact", or nil, err.
function M.filter(client, contact, opts, service, method)
  if type(contact) == "number" then return where.contact_filter(contact) end
  local clause, err = M.clause(client, contact, opts, service, method)
  if not clause then return nil, err end
  return where.contact_filter(contact, clause)
end

--- The builder's { record = } or { problems = } of each item of list; or false, why
-- for an item that is not a table (the caller raises it).
function M.items(list, builder, what)
  local items = {}
  for i, item in ipairs(list) do
    if type(item) ~= "table" then
      return false, "dialoginsight: " .. what .. " #" .. i .. " must be a table, got " .. type(item)
    end
    local rec, problems = builder:map(item)
    if problems then
      for _, p in ipairs(problems) do p.record = i end
      items[i] = { problems = problems }
    else
      items[i] = { record = rec, keys = merge.record_keys(rec, builder.key_wire) }
    end
  end
  return items
end

--- Merges one record of service; returns its outcome (records/merge.lua), or nil, err:
-- "rejected" when the server refuses it (its ValidationResult), a decode error with
-- outcome "unknown" when the reply does not say (the server may hold it).
-- scope: members the call carries (a relational table's idTable).
function M.merge_one(client, service, item, opts, scope, friendly, from_wire)
  if item.problems then return nil, fields.invalid(item.problems, service, "Merge") end
  local params = { Records = core.array { item.record }, MergeOptions = merge.options(opts) }
  for k, v in pairs(scope or {}) do params[k] = v end
  local resp, err = client:call(service, "Merge", params, options.of_call(opts))
  if not resp then return nil, err end
  local o
  merge.settle(resp, 1, service, function(_, outcome, rec, why)
    if outcome == "failed" then err = why else o = merge.outcome(rec, friendly, from_wire) end
  end)
  if not o then return nil, err end
  if o.outcome == "rejected" then
    return nil, errors.new { kind = "rejected", service = service, method = "Merge",
      message = tostring(o.reason), field = o.field, code = o.code, id = o.id }
  end
  return o
end

-- The valid items in waves of chunks of size: { { index = { item
-- positions }, records = {...} }, ... }.  An item whose key an earlier item
-- of the wave holds starts the next wave: the chunks of a wave go out at
-- once and their parts in later rounds, so that only a wave after another
-- may hold a key again, and the later item wins.
local function waves(items, size)
  local list, wave, cur, seen = {}, nil, nil, nil
  for i, item in ipairs(items) do
    if item.record then
      local again = false
      for _, k in ipairs(wave and item.keys or {}) do
        if seen[k] then again = true; break end
      end
      if not wave or again then
        wave, cur, seen = {}, nil, {}
        list[#list + 1] = wave
      end
      for _, k in ipairs(item.keys) do seen[k] = true end
      if not cur or #cur.index == size then
        cur = { index = {}, records = {} }
        wave[#wave + 1] = cur
      end
      cur.index[#cur.index + 1] = i
      cur.records[#cur.records + 1] = item.record
    end
  end
  return list
end

-- The records of part at positions list, as a part of their own.
local function subpart(part, list)
  local p = { index = {}, records = {} }
  for j, k in ipairs(list) do p.index[j], p.records[j] = part.index[k], part.records[k] end
  return p
end

--- Sends the valid items in chunks of opts.batch_size through call_many; returns
-- { created, updated, skipped, accepted, rejected, failed, records = (outcomes, input order) }.
-- A failed chunk, or a reply silent on a record (outcome "unknown": it may be stored),
-- marks its records failed.  A refused chunk is split depth first (records/merge.lua)
-- down to the one rejected record, at most 2n - 1 calls, stopped by merge.streak; items
-- of one key go out in list order, the last wins (docs/sync.md).
function M.merge_many(client, service, items, opts, scope, friendly, from_wire)
  local size = opts.batch_size or merge.BATCH_SIZE
  local summary = { created = 0, updated = 0, skipped = 0, accepted = 0, rejected = 0, failed = 0,
                    records = {} }
  local function count(i, o)
    summary.records[i] = o
    summary[o.outcome] = summary[o.outcome] + 1
  end
  for i, item in ipairs(items) do
    if item.problems then count(i, merge.rejected(item.problems)) end
  end
  local mo, copts = merge.options(opts), options.of_call(opts)
  local streak, stop = merge.streak(), nil
  local function call_of(part)
    local params = { Records = core.array(part.records), MergeOptions = mo }
    for k, v in pairs(scope or {}) do params[k] = v end
    return { service, "Merge", params }
  end
  local function settle(part, res)
    merge.settle(res, #part.index, service, function(k, o, rec, err)
      if o == "failed" then
        count(part.index[k], { outcome = "failed", error = err, reason = tostring(err) })
      else
        if o ~= "rejected" then streak:taken() end
        count(part.index[k], merge.outcome(rec, friendly, from_wire))
      end
    end)
  end
  -- A part refused as a whole: its halves, each resolved before the next, so that a
  -- streak shows after a few calls.
  local function resolve(part, res)
    if stop then return settle(part, stop) end
    local a, b = merge.split(res, #part.index)
    if not a then
      if streak:refused(res) then
        stop = merge.streak_error(service, res)
        return settle(part, stop)
      end
      return count(part.index[1], { outcome = "rejected", reason = tostring(res.message),
                                    code = res.code, error = res })
    end
    for _, sub in ipairs { subpart(part, a), subpart(part, b) } do
      if stop then
        settle(sub, stop)
      else
        local c = call_of(sub)
        local resp, err = client:call(c[1], c[2], c[3], copts)
        local r = resp or err
        if errors.is_error(r) and merge.REFUSED[r.kind] then resolve(sub, r) else settle(sub, r) end
      end
    end
  end
  for _, parts in ipairs(waves(items, size)) do
    if stop then
      for _, part in ipairs(parts) do settle(part, stop) end
    else
      local calls = {}
      for j, part in ipairs(parts) do calls[j] = call_of(part) end
      local results = client:call_many(calls, copts)
      for j, part in ipairs(parts) do
        local res = results[j]
        if errors.is_error(res) and merge.REFUSED[res.kind] then resolve(part, res) else settle(part, res) end
      end
    end
  end
  return summary
end

return M
