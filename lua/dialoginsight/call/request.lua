--- A call's request, built without I/O: the registry entry of
-- service.method, the URL, and the JSON body with AuthKey and the scope.
--
-- A request is a plain table that call/scheduler.lua hands to the
-- transport: { entry, url, body, timeout, fresh, policy }.
local core = require "dialoginsight.core"
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

--- The request of one call, or nil, err when the parameters cannot be
-- sent.  auth: { idKey =, Key = }; project: the client's default idProject;
-- opts: timeout, retries (per call); redact: applied to encoder messages.
function M.build(route, params, auth, project, opts, redact)
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
    timeout = opts and opts.timeout,
    policy = opts and opts.retries ~= nil and retry.policy(opts.retries) or nil,
    fresh = not entry.idempotent,
  }
end

return M
