--- A call's request, built without I/O: the registry entry of
-- service.method, the URL, and the JSON body with AuthKey and the scope.
--
-- A request is a plain table that call/scheduler.lua hands to the
-- transport: { entry, url, body, timeout, deadline, fresh, policy }.
local core = require "dialoginsight.core"
local config = require "dialoginsight.config"
local errors = require "dialoginsight.errors"
local retry = require "dialoginsight.call.retry"

local M = {}

local NAME = "^[%a][%w_]*$"

local function check_name(what, v, level)
  if type(v) ~= "string" or not v:match(NAME) then
    error("dialoginsight: bad " .. what .. " name " .. string.format("%q", tostring(v)), level + 1)
  end
end

--- The route of service.method from base_url: { entry, url }, the entry
-- from reg (registry.lua, with the client's overrides).  A registered
-- method's route is remembered in cache under the names it was called
-- with, so that repeated calls do no pattern matching, lower-casing or
-- string building (bench/README.md).  Bad names raise at `level`.
function M.route(cache, reg, base_url, service, method, level)
  local known = cache[service]
  local route = known and known[method]
  if route then return route end
  check_name("service", service, level + 1)
  check_name("method", method, level + 1)
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

-- The options of a call that set none of its own (the common case: no
-- table, or a resource's options table without call options).
local NONE = {}

local function bad_option(name, why, v, level)
  error("dialoginsight: option '" .. name .. "' " .. why .. " (got " .. errors.describe(v) .. ")",
    level + 1)
end

--- The names of the per-call options (M.options).
M.CALL_OPTIONS = { timeout = true, deadline = true, retries = true, concurrency = true,
                   outcomes = true }

--- The options of a call that resources take from theirs (which hold
-- others: key, page_size, ...), or nil.
function M.call_options(opts)
  if opts == nil then return nil end
  local o
  for k in pairs(M.CALL_OPTIONS) do
    if opts[k] ~= nil then
      o = o or {}
      o[k] = opts[k]
    end
  end
  return o
end

--- The per-call options of opts, checked as settings are (config.lua):
-- { timeout, deadline, policy, concurrency }, each nil when not given.
-- deadline = false lifts the client's deadline for the call.  A name
-- other than these raises, with the closest one.  A bad value raises at
-- `level`, naming the option; a timeout or deadline over 600 s warns
-- once per process (config.warn_long).
function M.options(opts, level)
  if opts == nil then return NONE end
  if type(opts) ~= "table" then
    error("dialoginsight: options must be a table (got " .. errors.describe(opts) .. ")", level + 1)
  end
  for k in pairs(opts) do
    if not M.CALL_OPTIONS[k] then
      local names = { "timeout", "deadline", "retries", "concurrency", "outcomes" }
      local guess = type(k) == "string" and require("dialoginsight.records.fields").closest(k, names)
      error("dialoginsight: a call has no option '" .. tostring(k) .. "'"
        .. (guess and (" (did you mean '" .. guess .. "'?)") or "")
        .. "; its options: " .. table.concat(names, ", "), level + 1)
    end
  end
  local timeout, deadline, retries, concurrency, outcomes =
    opts.timeout, opts.deadline, opts.retries, opts.concurrency, opts.outcomes
  if timeout == nil and deadline == nil and retries == nil and concurrency == nil
      and outcomes == nil then
    return NONE
  end
  if outcomes ~= nil and type(outcomes) ~= "boolean" then
    bad_option("outcomes", "must be true or false", outcomes, level + 1)
  end
  local SECONDS = config.SECONDS
  if timeout ~= nil and not config.is_seconds(timeout) then
    bad_option("timeout", SECONDS, timeout, level + 1)
  end
  if deadline ~= nil and deadline ~= false and not config.is_seconds(deadline) then
    bad_option("deadline", SECONDS .. ", or false for none", deadline, level + 1)
  end
  config.warn_long("option 'timeout'", timeout)
  config.warn_long("option 'deadline'", deadline)
  if concurrency ~= nil and (type(concurrency) ~= "number" or concurrency < 1
      or concurrency ~= math.floor(concurrency) or concurrency > 2^31) then
    bad_option("concurrency", "must be a whole number of calls >= 1", concurrency, level + 1)
  end
  return {
    timeout = timeout, deadline = deadline, concurrency = concurrency, outcomes = outcomes,
    policy = retries ~= nil and retry.policy(retries, "option", level + 1) or nil,
  }
end

--- The request of one call, or nil, err when the parameters cannot be
-- sent.  auth: { idKey =, Key = }; project: the client's default idProject;
-- o: the call's options (M.options); redact: applied to encoder messages.
function M.build(route, params, auth, project, o, redact)
  local entry = route.entry
  local body = {}
  for k, v in pairs(params or {}) do body[k] = v end
  body.AuthKey = auth
  if entry.scope == "project" then
    body.idProject = body.idProject or project
    if body.idProject == nil then
      return invalid(entry, "idProject",
        "no project: set 'project' in di.new{} or DI_PROJECT, or pass idProject")
    end
  elseif entry.scope == "table" and body.idTable == nil then
    return invalid(entry, "idTable", "idTable is required")
  end
  local json, why = core.encode(body)
  if not json then return invalid(entry, why:match("^(.-): "), redact(why)) end
  return {
    entry = entry,
    url = route.url,
    body = json,
    timeout = o.timeout,
    deadline = o.deadline,
    policy = o.policy,
    -- a Merge whose caller reads only the records' outcomes: the reply is
    -- decoded for them alone (core.decode_outcomes, src/di_json_pick.c)
    decode = o.outcomes and core.decode_outcomes or nil,
    fresh = not entry.idempotent,
  }
end

return M
