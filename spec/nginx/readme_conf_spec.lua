-- The minimal nginx.conf of examples/openresty/README.md works as written
-- (issue 15, point 12): the spec takes its set-up commands and its
-- configuration from the README (the blocks after their markers), replaces
-- only the paths, the port and the resolver's address, runs the set-up as
-- root, starts the configuration in a real nginx and subscribes a contact
-- through it.  Also what the README says of errors (they are tables) and
-- of timeouts (seconds: over 600 s warns once) inside nginx.
local sbx = require "support.sandbox"
local H = require "nginx.helper"

local README = H.root .. "/examples/openresty/README.md"

local function plain(s) return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")) end

-- The fenced block of `lang` right after the marker line that starts with
-- `<!-- ` .. marker, its indentation removed.
local function block(text, marker, lang)
  local lines = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  for i, line in ipairs(lines) do
    if line:match("^%s*<!%-%- " .. plain(marker)) then
      local indent = assert((lines[i + 1] or ""):match("^(%s*)```" .. lang .. "%s*$"),
        "README: the marker '" .. marker .. "' is not right before a ```" .. lang .. " fence")
      local out, j = {}, i + 2
      while lines[j] and not lines[j]:match("^%s*```%s*$") do
        out[#out + 1] = lines[j]:sub(#indent + 1)
        j = j + 1
      end
      assert(lines[j], "README: the block after '" .. marker .. "' never ends")
      return table.concat(out, "\n") .. "\n"
    end
  end
  error("README: no marker '<!-- " .. marker .. "' (examples/openresty/README.md)")
end

-- Replaces each `from` (plain text) by its `to`; each must be there, so
-- that a README that changed its paths fails here instead of half-working.
local function substitute(text, pairs_)
  for _, p in ipairs(pairs_) do
    local n
    text, n = text:gsub(plain(p[1]), (p[2]:gsub("%%", "%%%%")))
    assert(n > 0, "README: '" .. p[1] .. "' is not in the block any more")
  end
  return text
end

-- The name server of /etc/resolv.conf, as the README says to find it.
local function nameserver()
  local ns = H.sh("awk '/^nameserver/ { print $2; exit }' /etc/resolv.conf"):match("%S+")
  assert(ns, "/etc/resolv.conf names no nameserver: the README's resolver advice needs one")
  return ns:find(":", 1, true) and ("[" .. ns .. "]") or ns
end

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

describe("the OpenResty README's minimal nginx.conf", function()
  local dir, conf, url, env
  local stamp = tostring(os.time()) .. tostring(math.random(1000, 9999))

  local function nginx(args)
    return H.sh(string.format("%s nginx -c %q %s", env, conf, args or ""))
  end

  setup(function()
    local uid = H.sh("id -u"):match("%d+")
    assert(uid == "0", "this spec runs the README's set-up (groupadd, usermod, install -o root), "
      .. "which needs root: run it as root, as make test does here")
    sbx.reset()
    dir = H.root .. "/build/nginx-spec/readme-" .. H.sandbox_port()
    conf = dir .. "/nginx.conf"
    local port = H.free_port()
    local paths = {
      { "/srv/dialoginsight-nginx", dir },
      { "/var/lib/dialoginsight", dir .. "/limiter" },
    }
    local text = H.read(README)
    local setup_sh = substitute(block(text, "setup of the minimal nginx.conf", "sh"), paths)
    local conf_text = substitute(block(text, "minimal nginx.conf:", "nginx"), {
      paths[1], paths[2],
      { "/opt/dialoginsight", H.root },
      { "/etc/ssl/certs/ca-certificates.crt", sbx.env("DI_CA_FILE") },
      { "127.0.0.1:8080", "127.0.0.1:" .. port },
      { "resolver 10.0.0.2 ", "resolver " .. nameserver() .. " " },
    })
    H.sh(string.format("kill -QUIT $(cat %q/nginx.pid 2>/dev/null) 2>/dev/null; rm -rf %q",
      dir, dir))
    H.sh(string.format("mkdir -p %q/logs", dir)) -- (only for the first start, below)
    H.write(conf, conf_text)
    -- the sandbox's base URL with the name its certificate holds, as the README says
    env = "DI_BASE_URL=" .. sbx.env("DI_BASE_URL"):gsub("//127%.0%.0%.1:", "//localhost:")
    url = "http://127.0.0.1:" .. port .. "/subscribe"

    -- without the set-up, nginx refuses to start, as the README says
    local out, ok = nginx()
    assert(not ok, "nginx started without the limiter's directory")
    assert.truthy(out:find("setting 'limiter_dir': cannot use " .. dir .. "/limiter: No such file "
      .. "or directory", 1, true), out)
    H.sh(string.format("rm -rf %q", dir))

    out, ok = H.sh("set -e\n" .. setup_sh)
    assert(ok, "the README's set-up failed: " .. out)
    H.write(conf, conf_text)
    out, ok = nginx()
    assert(ok, "nginx did not start: " .. out .. H.read(dir .. "/logs/error.log"))
    for _ = 1, 50 do
      if H.sh("curl -s -o /dev/null -w '%{http_code}' " .. url):match("^[1-5]") then break end
      H.sh("sleep 0.1")
    end
  end)

  teardown(function()
    if conf then nginx("-s stop") end
  end)

  it("starts with the set-up as written: workers as www-data, the limiter group-shared", function()
    local master = H.read(dir .. "/nginx.pid"):match("%d+")
    assert.truthy(master, "no pid file")
    local users = H.sh("ps -o user= --ppid " .. master)
    assert.truthy(users:find("www-data", 1, true), "workers run as: " .. users)
    assert.falsy(users:find("root", 1, true), "a worker runs as root: " .. users)
    assert.equal("2770 root dialoginsight", H.sh(string.format("stat -c '%%a %%U %%G' %q",
      dir .. "/limiter")):match("[^\n]+"))
    local file = H.sh(string.format("ls %q", dir .. "/limiter")):match("[^\n]+%.gcra")
    assert.truthy(file, "no limiter file in " .. dir .. "/limiter")
    assert.equal("660 dialoginsight", H.sh(string.format("stat -c '%%a %%G' %q",
      dir .. "/limiter/" .. file)):match("[^\n]+"))
  end)

  it("subscribes a contact through the handler", function()
    local email = "readme-conf-" .. stamp .. "@example.com"
    local status, body = H.http(url, { body = "email=" .. urlencode(email) .. "&name=Zo%C3%A9" })
    assert.equal(200, status, body)
    assert.equal("created\n", body)
    local c = sbx.control("GET", "contact?email=" .. urlencode(email)).contact
    assert.truthy(c, "the contact is not in the sandbox")
    assert.equal("Zoé", c.f_FirstName)
    assert.is_true(c.optin_Newsletter)
    status, body = H.http(url, { body = "email=" .. urlencode(email) .. "&name=Zoe" })
    assert.equal(200, status, body)
    assert.equal("updated\n", body)
  end)

  it("answers 422 with the error's kind, and logs the whole error", function()
    local status, body = H.http(url, { body = "name=Nobody" })
    assert.equal(422, status, body)
    assert.equal("failed: validation\n", body)
    local log = H.read(dir .. "/logs/error.log")
    assert.truthy(log:find("subscribe: dialoginsight", 1, true), log)
    assert.falsy(log:find(sbx.env("DI_KEY"), 1, true), "the key is in the error log")
    assert.falsy(log:find("%[emerg%]") or log:find("%[alert%]") or log:find("%[crit%]")
      or log:find("lua entry thread aborted", 1, true), log)
  end)
end)

describe("in nginx", function()
  local inst, port

  setup(function()
    port = H.free_port()
    -- a fresh error log: the warning is counted in it
    os.remove(H.root .. "/build/nginx-spec/errors-timeouts-" .. H.sandbox_port() .. "/logs/error.log")
    inst = H.start_conf("errors-timeouts", H.PREAMBLE .. table.concat({
      "worker_processes 1;",
      "pid @PREFIX@/nginx.pid;",
      "error_log @PREFIX@/logs/error.log warn;",
      "events {}",
      "http {",
      '  lua_package_path "@ROOT@/lua/?.lua;@ROOT@/lua/?/init.lua;;";',
      '  lua_package_cpath "@ROOT@/build/luajit/?.so;;";',
      "  init_by_lua_block {",
      '    DI = require("dialoginsight").new { env = false, key_id = 1, key = "k-0123456789abcdef",',
      '      base_url = "https://localhost:9/ofc4/", rate = false, timeout = 10 }',
      '    E = require("dialoginsight.errors").new { kind = "network", message = "boom" }',
      "  }",
      "  server {",
      "    listen 127.0.0.1:" .. port .. ";",
      "    location = /say { content_by_lua_block { ngx.say(E) } }",
      '    location = /say2 { content_by_lua_block { ngx.say("failed: ", E) } }',
      "    location = /tostring { content_by_lua_block { ngx.say(tostring(E)) } }",
      '    location = /concat { content_by_lua_block { ngx.say("failed: " .. E) } }',
      '    location = /log { content_by_lua_block { ngx.log(ngx.ERR, "failed: ", E); ngx.say("logged") } }',
      "    location = /timeout { content_by_lua_block {",
      '      assert(DI:prepare("projects", "List", {}, { timeout = 5000 })); ngx.say("prepared") } }',
      "  }",
      "}",
    }, "\n"))
  end)

  teardown(function() if inst then inst.stop() end end)

  local function get(path)
    local status, body
    for _ = 1, 50 do
      status, body = H.http("http://127.0.0.1:" .. port .. path)
      if status then return status, body end
      H.sh("sleep 0.1")
    end
    return status, body
  end

  it("an error object fails ngx.say, and reads as text through tostring, .. and ngx.log", function()
    assert.equal(500, (get("/say")))
    assert.equal(500, (get("/say2")))
    assert.same({ 200, "dialoginsight: network: boom\n" }, { get("/tostring") })
    assert.same({ 200, "failed: dialoginsight: network: boom\n" }, { get("/concat") })
    assert.same({ 200, "logged\n" }, { get("/log") })
    local log = H.read(inst.errlog)
    assert.truthy(log:find("bad argument #1 to 'say' (non-array table found)", 1, true), log)
    assert.truthy(log:find("failed: dialoginsight: network: boom", 1, true), log)
  end)

  it("a per-call timeout over 600 s warns once per worker, in the error log", function()
    for _ = 1, 3 do assert.same({ 200, "prepared\n" }, { get("/timeout") }) end
    local log = H.read(inst.errlog)
    local n = 0
    for _ in log:gmatch("WARNING: option 'timeout' is 5000 seconds %(over 600%)") do n = n + 1 end
    assert.equal(1, n, log)
  end)
end)
