--- The example's webhook receiver: Dialog Insight's opt-outs and bounces update the CRM.
-- Here the CRM is a CSV file, crm_suppressions.csv in nginx's prefix (email, reason,
-- idContact, EventUniqueID, when): a real integration calls its CRM's API instead.
--
-- nginx.conf wires it: init_by_lua calls events.init{...}, init_worker_by_lua calls
-- events.start(), and `location = /events` calls events.serve().  A delivery is answered
-- 200 once it is stored; the handler runs in a timer, at least once per event (docs/webhooks.md).
local receiver = require "dialoginsight.webhooks.ngx"

local M = {}

local home, crm_file

-- What the CRM must hear of each event type; other types are stored, handled, ignored.
local REASONS = { contact_optout = "opted out", sending_Bounce = "bounced",
                  contact_quarantine = "quarantined", sending_Complaint = "complained" }

local function csv(v)
  v = tostring(v == nil and "" or v)
  if v:find('[",\r\n]') then v = '"' .. v:gsub('"', '""') .. '"' end
  return v
end

-- The production handler.  A retry (event.retry) may repeat a line the last run wrote
-- before it died; the CRM side keys on EventUniqueID, so a repeat is harmless.
local function handle(event)
  local reason = REASONS[event.type]
  if not reason then return true end
  local f, err = io.open(crm_file, "a")
  if not f then return nil, "the CRM file cannot be opened: " .. tostring(err) end
  local ok, werr = f:write(table.concat({ csv(event.fields.EMail), csv(reason), csv(event.contact),
    csv(event.id), csv(event.executed) }, ","), "\n")
  f:close()
  if not ok then return nil, werr end
  return true
end

--- opts: store (the SQLite file), crm_file, and any receiver option (attempts, backoff...).
-- The secret comes from DI_WEBHOOK_SECRET (nginx.conf's `env`), never from this file.
function M.init(opts)
  crm_file = opts.crm_file
  local secret = os.getenv("DI_WEBHOOK_SECRET")
  if not secret or secret == "" then
    -- no receiver without its secret (and no unsigned one by accident): /events says why
    ngx.log(ngx.WARN, "dialoginsight example: DI_WEBHOOK_SECRET is not set: /events answers 503")
    return
  end
  local o = { secret = secret, handler = handle,
              -- test deliveries (isTest) are logged, never sent to the CRM
              on_test = function(event) ngx.log(ngx.NOTICE, "test event ", event.type, " ", event.id) end }
  for k, v in pairs(opts) do if k ~= "crm_file" then o[k] = v end end
  home = receiver.new(o)
end

function M.start() if home then home:start() end end

function M.serve()
  if home then return home:serve() end
  ngx.status = 503
  ngx.header["Content-Type"] = "application/json"
  ngx.say('{"ok":false,"error":"the receiver has no secret: set DI_WEBHOOK_SECRET"}')
end

return M
