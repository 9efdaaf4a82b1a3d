-- The first call: merge two contacts, read one back, list the projects.
-- Run with `make demo`, or against your own account:
--   DI_KEY_ID=... DI_KEY=... DI_PROJECT=... lua5.4 examples/quickstart.lua
local di = require "dialoginsight"

local client = di.new() -- DI_KEY_ID, DI_KEY, DI_PROJECT, DI_BASE_URL, DI_CA_FILE
print(client)

local projects = assert(client:call("projects", "List", {}))
for _, p in ipairs(projects.Records) do
  print(("project %d: %s"):format(p.idProject, p.ProjectName))
end

local merged, err = client:call("contacts", "Merge", {
  Records = {
    { ID = { key_f_EMail = "ann@example.com" },
      Data = { f_FirstName = "Ann", f_City = "Montréal", optin_Newsletter = true } },
    { ID = { key_f_EMail = "bob@example.com" },
      Data = { f_FirstName = "Bob", f_City = "Lyon" } },
  },
  MergeOptions = { AllowInsert = true, AllowUpdate = true },
})
if not merged then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
for _, rec in ipairs(merged.Records) do
  print(("%s contact %d (%s)"):format(rec.Status, rec.IdRecord, rec.ValidationResult))
end

local found = assert(client:call("contacts", "Get", {
  Clause = { ["$type"] = "FieldClause", Field = { Name = "f_EMail" },
             TypeOperator = "Equal", ComparisonValue = "ann@example.com" },
}))
local ann = found.Records[1]
print(("found %s %s in %s, idContact %d"):format(ann.f_FirstName, ann.f_EMail, ann.f_City, ann.idContact))
