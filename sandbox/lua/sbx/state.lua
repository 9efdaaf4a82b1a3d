-- The sandbox's whole state, its seed data and bulk generation.
--
-- Contacts are stored compactly as arrays: c[1] = idContact, then one slot per
-- project field, opt-in and opt-in date (see project.dkeys). A null value is a
-- nil slot. Two indexes make Merge lookups and Get-by-EMail O(1): byId (an
-- array, ids are dense) and byEmail (lower-cased e-mail -> contact).
local prng = require "sbx.prng"

local ok_new, tnew = pcall(require, "table.new")
if not ok_new then tnew = function() return {} end end

local lower, format = string.lower, string.format

local M = {}

-- Accounts are set once by init() from build/sandbox/accounts.lua (written by
-- sandbox/ctl, which generates the secrets); they survive resets.
local ACCOUNTS = {
  test = { id = 4201, key = "sbx-insecure-default-test-key" },
  noperm = { id = 4202, key = "sbx-insecure-default-noperm-key" },
}

M.DEFAULT_PROJECT, M.OTHER_PROJECT = 1001, 1002
M.DEFAULT_TABLE, M.OTHER_TABLE = 501, 502
-- the e-commerce tables of the abandoned cart (docs/wire.md, relationaltables)
M.CART_TABLE, M.CART_ITEM_TABLE = 510, 511
M.DEFAULT_SEED = 42

M.S = nil -- current state, set by reset()

function M.init(accounts_file)
  -- fewer GC cycles: with a million contacts every cycle walks a million
  -- tables, and the sandbox has memory to spare
  collectgarbage("setpause", 400)
  if accounts_file then
    local f = io.open(accounts_file, "r")
    if f then
      local chunk = f:read("*a")
      f:close()
      local fn = loadstring and loadstring(chunk) or load(chunk)
      local ok, acc = pcall(fn)
      if ok and type(acc) == "table" then
        for role, a in pairs(acc) do ACCOUNTS[role] = a end
      end
    end
  end
  M.reset({})
end

function M.accounts() return ACCOUNTS end

-- Field layout -----------------------------------------------------------

