--- Iterating over every record of a paged method (MaxRows, StartRow, Records), against a
-- server that may order, cut and change its pages as it likes (the model: docs/paging.md;
-- TotalRecords proves nothing).  What every iterator shares, and paging by StartRow;
-- resources/pager_ids.lua pages contacts by idContact windows.
local core = require "dialoginsight.core"
local errors = require "dialoginsight.errors"
local options = require "dialoginsight.options"

local M = {}

--- The options of an iteration (M.state): page_size, limit, max_calls.
M.LIMIT = { limit = options.count }
M.OPTIONS = options.set(M.LIMIT, { page_size = options.count, max_calls = options.count })

-- The public iterator over it: each record advance(it) gives; a failure
-- raises the error object (errors.raise), like io.lines.
local function raising(it)
  return function()
    local rec, err = it.advance()
    if rec == false then errors.raise(err) end
    return rec
  end, it
end

--- An iterator (and its state) that raises err at its first step: a failure found before the first call.
function M.failing(err)
  local done = false
  return raising { calls = 0, yielded = 0, failed = err, advance = function()
    if done then return nil end
    done = true
    return false, err
  end }
end

--- Collects an iterator made by each() (and its state) into a list, or nil, err.
function M.collect(_, it)
  local list = {}
  while true do
    local rec, err = it.advance()
    if rec == false then return nil, err end
    if rec == nil then return list end
    list[#list + 1] = rec
  end
end

function M.protocol(it, message)
  return errors.new { kind = "protocol", service = it.entry.service, method = it.entry.method,
                      message = message }
end

--- The state of one iteration over service.method with contract P and opts; its public
-- fields (cli/export.lua): calls, yielded, proven (ended on a proof that nothing is
-- missing), failed (the error it ended on).
function M.state(client, service, method, params, opts)
  local entry = client.registry:lookup(service, method)
    or error("dialoginsight: " .. service .. "." .. method .. " is not in the registry", 2)
  local P = client.registry.paging(entry)
  if not P then error("dialoginsight: " .. service .. "." .. method .. " does not page", 2) end
  local limit = opts and opts.limit
  local size = opts and opts.page_size or P.size or 100
  if limit and size > limit then size = limit end
  return { client = client, service = service, method = method, params = params, opts = opts,
           entry = entry, P = P, size = size, limit = limit, calls = 0, yielded = 0,
           max_calls = opts and opts.max_calls or 100000, buf = {}, i = 0, max_seen = 0 }
end

--- One call of the iteration, with params plus extra (the paging fields):
-- the reply's records (each checked to be a table) and the reply, or nil, err.
function M.fetch(it, extra)
  local p = {}
  for k, v in pairs(it.params) do p[k] = v end
  for k, v in pairs(extra) do p[k] = v end
  it.calls = it.calls + 1
  local resp, err = it.client:call(it.service, it.method, p, options.of_call(it.opts))
  if not resp then return nil, err end
  local recs = resp[it.P.records]
  if type(recs) ~= "table" then
    return nil, errors.new { kind = "decode", service = it.entry.service, method = it.entry.method,
      request_id = resp.idRequest, message = "the reply has no list " .. it.P.records }
  end
  local n = #recs
  for k, v in pairs(recs) do
    if type(k) ~= "number" or k < 1 or k > n or k ~= math.floor(k) then
      return nil, M.protocol(it, it.P.records .. " is not a list")
    end
    if type(v) ~= "table" then
      local what = v == core.null and "null" or type(v)
      return nil, M.protocol(it, it.P.records .. "[" .. k .. "] is not a record (" .. what .. ")")
    end
  end
  return recs, resp
end

--- The iterator over it (and it): map(record) for what step(it) leaves in it.buf, until
-- it.done or it.limit; a failure raises (it.failed).  it.advance returns false, err instead.
function M.iterate(it, step, map)
  local function fail(err)
    it.done, it.failed, it.buf, it.i = true, err, {}, 0
    return false, err
  end
  it.advance = function()
    if it.limit and it.yielded >= it.limit then return nil end
    while it.i >= #it.buf do
      if it.done then return nil end
      if it.calls >= it.max_calls then
        return fail(M.protocol(it, "still not proven complete after " .. it.calls .. " calls (max_calls)"))
      end
      it.buf, it.i = {}, 0
      local ok, err = step(it)
      if not ok then return fail(err) end
    end
    it.i = it.i + 1
    local rec = it.buf[it.i]
    if map then
      local why
      rec, why = map(rec)
      if rec == nil then
        return fail(M.protocol(it, "a record of the reply cannot be read: " .. tostring(why)))
      end
    end
    it.yielded = it.yielded + 1
    return rec
  end
  return raising(it)
end

-- Paging by StartRow ---------------------------------------------------------

-- A StartRow past the end of any list (within Int32 with first = 1 too).
local PAST_ANY_END = 2147483646

-- Whether a and b are the same record: by the contract's key, or for
-- records without identity (events), by content.
local function equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do if not equal(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local function key_of(it, rec)
  local key = it.P.key
  if #key == 1 then return rec[key[1]] end
  local parts = {}
  for i, k in ipairs(key) do
    local v = rec[k]
    if v == nil then return nil end
    parts[i] = tostring(v)
  end
  return table.concat(parts, "\0")
end

local function same(it, a, b)
  if it.keyed then return key_of(it, a) == key_of(it, b) end
  return equal(a, b)
end

-- The keys of recs, checked: each has one, none twice; or nil, err.
local function keys(it, recs)
  local list, dup = {}, {}
  for i, rec in ipairs(recs) do
    local k = key_of(it, rec)
    if k == nil then
      return nil, M.protocol(it, "a record without " .. table.concat(it.P.key, ", "))
    end
    if dup[k] then return nil, M.protocol(it, "the same record twice in one reply (" .. tostring(k) .. ")") end
    dup[k], list[i] = true, k
  end
  return list
end

local function page(it, start, size)
  local P = it.P
  return M.fetch(it, { [P.max] = size or it.size, [P.start] = start + (P.first or 0) })
end

-- Page 2 starts with page 1 though it asked a later StartRow: a server
-- that ignores StartRow, or a run of identical records.  A StartRow past
-- any end tells them apart: nothing from an honest server.
local function ignores_start(it)
  local recs, err = page(it, PAST_ANY_END)
  if not recs then return nil, err end
  return #recs > 0
end

-- Whether recs begins with the records of list (by identity or content).
local function begins_with(it, recs, list)
  if #recs < #list then return false end
  for i = 1, #list do
    if not same(it, recs[i], list[i]) then return false end
  end
  return true
end

-- Queues recs[from..] as new records (a keyed one seen before is an error).
local function take(it, recs, from)
  for i = from, #recs do
    local rec = recs[i]
    if it.keyed then
      local k = key_of(it, rec)
      if k == nil then return nil, M.protocol(it, "a record without " .. table.concat(it.P.key, ", ")) end
      if it.seen[k] then
        return nil, M.protocol(it, "record " .. tostring(k) .. " came again after the last one yielded: "
          .. "the list was reordered while paging by StartRow")
      end
      it.seen[k] = true
    end
    it.buf[#it.buf + 1] = rec
  end
  return true
end

-- A server that ignores StartRow: its page 2 is every match when not cut at MaxRows and
-- TotalRecords, if given, says no more (beyond the model: docs/paging.md); its records
-- after the `done` already taken are new.
local function whole_list(it, recs, resp, done)
  local n = #recs
  local T = it.P.total and resp[it.P.total]
  if type(T) == "number" and T > n then
    return nil, M.protocol(it, "the server ignores StartRow: its reply of " .. n .. " records is all it "
      .. "gives, but " .. it.P.total .. " says " .. T)
  end
  local ok, err = take(it, recs, done + 1)
  if not ok then return nil, err end
  if n == it.size then
    local again
    again, err = page(it, 0, it.size + 1)
    if not again then return nil, err end
    if #again > n then
      return nil, M.protocol(it, "the server ignores StartRow and cuts its reply at MaxRows (" .. n
        .. "): the records after the first " .. n .. " cannot be reached")
    end
    if it.keyed then
      for i = 1, #again do
        local k = key_of(it, again[i])
        if k == nil then return nil, M.protocol(it, "a record without " .. table.concat(it.P.key, ", ")) end
        if not it.seen[k] then it.seen[k] = true; it.buf[#it.buf + 1] = again[i] end
      end
    elseif #again ~= n or not begins_with(it, again, recs) then
      return nil, M.protocol(it, "the server ignores StartRow, and its list changed between two calls")
    end
  end
  it.done, it.proven = true, "StartRow ignored"
  return true
end

-- One page by StartRow, asked from the last record yielded (overlap of one), which must
-- come back, at the reply's start or later (it.skew); missing, the list shifted under a
-- deletion: an error, never a silent skip.
local function offset_step(it)
  local start = it.pos == 0 and 0 or it.pos - 1 + it.skew
  local recs, resp = page(it, start)
  if not recs then return nil, resp end
  local n, max_prev = #recs, it.max_seen
  if n > it.max_seen then it.max_seen = n end
  local ks
  if it.keyed then
    local err
    ks, err = keys(it, recs)
    if not ks then return nil, err end
  end
  it.pages = it.pages + 1
  if it.pages == 1 then
    if n == 0 then it.done, it.proven = true, true; return true end
    for i, rec in ipairs(recs) do
      if ks then it.seen[ks[i]] = true end
      it.buf[i] = rec
    end
    it.pos, it.last, it.first_page = n, recs[n], recs
    return true
  end
  if n == 0 then
    return nil, M.protocol(it, "the last record yielded is gone from its place (an empty page): the list "
      .. "changed while paging by StartRow")
  end
  -- the first page asked from beyond the start shows how the server reads
  -- StartRow: ignored (page 1 again), or from earlier than asked (skew)
  local first_page = start > 0 and it.first_page
  if first_page then
    it.first_page = nil
    if begins_with(it, recs, first_page) then
      local ignored, err = ignores_start(it)
      if ignored == nil then return nil, err end
      if ignored then return whole_list(it, recs, resp, it.pos) end
    end
  end
  local j
  for i = 1, n do
    if same(it, recs[i], it.last) then j = i; break end
  end
  if not j then
    return nil, M.protocol(it, "the last record yielded is not where it was (StartRow " .. start .. "): "
      .. "the list changed while paging by StartRow")
  end
  local from = start - it.skew
  if first_page and j > 1 then
    it.skew = j - 1
    from = from - it.skew
  end
  local ok, err = take(it, recs, j + 1)
  if not ok then return nil, err end
  it.pos, it.last = from + n, recs[n]
  -- a server sends at least 2 records when 2 or more remain (docs/paging.md)
  if n < math.max(max_prev, 2) then
    it.done, it.proven = true, true
  elseif n == j then
    it.stalls = it.stalls + 1
    if it.stalls >= 3 then
      return nil, M.protocol(it, "pages of " .. n .. " records bring nothing new after the last one "
        .. "yielded: cannot page by StartRow")
    end
  else
    it.stalls = 0
  end
  return true
end

--- Iterates (iterator and M.state) over the records of a method paged by StartRow: each once
-- while the list keeps its order, at most opts.limit; a failed call, or a change that could
-- lose or repeat a record (kind "protocol"), raises the error object and ends the loop.
function M.each(client, service, method, params, opts, map)
  local it = M.state(client, service, method, params, opts)
  -- the overlap needs room for a new record on each page
  if it.size < 2 and it.limit ~= 1 then it.size = 2 end
  it.keyed = it.P.key ~= nil and #it.P.key > 0
  it.pos, it.skew, it.pages, it.stalls, it.seen = 0, 0, 0, 0, {}
  return M.iterate(it, offset_step, map)
end

return M
