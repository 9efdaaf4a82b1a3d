--- `dialoginsight webhooks send TYPE --to URL`: posts a sample event, signed as Dialog
-- Insight would (webhooks.sign, the secret from webhook_secret), to test a receiver.
local core = require "dialoginsight.core"
local webhooks = require "dialoginsight.webhooks"
local settings = require "dialoginsight.cli.settings"
local commands = require "dialoginsight.cli.commands"

local M = { name = "webhooks", usage = "webhooks send TYPE --to URL [--contact ID] [--email E] [--test]",
  options = {
    { "--to", "URL", "the receiver's URL (http or https)" },
    { "--contact", "ID", "the event's idContact (1)" },
    { "--email", "E", "the contact's e-mail, as the field f_EMail" },
    { "--project", "ID", "idProject (default: DI_PROJECT, else 1)" },
    { "--id", "ID", "the EventUniqueID (default: a new one)" },
    { "--test", nil, "mark the event isTest, as the platform's test deliveries are" },
    { "--unsigned", nil, "send no signature (to check that the receiver refuses it)" },
    { "--ca-file", "FILE", "CA bundle for an https receiver (default: DI_CA_FILE, the system store)" },
  } }

M.help = [[
Posts one event of TYPE (contact_optout, sending_Bounce, ...) to URL, as a
Dialog Insight webhook delivery: a JSON body signed with the webhook's
secret (webhook_secret: DI_WEBHOOK_SECRET or the config file) in the
X-DI-Signature header (docs/webhooks.md).  Prints the receiver's status
and reply; exit status 0 for a 2xx reply, 1 otherwise.]]

local function count_arg(v) return v == nil or (tonumber(v) and tonumber(v) >= 1 and tonumber(v) % 1 == 0) end

function M.check(opts, pos)
  if pos[1] ~= "send" then return "webhooks: the action is send (webhooks send TYPE --to URL)" end
  if not pos[2] or #pos > 2 then return "webhooks send: give one event TYPE, such as contact_optout" end
  if not pos[2]:match("^[%w_%.%-]+$") then return "webhooks send: TYPE is letters, digits and _" end
  if not opts.to or not opts.to:match("^https?://[^%s]+$") then
    return "webhooks send: --to expects the receiver's http(s) URL"
  end
  for _, k in ipairs { "contact", "project" } do
    if not count_arg(opts[k]) then return "webhooks send: --" .. k .. " expects a positive whole number" end
  end
end

function M.run(_, opts, pos, g)
  local ok, s = pcall(settings.read, g, "webhooks")
  if not ok then return commands.fail(s) end
  opts.project = opts.project or os.getenv("DI_PROJECT")
  if not count_arg(opts.project) then
    return commands.fail("webhooks send: DI_PROJECT must be a project id (or give --project)")
  end
  if not opts.unsigned and not s.webhook_secret then
    return commands.fail("webhooks send: no secret: set DI_WEBHOOK_SECRET, or webhook_secret in a "
      .. "--config file (--unsigned sends none)")
  end
  local event = {
    Type = pos[2],
    EventUniqueID = opts.id or string.format("cli-%d-%06d", os.time(), math.random(0, 999999)),
    dtExecution = os.date("!%Y-%m-%dT%H:%M:%S"),
    idCompany = 1,
    idProject = math.tointeger(tonumber(opts.project or "1")),
    ContactID = { idContact = math.tointeger(tonumber(opts.contact or "1")) },
    isTest = opts.test == true,
    f_EMail = opts.email,
  }
  local body = assert(core.encode(event))
  local headers = {}
  if not opts.unsigned then
    local name, value = webhooks.sign(body, { secret = s.webhook_secret })
    headers[1] = name .. ": " .. value
  end
  local session = core.session { verify = true, http2 = false, timeout = 30, connect_timeout = 10,
    user_agent = "dialoginsight-webhooks-send/0.1", max_reply_bytes = 1048576,
    ca_file = opts["ca-file"] or os.getenv("DI_CA_FILE"), headers = headers }
  local r = session:post(opts.to, body)
  session:close()
  if not r.status then
    return commands.fail("webhooks send: " .. tostring(r.kind) .. ": " .. tostring(r.message))
  end
  io.stdout:write(string.format("%s %s: HTTP %d %s\n", event.Type, event.EventUniqueID, r.status,
    commands.cli_terms((r.body or ""):sub(1, 500))))
  return (r.status >= 200 and r.status < 300) and 0 or 1
end

return M