local function build_project(id, name, fields, optins)
  local P = {
    id = id, name = name, fields = {}, optins = {}, dkeys = {}, ckeys = {},
    byId = {}, byEmail = {}, count = 0, nextId = 1, maxId = 0,
    segments = {}, segOrder = {}, messages = {}, msgOrder = {},
    campaigns = {}, campOrder = {}, batches = {}, batchById = {},
  }
  P.ckeys["idcontact"] = { kind = "id", slot = 1, dtype = "Integer", wire = "idContact" }
  local slot = 1
  for _, f in ipairs(fields) do
    slot = slot + 1
    local m = { kind = "field", code = f[1], dtype = f[2], label = f[3], required = f[4] or false,
                key = f[5] or false, wire = "f_" .. f[1], slot = slot }
    P.fields[#P.fields + 1] = m
    P.dkeys[lower(m.wire)] = m
    P.ckeys[lower(m.wire)] = m
    P.ckeys[lower(m.code)] = P.ckeys[lower(m.code)] or m
    if m.key then P.keyField = m; P.emailSlot = slot end
  end
  for _, o in ipairs(optins) do
    slot = slot + 1
    local m = { kind = "optin", code = o[1], label = o[2], dtype = "Boolean", wire = "optin_" .. o[1], slot = slot }
    P.optins[#P.optins + 1] = m
    P.dkeys[lower(m.wire)] = m
    P.ckeys[lower(m.wire)] = m
  end
  for _, m in ipairs(P.optins) do
    slot = slot + 1
    local d = { kind = "dtoptin", code = m.code, dtype = "DateTime", wire = "dtOptin_" .. m.code, slot = slot }
    m.dtslot = slot
    P.dkeys[lower(d.wire)] = d
    P.ckeys[lower(d.wire)] = d
  end
  P.nslots = slot
  -- output order of a flat record
  P.layout = { P.ckeys["idcontact"] }
  for _, m in ipairs(P.fields) do P.layout[#P.layout + 1] = m end
  for _, m in ipairs(P.optins) do P.layout[#P.layout + 1] = m end
  return P
end

local DEFAULT_FIELDS = {
  -- code, DataType, label, isRequired, isKey
  { "EMail", "Text", "E-mail", true, true },
  { "FirstName", "Text", "First name" },
  { "LastName", "Text", "Last name" },
  { "City", "Text", "City" },
  { "BirthDate", "Date", "Birth date" },
  { "Points", "Integer", "Loyalty points" },
}
local DEFAULT_OPTINS = { { "Newsletter", "Newsletter" }, { "Promotions", "Promotions" } }

local OTHER_FIELDS = {
  { "EMail", "Text", "E-mail", true, true },
  { "Company", "Text", "Company" },
  { "Score", "Decimal", "Score" },
  { "isPartner", "Boolean", "Partner" },
  { "dtLastVisit", "DateTime", "Last visit" },
}

M.DATATYPES = { "Text", "Integer", "Decimal", "Date", "DateTime", "Boolean" }

-- Contacts ----------------------------------------------------------------

function M.new_contact(P, id)
  local c = tnew(P.nslots, 0)
  c[1] = id
  return c
end

-- add(P, c): registers a contact built with new_contact (c[1] set).
function M.add_contact(P, c)
  local id = c[1]
  P.byId[id] = c
  local e = c[P.emailSlot]
  if e then P.byEmail[lower(e)] = c end
  P.count = P.count + 1
  if id > P.maxId then P.maxId = id end
  if id >= P.nextId then P.nextId = id + 1 end
end

function M.remove_contact(P, c)
  local id = c[1]
  if P.byId[id] ~= c then return false end
  P.byId[id] = nil
  local e = c[P.emailSlot]
  if e and P.byEmail[lower(e)] == c then P.byEmail[lower(e)] = nil end
  P.count = P.count - 1
  return true
end

local SEED_CONTACTS = {
  -- email, first, last, city, birth, points, newsletter, promotions
  { "ann@example.com", "Ann", "Archer", "Montréal", "1985.03.14", 120, true, false },
  { "bob@example.com", "Bob", "Brown", "Québec", "1979.11.02", 45, true, true },
  { "carol@example.com", "Carol", "Chen", "Toronto", "1992.07.23", 300, false, true },
  { "dave@example.com", "Dave", "Dubois", "Montréal", nil, 0, true, false },
  { "eve@example.com", "Eve", "Evans", "Paris", "1990.01.01", 75, true, true },
  { "frank@example.com", "Frank", "Fortin", "Lyon", "1968.12.31", 10, false, false },
  { "grace@example.com", "Grace", "Gagnon", "Montréal", "2001.05.05", 510, true, true },
  { "heidi@example.com", "Heidi", "Hall", "Ottawa", "1983.09.09", nil, false, false },
  { "ivan@example.com", "Ivan", "Ivanov", "Vancouver", "1975.04.30", 220, true, false },
  { "judy@example.com", "Judy", "Jones", "Toronto", "1999.02.28", 5, true, true },
  { "mallory@example.com", "Mallory", "Martin", nil, nil, 0, false, false },
  { "trent@example.com", "Trent", "Tremblay", "Québec", "1988.08.08", 99, true, false },
}
M.SEED_CONTACT_COUNT = #SEED_CONTACTS

local SEED_DT = "2024.01.10 09:00:00"

local function seed_default_contacts(P)
  for i, s in ipairs(SEED_CONTACTS) do
    local c = M.new_contact(P, i)
    for j = 1, 6 do c[j + 1] = s[j] end
    c[8], c[9] = s[7], s[8]
    if s[7] then c[10] = SEED_DT end
    if s[8] then c[11] = SEED_DT end
    M.add_contact(P, c)
  end
end

local FIRST = { "Alice", "Benoit", "Chloé", "David", "Emma", "Félix", "Gabriel", "Hélène", "Isaac", "Jade",
  "Karim", "Léa", "Mathis", "Noémie", "Olivier", "Paul", "Quentin", "Rose", "Samuel", "Zoé" }
local LAST = { "Tremblay", "Gagnon", "Roy", "Côté", "Bouchard", "Gauthier", "Morin", "Lavoie", "Fortin",
  "Gagné", "Ouellet", "Pelletier", "Bélanger", "Lévesque", "Bergeron", "Leblanc", "Paquette", "Girard" }
local CITIES = { "Montréal", "Québec", "Laval", "Gatineau", "Longueuil", "Sherbrooke", "Toronto", "Ottawa",
  "Paris", "Lyon", "Bordeaux", "Lille" }

-- bulk(P, n, rng): n generated contacts user<i>@example.com.
function M.bulk(P, n, rng)
  local first, last, cities = FIRST, LAST, CITIES
  local nf, nl, nc = #first, #last, #cities
  local byId, byEmail, eslot = P.byId, P.byEmail, P.emailSlot
  local id = P.nextId
  local years = {}
  for i = 0, 59 do years[i] = format("%04d", 1950 + i) end
  local two = {}
  for i = 1, 31 do two[i] = format("%02d", i) end
  local dt = SEED_DT
  for i = 1, n do
    local c = tnew(P.nslots, 0)
    local email = "user" .. i .. "@example.com"
    c[1] = id
    c[eslot] = email
    c[3] = first[rng:int(1, nf)]
    c[4] = last[rng:int(1, nl)]
    c[5] = cities[rng:int(1, nc)]
    c[6] = years[rng:int(0, 59)] .. "." .. two[rng:int(1, 12)] .. "." .. two[rng:int(1, 28)]
    c[7] = rng:int(0, 1000)
    local nlet, promo = rng:float() < 0.6, rng:float() < 0.3
    c[8], c[9] = nlet, promo
    if nlet then c[10] = dt end
    if promo then c[11] = dt end
    byId[id] = c
    byEmail[email] = c -- already lower-case
    id = id + 1
  end
  P.count = P.count + n
  P.maxId = id - 1
  P.nextId = id
end

-- Relational tables -------------------------------------------------------

local function build_table(id, name, idProject, columns)
  local T = { id = id, name = name, idProject = idProject, columns = {}, ckeys = {}, rows = {}, count = 0 }
  for i, col in ipairs(columns) do
    local m = { kind = "column", code = col[1], wire = col[1], dtype = col[2], key = col[3] or false,
                slot = i, required = col[3] or false }
    T.columns[i] = m
    T.ckeys[lower(col[1])] = m
    if m.key then T.keyCol = m end
  end
  T.nslots = #columns
  T.layout = T.columns
  return T
end

function M.add_row(T, r)
  local k = r[T.keyCol.slot]
  if T.rows[k] == nil then T.count = T.count + 1 end
  T.rows[k] = r
end

-- The e-commerce tables that feed the abandoned-cart campaign.  Their names
-- are the platform's [doc]; their columns are [assumed] (docs/wire.md).  A
-- cart merged with Status "Abandoned" makes the seeded automated campaign
-- send its message (mail.lua, cart_merged); one converted cart is seeded.
function M.seed_carts(S)
  local C = build_table(M.CART_TABLE, "ECommerce_Cart", M.DEFAULT_PROJECT, {
    { "idCart", "Text", true }, { "idContact", "Integer" }, { "Status", "Text" },
    { "dtUpdated", "DateTime" }, { "Total", "Decimal" }, { "Currency", "Text" },
    { "ItemCount", "Integer" }, { "CartUrl", "Text" } })
  M.add_row(C, { "C-1001", 1, "Converted", "2024.03.02 18:20:00", 24.5, "CAD", 1,
    "https://shop.example.com/cart/C-1001" })
  S.tables[C.id] = C
  local I = build_table(M.CART_ITEM_TABLE, "ECommerce_CartItem", M.DEFAULT_PROJECT, {
    { "idCartItem", "Text", true }, { "idCart", "Text" }, { "SKU", "Text" },
    { "ProductName", "Text" }, { "Quantity", "Integer" }, { "UnitPrice", "Decimal" } })
  M.add_row(I, { "C-1001/1", "C-1001", "TEA-01", "Green tea", 1, 24.5 })
  S.tables[I.id] = I
end

-- Reset --------------------------------------------------------------------

-- reset{seed=, contacts=} -> state. Everything except the accounts is rebuilt.
function M.reset(opts)
  local seed = tonumber(opts.seed) or M.DEFAULT_SEED
  local S = {
    seed = seed, projects = {}, tables = {}, keys = {},
    nextMessage = 1, nextCampaign = 1, nextBatch = 1, nextSegment = 1,
  }
  M.S = nil
  collectgarbage("collect")

  local t, np = ACCOUNTS.test, ACCOUNTS.noperm
  S.keys[tonumber(t.id)] = { id = tonumber(t.id), secret = t.key, name = "sandbox test key",
    projects = { [M.DEFAULT_PROJECT] = true },
    tables = { [M.DEFAULT_TABLE] = true, [M.CART_TABLE] = true, [M.CART_ITEM_TABLE] = true } }
  S.keys[tonumber(np.id)] = { id = tonumber(np.id), secret = np.key, name = "sandbox key without permissions",
    projects = {}, tables = {} }

  local P = build_project(M.DEFAULT_PROJECT, "Sandbox project", DEFAULT_FIELDS, DEFAULT_OPTINS)
  seed_default_contacts(P)
  S.projects[P.id] = P
  local O = build_project(M.OTHER_PROJECT, "Other brand (no access)", OTHER_FIELDS, { { "Newsletter", "Newsletter" } })
  for i, e in ipairs({ "olga@example.org", "oscar@example.org" }) do
    local c = M.new_contact(O, i)
    c[2], c[3] = e, "Other Inc."
    M.add_contact(O, c)
  end
  S.projects[O.id] = O

  local T = build_table(M.DEFAULT_TABLE, "Reservations", M.DEFAULT_PROJECT, {
    { "idReservation", "Integer", true }, { "idContact", "Integer" }, { "Destination", "Text" }, { "dtTravel", "Date" } })
  M.add_row(T, { 1, 1, "Lisbon", "2024.06.01" })
  M.add_row(T, { 2, 2, "Tokyo", "2024.09.15" })
  M.add_row(T, { 3, 1, "Reykjavík", "2025.01.20" })
  S.tables[T.id] = T
  local T2 = build_table(M.OTHER_TABLE, "Orders", M.OTHER_PROJECT, {
    { "idOrder", "Integer", true }, { "idContact", "Integer" }, { "Total", "Decimal" } })
  M.add_row(T2, { 1, 1, 19.5 })
  S.tables[T2.id] = T2
  M.seed_carts(S)

  -- segments (dynamic ones keep a clause; static ones a member list)
  local function seg(Pj, name, clause, members)
    local id = S.nextSegment
    S.nextSegment = id + 1
    Pj.segments[id] = { id = id, name = name, clause = clause, members = members, dynamic = clause ~= nil }
    Pj.segOrder[#Pj.segOrder + 1] = id
  end
  seg(P, "Newsletter subscribers", { ["$type"] = "FieldClause", Field = { Name = "optin_Newsletter" },
    TypeOperator = "Equal", ComparisonValue = "1" })
  seg(P, "Montréal", { ["$type"] = "FieldClause", Field = { Name = "f_City" },
    TypeOperator = "Equal", ComparisonValue = "Montréal" })
  seg(P, "VIP (static)", nil, { 1, 3, 7 })
  seg(O, "Partners", { ["$type"] = "FieldClause", Field = { Name = "f_isPartner" },
    TypeOperator = "Equal", ComparisonValue = true })

  local ncontacts = tonumber(opts.contacts) or 0
  if ncontacts > 0 then
    M.bulk(P, math.floor(ncontacts), prng.new(seed, 7))
  end
  M.S = S
  -- messages, campaigns and their events
  require("sbx.mail").seed(S, P)
  return S
end

return M
