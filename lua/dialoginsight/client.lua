--- The client, made by `dialoginsight.new`: a facade over one call path for every OFC4 method (docs/architecture.md).
-- @module dialoginsight.client
local core = require "dialoginsight.core"
local errors = require "dialoginsight.errors"
local log = require "dialoginsight.log"
local metrics = require "dialoginsight.metrics"
local options = require "dialoginsight.options"
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

--- Hook: called after each attempt, with { service, method, attempt, status, kind, error, request_id, seconds }; `trace` sets it.
-- @field on_call

--- Hook: called before each retry, with { service, method, attempt, delay, error }.
-- @usage client.on_retry = function(ev)
--   io.stderr:write(("retrying %s.%s in %.1fs: %s\n"):format(ev.service, ev.method, ev.delay, ev.error))
-- end
-- @field on_retry

--- Hook: called once per wait of the limiter, with { service, method, delay }.
-- @field on_wait

--- Hook: the service's rate limit, once per pause (not once per 429 of a burst):
-- { state = "hit", service, method, retry_after (seconds, as honoured), until (wall
-- clock, epoch seconds) } when a reply says the limit is reached and every sharer
-- is paused; { state = "over", waited (seconds since the hit) } when the pause has
-- ended, seen at the first call that asks the limiter after it (none is fired while
-- no call is made).
-- @usage client.on_limit = function(ev)
--   if ev.state == "hit" then log(("limit reached, paused %.0f s"):format(ev.retry_after)) end
-- end
-- @field on_limit

-- Resources load on first use, once per client.
local RESOURCES = {
  contacts = true, projects = true, segments = true, campaigns = true,
  sendings = true, messages = true, reports = true,
}

Client.__index = Client

-- A resource's stand-in, in the client from the start: at its first use it loads the
-- resource's module and becomes the resource (its fields and class), so that a client's
-- methods are found in a plain table on every call, never through a function (issue 26).
local function stand_in(client, name)
  return setmetatable({}, { __index = function(proxy, k)
    local r = require("dialoginsight.resources." .. name).new(client)
    setmetatable(proxy, nil)
    for f, v in pairs(r) do rawset(proxy, f, v) end
    setmetatable(proxy, getmetatable(r))
    return proxy[k]
  end })
end

--- The relational table idTable, with merge, get and delete.
-- @tparam integer id idTable
-- @treturn dialoginsight.resources.tables
function Client:table(id)
  return require("dialoginsight.resources.tables").new(self, id)
end

-- The key lives here, not in the client table: dumping a client (pairs, inspect, a debugger) never shows it.
local secrets = setmetatable({}, { __mode = "k" })
local heads = setmetatable({}, { __mode = "k" })

