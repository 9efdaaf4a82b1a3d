-- abandoned_cart.lua: a shopper left items in the cart; an automated
-- campaign sends the reminder, with the cart's items as message parameters.
--
--   dialoginsight run examples/abandoned_cart.lua [EMAIL]
--
-- The message and the automated campaign are made once (in the platform's
-- UI, or as here through the API); the shop then only triggers the campaign.
local email = arg[1] or "shopper@example.com"
local cart = {
  { sku = "TEA-01", name = "Green tea", qty = 2, price = 8.50 },
  { sku = "MUG-07", name = "Blue mug", qty = 1, price = 14.00 },
}

local msg = assert(client.messages:create {
  name = "Abandoned cart reminder", subject = "You left something in your cart",
  sender_email = "shop@example.com", sender_name = "The shop",
  html = "<p>Hello [[FirstName]], your cart: [[cart_items]] ([[cart_total]])</p>",
})
local campaign = assert(client.campaigns:create {
  name = "Abandoned cart", message = msg, channel = "Email", automated = true,
})

-- the shopper must be a contact; merging is an upsert, so this is harmless
assert(client.contacts:merge { EMail = email, FirstName = "Shopper" })

local items, total = {}, 0
for _, it in ipairs(cart) do
  items[#items + 1] = string.format("%d x %s", it.qty, it.name)
  total = total + it.qty * it.price
end
local n, err = client.campaigns:trigger(campaign, {
  contact = { EMail = email },
  params = { cart_items = table.concat(items, ", "), cart_total = string.format("%.2f $", total),
             cart_size = #cart },
})
if not n then
  -- a trigger is never retried once it may have reached the server
  -- (err.outcome == "unknown"): check before triggering again
  io.stderr:write("trigger failed: ", tostring(err), "\n")
  return 1
end
print(string.format("campaign %d triggered for %s (%d contact): %s, total %.2f $",
  campaign, email, n, table.concat(items, ", "), total))
