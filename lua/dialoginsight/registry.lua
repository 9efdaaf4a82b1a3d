--- The one registry of OFC4 services and methods: a wire correction is a line here or a
-- `methods` setting (M.new).  Entries, by the library's name ("segments.List"), hold:
-- service, method (wire names); scope "project" (adds idProject), "table" or "none";
-- idempotent (decides retries); paging (a M.PAGING name or a contract); wire (evidence:
-- "seen", "one", "doc", "assumed", docs/wire.md); result (the reply's member; missing:
-- a decode error); writes (a fact of the method, not of its wire name: no override
-- changes it, so `probe` without --writes stays safe whatever the names).
local core = require "dialoginsight.core"
local errors = require "dialoginsight.errors"
local options = require "dialoginsight.options"

local M = {}

--- Paging contracts: request and reply fields, the first row's index [assumed: 0-based],
-- the page size [assumed: no published limit], and the fields that identify a record
-- (resources/pager.lua: none comes twice).  Events have none: two opens of one contact
-- in one second are two records.
M.PAGING = {
  rows = { max = "MaxRows", start = "StartRow", first = 0, total = "TotalRecords",
           records = "Records", size = 100, key = { "idContact" } },
  events = { max = "MaxRows", start = "StartRow", first = 0, total = "TotalRecords",
             records = "Records", size = 100 },
}

local METHODS = {
  contacts = {
    Merge  = { writes = true, scope = "project", idempotent = true,  wire = "seen", result = "Records" },
    Get    = { scope = "project", idempotent = true,  wire = "seen", paging = "rows", result = "Records" },
    Delete = { writes = true, scope = "project", idempotent = true,  wire = "one", result = "DeletedRecords" },
  },
  projects = {
    List = { scope = "none",    idempotent = true, wire = "one", result = "Records" },
    Get  = { scope = "project", idempotent = true, wire = "one", result = "ProjectInfo" },
  },
  relationaltables = {
    Merge  = { writes = true, scope = "table", idempotent = true, wire = "one", result = "Records" },
    Get    = { scope = "table", idempotent = true, wire = "one", result = "Records" },
    Delete = { writes = true, scope = "table", idempotent = true, wire = "one", result = "DeletedRecords" },
  },
  sendings = {
    SendSingle  = { writes = true, scope = "project", idempotent = false, wire = "one", result = "AffectedContacts" },
    SendSingle2 = { writes = true, scope = "project", idempotent = false, wire = "one", result = "AffectedContacts" },
    SendBatch   = { writes = true, scope = "project", idempotent = false, wire = "one", result = "idBatch" },
    GetBatches  = { scope = "project", idempotent = true,  wire = "one", result = "Records" },
  },
  messages = {
    Create = { writes = true, scope = "project", idempotent = false, wire = "one", result = "idMessage" },
    Get    = { scope = "project", idempotent = true,  wire = "assumed", result = "Message" },
  },
  segments = {
    List        = { scope = "project", idempotent = true,  wire = "assumed", result = "Records" },
    GetContacts = { scope = "project", idempotent = true,  wire = "assumed", paging = "rows", result = "Records" },
    -- Merge without an idSegment creates one: a blind repeat could duplicate.
    Merge       = { writes = true, scope = "project", idempotent = false, wire = "assumed", result = "idSegment" },
  },
  campaigns = {
    Create        = { writes = true, scope = "project", idempotent = false, wire = "assumed", result = "idCampaign" },
    Trigger       = { writes = true, scope = "project", idempotent = false, wire = "assumed", result = "AffectedContacts" },
    GetStatistics = { scope = "project", idempotent = true,  wire = "assumed", result = "Statistics" },
  },
  reports = {
    GetClicks         = { scope = "project", idempotent = true, wire = "assumed", paging = "events", result = "Records" },
    GetOpens          = { scope = "project", idempotent = true, wire = "assumed", paging = "events", result = "Records" },
    GetContactHistory = { scope = "project", idempotent = true, wire = "assumed", result = "Records" },
  },
}

-- What an override may set, and the check of each value.
local SCOPES = { project = true, table = true, none = true }
local WIRE = { seen = true, one = true, doc = true, assumed = true }
local NAME = "^[%a][%w_]*$"

local function is_name(v) return type(v) == "string" and v:match(NAME) ~= nil end

local function names(list)
  local n = 0
  for _ in pairs(list) do n = n + 1 end
  for i = 1, n do if not is_name(list[i]) then return false end end
  return true
end

local function paging_ok(v)
  if v == false or M.PAGING[v] then return true end
  if type(v) ~= "table" then return false end
  for _, k in ipairs { "max", "start", "total", "records" } do
    if v[k] ~= nil and not is_name(v[k]) then return false end
  end
  return is_name(v.max) and is_name(v.start) and is_name(v.records)
    and (v.first == nil or v.first == 0 or v.first == 1)
    and (v.size == nil or (type(v.size) == "number" and v.size >= 1 and v.size == math.floor(v.size)))
    and (v.key == nil or (type(v.key) == "table" and names(v.key)))
end

