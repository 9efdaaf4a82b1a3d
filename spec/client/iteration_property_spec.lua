-- The Iteration promise (SECURITY.md) as a property: every record that
-- exists throughout an iteration is yielded exactly once, or the iteration
-- ends with an error.  A randomized adversary (spec/support/fake_pages.lua)
-- answers in any order (new on every call if it likes), with any fixed page
-- (smaller or larger than asked, or everything), TotalRecords right,
-- missing, the page's count, stale or random, the Clause ignored, ids
-- left out, StartRow read one early or late, and records deleted and added
-- between calls.  And liveness: a server that stays within the model
-- (docs/paging.md) never makes the iteration fail, or "always an error"
-- would pass.  Lists and events are paged by StartRow, which can only be
-- right while the list keeps its order: their adversary stays within that
-- model (deletions and insertions anywhere for keyed lists; an event log
-- that grows at its end).  spec/client/resources/iteration_spec.lua runs a
-- few such scenarios against the sandbox.
local property = require "support.property"
local fake = require "support.fake_pages"

local drain = fake.drain

-- An adversary that adds records faster than pages bring them keeps an
-- iteration going: max_calls ends it (an error); a server within the
-- model needs far fewer (300 records in pages of one: under 1,000 calls).
local MAX_CALLS = 3000

-- fn(rng), failing (with the seed) rather than hanging when an iteration
-- loops without calling: max_calls bounds the calls, nothing else the rest.
local function bounded(fn)
  return function(rng)
    local t0 = os.clock()
    debug.sethook(function()
      if os.clock() - t0 > 5 then debug.sethook(); error("the scenario ran for over 5 s of CPU", 2) end
    end, "", 100000)
    local ok, a, b = pcall(fn, rng)
    debug.sethook()
    if not ok then error(a, 0) end
    return a, b
  end
end

local function pick_size(rng)
  return rng:pick { 1, 2, 3, 5, 10, rng:int(1, 60), 100 }
end

local function pick_cap(rng, size, least)
  return rng:pick { "honoured", rng:int(least, size + 3), rng:int(least, 2 * size + 5), math.huge }
end

local TOTALS = { "right", "missing", "page", "stale", "random" }

-- How a list server reads StartRow.  One that ignores it cannot be paged:
-- its reply is taken as every match when it is not cut at MaxRows
-- (docs/paging.md), which a fixed page would fool; so such a server
-- honours MaxRows or ignores it too.
local function set_start(s, rng, starts)
  s.start = rng:pick(starts)
  if s.start == "ignored" and s.cap ~= "honoured" then s.cap = math.huge end
end

-- A record of the project: City X matches the iteration's where, Y not.
local function contact(rng, id)
  return { idContact = id, f_EMail = string.format("%06d@example.com", rng:int(0, 999999)),
           f_City = rng:chance(0.85) and "X" or "Y" }
end

