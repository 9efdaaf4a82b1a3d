-- crm_sync.lua: records changed in the CRM since the last run update the
-- contacts' profiles, in batches.
--
--   dialoginsight run examples/crm_sync.lua [--demo]
--
-- A real job reads the CRM's changes (an API, a database query); here they
-- are a list of sample contacts (crm.*@example.com), merged against the
-- sandbox (client:is_sandbox()), and on another account only with --demo.
-- For a CSV export, `dialoginsight sync contacts FILE.csv` does the same
-- with a journal, --resume and a rejects file.
if arg[1] ~= "--demo" and not client:is_sandbox() then
  io.stderr:write("crm_sync.lua: this is not the sandbox; to merge its four sample contacts\n",
    "(crm.*@example.com) into this account, say so:\n",
    "  dialoginsight run examples/crm_sync.lua --demo\n")
  return 64
end
local changed = {
  { EMail = "crm.alice@example.com", FirstName = "Alice", LastName = "Martin", City = "Lyon", Points = 120 },
  { EMail = "crm.bruno@example.com", FirstName = "Bruno", City = "Montréal", BirthDate = "1980-05-17" },
  { EMail = "crm.chen@example.com", FirstName = "Chen", Points = 30, optin = { Promotions = true } },
  { EMail = "crm.dana@example.com", FirstName = "Dana", Points = "a lot" },   -- a CRM data error
}

local s, err = client.contacts:merge_many(changed, { batch_size = 100 })
if not s then
  io.stderr:write("sync failed: ", tostring(err), "\n")
  return 1
end
print(string.format("CRM sync: %d created, %d updated, %d rejected, %d failed",
  s.created, s.updated, s.rejected, s.failed))
for i, o in ipairs(s.records) do
  if o.outcome == "rejected" or o.outcome == "failed" then
    -- bad CRM data is reported, not sent: fix it at the source
    print(string.format("  %s: %s: %s", changed[i].EMail, o.outcome, o.reason))
  end
end
-- the job succeeded even with a rejected record; a failed call is an error
return s.failed == 0 and 0 or 1
