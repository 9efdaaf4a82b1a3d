--- client.sendings: send a message to one contact, plan or trigger a mass sending, list batches.
-- Sends are never retried once they may have reached the server (registry: idempotent = false).
-- Failures return nil, err (`dialoginsight.errors`); opts take timeout, retries and deadline as `client:call`'s.
-- @classmod dialoginsight.resources.sendings
local core = require "dialoginsight.core"
local base = require "dialoginsight.resources.base"
local fields = require "dialoginsight.records.fields"

local Sendings = base.class()

local SEND = base.set(base.PARAMS, base.STRICT, base.CALL)
-- segments or all, at: checked by send_batch below
local SEND_BATCH = base.set({ segments = true, all = true, at = true }, base.CALL)
-- the range of batch ids (a homonym of a delete's max: scripts/check-options)
local BATCHES = base.set({ min = true, max = true }, base.CALL)

local function check_message(id)
  if type(id) ~= "number" or id ~= math.floor(id) or id < 1 then
    error("dialoginsight: the message id must be a positive integer, got " .. tostring(id), 3)
  end
end

--- Sends message_id to a contact: SendSingle2 for an idContact or with opts.params, else SendSingle.
-- [assumed: SendSingle2 takes any ContactFilter]
-- @tparam integer message_id idMessage
-- @param contact an idContact, or a where
-- @tparam[opt] table opts params (the message's parameters), strict, and timeout, retries, deadline: as `client:call`'s
-- @treturn[1] integer the contacts it went to
-- @return[2] nil, err (`dialoginsight.errors`) (outcome "unknown" when it may have been sent)
-- @usage client.sendings:send(12, 345, { params = { code = "SPRING" } })
function Sendings:send(message_id, contact, opts)
  base.check(opts, SEND, "sendings:send")
  check_message(message_id)
  opts = opts or {}
  local problems = {}
  if contact == nil then
    problems[#problems + 1] = { field = "contact", message = "is required (an idContact or a where-clause)" }
  end
  local params = fields.parameters(opts.params, problems)
  if #problems > 0 then return nil, fields.invalid(problems, "sendings", "SendSingle") end
  local method = (type(contact) == "number" or params) and "SendSingle2" or "SendSingle"
  local filter, err = base.filter(self.client, contact, opts, "sendings", method)
  if not filter then return nil, err end
  local p = { idMessage = message_id, ContactFilter = filter }
  if method == "SendSingle2" then
    p.SendSingleOptions = { MessageParameterValues = params, DiscardParametersAfterSending = false }
  end
  return base.result(self.client, "sendings", method, p, opts)
end

--- Plans (opts.at) or triggers now a mass sending to opts.segments or to everyone (opts.all = true).
-- @tparam integer message_id idMessage
-- @tparam table opts segments (idSegments) or all, at (a date-time string, os.time() number or os.date("*t")
-- table), and timeout, retries, deadline: as `client:call`'s
-- @treturn[1] integer idBatch
-- @usage client.sendings:send_batch(msg_id, { all = true, at = os.time() + 3600 })
function Sendings:send_batch(message_id, opts)
  base.check(opts, SEND_BATCH, "sendings:send_batch")
  check_message(message_id)
  opts = opts or {}
  local problems, filter = {}, nil
  if opts.all == true and opts.segments == nil then
    filter = { Mode = "All" }
  elseif opts.all == nil and type(opts.segments) == "table" and opts.segments[1] ~= nil then
    filter = { Mode = "idFilters", idFilters = core.array(opts.segments) }
  else
    problems[#problems + 1] = { field = "segments",
      message = "give either segments = { idSegment, ... } or all = true" }
  end
  local at
  if opts.at ~= nil then
    at = fields.datetime(opts.at)
    if not at then problems[#problems + 1] = { field = "at", message = "is not a valid date-time" } end
  end
  if #problems > 0 then return nil, fields.invalid(problems, "sendings", "SendBatch") end
  return base.result(self.client, "sendings", "SendBatch", {
    idMessage = message_id, ContactFilter = filter,
    SendBatchOptions = { isDelayed = at ~= nil, dtLaunch = at, PrepareNow = true, AutoApprove = true },
  }, opts)
end

--- The batches with ids between opts.min (default 0) and opts.max.
-- @tparam[opt] table opts min, max, and timeout, retries, deadline: as `client:call`'s
-- @treturn[1] {table,...} the batches: { idBatch =, idMessage =, dtLaunch =, Status =, ContactCount = }
function Sendings:batches(opts)
  base.check(opts, BATCHES, "sendings:batches")
  opts = opts or {}
  local problems = {}
  for _, k in ipairs { "min", "max" } do
    local v = opts[k]
    if v ~= nil and (type(v) ~= "number" or v ~= math.floor(v) or v < 0) then
      problems[#problems + 1] = { field = k, message = "must be a batch id (an integer >= 0)" }
    end
  end
  if #problems > 0 then return nil, fields.invalid(problems, "sendings", "GetBatches") end
  return base.result(self.client, "sendings", "GetBatches", { BatchFilter = {
    BatchFilterMode = "idBatch", idBatch_Min = opts.min or 0, idBatch_Max = opts.max or 2147483647,
  } }, opts)
end

return Sendings