-- The trace of a client (trace = true, -v): each event as a log line (log.lua: stderr or
-- nginx's log, text or JSON).  Strings pass the client's redactor once more: a hook's
-- event never holds the key, and neither may a line built from one.
local function tracer(redact)
  local function call(ev)
    local outcome = ev.status and ("HTTP " .. ev.status) or ev.kind or "?"
    local line = string.format("dialoginsight: %s.%s attempt %d: %s %.1f ms",
      ev.service, ev.method, ev.attempt, outcome, (ev.seconds or 0) * 1000)
    if ev.request_id then line = line .. " request " .. ev.request_id end
    if ev.error then line = line .. " (" .. ev.error .. ")" end
    log.event("call", {
      call_id = log.call_id(ev.call_id), service = ev.service, method = ev.method,
      attempt = ev.attempt, status = ev.status, outcome = ev.kind or "ok",
      error = ev.error and redact(ev.error), request_id = ev.request_id and redact(tostring(ev.request_id)),
      seconds = ev.seconds,
    }, redact(line))
  end
  local function retry(ev)
    local why = ev.error.kind .. (ev.error.status and (" HTTP " .. ev.error.status) or "")
    log.event("retry", {
      call_id = log.call_id(ev.call_id), service = ev.service, method = ev.method,
      attempt = ev.attempt, delay = ev.delay, kind = ev.error.kind, status = ev.error.status,
      error = redact(tostring(ev.error.message)),
    }, string.format("dialoginsight: %s.%s retry in %.2f s after attempt %d (%s)",
      ev.service, ev.method, ev.delay, ev.attempt, why))
  end
  local function wait(ev)
    log.event("wait", { call_id = log.call_id(ev.call_id), service = ev.service,
                        method = ev.method, delay = ev.delay },
      string.format("dialoginsight: %s.%s waits %.2f s for the rate limit", ev.service, ev.method, ev.delay))
  end
  local function limit(ev)
    local text = ev.state == "hit"
      and string.format("dialoginsight: %s.%s: the service's call limit: every sharer of the key waits %.2f s",
        ev.service, ev.method, ev.retry_after)
      or string.format("dialoginsight: the call limit's pause is over (%.2f s)", ev.waited or 0)
    log.event("limit", { state = ev.state, service = ev.service, method = ev.method,
                         retry_after = ev.retry_after, ["until"] = ev["until"], waited = ev.waited },
      text, ev.state == "hit" and "warn" or "info")
  end
  return call, retry, wait, limit
end

--- Builds a client from resolved settings, a transport (docs/transport.md) and a limiter (nil: none).
-- @local
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
  for name in pairs(RESOURCES) do rawset(self, name, stand_in(self, name)) end
  secrets[self] = settings.key
  -- the body's AuthKey member, encoded once (request.build); kept beside the key, never in
  -- the client's fields
  heads[self] = '"AuthKey":' .. assert(core.encode { idKey = self.key_id, Key = settings.key })
  errors.protect(self, settings.key)
  settings.key = nil
  self.engine = scheduler.new {
    transport = transport, limiter = limiter, policy = settings.retries,
    timeout = settings.timeout, deadline = settings.deadline, priority = settings.priority,
    redact = errors.redactor(secrets[self]), limits = reply.limits(settings.limit_messages),
    hooks = self, metrics = settings.metrics ~= false and metrics.default() or nil,
  }
  if settings.log_format then log.configure(settings.log_format) end
  if settings.trace == true then
    self.on_call, self.on_retry, self.on_wait, self.on_limit = tracer(self.engine.redact)
  elseif type(settings.trace) == "function" then
    self.on_call = settings.trace
  end
  return self
end

function Client:__tostring()
  return string.format("dialoginsight client (%s, key id %s, project %s, key <redacted>)",
    self.base_url, tostring(self.key_id), tostring(self.project))
end

--- The metrics of this process, all clients together (docs/metrics.md): a snapshot,
-- for `dialoginsight.metrics.value` and `dialoginsight.metrics.render`.
-- @treturn table the snapshot: { families = {...}, [name] = family }
-- @usage local m = client:metrics()
-- print(di.metrics.value(m, "dialoginsight_calls_total", { outcome = "ok" }))
-- io.write(di.metrics.render(m))   -- Prometheus' text format
function Client:metrics()
  return metrics.default():snapshot()
end

--- The rate limiter's state, read without changing it (no call is made, no slot taken).
-- Fields: backend ("local", "redis", "fallback" while Redis is away, "none"), rate,
-- burst, batch_share, priority (the client's), reserve, available (calls an interactive
-- call could make now without waiting), available_batch, wait and wait_batch (seconds
-- the next such call would wait), penalty (seconds left of a 429's pause, 0 when none;
-- seen only when longer than a batch slot), penalty_until (wall clock, epoch seconds, or
-- nil), path (the local file) or key (Redis's, never the password), fallback_transitions
-- (this process's switches to Redis's fallback and back), why (while in fallback).
-- @treturn table the state; or nil, why when the shared file cannot be read
-- @usage local st = client:limit_status()
-- print(st.available, st.wait, st.penalty)
function Client:limit_status()
  if self.closed then return nil, "dialoginsight: the client is closed" end
  local s = self.settings
  local st = { rate = s.rate, burst = s.burst, batch_share = s.batch_share, priority = s.priority,
               reserve_void = s.reserve_void }
  local raw, why = self.limiter:status()
  if not raw then return nil, why end
  for k, v in pairs(raw) do st[k] = v end
  if raw.backend == "none" then return st end
  local view = require("dialoginsight.limiter.reserve").view(raw)
  for k, v in pairs(view) do st[k] = v end
  st.reserve = math.floor(raw.reserve)
  st.penalty_until = st.penalty > 0 and require("dialoginsight.core").wall() + st.penalty or nil
  st.fallback_transitions = raw.fallback_transitions or 0
  -- (the figures behind the view: kept out of the public table)
  for _, k in ipairs { "ahead", "interval", "tolerance", "batch_interval", "batch_room", "share" } do
    st[k] = nil
  end
  return st
end

--- Closes the connections and the limiter; the client is unusable afterwards.
-- @usage client:close()
function Client:close()
  if self.closed then return end
  rawset(self, "closed", true)
  if self.transport.close then self.transport:close() end
  if self.limiter then self.limiter:close() end
end

-- The route of a call, or nil, why for a bad name or params (the public method raises it).
local function checked_route(self, service, method, params)
  local route, why = request.route(self.routes, self.registry, self.base_url, service, method)
  if route and params ~= nil and type(params) ~= "table" then
    return nil, "dialoginsight: params of " .. service .. "." .. method .. " must be a table"
  end
  return route, why
end

-- The request of one call, or nil, err (a runtime failure: validation), or
-- false, why (a programming error, for the caller to raise).
local function prepare(self, service, method, params, o)
  local route, why = checked_route(self, service, method, params)
  if not route then return false, why end
  return request.build(route, params, heads[self],
    self.project, o, self.engine.redact)
end

-- The checked options of a public call method, or raises at its caller.
local function call_options(opts, where, allowed)
  local why = options.problem(opts, allowed or request.OPTIONS, where)
  local o
  if not why then o, why = request.options(opts) end
  if not o then error(why, 3) end
  return o
end

--- The request of a call, built but not sent, or nil, err (for fuzz targets and specs).
-- @local
function Client:prepare(service, method, params, opts)
  local req, err = prepare(self, service, method, params, call_options(opts, "client:prepare"))
  if req == false then error(err, 2) end
  return req, err
end

--- Reads a reply (HTTP status, body, Retry-After in seconds) to a prepared request as the call path does.
-- @local
function Client:interpret(req, status, body, retry_after)
  return reply.interpret(req.entry, status, body, retry_after, self.engine.redact,
    self.engine.limits)
end

--- Calls service.method with params; returns the response table, or nil, err.
-- Times are in seconds, not milliseconds as in resty libraries (over 600 s warns once).
-- @tparam string service the OFC4 service, matched case-insensitively ("contacts")
-- @tparam string method its method ("Merge")
-- @tparam[opt] table params the request's parameters, without AuthKey (and idProject, unless another project than the client's)
-- @tparam[opt] table opts { timeout = (per attempt), deadline = (the whole call; false: none), retries = (a policy) }
-- @treturn[1] table the response
-- @return[2] nil, err (`dialoginsight.errors`)
-- @usage local r, err = client:call("projects", "List", {}, { timeout = 5, deadline = 8 })
function Client:call(service, method, params, opts)
  local req, err = prepare(self, service, method, params, call_options(opts, "client:call"))
  if req == false then error(err, 2) end
  if not req then return nil, err end
  return self.engine:call(req)
end

--- As `Client:call`, but returns only the reply's result member (registry.lua: `result`), or nil, err.
-- A reply without it is a `decode` error; the resources return what this returns.
-- @return[1] the result member
-- @return[2] nil, err (`dialoginsight.errors`)
-- @usage local projects, err = client:call_result("projects", "List")
function Client:call_result(service, method, params, opts)
  local req, err = prepare(self, service, method, params, call_options(opts, "client:call_result"))
  if req == false then error(err, 2) end
  if not req then return nil, err end
  -- the engine reads the member itself: a reply without it is counted as the decode
  -- failure its caller gets, never as a call that went well (metrics)
  req.result = true
  return self.engine:call(req)
end

local function not_a_table(i)
  return "dialoginsight: call_many: call #" .. i .. " must be a table"
end

-- The route of call c (the i-th) of call_many / call_stream, and its params; or false, why.
-- (request.route's cache probed here first, with no call: the common case)
local function call_route(self, c, i)
  if type(c) ~= "table" then return false, not_a_table(i) end
  local service, method, params = c.service or c[1], c.method or c[2], c.params or c[3]
  local known = self.routes[service]
  local route = known and known[method]
  if not route or (params ~= nil and type(params) ~= "table") then
    local why
    route, why = checked_route(self, service, method, params)
    if not route then return false, why end
  end
  return route, params
end

local STREAM = options.set(request.OPTIONS, {
  stop = function(v) if type(v) ~= "function" then return "must be a function" end end,
})

-- Kinds of failure that say nothing about the server: asked again next time.
local UNANSWERED = { network = true, timeout = true, tls = true, rate_limited = true }

--- Whether the server is the local sandbox (sandbox/README.md, sandbox.Identify in docs/wire.md).
-- The answer is kept for the client's life, unless the server could not be asked.
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

--- Runs many calls concurrently (curl multi on one thread); returns, in input
-- order, each call's response table or error object, and the number of failures.
-- @tparam {table,...} calls { service, method, params } or { service =, method =, params = }
-- @tparam[opt] table opts { concurrency = (default: the client's), timeout =, deadline = (each call's, from its start), retries = }
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
  local o = call_options(opts, "client:call_many")
  -- every call is checked before anything is sent; each is built only when taken
  -- up, so that memory holds the bodies of the calls in flight only
  local n, routes = 0, {}
  -- (each found without building it; its route kept: call_many builds it from that
  -- route, not looked up again)
  for i, c in ipairs(calls) do
    local route, why = call_route(self, c, i)
    if not route then error(why, 2) end
    n, routes[i] = i, route
  end
  local k = 0
  local head, project, redact = heads[self], self.project, self.engine.redact
  return self.engine:many(function(spare)
    if k == n then return nil end
    k = k + 1
    local c = calls[k]
    local req, err = request.build(routes[k], c.params or c[3], head, project, o, redact, spare)
    return req or err
  end, o.concurrency or self.settings.concurrency)
end

--- call_many for streams too long to hold: memory holds only the calls in flight.
-- Once opts.stop() returns true nothing more is sent; prepared calls are dropped, done not called (Ctrl-C).
-- @tparam function next_call returns the next call; false when none now (asked again after a completion), or nil when done
-- @tparam function done done(i, result, failed): i counts calls in next_call's order; result: a response
-- table or an error object; failed: true for an error object
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
  local o = call_options(opts, "client:call_stream", STREAM)
  local stop = opts and opts.stop
  local n = 0
  local head, redact = heads[self], self.engine.redact
  self.engine:stream(function(spare)
    local c = next_call()
    if not c then return c end
    n = n + 1
    local route, params = call_route(self, c, n)
    -- the culprit is next_call, not on the stack: no position
    if not route then error(params, 0) end
    -- (the client's project read per call, as it always was: a stream may be long)
    local req, err = request.build(route, params, head, self.project, o, redact, spare)
    return req or err
  end, done, o.concurrency or self.settings.concurrency, stop)
end

return M
