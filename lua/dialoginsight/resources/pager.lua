--- Paging through MaxRows/StartRow, as the registry's paging contract of a
-- method says: iterators over every record, and collecting them.
local core = require "dialoginsight.core"
local request = require "dialoginsight.call.request"
local errors = require "dialoginsight.errors"

local M = {}

local function copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

-- (inf passes n == floor(n), NaN fails every comparison: both are refused)
local function count_opt(opts, name)
  local n = opts and opts[name]
  if n ~= nil and (type(n) ~= "number" or not (n >= 1) or n ~= math.floor(n) or n == math.huge) then
    error("dialoginsight: " .. name .. " must be a positive integer", 4)
  end
  return n
end

local function page_size(opts)
  count_opt(opts, "limit")
  return count_opt(opts, "page_size")
end

--- An iterator that yields false, err once: how each() reports a failure
-- found before the first call.
function M.failing(err)
  local done = false
  return function()
    if done then return nil end
    done = true
    return false, err
  end
end

-- The identity of a record for the paging contract P: its key fields, or,
-- when it has none of them, the record itself as JSON.
local function identity(P, rec)
  local key = P.key or {}
  if #key == 1 and rec[key[1]] ~= nil then return rec[key[1]] end
  local parts, any = {}, false
  for i, k in ipairs(key) do
    local v = rec[k]
    any = any or v ~= nil
    parts[i] = v == nil and "" or tostring(v)
  end
  if any then return table.concat(parts, "\0") end
  return core.encode(rec) or tostring(rec)
end

local function protocol(entry, message)
  return errors.new { kind = "protocol", service = entry.service, method = entry.method,
                      message = message }
end

-- Fetches the next page of an iteration into it.buf; returns true, or nil,
-- err.  Records already yielded are dropped, so a server that ignores
-- StartRow, returns another page size than asked, or repeats a page never
-- makes the iteration repeat a record; a page that brings nothing new ends
-- it.  TotalRecords, when given, ends it too and bounds the calls.
local function fill(it)
  local P, entry = it.P, it.entry
  local p = copy(it.params)
  p[P.max], p[P.start] = it.size, it.offset + (P.first or 0)
  local resp, err = it.client:call(it.service, it.method, p, request.call_options(it.opts))
  if not resp then return nil, err end
  it.calls = it.calls + 1
  local recs = resp[P.records]
  if recs == nil then recs = {} end
  if type(recs) ~= "table" then return nil, protocol(entry, P.records .. " is not a list") end
  local total = P.total and resp[P.total]
  if type(total) ~= "number" then total = nil end
  if total and #recs > total then
    return nil, protocol(entry, "a page of " .. #recs .. " records, but " .. P.total .. " says "
      .. total .. " in all")
  end
  for i, rec in ipairs(recs) do
    if type(rec) ~= "table" then
      return nil, protocol(entry, P.records .. "[" .. i .. "] is not a record (a " .. type(rec) .. ")")
    end
  end
  it.offset = it.offset + #recs
  it.buf, it.i = {}, 0
  for _, rec in ipairs(recs) do
    local id = identity(P, rec)
    if not it.seen[id] then
      it.seen[id] = true
      it.buf[#it.buf + 1] = rec
    end
  end
  if #recs == 0 or #it.buf == 0 or (total and it.offset >= total) then it.done = true end
  if not it.done and total and it.calls > total / math.max(1, it.smallest) + 2 then
    return nil, protocol(entry, it.calls .. " pages and still more, but " .. P.total
      .. " says " .. total .. " records in all")
  end
  if #recs > 0 and #recs < it.smallest then it.smallest = #recs end
  return true
end

--- Iterates over the records of a paged method: yields map(record) for
-- each, fetching pages of opts.page_size (default: the paging contract's)
-- as needed, at most opts.limit records, each record once (by the
-- contract's key: idContact for contacts).  A failed call, or replies that
-- contradict each other (kind "protocol"), yield false, err and end the
-- loop:
--   for rec, err in iter do if not rec then ... err ... end end
-- opts.max_calls bounds the calls of one iteration (default 100,000).
function M.each(client, service, method, params, opts, map)
  local entry = client.registry:lookup(service, method)
    or error("dialoginsight: " .. service .. "." .. method .. " is not in the registry", 2)
  local P = client.registry.paging(entry)
  if not P then error("dialoginsight: " .. service .. "." .. method .. " does not page", 2) end
  local size = page_size(opts) or P.size or 100
  local limit = opts and opts.limit
  if limit ~= nil and size > limit then size = math.max(1, limit) end
  local it = { client = client, service = service, method = method, params = params, opts = opts,
               entry = entry, P = P, size = size, offset = 0, calls = 0, seen = {},
               buf = {}, i = 0, smallest = size, max_calls = opts and opts.max_calls or 100000 }
  local yielded = 0
  return function()
    if limit and yielded >= limit then return nil end
    if it.i >= #it.buf then
      if it.done then return nil end
      if it.calls >= it.max_calls then
        it.done = true
        return false, protocol(entry, "still more records after " .. it.calls .. " pages (max_calls)")
      end
      local ok, err = fill(it)
      if not ok then it.done = true; return false, err end
      if #it.buf == 0 then return nil end
    end
    it.i = it.i + 1
    yielded = yielded + 1
    local rec = it.buf[it.i]
    return map and map(rec) or rec
  end
end

--- Collects an iterator made by each() into a list, or nil, err.
function M.collect(iter)
  local list = {}
  for rec, err in iter do
    if not rec then return nil, err end
    list[#list + 1] = rec
  end
  return list
end

return M
