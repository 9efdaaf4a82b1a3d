--- The client: one call path for every OFC4 method.
--
-- client:call(service, method, params) adds the AuthKey and the scope,
-- encodes, POSTs, decodes, checks the envelope, and maps every failure to an
-- error object (errors.lua).  Retries follow retry.lua's policy; resources
-- (contacts, segments, ...) are thin layers that end here.
local core = require "dialoginsight.core"
local registry = require "dialoginsight.registry"
local errors = require "dialoginsight.errors"
local retry = require "dialoginsight.retry"

local M = {}

local Client = {}
M.Client = Client

-- Resources load on first use: client.contacts is
-- require("dialoginsight.contacts").new(client), made once per client.
local RESOURCES = {
  contacts = true, projects = true, segments = true, campaigns = true,
  sendings = true, messages = true, reports = true,
}

Client.__index = function(self, k)
  local method = Client[k]
  if method ~= nil then return method end
  if RESOURCES[k] then
    local r = require("dialoginsight." .. k).new(self)
    rawset(self, k, r)
    return r
  end
  return nil
end

--- The relational table idTable, with merge, get and delete.
function Client:table(id)
  return require("dialoginsight.tables").new(self, id)
end

-- The key lives here, not in the client table, so that dumping a client
-- (pairs, inspect, a debugger) never shows it.
local secrets = setmetatable({}, { __mode = "k" })

local NAME = "^[%a][%w_]*$"

local function redact(self, s)
  if type(s) ~= "string" then return s end
  local key = secrets[self]
  if key and #key >= 4 then
    local i, j = s:find(key, 1, true)
    while i do
      s = s:sub(1, i - 1) .. "<redacted>" .. s:sub(j + 1)
      i, j = s:find(key, i + 10, true)
    end
  end
  return s
end

local function trace_to_stderr(ev)
  local line = string.format("dialoginsight: %s.%s attempt %d: %s %.1f ms",
    ev.service, ev.method, ev.attempt,
    ev.status and ("HTTP " .. ev.status) or ev.kind or "?",
    (ev.seconds or 0) * 1000)
  if ev.request_id then line = line .. " request " .. ev.request_id end
  if ev.error then line = line .. " (" .. ev.error .. ")" end
  io.stderr:write(line, "\n")
end

--- Builds a client from resolved settings (config.resolve) and a transport
-- (an object with post, multi, sleep and now; see transport/curl.lua).
function M.new(settings, transport)
  local self = setmetatable({
    base_url = settings.base_url,
    key_id = settings.key_id,
    project = settings.project,
    settings = settings,
    transport = transport,
    retry = retry.policy(settings.retries),
    routes = {}, -- see Client:prepare
  }, Client)
  secrets[self] = settings.key
  settings.key = nil
  if settings.trace == true then
    self.on_call = trace_to_stderr
  elseif type(settings.trace) == "function" then
    self.on_call = settings.trace
  end
  return self
end

function Client:__tostring()
  return string.format("dialoginsight client (%s, key id %s, project %s, key <redacted>)",
    self.base_url, tostring(self.key_id), tostring(self.project))
end

--- Closes the connections; the client cannot be used afterwards.
function Client:close()
  if self.transport and self.transport.close then self.transport:close() end
end

