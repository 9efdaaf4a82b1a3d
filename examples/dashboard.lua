-- dashboard.lua: open and click rates of the latest campaigns, as a table
-- with bars.
--
--   dialoginsight run examples/dashboard.lua [CAMPAIGN_ID...]
--
-- With no ids it first sets up three sent campaigns, which only makes sense
-- against the sandbox (DI_BASE_URL pointing at it).
local ids = {}
for i = 1, #arg do ids[#ids + 1] = assert(math.tointeger(tonumber(arg[i])), "campaign ids are integers") end

if #ids == 0 then
  for _, name in ipairs { "Spring sale", "Newsletter #12", "Loyalty points" } do
    local msg = assert(client.messages:create { name = name, subject = name,
      sender_email = "news@example.com", sender_name = "News", html = "<p>" .. name .. "</p>" })
    local id = assert(client.campaigns:create { name = name, message = msg })
    assert(client.sendings:send_batch(msg, { all = true }))
    ids[#ids + 1] = id
  end
end

local function bar(rate, width)
  local n = math.floor(rate * width + 0.5)
  return string.rep("#", n) .. string.rep(".", width - n)
end

print(string.format("%-10s %8s %8s  %-28s %-28s", "campaign", "sent", "opened", "open rate", "click rate"))
for _, id in ipairs(ids) do
  local s, err = client.campaigns:stats(id)
  if not s then
    print(string.format("%-10d %s", id, tostring(err)))
  else
    print(string.format("%-10d %8d %8d  %s %5.1f%% %s %5.1f%%", id, s.Sent or 0,
      s.UniqueOpened or 0, bar(s.open_rate, 20), s.open_rate * 100,
      bar(s.click_rate, 20), s.click_rate * 100))
  end
end
