-- Small helpers shared by the services: case-insensitive names, value
-- validation per DataType, dates.
local json = require "sbx.json"
local ffi = require "ffi"

local lower, find, match, format, gsub = string.lower, string.find, string.match, string.format, string.gsub
local type, tonumber, pairs, floor, tostring = type, tonumber, pairs, math.floor, tostring
local cast, U8P = ffi.cast, ffi.typeof("const uint8_t *")

ffi.cdef [[
typedef struct { long sec, nsec; } sbx_timespec;
int clock_gettime(int clock, sbx_timespec *ts);
]]
local ts = ffi.new("sbx_timespec")

local M = {}
local NULL = json.null
local isnull = json.isnull

-- Lower-case cache: property names repeat on every call; string.lower is only
-- paid on a miss. Bounded so a hostile client cannot grow it forever.
local lc, lccount = {}, 0
local function lcase(s)
  local l = lc[s]
  if l then return l end
  l = lower(s)
  if lccount >= 50000 then lc, lccount = {}, 0 end
  lccount = lccount + 1
  lc[s] = l
  return l
end
M.lcase = lcase

-- norm(t) -> copy of a decoded JSON object with lower-cased keys (one level),
-- or nil when t is not an object.
function M.norm(t)
  if type(t) ~= "table" or t == NULL or json.isnull(t) then return nil end
  local r = {}
  for k, v in pairs(t) do
    if type(k) == "string" then r[lcase(k)] = v end
  end
  return r
end

-- The range of the typed service's integers (.NET Int32): idProject,
-- idContact, MaxRows, Integer fields and columns all are one.
M.INT_MIN, M.INT_MAX = -2147483648, 2147483647

-- Integer from a JSON number or a numeric string ("12") within Int32;
-- nil otherwise (1.5, 1e300, 9223372036854775807, NaN, "abc").
function M.int(v)
  local tv = type(v)
  local n
  if tv == "number" then
    n = v
  elseif tv == "string" and match(v, "^%s*%-?%d+%s*$") then
    n = tonumber(v)
  else
    return nil
  end
  if n ~= floor(n) or n < M.INT_MIN or n > M.INT_MAX then return nil end
  return n
end

-- A .NET decimal holds up to +-79228162514264337593543950335.
M.DECIMAL_MAX = 7.9228162514264337593543950335e28

-- Decimal from a JSON number or a decimal string ("12.5", "-1e3"), finite
-- and within a .NET decimal's range; nil otherwise.  (A double cannot
-- tell the other limit, 28 significant digits, so it is not checked.)
function M.decimal(v)
  local n
  if type(v) == "number" then
    n = v
  elseif type(v) == "string" and match(v, "^%s*%-?[%d.]+[eE]?[-+]?%d*%s*$") then
    n = tonumber(v)
  end
  if not n or n ~= n or n > M.DECIMAL_MAX or n < -M.DECIMAL_MAX then return nil end
  return n
end

-- nil when s is valid UTF-8, else the 1-based position of the first byte
-- that is not (overlong forms, UTF-16 surrogates and code points beyond
-- U+10FFFF included).  A byte loop over the string's memory: LuaJIT
-- compiles it, where a find per multi-byte character (a pattern find is
-- never compiled) cost a sixth of a 100-record Merge in accented data.
function M.utf8_error(s)
  local i = find(s, "[\128-\255]")
  if not i then return nil end
  local p, len = cast(U8P, s), #s
  i = i - 1 -- 0-based from here
  while i < len do
    local c = p[i]
    if c < 0x80 then
      i = i + 1
    else
      local n
      local lo, hi = 0x80, 0xBF -- the second byte's range; the others' is always this
      if c >= 0xC2 and c <= 0xDF then n = 1
      elseif c == 0xE0 then n, lo = 2, 0xA0
      elseif c == 0xED then n, hi = 2, 0x9F
      elseif c >= 0xE1 and c <= 0xEF then n = 2
      elseif c == 0xF0 then n, lo = 3, 0x90
      elseif c == 0xF4 then n, hi = 3, 0x8F
      elseif c >= 0xF1 and c <= 0xF3 then n = 3
      else return i + 1 end
      if i + n >= len then return i + 1 end
      local b = p[i + 1]
      if b < lo or b > hi then return i + 1 end
      for k = 2, n do
        b = p[i + k]
        if b < 0x80 or b > 0xBF then return i + 1 end
      end
      i = i + n + 1
    end
  end
  return nil
end

-- The path of the first string (member name or value) in a decoded request
-- that holds a NUL character, or nil.
function M.nul_path(v, path)
  if type(v) == "string" then return find(v, "\0", 1, true) and path or nil end
  if type(v) ~= "table" or v == NULL or isnull(v) then return nil end
  for k, x in pairs(v) do
    local here = type(k) == "number" and (path .. "[" .. k .. "]")
      or (path == "" and tostring(k) or (path .. "." .. tostring(k)))
    if type(k) == "string" and find(k, "\0", 1, true) then return here end
    local p = M.nul_path(x, here)
    if p then return p end
  end
  return nil
end

