--- client.projects: the projects a key may use, and the project's fields (cached: validation reads them before each write).
-- Failures return nil, err (`dialoginsight.errors`); opts take timeout, retries and deadline as `client:call`'s.
-- @classmod dialoginsight.resources.projects
local base = require "dialoginsight.resources.base"
local fields = require "dialoginsight.records.fields"

local Projects = base.class()

local CALL = base.CALL
local FIELDS = base.set({ refresh = true }, base.CALL)

--- The projects this key may use, a list of { idProject =, ProjectName = }.
-- Also the cheapest "are my credentials valid" check.
-- @treturn[1] {table,...} the projects
function Projects:list(opts)
  base.check(opts, CALL, "projects:list")
  return base.result(self.client, "projects", "List", {}, opts)
end

--- The current project's ProjectInfo, as the server sends it.
-- @treturn[1] table ProjectInfo
function Projects:get(opts)
  base.check(opts, CALL, "projects:get")
  return base.result(self.client, "projects", "Get", {}, opts)
end

--- The project's fields, types and opt-ins, read once per client.
-- @tparam[opt] table opts refresh, and timeout, retries, deadline: as `client:call`'s
-- @treturn[1] table { key = "EMail", fields = { { name =, wire =, type =, required =, key =, label = }, ... },
--   optins = { { name =, wire =, label = }, ... } }
-- @usage client.projects:fields{ refresh = true }   -- read again
function Projects:fields(opts)
  base.check(opts, FIELDS, "projects:fields")
  if self.schema and not (opts and opts.refresh) then return self.schema end
  local info, err = self:get(base.pick(opts, CALL))
  if not info then return nil, err end
  self.schema = fields.schema(info)
  return self.schema
end

return Projects
