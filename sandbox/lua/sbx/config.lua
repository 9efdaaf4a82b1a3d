-- The sandbox's switches (POST /_sandbox/config), back to their defaults on
-- every reset.  Besides a BOM before every reply, each switch is one answer
-- to a question docs/wire.md leaves open ([assumed]): the sandbox's own
-- choice by default, and the other plausible answers on demand, so that the
-- client's specs can show that it copes with each (sandbox/README.md,
-- "Modes for the open questions"; spec/client/resources/modes_spec.lua).
local M = {
  ORDERS = { idContact = true, email = true, descending = true },
  TOTALS = { [true] = true, [false] = true, page = true },
  CLAUSES = { honoured = true, ignored = true },
  PAGING = { honoured = true, ignored = true, fixed = true },
  LIMITS = { ["429"] = true, auth = true },
  STATUSES = { "Created", "Updated", "Skipped" },
}

-- What the call limit says in the "auth" style: the words of the help
-- article on the per-key call limit (docs/wire.md, "Limits").
M.LIMIT_MESSAGE = "Authentication failed: the number of calls allowed has been exceeded."

function M.reset()
  M.bom = false
  M.total_records = true              -- paged replies carry TotalRecords: true | false | "page" (the reply's count)
  M.contacts_order = "idContact"      -- Contacts.Get's order: idContact | email | descending (idContact)
  M.clause = "honoured"               -- Contacts.Get's Clause: honoured | ignored (every contact)
  M.paging = "honoured"               -- MaxRows/StartRow: honoured | ignored | fixed
  M.page_size = 50                    -- the page of paging = "fixed", whatever MaxRows says
  M.limit = "429"                     -- the call limit: 429 + Retry-After | auth (an authentication error)
  M.limit_status = 200                -- the HTTP status of the "auth" style
  M.limit_code = "InvalidAuthKey"     -- its ErrorCode; false: none (null)
  M.merge_statuses = { Created = "Created", Updated = "Updated", Skipped = "Skipped" }
  M.identify = true                   -- sandbox.ashx?method=Identify answers (else 404 as elsewhere)
end

-- The Status a Merge record gets for the sandbox's own name of it.
function M.status(name)
  return M.merge_statuses[name] or name
end

M.reset()

return M
