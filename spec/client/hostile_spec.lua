-- Bad input (issue 9): every public function fed hostile input, table-driven.
-- Each case expects one of:
--   "validation"  the call returns nil, err (an iterator yields false, err)
--                 with err.kind == "validation" and a message naming the
--                 problem;
--   "raise"       a programming error (bad argument type, bad name, bad
--                 setting): raises a string that starts "dialoginsight";
--   "rejected"    merge_many: every record comes back rejected, with problems;
--   "ok"          accepted (the input is odd but legal), e.g. an empty batch.
-- A fourth element, when present, is text the raised message must hold
-- (the setting or option it names).
-- For every case but "ok": no crash, no hang (each case is bounded by a
-- count hook), and nothing reaches the server (the sandbox's request log
-- stays empty across the case).
local sbx = require "support.sandbox"
local di = require "dialoginsight"
local core = require "dialoginsight.core"

local W = di.where
local NAN, INF = 0 / 0, math.huge
local BIG = 2 ^ 60                    -- beyond 2^53 (a float in both runtimes)
local BAD_UTF8 = "Montr\233al"        -- Latin-1
local MB = string.rep("x", 1024 * 1024)
local CASE_SECONDS = 10

local function nested(depth)
  local t = {}
  local cur = t
  for _ = 1, depth do cur.x = {}; cur = cur.x end
  return t
end
local DEEP = nested(200)
local CYCLE = {}; CYCLE.self = CYCLE
local HOLES = { 1, nil, 3 }
HOLES[5] = 5 -- a real hole: # may say 1 or 5

local function ids(n) return n end
local HTTP_URL = sbx.env("DI_SANDBOX_HTTP_URL")

local client
local function c() return client end

-- An iterator's first step, which must raise an error object: as nil, err.
local function raised(iter, state)
  local err = require("support.raised").failure(state, iter)
  assert(di.is_error(err), "the iterator did not raise an error object")
  return nil, err
end

