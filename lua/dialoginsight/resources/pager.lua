--- Paging through MaxRows/StartRow, as the registry's paging contract of a
-- method says: iterators over every record, and collecting them.
local registry = require "dialoginsight.registry"

local M = {}

local function entry_of(service, method)
  return registry.lookup(service, method)
    or error("dialoginsight: " .. service .. "." .. method .. " is not in the registry", 3)
end

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

--- Iterates over the records of a paged method: yields map(record) for
-- each, fetching pages of opts.page_size (default: the paging contract's)
-- as needed, at most opts.limit records.  A failed call yields false, err
-- and ends the loop:
--   for rec, err in iter do if not rec then ... err ... end end
function M.each(client, service, method, params, opts, map)
  local entry = entry_of(service, method)
  local P = registry.PAGING[entry.paging]
  if not P then error("dialoginsight: " .. service .. "." .. method .. " does not page", 2) end
  local size = page_size(opts) or P.size
  local limit = opts and opts.limit
  if limit ~= nil and size > limit then size = math.max(1, limit) end
  local buf, i, fetched, done = {}, 0, 0, false
  local yielded = 0
  local function fill()
    local p = copy(params)
    p[P.max], p[P.start] = size, fetched + P.first
    local resp, err = client:call(service, method, p, opts)
    if not resp then done = true; return nil, err end
    buf, i = resp[P.records] or {}, 0
    fetched = fetched + #buf
    local total = resp[P.total]
    if #buf < size or (total and fetched >= total) then done = true end
    return true
  end
  return function()
    if limit and yielded >= limit then return nil end
    if i >= #buf then
      if done then return nil end
      local ok, err = fill()
      if not ok then return false, err end
      if #buf == 0 then return nil end
    end
    i = i + 1
    yielded = yielded + 1
    return map and map(buf[i]) or buf[i]
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
