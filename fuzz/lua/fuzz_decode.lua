-- fuzz_decode driver: bytes -> core.decode -> Client:interpret.
-- Byte 1 picks the status (200, 400, 429, 503) and whether a Retry-After
-- is passed; the rest is the body.
local core = require "dialoginsight.core"
local client = require "dialoginsight.client"
local errors = require "dialoginsight.errors"
local oracle = require "json_oracle"
local plain = require("cjson").new()

local KEY = "fuzzSecretKey0123456789abcdef"
local STATUSES = { 200, 400, 429, 503 }

local transport = { now = function() return 0 end, sleep = function() end }
local c = client.new({ base_url = "https://fuzz.invalid/", key_id = 42, key = KEY,
  project = 7, retries = 0 }, transport)
local req = assert(c:prepare("contacts", "Get", { Clause = { ["$type"] = "FieldClause" } }))

local function fail(fmt, ...)
  error("fuzz_decode: " .. string.format(fmt, ...), 0)
end

-- The value core.decode returned must be plain data: no float that should
-- have been an integer, and no null left as an object member.
local function check_decoded(v, depth, seen)
  local t = type(v)
  if t == "number" then
    if math.type(v) == "float" and v == math.floor(v) and math.abs(v) <= 2^53 then
      fail("integral float %s not turned into an integer", tostring(v))
    end
    if v ~= v or v == math.huge or v == -math.huge then fail("decoded %s", tostring(v)) end
  elseif t == "table" then
    if seen[v] then fail("decoded value shares a table") end
    seen[v] = true
    if depth > 1100 then fail("decoded value nested deeper than cjson allows") end
    for k, x in pairs(v) do
      if type(k) == "string" and x == core.null then fail("null member %q kept", k) end
      check_decoded(k, depth + 1, seen)
      check_decoded(x, depth + 1, seen)
    end
  elseif t ~= "string" and t ~= "boolean" and not (t == "userdata" and v == core.null) then
    fail("decoded a %s", t)
  end
end

-- Walks core.decode's result v beside the oracle's reading o of the same
-- text (numbers as mark .. token): each number must be what the oracle
-- expects, the exact number or the token as a string, and nothing else may
-- differ.
local function same_as_oracle(v, o, where, mark)
  if type(o) == "string" and o:sub(1, 1) == mark then
    local token = o:sub(2)
    local want = oracle.expect(token)
    if want == "string" then
      if v ~= token then fail("%s: %s should come back as the string %q, got %s", where, token, token, tostring(v)) end
    elseif v ~= want then
      fail("%s: %s should come back as the number %.17g, got %s %s", where, token, want, type(v), tostring(v))
    end
  elseif type(o) == "table" then
    if type(v) ~= "table" then fail("%s: a %s where the oracle has a table", where, type(v)) end
    local count = 0
    for k, ov in pairs(o) do
      if ov == plain.null and type(k) == "string" then
        if v[k] ~= nil then fail("%s.%s: null member kept", where, k) end
      else
        count = count + 1
        same_as_oracle(v[k], ov, where .. "." .. tostring(k), mark)
      end
    end
    for _ in pairs(v) do count = count - 1 end
    if count ~= 0 then fail("%s: member count differs from the oracle's", where) end
  elseif o == plain.null then
    if v ~= core.null then fail("%s: null read as %s", where, tostring(v)) end
  elseif v ~= o then
    fail("%s: %s where the oracle has %s", where, tostring(v), tostring(o))
  end
end

-- core.decode accepted body: the oracle must find only JSON tokens in it,
-- and read every number the same way.
local function check_against_oracle(body, v)
  local rewritten, mark = oracle.read(body)
  if not rewritten then fail("core.decode accepted a reply with %s", mark) end
  if not mark then return end -- every marker byte is in the reply: no way to compare
  local ok, o = pcall(plain.decode, rewritten)
  if not ok then fail("cjson refused the oracle's reading of a reply core.decode accepted: %s", o) end
  same_as_oracle(v, o, "reply", mark)
end

-- core.decode_outcomes (src/di_json_pick.c) reads a reply for the records'
-- outcomes only: it must accept what core.decode accepts (an object), refuse
-- what it refuses, and give for each member it keeps (named in any case,
-- under the name as sent) what core.decode gives, a container whole.  The
-- same rule as the #property in spec/client/json_spec.lua; here without the
-- text's tree, an object is told from an array by its string keys (a JSON
-- object's names are strings, an array's indexes integers).
local TOP = { success = true, errorcode = true, errormessage = true, idrequest = true,
              createdrecords = true, updatedrecords = true }
