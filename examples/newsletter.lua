-- newsletter.lua: a form submission subscribes a contact to the newsletter,
-- or updates the contact when the address is already known.
--
--   dialoginsight run examples/newsletter.lua [EMAIL [FIRST_NAME]]
--
-- In a web application, `form` is the posted form; here it comes from the
-- command line.  `client` is ready-made by the host from DI_* or --config.
-- Without an EMAIL it subscribes a demo address, against the sandbox only
-- (client:is_sandbox()): on another account it writes only what you name.
if not arg[1] and not client:is_sandbox() then
  io.stderr:write("newsletter.lua: this is not the sandbox: name the address to subscribe:\n",
    "  dialoginsight run examples/newsletter.lua EMAIL [FIRST_NAME]\n")
  return 64
end
local form = {
  email = arg[1] or "newsletter.reader@example.com",
  first_name = arg[2] or "Reader",
}

local r, err = client.contacts:merge {
  EMail = form.email,
  FirstName = form.first_name,
  optin = { Newsletter = true },   -- sent as optin_Newsletter
}
if not r then
  -- a validation error names the field; anything else is the service's answer
  io.stderr:write("subscription failed: ", tostring(err), "\n")
  return 1
end
print(string.format("%s: %s (idContact %s), subscribed to the newsletter",
  form.email, r.outcome, tostring(r.id)))

-- read it back, as the confirmation page would
local c = assert(client.contacts:find { EMail = form.email })
print(string.format("  %s, Newsletter opt-in: %s", c.FirstName, tostring(c.optin.Newsletter)))
