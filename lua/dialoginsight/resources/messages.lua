--- client.messages: create a message from friendly fields, read one back.
-- Failures return nil, err (`dialoginsight.errors`); opts take timeout, retries and deadline as `client:call`'s.
-- @classmod dialoginsight.resources.messages
local core = require "dialoginsight.core"
local base = require "dialoginsight.resources.base"
local fields = require "dialoginsight.records.fields"

local Messages = base.class()

local CALL = base.CALL

-- create's required fields, in the order problems are told
local REQUIRED = { "name", "subject", "sender_email" }

local function problems_of(m)
  local problems = {}
  for _, k in ipairs(REQUIRED) do
    if type(m[k]) ~= "string" or m[k] == "" then
      problems[#problems + 1] = { field = k, message = "is required (a string)" }
    end
  end
  if m.html == nil and m.text == nil then
    problems[#problems + 1] = { field = "html", message = "is required (or text)" }
  end
  for _, k in ipairs { "subject", "sender_name" } do
    if type(m[k]) == "string" and #m[k] > 0 then
      local _, why = fields.convert({ type = "Text" }, m[k])
      if why then problems[#problems + 1] = { field = k, message = why } end
    end
  end
  return problems
end

local function bodies(m)
  local list = {}
  if m.html then list[#list + 1] = { MIMEType = "text/html", Content = m.html } end
  if m.text then list[#list + 1] = { MIMEType = "text/plain", Content = m.text } end
  return core.array(list)
end

--- Creates a message and returns its idMessage, or nil, err.
-- @tparam table m { name =, subject =, sender_email =, sender_name =, reply_to =, html =, text =,
--     culture = "fr-CA", category =, tracking_links = true, hosting_images = false }
-- @tparam[opt] table opts
-- @treturn[1] integer idMessage
-- @usage local id = client.messages:create{ name = "Welcome", subject = "Welcome aboard",
--   sender_email = "news@example.com", html = "<p>Hello</p>", text = "Hello" }
function Messages:create(m, opts)
  base.check(opts, CALL, "messages:create")
  if type(m) ~= "table" then error("dialoginsight: messages:create expects a table", 2) end
  local problems = problems_of(m)
  if #problems > 0 then return nil, fields.invalid(problems, "messages", "Create") end
  local message = {
    Name = m.name, isHostingImages = m.hosting_images == true,
    isTrackingLinks = m.tracking_links ~= false, idCategory = m.category,
    MessageVersions = core.array { {
      Name = m.version or "Default", Culture = m.culture or "fr-CA",
      SenderName = m.sender_name or m.sender_email, SenderEMail = m.sender_email,
      Subject = m.subject, ReplyToEMail = m.reply_to, MessageBodies = bodies(m),
    } },
  }
  return base.result(self.client, "messages", "Create", { Message = message }, opts)
end

--- The message idMessage as the server sends it (Name, MessageVersions, ...).
-- @tparam integer id idMessage
-- @tparam[opt] table opts
-- @treturn[1] table the message
function Messages:get(id, opts)
  base.check(opts, CALL, "messages:get")
  if type(id) ~= "number" then error("dialoginsight: messages:get expects an id", 2) end
  return base.result(self.client, "messages", "Get", { idMessage = id }, opts)
end

return Messages
