--- Iterating over the contacts that match a clause, by windows lo < idContact <= hi (docs/paging.md).
-- A window is done only when a reply proves it holds every match: an empty reply, or one smaller
-- than an earlier reply.  Nothing else is trusted: not the records' order, TotalRecords, a short page.
local core = require "dialoginsight.core"
local pager = require "dialoginsight.resources.pager"

local M = {}

local HUGE = math.huge
-- the share of the largest reply a window aims at, so that a complete reply is a smaller one: proof
local FILL = 0.75

local function field(name, op, value)
  return { ["$type"] = "FieldClause", Field = { Name = name }, TypeOperator = op, ComparisonValue = value }
end

-- the operators have no "or equal" (docs/wire.md): ids are integers, so <= hi is < hi + 1
local function window_clause(it)
  local parts = { it.where, field(it.id, "GreaterThan", it.lo) }
  if it.hi < HUGE then parts[#parts + 1] = field(it.id, "LessThan", it.hi + 1) end
  if it.exclude then parts[#parts + 1] = field(it.id, "NotEqual", it.exclude) end
  return { ["$type"] = "ComboClause", Operator = "And", Clauses = core.array(parts) }
end

local function is_id(v)
  return type(v) == "number" and v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53
end

-- The ids of recs, each a whole number inside the window, not the excluded one, not twice:
-- a record outside means the clause was not applied, and nothing could be proven.
local function ids(it, recs)
  local list, dup = {}, {}
  for i, rec in ipairs(recs) do
    local id = rec[it.id]
    if not is_id(id) then
      return nil, pager.protocol(it, "a record without a whole-number " .. it.id .. " (" .. tostring(id) .. ")")
    end
    if id <= it.lo or id > it.hi or id == it.exclude then
      return nil, pager.protocol(it, ("%s %s is outside the window asked for (%s > %s%s%s): the server "
        .. "did not apply the Clause"):format(it.id, id, it.id, it.lo, it.hi < HUGE and (", <= " .. it.hi) or "",
        it.exclude and (", not " .. it.exclude) or ""))
    end
    if dup[id] then return nil, pager.protocol(it, it.id .. " " .. id .. " twice in one reply") end
    dup[id], list[i] = true, id
  end
  return list
end

-- Ids yielded and above lo: the only ones a later reply may repeat.
local function prune(it)
  for id in pairs(it.seen) do
    if id <= it.lo then it.seen[id], it.held = nil, it.held - 1 end
  end
  -- ids are integers: a yielded lo + 1 is proven too
  while it.seen[it.lo + 1] do
    it.lo = it.lo + 1
    it.seen[it.lo], it.held = nil, it.held - 1
  end
end

local function known(it)
  local list = {}
  for id in pairs(it.seen) do
    if id > it.lo and id <= it.hi then list[#list + 1] = id end
  end
  table.sort(list)
  return list
end

-- sized from the proven window's density, at most twice as wide; open-ended when that one was
-- empty or TotalRecords (a hint only) says few remain
local function next_window(it, c, span)
  local target = math.max(1, math.floor(FILL * it.max_seen))
  -- (the matches above lo: those not yielded, and those yielded above lo)
  local above = it.total and it.total - it.yielded_all + it.held
  if c == 0 or (above and above < it.max_seen) then
    it.hi, it.hinted = HUGE, c > 0
    return
  end
  local width = math.floor(span * target / c)
  if width > 2 * span then width = 2 * span end
  it.hi = it.lo + math.max(1, width)
end

-- a window holding more than a reply: up to a known id below the largest reply's count, so that
-- a complete reply proves it, and the lower half at most, for servers that answer newest first
local function shrink(it)
  local ks = known(it)
  local k = math.floor(FILL * it.max_seen)
  local hi = k >= 1 and ks[k] or ks[1] - 1
  if it.hi < HUGE then hi = math.min(hi, it.lo + math.ceil((it.hi - it.lo) / 2)) end
  it.hi = hi
end

local function step(it)
  prune(it)
  if it.exclude and it.exclude <= it.lo then it.exclude = nil end
  if it.hi <= it.lo then
    it.hi = it.lo
    return next_window(it, 0) or true
  end
  local recs, resp = pager.fetch(it, { Clause = window_clause(it), [it.P.max] = it.size,
                                       [it.P.start] = it.P.first or 0 })
  if not recs then return nil, resp end
  local list, err = ids(it, recs)
  if not list then return nil, err end
  local n, first = #recs, it.calls == 1
  local complete = n == 0 or n < it.max_seen
  if n > it.max_seen then it.max_seen = n end
  local T = it.P.total and resp[it.P.total]
  if it.hi == HUGE and not it.no_hint and is_id(T) and T >= n then
    it.total = T + it.yielded_all - it.held
  end
  local low, fresh = it.exclude, 0
  for i, id in ipairs(list) do
    if not it.seen[id] then
      it.seen[id], it.held, it.yielded_all = true, it.held + 1, it.yielded_all + 1
      it.buf[#it.buf + 1] = recs[i]
      fresh = fresh + 1
    end
    if not low or id < low then low = id end
  end
  -- "all but one" of a reply that held every match holds nothing new: new records mean the first
  -- reply was cut (rows dropped after MaxRows) or records came meanwhile; either way, no proof
  if it.exclude and fresh > 0 then complete = false end
  if it.tail or (complete and it.hi == HUGE) then
    -- Proven; then past the highest id while replies look like the short pages of a server that
    -- drops rows after MaxRows (outside the model, docs/paging.md): records added meanwhile are never chased.
    if n == 0 or (it.tail and n < FILL * it.max_seen) then
      it.done, it.proven = true, true
      return true
    end
    local top = it.lo
    for id in pairs(it.seen) do if id > top then top = id end end
    it.lo, it.hi, it.exclude, it.tail = top, HUGE, nil, true
    return true
  end
  if complete then
    local c, span = n + (it.exclude and 1 or 0), it.hi - it.lo
    it.lo, it.exclude = it.hi, nil
    prune(it)
    next_window(it, c, span)
  elseif first and n ~= it.size then
    -- a first reply of another size than asked may hold every match: all but one, asked again, tells
    it.exclude = low
  else
    -- (a TotalRecords that said few remain was wrong: never used again)
    if it.hinted then it.total, it.no_hint = nil, true end
    it.exclude, it.hinted = nil, false
    shrink(it)
  end
  return true
end

--- Iterates (iterator and pager.state) over the records matching `where`, by windows of
-- the integer field `id`, each at most once; without opts.limit it ends only on a proof that
-- every record that matched throughout was yielded.  A failed call, or replies that break
-- the model (docs/paging.md, kind "protocol"), raise the error object and end it.
function M.each(client, service, method, where, id, opts, map)
  local it = pager.state(client, service, method, {}, opts)
  it.where, it.id = where, id
  -- idContact is a positive integer [assumed]: one that is not ends the
  -- iteration with an error (outside the window), never silently
  it.lo, it.hi, it.seen, it.held, it.yielded_all = 0, HUGE, {}, 0, 0
  return pager.iterate(it, step, map)
end

return M
