-- Test-only endpoints of the nginx specs, run by content_by_lua_file from
-- the conf.d/test.conf that spec/nginx writes next to the example.
--   /t/ping                    answers at once (is the worker free?)
--   /t/call?service=&method=&campaign=&base=&retries=&backoff=&max_retry_after=&deadline=
--                              one client:call; reports ok, or the error
--   /t/limiter                 the example client's limiter: the wait acquire answers
--   /t/interactive?n=&every=   n calls of the example client (interactive), one
--                              every `every` s; each one's seconds, from asking
--                              to its reply (its limiter wait is less)
--   /t/call_many?n=&service=&method=&campaign=&deadline=
--                              n calls through client:call_many, timed
--   /t/ngx_user_agent          the ngx transport refuses a user_agent with CR LF
--   /t/transport?case=&closed= one case of spec/support/transport_cases.lua on
--                              the ngx transport (needs $di_root set to the checkout)
--   /t/http_lie?url=&cap=&timeout=&deadline=&retries=
--                              one call to the HTTP server at url
--                              (spec/support/fake_server.lua), timed; what it
--                              answered or raised, and the largest body the
--                              transport handed over
--   /t/each?base=&catch=       contacts:each over a failing call: uncaught, the
--                              request fails and nginx logs it; with catch=1,
--                              what pcall and the iterator's state hold
--   /t/burn_start?seconds=     starts the shared-limit load (burn.lua)
--   /t/burn_result             what each worker did
--   /t/redis_lie?url=&n=&budget=
--                              a client sharing its limit through the Redis at
--                              url (spec/support/fake_server.lua): n limiter
--                              decisions and one call (deadline 1 s); every
--                              decision timed, what each answered or raised
local di = require "dialoginsight"
local app = require "di_example.app"

local state = package.loaded["spec.nginx.state"] or { clients = {} }
package.loaded["spec.nginx.state"] = state

local function client_for(base)
  if base == nil or base == "" then return app.client() end
  local c = state.clients[base]
  if not c then
    local s = di.config.from_env()
    s.ca_file, s.rate, s.base_url, s.timeout = nil, false, base, 5
    c = di.new(s)
    state.clients[base] = c
  end
  return c
end

local function reply(t)
  ngx.header["Content-Type"] = "application/json"
  ngx.say(di.encode(t))
end

local function params(args)
  if args.campaign then return { idCampaign = tonumber(args.campaign) } end
  return nil
end

local function now() ngx.update_time(); return ngx.now() end

local args = ngx.req.get_uri_args()
local uri = ngx.var.uri

if uri == "/t/ping" then
  return reply { ok = true, pid = ngx.worker.pid() }

elseif uri == "/t/each" then
  local iter, it = client_for(args.base).contacts:each({ City = "X" }, { strict = false, retries = 0 })
  local function loop() for _ in iter do end end
  if args.catch ~= "1" then loop() end
  local ok, raised = pcall(loop)
  return reply { ok = ok, raised = type(raised), text = tostring(raised),
                 kind = it.failed and it.failed.kind, failed = tostring(it.failed) }

