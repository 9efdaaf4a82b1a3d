-- abandoned_cart_send.lua: the second way to remind a shopper of a cart:
-- the shop sends the reminder message itself, to one contact, with the
-- cart's items as message parameters (Sendings.SendSingle2 and its
-- MessageParameterValues [one; parameters seen in three integrations],
-- docs/wire.md).  The first way, the platform's own automated campaign fed
-- by the e-commerce tables, is examples/abandoned_cart.lua.
--
--   dialoginsight run examples/abandoned_cart_send.lua [--demo] [EMAIL [MESSAGE_ID]]
--
-- The message uses the parameters as [[cart_items]], [[cart_total]] and
-- [[cart_size]].  Its id: the argument, else DI_CART_MESSAGE, else, against
-- the sandbox only, its "Abandoned cart reminder" (message 3).
--
-- No surprise sends: against the sandbox (client:is_sandbox()) the example
-- makes its demo shopper itself.  Against any other account it sends only
-- when told: --demo, the shopper's EMAIL (an existing contact) and the
-- MESSAGE_ID.  A send is never retried once it may have reached the server.
local SANDBOX_MESSAGE = 3 -- sandbox/README.md, "Seeded state"

local demo, pos = false, {}
for _, a in ipairs(arg) do
  if a == "--demo" then demo = true else pos[#pos + 1] = a end
end

local sandbox = client:is_sandbox()
local message = pos[2] or os.getenv("DI_CART_MESSAGE")
message = message and message ~= "" and assert(math.tointeger(tonumber(message)), "MESSAGE_ID is an idMessage")
  or (sandbox and SANDBOX_MESSAGE or nil)
if not sandbox and not (demo and pos[1] and message) then
  io.stderr:write("abandoned_cart_send.lua: this is not the sandbox, and the example would e-mail\n",
    "the shopper a sample cart. To do that, name them all:\n",
    "  dialoginsight run examples/abandoned_cart_send.lua --demo EMAIL MESSAGE_ID\n")
  return 64
end
local email = pos[1] or "shopper@example.com"

local shopper = client.contacts:find { EMail = email }
if not shopper and sandbox then
  assert(client.contacts:merge { EMail = email, FirstName = "Shopper" })
  shopper = client.contacts:find { EMail = email }
end
if not shopper then
  io.stderr:write("abandoned_cart_send.lua: no contact has the e-mail ", email, "\n")
  return 1
end

local cart = {
  { name = "Green tea", qty = 2, price = 8.50 },
  { name = "Blue mug", qty = 1, price = 14.00 },
}
local items, total = {}, 0
for _, it in ipairs(cart) do
  items[#items + 1] = string.format("%d x %s", it.qty, it.name)
  total = total + it.qty * it.price
end
local n, err = client.sendings:send(message, shopper.idContact, {
  params = { cart_items = table.concat(items, ", "), cart_total = string.format("%.2f $", total),
             cart_size = #cart },
})
if not n then
  -- err.outcome == "unknown": the server may have sent it; check before sending again
  io.stderr:write("abandoned_cart_send.lua: the send failed: ", tostring(err), "\n")
  return 1
end
print(string.format("message %d sent to %s (%d contact): %s, total %.2f $",
  message, email, n, table.concat(items, ", "), total))
