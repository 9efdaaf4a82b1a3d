--- client.reports: open and click events, and a contact's mailing history.  Wire shapes [assumed] (docs/wire.md).
-- Failures return nil, err (`dialoginsight.errors`); opts take timeout, retries and deadline as `client:call`'s.
-- @classmod dialoginsight.resources.reports
local base = require "dialoginsight.resources.base"
local pager = require "dialoginsight.resources.pager"
local fields = require "dialoginsight.records.fields"

local Reports = base.class()

local EVENTS = base.set({ from = true, to = true, message = true, batch = true }, pager.OPTIONS,
  base.STRICT, base.CALL)
local CALL = base.CALL

-- The filters of an event report, or nil, err; a bare date for `to` stays a date: the
-- server counts the whole day.
local function filters(opts, method)
  local p, problems = {}, {}
  for _, f in ipairs { { "from", "dtFrom" }, { "to", "dtTo" } } do
    local v = opts[f[1]]
    if v ~= nil then
      p[f[2]] = (type(v) == "string" and #v <= 10) and fields.date(v) or fields.datetime(v)
      if not p[f[2]] then
        problems[#problems + 1] = { field = f[1], message = "is not a valid date or date-time" }
      end
    end
  end
  for _, f in ipairs { { "message", "idMessage" }, { "batch", "idBatch" } } do
    local v = opts[f[1]]
    if v ~= nil and (type(v) ~= "number" or v ~= math.floor(v)) then
      problems[#problems + 1] = { field = f[1], message = "must be an integer id" }
    end
    p[f[2]] = v
  end
  if #problems > 0 then return nil, fields.invalid(problems, "reports", method) end
  return p
end

local function events(self, method, opts)
  opts = opts or {}
  local p, err = filters(opts, method)
  if not p then return pager.failing(err) end
  return pager.each(self.client, "reports", method, p, opts)
end

--- Iterates over open events { idContact, idBatch, dtEvent }.
-- A failure raises the error object.
-- @tparam[opt] table opts from, to (dates), message, batch (ids), page_size, limit, max_calls, and timeout,
-- retries, deadline: as `client:call`'s
-- @return an iterator of events
-- @usage for e in client.reports:opens{ from = "2024-03-01", to = "2024-03-31" } do
--   print(e.idContact, e.dtEvent)
-- end
function Reports:opens(opts)
  base.check(opts, EVENTS, "reports:opens")
  return events(self, "GetOpens", opts)
end

--- Iterates over click events { idContact, idBatch, dtEvent, Url }; as opens.
-- @tparam[opt] table opts as `opens`'s
-- @return an iterator of events
function Reports:clicks(opts)
  base.check(opts, EVENTS, "reports:clicks")
  return events(self, "GetClicks", opts)
end

--- A contact's mailing history, a list of { idBatch, idMessage, dtSent, Opened, Clicked }, or nil, err.
-- @tparam integer contact_id idContact
-- @tparam[opt] table opts
-- @treturn[1] {table,...} the mailings
function Reports:history(contact_id, opts)
  base.check(opts, CALL, "reports:history")
  if type(contact_id) ~= "number" then
    error("dialoginsight: reports:history expects an idContact", 2)
  end
  if contact_id ~= math.floor(contact_id) or contact_id < 1 then
    return nil, fields.invalid({ { field = "idContact", message = "must be a positive integer" } },
      "reports", "GetContactHistory")
  end
  return base.result(self.client, "reports", "GetContactHistory", { idContact = contact_id }, opts)
end

return Reports
