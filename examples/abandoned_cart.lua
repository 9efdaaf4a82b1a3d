-- abandoned_cart.lua: a shopper left items in the cart.  The shop writes the
-- cart into the platform's e-commerce relational tables, ECommerce_Cart and
-- ECommerce_CartItem, with RelationalTables.Merge; the account's automated
-- abandoned-cart campaign, set up once in the platform's UI, sends the
-- reminder when a cart is merged with the Abandoned status.  No API call
-- triggers it (docs/wire.md, "relationaltables").  The other way, a message
-- sent with the cart as parameters, is examples/abandoned_cart_send.lua.
--
--   dialoginsight run examples/abandoned_cart.lua [--demo] [EMAIL [CART_TABLE ITEM_TABLE]]
--
-- The tables' ids (idTable): the arguments, else DI_CART_TABLE and
-- DI_CART_ITEM_TABLE, else, against the sandbox only, its tables 510 and 511.
--
-- The column names in COLUMNS are [assumed]: no public source shows the
-- e-commerce tables' columns.  Check yours in the platform (the relational
-- tables of the project) and adjust COLUMNS.
--
-- No surprise writes: against the sandbox (client:is_sandbox()) the example
-- makes its demo data itself, shopper@example.com and a sample cart.
-- Against any other account the campaign would e-mail the shopper, so it
-- writes the sample cart only when told: --demo, the shopper's EMAIL (an
-- existing contact) and the tables' ids.
local COLUMNS = { -- [assumed] names of the tables' columns
  cart = { key = "idCart", contact = "idContact", status = "Status", updated = "dtUpdated",
           total = "Total", currency = "Currency", count = "ItemCount", url = "CartUrl" },
  item = { key = "idCartItem", cart = "idCart", sku = "SKU", name = "ProductName",
           qty = "Quantity", price = "UnitPrice" },
}
local SANDBOX_TABLES = { 510, 511 } -- sandbox/README.md, "Seeded state"

local demo, pos = false, {}
for _, a in ipairs(arg) do
  if a == "--demo" then demo = true else pos[#pos + 1] = a end
end

local sandbox = client:is_sandbox()
local function table_id(i, var)
  local v = pos[i + 1] or os.getenv(var)
  if v and v ~= "" then return assert(math.tointeger(tonumber(v)), var .. " must be an idTable") end
  return sandbox and SANDBOX_TABLES[i] or nil
end
local cart_table, item_table = table_id(1, "DI_CART_TABLE"), table_id(2, "DI_CART_ITEM_TABLE")
if not sandbox and not (demo and pos[1] and cart_table and item_table) then
  io.stderr:write("abandoned_cart.lua: this is not the sandbox, and the account's abandoned-cart campaign\n",
    "would e-mail the shopper a sample cart. To do that, name them all:\n",
    "  dialoginsight run examples/abandoned_cart.lua --demo EMAIL CART_TABLE ITEM_TABLE\n")
  return 64
end
local email = pos[1] or "shopper@example.com"

-- the shopper is a contact; the sandbox's demo shopper is made if missing
local shopper = client.contacts:find { EMail = email }
if not shopper and sandbox then
  assert(client.contacts:merge { EMail = email, FirstName = "Shopper" })
  shopper = client.contacts:find { EMail = email }
end
if not shopper then
  io.stderr:write("abandoned_cart.lua: no contact has the e-mail ", email, "\n")
  return 1
end

local cart_id = string.format("C-%d-%d", os.time(), shopper.idContact)
local items = {
  { sku = "TEA-01", name = "Green tea", qty = 2, price = 8.50 },
  { sku = "MUG-07", name = "Blue mug", qty = 1, price = 14.00 },
}
local C, I = COLUMNS.cart, COLUMNS.item

-- 1. the items, then the cart, as the shop's cart changes
local rows, total = {}, 0
for n, it in ipairs(items) do
  rows[n] = { [I.key] = cart_id .. "/" .. n, [I.cart] = cart_id, [I.sku] = it.sku, [I.name] = it.name,
              [I.qty] = it.qty, [I.price] = it.price }
  total = total + it.qty * it.price
end
local s = assert(client:table(item_table):merge_many(rows, { key = I.key }))
if s.rejected + s.failed > 0 then
  io.stderr:write("abandoned_cart.lua: items not written: ", tostring(s.records[1].reason), "\n")
  return 1
end
local function cart(status)
  return client:table(cart_table):merge({ [C.key] = cart_id, [C.contact] = shopper.idContact,
    [C.status] = status, [C.updated] = os.date("%Y.%m.%d %H:%M:%S"), [C.total] = total,
    [C.currency] = "CAD", [C.count] = #items, [C.url] = "https://shop.example.com/cart/" .. cart_id },
    { key = C.key })
end
assert(cart("Active"))

-- 2. later, the shop sees the cart abandoned: the campaign takes it from here
local o, err = cart("Abandoned")
if not o then
  io.stderr:write("abandoned_cart.lua: the cart was not written: ", tostring(err), "\n")
  return 1
end
print(string.format("cart %s of %s (idContact %d): %d items, %.2f CAD, marked Abandoned (%s)",
  cart_id, email, shopper.idContact, #items, total, o.outcome))
if sandbox then
  -- the sandbox's campaign sent at once; the platform waits as its campaign says
  local hist = assert(client.reports:history(shopper.idContact))
  local last = hist[#hist]
  print(string.format("the automated campaign sent message %d to %s (batch %d)",
    last.idMessage, email, last.idBatch))
end
