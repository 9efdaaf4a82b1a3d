-- The first calls, with the friendly API: list the projects, merge two
-- contacts by their field names, read one back.
-- `make demo` runs it in plain Lua 5.4 against the sandbox (scripts/demo).
-- Against your own account, from the checkout:
--   DI_KEY_ID=... DI_KEY=... DI_PROJECT=... \
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/lua5.4/?.so;;" lua5.4 examples/quickstart.lua [--demo]
-- or `bin/dialoginsight run examples/quickstart.lua [--demo]`, which needs no LUA_PATH.
-- The two contacts (ann@ and bob@example.com) are demo data: they are
-- merged against the sandbox (client:is_sandbox()), and on another account
-- only with --demo; without it the quickstart only reads.
local di = require "dialoginsight"

local client = di.new() -- DI_KEY_ID, DI_KEY, DI_PROJECT, DI_BASE_URL, DI_CA_FILE
print(client)

for _, p in ipairs(assert(client.projects:list())) do
  print(("project %d: %s"):format(p.idProject, p.ProjectName))
end

if (arg and arg[1]) ~= "--demo" and not client:is_sandbox() then
  print("not the sandbox: nothing written (--demo merges ann@example.com and bob@example.com)")
  os.exit(0)
end

local people = {
  { EMail = "ann@example.com", FirstName = "Ann", City = "Montréal", optin = { Newsletter = true } },
  { EMail = "bob@example.com", FirstName = "Bob", City = "Lyon" },
}
for _, person in ipairs(people) do
  local r, err = client.contacts:merge(person)
  if not r then
    io.stderr:write("merge failed: ", tostring(err), "\n")
    os.exit(1)
  end
  print(("%s %s (idContact %s)"):format(r.outcome, person.EMail, tostring(r.id)))
end

local ann, err = client.contacts:find { EMail = "ann@example.com" }
if not ann then
  io.stderr:write("find failed: ", tostring(err or "no such contact"), "\n")
  os.exit(1)
end
print(("found %s %s in %s, idContact %d, Newsletter opt-in: %s"):format(ann.FirstName, ann.EMail,
  ann.City, ann.idContact, tostring(ann.optin and ann.optin.Newsletter)))
