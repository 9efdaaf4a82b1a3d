-- Retries: the policy's arithmetic with an injected clock, then recovery and
-- the no-duplicate-send rule against the sandbox, counted in its request log.
local di = require "dialoginsight"
local core = require "dialoginsight.core"
local retry = require "dialoginsight.call.retry"
local client_mod = require "dialoginsight.client"
local config = require "dialoginsight.config"
local sbx = require "support.sandbox"

local FAST = { retries = 2, base = 0.01, cap = 0.05 }

describe("retry policy", function()
  it("backs off exponentially from 0.5 s, doubling, capped at 8 s, with jitter", function()
    local lo = retry.policy { random = function() return 0 end }
    local hi = retry.policy { random = function() return 1 end }
    local expect = { 0.5, 1, 2, 4, 8, 8 }
    for attempt, d in ipairs(expect) do
      assert.equal(d / 2, retry.delay(lo, attempt))
      assert.equal(d, retry.delay(hi, attempt))
    end
    local p = retry.policy()
    for attempt = 1, 8 do
      for _ = 1, 50 do
        local d = retry.delay(p, attempt)
        local full = math.min(8, 0.5 * 2 ^ (attempt - 1))
        assert.is_true(d >= full / 2 and d <= full, d .. " out of bounds")
      end
    end
  end)

  it("honours Retry-After up to its cap", function()
    local p = retry.policy { max_retry_after = 5 }
    assert.equal(2, retry.delay(p, 1, { retry_after = 2 }))
    assert.equal(5, retry.delay(p, 1, { retry_after = 120 }))
  end)

  it("defaults to 2 retries and refuses bad settings", function()
    assert.equal(2, retry.policy().retries)
    assert.equal(0, retry.policy(0).retries)
    -- a bad policy is said, for the setting or the call to raise
    for _, bad in ipairs { -1, 1.5, "many", { base = 0 / 0 } } do
      local p, why = retry.policy(bad, "option")
      assert.is_nil(p)
      assert.truthy(why:find("option 'retries", 1, true), why)
    end
    local _, why = retry.policy({ retires = 3 }, "setting")
    assert.truthy(why:find("setting 'retries' has no member 'retires' (did you mean 'retries'?)", 1, true), why)
    assert.has_error(function() di.new(sbx.settings { retries = "many" }) end)
  end)

  local idem = { idempotent = true }
  local send = { idempotent = false }
  local cases = {
    -- entry, error fields, retryable, outcome unknown
    { idem, { kind = "network", sent = false }, true, false },
    { send, { kind = "network", sent = false }, true, false },
    { idem, { kind = "network", sent = true }, true, false },
    { send, { kind = "network", sent = true }, false, true },
    { idem, { kind = "timeout", sent = true }, true, false },
    { send, { kind = "timeout", sent = true }, false, true },
    { send, { kind = "rate_limited", status = 429 }, true, false },
    { idem, { kind = "http", status = 503 }, true, false },
    { send, { kind = "http", status = 500 }, false, true },
    { send, { kind = "http", status = 503 }, false, true },
    { idem, { kind = "http", status = 404 }, false, false },
    { idem, { kind = "api", status = 200, code = "InvalidParameter" }, false, false },
    { idem, { kind = "auth", status = 401 }, false, false },
    { idem, { kind = "tls", sent = false }, false, false },
    { idem, { kind = "decode", status = 200 }, true, false },
    { send, { kind = "decode", status = 200 }, false, true },
  }
  for i, c in ipairs(cases) do
    it("classifies case " .. i .. " (" .. c[2].kind .. (c[2].status and " " .. c[2].status or "")
       .. (c[1].idempotent and ", idempotent" or ", send") .. ")", function()
      local err = c[2]
      assert.equal(c[3], retry.classify(c[1], err))
      assert.equal(c[4] and "unknown" or nil, err.outcome)
    end)
  end

  it("sleeps the computed delays between attempts (injected clock)", function()
    local clock, sleeps, posts = 0, {}, 0
    local fake = {
      now = function() return clock end,
      sleep = function(_, s) sleeps[#sleeps + 1] = s; clock = clock + s end,
      post = function()
        posts = posts + 1
        if posts < 3 then return { status = 503, body = '{"Success":false,"ErrorCode":"ServerError"}' } end
        return { status = 200, body = '{"Success":true,"idRequest":1}' }
      end,
    }
    local s = config.resolve(sbx.settings { retries = { random = function() return 1 end } })
    local c = client_mod.new(s, fake)
    local r = assert(c:call("contacts", "Get", {}))
    assert.is_true(r.Success)
    assert.equal(3, posts)
    assert.same({ 0.5, 1 }, sleeps)
  end)
end)

describe("retries against the sandbox", function()
  local contact, message

  before_each(function()
    sbx.reset()
    local c = di.new(sbx.settings())
    local m = assert(c:call("contacts", "Merge", { Records = {
      { ID = { key_f_EMail = "retry@example.com" }, Data = { f_FirstName = "R" } } } }))
    contact = m.Records[1].IdRecord
    local msg = assert(c:call("messages", "Create", { Message = {
      Name = "retry spec", MessageVersions = { {
        Name = "fr", Culture = "fr-CA", SenderName = "Shop", SenderEMail = "shop@example.com",
        Subject = "Hello", MessageBodies = { { MIMEType = "text/html", Content = "<p>Hi</p>" } },
      } } } }))
    message = msg.idMessage
  end)
  after_each(function() sbx.clear_faults() end)

  local function merge(c, opts)
    return c:call("contacts", "Merge", { Records = {
      { ID = { key_f_EMail = "retry@example.com" }, Data = { f_City = "Laval" } } } }, opts)
  end

  local function send(c, opts)
    return c:call("sendings", "SendSingle2", {
      idMessage = message,
      ContactFilter = { Mode = "Single", idContact = contact },
      SendSingleOptions = { MessageParameterValues = { cart = "3 items" } },
    }, opts)
  end

  local function calls(mark, method)
    local n = 0
    for _, e in ipairs(sbx.log(mark)) do
      if e.method:lower() == method:lower() then n = n + 1 end
    end
    return n
  end

  for _, f in ipairs {
    { "503", { type = "status", status = 503, next = 2 } },
    { "500", { type = "status", status = 500, next = 2 } },
    { "dropped connection", { type = "drop", next = 2 } },
    { "truncated body", { type = "truncate", next = 2 } },
  } do
    it("recovers Merge from two " .. f[1] .. " faults in exactly 3 calls", function()
      f[2].method = "contacts.merge"
      sbx.faults { f[2] }
      local mark = sbx.mark()
      local r = assert(merge(di.new(sbx.settings { retries = FAST })))
      assert.is_true(r.Success)
      assert.equal(3, calls(mark, "merge"))
    end)
  end

  it("gives up after the retries, saying how many attempts", function()
    sbx.faults { { type = "status", status = 503, next = 5, method = "contacts.merge" } }
    local mark = sbx.mark()
    local r, err = merge(di.new(sbx.settings { retries = FAST }))
    assert.is_nil(r)
    assert.equal(3, err.attempts)
    assert.equal(503, err.status)
    assert.equal(3, calls(mark, "merge"))
  end)

  -- The call limit in both of its forms (sandbox/README.md, "Modes for the
  -- open questions"): a 429 with Retry-After, and the authentication error
  -- the service documents ("the number of calls allowed has been exceeded"),
  -- whose HTTP status is unknown.  The sandbox's limit fault answers in the
  -- form its config says.
  for _, style in ipairs {
    { "a 429's Retry-After", { limit = "429" } },
    { "the call limit as an authentication error in HTTP 200", { limit = "auth", limit_status = 200 } },
    { "the call limit as an authentication error in HTTP 401", { limit = "auth", limit_status = 401 } },
    { "the call limit as an authentication error in HTTP 403", { limit = "auth", limit_status = 403, limit_code = false } },
  } do
    it("waits out " .. style[1] .. " (1 s), then succeeds in 2 calls", function()
      sbx.control("POST", "config", style[2])
      sbx.faults { { type = "limit", retry_after = 1, next = 1, method = "contacts.merge" } }
      local mark = sbx.mark()
      local t0 = core.now()
      -- (a cap above the limit's 1 s: retry.lua waits from 1 s, capped)
      assert(merge(di.new(sbx.settings { retries = { retries = 2, base = 0.01, cap = 2 } })))
      assert.is_true(core.now() - t0 >= 0.95, "the limit's 1 s was not waited: " .. (core.now() - t0))
      assert.equal(2, calls(mark, "merge"))
    end)

    it("retries a send refused by " .. style[1] .. " (it never ran)", function()
      sbx.control("POST", "config", style[2])
      sbx.faults { { type = "limit", retry_after = 0, next = 1, method = "sendings.sendsingle2" } }
      local mark = sbx.mark()
      local r = assert(send(di.new(sbx.settings { retries = FAST })))
      assert.is_true(r.Success)
      assert.equal(2, calls(mark, "sendsingle2"))
    end)

    it("gives up on " .. style[1] .. " after the retries, typed rate_limited", function()
      sbx.control("POST", "config", style[2])
      sbx.faults { { type = "limit", retry_after = 0, next = 2, method = "contacts.merge" } }
      local _, err = merge(di.new(sbx.settings { retries = 0 }))
      assert.equal("rate_limited", err.kind)
      assert.equal(style[2].limit_status or 429, err.status)
      assert.equal(1, err.attempts)
    end)
  end

  it("never repeats a send after a 500: one call, outcome unknown", function()
    sbx.faults { { type = "status", status = 500, next = 1, method = "sendings.sendsingle2", after_processing = true } }
    local mark = sbx.mark()
    local r, err = send(di.new(sbx.settings { retries = FAST }))
    assert.is_nil(r)
    assert.equal("http", err.kind)
    assert.equal("unknown", err.outcome)
    assert.equal(1, err.attempts)
    assert.truthy(tostring(err):find("outcome unknown", 1, true))
    assert.equal(1, calls(mark, "sendsingle2"))
  end)

  it("never repeats a send after a dropped connection, even a reused one", function()
    -- over HTTP/1.1 a drop closes the connection; on a reused connection
    -- libcurl alone would re-send, which is why sends get a fresh one
    local c = di.new(sbx.settings { retries = FAST, http2 = false })
    assert(c:call("projects", "List", {})) -- a warm connection to reuse
    sbx.faults { { type = "drop", next = 1, method = "sendings.sendsingle2" } }
    local mark = sbx.mark()
    local r, err = send(c)
    assert.is_nil(r)
    assert.equal("network", err.kind)
    assert.equal("unknown", err.outcome)
    assert.equal(1, calls(mark, "sendsingle2"))
  end)

  it("never repeats a send after a timeout: one call, outcome unknown", function()
    sbx.faults { { type = "latency", ms = 1200, next = 1, method = "sendings.sendsingle2" } }
    local mark = sbx.mark()
    local r, err = send(di.new(sbx.settings { retries = FAST, timeout = 0.3 }))
    assert.is_nil(r)
    assert.equal("timeout", err.kind)
    assert.equal("unknown", err.outcome)
    core.sleep(1.2) -- let the sandbox finish and log the slow call
    assert.equal(1, calls(mark, "sendsingle2"))
  end)

  it("makes exactly one call with retries = 0", function()
    sbx.faults { { type = "status", status = 503, next = 1, method = "contacts.merge" } }
    local mark = sbx.mark()
    local _, err = merge(di.new(sbx.settings { retries = 0 }))
    assert.equal(503, err.status)
    assert.equal(1, calls(mark, "merge"))
    sbx.faults { { type = "status", status = 503, next = 1, method = "contacts.merge" } }
    mark = sbx.mark()
    _, err = merge(di.new(sbx.settings()), { retries = 0 })
    assert.equal(503, err.status)
    assert.equal(1, calls(mark, "merge"))
  end)

  it("recovers inside call_many with the exact number of extra calls", function()
    sbx.faults { { type = "status", status = 503, next = 3, method = "contacts.merge" } }
    local c = di.new(sbx.settings { retries = FAST })
    local list = {}
    for i = 1, 10 do
      list[i] = { "contacts", "Merge", { Records = {
        { ID = { key_f_EMail = "cm" .. i .. "@example.com" }, Data = { f_FirstName = "M" } } } } }
    end
    local mark = sbx.mark()
    local res, nerr = c:call_many(list, { concurrency = 4 })
    assert.equal(0, nerr)
    for i = 1, 10 do assert.is_true(res[i].Success) end
    assert.equal(13, calls(mark, "merge"))
  end)

  it("reports waits and retries through the hooks", function()
    sbx.faults { { type = "status", status = 503, next = 1, method = "contacts.merge" } }
    local c = di.new(sbx.settings { retries = FAST })
    local seen = {}
    c.on_retry = function(ev) seen[#seen + 1] = ev end
    assert(merge(c))
    assert.equal(1, #seen)
    assert.equal("contacts", seen[1].service)
    assert.equal(503, seen[1].error.status)
    assert.is_true(seen[1].delay > 0)
  end)
end)

-- rev2: a limit reply's Retry-After is a dependency's answer.  err.retry_after
-- was the server's number as sent (inf, 1e+300, a day; under LuaJIT NaN),
-- which the OpenResty example wrote into its Retry-After header and its JSON
-- body (di.encode raised on NaN: a 503 with an empty body).  Now it is the
-- wait the library itself honours, the header's text kept apart.
describe("err.retry_after of a limit reply", function()
  local reply = require "dialoginsight.call.reply"

  it("reads delay-seconds and HTTP dates alike for both transports, bounded (call/reply.lua)", function()
    local now = 1700000000
    local cases = {
      { "120", 120 }, { " 7 ", 7 }, { "1.5", 1.5 }, { "0", 0 }, { "86400", 86400 },
      { "99999999999999999999999", 86400 }, { string.rep("9", 400), 86400 },
      { "nan", nil }, { "NaN", nil }, { "inf", nil }, { "-inf", nil }, { "1e300", nil }, { "-5", nil },
      { "0x10", nil }, { "", nil }, { "soon", nil }, { "5 s", nil },
      -- 2023-11-14 22:13:20 GMT is now
      { "Tue, 14 Nov 2023 22:13:50 GMT", 30 }, { "Tue, 14 Nov 2023 22:00:00 GMT", 0 },
      { "Wed, 15 Nov 2023 22:13:20 GMT", 86400 }, { "Fri, 31 Dec 9999 23:59:59 GMT", 86400 },
      { "Tue, 14 Xyz 2023 22:13:50 GMT", nil }, { "Tue, 14 Nov 2023 22:13:50 PST", nil },
      { 12, 12 }, { -3, 0 }, { math.huge, 86400 }, { 0 / 0, nil }, { true, nil },
    }
    for _, c in ipairs(cases) do
      local got = reply.retry_after(c[1], now)
      assert.equal(c[2], got, "Retry-After: " .. tostring(c[1]))
    end
    assert.equal(os.time() + 0 == os.time() and 0, reply.retry_after(os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() - 5)))
  end)

  describe("against the sandbox (a limit whose Retry-After is sent as written)", function()
    before_each(function() sbx.reset() end)
    after_each(function() sbx.clear_faults() end)

    for _, v in ipairs { "inf", "1e300", "86400", "nan", "-5", "Fri, 31 Dec 9999 23:59:59 GMT" } do
      it("is the wait the library honours, finite and <= max_retry_after (Retry-After: " .. v .. ")", function()
        sbx.faults { { type = "limit", retry_after_text = v, next = 10, method = "projects.list" } }
        local c = di.new(sbx.settings { deadline = 2, rate = false })
        local t0 = core.now()
        local r, err = c:call("projects", "List", {})
        assert.is_nil(r)
        assert.equal("rate_limited", err.kind)
        assert.is_true(core.now() - t0 < 2, "the call went past its deadline")
        local ra = err.retry_after
        assert.is_number(ra)
        assert.is_true(ra == ra and ra >= 0 and ra <= 30, "err.retry_after = " .. tostring(ra))
        assert.equal(v, err.retry_after_raw)
        -- what the OpenResty example does with it
        assert.is_string(di.encode { retry_after = ra })
        assert.truthy(string.format("%d", math.ceil(ra)):match("^%d+$"))
        if v == "86400" or v:find("9999") then assert.equal(30, ra) end
      end)
    end

    it("is clamped to the call's own max_retry_after, and the pause too", function()
      sbx.faults { { type = "limit", retry_after = 50, next = 1, method = "projects.list" } }
      local c = di.new(sbx.settings { deadline = 1, rate = false, retries = { max_retry_after = 5 } })
      local _, err = c:call("projects", "List", {})
      assert.equal("rate_limited", err.kind)
      assert.equal(5, err.retry_after)
      assert.equal("50", err.retry_after_raw)
    end)
  end)
end)
