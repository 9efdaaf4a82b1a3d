--- What the resources share: a class per resource, argument checks, a
-- method's result member, the project's field index for validation, the
-- clauses and filters of contact where-clauses, and Merge in one call or in
-- concurrent batches.
local core = require "dialoginsight.core"
local request = require "dialoginsight.call.request"
local errors = require "dialoginsight.errors"
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

-- The options of each resource method, beside those of every call
-- (client:call's timeout, retries, deadline).  A name not listed is a
-- misspelling that would otherwise be ignored silently: refused.
local CALL = { "timeout", "retries", "deadline" }
local PAGED = { "page_size", "limit", "max_calls", "strict" }
local MERGE = { "key", "insert", "update", "skip_duplicates", "skip_unmatched", "return_records",
                "strict" }
local OPTIONS = {
  ["contacts:merge"] = MERGE,
  ["contacts:merge_many"] = { "batch_size", "concurrency", MERGE },
  ["contacts:each"] = PAGED, ["contacts:get"] = PAGED, ["contacts:all"] = PAGED,
  ["contacts:find"] = PAGED, ["contacts:delete"] = { "max", "strict" },
  ["segments:list"] = {}, ["segments:each_contact"] = PAGED, ["segments:contacts"] = PAGED,
  ["segments:save"] = { "strict" },
  ["campaigns:create"] = {}, ["campaigns:trigger"] = { "contact", "params", "strict" },
  ["campaigns:stats"] = {},
  ["sendings:send"] = { "params", "strict" }, ["sendings:send_batch"] = { "segments", "all", "at" },
  ["sendings:batches"] = { "min", "max" },
  ["messages:create"] = {}, ["messages:get"] = {},
  ["reports:opens"] = { "from", "to", "message", "batch", PAGED },
  ["reports:clicks"] = { "from", "to", "message", "batch", PAGED },
  ["reports:history"] = {},
  ["projects:list"] = {}, ["projects:get"] = {}, ["projects:fields"] = { "refresh" },
  ["table:merge"] = MERGE, ["table:merge_many"] = { "batch_size", "concurrency", MERGE },
  ["table:get"] = { "limit" }, ["table:delete"] = { "max" },
}

local function names_of(list, into)
  for _, v in ipairs(list) do
    if type(v) == "table" then names_of(v, into) else into[#into + 1] = v end
  end
  return into
end

local ALLOWED = {}
for method, list in pairs(OPTIONS) do
  local names = names_of({ list, CALL }, {})
  local set = {}
  for _, n in ipairs(names) do set[n] = true end
  ALLOWED[method] = { set = set, names = names }
end

--- Raises at the user's call unless every member of opts is an option of
-- method ("contacts:merge"): `merge(c, { upsert = false })` must not pass
-- for `insert`.
function M.check_opts(opts, method)
  if opts == nil then return end
  if type(opts) ~= "table" then
    error("dialoginsight: the options of " .. method .. " must be a table, got " .. type(opts), 3)
  end
  local a = assert(ALLOWED[method], method)
  for k in pairs(opts) do
    if not a.set[k] then
      local guess = type(k) == "string" and fields.closest(k, a.names)
      error("dialoginsight: " .. method .. " has no option '" .. tostring(k) .. "'"
        .. (guess and (" (did you mean '" .. guess .. "'?)") or "")
        .. "; its options: " .. table.concat(a.names, ", "), 3)
    end
  end
end

--- Raises at the caller's caller unless id is a positive integer.
function M.check_id(id, what)
  if type(id) ~= "number" or id ~= math.floor(id) or id < 1 then
    error("dialoginsight: " .. what .. " must be a positive integer id, got " .. tostring(id), 3)
  end
end

--- Raises at the caller's caller unless v is a table.
function M.check_table(v, what, level)
  if type(v) ~= "table" then
    error("dialoginsight: " .. what .. " must be a table, got " .. type(v), (level or 2) + 1)
  end
end

--- Calls service.method and returns the member of the reply named by the
-- registry entry's `result` (only it: a second value would read as an
-- error to `local v, err = ...`), or nil, err.
function M.result(client, service, method, params, opts)
  local entry = client.registry:lookup(service, method)
    or error("dialoginsight: " .. service .. "." .. method .. " is not in the registry", 2)
  local resp, err = client:call(service, method, params, request.call_options(opts))
  if not resp then return nil, err end
  local v = resp[entry.result]
  if v == nil then
    return nil, errors.new {
      kind = "decode", service = entry.service, method = entry.method,
      request_id = resp.idRequest, message = "the reply has no " .. entry.result,
    }
  end
  return v
end

--- The project's field index when validating, false when not (strict is
-- off: per-call opts.strict, then the client's `strict` setting), or nil, err.
function M.schema(client, opts)
  local strict = opts and opts.strict
  if strict ~= nil and type(strict) ~= "boolean" then -- "false" must not turn checks off
    error("dialoginsight: option 'strict' must be true or false (got "
      .. errors.describe(strict) .. ")", 0)
  end
  if strict == nil then strict = client.settings.strict end
  if strict == false then return false end
  local schema, err = client.projects:fields()
  if not schema then
    err.before = "reading the project's fields" -- not the caller's own call that failed
    return nil, err
  end
  return fields.index(schema)
end

--- The wire clause of a contact where-clause (a table, a di.where clause,
-- or an idContact), or nil, err.
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

--- The builder's record of each item of list (contacts or rows), for
-- merge_one and merge_many: { record = } or { problems = } per item.
-- depth: the calls between the caller and the user's code, for the error
-- a bad item raises.
function M.items(list, builder, what, depth)
  local items = {}
  for i, item in ipairs(list) do
    M.check_table(item, what .. " #" .. i, 2 + depth)
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

--- Merges one record of service (contacts or relationaltables); returns
-- its outcome (records/merge.lua), or nil, err.  A record the server
-- refuses is an error too, as one refused before sending is: kind
-- "rejected", with the server's message, field and code (ValidationResult).
-- A reply that does not say what became of it is a decode error with
-- outcome "unknown" (the server may hold it).
-- scope: members the call carries (a relational table's idTable).
function M.merge_one(client, service, item, opts, scope, friendly, from_wire)
  if item.problems then return nil, fields.invalid(item.problems, service, "Merge") end
  local params = { Records = core.array { item.record }, MergeOptions = merge.options(opts) }
  for k, v in pairs(scope or {}) do params[k] = v end
  local resp, err = client:call(service, "Merge", params, request.call_options(opts))
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

--- Sends the valid items in chunks of opts.batch_size through call_many and
-- returns the summary { created, updated, skipped, accepted, rejected, failed,
-- records = { outcome per item, in input order } }.  A failed chunk marks
-- each of its records failed, with the error; so does a reply that does
-- not say what became of a record (error.outcome "unknown": it may be
-- stored).  A chunk the server refuses as a whole is sent again in parts
-- (records/merge.lua, split), depth first, until each refusal is a single
-- record's: that record is rejected with the server's error; the others are
-- merged.  A chunk of n records costs at most 2n - 1 calls; a refusal that
-- is the same for every record alone stops it all (merge.streak), and what
-- was not settled then is failed.  Items of one key (merge.record_keys) go
-- out one after the other, in list order, each once the one before it has
-- its outcome: the list's last one for a key wins.
function M.merge_many(client, service, items, opts, scope, friendly, from_wire)
  local size = opts.batch_size or merge.BATCH_SIZE
  if type(size) ~= "number" or size < 1 or size ~= math.floor(size) then
    error("dialoginsight: batch_size must be a positive integer", 3)
  end
  local summary = { created = 0, updated = 0, skipped = 0, accepted = 0, rejected = 0, failed = 0,
                    records = {} }
  local function count(i, o)
    summary.records[i] = o
    summary[o.outcome] = summary[o.outcome] + 1
  end
  for i, item in ipairs(items) do
    if item.problems then count(i, merge.rejected(item.problems)) end
  end
  local mo, copts = merge.options(opts), request.call_options(opts)
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
  -- A part the server refused as a whole (res): its halves, one after the
  -- other, each resolved before the next, so that single records come soon
  -- and a streak shows after a few calls.
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
