--- Support for the nginx specs: starts the OpenResty example (and small
-- extra nginx configurations) under build/nginx-spec/, and talks to them
-- with the curl CLI.  Every reply body is remembered, so that a spec can
-- check that the API key never appeared in any of them.
local cjson = require "cjson"
local sbx = require "support.sandbox"

local H = {}

H.root = assert(io.popen("pwd")):read("*l")
H.bodies = {}

function H.sh(cmd) return sbx.sh(cmd) end

local function write(path, content)
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
end
H.write = write

function H.read(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

--- The monotonic-enough wall clock of the specs (seconds, sub-ms).
function H.now()
  local p = assert(io.popen("date +%s.%N"))
  local t = tonumber(p:read("*l"))
  p:close()
  return t
end

local used = {}
--- A free TCP port on 127.0.0.1, from scripts/free-port (the project's one
-- picker), never one this process already handed out.
function H.free_port()
  for _ = 1, 50 do
    local out = H.sh(H.root .. "/scripts/free-port")
    local p = tonumber(out:match("%d+"))
    if p and not used[p] then used[p] = true; return p end
  end
  error("no free port")
end

--- The sandbox's HTTPS port and TLS directory.
function H.sandbox_port()
  return tonumber(sbx.env("DI_BASE_URL"):match("^https://[^:/]+:(%d+)/"))
end
function H.tls_dir()
  return (sbx.env("DI_CA_FILE"):gsub("/ca%.pem$", ""))
end

--- Starts the example with `examples/openresty/run` in build/nginx-spec/<name>.
-- opts: workers, rate, burst, campaigns, deadline, base_url, extra (text of conf.d/test.conf,
-- where @PREFIX@ and @ROOT@ are replaced).  Returns an instance table:
-- url, dir, errlog, stop().
function H.start_example(name, opts)
  opts = opts or {}
  -- one directory per sandbox, so that runs against different sandboxes
  -- (other checkouts' make test) never share an instance
  local dir = H.root .. "/build/nginx-spec/" .. name .. "-" .. H.sandbox_port()
  H.sh(string.format("DI_OPENRESTY_DIR=%q %s/examples/openresty/run stop", dir, H.root))
  H.sh(string.format("rm -rf %q && mkdir -p %q/conf.d %q/limiter", dir, dir, dir))
  if opts.extra then
    local extra = opts.extra:gsub("@PREFIX@", dir):gsub("@ROOT@", H.root)
    write(dir .. "/conf.d/test.conf", extra)
    -- the example's init_worker_by_lua runs conf.d/worker.lua (nginx takes one such block)
    local hook = extra:match("# worker: (%S+)")
    if hook then write(dir .. "/conf.d/worker.lua", "dofile(" .. string.format("%q", hook) .. ")\n") end
  end
  local env = {
    DI_OPENRESTY_DIR = dir,
    DI_OPENRESTY_WORKERS = tostring(opts.workers or 1),
    DI_RATE = tostring(opts.rate or 1000),
    DI_BURST = tostring(opts.burst or 100),
    DI_LIMITER_DIR = dir .. "/limiter",
    DI_DASHBOARD_CAMPAIGNS = opts.campaigns,
    DI_OPENRESTY_LOG_LEVEL = opts.log_level,
    DI_OPENRESTY_DEADLINE = opts.deadline and tostring(opts.deadline),
    DI_OPENRESTY_EVENTS_OPTS = opts.events,
    DI_WEBHOOK_SECRET = opts.secret or "spec-webhook-secret",
    DI_LIMITER_URL = opts.limiter_url,
    DI_BASE_URL = opts.base_url,
    DI_LOG_FORMAT = opts.log_format,
  }
  local parts = {}
  for k, v in pairs(env) do parts[#parts + 1] = string.format("%s=%q", k, v) end
  local out, ok = H.sh(table.concat(parts, " ") .. " " .. H.root .. "/examples/openresty/run start")
  assert(ok, "the example did not start: " .. out)
  local inst = { dir = dir, url = out:match("(http://%S+)"), errlog = dir .. "/logs/error.log" }
  function inst.stop()
    H.sh(string.format("DI_OPENRESTY_DIR=%q %s/examples/openresty/run stop", dir, H.root))
  end
  return inst
end

--- The test server beside the example (opts.extra of start_example): the
-- spec's handler (spec/nginx/handler.lua) on a free port, and the
-- shared-limit load (spec/nginx/burn.lua) in every worker.  Returns the
-- configuration text and the handler's base URL.
function H.handler_server()
  local port = H.free_port()
  return table.concat({
    "lua_shared_dict burn 1m;",
    "# worker: @ROOT@/spec/nginx/burn.lua",
    "server {",
    "  listen 127.0.0.1:" .. port .. ";",
    "  location /t/ { content_by_lua_file @ROOT@/spec/nginx/handler.lua; }",
    "}",
  }, "\n"), "http://127.0.0.1:" .. port .. "/t/"
end

--- Starts nginx on a complete configuration text (with @PREFIX@/@ROOT@),
-- in build/nginx-spec/<name>.  Returns { dir, errlog, stop() }.
function H.start_conf(name, conf)
  local dir = H.root .. "/build/nginx-spec/" .. name .. "-" .. H.sandbox_port()
  H.sh(string.format("mkdir -p %q/logs %q/tmp", dir, dir))
  local pidfile = dir .. "/nginx.pid"
  local function stop()
    local pid = H.read(pidfile):match("%d+")
    if pid then
      H.sh("kill -QUIT " .. pid .. "; for i in $(seq 50); do kill -0 " .. pid
        .. " 2>/dev/null || break; sleep 0.1; done; kill -KILL " .. pid .. " 2>/dev/null")
      os.remove(pidfile)
    end
  end
  stop()
  write(dir .. "/nginx.conf", (conf:gsub("@PREFIX@", dir):gsub("@ROOT@", H.root)))
  local out, ok = H.sh(string.format("nginx -p %q -c %q/nginx.conf -e %q/logs/error.log", dir, dir, dir))
  assert(ok, "nginx did not start: " .. out .. H.read(dir .. "/logs/error.log"))
  return { dir = dir, errlog = dir .. "/logs/error.log", stop = stop }
end

--- The load_module lines and Lua paths every configuration needs.
H.PREAMBLE = [[
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
]]

--- An HTTP request with the curl CLI.  opts: method, body, type (Content-
-- Type), max_time.  Returns status, body, headers text, seconds.
function H.http(url, opts)
  opts = opts or {}
  local hdr, bodyf = os.tmpname(), os.tmpname()
  local cmd = { "curl -sS -o", string.format("%q", bodyf), "-D", string.format("%q", hdr),
                "-w '%{http_code} %{time_total}'", "--max-time", tostring(opts.max_time or 20) }
  if opts.method then cmd[#cmd + 1] = "-X " .. opts.method end
  local inf
  if opts.body then
    inf = os.tmpname()
    write(inf, opts.body)
    cmd[#cmd + 1] = string.format("--data-binary @%q", inf)
    cmd[#cmd + 1] = string.format("-H 'Content-Type: %s'",
      opts.type or "application/x-www-form-urlencoded")
  end
  for _, h in ipairs(opts.headers or {}) do cmd[#cmd + 1] = string.format("-H %q", h) end
  cmd[#cmd + 1] = string.format("%q", url)
  local out = H.sh(table.concat(cmd, " "))
  local body, headers = H.read(bodyf), H.read(hdr)
  os.remove(hdr); os.remove(bodyf); if inf then os.remove(inf) end
  local status, secs = out:match("(%d+) ([%d%.]+)%s*$")
  H.bodies[#H.bodies + 1] = headers .. body
  return tonumber(status), body, headers, tonumber(secs)
end

--- GET url and decode its JSON reply: status, table.
function H.get_json(url, opts)
  local status, body = H.http(url, opts)
  local ok, v = pcall(cjson.decode, body)
  assert(ok, "not JSON (" .. tostring(status) .. "): " .. body:sub(1, 300))
  return status, v
end

--- POST params (a table) as JSON to the sandbox API, straight with curl:
-- an independent check of what the library reports.
function H.api(service, method, params)
  local body = { AuthKey = { idKey = tonumber(sbx.env("DI_KEY_ID")), Key = sbx.env("DI_KEY") },
                 idProject = tonumber(sbx.env("DI_PROJECT")) }
  for k, v in pairs(params or {}) do body[k] = v end
  local f = os.tmpname()
  write(f, cjson.encode(body))
  local out = H.sh(string.format("curl -sS --cacert %q -H 'Content-Type: application/json' "
    .. "--data-binary @%q '%s%s.ashx?method=%s'", sbx.env("DI_CA_FILE"), f,
    sbx.env("DI_BASE_URL"), service, method))
  os.remove(f)
  return cjson.decode((out:gsub("^\239\187\191", "")))
end

--- The sandbox log entries after `since` for one service.method (lower case).
function H.calls(since, key)
  local n, list = 0, {}
  for _, e in ipairs(sbx.log(since)) do
    if (e.service .. "." .. e.method):lower() == key then
      n = n + 1
      list[n] = e
    end
  end
  return n, list
end

return H