local REC = { idrecord = true, status = true, validationresult = true, message = true }

local function is_object(t)
  for k in pairs(t) do if type(k) == "string" then return true end end
  return false
end

local function same(a, b, where)
  if type(a) ~= type(b) or (type(a) == "number" and math.type(a) ~= math.type(b)) then
    fail("decode_outcomes: %s is %s %s, core.decode gave %s %s", where, type(b), tostring(b), type(a), tostring(a))
  end
  if type(a) ~= "table" then
    if a ~= b then fail("decode_outcomes: %s is %s, core.decode gave %s", where, tostring(b), tostring(a)) end
    return
  end
  for k, x in pairs(a) do same(x, b[k], where .. "." .. tostring(k)) end
  for k in pairs(b) do
    if a[k] == nil then fail("decode_outcomes: %s.%s present, absent in core.decode", where, tostring(k)) end
  end
end

-- What decode_outcomes must give, from what core.decode gave.
local function projected(v)
  local t = {}
  for k, x in pairs(v) do
    local lk = k:lower()
    if TOP[lk] then
      t[k] = x
    elseif lk == "records" then
      if type(x) == "table" and not is_object(x) then
        local list = {}
        for i, e in ipairs(x) do
          if type(e) == "table" and is_object(e) then
            local r = {}
            for rk, rv in pairs(e) do if REC[rk:lower()] then r[rk] = rv end end
            e = r
          end
          list[i] = e
        end
        x = list
      end
      t[k] = x
    end
  end
  return t
end

local function check_outcomes(body, v)
  local ok, p, why = pcall(core.decode_outcomes, body)
  if not ok then fail("core.decode_outcomes raised: %s", tostring(p)) end
  local object = body:gsub("^\239\187\191", ""):match("^[ \t\r\n]*{") ~= nil
  if v == nil or not object then
    if p ~= nil then fail("core.decode_outcomes accepted what core.decode refused or is no object") end
    return
  end
  if p == nil then
    if tostring(why):find("nested too deeply", 1, true) then return end
    fail("core.decode_outcomes refused a reply core.decode accepted: %s", tostring(why))
  end
  same(projected(v), p, "reply")
end

local function no_key(err)
  for k, v in pairs(err) do
    if type(v) == "string" and v:find(KEY, 1, true) then
      fail("the API key appears in err.%s", tostring(k))
    end
  end
  if tostring(err):find(KEY, 1, true) then fail("the API key appears in tostring(err)") end
end

return function(bytes)
  local sel = bytes:byte(1) or 0
  local status = STATUSES[sel % 4 + 1]
  local retry_after = (sel & 4) ~= 0 and (sel >> 3) or nil
  local body = bytes:sub(2)

  local ok, v, why = pcall(core.decode, body)
  if not ok then fail("core.decode raised: %s", tostring(v)) end
  if v == nil then
    if type(why) ~= "string" then fail("core.decode returned nil without a message") end
  else
    check_decoded(v, 0, {})
    check_against_oracle(body, v)
  end
  check_outcomes(body, v)

  local resp, err
  ok, resp, err = pcall(c.interpret, c, req, status, body, retry_after)
  if not ok then fail("interpret raised: %s", tostring(resp)) end
  if resp ~= nil then
    if type(resp) ~= "table" or err ~= nil then fail("interpret returned %s, %s", type(resp), type(err)) end
    local success = resp.Success
    if success == nil then -- named in another case, as the service allows (call/reply.lua)
      for k, x in pairs(resp) do
        if type(k) == "string" and k:lower() == "success" then success = x end
      end
    end
    if status ~= 200 or success ~= true then fail("a response without Success = true on %d", status) end
    return
  end
  if not errors.is_error(err) then fail("interpret returned no error object (%s)", type(err)) end
  if not errors.KINDS[err.kind] then fail("error kind %s", tostring(err.kind)) end
  if type(err.message) ~= "string" then fail("error message is a %s", type(err.message)) end
  if err.status ~= status then fail("error status %s, want %d", tostring(err.status), status) end
  -- an auth ErrorCode (InvalidAuthKey, AccessDenied) wins over the status
  if status == 429 and err.kind ~= "rate_limited" and err.kind ~= "auth" then
    fail("429 gave kind %s", err.kind)
  end
  if status == 503 and not (err.kind == "http" or err.kind == "auth" or err.kind == "rate_limited") then
    fail("503 gave kind %s", err.kind)
  end
  local s = tostring(err)
  if type(s) ~= "string" then fail("tostring(err) is not a string") end
  no_key(err)
end
