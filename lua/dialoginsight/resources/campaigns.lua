--- client.campaigns: create, trigger (automated ones, such as an abandoned cart), statistics.  Wire shapes [assumed].
-- Failures return nil, err (`dialoginsight.errors`); opts take timeout, retries and deadline as `client:call`'s.
-- @classmod dialoginsight.resources.campaigns
local base = require "dialoginsight.resources.base"
local fields = require "dialoginsight.records.fields"

local Campaigns = base.class()
local check_id = base.check_id

local CALL = base.CALL
local TRIGGER = base.set({ contact = true }, base.PARAMS, base.STRICT, base.CALL)

local CHANNELS = { email = "Email", sms = "SMS", push = "Push" }

--- Creates a campaign; returns its idCampaign, or nil, err.
-- @tparam table c { name =, message = idMessage, channel = "Email" (or "SMS", "Push"), automated = false }
-- @tparam[opt] table opts
-- @treturn[1] integer idCampaign
-- @usage client.campaigns:create{ name = "Abandoned cart", message = msg_id, channel = "Email", automated = true }
function Campaigns:create(c, opts)
  base.check(opts, CALL, "campaigns:create")
  if type(c) ~= "table" then error("dialoginsight: campaigns:create expects a table", 2) end
  local problems = {}
  if type(c.name) ~= "string" or c.name == "" then
    problems[#problems + 1] = { field = "name", message = "is required (a string)" }
  end
  local channel = CHANNELS[tostring(c.channel or "Email"):lower()]
  if not channel then
    problems[#problems + 1] = { field = "channel", message = "must be Email, SMS or Push" }
  end
  if type(c.message) ~= "number" then
    problems[#problems + 1] = { field = "message", message = "is required (an idMessage)" }
  end
  if #problems > 0 then return nil, fields.invalid(problems, "campaigns", "Create") end
  return base.result(self.client, "campaigns", "Create", { Campaign = {
    Name = c.name, Channel = channel, idMessage = c.message, isAutomated = c.automated == true,
  } }, opts)
end

--- Triggers an automated campaign for a contact.
-- @tparam integer id idCampaign
-- @tparam table opts contact (a where or an idContact; required), params (the
-- message's parameters), strict, and timeout, retries, deadline: as `client:call`'s
-- @treturn[1] integer the contacts affected (AffectedContacts)
-- @usage client.campaigns:trigger(id, { contact = 123, params = { cart = "3 items" } })
function Campaigns:trigger(id, opts)
  base.check(opts, TRIGGER, "campaigns:trigger")
  check_id(id, "campaign id")
  opts = opts or {}
  local problems = {}
  if opts.contact == nil then
    problems[#problems + 1] = { field = "contact", message = "is required (a where-clause or an idContact)" }
  end
  local params = fields.parameters(opts.params, problems)
  if #problems > 0 then return nil, fields.invalid(problems, "campaigns", "Trigger") end
  local filter, err = base.filter(self.client, opts.contact, opts, "campaigns", "Trigger")
  if not filter then return nil, err end
  return base.result(self.client, "campaigns", "Trigger",
    { idCampaign = id, ContactFilter = filter, Parameters = params }, opts)
end

local function rate(part, whole)
  if type(part) ~= "number" or type(whole) ~= "number" or whole <= 0 then return 0 end
  return part / whole
end

--- The campaign's statistics, with open and click rates.
-- @tparam integer id idCampaign
-- @tparam[opt] table opts
-- @treturn[1] table the server's counts (Sent, Delivered, Bounced, Opened, UniqueOpened, Clicked, UniqueClicked,
-- Unsubscribed), name (when the reply has a Name [assumed]), open_rate and click_rate (per Delivered; 0 when none)
function Campaigns:stats(id, opts)
  base.check(opts, CALL, "campaigns:stats")
  check_id(id, "campaign id")
  local s, err = base.result(self.client, "campaigns", "GetStatistics", { idCampaign = id }, opts)
  if not s then return nil, err end
  local out = {}
  for k, v in pairs(s) do out[k] = v end
  if type(s.Name) == "string" and s.Name ~= "" then out.name = s.Name end
  out.open_rate = rate(s.UniqueOpened, s.Delivered)
  out.click_rate = rate(s.UniqueClicked, s.Delivered)
  return out
end

return Campaigns
