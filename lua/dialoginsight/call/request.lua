--- A call's request, built without I/O: { entry, url, body, timeout, deadline, fresh,
-- policy }, that call/scheduler.lua hands to the transport.
local core = require "dialoginsight.core"
local errors = require "dialoginsight.errors"
local options = require "dialoginsight.options"
local retry = require "dialoginsight.call.retry"

local M = {}

local NAME = "^[%a][%w_]*$"

local function bad_name(what, v)
  if type(v) ~= "string" or not v:match(NAME) then
    return "dialoginsight: bad " .. what .. " name " .. string.format("%q", tostring(v))
  end
end

--- The route { entry, url } of service.method from base_url and reg, or nil, why for a bad
-- name (the client raises it); cached under the names called, so that a repeat builds no string.
function M.route(cache, reg, base_url, service, method)
  local known = cache[service]
  local route = known and known[method]
  if route then return route end
  local why = bad_name("service", service) or bad_name("method", method)
  if why then return nil, why end
  local entry = reg:lookup(service, method)
  route = { entry = entry or reg.unknown(service, method) }
  route.url = base_url .. route.entry.service .. ".ashx?method=" .. route.entry.method
  if entry then
    cache[service] = known or {}
    cache[service][method] = route
  end
  return route
end

local function invalid(entry, field, message)
  return nil, errors.new { kind = "validation", service = entry.service, method = entry.method,
                          field = field, message = message }
end

-- The options of a call that set none of its own (the common case).
local NONE = {}

--- The options of client:call, call_many and call_stream.
M.OPTIONS = options.set(options.CALL, options.MANY, { outcomes = options.boolean })

--- The per-call options of checked opts: { timeout, deadline, policy, concurrency,
-- outcomes, priority }, or nil, why for a bad retry policy.  deadline = false lifts the client's.
function M.options(opts)
  if opts == nil or next(opts) == nil then return NONE end
  options.warn_long("option 'timeout'", opts.timeout)
  options.warn_long("option 'deadline'", opts.deadline)
  local policy
  if opts.retries ~= nil then
    local why
    policy, why = retry.policy(opts.retries, "option")
    if not policy then return nil, why end
  end
  return {
    timeout = opts.timeout, deadline = opts.deadline, concurrency = opts.concurrency,
    outcomes = opts.outcomes, policy = policy, priority = opts.priority,
  }
end

--- The request of one call, or nil, err when the parameters cannot be sent.
-- head: the body's AuthKey member as JSON (`"AuthKey":{...}`, the client's); project: the
-- default idProject; o: M.options'; redact: for encoder messages; into: a request that
-- has ended, filled for this call rather than a table made (a stream's spare, its state
-- cleared by call/scheduler.lua's state; issue 26: a table less per call).
function M.build(route, params, head, project, o, redact, into)
  local entry = route.entry
  -- params are written as they are (core.encode_body reads them raw); those with a
  -- metatable (__pairs, __index) are copied through pairs first, as they always were
  local src = params
  if src ~= nil and getmetatable(src) ~= nil then
    src = {}
    for k, v in pairs(params) do src[k] = v end
  end
  local idp = src and src.idProject
  if idp == false then idp = nil end -- (false: none, the client's project)
  if entry.scope == "project" then
    if idp == nil and project == nil then
      return invalid(entry, "idProject",
        "no project: set 'project' in di.new{} or DI_PROJECT, or pass idProject")
    end
  elseif entry.scope == "table" and (src == nil or src.idTable == nil) then
    return invalid(entry, "idTable", "idTable is required")
  end
  local json, why = core.encode_body(src, head, entry.scope == "project" and project or nil)
  if json == false then -- (a key that is not a string: the encoder names it, as for any table)
    local body = {}
    for k, v in pairs(src) do body[k] = v end
    body.AuthKey = core.null
    json, why = core.encode(body)
    if json then json, why = nil, "(value): params must have names as keys" end -- (never sent)
  end
  if not json then return invalid(entry, why:match("^(.-): "), redact(why)) end
  if into then -- (its options' fields are set again only when they differ: o is a stream's)
    into.entry, into.url, into.body, into.fresh = entry, route.url, json, not entry.idempotent
    if into.options ~= o then
      into.timeout, into.deadline, into.policy, into.priority = o.timeout, o.deadline, o.policy, o.priority
      into.decode, into.options = o.outcomes and core.decode_outcomes or nil, o
    end
    return into
  end
  return {
    options = o,
    entry = entry,
    url = route.url,
    body = json,
    timeout = o.timeout,
    deadline = o.deadline,
    policy = o.policy,
    priority = o.priority, -- nil: the client's (scheduler.lua's slot)
    -- a Merge whose caller reads only the records' outcomes: the reply is
    -- decoded for them alone (core.decode_outcomes, src/di_json_pick.c)
    decode = o.outcomes and core.decode_outcomes or nil,
    fresh = not entry.idempotent,
  }
end

return M