-- The wall clock in seconds, to the microsecond (CLOCK_REALTIME, the
-- clock of ngx.now and ngx.req.start_time, which keep only milliseconds).
function M.clock()
  ffi.C.clock_gettime(0, ts)
  return tonumber(ts.sec) + tonumber(ts.nsec) * 1e-9
end

-- Number of UTF-8 characters (continuation bytes are not counted).
function M.ulen(s)
  if not find(s, "[\128-\255]") then return #s end -- ASCII: no new string
  local _, cont = gsub(s, "[\128-\191]", "")
  return #s - cont
end

local DIM = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function leap(y) return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0 end

-- Date "YYYY.MM.DD" or "YYYY-MM-DD" (also with a trailing "T00:00:00" /
-- " 00:00:00") -> normalized "YYYY.MM.DD", or nil.
function M.date(s)
  if type(s) ~= "string" then return nil end
  local y, sep, m, sep2, d, rest = match(s, "^(%d%d%d%d)([%.%-/])(%d%d?)([%.%-/])(%d%d?)(.*)$")
  if not y or sep ~= sep2 then return nil end
  if rest ~= "" and not match(rest, "^[T ]00:00:00$") and not match(rest, "^[T ]00:00$") then return nil end
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if m < 1 or m > 12 or d < 1 then return nil end
  if d > DIM[m] or (m == 2 and d == 29 and not leap(y)) then return nil end
  return format("%04d.%02d.%02d", y, m, d)
end

-- Date-time "YYYY.MM.DD HH:MM:SS" (dashes, "T", or a bare date also accepted)
-- -> normalized "YYYY.MM.DD HH:MM:SS", or nil.
function M.datetime(s)
  if type(s) ~= "string" then return nil end
  local dpart, h, mi, se = match(s, "^(%d%d%d%d[%.%-/]%d%d?[%.%-/]%d%d?)[T ](%d%d?):(%d%d):?(%d?%d?)$")
  if not dpart then
    local d = M.date(s)
    if d then return d .. " 00:00:00" end
    return nil
  end
  local d = M.date(dpart)
  if not d then return nil end
  h, mi, se = tonumber(h), tonumber(mi), tonumber(se) or 0
  if h > 23 or mi > 59 or se > 59 then return nil end
  return format("%s %02d:%02d:%02d", d, h, mi, se)
end

-- epoch seconds (UTC) <-> "YYYY.MM.DD HH:MM:SS"
local function days_from_civil(y, m, d)
  y = (m <= 2) and (y - 1) or y
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

function M.to_epoch(dt)
  local y, m, d, h, mi, s = match(dt, "^(%d+)%.(%d+)%.(%d+) (%d+):(%d+):(%d+)$")
  if not y then return nil end
  return days_from_civil(tonumber(y), tonumber(m), tonumber(d)) * 86400 + h * 3600 + mi * 60 + s
end

function M.from_epoch(t)
  return os.date("!%Y.%m.%d %H:%M:%S", floor(t))
end

local TRUE = { ["1"] = true, ["true"] = true, ["yes"] = true }
local FALSE = { ["0"] = true, ["false"] = true, ["no"] = true, [""] = true }

-- Boolean from true/false, 1/0, "1"/"0", "true"/"false".
function M.bool(v)
  local tv = type(v)
  if tv == "boolean" then return v end
  if tv == "number" then
    if v == 1 then return true elseif v == 0 then return false end
    return nil
  end
  if tv == "string" then
    local l = lower(v)
    if TRUE[l] then return true elseif FALSE[l] then return false end
  end
  return nil
end

M.MAXTEXT = 100

-- coerce(datatype, value) -> stored value | nil, code, reason
-- NULL input means "clear the field" and returns json.null.
function M.coerce(dtype, v)
  if isnull(v) then return NULL end
  local tv = type(v)
  if dtype == "Text" then
    if tv == "number" then v = json.number(v)
    elseif tv ~= "string" then return nil, "InvalidType", "expects Text" end
    if M.ulen(v) > M.MAXTEXT then return nil, "TooLong", "is longer than " .. M.MAXTEXT .. " characters" end
    return v
  elseif dtype == "Integer" then
    local i = M.int(v)
    if not i then return nil, "InvalidType", "expects an Integer (a whole number from -2147483648 to 2147483647)" end
    return i
  elseif dtype == "Decimal" then
    local n = M.decimal(v)
    if not n then return nil, "InvalidType", "expects a Decimal (a finite number within +-7.9e28)" end
    return n
  elseif dtype == "Date" then
    local d = M.date(v)
    if not d then return nil, "InvalidType", "expects a Date (YYYY.MM.DD or YYYY-MM-DD)" end
    return d
  elseif dtype == "DateTime" then
    local d = M.datetime(v)
    if not d then return nil, "InvalidType", "expects a DateTime (YYYY.MM.DD HH:MM:SS)" end
    return d
  elseif dtype == "Boolean" then
    local b = M.bool(v)
    if b == nil then return nil, "InvalidType", "expects a Boolean (true/false, \"1\"/\"0\")" end
    return b
  end
  return nil, "InvalidType", "has an unknown DataType"
end

return M
