--- The client: a facade over one call path for every OFC4 method.
--
-- client:call(service, method, params) builds the request (call/request.lua:
-- AuthKey, scope, JSON) and hands it to the scheduler (call/scheduler.lua),
-- which waits for the limiter, posts through the transport, reads the reply
-- (call/reply.lua) and retries (call/retry.lua).  Resources (contacts,
-- segments, ...: resources/) are thin layers that end here.
--
-- Clients are made by `dialoginsight.new`.
-- @module dialoginsight.client
local errors = require "dialoginsight.errors"
local reply = require "dialoginsight.call.reply"
local request = require "dialoginsight.call.request"
local scheduler = require "dialoginsight.call.scheduler"

local M = {}

--- A client, as `dialoginsight.new` returns it.
-- @type Client
local Client = {}
M.Client = Client

--- client.contacts: `dialoginsight.resources.contacts`.
-- @field contacts

--- client.projects: `dialoginsight.resources.projects`.
-- @field projects

--- client.segments: `dialoginsight.resources.segments`.
-- @field segments

--- client.campaigns: `dialoginsight.resources.campaigns`.
-- @field campaigns

--- client.sendings: `dialoginsight.resources.sendings`.
-- @field sendings

--- client.messages: `dialoginsight.resources.messages`.
-- @field messages

--- client.reports: `dialoginsight.resources.reports`.
-- @field reports

--- Hook: a function called after each attempt of a call (call/scheduler.lua),
-- with { service, method, attempt, status, kind, error, request_id, seconds }.
-- The `trace` setting sets it (true: a line on stderr).
-- @field on_call

--- Hook: a function called before each retry (call/scheduler.lua), with
-- { service, method, attempt, delay, error }.
-- @usage client.on_retry = function(ev)
--   io.stderr:write(("retrying %s.%s in %.1fs: %s\n"):format(ev.service, ev.method, ev.delay, ev.error))
-- end
-- @field on_retry

--- Hook: a function called when the limiter holds a call (call/scheduler.lua),
-- once per wait, with { service, method, delay }.
-- @field on_wait

-- Resources load on first use: client.contacts is
-- require("dialoginsight.resources.contacts").new(client), made once per client.
local RESOURCES = {
  contacts = true, projects = true, segments = true, campaigns = true,
  sendings = true, messages = true, reports = true,
}

Client.__index = function(self, k)
  local method = Client[k]
  if method ~= nil then return method end
  if RESOURCES[k] then
    local r = require("dialoginsight.resources." .. k).new(self)
    rawset(self, k, r)
    return r
  end
  return nil
end

--- The relational table idTable, with merge, get and delete.
-- @tparam integer id idTable
-- @treturn dialoginsight.resources.tables.Table
function Client:table(id)
  return require("dialoginsight.resources.tables").new(self, id)
end

-- The key lives here, not in the client table, so that dumping a client
-- (pairs, inspect, a debugger) never shows it.
local secrets = setmetatable({}, { __mode = "k" })

local function trace_to_stderr(ev)
  local line = string.format("dialoginsight: %s.%s attempt %d: %s %.1f ms",
    ev.service, ev.method, ev.attempt,
    ev.status and ("HTTP " .. ev.status) or ev.kind or "?",
    (ev.seconds or 0) * 1000)
  if ev.request_id then line = line .. " request " .. ev.request_id end
  if ev.error then line = line .. " (" .. ev.error .. ")" end
  io.stderr:write(line, "\n")
end

local function trace_retry(ev)
  io.stderr:write(string.format("dialoginsight: %s.%s retry in %.2f s after attempt %d (%s)\n",
    ev.service, ev.method, ev.delay, ev.attempt, ev.error.kind .. (ev.error.status and (" HTTP " .. ev.error.status) or "")))
end

local function trace_wait(ev)
  io.stderr:write(string.format("dialoginsight: %s.%s waits %.2f s for the rate limit\n",
    ev.service, ev.method, ev.delay))
end

--- Builds a client from resolved settings (config.resolve), a transport
-- (docs/transport.md) and a limiter (limiter/init.lua; none: no limit).
-- (`dialoginsight.new` is the public way.)
-- @local
-- @tparam table settings resolved settings
-- @tparam table transport a transport (docs/transport.md)
-- @tparam[opt] table limiter a limiter
-- @treturn Client
function M.new(settings, transport, limiter)
  limiter = limiter or require("dialoginsight.limiter").none()
  local self = setmetatable({
    base_url = settings.base_url,
    key_id = settings.key_id,
    project = settings.project,
    settings = settings,
    transport = transport,
    limiter = limiter,
    routes = {}, -- see request.route
    registry = settings.registry or require("dialoginsight.registry").default,
  }, Client)
  secrets[self] = settings.key
  settings.key = nil
  self.engine = scheduler.new {
    transport = transport, limiter = limiter, policy = settings.retries,
    timeout = settings.timeout, deadline = settings.deadline,
    redact = errors.redactor(secrets[self]), limits = reply.limits(settings.limit_messages),
    hooks = self,
  }
  if settings.trace == true then
    self.on_call, self.on_retry, self.on_wait = trace_to_stderr, trace_retry, trace_wait
  elseif type(settings.trace) == "function" then
    self.on_call = settings.trace
  end
  return self
