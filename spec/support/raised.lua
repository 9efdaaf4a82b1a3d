--- Test support: the failure an iterator raised, as the library raises it
-- (errors.raise: the error object; its text under PUC-Rio Lua 5.1, where
-- the object stays in the iterator's state, `failed`).
local M = {}

M.PUC51 = _VERSION == "Lua 5.1" and not rawget(_G, "jit")

--- What the library raises for err on this runtime.
function M.form(err)
  if M.PUC51 then return tostring(err) end
  return err
end

--- Runs fn (a loop over the iterator whose state is given, or its first
-- step) under pcall: nil when it did not raise, else the error object the
-- iteration failed on, checked to be what was raised.  Anything else raised
-- (the caller's own error) is raised again.
function M.failure(state, fn)
  local ok, raised = pcall(fn)
  if ok then
    assert(state.failed == nil, "an iteration that did not raise holds an error")
    return nil
  end
  local err = state.failed
  if err == nil then error(raised, 0) end
  assert(raised == M.form(err), "the failure raised is not the error object (" .. tostring(raised) .. ")")
  return err
end

return M
