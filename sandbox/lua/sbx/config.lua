-- The sandbox's switches (POST /_sandbox/config), back to their defaults on
-- every reset: a BOM before every reply, and two ways Contacts.Get can
-- differ from the sandbox's own choice, which API.md leaves open
-- ([assumed]): whether it gives TotalRecords, and the order of its records.
-- The client must cope with either; the specs turn them on to show it.
local M = { ORDERS = { idContact = true, email = true } }

function M.reset()
  M.bom = false
  M.total_records = true
  M.contacts_order = "idContact"
end

M.reset()

return M