-- Builds the request of one call: its registry entry, URL and JSON body.
-- Returns nil, err when the parameters cannot be sent.
function Client:prepare(service, method, params, opts)
  -- A registered method, once checked, is remembered with its URL under the
  -- names it was called with: repeated calls then do no pattern matching,
  -- lower-casing or string building (bench/README.md).
  local known = self.routes[service]
  local route = known and known[method]
  if not route then
    if type(service) ~= "string" or not service:match(NAME) then
      error("dialoginsight: bad service name " .. string.format("%q", tostring(service)), 3)
    end
    if type(method) ~= "string" or not method:match(NAME) then
      error("dialoginsight: bad method name " .. string.format("%q", tostring(method)), 3)
    end
    local entry = registry.lookup(service, method)
    route = { entry = entry or registry.unknown(service, method) }
    route.url = self.base_url .. route.entry.service .. ".ashx?method=" .. route.entry.method
    if entry then
      self.routes[service] = known or {}
      self.routes[service][method] = route
    end
  end
  if params ~= nil and type(params) ~= "table" then
    error("dialoginsight: params of " .. service .. "." .. method .. " must be a table", 3)
  end
  local entry = route.entry
  local body = {}
  for k, v in pairs(params or {}) do body[k] = v end
  body.AuthKey = { idKey = self.key_id, Key = secrets[self] }
  if entry.scope == "project" then
    body.idProject = body.idProject or self.project
    if body.idProject == nil then
      return nil, errors.new {
        kind = "validation", service = entry.service, method = entry.method,
        field = "idProject",
        message = "no project: set 'project' in di.new{} or DI_PROJECT, or pass idProject",
      }
    end
  elseif entry.scope == "table" then
    if body.idTable == nil then
      return nil, errors.new {
        kind = "validation", service = entry.service, method = entry.method,
        field = "idTable", message = "idTable is required",
      }
    end
  end
  local json, why = core.encode(body)
  if not json then
    local field = why:match("^(.-): ")
    return nil, errors.new {
      kind = "validation", service = entry.service, method = entry.method,
      field = field, message = redact(self, why),
    }
  end
  return {
    entry = entry,
    url = route.url,
    body = json,
    timeout = opts and opts.timeout,
    retries = opts and opts.retries,
    fresh = not entry.idempotent,
  }
end

local AUTH_CODES = { InvalidAuthKey = true, AccessDenied = true }

-- Turns one HTTP exchange into the response table, or nil, err.
function Client:interpret(req, status, body, retry_after)
  local entry = req.entry
  local resp, why = core.decode(body)
  if status == 200 then
    if type(resp) ~= "table" then
      return nil, errors.new {
        kind = "decode", service = entry.service, method = entry.method,
        status = status,
        -- redact before cutting, so no prefix of the key can survive the cut
        message = "reply is not a JSON object: " .. (why and redact(self, tostring(why))
          or redact(self, body):sub(1, 60)),
      }
    end
    if resp.Success == true then return resp end
  end
  resp = type(resp) == "table" and resp or {}
  local code = type(resp.ErrorCode) == "string" and resp.ErrorCode or nil
  local kind
  if status == 401 or status == 403 or AUTH_CODES[code] then
    kind = "auth"
  elseif status == 429 or code == "TooManyRequests" then
    kind = "rate_limited"
  elseif status == 200 then
    kind = "api"
  else
    kind = "http"
  end
  local message = resp.ErrorMessage
  if type(message) ~= "string" then
    message = status == 200 and "the call failed (Success is not true)"
      or ("HTTP " .. status .. " from the server")
  end
  -- idRequest and ErrorCode come from the server as they are: a reply that
  -- is not the documented envelope must not give an error object that
  -- tostring() cannot print (found by fuzz/fuzz_decode), nor echo the key.
  local rid = resp.idRequest
  if type(rid) ~= "string" and type(rid) ~= "number" then rid = nil end
  return nil, errors.new {
    kind = kind, status = status, code = redact(self, code), message = redact(self, message),
    request_id = redact(self, rid), service = entry.service, method = entry.method,
    retry_after = retry_after,
  }
end

-- The error of a transfer that got no HTTP reply.
function Client:transport_error(req, kind, message, sent)
  return errors.new {
    kind = kind, message = redact(self, message), sent = sent,
    service = req.entry.service, method = req.entry.method,
  }
end

function Client:notify(req, attempt, started, resp, err, status)
  local hook = self.on_call
  if not hook then return end
  hook {
    service = req.entry.service, method = req.entry.method, attempt = attempt,
    status = status or (err and err.status), kind = err and err.kind,
    error = err and err.message,
    request_id = err and err.request_id or resp and resp.idRequest,
    seconds = self.transport:now() - started,
  }
