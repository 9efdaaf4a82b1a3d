--- client.segments: the project's segments ("filters" in Dialog Insight's UI), their contacts,
-- and dynamic segments saved from a where-clause (the wire shapes are [assumed]: docs/wire.md).
-- Failures return nil, err (`dialoginsight.errors`); opts take timeout, retries and deadline as `client:call`'s.
-- @classmod dialoginsight.resources.segments
local base = require "dialoginsight.resources.base"
local pager = require "dialoginsight.resources.pager"
local fields = require "dialoginsight.records.fields"

local Segments = base.class()
local check_id = base.check_id

local CALL = base.CALL
local EACH = base.set(pager.OPTIONS, base.STRICT, base.CALL)
local SAVE = base.set(base.STRICT, base.CALL)

--- The project's segments, a list of { idSegment =, Name =, isDynamic =, ContactCount = }, or nil, err.
function Segments:list(opts)
  base.check(opts, CALL, "segments:list")
  return base.result(self.client, "segments", "List", {}, opts)
end

--- Iterates over a segment's contacts (friendly names), paging as needed.
-- A failure raises the error object.
-- @tparam integer id idSegment
-- @tparam[opt] table opts page_size, limit, max_calls, and timeout, retries, deadline: as `client:call`'s
-- @return an iterator of contacts
function Segments:each_contact(id, opts)
  base.check(opts, EACH, "segments:each_contact")
  check_id(id, "segment id")
  return pager.each(self.client, "segments", "GetContacts", { idSegment = id }, opts,
    fields.from_wire)
end

--- A segment's contacts as a list (opts.limit caps it), or nil, err.
-- @tparam integer id idSegment
-- @tparam[opt] table opts as `each_contact`'s
function Segments:contacts(id, opts)
  base.check(opts, EACH, "segments:contacts")
  check_id(id, "segment id")
  return pager.collect(self:each_contact(id, opts))
end

--- Creates (no id) or updates (id) a dynamic segment; returns its id.
-- @tparam table seg { id =, name =, where = }
-- @tparam[opt] table opts strict, and timeout, retries, deadline: as `client:call`'s
-- @treturn[1] integer idSegment
-- @usage client.segments:save{ name = "Big spenders", where = di.where.gt("Points", 100) }
function Segments:save(seg, opts)
  base.check(opts, SAVE, "segments:save")
  if type(seg) ~= "table" then error("dialoginsight: save expects a table", 2) end
  if seg.id ~= nil then check_id(seg.id, "id") end
  local problems = {}
  if seg.id == nil and (type(seg.name) ~= "string" or seg.name == "") then
    problems[#problems + 1] = { field = "name", message = "is required to create a segment" }
  end
  if seg.where == nil then
    problems[#problems + 1] = { field = "where", message = "is required: which contacts belong" }
  end
  if #problems > 0 then return nil, fields.invalid(problems, "segments", "Merge") end
  local clause, err = base.clause(self.client, seg.where, opts, "segments", "Merge")
  if not clause then return nil, err end
  return base.result(self.client, "segments", "Merge",
    { Segment = { idSegment = seg.id, Name = seg.name, Clause = clause } }, opts)
end

return Segments
