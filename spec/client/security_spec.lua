-- What SECURITY.md promises of TLS and of the code itself.
local di = require "dialoginsight"
local sbx = require "support.sandbox"

local LUA = require("support.runtime").lua

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- A TLS server whose certificate is signed by the sandbox's CA, but for
-- another name: trusted issuer, wrong host.
local mismatch = {}

function mismatch.start()
  local tls = sbx.env("DI_CA_FILE"):match("^(.*)/[^/]+$")
  local dir = (sbx.sh("mktemp -d"):gsub("%s+$", ""))
  local ext = dir .. "/ext"
  local f = assert(io.open(ext, "w"))
  f:write("subjectAltName=DNS:wrong.example\nextendedKeyUsage=serverAuth\n")
  f:close()
  local out, ok = sbx.sh(string.format(
    "cd %s && openssl ecparam -name prime256v1 -genkey -noout -out key.pem && "
    .. "openssl req -new -key key.pem -subj /CN=wrong.example -out req.csr && "
    .. "openssl x509 -req -in req.csr -CA %s -CAkey %s -CAcreateserial -days 2 "
    .. "-extfile ext -out cert.pem", q(dir), q(tls .. "/ca.pem"), q(tls .. "/ca.key")))
  assert(ok, out)
  local socket = require "socket"
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  sbx.sh(string.format("cd %s && (openssl s_server -quiet -www -accept 127.0.0.1:%d "
    .. "-cert cert.pem -key key.pem > /dev/null 2>&1 & echo $! > pid)", q(dir), port))
  for _ = 1, 100 do
    local c = socket.tcp()
    c:settimeout(0.1)
    if c:connect("127.0.0.1", port) then c:close(); break end
    c:close()
    socket.sleep(0.05)
  end
  mismatch.dir, mismatch.port = dir, port
  return "https://127.0.0.1:" .. port .. "/webservices/ofc4/"
end

function mismatch.stop()
  if mismatch.dir then
    sbx.sh(string.format("kill $(cat %s/pid); rm -rf %s", q(mismatch.dir), q(mismatch.dir)))
  end
end

describe("TLS", function()
  local url
  setup(function() url = mismatch.start() end)
  teardown(function() mismatch.stop() end)

  it("refuses a certificate for another host, even from a trusted CA", function()
    local c = di.new(sbx.settings { base_url = url, retries = 0 })
    local r, err = c:call("projects", "List", {})
    assert.is_nil(r)
    assert.equal("tls", err.kind)
    assert.is_false(err.sent)
    assert.is_false(err.retryable)
  end)

  it("refuses a certificate from an unknown CA (the system store)", function()
    local s = sbx.settings { retries = 0 }
    s.ca_file = nil
    local _, err = di.new(s):call("projects", "List", {})
    assert.equal("tls", err.kind)
  end)

  it("verifies by default, and turns off only when told, with one warning", function()
    assert.is_true(di.new(sbx.settings()).settings.tls_verify)
    assert.has_error(function() di.new(sbx.settings { tls_verify = "no" }) end)
    -- in a child process, so the once-per-process warning is observable
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write(string.format([[
      local di = require "dialoginsight"
      local sbx = require "support.sandbox"
      local a = di.new(sbx.settings { base_url = %q, tls_verify = false, retries = 0, timeout = 1 })
      local b = di.new(sbx.settings { base_url = %q, tls_verify = false, retries = 0, timeout = 1 })
      local _, err = a:call("projects", "List", {})
      print(err and ("kind=" .. err.kind .. " sent=" .. tostring(err.sent)) or "ok")
    ]], url, url))
    f:close()
    local p = assert(io.popen(LUA .. " " .. script .. " 2>&1"))
    local out = p:read("*a")
    p:close()
    os.remove(script)
    local warnings = select(2, out:gsub("WARNING: TLS verification is off", ""))
    assert.equal(1, warnings, out)
    -- the handshake went through and the request was sent (the test server
    -- does not speak OFC4, so the call then fails, but not on TLS)
    assert.falsy(out:find("kind=tls", 1, true), out)
    assert.truthy(out:find("kind=%a+ sent=true") or out:find("kind=decode", 1, true), out)
  end)
end)

describe("headers and URLs (issue 13)", function()
  local core = require "dialoginsight.core"

  local function refused(extra, needle)
    local ok, err = pcall(di.new, sbx.settings(extra))
    assert.is_false(ok, "accepted: " .. needle)
    assert.truthy(tostring(err):find(needle, 1, true), tostring(err))
  end

  it("lets no CR, LF or control byte into the User-Agent header, in di.new or the C core", function()
    for _, ua in ipairs { "x\r\nX-Injected: 1", "x\nX-Injected: 1", "x\rY", "x\0y", "x\127" } do
      refused({ user_agent = ua }, "'user_agent'")
    end
    local ok, err = pcall(core.session, { verify = true, http2 = false, timeout = 1,
      connect_timeout = 1, user_agent = "x\r\nX-Injected: 1" })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("user_agent", 1, true), tostring(err))
  end)

  it("refuses a base_url that could split a request line or carry a password", function()
    local base = sbx.env("DI_BASE_URL")
    for _, u in ipairs { base .. "\r\nX-Injected: 1", base .. " x", base .. "\t", base .. "\127",
                         (base:gsub("//", "//user:hunter2@")), (base:gsub("//", "//@")),
                         base .. "?a=1", base .. "#top", "https:///x/", "https://[::1/x/" } do
      refused({ base_url = u }, "'base_url'")
    end
    -- and what was accepted before is still: names, ports, IPv6 literals, no trailing slash
    for _, u in ipairs { "https://app.dialoginsight.com/webservices/ofc4/",
                         "https://localhost:8443/x", "https://[::1]:8443/ofc4/" } do
      local c = di.new(sbx.settings { base_url = u, rate = false })
      assert.truthy(c.base_url:sub(-1) == "/")
      assert.falsy(tostring(c):find("hunter2", 1, true))
    end
  end)
end)

describe("the code", function()
  it("never hands anything to a shell (no os.execute, io.popen, system, popen)", function()
    -- user data (field values, CSV rows, file names) could reach a shell
    -- only through one of these; the library and the host use none
    local out = sbx.sh([[grep -rnE 'os\.execute|io\.popen|[^_a-z]system *\(|[^_a-z]popen *\(' lua src]])
    assert.equal("", out)
    -- and the check itself can find what it looks for
    assert.truthy(sbx.sh([[grep -rnE 'io\.popen' spec/support]]):find("popen", 1, true))
  end)
end)