-- n distinct ids: 1..n, or scattered (gaps as deleted contacts leave).
local function id_list(rng, n, used)
  local ids, dense = {}, rng:chance(0.4)
  local top = dense and n or 4 * n + 10
  while #ids < n do
    local id = dense and (#ids + 1) or rng:int(1, top)
    if not used[id] then used[id] = true; ids[#ids + 1] = id end
  end
  return ids
end

-- An id never used in this scenario, anywhere from 1 up (half the range
-- at most is taken, so a few draws find one).
local function new_id(rng, used, n)
  used.count = (used.count or 0) + 1
  local id
  repeat id = rng:int(1, math.max(5 * n + 20, 4 * used.count)) until not used[id]
  used[id] = true
  return id
end

-- Deletions, insertions and updates between calls, each drawn for this
-- scenario; new records get ids anywhere (below the windows already
-- proven, too).
local function mutator(rng, used, make)
  local p_del, p_ins, p_upd, most = rng:float() * 0.6, rng:float() * 0.6, rng:float() * 0.3, rng:int(1, 6)
  -- (for a while: an adversary that adds more than pages bring would keep
  -- an iteration going until max_calls, and the property slow)
  local calls = rng:int(2, 60)
  return function(srv, call)
    if call > calls then return end
    if #srv.list > 0 and rng:chance(p_del) then
      for _ = 1, rng:int(1, most) do
        if #srv.list == 0 then break end
        table.remove(srv.list, rng:int(1, #srv.list))
      end
    end
    if rng:chance(p_ins) then
      for _ = 1, rng:int(1, most) do table.insert(srv.list, rng:int(1, #srv.list + 1), make(used)) end
    end
    if #srv.list > 0 and rng:chance(p_upd) then -- a contact moves in or out of the where
      local rec = srv.list[rng:int(1, #srv.list)]
      rec.f_City = rec.f_City == "X" and "Y" or "X"
    end
  end
end

-- The ids alive (and matching) at every call: intersected call by call.
local function tracker(match)
  local t = { throughout = nil, ever = {} }
  function t.snapshot(srv)
    local now = {}
    for _, rec in ipairs(srv.list) do
      if match(rec) then now[rec] = true; t.ever[rec] = true end
    end
    if t.throughout == nil then t.throughout = now; return end
    for rec in pairs(t.throughout) do if not now[rec] then t.throughout[rec] = nil end end
  end
  return t
end

-- (the time budgets scale with the scenarios: `make soak` runs 5 times more)
describe("the Iteration promise #property", function()
  it("contacts:each yields every contact that existed throughout exactly once, or ends with an error", function()
    property.check("iteration-contacts", { scenarios = 3000, seconds = 9 }, bounded(function(rng)
      local used = {}
      local n = rng:pick { 0, 1, 2, 3, rng:int(1, 20), rng:int(1, 150), rng:int(100, 300) }
      local list = {}
      for i, id in ipairs(id_list(rng, n, used)) do list[i] = contact(rng, id) end
      local size = pick_size(rng)
      local s = fake.new { records = list, rng = rng, order = rng:pick { "id", "desc", "email", "random" },
                           cap = pick_cap(rng, size, 1), total = rng:pick(TOTALS) }
      local honest = true
      if rng:chance(0.1) then s.clause, honest = "ignored", false end
      if rng:chance(0.05) and n > 0 then
        s.noid, honest = { [list[rng:int(1, n)].idContact] = true }, false
      end
      local mutate
      if rng:chance(0.5) then
        honest = false
        mutate = mutator(rng, used, function(u) return contact(rng, new_id(rng, u, n)) end)
      end
      local t = tracker(function(rec) return rec.f_City == "X" and rec.idContact ~= nil end)
      s.before = function(srv, call)
        if mutate and call > 1 then mutate(srv, call) end
        t.snapshot(srv)
      end
      local got, err = drain(s:client().contacts:each({ City = "X" }, { page_size = size, max_calls = MAX_CALLS }))
      local why = ("%d contacts, page %d, order %s, cap %s, TotalRecords %s, clause %s%s%s, %d calls")
        :format(n, size, s.order, tostring(s.cap), tostring(s.total), s.clause, s.noid and ", an id left out" or "",
          mutate and ", changes between calls" or "", s.calls)
      local seen = {}
      for _, c in ipairs(got) do
        if seen[c.idContact] then return false, "idContact " .. c.idContact .. " yielded twice: " .. why end
        seen[c.idContact] = true
        if s.clause == "honoured" and c.City ~= "X" then
          return false, "idContact " .. c.idContact .. " does not match: " .. why
        end
      end
      if err == nil then
        for rec in pairs(t.throughout or {}) do
          if not seen[rec.idContact] then
            return false, "idContact " .. rec.idContact .. " existed throughout and was not yielded: " .. why
          end
        end
      elseif honest then
        return false, "a server within the model made it fail: " .. tostring(err) .. ": " .. why
      end
      if honest then
        local want = 0
        for _ in pairs(t.throughout) do want = want + 1 end
        if #got ~= want then return false, #got .. " yielded of " .. want .. ": " .. why end
      end
      return true
    end))
  end)

  it("segments:each_contact yields every member that existed throughout exactly once, or ends with an error", function()
    property.check("iteration-lists", { scenarios = 3000, seconds = 6 }, bounded(function(rng)
      local used = {}
      local n = rng:pick { 0, 1, 2, 3, rng:int(1, 20), rng:int(1, 150), rng:int(100, 300) }
      local list = {}
      for i, id in ipairs(id_list(rng, n, used)) do list[i] = contact(rng, id) end
      rng:shuffle(list) -- the list's own order, kept: any order but a stable one
      local size = pick_size(rng)
      local s = fake.new { records = list, rng = rng, cap = pick_cap(rng, size, 2), total = rng:pick(TOTALS) }
      set_start(s, rng, { "honoured", "honoured", "early", "ignored" })
      local honest = s.start == "honoured" or s.start == "early"
        or (s.start == "ignored" and s.cap == math.huge and s.total ~= "random")
      local mutate
      if rng:chance(0.5) then
        honest = false
        mutate = mutator(rng, used, function(u) return contact(rng, new_id(rng, u, n)) end)
      end
      local t = tracker(function() return true end)
      s.before = function(srv, call)
        if mutate and call > 1 then mutate(srv, call) end
        t.snapshot(srv)
      end
      local got, err = drain(s:client().segments:each_contact(1, { page_size = size, max_calls = MAX_CALLS }))
      local why = ("%d members, page %d, cap %s, StartRow %s, TotalRecords %s%s, %d calls")
        :format(n, size, tostring(s.cap), s.start, s.total, mutate and ", changes between calls" or "", s.calls)
      local seen = {}
      for _, c in ipairs(got) do
        if seen[c.idContact] then return false, "idContact " .. c.idContact .. " yielded twice: " .. why end
        seen[c.idContact] = true
      end
      if err == nil then
        for rec in pairs(t.throughout or {}) do
          if not seen[rec.idContact] then
            return false, "idContact " .. rec.idContact .. " existed throughout and was not yielded: " .. why
          end
        end
      elseif honest then
        return false, "a server within the model made it fail: " .. tostring(err) .. ": " .. why
      end
      if honest and #got ~= n then return false, #got .. " yielded of " .. n .. ": " .. why end
      return true
    end))
  end)

  it("reports:opens yields every event that existed throughout, identical ones too, exactly once, or an error", function()
    property.check("iteration-events", { scenarios = 3000, seconds = 6 }, bounded(function(rng)
      -- few contacts and seconds: many events identical to another
      local distinct = rng:chance(0.3)
      local serial = 0
      local function event()
        serial = serial + 1
        return { idContact = rng:int(1, 3), idBatch = 7,
                 dtEvent = distinct and ("2024-03-01 " .. serial) or ("2024-03-01 10:00:0" .. rng:int(1, 3)) }
      end
      local n = rng:pick { 0, 1, 2, 3, rng:int(1, 20), rng:int(1, 150), rng:int(100, 300) }
      local list = {}
      for i = 1, n do list[i] = event() end
      local size = pick_size(rng)
      -- StartRow read one early cannot be seen at a boundary inside a run
      -- of identical events (docs/paging.md): only with distinct ones
      local starts = distinct and { "honoured", "early", "ignored" } or { "honoured", "honoured", "ignored" }
      local s = fake.new { records = list, rng = rng, cap = pick_cap(rng, size, 2), total = rng:pick(TOTALS) }
      set_start(s, rng, starts)
      local honest = s.start == "honoured" or s.start == "early"
        or (s.start == "ignored" and s.cap == math.huge and s.total ~= "random")
      local grows = rng:chance(0.5)
      local function key(e) return e.idContact .. "|" .. e.dtEvent end
      local before, total = {}, {}
      for _, e in ipairs(list) do before[key(e)] = (before[key(e)] or 0) + 1; total[key(e)] = before[key(e)] end
      s.before = function(srv, call)
        if grows and call > 1 and rng:chance(0.5) then -- the log grows at its end
          for _ = 1, rng:int(1, 4) do
            local e = event()
            srv.list[#srv.list + 1] = e
            total[key(e)] = (total[key(e)] or 0) + 1
          end
          honest = false
        end
      end
      local got, err = drain(s:client().reports:opens { page_size = size, max_calls = MAX_CALLS })
      local why = ("%d events%s, page %d, cap %s, StartRow %s, TotalRecords %s%s, %d calls")
        :format(n, distinct and " (distinct)" or "", size, tostring(s.cap), s.start, s.total,
          grows and ", more logged between calls" or "", s.calls)
      local times = {}
      for _, e in ipairs(got) do
        local k = key(e)
        times[k] = (times[k] or 0) + 1
        if times[k] > (total[k] or 0) then return false, "event " .. k .. " yielded more times than it exists: " .. why end
      end
      if err == nil then
        for k, c in pairs(before) do
          if (times[k] or 0) < c then
            return false, ("event %s existed %d times throughout, yielded %d: %s"):format(k, c, times[k] or 0, why)
          end
        end
      elseif honest then
        return false, "a server within the model made it fail: " .. tostring(err) .. ": " .. why
      end
      if honest and #got ~= n then return false, #got .. " yielded of " .. n .. ": " .. why end
      return true
    end))
  end)
end)
