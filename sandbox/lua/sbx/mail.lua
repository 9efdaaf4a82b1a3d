-- messages.ashx, sendings.ashx, campaigns.ashx, reports.ashx and the event
-- simulation behind them.
--
-- Every send (SendSingle, SendSingle2, SendBatch, campaign Trigger) becomes a
-- batch. A batch's delivery/open/click/unsubscribe events come from a PRNG
-- seeded with (reset seed, idBatch), so the same sequence of calls after a
-- reset with the same seed gives the same statistics.
local json = require "sbx.json"
local util = require "sbx.util"
local prng = require "sbx.prng"
local clause = require "sbx.clause"
local contacts = require "sbx.contacts"
local webhooks = require "sbx.webhooks"

local obj, NULL, isnull = json.obj, json.null, json.isnull
local norm, lcase, int = util.norm, util.lcase, util.int
local type, pairs, ipairs, tostring, floor, sort = type, pairs, ipairs, tostring, math.floor, table.sort

local M = {}

-- probabilities of the simulation [assumed, tuned to look like a newsletter]
M.P_DELIVER, M.P_OPEN, M.P_CLICK, M.P_UNSUB = 0.94, 0.45, 0.35, 0.03

local function S() return require("sbx.state").S end

local function now() return ngx and ngx.time() or os.time() end

-- Messages --------------------------------------------------------------------