local FIELDS = {
  service = { is_name, "a service name such as \"Filters\"" },
  method = { is_name, "a method name such as \"GetList\"" },
  result = { is_name, "the member of the reply that holds the result" },
  scope = { function(v) return SCOPES[v] ~= nil end, "\"project\", \"table\" or \"none\"" },
  idempotent = { function(v) return type(v) == "boolean" end, "a boolean" },
  paging = { paging_ok, "\"rows\", \"events\", false, or a contract { max, start, records, total, first, size, key }" },
  wire = { function(v) return WIRE[v] ~= nil end, "\"seen\", \"one\", \"doc\" or \"assumed\"" },
}

local MEMBERS = {}
for k in pairs(FIELDS) do MEMBERS[#MEMBERS + 1] = k end
table.sort(MEMBERS)

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local function bad(name, why)
  error("dialoginsight: setting 'methods': " .. name .. " " .. why, 0)
end

local Registry = {}
Registry.__index = Registry

-- The entries of the library, by the names it calls them.
local function defaults()
  local list = {}
  for service, methods in pairs(METHODS) do
    for method, e in pairs(methods) do
      local entry = copy(e)
      entry.name = service .. "." .. method
      entry.service, entry.method = service, method
      list[entry.name:lower()] = entry
    end
  end
  return list
end

--- A registry: the library's entries, with `overrides` applied (an unknown name or member,
-- or a bad value, raises): { ["segments.List"] = { service = "Filters", method = "GetList" } }.
function M.new(overrides)
  local by_name = defaults()
  if overrides ~= nil and type(overrides) ~= "table" then
    error("dialoginsight: setting 'methods' must be a table of service.Method = { ... }", 0)
  end
  for name, o in pairs(overrides or {}) do
    local entry = type(name) == "string" and by_name[name:lower()]
    if not entry then bad(options.field(name), "is not a method of the registry (names as in docs/wire.md, e.g. \"segments.List\")") end
    if type(o) ~= "table" then bad(options.field(name), "must be a table of the members to change") end
    for k, v in pairs(o) do
      local f = FIELDS[k]
      if not f then
        local guess = type(k) == "string" and errors.closest(k, MEMBERS)
        bad(options.field(name), "has no member " .. options.shown(k) .. (guess and (" (did you mean '" .. guess .. "'?)") or "")
          .. "; its members: " .. table.concat(MEMBERS, ", "))
      end
      if not f[1](v) then bad(options.field(name) .. "." .. k, "must be " .. f[2]) end
      entry[k] = v
    end
    entry.overridden = true
  end
  return setmetatable({ by_name = by_name }, Registry)
end

--- The largest methods_file read, in bytes: the overrides are a few kilobytes.
M.MAX_METHODS_FILE = 1048576

local function bad_file(why)
  error("dialoginsight: setting 'methods_file' " .. why, 0)
end

--- The overrides of methods_file (a JSON object shaped as `methods`), or raises naming the setting.
function M.read(path)
  if type(path) ~= "string" then bad_file("must be a path") end
  local text, why = core.read_file(path, M.MAX_METHODS_FILE)
  if not text then
    bad_file("names a file that cannot be read (" .. tostring(why) .. ")"
      .. (why:find("^larger") and "; it holds JSON overrides of a few kilobytes" or ""))
  end
  local t, err = core.decode(text)
  if t == nil then
    bad_file("is not JSON (" .. tostring(err) .. "); it must be an object of service.Method overrides")
  elseif type(t) ~= "table" or t[1] ~= nil then
    local what = t == core.null and "null" or type(t) == "table" and "an array" or "a " .. type(t)
    bad_file("holds JSON " .. what
      .. ", not an object of service.Method overrides such as {\"segments.List\": {\"service\": \"Filters\"}}")
  end
  return t
end

--- The registry of the settings: methods_file's overrides, then `methods`' over them.
function M.of_settings(methods, methods_file)
  if methods_file == nil then return M.new(methods) end
  local t = M.read(methods_file)
  if methods ~= nil and type(methods) ~= "table" then return M.new(methods) end -- says why
  for k, v in pairs(methods or {}) do t[k] = v end
  return M.new(t)
end

--- The entry of service.method (case-insensitive, as the server), or nil when the method
-- is not wrapped (client:call still sends it).
function Registry:lookup(service, method)
  return self.by_name[service:lower() .. "." .. method:lower()]
end

--- The paging contract of an entry, or nil when it does not page.
function Registry.paging(entry)
  local p = entry.paging
  if type(p) == "table" then return p end
  return p and M.PAGING[p] or nil
end

--- An unregistered method: project scope, not idempotent (a retry could repeat a side effect).
function M.unknown(service, method)
  return { name = service .. "." .. method, service = service, method = method,
           scope = "project", idempotent = false, writes = true, wire = "unknown" }
end

--- Iterates over every entry, sorted by name, for docs, probe and tests.
function Registry:each()
  local list = {}
  for _, entry in pairs(self.by_name) do list[#list + 1] = entry end
  table.sort(list, function(a, b) return a.name < b.name end)
  local i = 0
  return function() i = i + 1; return list[i] end
end

Registry.unknown = M.unknown

--- The library's own registry, without overrides.
M.default = M.new()

--- Compatibility with callers of the module itself: the default registry.
function M.lookup(service, method) return M.default:lookup(service, method) end
function M.each() return M.default:each() end

return M
