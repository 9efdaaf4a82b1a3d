--- client.projects: the projects a key may use, and the current project's
-- fields (cached per client, since validation reads them before each write).
local base = require "dialoginsight.resources.base"
local fields = require "dialoginsight.records.fields"

local Projects = base.class()

--- The projects this key may use: { { idProject =, ProjectName = }, ... }.
-- Also the cheapest "are my credentials valid" check.
function Projects:list(opts)
  base.check_opts(opts, "projects:list")
  return base.result(self.client, "projects", "List", {}, opts)
end

--- The current project's ProjectInfo, as the server sends it.
function Projects:get(opts)
  base.check_opts(opts, "projects:get")
  return base.result(self.client, "projects", "Get", {}, opts)
end

--- The project's fields, types and opt-ins:
--   { key = "EMail",
--     fields = { { name =, wire =, type =, required =, key =, label = }, ... },
--     optins = { { name =, wire =, label = }, ... } }
-- Read once per client; opts.refresh = true reads it again.
function Projects:fields(opts)
  base.check_opts(opts, "projects:fields")
  if self.schema and not (opts and opts.refresh) then return self.schema end
  local info, err = self:get(opts and { timeout = opts.timeout, retries = opts.retries,
                                         deadline = opts.deadline })
  if not info then return nil, err end
  self.schema = fields.schema(info)
  return self.schema
end

return Projects
