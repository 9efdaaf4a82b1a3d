--- The one registry of OFC4 services and methods.
--
-- Every fact the client needs about a method lives in this table, so that a
-- correction of the wire format is a one-line change:
--   scope      "project" (adds idProject), "table" (idTable, no idProject)
--              or "none" (AuthKey alone)
--   idempotent whether a repeat is harmless, which decides retries
--   paging     "rows" when the method takes MaxRows/StartRow and answers
--              TotalRecords
--   wire       how sure we are of the shape, as marked in docs/wire.md:
--              "seen", "one" or "assumed"
--   result     the member of the reply that holds what the method returns
--              (resources read it; a missing member is a decode error)
local M = {}

--- Paging contracts, by the name in an entry's `paging`: the request fields
-- that ask for a page, the reply fields that carry it, the index of the
-- first row [assumed: 0-based], and the page size resources ask for
-- [assumed: no published limit].
M.PAGING = {
  rows = { max = "MaxRows", start = "StartRow", first = 0,
           total = "TotalRecords", records = "Records", size = 100 },
}

local methods = {
  contacts = {
    Merge  = { scope = "project", idempotent = true,  wire = "seen", result = "Records" },
    Get    = { scope = "project", idempotent = true,  wire = "seen", paging = "rows", result = "Records" },
    Delete = { scope = "project", idempotent = true,  wire = "one", result = "DeletedRecords" },
  },
  projects = {
    List = { scope = "none",    idempotent = true, wire = "one", result = "Records" },
    Get  = { scope = "project", idempotent = true, wire = "one", result = "ProjectInfo" },
  },
  relationaltables = {
    Merge  = { scope = "table", idempotent = true, wire = "one", result = "Records" },
    Get    = { scope = "table", idempotent = true, wire = "one", result = "Records" },
    Delete = { scope = "table", idempotent = true, wire = "one", result = "DeletedRecords" },
  },
  sendings = {
    SendSingle  = { scope = "project", idempotent = false, wire = "one", result = "AffectedContacts" },
    SendSingle2 = { scope = "project", idempotent = false, wire = "one", result = "AffectedContacts" },
    SendBatch   = { scope = "project", idempotent = false, wire = "one", result = "idBatch" },
    GetBatches  = { scope = "project", idempotent = true,  wire = "one", result = "Records" },
  },
  messages = {
    Create = { scope = "project", idempotent = false, wire = "one", result = "idMessage" },
    Get    = { scope = "project", idempotent = true,  wire = "assumed", result = "Message" },
  },
  segments = {
    List        = { scope = "project", idempotent = true,  wire = "assumed", result = "Records" },
    GetContacts = { scope = "project", idempotent = true,  wire = "assumed", paging = "rows", result = "Records" },
    -- Merge without an idSegment creates one: a blind repeat could duplicate.
    Merge       = { scope = "project", idempotent = false, wire = "assumed", result = "idSegment" },
  },
  campaigns = {
    Create        = { scope = "project", idempotent = false, wire = "assumed", result = "idCampaign" },
    Trigger       = { scope = "project", idempotent = false, wire = "assumed", result = "AffectedContacts" },
    GetStatistics = { scope = "project", idempotent = true,  wire = "assumed", result = "Statistics" },
  },
  reports = {
    GetClicks         = { scope = "project", idempotent = true, wire = "assumed", paging = "rows", result = "Records" },
    GetOpens          = { scope = "project", idempotent = true, wire = "assumed", paging = "rows", result = "Records" },
    GetContactHistory = { scope = "project", idempotent = true, wire = "assumed", result = "Records" },
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