elseif uri == "/t/call" then
  local client = client_for(args.base)
  local opts = { deadline = tonumber(args.deadline) }
  if args.retries then
    opts.retries = { retries = tonumber(args.retries), base = tonumber(args.backoff) or 0.5,
                     cap = tonumber(args.backoff) or 8,
                     max_retry_after = tonumber(args.max_retry_after) }
  end
  local delays = {}
  client.on_retry = function(ev) delays[#delays + 1] = ev.delay end
  local t0 = now()
  local r, err = client:call(args.service or "projects", args.method or "List", params(args), opts)
  client.on_retry = nil
  local out = { elapsed = now() - t0, retries = #delays, delays = di.array(delays),
                pid = ngx.worker.pid() }
  if r then
    out.ok = true
    out.request_id = r.idRequest
  else
    out.ok = false
    for _, k in ipairs { "kind", "message", "sent", "attempts", "status", "code", "outcome" } do
      out[k] = err[k]
    end
    out.text = tostring(err)
  end
  return reply(out)

elseif uri == "/t/call_many" then
  local client = client_for(args.base)
  local calls = {}
  for i = 1, tonumber(args.n) or 5 do
    calls[i] = { args.service or "projects", args.method or "List", params(args) }
  end
  local t0 = now()
  local results, failures = client:call_many(calls, { concurrency = tonumber(args.concurrency) or 8,
                                                       deadline = tonumber(args.deadline) })
  local errs = {}
  for i, r in ipairs(results) do
    if di.is_error(r) then errs[#errs + 1] = i .. ": " .. tostring(r) end
  end
  return reply { elapsed = now() - t0, failures = failures, n = #results, errors = di.array(errs) }

elseif uri == "/t/interactive" then
  local client, took, errs = app.client(), {}, 0
  local every = tonumber(args.every) or 0.25
  local t0 = now()
  for i = 1, tonumber(args.n) or 10 do
    local due = t0 + (i - 1) * every
    if due > now() then ngx.sleep(due - now()) end
    local t = now()
    local r = client:call("projects", "List", nil, { retries = 0 })
    took[i] = now() - t
    if not r then errs = errs + 1 end
  end
  return reply { took = di.array(took), errors = errs, status = client:limit_status() }

elseif uri == "/t/limiter" then
  return reply { wait = app.client().limiter:acquire(), pid = ngx.worker.pid() }

elseif uri == "/t/transport" then
  local cases = dofile(ngx.var.di_root .. "/spec/support/transport_cases.lua")
  local client = app.client()
  local t = require("dialoginsight.transport.ngx").new(client.settings)
  local i = tonumber(args.case)
  if not cases.cases[i] then return reply { count = #cases.cases } end
  local why = cases.run(i, t, {
    base = client.base_url, closed = args.closed,
    body = di.encode { AuthKey = { idKey = client.key_id, Key = os.getenv("DI_KEY") } },
  })
  return reply { name = cases.cases[i].name, ok = why == nil, why = why }

elseif uri == "/t/ngx_user_agent" then
  -- the ngx transport built directly (not through di.new) with a CR LF
  local s = {}
  for k, v in pairs(app.client().settings) do s[k] = v end
  s.user_agent = "x\r\nX-Injected: 1"
  local ok, err = pcall(require("dialoginsight.transport.ngx").new, s)
  return reply { ok = ok, error = not ok and tostring(err) or nil }

elseif uri == "/t/redis_lie" then
  local s = di.config.from_env()
  s.ca_file, s.limiter_url, s.rate, s.burst, s.retries = nil, args.url, 50, 5, 0
  local c = di.new(s)
  local lim, budget = c.engine.limiter, tonumber(args.budget)
  local out = { times = {}, waits = {}, raised = {}, decisions = 0 }
  -- every decision, the call's too, timed
  local acquire = lim.acquire
  lim.acquire = function(self, b)
    local t0 = now()
    local ok, w = pcall(acquire, self, b)
    local k = out.decisions + 1
    out.decisions, out.times[k] = k, now() - t0
    if ok then out.waits[k] = w else out.raised[#out.raised + 1] = tostring(w); w = 0 end
    return w
  end
  for _ = 1, tonumber(args.n) or 5 do lim:acquire(budget) end
  local t0 = now()
  local ok, r, err = pcall(c.call, c, "projects", "List", {}, { deadline = 1 })
  out.call = { elapsed = now() - t0, raised = not ok and tostring(r) or nil,
               ok = ok and r ~= nil, error = err and tostring(err) or nil }
  c:close()
  out.times, out.waits, out.raised = di.array(out.times), di.array(out.waits), di.array(out.raised)
  return reply(out)

elseif uri == "/t/http_lie" then
  local c = di.new {
    base_url = args.url, allow_http = true, key_id = 1, key = "fake-key-0123456789", project = 1,
    env = false, strict = false, rate = false, timeout = tonumber(args.timeout),
    deadline = tonumber(args.deadline), max_reply_bytes = tonumber(args.cap),
    retries = { retries = tonumber(args.retries) or 0, base = 0.01, cap = 0.02, max_retry_after = 0.05 },
  }
  local largest, post = 0, c.transport.post
  c.transport.post = function(self, ...)
    local r = post(self, ...)
    if type(r.body) == "string" then largest = math.max(largest, #r.body) end
    return r
  end
  local t0 = now()
  local ok, r, err = pcall(c.call, c, "projects", "List", {})
  local out = { elapsed = now() - t0, largest = largest, raised = not ok and tostring(r) or nil,
                ok = ok and r ~= nil, kind = ok and err and err.kind or nil,
                error = ok and err and tostring(err) or nil }
  c:close()
  return reply(out)

elseif uri == "/t/burn_start" then
  local dict = ngx.shared.burn
  dict:set("seconds", tonumber(args.seconds) or 3)
  dict:set("start", now() + 0.3)
  return reply { ok = true }

elseif uri == "/t/burn_result" then
  local dict = ngx.shared.burn
  local workers = {}
  for _, k in ipairs(dict:get_keys(0)) do
    local pid = k:match("^worker:(%d+)$")
    if pid then workers[#workers + 1] = { pid = tonumber(pid), calls = dict:get(k) } end
  end
  return reply { done = dict:get("done") or 0, errors = dict:get("errors") or 0,
                 workers = di.array(workers) }
end

ngx.status = 404
return reply { error = "no such test endpoint" }