end

function Client:__tostring()
  return string.format("dialoginsight client (%s, key id %s, project %s, key <redacted>)",
    self.base_url, tostring(self.key_id), tostring(self.project))
end

--- Closes the connections and the limiter; the client cannot be used
-- afterwards.
-- @usage client:close()
function Client:close()
  if self.transport.close then self.transport:close() end
  if self.limiter then self.limiter:close() end
end

-- The request of one call (see call/request.lua), or nil, err.  o: the
-- call's checked options (request.options).  level: the stack level of the
-- user's call, for the errors a bad argument raises.
-- The route of a call, its arguments checked (a bad one raises at level).
local function checked_route(self, service, method, params, level)
  local route = request.route(self.routes, self.registry, self.base_url, service, method,
    level + 1)
  if params ~= nil and type(params) ~= "table" then
    error("dialoginsight: params of " .. service .. "." .. method .. " must be a table", level + 1)
  end
  return route
end

local function prepare(self, service, method, params, o, level)
  local route = checked_route(self, service, method, params, level + 1)
  return request.build(route, params, { idKey = self.key_id, Key = secrets[self] },
    self.project, o, self.engine.redact)
end

--- The request of a call, built but not sent (call/request.lua), or nil,
-- err; with Client:interpret, what the fuzz targets and specs drive.
-- @tparam string service
-- @tparam string method
-- @tparam[opt] table params
-- @tparam[opt] table opts as `Client:call`'s
-- @treturn[1] table the request: { entry, url, body, timeout, deadline, fresh, policy }
-- @treturn[2] nil
-- @treturn[2] dialoginsight.errors.Error err
function Client:prepare(service, method, params, opts)
  return prepare(self, service, method, params, request.options(opts, 2), 2)
end

--- Reads an HTTP reply to req as the call path does (call/reply.lua).
-- @tparam table req a request from `Client:prepare`
-- @tparam integer status the HTTP status
-- @tparam string body the reply's body
-- @tparam[opt] number retry_after the Retry-After header, in seconds
-- @treturn[1] table the response
-- @treturn[2] nil
-- @treturn[2] dialoginsight.errors.Error err
function Client:interpret(req, status, body, retry_after)
  return reply.interpret(req.entry, status, body, retry_after, self.engine.redact,
    self.engine.limits)
end