local function links_of(message)
  local links = {}
  local m = norm(message) or {}
  local versions = m.messageversions
  if type(versions) == "table" then
    for _, v in ipairs(versions) do
      local nv = norm(v) or {}
      if type(nv.messagebodies) == "table" then
        for _, b in ipairs(nv.messagebodies) do
          local nb = norm(b) or {}
          if type(nb.content) == "string" then
            for url in nb.content:gmatch('[Hh][Rr][Ee][Ff]%s*=%s*["\'](https?://[^"\']+)["\']') do
              links[#links + 1] = url
            end
          end
        end
      end
    end
  end
  if #links == 0 then links[1] = "https://www.example.com/" end
  return links
end

local function add_message(P, message)
  local st = S()
  local id = st.nextMessage
  st.nextMessage = id + 1
  local m = norm(message)
  P.messages[id] = { id = id, name = m.name, raw = message, links = links_of(message),
    created = util.from_epoch(now()) }
  P.msgOrder[#P.msgOrder + 1] = id
  return id
end

function M.message_create(ctx, req, P)
  local m = norm(req.message)
  if not m then return nil, "InvalidParameter", "Message is required" end
  if type(m.name) ~= "string" or m.name == "" then return nil, "InvalidParameter", "Message.Name is required" end
  local mv = m.messageversions
  if type(mv) ~= "table" or isnull(mv) or mv[1] == nil then
    return nil, "InvalidParameter", "Message.MessageVersions must be a non-empty array"
  end
  for i, v in ipairs(mv) do
    local nv = norm(v)
    if not nv then return nil, "InvalidParameter", "MessageVersions[" .. (i - 1) .. "] must be an object" end
    if not isnull(nv.messagebodies) and type(nv.messagebodies) ~= "table" then
      return nil, "InvalidParameter", "MessageVersions[" .. (i - 1) .. "].MessageBodies must be an array"
    end
  end
  return { "idMessage", add_message(P, req.message) }
end

local MSG_ORDER = { "Name", "isHostingImages", "isTrackingLinks", "idCategory", "MessageVersions" }

function M.message_get(ctx, req, P)
  local id = int(req.idmessage)
  if not id then return nil, "InvalidParameter", "idMessage is required (integer)" end
  local msg = P.messages[id]
  if not msg then return nil, "InvalidParameter", "Unknown idMessage " .. id end
  local m = norm(msg.raw)
  local o = { "idMessage", id }
  for _, k in ipairs(MSG_ORDER) do
    local v = m[lcase(k)]
    if v == nil then v = NULL end
    o[#o + 1] = k; o[#o + 1] = v
  end
  return { "Message", obj(o) }
end

-- Contact filters -------------------------------------------------------------

local function all_contacts(P)
  local list, n, byId = {}, 0, P.byId
  for id = 1, P.maxId do
    local c = byId[id]
    if c then n = n + 1; list[n] = c end
  end
  return list
end

function M.segment_members(P, seg)
  if seg.dynamic then
    return contacts.select(P, seg.clause)
  end
  local list = {}
  for _, id in ipairs(seg.members) do
    local c = P.byId[id]
    if c then list[#list + 1] = c end
  end
  return list
end

-- resolve(P, ContactFilter) -> list of contacts | nil, err
function M.resolve(P, cf)
  local f = norm(cf)
  if not f then return nil, "ContactFilter is required" end
  local mode = type(f.mode) == "string" and lcase(f.mode) or nil
  if mode == "all" then
    return all_contacts(P)
  elseif mode == "single" then
    local id = int(f.idcontact)
    if not id then return nil, "ContactFilter.idContact is required (integer)" end
    local c = P.byId[id]
    if not c then return nil, "Unknown idContact " .. id end
    return { c }
  elseif mode == "idfilters" then
    local ids = f.idfilters
    if type(ids) ~= "table" or isnull(ids) or ids[1] == nil then
      return nil, "ContactFilter.idFilters must be a non-empty array"
    end
    local seen, list = {}, {}
    for _, sid in ipairs(ids) do
      local n = int(sid)
      local seg = n and P.segments[n]
      if not seg then return nil, "Unknown segment (filter) id " .. tostring(sid) end
      for _, c in ipairs(M.segment_members(P, seg)) do
        if not seen[c[1]] then seen[c[1]] = true; list[#list + 1] = c end
      end
    end
    sort(list, function(a, b) return a[1] < b[1] end)
    return list
  elseif mode == "clauses" then
    local tcs = f.tableclauses
    if type(tcs) ~= "table" or isnull(tcs) or tcs[1] == nil then
      return nil, "ContactFilter.TableClauses must be a non-empty array"
    end
    local preds = {}
    for i, tc in ipairs(tcs) do
      local t = norm(tc)
      if not t then return nil, "TableClauses[" .. (i - 1) .. "] must be an object" end
      if not isnull(t.tablecode) and lcase(tostring(t.tablecode)) ~= "contact" then
        return nil, "TableClauses[" .. (i - 1) .. "].TableCode must be Contact"
      end
      local p, err = clause.compile(t.clause, P.ckeys)
      if not p then return nil, "TableClauses[" .. (i - 1) .. "].Clause: " .. err end
      preds[#preds + 1] = p
    end
    local list, byId = {}, P.byId
    for id = 1, P.maxId do
      local c = byId[id]
      if c then
        local ok = true
        for j = 1, #preds do if not preds[j](c) then ok = false; break end end
        if ok then list[#list + 1] = c end
      end
    end
    return list
  end
  return nil, "ContactFilter.Mode must be one of All, Single, idFilters, Clauses"
end

-- Batches and events --------------------------------------------------------

-- flags per contact in a batch: 1 delivered, 2 opened, 4 clicked, 8 unsubscribed
local function has(f, bit) return floor(f / bit) % 2 == 1 end

-- generate the events of a batch from its own PRNG stream
local function run_batch(b, seed, links, spread)
  local rng = prng.new(seed, 1000 + b.id)
  local t0 = b.tLaunch
  local flags, oc, ot, cc, ct, cu = {}, {}, {}, {}, {}, {}
  local nd, nu, no, nc = 0, 0, 0, 0
  local nlinks = #links
  local pd, po, pc, pu = M.P_DELIVER, M.P_OPEN, M.P_CLICK, M.P_UNSUB
  for _, cid in ipairs(b.ids) do
    local f = 0
    if rng:float() < pd then
      f = 1; nd = nd + 1
      if rng:float() < po then
        f = f + 2
        local k = rng:int(1, 3)
        local first
        for _ = 1, k do
          local t = t0 + rng:int(30, spread)
          first = first and (t < first and t or first) or t
          no = no + 1; oc[no] = cid; ot[no] = t
        end
        if rng:float() < pc then
          f = f + 4
          for _ = 1, rng:int(1, 2) do
            nc = nc + 1; cc[nc] = cid; ct[nc] = first + rng:int(5, 600); cu[nc] = links[rng:int(1, nlinks)]
          end
        end
      end
      if rng:float() < pu then f = f + 8; nu = nu + 1 end
    end
    flags[cid] = f
  end
  b.flags, b.delivered, b.unsub = flags, nd, nu
  b.oc, b.ot, b.cc, b.ct, b.cu = oc, ot, cc, ct, cu
  b.status = "Sent"
end

-- bring scheduled batches whose launch time has come up to date
local function settle(P)
  local t = now()
  for _, b in ipairs(P.batches) do
    if b.status == "Scheduled" and b.tLaunch <= t then
      run_batch(b, S().seed, P.messages[b.idMessage].links, b.spread)
      webhooks.batch(P, b)
    end
  end
end
M.settle = settle

-- new_batch(P, idMessage, list, opts{kind, idCampaign, tLaunch, delayed, spread})
function M.new_batch(P, idMessage, list, o)
  local st = S()
  local id = st.nextBatch
  st.nextBatch = id + 1
  local ids = {}
  for i, c in ipairs(list) do ids[i] = c[1] end
  local b = { id = id, idMessage = idMessage, idCampaign = o.idCampaign, kind = o.kind, ids = ids,
    tLaunch = o.tLaunch or now(), spread = o.spread or 60, status = "Scheduled", params = o.params }
  b.dtLaunch = util.from_epoch(b.tLaunch)
  -- the idSendLog of its i-th contact is sendLog0 + i - 1 (webhooks.lua)
  b.sendLog0 = st.nextSendLog or 1
  st.nextSendLog = b.sendLog0 + #ids
  P.batches[#P.batches + 1] = b
  P.batchById[id] = b
  if not o.delayed or b.tLaunch <= now() then
    run_batch(b, st.seed, P.messages[idMessage].links, b.spread)
    webhooks.batch(P, b)
  end
  return b
end

local function need_message(P, req)
  local id = int(req.idmessage)
  if not id then return nil, "idMessage is required (integer)" end
  if not P.messages[id] then return nil, "Unknown idMessage " .. id end
  return id
end

function M.send_single(ctx, req, P)
  local idm, err = need_message(P, req)
  if not idm then return nil, "InvalidParameter", err end
  local list, e2 = M.resolve(P, req.contactfilter)
  if not list then return nil, "InvalidParameter", e2 end
  M.new_batch(P, idm, list, { kind = "SendSingle" })
  return { "AffectedContacts", #list }
end

function M.send_single2(ctx, req, P)
  local idm, err = need_message(P, req)
  if not idm then return nil, "InvalidParameter", err end
  local list, e2 = M.resolve(P, req.contactfilter)
  if not list then return nil, "InvalidParameter", e2 end
  local o = norm(req.sendsingleoptions)
  local params
  if o and not isnull(o.messageparametervalues) then
    params = o.messageparametervalues
    if type(params) ~= "table" or params[1] ~= nil then
      return nil, "InvalidParameter", "SendSingleOptions.MessageParameterValues must be an object"
    end
    for k, v in pairs(params) do
      if type(v) ~= "string" then
        return nil, "InvalidParameter", "MessageParameterValues." .. tostring(k) .. " must be a string"
      end
    end
  end
  M.new_batch(P, idm, list, { kind = "SendSingle2", params = params })
  return { "AffectedContacts", #list }
end

function M.send_batch(ctx, req, P)
  local idm, err = need_message(P, req)
  if not idm then return nil, "InvalidParameter", err end
  local list, e2 = M.resolve(P, req.contactfilter)
  if not list then return nil, "InvalidParameter", e2 end
  local o = norm(req.sendbatchoptions) or {}
  local delayed = util.bool(o.isdelayed) or false
  local t
  if delayed then
    local dt = util.datetime(o.dtlaunch)
    if not dt then return nil, "InvalidParameter", "SendBatchOptions.dtLaunch must be YYYY.MM.DD HH:MM:SS when isDelayed" end
    t = util.to_epoch(dt)
  end
  local b = M.new_batch(P, idm, list, { kind = "SendBatch", delayed = delayed, tLaunch = t })
  return { "idBatch", b.id, "ContactCount", #list, "Status", b.status }
end

function M.get_batches(ctx, req, P)
  settle(P)
  local f = norm(req.batchfilter)
  local lo, hi = -math.huge, math.huge
  if f then
    local mode = type(f.batchfiltermode) == "string" and lcase(f.batchfiltermode) or "idbatch"
    if mode == "idbatch" then
      if not isnull(f.idbatch_min) then lo = int(f.idbatch_min) end
      if not isnull(f.idbatch_max) then hi = int(f.idbatch_max) end
      if not lo or not hi then return nil, "InvalidParameter", "idBatch_Min/idBatch_Max must be integers" end
    elseif mode ~= "all" then
      return nil, "InvalidParameter", "BatchFilter.BatchFilterMode must be idBatch or All"
    end
  end
  local recs = {}
  for _, b in ipairs(P.batches) do
    if b.id >= lo and b.id <= hi then
      recs[#recs + 1] = obj { "idBatch", b.id, "idMessage", b.idMessage, "dtLaunch", b.dtLaunch,
        "Status", b.status, "ContactCount", #b.ids }
    end
  end
  return { "Records", recs }
end

-- Campaigns -----------------------------------------------------------------

local CHANNELS = { email = "Email", sms = "SMS", push = "Push" }

function M.campaign_create(ctx, req, P)
  local c = norm(req.campaign)
  if not c then return nil, "InvalidParameter", "Campaign is required" end
  if type(c.name) ~= "string" or c.name == "" then return nil, "InvalidParameter", "Campaign.Name is required" end
  local ch = type(c.channel) == "string" and CHANNELS[lcase(c.channel)]
  if not ch then return nil, "InvalidParameter", "Campaign.Channel must be Email, SMS or Push" end
  local idm = int(c.idmessage)
  if not idm or not P.messages[idm] then return nil, "InvalidParameter", "Campaign.idMessage must name an existing message" end
  local auto = util.bool(c.isautomated) or false
  local st = S()
  local id = st.nextCampaign
  st.nextCampaign = id + 1
  P.campaigns[id] = { id = id, name = c.name, channel = ch, idMessage = idm, automated = auto }
  P.campOrder[#P.campOrder + 1] = id
  return { "idCampaign", id }
end

local function need_campaign(P, req)
  local id = int(req.idcampaign)
  if not id then return nil, "idCampaign is required (integer)" end
  local c = P.campaigns[id]
  if not c then return nil, "Unknown idCampaign " .. id end
  return c
end

function M.campaign_trigger(ctx, req, P)
  local c, err = need_campaign(P, req)
  if not c then return nil, "InvalidParameter", err end
  if not c.automated then return nil, "InvalidParameter", "Campaign " .. c.id .. " is not automated" end
  local list, e2 = M.resolve(P, req.contactfilter)
  if not list then return nil, "InvalidParameter", e2 end
  if not isnull(req.parameters) and (type(req.parameters) ~= "table" or req.parameters[1] ~= nil) then
    return nil, "InvalidParameter", "Parameters must be an object"
  end
  M.new_batch(P, c.idMessage, list, { kind = "Trigger", idCampaign = c.id, params = req.parameters })
  return { "AffectedContacts", #list }
end

-- batches counted for a campaign: its triggers; for a non-automated campaign
-- also every SendBatch of its message [assumed]
local function campaign_batches(P, c)
  local out = {}
  for _, b in ipairs(P.batches) do
    if b.idCampaign == c.id or (not c.automated and b.kind == "SendBatch" and b.idMessage == c.idMessage) then
      out[#out + 1] = b
    end
  end
  return out
end

function M.stats_of(batches)
  local s = { sent = 0, delivered = 0, opened = 0, uopened = 0, clicked = 0, uclicked = 0, unsub = 0 }
  for _, b in ipairs(batches) do
    if b.status == "Sent" then
      s.sent = s.sent + #b.ids
      s.delivered = s.delivered + b.delivered
      s.opened = s.opened + #b.oc
      s.clicked = s.clicked + #b.cc
      s.unsub = s.unsub + b.unsub
      for _, f in pairs(b.flags) do
        if has(f, 2) then s.uopened = s.uopened + 1 end
        if has(f, 4) then s.uclicked = s.uclicked + 1 end
      end
    end
  end
  return s
end

function M.campaign_stats(ctx, req, P)
  local c, err = need_campaign(P, req)
  if not c then return nil, "InvalidParameter", err end
  settle(P)
  local s = M.stats_of(campaign_batches(P, c))
  -- idCampaign and Name [assumed], so that a dashboard shows names, not ids
  return { "Statistics", obj { "idCampaign", c.id, "Name", c.name, "Sent", s.sent, "Delivered", s.delivered, "Bounced", s.sent - s.delivered,
    "Opened", s.opened, "UniqueOpened", s.uopened, "Clicked", s.clicked, "UniqueClicked", s.uclicked,
    "Unsubscribed", s.unsub } }
end

-- The automated abandoned-cart campaign -------------------------------------------
--
-- Set up once, as in the platform's UI: a cart of the ECommerce_Cart table
-- merged into Status "Abandoned" (from another status, or new) makes the
-- campaign send its message to the cart's contact, with the cart's items
-- from ECommerce_CartItem as parameters.  The send is a batch like any
-- other (GetBatches, GetContactHistory, GetStatistics, GET /_sandbox/batches).
-- The platform waits a while before it sends; the sandbox sends at once.

local function column(T, name) return T.ckeys[lcase(name)].slot end

local function money(v) return string.format("%.2f", tonumber(v) or 0) end

-- The message parameters of a cart: its items, total and link.
local function cart_params(T, row, items)
  local key = row[T.keyCol.slot]
  local list, n = {}, 0
  if items then
    local ic, name, qty = column(items, "idCart"), column(items, "ProductName"), column(items, "Quantity")
    for _, it in ipairs(require("sbx.tables").sorted_rows(items)) do
      if it[ic] == key then
        n = n + 1
        list[n] = tostring(it[qty] or 1) .. " x " .. tostring(it[name] or "?")
      end
    end
  end
  local cur = row[column(T, "Currency")]
  return { cart_id = tostring(key), cart_items = table.concat(list, ", "), cart_size = tostring(n),
           cart_total = money(row[column(T, "Total")]) .. (cur and (" " .. cur) or ""),
           cart_url = row[column(T, "CartUrl")] or "" }
end

--- Called by tables.lua after a row of T was merged; old: its Status
-- before.  Returns the batch when the campaign sent.
function M.cart_merged(T, row, old)
  local a = T.automation
  if not a then return nil end
  local status = row[column(T, "Status")]
  if type(status) ~= "string" or lcase(status) ~= "abandoned" then return nil end
  if type(old) == "string" and lcase(old) == "abandoned" then return nil end -- sent already
  local P = S().projects[T.idProject]
  local contact = P.byId[row[column(T, "idContact")] or 0]
  local c = P.campaigns[a.idCampaign]
  if not contact or not c then return nil end
  return M.new_batch(P, c.idMessage, { contact }, { kind = "Automated", idCampaign = c.id,
    params = cart_params(T, row, S().tables[a.items]) })
end

local function seed_cart_campaign(st, P)
  local msg = add_message(P, {
    Name = "Abandoned cart reminder", isHostingImages = false, isTrackingLinks = true, idCategory = 1,
    MessageVersions = { { Name = "Default", Culture = "fr-CA", SenderName = "The shop",
      SenderEMail = "shop@example.com", Subject = "You left something in your cart",
      ReplyToEMail = "shop@example.com", MessageBodies = { { MIMEType = "text/html",
        Content = '<html><body><p>Hello [[FirstName]], your cart: [[cart_items]] ([[cart_total]])</p>'
          .. '<p><a href="https://shop.example.com/cart">Back to your cart</a></p></body></html>' } } } } })
  local id = st.nextCampaign
  st.nextCampaign = id + 1
  P.campaigns[id] = { id = id, name = "Abandoned cart", channel = "Email", idMessage = msg, automated = true }
  P.campOrder[#P.campOrder + 1] = id
  local state = require "sbx.state"
  st.tables[state.CART_TABLE].automation = { idCampaign = id, items = state.CART_ITEM_TABLE }
end

-- Reports -----------------------------------------------------------------------

local function report(req, P, clicks)
  settle(P)
  local idm, idb
  if not isnull(req.idmessage) then
    idm = int(req.idmessage)
    if not idm then return nil, "InvalidParameter", "idMessage must be an integer" end
  end
  if not isnull(req.idbatch) then
    idb = int(req.idbatch)
    if not idb then return nil, "InvalidParameter", "idBatch must be an integer" end
  end
  local from, to = -math.huge, math.huge
  if not isnull(req.dtfrom) then
    local d = util.datetime(req.dtfrom)
    if not d then return nil, "InvalidParameter", "dtFrom must be YYYY.MM.DD[ HH:MM:SS]" end
    from = util.to_epoch(d)
  end
  if not isnull(req.dtto) then
    local d = util.datetime(req.dtto)
    if not d then return nil, "InvalidParameter", "dtTo must be YYYY.MM.DD[ HH:MM:SS]" end
    to = util.to_epoch(d)
    if util.date(req.dtto) then to = to + 86399 end -- a bare date includes the whole day
  end
  local start, max = contacts.paging(req)
  if not start then return nil, "InvalidParameter", max end
  local ev = {}
  for _, b in ipairs(P.batches) do
    if b.status == "Sent" and (not idm or b.idMessage == idm) and (not idb or b.id == idb) then
      local C, T = clicks and b.cc or b.oc, clicks and b.ct or b.ot
      for i = 1, #C do
        local t = T[i]
        if t >= from and t <= to then ev[#ev + 1] = { t, b.id, C[i], clicks and b.cu[i] or nil } end
      end
    end
  end
  sort(ev, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    if a[2] ~= b[2] then return a[2] < b[2] end
    if a[3] ~= b[3] then return a[3] < b[3] end
    return (a[4] or "") < (b[4] or "")
  end)
  local recs = {}
  for i = start + 1, math.min(#ev, start + max) do
    local e = ev[i]
    if clicks then
      recs[#recs + 1] = obj { "idContact", e[3], "idBatch", e[2], "dtEvent", util.from_epoch(e[1]), "Url", e[4] }
    else
      recs[#recs + 1] = obj { "idContact", e[3], "idBatch", e[2], "dtEvent", util.from_epoch(e[1]) }
    end
  end
  return contacts.paged(recs, #ev)
end

function M.report_clicks(ctx, req, P) return report(req, P, true) end
function M.report_opens(ctx, req, P) return report(req, P, false) end

function M.contact_history(ctx, req, P)
  local id = int(req.idcontact)
  if not id then return nil, "InvalidParameter", "idContact is required (integer)" end
  settle(P)
  local recs = {}
  for _, b in ipairs(P.batches) do
    local f = b.flags and b.flags[id]
    if f then
      recs[#recs + 1] = obj { "idBatch", b.id, "idMessage", b.idMessage, "dtSent", b.dtLaunch,
        "Opened", has(f, 2), "Clicked", has(f, 4) }
    end
  end
  return { "Records", recs }
end

-- Seed data -------------------------------------------------------------------

local function html(title, links)
  local parts = { "<html><body><h1>", title, "</h1>" }
  for _, l in ipairs(links) do parts[#parts + 1] = '<p><a href="' .. l .. '">' .. l .. "</a></p>" end
  parts[#parts + 1] = '<p><a href="[[unsubscribe]]">Unsubscribe</a></p></body></html>'
  return table.concat(parts)
end

local function seed_message(P, name, subject, links)
  return add_message(P, {
    Name = name, isHostingImages = false, isTrackingLinks = true, idCategory = 1,
    MessageVersions = { { Name = "Default", Culture = "fr-CA", SenderName = "Sandbox",
      SenderEMail = "news@example.com", Subject = subject, ReplyToEMail = "reply@example.com",
      MessageBodies = { { MIMEType = "text/html", Content = html(subject, links) } } } } })
end

function M.seed(st, P)
  local welcome = seed_message(P, "Welcome", "Welcome aboard",
    { "https://www.example.com/welcome", "https://www.example.com/account" })
  local promo = seed_message(P, "Spring promo", "Spring sale: 20% off",
    { "https://www.example.com/spring", "https://www.example.com/shop?utm_campaign=spring",
      "https://www.example.com/stores" })
  local seeds = {}
  for id = 1, require("sbx.state").SEED_CONTACT_COUNT do seeds[#seeds + 1] = P.byId[id] end
  local c1 = st.nextCampaign
  P.campaigns[c1] = { id = c1, name = "Spring promo 2024", channel = "Email", idMessage = promo, automated = false }
  P.campaigns[c1 + 1] = { id = c1 + 1, name = "Welcome series", channel = "Email", idMessage = welcome, automated = true }
  P.campOrder[#P.campOrder + 1] = c1
  P.campOrder[#P.campOrder + 1] = c1 + 1
  st.nextCampaign = c1 + 2
  local spread = 48 * 3600
  local half = {}
  for i = 1, 6 do half[i] = seeds[i] end
  local rest = {}
  for i = 7, #seeds do rest[#rest + 1] = seeds[i] end
  M.new_batch(P, welcome, half, { kind = "Trigger", idCampaign = c1 + 1, spread = spread,
    tLaunch = util.to_epoch("2024.02.01 08:00:00") })
  M.new_batch(P, welcome, rest, { kind = "Trigger", idCampaign = c1 + 1, spread = spread,
    tLaunch = util.to_epoch("2024.03.01 08:00:00") })
  M.new_batch(P, promo, seeds, { kind = "SendBatch", spread = spread,
    tLaunch = util.to_epoch("2024.03.20 10:00:00") })
  seed_cart_campaign(st, P)
end

return M
