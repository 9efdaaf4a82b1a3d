-- The Iteration promise (SECURITY.md) on the real path: contacts:all against
-- the sandbox in a mode drawn at random (order, paging, TotalRecords), while
-- a second client deletes and adds contacts between the calls of the
-- iteration (from the first client's on_call hook).  Every contact that
-- existed throughout is yielded once, or the iteration ends with an error;
-- and without changes it never ends with one.  The fake server of
-- spec/client/iteration_property_spec.lua draws thousands of scenarios; this
-- runs a few, end to end.
local property = require "support.property"
local sbx = require "support.sandbox"
local raised = require "support.raised"
local H = require "client.resources.common"

local function config(t) sbx.control("POST", "config", t) end

describe("the Iteration promise against the sandbox #property", function()
  after_each(function() sbx.reset() end)

  it("contacts:all yields every contact that existed throughout once, or ends with an error", function()
    property.check("iteration-sandbox", { scenarios = 25, seconds = 20 }, function(rng)
      local n = rng:pick { 0, rng:int(1, 40), rng:int(40, 250) }
      sbx.reset { contacts = n }
      local total = n + 12 -- the seeded contacts: ids 1..total
      local mode = { contacts_order = rng:pick { "idContact", "email", "descending" },
                     total_records = rng:pick { true, false, "page" } }
      local paging = rng:pick { "honoured", "fixed", "ignored" }
      mode.paging = paging
      if paging == "fixed" then mode.page_size = rng:int(2, 60) end
      config(mode)
      local size = rng:pick { 2, 7, 40, 100 }
      local other = H.client()
      local alive, gone, next_email = {}, {}, 0
      for id = 1, total do alive[#alive + 1] = id end
      local changes = rng:chance(0.6) and rng:float() * 0.7 or 0
      local changed = false
      local c = H.client()
      local calls = 0
      c.on_call = function(ev)
        if ev.method == "Get" then calls = calls + 1 end
        if ev.method ~= "Get" or not rng:chance(changes) then return end
        changed = true
        for _ = 1, rng:int(1, 4) do
          if #alive > 0 and rng:chance(0.5) then
            local id = table.remove(alive, rng:int(1, #alive))
            gone[id] = true
            assert(other:call("contacts", "Delete", { Clause = { ["$type"] = "FieldClause",
              Field = { Name = "idContact" }, TypeOperator = "Equal", ComparisonValue = id } }))
          else
            next_email = next_email + 1
            assert(other.contacts:merge { EMail = ("added%d@example.com"):format(next_email) })
          end
        end
      end
      local seen, got, twice = {}, 0, nil
      -- (max_calls: an iteration that chases records added meanwhile must
      -- fail here, not hang the suite)
      local iter, state = c.contacts:all { page_size = size, max_calls = 5000 }
      local err = raised.failure(state, function()
        for rec in iter do
          if seen[rec.idContact] then twice = rec.idContact; return end
          seen[rec.idContact], got = true, got + 1
        end
      end)
      if twice then return false, "idContact " .. twice .. " yielded twice" end
      local why = ("%d contacts, page %d, order %s, paging %s%s, TotalRecords %s%s, %d calls"):format(total, size,
        mode.contacts_order, paging, mode.page_size and (" " .. mode.page_size) or "", tostring(mode.total_records),
        changed and ", changes between calls" or "", calls)
      -- liveness: the calls stay proportional to the pages, changes or not
      local page = math.min(size, mode.page_size or size)
      if calls > 6 * math.ceil((total + next_email) / page) + 30 then return false, "too many calls: " .. why end
      if err then
        if not changed then return false, "failed without any change: " .. tostring(err) .. ": " .. why end
        return true
      end
      for id = 1, total do
        if not gone[id] and not seen[id] then
          return false, "idContact " .. id .. " existed throughout and was not yielded: " .. why
        end
      end
      if not changed and got ~= total then return false, got .. " yielded of " .. total .. ": " .. why end
      return true
    end)
  end)
end)