end

-- Runs one attempt and classifies it.  Returns resp, or nil, err.
function Client:attempt(req, attempt)
  local started = self.transport:now()
  -- On success: status, body, seconds, http_version, retry_after.
  -- On failure: nil, kind, message, sent.
  local status, a, b, c, retry_after = self.transport:post(req.url, req.body, req.timeout, req.fresh)
  local resp, err
  if status then
    resp, err = self:interpret(req, status, a, retry_after)
  else
    err = self:transport_error(req, a, b, c)
  end
  self:notify(req, attempt, started, resp, err, status)
  return resp, err
end

--- Seconds to wait before the call may start; 0 reserves the slot now.
-- Without a limiter (see limiter.lua) calls are never held back.
function Client:throttle_wait(req)
  local lim = self.limiter
  if not lim then return 0 end
  return lim:acquire()
end

--- Waits, through the transport's sleep, until the limiter lets req go.
function Client:throttle(req)
  local wait = self:throttle_wait(req)
  while wait > 0 do
    if self.on_wait then
      self.on_wait { service = req.entry.service, method = req.entry.method, delay = wait }
    end
    self.transport:sleep(wait)
    wait = self:throttle_wait(req)
  end
end

--- A 429 tells every process sharing the key to back off, not only us.
function Client:penalize(err)
  if self.limiter and err.status == 429 then
    self.limiter:penalize(err.retry_after or 1)
  end
end

-- A transport may refuse every call up front (transport/ngx.lua, in an
-- nginx phase without cosockets), before a limiter slot or a retry is spent.
function Client:refused(req)
  local t = self.transport
  local why = t.refuse and t:refuse()
  if not why then return nil end
  local err = self:transport_error(req, "network", why, false)
  err.retryable, err.attempts = false, 0
  return err
end

--- Calls service.method with params; returns the response table, or nil, err.
-- opts: timeout (seconds), retries (overrides the client's policy).
function Client:call(service, method, params, opts)
  local req, err = self:prepare(service, method, params, opts)
  if not req then return nil, err end
  err = self:refused(req)
  if err then return nil, err end
  return retry.run(self, req)
end

--- Runs many calls concurrently (curl multi on one thread) and returns, in
-- input order, each call's response table or error object (errors.is_error),
-- and the number of failures.  calls: list of { service, method, params }.
-- opts: concurrency (default: the client's, 8), timeout, retries.
function Client:call_many(calls, opts)
  if type(calls) ~= "table" then
    error("dialoginsight: call_many expects a list of calls", 2)
  end
  opts = opts or {}
  local reqs = {}
  for i, c in ipairs(calls) do
    if type(c) ~= "table" then
      error("dialoginsight: call_many: call #" .. i .. " must be a table", 2)
    end
    local req, err = self:prepare(c.service or c[1], c.method or c[2],
      c.params or c[3], opts)
    reqs[i] = req and self:refused(req) or req or err
  end
  return retry.run_many(self, reqs, opts.concurrency or self.settings.concurrency)
end

--- call_many for streams too long to hold: next_call() returns the next
-- { service, method, params } (or nil when done), and done(i, result) gets
-- each call's response or error object as it completes (i counts calls in
-- the order next_call gave them).  Memory holds only the calls in flight.
-- opts: concurrency, timeout, retries.
function Client:call_stream(next_call, done, opts)
  if type(next_call) ~= "function" or type(done) ~= "function" then
    error("dialoginsight: call_stream expects two functions", 2)
  end
  opts = opts or {}
  local function next_req()
    local c = next_call()
    if c == nil then return nil end
    local req, err = self:prepare(c.service or c[1], c.method or c[2],
      c.params or c[3], opts)
    return req and self:refused(req) or req or err
  end
  retry.run_stream(self, next_req, done, opts.concurrency or self.settings.concurrency)
end

return M
