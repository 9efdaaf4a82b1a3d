-- dashboard.lua: open and click rates of campaigns, as a table with bars.
--
--   dialoginsight run examples/dashboard.lua CAMPAIGN_ID...   the campaigns' rates
--   dialoginsight run examples/dashboard.lua                  the account's recent sendings
--   dialoginsight run examples/dashboard.lua --demo           the sandbox only: see below
--
-- No method lists an account's campaigns (docs/wire.md), so without ids the
-- example lists the latest batches (Sendings.GetBatches: every sending is
-- one) and the campaigns named in DI_DASHBOARD_CAMPAIGNS ("id=name;id",
-- as the OpenResty example's), and changes nothing.
--
-- --demo first creates three messages and campaigns and sends each to every
-- contact: it runs against the sandbox only (client:is_sandbox()), never
-- against an account whose contacts would get them.
local demo, ids = false, {}
for _, a in ipairs(arg) do
  if a == "--demo" then demo = true
  else ids[#ids + 1] = assert(math.tointeger(tonumber(a)), "campaign ids are integers: " .. a) end
end

if demo then
  local sandbox, why = client:is_sandbox()
  if not sandbox then
    io.stderr:write("dashboard.lua: --demo sends three messages to every contact, so it runs against ",
      "the sandbox only, and this is not the sandbox", why and (" (" .. tostring(why) .. ")") or "", "\n")
    return 64
  end
  for _, name in ipairs { "Spring sale", "Newsletter #12", "Loyalty points" } do
    local msg = assert(client.messages:create { name = name, subject = name,
      sender_email = "news@example.com", sender_name = "News", html = "<p>" .. name .. "</p>" })
    ids[#ids + 1] = assert(client.campaigns:create { name = name, message = msg })
    assert(client.sendings:send_batch(msg, { all = true }))
  end
end

-- the campaigns configured for dashboards, when none are named
if #ids == 0 then
  for id in (os.getenv("DI_DASHBOARD_CAMPAIGNS") or ""):gmatch("(%d+)[^;]*") do
    ids[#ids + 1] = math.tointeger(tonumber(id))
  end
end

local function bar(rate, width)
  local n = math.floor(rate * width + 0.5)
  return string.rep("#", n) .. string.rep(".", width - n)
end

if #ids == 0 then
  local batches, err = client.sendings:batches()
  if not batches then
    io.stderr:write("dashboard.lua: ", tostring(err), "\n")
    return 1
  end
  print(string.format("%-8s %-10s %-19s %-10s %8s", "batch", "message", "launched", "status", "contacts"))
  for i = math.max(1, #batches - 9), #batches do
    local b = batches[i]
    print(string.format("%-8s %-10s %-19s %-10s %8s", tostring(b.idBatch), tostring(b.idMessage),
      tostring(b.dtLaunch), tostring(b.Status), tostring(b.ContactCount)))
  end
  print("no method lists the campaigns: name their ids for their rates, e.g. "
    .. "dialoginsight run examples/dashboard.lua 1 2")
  return 0
end

print(string.format("%-6s %-24s %8s %8s  %-28s %-28s", "id", "campaign", "sent", "opened",
  "open rate", "click rate"))
local failed = 0
for _, id in ipairs(ids) do
  local s, err = client.campaigns:stats(id)
  if not s then
    failed = failed + 1
    print(string.format("%-6d %s", id, tostring(err)))
  else
    -- the name comes with the statistics [assumed]; a server without it shows the id
    print(string.format("%-6d %-24s %8d %8d  %s %5.1f%% %s %5.1f%%", id, s.name or ("#" .. id),
      s.Sent or 0, s.UniqueOpened or 0, bar(s.open_rate, 20), s.open_rate * 100,
      bar(s.click_rate, 20), s.click_rate * 100))
  end
end
return failed == #ids and 1 or 0
