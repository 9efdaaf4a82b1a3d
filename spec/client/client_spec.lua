-- The client against the real sandbox, over HTTPS with TLS verified.
local di = require "dialoginsight"
local sbx = require "support.sandbox"

local is54 = math.type ~= nil

local function client(extra)
  return di.new(sbx.settings(extra))
end

local function raises(fn, needle)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error mentioning " .. needle)
  assert.truthy(tostring(err):find(needle, 1, true), tostring(err))
  return tostring(err)
end

local function merge_one(c, email, data)
  return c:call("contacts", "Merge", {
    Records = { { ID = { key_f_EMail = email }, Data = data or { f_FirstName = "Ann" } } },
    MergeOptions = { AllowInsert = true, AllowUpdate = true },
  })
end

describe("settings", function()
  local key = sbx.env("DI_KEY")

  it("names a missing or bad setting, and never shows the key", function()
    local msgs = {
      raises(function() di.new(sbx.settings { key_id = false }) end, "'key_id'"),
      raises(function() di.new(sbx.settings { key_id = "abc" }) end, "'key_id' must be a positive integer"),
      raises(function() di.new(sbx.settings { key_id = 0 }) end, "'key_id'"),
      raises(function() di.new(sbx.settings { key = "" }) end, "'key' must be a non-empty string"),
      raises(function() di.new(sbx.settings { key = 42 }) end, "'key'"),
      raises(function() di.new(sbx.settings { project = -3 }) end, "'project'"),
      raises(function() di.new { key_id = 1, key = key, region = "us", env = false } end, "'region'"),
      raises(function() di.new(sbx.settings { base_url = "ftp://x/" }) end, "'base_url'"),
      raises(function() di.new(sbx.settings { timeout = 0 }) end, "'timeout'"),
      raises(function() di.new(sbx.settings { ca_file = "/nonexistent/ca.pem" }) end, "'ca_file'"),
      raises(function() di.new(sbx.settings { tiemout = 3 }) end, "'tiemout' is not a known setting"),
    }
    local s = sbx.settings()
    s.key = nil
    msgs[#msgs + 1] = raises(function() di.new(s) end, "'key' is missing")
    for _, m in ipairs(msgs) do assert.falsy(m:find(key, 1, true)) end
  end)

  it("never shows the key, whatever setting it lands in (issue 13)", function()
    -- every setting of the schema given the key's value, with the key
    -- itself present (as in a swap of two variables) and absent
    local tried, refused = 0, 0
    for _, def in ipairs(di.config.SETTINGS) do
      for _, with_key in ipairs { true, false } do
        local s = sbx.settings { [def.name] = key }
        if def.name ~= "key" and not with_key then s.key = "0123" end
        local ok, err = pcall(di.new, s)
        tried = tried + 1
        if not ok then
          refused = refused + 1
          assert.falsy(tostring(err):find(key, 1, true), def.name .. ": " .. tostring(err))
          assert.truthy(tostring(err):find("dialoginsight", 1, true), tostring(err))
        end
      end
    end
    assert.is_true(refused >= 20, refused .. " of " .. tried .. " refused")
    -- the environment swapped: DI_KEY_ID holds the key, DI_KEY the id
    local env = { DI_KEY_ID = key, DI_KEY = sbx.env("DI_KEY_ID"), DI_BASE_URL = sbx.env("DI_BASE_URL"),
                  DI_CA_FILE = sbx.env("DI_CA_FILE") }
    local m = raises(function() di.new(di.config.from_env(function(n) return env[n] end)) end,
      "'key_id' must be a positive integer (got a string of " .. #key .. " bytes)")
    assert.falsy(m:find(key, 1, true), m)
    env.DI_KEY, env.DI_KEY_ID, env.DI_PROJECT = key, sbx.env("DI_KEY_ID"), key
    m = raises(function() di.new(di.config.from_env(function(n) return env[n] end)) end, "'project'")
    assert.falsy(m:find(key, 1, true), m)
    -- the key as a setting's name
    m = raises(function() di.new(sbx.settings { [key] = true }) end, "not a known setting")
    assert.falsy(m:find(key, 1, true), m)
    -- no other setting may carry it: a header, tostring(client), file names
    raises(function() di.new(sbx.settings { user_agent = "app " .. key }) end,
      "'user_agent' holds the API key")
    raises(function() di.new(sbx.settings { base_url = sbx.env("DI_BASE_URL") .. key .. "/" }) end,
      "'base_url' holds the API key")
    -- numbers cannot be the key: they are shown
    raises(function() di.new(sbx.settings { key_id = -3 }) end, "(got -3)")
  end)

  it("refuses plain http unless asked for on purpose", function()
    raises(function() di.new(sbx.settings { base_url = sbx.env("DI_SANDBOX_HTTP_URL") }) end,
      "set allow_http = true")
    local c = di.new(sbx.settings { base_url = sbx.env("DI_SANDBOX_HTTP_URL"), allow_http = true })
    assert.is_table(c:call("projects", "List", {}))
  end)

  it("fills what a table leaves out from the DI_* environment; env = false turns that off", function()
    -- the specs run with the sandbox's DI_* exported (build/sandbox/env)
    local c = di.new { project = tonumber(sbx.env("DI_PROJECT")), rate = 1000 }
    local base = sbx.env("DI_BASE_URL")
    if base:sub(-1) ~= "/" then base = base .. "/" end
    assert.equal(base, c.base_url)
    assert.equal(tonumber(sbx.env("DI_KEY_ID")), c.key_id)
    assert(c:call("projects", "List", {})) -- the key came from DI_KEY
    -- what the table gives wins over the environment
    c = di.new { key_id = 77, rate = false }
    assert.equal(77, c.key_id)
    raises(function() di.new { project = 1, env = false } end, "'key_id' is missing")
    -- a region given in the table beats DI_BASE_URL, as base_url would
    assert.equal("https://app.mydialoginsight.com/webservices/ofc4/",
      di.new({ region = "fr", rate = false }).base_url)
    raises(function() di.new { env = "no" } end, "'env'")
  end)

  it("defaults to the Canadian host, and knows the French one", function()
    local c = di.new { key_id = 1, key = key, env = false }
    assert.equal("https://app.dialoginsight.com/webservices/ofc4/", c.base_url)
    c = di.new { key_id = 1, key = key, region = "fr", env = false }
    assert.equal("https://app.mydialoginsight.com/webservices/ofc4/", c.base_url)
  end)

  it("reads DI_* from the environment when given no argument", function()
    local c = di.new()
    assert.equal(sbx.env("DI_BASE_URL"), c.base_url)
    assert.equal(tonumber(sbx.env("DI_PROJECT")), c.project)
    assert.is_table(c:call("projects", "List", {}))
  end)

  it("keeps the key out of tostring(client) and out of the client's fields", function()
    local c = client()
    assert.falsy(tostring(c):find(key, 1, true))
    assert.truthy(tostring(c):find("<redacted>", 1, true))
    local function walk(t, seen)
      seen = seen or {}
      if seen[t] then return end
      seen[t] = true
      for k, v in pairs(t) do
        assert.are_not.equal(key, v, "key found in field " .. tostring(k))
        if type(v) == "table" then walk(v, seen) end
      end
    end
    walk(c)
  end)
end)

describe("client:call", function()
  before_each(function() sbx.reset() end)

  it("lists projects over verified HTTPS, with integer ids", function()
    local r = assert(client():call("projects", "List", {}))
    assert.is_true(r.Success)
    assert.is_true(#r.Records >= 1)
    local found = false
    for _, p in ipairs(r.Records) do
      if p.idProject == tonumber(sbx.env("DI_PROJECT")) then found = true end
      if is54 then assert.equal("integer", math.type(p.idProject)) end
    end
    assert.is_true(found)
    if is54 then assert.equal("integer", math.type(r.idRequest)) end
  end)

  it("adds idProject from the client and merges then reads a contact", function()
    local c = client()
    local r = assert(merge_one(c, "ann@example.com", { f_FirstName = "Anne-Marie", f_City = "Québec" }))
    local id = r.Records[1].IdRecord
    assert.is_number(id)
    if is54 then assert.equal("integer", math.type(id)) end
    local g = assert(c:call("contacts", "Get", {
      Clause = { ["$type"] = "FieldClause", Field = { Name = "f_EMail" },
                 TypeOperator = "Equal", ComparisonValue = "ann@example.com" },
    }))
    assert.equal(1, #g.Records)
    assert.equal(id, g.Records[1].idContact)
    assert.equal("Québec", g.Records[1].f_City)
    if is54 then assert.equal("integer", math.type(g.Records[1].idContact)) end
  end)

  it("matches service and method names case-insensitively, sending the canonical spelling", function()
    local mark = sbx.mark()
    assert(client():call("Contacts", "merge", {
      Records = { { ID = { key_f_EMail = "case@example.com" }, Data = { f_FirstName = "C" } } },
    }))
    local log = sbx.log(mark)
    assert.equal(1, #log)
    assert.equal("contacts", log[1].service:lower())
    assert.equal("merge", log[1].method:lower())
  end)

  it("sends an empty array marked with di.array() as []", function()
    local r = assert(client():call("contacts", "Merge", { Records = di.array() }))
    assert.is_true(r.Success)
    assert.equal(0, r.CreatedRecords)
    -- unmarked, an empty table is an object, which the server refuses
    local _, err = client():call("contacts", "Merge", { Records = {} }, { retries = 0 })
    assert.equal("api", err.kind)
    assert.equal("InvalidParameter", err.code)
  end)

  it("refuses invalid UTF-8 before sending, naming the field", function()
    local mark = sbx.mark()
    local r, err = merge_one(client(), "bad@example.com", { f_City = "Mont\255real" })
    assert.is_nil(r)
    assert.equal("validation", err.kind)
    assert.equal("Records[1].Data.f_City", err.field)
    assert.truthy(tostring(err):find("Records[1].Data.f_City: invalid UTF-8", 1, true), tostring(err))
    assert.equal(0, #sbx.log(mark), "nothing may reach the server")
  end)

  it("raises on programming errors: bad names and params", function()
    local c = client()
    raises(function() c:call("contacts/../x", "Merge", {}) end, "bad service name")
    raises(function() c:call("contacts", "Mer ge", {}) end, "bad method name")
    raises(function() c:call("contacts", "Merge", "Records") end, "must be a table")
  end)

  it("reaches methods the registry does not know, with auth and project", function()
    local r, err = client():call("contacts", "NoSuchMethod", {}, { retries = 0 })
    assert.is_nil(r)
    assert.equal("http", err.kind)
    assert.equal(404, err.status)
    assert.equal("UnknownMethod", err.code)
  end)
end)

describe("errors", function()
  before_each(function() sbx.reset() end)
  after_each(function() sbx.clear_faults() end)

  local function fails(c, service, method, params)
    local r, err = c:call(service or "contacts", method or "Merge",
      params or { Records = { { ID = { key_f_EMail = "e@example.com" }, Data = {} } } },
      { retries = 0 })
    assert.is_nil(r)
    assert.is_true(di.is_error(err))
    return err
  end

  it("maps Success:false to kind api with code, message and request id", function()
    local err = fails(client(), "contacts", "Get", { Clause = "not a clause" })
    assert.equal("api", err.kind)
    assert.equal(200, err.status)
    assert.equal("InvalidParameter", err.code)
    assert.is_string(err.message)
    assert.is_number(err.request_id)
    assert.equal("contacts", err.service)
    assert.equal("Get", err.method)
    assert.is_false(err.retryable)
    assert.truthy(tostring(err):find("contacts.Get: api InvalidParameter", 1, true), tostring(err))
  end)

  it("maps a bad key (HTTP 401) to kind auth", function()
    local err = fails(client { key = "wrong-key-123" })
    assert.equal("auth", err.kind)
    assert.equal(401, err.status)
    assert.equal("InvalidAuthKey", err.code)
  end)

  it("maps a project the key may not access to kind auth (AccessDenied)", function()
    local err = fails(client { project = tonumber(sbx.env("DI_OTHER_PROJECT")) })
    assert.equal("auth", err.kind)
    assert.equal("AccessDenied", err.code)
  end)

  it("maps an HTTP 400 reply to kind http with the server's code", function()
    -- Our encoder cannot produce a body the server rejects as non-JSON, so
    -- the 400 comes from the sandbox through curl, then goes through the
    -- client's mapping.
    local out = sbx.sh(string.format(
      "curl -s --cacert %q -d 'not json' %q", sbx.env("DI_CA_FILE"),
      sbx.env("DI_BASE_URL") .. "contacts.ashx?method=Merge"))
    local c = client()
    local req = assert(c:prepare("contacts", "Merge", {}))
    local r, err = c:interpret(req, 400, out)
    assert.is_nil(r)
    assert.equal("http", err.kind)
    assert.equal(400, err.status)
    assert.equal("InvalidRequest", err.code)
  end)

  for _, status in ipairs { 500, 503 } do
    it("maps an injected " .. status .. " to kind http, retryable for Merge", function()
      sbx.faults { { type = "status", status = status, next = 1 } }
      local err = fails(client())
      assert.equal("http", err.kind)
      assert.equal(status, err.status)
      assert.equal("ServerError", err.code)
      assert.is_true(err.retryable)
    end)
  end

  it("maps an injected 429 to kind rate_limited with Retry-After", function()
    sbx.faults { { type = "status", status = 429, retry_after = 3, next = 1 } }
    local err = fails(client())
    assert.equal("rate_limited", err.kind)
    assert.equal(429, err.status)
    assert.equal(3, err.retry_after)
    assert.is_true(err.retryable)
  end)

  it("maps a refused connection to kind network, marked as never sent", function()
    -- a port nobody listens on: bind one, close it, use it
    local socket = require "socket"
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    s:close()
    local err = fails(client { base_url = "https://127.0.0.1:" .. port .. "/webservices/ofc4/" })
    assert.equal("network", err.kind)
    assert.is_false(err.sent)
    assert.is_true(err.retryable)
  end)

  it("maps a slow reply to kind timeout", function()
    sbx.faults { { type = "latency", ms = 1500, next = 1 } }
    local err = fails(client { timeout = 0.3 })
    assert.equal("timeout", err.kind)
    assert.is_true(err.sent)
  end)

  it("maps an unverifiable certificate to kind tls (verification is on by default)", function()
    local s = sbx.settings()
    s.ca_file = nil -- the system store does not know the sandbox's CA
    local err = fails(di.new(s))
    assert.equal("tls", err.kind)
    assert.is_false(err.retryable)
  end)

  it("maps a dropped connection to kind network", function()
    sbx.faults { { type = "drop", next = 1 } }
    local err = fails(client())
    assert.equal("network", err.kind)
    assert.is_true(err.sent)
  end)

  it("maps a truncated body to kind network, saying so", function()
    sbx.faults { { type = "truncate", next = 1 } }
    local err = fails(client())
    assert.equal("network", err.kind)
    assert.truthy(err.message:find("truncated", 1, true), err.message)
  end)

  it("maps malformed JSON to kind decode", function()
    sbx.faults { { type = "malformed", next = 1 } }
    local err = fails(client())
    assert.equal("decode", err.kind)
    assert.equal(200, err.status)
  end)
end)

describe("connections", function()
  before_each(function() sbx.reset() end)
  after_each(function() sbx.clear_faults() end)

  it("uses one TCP connection for 100 sequential calls", function()
    local c = client()
    local mark = sbx.mark()
    for i = 1, 100 do assert(merge_one(c, "seq" .. i .. "@example.com")) end
    local log = sbx.log(mark)
    assert.equal(100, #log)
    local conns = {}
    for _, e in ipairs(log) do conns[e.connection] = true end
    local n = 0
    for _ in pairs(conns) do n = n + 1 end
    assert.equal(1, n)
  end)

  it("speaks HTTP/2 to a server that offers it", function()
    local c = client()
    local mark = sbx.mark()
    assert(c:call("projects", "List", {}))
    local log = sbx.log(mark)
    assert.equal(2, tonumber(log[1].http_version))
  end)

  it("gives each call in flight a connection of its own, HTTP/2 where offered (no multiplexing)", function()
    -- eight 100-record Merges multiplexed on one connection each took about
    -- 0.9 ms longer than on their own (bench/README.md, scenario 4)
    local c = client()
    local calls = {}
    for i = 1, 16 do
      calls[i] = { "contacts", "Merge", { Records = { { ID = { key_f_EMail = "conn" .. i .. "@example.com" } } } } }
    end
    sbx.faults { { type = "latency", ms = 100, method = "contacts.merge" } }
    local mark = sbx.mark()
    local _, failures = c:call_many(calls, { concurrency = 4 })
    assert.equal(0, failures)
    local log = sbx.log(mark)
    local conns, n = {}, 0
    for _, e in ipairs(log) do
      assert.equal(2, tonumber(e.http_version))
      if not conns[e.connection] then conns[e.connection], n = true, n + 1 end
    end
    assert.equal(16, #log)
    assert.equal(4, n, "four calls in flight, four connections, kept for the next ones")
  end)

  it("resumes the TLS session on a new connection", function()
    -- over HTTP/1.1 a dropped call closes the connection, so the next call
    -- must connect again: with a full handshake the first time, and with the
    -- cached session after that
    -- (libcurl itself re-sends an idempotent call once when a reused
    -- connection dies before any reply, so the drop may not surface)
    local c = client { http2 = false }
    local mark = sbx.mark()
    assert(c:call("projects", "List", {}))
    sbx.faults { { type = "drop", next = 1 } }
    c:call("projects", "List", {}, { retries = 0 })
    assert(c:call("projects", "List", {}))
    local log = sbx.log(mark)
    assert.is_true(#log >= 3)
    log[3] = log[#log]
    assert.equal(1.1, tonumber(log[1].http_version))
    assert.are_not.equal(log[1].connection, log[3].connection)
    assert.is_false(log[1].ssl_session_reused)
    assert.is_true(log[3].ssl_session_reused)
  end)
end)

describe("client:call_many", function()
  before_each(function() sbx.reset() end)
  after_each(function() sbx.clear_faults() end)

  it("returns results in input order", function()
    local c = client()
    local calls = {}
    for i = 1, 40 do
      calls[i] = { "contacts", "Merge", {
        Records = { { ID = { key_f_EMail = "many" .. i .. "@example.com" },
                      Data = { f_FirstName = "N" .. i } } } } }
    end
    local res, nerr = c:call_many(calls, { concurrency = 8 })
    assert.equal(0, nerr)
    assert.equal(40, #res)
    -- read them back in one concurrent pass, and check each answer is its own
    local gets = {}
    for i = 1, 40 do
      gets[i] = { service = "contacts", method = "Get", params = {
        Clause = { ["$type"] = "FieldClause", Field = { Name = "f_EMail" },
                   TypeOperator = "Equal", ComparisonValue = "many" .. i .. "@example.com" } } }
    end
    local back = c:call_many(gets, { concurrency = 8 })
    for i = 1, 40 do
      assert.equal(res[i].Records[1].IdRecord, back[i].Records[1].idContact)
      assert.equal("N" .. i, back[i].Records[1].f_FirstName)
    end
  end)

  it("keeps calls in flight together, up to the concurrency", function()
    sbx.faults { { type = "latency", ms = 300, probability = 1 } }
    local c = client()
    local calls = {}
    for i = 1, 16 do calls[i] = { "projects", "List", {} } end
    local t0 = require("dialoginsight.core").now()
    local _, nerr = c:call_many(calls, { concurrency = 8 })
    local took = require("dialoginsight.core").now() - t0
    assert.equal(0, nerr)
    -- one at a time would take 16 x 0.3 s = 4.8 s; 8 at a time, 2 rounds
    assert.is_true(took < 2.4, "took " .. took .. " s")
    assert.is_true(took >= 0.6, "took " .. took .. " s: fewer than 2 rounds means over-concurrency")
  end)

  it("puts an error object in the place of each failed call", function()
    local c = client()
    local res, nerr = c:call_many({
      { "projects", "List", {} },
      { "contacts", "Merge", { Records = { { ID = { key_f_EMail = "x@example.com" }, Data = { f_City = "\255" } } } } },
      { "contacts", "NoSuchMethod", {} },
      { "projects", "List", {} },
    }, { retries = 0 })
    assert.equal(2, nerr)
    assert.is_true(res[1].Success)
    assert.equal("validation", res[2].kind)
    assert.equal(404, res[3].status)
    assert.is_true(res[4].Success)
  end)

  it("checks every call before sending any, and builds each only when it is taken up", function()
    local c = client()
    local sent = 0
    c.on_call = function() sent = sent + 1 end
    local calls = {}
    for i = 1, 20 do calls[i] = { "projects", "List", {} } end
    calls[15] = { "projects", "bad name", {} }
    assert.has_error(function() c:call_many(calls) end, 'dialoginsight: bad method name "bad name"')
    assert.equal(0, sent)
    calls[15] = { "projects", "List", 7 }
    assert.has_error(function() c:call_many(calls) end, "dialoginsight: params of projects.List must be a table")
    assert.equal(0, sent)
    -- built lazily: a params table changed while the first calls run is
    -- read when its call is taken up
    calls[15] = { "projects", "List", {} }
    local late = { "contacts", "Merge", { Records = {} } }
    calls[20] = late
    c.on_call = function()
      sent = sent + 1
      if sent == 1 then late[3].Records = { { ID = { key_f_EMail = "late@example.com" }, Data = {} } } end
    end
    local res, nerr = c:call_many(calls, { concurrency = 2 })
    assert.equal(0, nerr)
    assert.equal(1, res[20].CreatedRecords)
  end)
end)

describe("client:call_stream", function()
  before_each(function() sbx.reset() end)

  it("streams calls, holding only those in flight", function()
    local c = client()
    local produced, finished, most = 0, 0, 0
    local got = {}
    c:call_stream(function()
      if produced == 150 then return nil end
      produced = produced + 1
      most = math.max(most, produced - finished)
      return { "contacts", "Merge", { Records = { {
        ID = { key_f_EMail = "stream" .. produced .. "@example.com" },
        Data = { f_FirstName = "S" .. produced } } } } }
    end, function(i, r)
      assert.is_nil(got[i], "call " .. i .. " reported twice")
      got[i] = r
      finished = finished + 1
    end, { concurrency = 4 })
    assert.equal(150, finished)
    for i = 1, 150 do
      assert.is_true(got[i].Success)
      assert.equal(1, #got[i].Records)
    end
    assert.is_true(most <= 8, "held " .. most .. " calls at once")
    local log = sbx.log()
    local merges = 0
    for _, e in ipairs(log) do if e.method:lower() == "merge" then merges = merges + 1 end end
    assert.equal(150, merges)
  end)

  it("tells done whether each result is an error object", function()
    local c = client()
    sbx.faults { { type = "status", status = 500, method = "contacts.merge", next = 1 } }
    local got, k = {}, 0
    c:call_stream(function()
      k = k + 1
      if k == 1 then return { "contacts", "Merge", { Records = { { ID = { key_f_EMail = "f1@example.com" } } } } } end
      if k == 2 then return { "projects", "List", {} } end
      if k == 3 then return { "contacts", "Merge", { Records = "not a list" } } end -- (a 400 of the sandbox's)
      return nil
    end, function(i, r, failed) got[i] = { r = r, failed = failed } end,
    { concurrency = 1, retries = 0 })
    for i = 1, 3 do
      assert.equal(di.is_error(got[i].r), got[i].failed, "call " .. i)
    end
    assert.is_true(got[1].failed)
    assert.is_false(got[2].failed)
  end)
end)

describe("the key", function()
  before_each(function() sbx.reset() end)
  after_each(function() sbx.clear_faults() end)

  it("appears in no string the client produces in failing calls", function()
    local key = sbx.env("DI_KEY")
    local seen = {}
    local function keep(v)
      if type(v) == "table" then
        for k, x in pairs(v) do keep(k); keep(x) end
      elseif v ~= nil then
        seen[#seen + 1] = tostring(v)
      end
    end
    local c = client { trace = function(ev) keep(ev) end }
    c.on_retry = function(ev) keep(ev) end
    keep(tostring(c))
    sbx.faults {
      { type = "status", status = 503, next = 1 },
      { type = "malformed", next = 1 },
      { type = "truncate", next = 1 },
    }
    for _ = 1, 3 do
      local _, err = merge_one(c, "k@example.com")
      keep(err); keep(tostring(err))
    end
    local _, err = merge_one(client { project = tonumber(sbx.env("DI_OTHER_PROJECT")) }, "k@example.com")
    keep(err); keep(tostring(err))
    _, err = merge_one(c, "k@example.com", { f_City = "\255" })
    keep(err); keep(tostring(err))
    assert.is_true(#seen > 20)
    for _, s in ipairs(seen) do
      assert.falsy(s:find(key, 1, true), "key leaked in: " .. s)
    end
  end)
end)

describe("a failed preliminary read (issue 22)", function()
  it("is named as such, its kind and code kept", function()
    local c = client { key = "sbx-00000000000000000000000000000000" }
    local r, err = c.contacts:merge { EMail = "prelim@example.com" }
    assert.is_nil(r)
    assert.equal("auth", err.kind)
    assert.equal("projects", err.service:lower())
    local text = tostring(err)
    assert.truthy(text:find("^dialoginsight: reading the project's fields %(projects%.Get%) failed: auth "), text)
    -- the caller's own call, when it fails, is said as before
    r, err = c.projects:list()
    assert.is_nil(r)
    assert.truthy(tostring(err):find("^dialoginsight projects.List: auth"), tostring(err))
  end)
end)
