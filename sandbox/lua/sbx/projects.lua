-- projects.ashx: List / Get, and segments.ashx: List / GetContacts / Merge.
local json = require "sbx.json"
local util = require "sbx.util"
local clause = require "sbx.clause"
local contacts = require "sbx.contacts"
local mail = require "sbx.mail"

local obj, isnull = json.obj, json.isnull
local norm, int = util.norm, util.int

local M = {}

local function S() return require("sbx.state").S end

function M.list(ctx, req)
  local ids = {}
  for id in pairs(ctx.key.projects) do if S().projects[id] then ids[#ids + 1] = id end end
  table.sort(ids)
  local recs = {}
  for i, id in ipairs(ids) do
    recs[i] = obj { "idProject", id, "ProjectName", S().projects[id].name }
  end
  return { "Records", recs }
end

local function labels(v) return { obj { "Value", v } } end

function M.get(ctx, req, P)
  local pf, of = {}, {}
  for i, f in ipairs(P.fields) do
    pf[i] = obj { "Code", f.code, "DataType", f.dtype, "Labels", labels(f.label), "isRequired", f.required,
      "isKey", f.key }
  end
  for i, o in ipairs(P.optins) do
    of[i] = obj { "Code", o.code, "Labels", labels(o.label) }
  end
  return { "ProjectInfo", obj { "idProject", P.id, "ProjectName", P.name, "ProjectFields", pf, "OptinFields", of } }
end

-- Segments ---------------------------------------------------------------------

function M.segments_list(ctx, req, P)
  local recs = {}
  for _, id in ipairs(P.segOrder) do
    local s = P.segments[id]
    local members = mail.segment_members(P, s)
    recs[#recs + 1] = obj { "idSegment", id, "Name", s.name, "isDynamic", s.dynamic, "ContactCount", #members }
  end
  return { "Records", recs }
end

function M.segments_contacts(ctx, req, P)
  local id = int(req.idsegment)
  if not id then return nil, "InvalidParameter", "idSegment is required (integer)" end
  local s = P.segments[id]
  if not s then return nil, "InvalidParameter", "Unknown idSegment " .. id end
  local start, max = contacts.paging(req)
  if not start then return nil, "InvalidParameter", max end
  local members, err = mail.segment_members(P, s)
  if not members then return nil, "InvalidParameter", err end
  return contacts.paged(contacts.page_of(P.layout, members, start, max))
end

function M.segments_merge(ctx, req, P)
  local s = norm(req.segment)
  if not s then return nil, "InvalidParameter", "Segment is required" end
  local ok, err = clause.compile(s.clause, P.ckeys)
  if not ok then return nil, "InvalidParameter", "Segment.Clause: " .. err end
  local st = S()
  if not isnull(s.idsegment) then
    local id = int(s.idsegment)
    local seg = id and P.segments[id]
    if not seg then return nil, "InvalidParameter", "Unknown idSegment " .. tostring(s.idsegment) end
    if type(s.name) == "string" and s.name ~= "" then seg.name = s.name end
    seg.clause, seg.dynamic, seg.members = s.clause, true, nil
    return { "idSegment", id, "Created", false }
  end
  if type(s.name) ~= "string" or s.name == "" then return nil, "InvalidParameter", "Segment.Name is required" end
  local id = st.nextSegment
  st.nextSegment = id + 1
  P.segments[id] = { id = id, name = s.name, clause = s.clause, dynamic = true }
  P.segOrder[#P.segOrder + 1] = id
  return { "idSegment", id, "Created", true }
end

return M