-- The cases: { name, expect, function(client) ... end }
-- A file holding text, for settings that name one.
local function TEXT_FILE(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

local CASES = {
  -- di.new settings
  { "di.new: unknown setting", "raise", function() return di.new(sbx.settings { tiemout = 3 }) end },
  { "di.new: key_id a string", "raise", function() return di.new(sbx.settings { key_id = "x" }) end },
  { "di.new: key_id NaN", "raise", function() return di.new(sbx.settings { key_id = NAN }) end },
  { "di.new: key_id beyond 2^53", "raise", function() return di.new(sbx.settings { key_id = BIG }) end },
  { "di.new: timeout inf", "raise", function() return di.new(sbx.settings { timeout = INF }) end },
  { "di.new: rate NaN", "raise", function() return di.new(sbx.settings { rate = NAN }) end },
  { "di.new: key invalid UTF-8", "raise", function() return di.new(sbx.settings { key = "\255\254" }) end },
  { "di.new: base_url a table", "raise", function() return di.new(sbx.settings { base_url = {} }) end },
  { "di.new: retries cyclic", "raise", function() return di.new(sbx.settings { retries = CYCLE }) end },
  { "di.new: settings not a table", "raise", function() return di.new("key") end },
  -- issue 13: booleans take booleans only; nothing unchecked reaches a header or a URL
  { "di.new: allow_http \"false\" with http", "raise", function() return di.new(sbx.settings { base_url = HTTP_URL, allow_http = "false" }) end, "'allow_http' must be true or false" },
  { "di.new: allow_http \"no\" with http", "raise", function() return di.new(sbx.settings { base_url = HTTP_URL, allow_http = "no" }) end, "'allow_http'" },
  { "di.new: allow_http 0 with http", "raise", function() return di.new(sbx.settings { base_url = HTTP_URL, allow_http = 0 }) end, "'allow_http'" },
  { "di.new: allow_http \"false\" with https", "raise", function() return di.new(sbx.settings { allow_http = "false" }) end, "'allow_http'" },
  { "di.new: tls_verify \"false\"", "raise", function() return di.new(sbx.settings { tls_verify = "false" }) end, "'tls_verify' must be true or false" },
  { "di.new: http2 1", "raise", function() return di.new(sbx.settings { http2 = 1 }) end, "'http2'" },
  { "di.new: strict \"false\"", "raise", function() return di.new(sbx.settings { strict = "false" }) end, "'strict'" },
  { "di.new: trace \"yes\"", "raise", function() return di.new(sbx.settings { trace = "yes" }) end, "'trace'" },
  { "di.new: user_agent with CR LF", "raise", function() return di.new(sbx.settings { user_agent = "x\r\nX-Injected: 1" }) end, "'user_agent'" },
  { "di.new: user_agent with LF", "raise", function() return di.new(sbx.settings { user_agent = "x\nX-Injected: 1" }) end, "'user_agent'" },
  { "di.new: user_agent with NUL", "raise", function() return di.new(sbx.settings { user_agent = "x\0y" }) end, "'user_agent'" },
  { "di.new: user_agent 1 MB", "raise", function() return di.new(sbx.settings { user_agent = MB }) end, "'user_agent'" },
  { "di.new: base_url with CR LF", "raise", function() return di.new(sbx.settings { base_url = sbx.env("DI_BASE_URL") .. "\r\nX-Injected: 1" }) end, "'base_url'" },
  { "di.new: base_url with a space", "raise", function() return di.new(sbx.settings { base_url = sbx.env("DI_BASE_URL"):gsub("ofc4", "of c4") }) end, "'base_url'" },
  { "di.new: base_url with a control byte", "raise", function() return di.new(sbx.settings { base_url = sbx.env("DI_BASE_URL") .. "\1" }) end, "'base_url'" },
  { "di.new: base_url with user info", "raise", function() return di.new(sbx.settings { base_url = sbx.env("DI_BASE_URL"):gsub("//", "//user:hunter2@") }) end, "user info" },
  { "di.new: base_url with a query", "raise", function() return di.new(sbx.settings { base_url = sbx.env("DI_BASE_URL") .. "?x=1" }) end, "'base_url'" },
  { "di.new: base_url with a bad port", "raise", function() return di.new(sbx.settings { base_url = "https://localhost:99999/" }) end, "'base_url'" },
  { "di.new: deadline 0", "raise", function() return di.new(sbx.settings { deadline = 0 }) end, "'deadline'" },
  { "di.new: deadline inf", "raise", function() return di.new(sbx.settings { deadline = INF }) end, "'deadline'" },
  { "di.new: deadline a string", "raise", function() return di.new(sbx.settings { deadline = "5" }) end, "'deadline'" },
  { "di.new: retries inf", "raise", function() return di.new(sbx.settings { retries = INF }) end, "'retries'" },
  { "di.new: retries cap inf", "raise", function() return di.new(sbx.settings { retries = { cap = INF } }) end, "'retries.cap'" },
  { "di.new: limiter_dir relative", "raise", function() return di.new(sbx.settings { limiter_dir = "run/x" }) end, "'limiter_dir'" },
  { "di.new: methods_file a directory", "raise", function() return di.new(sbx.settings { methods_file = "/tmp" }) end, "'methods_file' names a file that cannot be read (Is a directory)" },
  { "di.new: methods_file holding x", "raise", function() return di.new(sbx.settings { methods_file = TEXT_FILE("x") }) end, "'methods_file' is not JSON" },
  { "di.new: methods_file holding \"x\"", "raise", function() return di.new(sbx.settings { methods_file = TEXT_FILE('"x"') }) end, "'methods_file' holds JSON a string, not an object" },
  { "di.new: methods_file holding null", "raise", function() return di.new(sbx.settings { methods_file = TEXT_FILE("null") }) end, "holds JSON null" },
  { "di.new: ca_file a directory", "raise", function() return di.new(sbx.settings { ca_file = "/tmp" }) end, "'ca_file' names a file that cannot be read (Is a directory)" },
  { "di.new: transport a string", "raise", function() return di.new(sbx.settings { transport = "curl" }) end, "'transport'" },

  -- client:call
  { "call: service misspelled", "raise", function(cl) return cl:call("contacts ashx", "Merge", {}) end },
  { "call: method a number", "raise", function(cl) return cl:call("contacts", 42, {}) end },
  { "call: params a string", "raise", function(cl) return cl:call("contacts", "Merge", "x") end },
  { "call: NaN", "validation", function(cl) return cl:call("contacts", "Get", { MaxRows = NAN }) end },
  { "call: inf", "validation", function(cl) return cl:call("contacts", "Get", { MaxRows = INF }) end },
  { "call: -inf", "validation", function(cl) return cl:call("contacts", "Get", { MaxRows = -INF }) end },
  { "call: integer beyond 2^53", "validation", function(cl) return cl:call("contacts", "Get", { MaxRows = BIG }) end },
  { "call: invalid UTF-8 value", "validation", function(cl) return cl:call("contacts", "Get", { Tag = BAD_UTF8 }) end },
  { "call: invalid UTF-8 key", "validation", function(cl) return cl:call("contacts", "Get", { [BAD_UTF8] = 1 }) end },
  { "call: 200-level nesting", "validation", function(cl) return cl:call("contacts", "Get", { Clause = DEEP }) end },
  { "call: cyclic table", "validation", function(cl) return cl:call("contacts", "Get", { Clause = CYCLE }) end },
  { "call: nil holes", "validation", function(cl) return cl:call("contacts", "Get", { Clause = HOLES }) end },
  { "call: mixed keys", "validation", function(cl) return cl:call("contacts", "Get", { Clause = { 1, x = 2 } }) end },
  { "call: a function", "validation", function(cl) return cl:call("contacts", "Get", { Clause = print }) end },
  { "call: no idTable", "validation", function(cl) return cl:call("relationaltables", "Get", {}) end },
  -- per-call options are checked as settings are (issue 13)
  { "call: timeout inf", "raise", function(cl) return cl:call("projects", "List", {}, { timeout = INF }) end, "option 'timeout'" },
  { "call: timeout 1e300", "raise", function(cl) return cl:call("projects", "List", {}, { timeout = 1e300 }) end, "option 'timeout'" },
  { "call: timeout 0", "raise", function(cl) return cl:call("projects", "List", {}, { timeout = 0 }) end, "option 'timeout'" },
  { "call: timeout -1", "raise", function(cl) return cl:call("projects", "List", {}, { timeout = -1 }) end, "option 'timeout'" },
  { "call: timeout NaN", "raise", function(cl) return cl:call("projects", "List", {}, { timeout = NAN }) end, "option 'timeout'" },
  { "call: timeout a string", "raise", function(cl) return cl:call("projects", "List", {}, { timeout = "5" }) end, "option 'timeout'" },
  { "call: retries -1", "raise", function(cl) return cl:call("projects", "List", {}, { retries = -1 }) end, "option 'retries'" },
  { "call: retries inf", "raise", function(cl) return cl:call("projects", "List", {}, { retries = INF }) end, "option 'retries'" },
  { "call: retries 1.5", "raise", function(cl) return cl:call("projects", "List", {}, { retries = 1.5 }) end, "option 'retries'" },
  { "call: retries a string", "raise", function(cl) return cl:call("projects", "List", {}, { retries = "2" }) end, "option 'retries'" },
  { "call: retries base NaN", "raise", function(cl) return cl:call("projects", "List", {}, { retries = { base = NAN } }) end, "option 'retries.base'" },
  { "call: deadline 0", "raise", function(cl) return cl:call("projects", "List", {}, { deadline = 0 }) end, "option 'deadline'" },
  { "call: deadline inf", "raise", function(cl) return cl:call("projects", "List", {}, { deadline = INF }) end, "option 'deadline'" },
  { "call: options a string", "raise", function(cl) return cl:call("projects", "List", {}, "fast") end, "options must be a table" },

  -- call_many / call_stream
  { "call_many: not a list", "raise", function(cl) return cl:call_many("x") end },
  { "call_many: a call not a table", "raise", function(cl) return cl:call_many({ 1 }) end },
  { "call_many: empty batch", "ok", function(cl)
      local r, n = cl:call_many({})
      assert(#r == 0 and n == 0)
      return true
    end },
  { "call_many: every call invalid", "validation", function(cl)
      local r, n = cl:call_many({ { "contacts", "Get", { Tag = BAD_UTF8 } },
                                  { "contacts", "Get", { MaxRows = NAN } },
                                  { "contacts", "Get", { Clause = CYCLE } } })
      assert(n == 3, "failures " .. tostring(n))
      for i = 2, 3 do assert(r[i].kind == "validation", tostring(r[i])) end
      return nil, r[1]
    end },
  { "call_stream: not functions", "raise", function(cl) return cl:call_stream({}, print) end },
  { "call_many: concurrency 0 (dropped every call)", "raise", function(cl) return cl:call_many({ { "projects", "List" } }, { concurrency = 0 }) end, "option 'concurrency'" },
  { "call_many: concurrency -1", "raise", function(cl) return cl:call_many({ { "projects", "List" } }, { concurrency = -1 }) end, "option 'concurrency'" },
  { "call_many: timeout inf", "raise", function(cl) return cl:call_many({ { "projects", "List" } }, { timeout = INF }) end, "option 'timeout'" },
  { "call_many: deadline -1", "raise", function(cl) return cl:call_many({ { "projects", "List" } }, { deadline = -1 }) end, "option 'deadline'" },
  { "call_stream: retries inf", "raise", function(cl) return cl:call_stream(function() end, print, { retries = INF }) end, "option 'retries'" },
  { "call_stream: invalid calls", "validation", function(cl)
      local n, got = 0, {}
      cl:call_stream(function()
        n = n + 1
        if n == 1 then return { "contacts", "Get", { Clause = DEEP } } end
        if n == 2 then return { "contacts", "Get", { Tag = MB .. "\255" } } end
      end, function(i, r) got[i] = r end)
      assert(got[2] and got[2].kind == "validation", tostring(got[2]))
      return nil, got[1]
    end },

  -- contacts
  { "merge: misspelled field", "validation", function(cl) return cl.contacts:merge { EMail = "h1@example.com", FirstNme = "A" } end },
  { "merge: wrong type", "validation", function(cl) return cl.contacts:merge { EMail = "h1@example.com", Points = "many" } end },
  { "merge: Points NaN", "validation", function(cl) return cl.contacts:merge { EMail = "h1@example.com", Points = NAN } end },
  { "merge: Points inf", "validation", function(cl) return cl.contacts:merge { EMail = "h1@example.com", Points = INF } end },
  { "merge: Points beyond 2^53", "validation", function(cl) return cl.contacts:merge { EMail = "h1@example.com", Points = BIG } end },
  { "merge: invalid UTF-8", "validation", function(cl) return cl.contacts:merge { EMail = "h1@example.com", City = BAD_UTF8 } end },
  { "merge: 1 MB text", "validation", function(cl) return cl.contacts:merge { EMail = "h1@example.com", City = MB } end },
  { "merge: key missing", "validation", function(cl) return cl.contacts:merge { FirstName = "A" } end },
  { "merge: key invalid UTF-8", "validation", function(cl) return cl.contacts:merge { EMail = "h\255@example.com" } end },
  { "merge: field a table", "validation", function(cl) return cl.contacts:merge { EMail = "h1@example.com", City = DEEP } end },
  { "merge: optin cyclic", "validation", function(cl) return cl.contacts:merge { EMail = "h1@example.com", optin = CYCLE } end },
  { "merge: optin not boolean", "validation", function(cl) return cl.contacts:merge { EMail = "h1@example.com", optin = { Newsletter = "yes" } } end },
  { "merge: date impossible", "validation", function(cl) return cl.contacts:merge { EMail = "h1@example.com", BirthDate = "2023-02-29" } end },
  { "merge: date NaN", "validation", function(cl) return cl.contacts:merge { EMail = "h1@example.com", BirthDate = NAN } end },
  { "merge: date inf", "validation", function(cl) return cl.contacts:merge { EMail = "h1@example.com", BirthDate = INF } end },
  { "merge: numeric field name", "validation", function(cl) return cl.contacts:merge { EMail = "h1@example.com", [1] = "x" } end },
  { "merge: wire field unknown", "validation", function(cl) return cl.contacts:merge { EMail = "h1@example.com", f_Nope = 1 } end },
  { "merge: not a table", "raise", function(cl) return cl.contacts:merge("h1@example.com") end },
  { "merge: unknown option", "raise", function(cl) return cl.contacts:merge({ EMail = "h1@example.com" }, { batchsize = 3 }) end },
  { "merge: misspelled option", "raise", function(cl) return cl.contacts:merge({ EMail = "h1@example.com" }, { upsert = false }) end },
  { "merge_many: misspelled option", "raise", function(cl) return cl.contacts:merge_many({ { EMail = "h1@example.com" } }, { batchsize = 1 }) end },
  { "get: misspelled option", "raise", function(cl) return cl.contacts:get({ EMail = "h1@example.com" }, { limt = 1 }) end },
  { "each: options not a table", "raise", function(cl) return cl.contacts:each({ EMail = "h1@example.com" }, 5) end },
  { "send_batch: misspelled option", "raise", function(cl) return cl.sendings:send_batch(1, { segmnts = { 2 } }) end },
  { "call: misspelled option", "raise", function(cl) return cl:call("projects", "List", {}, { timout = 1 }) end },
  { "call_many: misspelled option", "raise", function(cl) return cl:call_many({ { "projects", "List", {} } }, { concurency = 2 }) end },
  { "merge: update \"false\" (a guard)", "raise", function(cl) return cl.contacts:merge({ EMail = "h1@example.com" }, { update = "false" }) end, "option 'update' must be true or false" },
  { "merge: insert 0", "raise", function(cl) return cl.contacts:merge({ EMail = "h1@example.com" }, { insert = 0 }) end, "option 'insert'" },
  { "merge: strict \"false\"", "raise", function(cl) return cl.contacts:merge({ EMail = "h1@example.com" }, { strict = "false" }) end, "option 'strict'" },
  { "merge_many: skip_duplicates \"yes\"", "raise", function(cl) return cl.contacts:merge_many({ { EMail = "h1@example.com" } }, { skip_duplicates = "yes" }) end, "option 'skip_duplicates'" },
  { "merge_many: empty batch", "ok", function(cl)
      local s = assert(cl.contacts:merge_many({}))
      assert(#s.records == 0 and s.created == 0)
      return true
    end },
  { "merge_many: all invalid", "rejected", function(cl)
      return cl.contacts:merge_many { { EMail = "h1@example.com", Points = NAN },
        { EMail = "h2@example.com", City = BAD_UTF8 }, { EMail = "h3@example.com", City = MB },
        { FirstName = "no key" }, { EMail = "h5@example.com", Nope = 1 } }
    end },
  { "merge_many: a contact not a table", "raise", function(cl) return cl.contacts:merge_many { { EMail = "h1@example.com" }, 7 } end },
  { "merge_many: not a list", "raise", function(cl) return cl.contacts:merge_many("x") end },
  { "get: unknown field", "validation", function(cl) return cl.contacts:get { Nope = 1 } end },
  { "get: wrong type", "validation", function(cl) return cl.contacts:get { Points = "many" } end },
  { "get: NaN", "validation", function(cl) return cl.contacts:get { Points = NAN } end },
  { "get: invalid UTF-8", "validation", function(cl) return cl.contacts:get { City = BAD_UTF8 } end },
  { "get: 1 MB value", "validation", function(cl) return cl.contacts:get { City = MB } end },
  { "get: empty where", "raise", function(cl) return cl.contacts:get {} end },
  { "get: cyclic where", "validation", function(cl) return cl.contacts:get(CYCLE) end },
  { "get: 200-level where", "validation", function(cl) return cl.contacts:get(DEEP) end },
  { "get: limit NaN", "raise", function(cl) return cl.contacts:get({ EMail = "ann@example.com" }, { limit = NAN }) end },
  { "find: unknown field", "validation", function(cl) return cl.contacts:find { EMial = "ann@example.com" } end },
  { "each: unknown field", "validation", function(cl)
      return raised(cl.contacts:each { Nope = 1 })
    end },
  { "each: page_size inf", "raise", function(cl) return cl.contacts:each({ EMail = "ann@example.com" }, { page_size = INF }) end },
  { "delete: empty where", "raise", function(cl) return cl.contacts:delete {} end },
  { "delete: invalid UTF-8", "validation", function(cl) return cl.contacts:delete { EMail = BAD_UTF8 } end },

  -- the where builder
  { "where: eq without a name", "raise", function() return W.eq(nil, 1) end },
  { "where: eq with an empty name", "raise", function() return W.eq("", 1) end },
  { "where: gt of a table", "validation", function(cl) return cl.contacts:get(W.gt("Points", {})) end },
  { "where: all of nothing", "raise", function() return W.all {} end },
  { "where: any with holes", "raise", function() return W.any { W.eq("City", "a"), nil, W.eq("City", "b") } end },
  { "where: 200-level all", "raise", function(cl)
      local w = W.eq("City", "a")
      for _ = 1, 200 do w = W.all { w } end
      return cl.contacts:get(w)
    end },

  -- segments, campaigns, sendings, messages, reports, tables
  { "segments:save: not a table", "raise", function(cl) return cl.segments:save("x") end },
  { "segments:save: no name", "validation", function(cl) return cl.segments:save { where = { City = "Paris" } } end },
  { "segments:save: name invalid UTF-8", "validation", function(cl) return cl.segments:save { name = BAD_UTF8, where = { City = "Paris" } } end },
  { "segments:save: unknown field in where", "validation", function(cl) return cl.segments:save { name = "x", where = { Cty = "Paris" } } end },
  { "segments:save: id NaN", "raise", function(cl) return cl.segments:save { id = NAN, name = "x", where = { City = "Paris" } } end },
  { "segments:contacts: id a string", "raise", function(cl) return cl.segments:contacts("2") end },
  { "campaigns:trigger: id NaN", "raise", function(cl) return cl.campaigns:trigger(NAN, { contact = 1 }) end },
  { "campaigns:trigger: id beyond 2^53", "validation", function(cl) return cl.campaigns:trigger(BIG, { contact = 1 }) end },
  { "campaigns:trigger: no contact", "validation", function(cl) return cl.campaigns:trigger(2, {}) end },
  { "campaigns:trigger: params cyclic", "validation", function(cl) return cl.campaigns:trigger(2, { contact = 1, params = CYCLE }) end },
  { "campaigns:trigger: param invalid UTF-8", "validation", function(cl) return cl.campaigns:trigger(2, { contact = 1, params = { cart = BAD_UTF8 } }) end },
  { "campaigns:trigger: where unknown field", "validation", function(cl) return cl.campaigns:trigger(2, { contact = { Nope = 1 } }) end },
  { "campaigns:stats: id a table", "raise", function(cl) return cl.campaigns:stats({}) end },
  { "sendings:send: message id inf", "validation", function(cl) return cl.sendings:send(INF, 1) end },
  { "sendings:send: no contact", "validation", function(cl) return cl.sendings:send(1, nil) end },
  { "sendings:send: params 1 MB invalid UTF-8", "validation", function(cl) return cl.sendings:send(1, 1, { params = { code = MB .. "\255" } }) end },
  { "sendings:send: where misspelled", "validation", function(cl) return cl.sendings:send(1, { EMial = "ann@example.com" }) end },
  { "sendings:send_batch: empty segments", "validation", function(cl) return cl.sendings:send_batch(1, { segments = {} }) end },
  { "sendings:send_batch: segments with holes", "validation", function(cl) return cl.sendings:send_batch(1, { segments = HOLES }) end },
  { "sendings:send_batch: segment NaN", "validation", function(cl) return cl.sendings:send_batch(1, { segments = { NAN } }) end },
  { "sendings:send_batch: at impossible", "validation", function(cl) return cl.sendings:send_batch(1, { all = true, at = "2024-13-01 00:00:00" }) end },
  { "sendings:send_batch: all and segments", "validation", function(cl) return cl.sendings:send_batch(1, { all = true, segments = { 1 } }) end },
  { "messages:create: not a table", "raise", function(cl) return cl.messages:create("x") end },
  { "messages:create: nothing", "validation", function(cl) return cl.messages:create {} end },
  { "messages:create: subject invalid UTF-8", "validation", function(cl)
      return cl.messages:create { name = "n", subject = BAD_UTF8, sender_email = "a@example.com", html = "<p>x</p>" }
    end },
  { "messages:create: html cyclic", "validation", function(cl)
      return cl.messages:create { name = "n", subject = "s", sender_email = "a@example.com", html = CYCLE }
    end },
  { "messages:get: id a string", "raise", function(cl) return cl.messages:get("1") end },
  { "reports:opens: from impossible", "validation", function(cl)
      return raised(cl.reports:opens { from = "2024-02-30" })
    end },
  { "reports:clicks: message NaN", "validation", function(cl)
      return raised(cl.reports:clicks { message = NAN })
    end },
  { "reports:clicks: batch 1.5", "validation", function(cl)
      return raised(cl.reports:clicks { batch = 1.5 })
    end },
  { "reports:history: id a string", "raise", function(cl) return cl.reports:history("1") end },
  { "table: id NaN", "raise", function(cl) return cl:table(NAN) end },
  { "tables merge: no key", "validation", function(cl) return cl:table(ids(501)):merge({ Destination = "x" }) end },
  { "tables merge: invalid UTF-8", "validation", function(cl) return cl:table(501):merge({ idReservation = 9, Destination = BAD_UTF8 }, { key = "idReservation" }) end },
  { "tables merge: NaN", "validation", function(cl) return cl:table(501):merge({ idReservation = NAN }, { key = "idReservation" }) end },
  { "tables merge: row not a table", "raise", function(cl) return cl:table(501):merge("x") end },
  { "tables merge_many: empty batch", "ok", function(cl)
      local s = assert(cl:table(501):merge_many({}, { key = "idReservation" }))
      assert(#s.records == 0)
      return true
    end },
  { "tables get: cyclic where", "validation", function(cl) return cl:table(501):get(CYCLE) end },
  { "tables get: invalid UTF-8", "validation", function(cl) return cl:table(501):get { Destination = BAD_UTF8 } end },

  -- core.encode / core.decode
  { "encode: NaN", "validation", function() return core.encode { x = NAN } end },
  { "encode: inf", "validation", function() return core.encode { INF } end },
  { "encode: beyond 2^53", "validation", function() return core.encode { BIG } end },
  { "encode: invalid UTF-8", "validation", function() return core.encode { BAD_UTF8 } end },
  { "encode: 200-level", "validation", function() return core.encode(DEEP) end },
  { "encode: cyclic", "validation", function() return core.encode(CYCLE) end },
  { "encode: holes", "validation", function() return core.encode(HOLES) end },
  { "encode: a function", "validation", function() return core.encode { print } end },
  { "encode: userdata key", "validation", function() return core.encode { [io.stdout] = 1 } end },
  { "encode: 1 MB", "ok", function() assert(#assert(core.encode { MB }) == #MB + 4); return true end },
  { "decode: not JSON", "validation", function() return core.decode("{") end },
  { "decode: 200 000-level arrays", "validation", function() return core.decode(string.rep("[", 200000)) end },
  { "decode: invalid UTF-8 (a reply: passed through)", "ok", function() return core.decode('{"a":"\255"}') end },
  { "decode: a number (coerced to its text)", "ok", function() return core.decode(42) end },
  { "decode: 1 MB garbage", "validation", function() return core.decode(string.rep("\0\255{", 350000)) end },
}

-- A message of a validation failure from any of the shapes above.
local function message_of(err)
  if type(err) == "table" then return tostring(err), err.kind end
  return tostring(err), "validation" -- core.encode/decode: nil, "message"
end

local function bounded(fn, ...)
  local deadline = os.clock() + CASE_SECONDS
  debug.sethook(function()
    if os.clock() > deadline then error("hang: the case ran over " .. CASE_SECONDS .. " s of CPU", 2) end
  end, "", 100000)
  local r = table.pack(pcall(fn, ...))
  debug.sethook()
  return r
end

describe("hostile input", function()
  setup(function()
    sbx.reset()
    client = di.new(sbx.settings())
    assert(client.projects:fields()) -- the schema is read once; validation needs no more calls
  end)
  teardown(function() sbx.reset() end)

  for _, case in ipairs(CASES) do
    local name, expect, fn, says = case[1], case[2], case[3], case[4]
    it(name .. " -> " .. expect, function()
      local mark = sbx.mark()
      local r = bounded(fn, c())
      local ok, a, b = r[1], r[2], r[3]
      if expect == "raise" then
        assert.is_false(ok, "expected a raise, got " .. tostring(a) .. ", " .. tostring(b))
        assert.are.equal("string", type(a))
        assert.truthy(tostring(a):find("dialoginsight", 1, true), a)
        assert.falsy(tostring(a):find("hang:", 1, true), a)
        if says then assert.truthy(tostring(a):find(says, 1, true), "the message: " .. tostring(a)) end
      else
        assert.is_true(ok, "raised: " .. tostring(a))
        if expect == "validation" then
          assert.is_nil(a, "expected nil, err; got a result")
          local msg, kind = message_of(b)
          assert.are.equal("validation", kind, msg)
          assert.truthy(#msg > 10 and #msg < 2000, "message: " .. msg:sub(1, 300))
        elseif expect == "rejected" then
          assert.truthy(a, tostring(b))
          assert.are.equal(#a.records, a.rejected, "all rejected")
          for _, rec in ipairs(a.records) do
            assert.are.equal("rejected", rec.outcome)
            assert.truthy(rec.problems and #rec.problems > 0)
          end
        else
          assert.truthy(a, tostring(b))
        end
      end
      if expect ~= "ok" then assert.are.same({}, sbx.log(mark), "something reached the server") end
    end)
  end

  describe("CSV files (core.csv_open)", function()
    local function reader(content)
      local path = os.tmpname()
      local f = assert(io.open(path, "wb"))
      f:write(content)
      f:close()
      local r = assert(core.csv_open(path))
      os.remove(path)
      return r
    end

    -- rows as { ok = row | false, line, why }
    local function rows(content)
      local r = reader(content)
      assert(r:header())
      local out = {}
      for _ = 1, 1000 do
        local row, a, line, bad = r:next()
        if row == nil then assert.is_nil(a); break end
        out[#out + 1] = { row = row, a = a, line = line, bad = bad }
      end
      r:close()
      return out
    end

    it("ragged rows are refused with their line, the rest read on", function()
      local out = bounded(rows, "a,b\n1,2\n1,2,3\n1\n4,5\n")[2]
      assert.are.equal(4, #out)
      assert.are.equal(false, out[2].row)
      assert.truthy(out[2].a:find("has 3 fields, the header has 2", 1, true), out[2].a)
      assert.are.equal(false, out[3].row)
      assert.truthy(out[3].a:find("has 1 fields", 1, true), out[3].a)
      assert.are.same({ "4", "5" }, out[4].row)
    end)

    it("an unterminated quote is refused, and reading resumes on the next line", function()
      local r = bounded(rows, 'a,b\n1,"never closed\n2,3\n')
      assert.is_true(r[1], tostring(r[2]))
      local out = r[2]
      assert.are.equal(2, #out)
      assert.are.equal(false, out[1].row)
      assert.truthy(out[1].a:find("unterminated quote", 1, true), out[1].a)
      assert.are.same({ "1", "never closed" }, out[1].bad)
      assert.are.same({ "2", "3" }, out[2].row)
      assert.are.equal(3, out[2].a)
    end)

    it("a 1 MB field, NUL bytes and invalid UTF-8 do not crash the reader", function()
      local r = bounded(rows, "a,b\n" .. MB .. ",\0\255\n")
      assert.is_true(r[1], tostring(r[2]))
      assert.are.equal(#MB, #r[2][1].row[1])
    end)

    it("a missing file and a directory are errors, not raises", function()
      local r, err = core.csv_open("/nonexistent/x.csv")
      assert.is_nil(r)
      assert.truthy(err)
      r = core.csv_open("/")
      if r then
        local h, why = r:header()
        assert.is_nil(h)
        assert.truthy(why)
        r:close()
      end
    end)
  end)
end)