--- Calls service.method with params; returns the response table, or nil, err.
-- opts: timeout (seconds, per attempt), deadline (seconds for the whole
-- call, or false for none), retries (overrides the client's policy).
-- Options are in seconds, not milliseconds as in resty libraries: a
-- timeout or deadline over 600 s warns once per process.
-- @tparam string service the OFC4 service, matched case-insensitively ("contacts")
-- @tparam string method its method ("Merge")
-- @tparam[opt] table params the request's parameters, without AuthKey (and
-- without idProject, unless another project than the client's)
-- @tparam[opt] table opts { timeout =, deadline =, retries = }
-- @treturn[1] table the response
-- @treturn[2] nil
-- @treturn[2] dialoginsight.errors.Error err
-- @usage local r, err = client:call("projects", "List", {}, { timeout = 5, deadline = 8 })
function Client:call(service, method, params, opts)
  local req, err = prepare(self, service, method, params, request.options(opts, 2), 2)
  if not req then return nil, err end
  return self.engine:call(req)
end

-- A call of call_many / call_stream: { service, method, params } or the
-- same as named members; its request, or the error that stops it.
local function prepare_call(self, c, i, o, level)
  if type(c) ~= "table" then
    error("dialoginsight: call_many: call #" .. i .. " must be a table", level + 1)
  end
  local req, err = prepare(self, c.service or c[1], c.method or c[2], c.params or c[3], o,
    level + 1)
  return req or err
end

-- Checks a call of call_many without building it (prepare_call raises the
-- same way, for the same calls).
local function check_call(self, c, i, level)
  if type(c) ~= "table" then
    error("dialoginsight: call_many: call #" .. i .. " must be a table", level + 1)
  end
  checked_route(self, c.service or c[1], c.method or c[2], c.params or c[3], level + 1)
end

-- Kinds of failure that say nothing about the server: asked again next time.
local UNANSWERED = { network = true, timeout = true, tls = true, rate_limited = true }

--- Whether the server is the local sandbox (sandbox/README.md): true when
-- it answers the sandbox's own method, sandbox.ashx?method=Identify, with
-- Sandbox: true; Dialog Insight has no such method (docs/wire.md, "The
-- sandbox's own method").  Anything else is false, with the error when
-- there is one; the answer is kept for the client's life, unless the server
-- could not be asked (network, timeout, TLS, the call limit).  Examples make
-- demo data only when it is true.
-- @treturn boolean whether the server is the sandbox
-- @treturn[opt] dialoginsight.errors.Error err why the answer is false, when a call failed
-- @usage if client:is_sandbox() then --[[ make demo data ]] end
function Client:is_sandbox()
  if self.identified == nil then
    local r, err = self:call("sandbox", "Identify", { idProject = self.project or 0 })
    local yes = type(r) == "table" and r.Sandbox == true
    if yes or not (err and UNANSWERED[err.kind]) then rawset(self, "identified", yes) end
    return yes, err
  end
  return self.identified
end

--- Runs many calls concurrently (curl multi on one thread) and returns, in
-- input order, each call's response table or error object (errors.is_error),
-- and the number of failures.  calls: list of { service, method, params }.
-- opts: concurrency (default: the client's, 8), timeout, deadline (each
-- call's own, counted from when it is taken up), retries.
-- @tparam {table,...} calls { service, method, params } or { service =, method =, params = }
-- @tparam[opt] table opts { concurrency =, timeout =, deadline =, retries = }
-- @treturn table results: response tables and error objects, in input order
-- @treturn integer failures
-- @usage local results, failures = client:call_many({
--   { "contacts", "Merge", { Records = batch1 } },
--   { service = "contacts", method = "Merge", params = { Records = batch2 } },
-- }, { concurrency = 8 })
function Client:call_many(calls, opts)
  if type(calls) ~= "table" then
    error("dialoginsight: call_many expects a list of calls", 2)
  end
  local o = request.options(opts, 2)
  -- every call is checked first, so that a bad one raises before anything
  -- is sent; each is built (its body encoded) only when it is taken up, so
  -- that memory holds the bodies of the calls in flight, not of them all
  local n = 0
  for i, c in ipairs(calls) do
    check_call(self, c, i, 2)
    n = i
  end
  local k = 0
  return self.engine:many(function()
    if k == n then return nil end
    k = k + 1
    return prepare_call(self, calls[k], k, o, 3)
  end, o.concurrency or self.settings.concurrency)
end

--- call_many for streams too long to hold: next_call() returns the next
-- { service, method, params }, false when it has none now (it is asked
-- again after the next call completes: a call that done() makes), or nil
-- when done; and done(i, result) gets
-- each call's response or error object as it completes (i counts calls in
-- the order next_call gave them).  Memory holds only the calls in flight.
-- One call more than `concurrency` is prepared ahead, so that a completed
-- call's place is taken at once.  opts: as call_many's, and stop: a function
-- asked before each call starts; once it returns true, nothing more is sent,
-- and the calls prepared but not sent are dropped (done is not called for
-- them): what a job stopped by Ctrl-C must not send.
-- @tparam function next_call returns the next call, false when none now, or nil when done
-- @tparam function done done(i, result): result is a response table or an error object
-- @tparam[opt] table opts as `Client:call_many`'s, and `stop`
-- @usage local i = 0
-- client:call_stream(function()
--   i = i + 1
--   if i <= #batches then return { "contacts", "Merge", { Records = batches[i] } } end
-- end, function(n, r)
--   if di.is_error(r) then print(n, tostring(r)) end
-- end)
function Client:call_stream(next_call, done, opts)
  if type(next_call) ~= "function" or type(done) ~= "function" then
    error("dialoginsight: call_stream expects two functions", 2)
  end
  local stop = opts and opts.stop
  if stop ~= nil and type(stop) ~= "function" then
    error("dialoginsight: option 'stop' of call_stream must be a function", 2)
  end
  if stop then
    local rest = {}
    for k, v in pairs(opts) do if k ~= "stop" then rest[k] = v end end
    opts = rest
  end
  local o = request.options(opts, 2)
  local n = 0
  self.engine:stream(function()
    local c = next_call()
    if not c then return c end
    n = n + 1
    return prepare_call(self, c, n, o, 3)
  end, done, o.concurrency or self.settings.concurrency, stop)
end

return M
