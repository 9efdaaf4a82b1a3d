-- fuzz_decode driver: bytes -> core.decode -> Client:interpret.
-- Byte 1 picks the status (200, 400, 429, 503) and whether a Retry-After
-- is passed; the rest is the body.
local core = require "dialoginsight.core"
local client = require "dialoginsight.client"
local errors = require "dialoginsight.errors"

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
  end

  local resp, err
  ok, resp, err = pcall(c.interpret, c, req, status, body, retry_after)
  if not ok then fail("interpret raised: %s", tostring(resp)) end
  if resp ~= nil then
    if type(resp) ~= "table" or err ~= nil then fail("interpret returned %s, %s", type(resp), type(err)) end
    if status ~= 200 or resp.Success ~= true then fail("a response without Success = true on %d", status) end
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
