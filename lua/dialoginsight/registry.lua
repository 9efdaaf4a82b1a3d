--- The one registry of OFC4 services and methods.
--
-- Every fact the client needs about a method lives in this table, so that a
-- correction of the wire format is a one-line change:
--   scope      "project" (adds idProject), "table" (idTable, no idProject)
--              or "none" (AuthKey alone)
--   idempotent whether a repeat is harmless, which decides retries
--   paging     "rows" when the method takes MaxRows/StartRow and answers
--              TotalRecords
--   wire       how sure we are of the shape, as marked in API.md:
--              "seen", "one" or "assumed"
local M = {}

local methods = {
  contacts = {
    Merge  = { scope = "project", idempotent = true,  wire = "seen" },
    Get    = { scope = "project", idempotent = true,  wire = "seen", paging = "rows" },
    Delete = { scope = "project", idempotent = true,  wire = "one" },
  },
  projects = {
    List = { scope = "none",    idempotent = true, wire = "one" },
    Get  = { scope = "project", idempotent = true, wire = "one" },
  },
  relationaltables = {
    Merge  = { scope = "table", idempotent = true, wire = "one" },
    Get    = { scope = "table", idempotent = true, wire = "one" },
    Delete = { scope = "table", idempotent = true, wire = "one" },
  },
  sendings = {
    SendSingle  = { scope = "project", idempotent = false, wire = "one" },
    SendSingle2 = { scope = "project", idempotent = false, wire = "one" },
    SendBatch   = { scope = "project", idempotent = false, wire = "one" },
    GetBatches  = { scope = "project", idempotent = true,  wire = "one" },
  },
  messages = {
    Create = { scope = "project", idempotent = false, wire = "one" },
    Get    = { scope = "project", idempotent = true,  wire = "assumed" },
  },
  segments = {
    List        = { scope = "project", idempotent = true,  wire = "assumed" },
    GetContacts = { scope = "project", idempotent = true,  wire = "assumed", paging = "rows" },
    -- Merge without an idSegment creates one: a blind repeat could duplicate.
    Merge       = { scope = "project", idempotent = false, wire = "assumed" },
  },
  campaigns = {
    Create        = { scope = "project", idempotent = false, wire = "assumed" },
    Trigger       = { scope = "project", idempotent = false, wire = "assumed" },
    GetStatistics = { scope = "project", idempotent = true,  wire = "assumed" },
  },
  reports = {
    GetClicks         = { scope = "project", idempotent = true, wire = "assumed", paging = "rows" },
    GetOpens          = { scope = "project", idempotent = true, wire = "assumed", paging = "rows" },
    GetContactHistory = { scope = "project", idempotent = true, wire = "assumed" },
  },
}

-- The server is IIS and matches names case-insensitively; so do we, and we
-- always send the canonical spelling.
local by_lower = {}
for service, list in pairs(methods) do
  for method, entry in pairs(list) do
    entry.service, entry.method = service, method
    by_lower[service:lower() .. "." .. method:lower()] = entry
  end
end

--- Returns the registry entry of service.method, or nil when the method is
-- not wrapped (it can still be called: see client:call).
function M.lookup(service, method)
  return by_lower[service:lower() .. "." .. method:lower()]
end

--- What is assumed of a method nobody registered: project scope, and not
-- idempotent, since retrying an unknown call could repeat a side effect.
function M.unknown(service, method)
  return { service = service, method = method, scope = "project",
           idempotent = false, wire = "unknown" }
end

--- Iterates over every entry, for docs and tests.
function M.each()
  local list = {}
  for _, entry in pairs(by_lower) do list[#list + 1] = entry end
  table.sort(list, function(a, b)
    return a.service .. a.method < b.service .. b.method
  end)
  local i = 0
  return function() i = i + 1; return list[i] end
end

return M
