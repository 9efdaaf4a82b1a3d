--- The transport contract (docs/transport.md) as cases that run against any
-- transport: spec/client/transport_spec.lua runs them on the curl
-- transport, spec/nginx/transport_spec.lua on the ngx transport inside a
-- real nginx (through spec/nginx/handler.lua's /t/transport endpoint).
-- They use no busted API, so that they also run inside nginx.
--
-- Each case: { name, faults (the sandbox's, set by the caller before it
-- runs), run = function(t, env) -> nil, or what broke the contract }.
-- env: base (the sandbox's base URL as this transport reaches it), body
-- (the JSON of a valid projects.List call), closed (a URL nobody listens on).
local M = {}

local function check(cond, what, ...)
  if not cond then error(string.format(what, ...), 0) end
end

local FIELDS = { status = 1, body = 1, seconds = 1, http_version = 1, retry_after = 1,
                 kind = 1, message = 1, sent = 1, tag = 1, limit = 1 }

-- r is exactly one of the two reply shapes, and no other member.
local function shape(r)
  check(type(r) == "table", "the reply is a %s, not a table", type(r))
  for k in pairs(r) do check(FIELDS[k], "unknown reply member %s", tostring(k)) end
  if r.status ~= nil then
    check(math.type == nil or math.type(r.status) == "integer" or r.status == math.floor(r.status),
      "status %s is not an integer", tostring(r.status))
    check(type(r.body) == "string", "body is a %s", type(r.body))
    check(type(r.seconds) == "number" and r.seconds >= 0, "seconds is %s", tostring(r.seconds))
    check(r.http_version == 1.0 or r.http_version == 1.1 or r.http_version == 2,
      "http_version is %s", tostring(r.http_version))
    check(r.kind == nil and r.message == nil and r.sent == nil, "a reply with failure members")
    check(r.retry_after == nil or type(r.retry_after) == "string", "retry_after is a %s, not the header's text",
      type(r.retry_after))
  else
    check(r.kind == "network" or r.kind == "timeout" or r.kind == "tls" or r.kind == "too_large",
      "kind is %s", tostring(r.kind))
    check((r.limit ~= nil) == (r.kind == "too_large"), "limit %s with kind %s", tostring(r.limit), r.kind)
    check(type(r.message) == "string" and r.message ~= "", "no message")
    check(type(r.sent) == "boolean", "sent is a %s", type(r.sent))
    check(r.body == nil and r.seconds == nil, "a failure with reply members")
  end
  return r
end

local function list_url(env) return env.base .. "projects.ashx?method=List" end

M.cases = {
  { name = "a reply: status, body, seconds, http_version", run = function(t, env)
    local r = shape(t:post(list_url(env), env.body))
    check(r.status == 200, "status %s", tostring(r.status))
    check(r.body:find('"Success"', 1, true), "the body is not the envelope: %s", r.body:sub(1, 80))
    check(r.retry_after == nil, "retry_after without the header")
  end },

  { name = "a 429 with Retry-After", faults = { { type = "status", status = 429, retry_after = 2, next = 1 } },
    run = function(t, env)
    local r = shape(t:post(list_url(env), env.body))
    check(r.status == 429, "status %s", tostring(r.status))
    check(r.retry_after == "2", "retry_after %s", tostring(r.retry_after))
  end },

  -- rev2: the header's text, unread (call/reply.lua reads it for both
  -- transports); LuaJIT's tonumber read "nan" as NaN on cosockets
  { name = "a Retry-After that is no number, handed over as its text",
    faults = { { type = "limit", retry_after_text = "nan", next = 1 } }, run = function(t, env)
    local r = shape(t:post(list_url(env), env.body))
    check(r.status == 429, "status %s", tostring(r.status))
    check(r.retry_after == "nan", "retry_after %s (%s)", tostring(r.retry_after), type(r.retry_after))
  end },

  { name = "a fresh connection gets the same reply", run = function(t, env)
    local r = shape(t:post(list_url(env), env.body, nil, true))
    check(r.status == 200, "status %s", tostring(r.status))
  end },

  { name = "nobody listening: network, not sent", run = function(t, env)
    local r = shape(t:post(env.closed, env.body, 2))
    check(r.kind == "network", "kind %s", tostring(r.kind))
    check(r.sent == false, "sent is true for a connection never made")
  end },

  { name = "a dropped connection: network, sent", faults = { { type = "drop", next = 1 } },
    run = function(t, env)
    local r = shape(t:post(list_url(env), env.body, nil, true))
    check(r.kind == "network", "kind %s", tostring(r.kind))
    check(r.sent == true, "sent is false after the request was written")
  end },

  { name = "a truncated body: network, sent", faults = { { type = "truncate", next = 1 } },
    run = function(t, env)
    local r = shape(t:post(list_url(env), env.body, nil, true))
    check(r.kind == "network", "kind %s (status %s)", tostring(r.kind), tostring(r.status))
    check(r.sent == true, "sent is false")
  end },

  { name = "no reply in time: timeout", faults = { { type = "latency", ms = 1500, next = 1 } },
    run = function(t, env)
    local started = t:now()
    local r = shape(t:post(list_url(env), env.body, 0.4, true))
    check(r.kind == "timeout", "kind %s", tostring(r.kind))
    check(t:now() - started < 1.2, "the timeout did not cut the wait: %.2f s", t:now() - started)
  end },

  { name = "multi: every call completes once, with its tag", run = function(t, env)
    local m = t:multi()
    for tag = 7, 9 do m:add(tag, list_url(env), env.body) end
    check(m:pending() == 3, "pending %s after 3 adds", tostring(m:pending()))
    local seen, started = {}, t:now()
    while m:pending() > 0 and t:now() - started < 10 do
      for _, r in ipairs(m:perform(1)) do
        shape(r)
        check(r.status == 200, "status %s", tostring(r.status or r.kind))
        check(not seen[r.tag], "tag %s completed twice", tostring(r.tag))
        seen[r.tag] = true
      end
    end
    m:close()
    check(seen[7] and seen[8] and seen[9], "not every tag completed")
  end },

  { name = "multi: a failure is a reply table with its tag", run = function(t, env)
    local m = t:multi()
    m:add(3, env.closed, env.body, 2)
    local got, started = nil, t:now()
    while not got and t:now() - started < 10 do got = m:perform(1)[1] end
    m:close()
    check(got, "no completion")
    shape(got)
    check(got.tag == 3 and got.kind == "network" and got.sent == false,
      "tag %s kind %s sent %s", tostring(got.tag), tostring(got.kind), tostring(got.sent))
  end },

  -- issue 21, class 9: max_reply_bytes (64 MiB by default); the sandbox's
  -- large fault sends 80 MiB, and would send more
  { name = "a body over max_reply_bytes with its Content-Length: too_large, not read",
    faults = { { type = "large", bytes = 80 * 1048576, next = 1 } }, run = function(t, env)
    local a = t:now()
    local r = shape(t:post(list_url(env), env.body, 20))
    check(r.kind == "too_large" and r.sent == true and r.limit == 64 * 1048576,
      "kind %s sent %s limit %s", tostring(r.kind), tostring(r.sent), tostring(r.limit))
    check(r.message:find("max_reply_bytes", 1, true) and r.message:find("83886080", 1, true),
      "the message: %s", r.message)
    check(t:now() - a < 2, "%.2f s: the body was read", t:now() - a)
  end },

  { name = "a body over max_reply_bytes without a length: too_large at the limit",
    faults = { { type = "large", bytes = 80 * 1048576, length = false, next = 1 } }, run = function(t, env)
    local r = shape(t:post(list_url(env), env.body, 20))
    check(r.kind == "too_large" and r.sent == true, "kind %s sent %s", tostring(r.kind), tostring(r.sent))
    check(r.message:find("max_reply_bytes", 1, true), "the message: %s", r.message)
  end },

  { name = "a body of max_reply_bytes less a byte is read", run = function(t, env)
    -- (64 MiB itself: the limit is on the body, inclusive)
    local r = shape(t:post(list_url(env), env.body, 20))
    check(r.status == 200, "status %s", tostring(r.status or r.kind))
  end, faults = { { type = "large", bytes = 64 * 1048576, length = false, next = 1 } } },

  { name = "a reply dripped a byte every 20 ms: timeout at the attempt's timeout, not per read",
    faults = { { type = "drip", ms = 20, bytes = 1, next = 1 } }, run = function(t, env)
    local a = t:now()
    local r = shape(t:post(list_url(env), env.body, 0.6, true))
    local took = t:now() - a
    check(r.kind == "timeout", "kind %s (status %s) after %.2f s", tostring(r.kind), tostring(r.status), took)
    check(took < 0.6 + 0.25, "%.2f s for a timeout of 0.6 s", took)
  end },

  { name = "now and sleep", run = function(t)
    local a = t:now()
    t:sleep(0.05)
    local d = t:now() - a
    check(d >= 0.04 and d < 1, "sleep(0.05) took %.3f s", d)
  end },
}

--- Runs case i: nil when the transport kept the contract, else why not.
function M.run(i, t, env)
  local ok, why = pcall(M.cases[i].run, t, env)
  if ok then return nil end
  return tostring(why)
end

return M
