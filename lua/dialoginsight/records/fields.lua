--- Friendly field names both ways (FirstName <-> f_FirstName, optin = { X = true } <-> optin_X;
-- idContact, f_*, optin_*, dtOptin_*, key_* untouched), and values in the wire form of a field's
-- DataType, checked against projects:fields().  Pure: no I/O.
local core = require "dialoginsight.core"
local errors = require "dialoginsight.errors"
local options = require "dialoginsight.options"

local M = {}

M.MAX_TEXT = 100 -- characters of a short text field (docs/wire.md [doc])
-- the key field when Projects.Get marks none with isKey (no public reply shows it: docs/wire.md) [assumed]
M.DEFAULT_KEY = "EMail"

local NULL = core.null
local format, floor = string.format, math.floor

local DAYS = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function leap(y) return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0 end

-- every part is checked: os.date("*t")-like tables come from users (month = 1.5, NaN, a string)
local function whole(x, lo, hi)
  return type(x) == "number" and x == floor(x) and x >= lo and x <= hi
end

local function valid(y, mo, d, h, mi, s)
  if not (whole(y, 1, 9999) and whole(mo, 1, 12) and whole(h, 0, 23)
          and whole(mi, 0, 59) and whole(s, 0, 59)) then
    return false
  end
  if not whole(d, 1, DAYS[mo]) then return false end
  return not (mo == 2 and d == 29 and not leap(y))
end

-- a string's parts are whole numbers >= 0 already: only the ranges are left (bench/README.md)
local function valid_digits(y, mo, d, h, mi, s)
  if y < 1 or mo < 1 or mo > 12 or h > 23 or mi > 59 or s > 59 then return false end
  if d < 1 or d > DAYS[mo] then return false end
  return not (mo == 2 and d == 29 and not leap(y))
end

-- y, mo, d, h, mi, s of a date string, an os.time() number or an os.date("*t") table, or nil
local function parts(v)
  local tv = type(v)
  if tv == "string" then
    local y, mo, d, rest = v:match("^(%d%d%d%d)[%.%-/](%d%d?)[%.%-/](%d%d?)(.*)$")
    if not y then return nil end
    local h, mi, s = 0, 0, 0
    if rest ~= "" then
      h, mi, s = rest:match("^[T ](%d%d?):(%d%d):?(%d?%d?)$")
      if not h then return nil end
      s = tonumber(s) or 0
    end
    return tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), s
  elseif tv == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return nil end
    -- os.date raises on a time it cannot represent (1e300, math.maxinteger)
    local ok, t = pcall(os.date, "*t", floor(v))
    if not ok or type(t) ~= "table" then return nil end
    return t.year, t.month, t.day, t.hour, t.min, t.sec
  elseif tv == "table" and type(v.year) == "number" and type(v.month) == "number"
      and type(v.day) == "number" then
    return v.year, v.month, v.day, v.hour or 0, v.min or 0, v.sec or 0
  end
  return nil
end

local function stamp(v, with_time)
  local y, mo, d, h, mi, s = parts(v)
  if not y then return nil end
  if type(v) == "string" then
    if not valid_digits(y, mo, d, h, mi, s) then return nil end
  elseif not valid(y, mo, d, h, mi, s) then
    return nil
  end
  if with_time then
    return format("%04d.%02d.%02d %02d:%02d:%02d", y, mo, d, h, mi, s)
  end
  return format("%04d.%02d.%02d", y, mo, d)
end

--- v as "YYYY.MM.DD" (a time of day is dropped), or nil.
function M.date(v) return stamp(v, false) end

--- v as "YYYY.MM.DD HH:MM:SS", or nil.  os.time() numbers read as local time.
function M.datetime(v) return stamp(v, true) end

--- Why the string s cannot be sent as text, or nil: invalid UTF-8 or a NUL, which the service refuses.
-- Checked per value, since the encoder or the service would refuse the whole call (src/di_rows.c
-- declines the same values, for this function to name).
function M.text_problem(s)
  if s:find("\0", 1, true) then
    return "holds a NUL character (byte 0), which the service refuses in text"
  end
  if not s:find("[\128-\255]") then return nil end
  local ok, why = core.encode(s)
  if ok then return nil end
  return "is not valid UTF-8 (" .. why:gsub("^%(value%): ", "") .. ")"
end

-- the text_problem of a string in v (member names too), or nil; each table once, since shared
-- tables and cycles would cost exponential time (fuzz/README.md)
local function value_problem(v, depth, seen)
  if type(v) == "string" then return M.text_problem(v) end
  if type(v) ~= "table" or depth > 64 or seen[v] then return nil end -- deeper: the encoder refuses it
  seen[v] = true
  for k, x in pairs(v) do
    local why = value_problem(k, depth + 1, seen) or value_problem(x, depth + 1, seen)
    if why then return why end
  end
  return nil
end

-- with no field type to go by, an os.date("*t")-like table is a date, or a date-time when it has a time
local function untyped(v)
  if type(v) == "table" and getmetatable(v) == nil and v.year ~= nil then
    local timed = (v.hour or 0) ~= 0 or (v.min or 0) ~= 0 or (v.sec or 0) ~= 0
    return stamp(v, timed), "is not a valid date"
  end
  local why = value_problem(v, 0, {})
  if why then return nil, why end
  return v
end

local function utf8_len(s)
  local _, cont = s:gsub("[\128-\191]", "")
  return #s - cont
end

-- 2^53, the largest magnitude sent exactly, in digits
local MAX_EXACT_DIGITS = "9007199254740992"

--- v (a number or a string of digits) as an exact integer, or nil.
local function integer(v)
  if type(v) == "string" then
    -- beyond 2^53 refused before tonumber, which rounds under LuaJIT (...993 read as ...992)
    local digits = v:match("^%s*%-?0*(%d+)%s*$")
    if not digits or #digits > #MAX_EXACT_DIGITS
        or (#digits == #MAX_EXACT_DIGITS and digits > MAX_EXACT_DIGITS) then
      return nil
    end
    v = tonumber(v)
  end
  if type(v) ~= "number" or v ~= floor(v) or v ~= v or math.abs(v) > 2^53 then return nil end
  return math.tointeger and math.tointeger(v) or v
end
M.integer = integer

local BOOL = { ["1"] = true, ["true"] = true, ["0"] = false, ["false"] = false,
               [1] = true, [0] = false, [true] = true, [false] = false }

-- never given di.null: convert() and records/record.lua handle it first
local CONVERT = {
  Text = function(v)
    if type(v) == "number" then
      v = (v == floor(v) and math.abs(v) < 2^53) and format("%d", v) or tostring(v)
    end
    if type(v) ~= "string" then return nil, "expects text, got a " .. type(v) end
    local bad = M.text_problem(v)
    if bad then return nil, bad end
    -- never fewer bytes than characters: only a long string needs counting (utf8_len builds one)
    if #v > M.MAX_TEXT and utf8_len(v) > M.MAX_TEXT then
      return nil, "is longer than " .. M.MAX_TEXT .. " characters (" .. utf8_len(v) .. ")"
    end
    return v
  end,
  Integer = function(v)
    local n = integer(v)
    if n == nil then return nil, "expects an integer, got " .. format("%q", tostring(v)) end
    return n
  end,
  Decimal = function(v)
    local n = type(v) == "string" and tonumber(v) or v
    if type(n) ~= "number" or n ~= n or n == math.huge or n == -math.huge then
      return nil, "expects a number, got " .. format("%q", tostring(v))
    end
    -- any double beyond 2^53 is an integer the encoder refuses, with the whole call
    if math.abs(n) > 2^53 then
      return nil, "is beyond 2^53 and cannot be sent exactly: " .. format("%q", tostring(v))
    end
    return n
  end,
  Date = function(v)
    local d = M.date(v)
    if d == nil then return nil, "is not a valid date: " .. format("%q", tostring(v)) end
    return d
  end,
  DateTime = function(v)
    local d = M.datetime(v)
    if d == nil then return nil, "is not a valid date-time: " .. format("%q", tostring(v)) end
    return d
  end,
  Boolean = function(v)
    local b = BOOL[type(v) == "string" and v:lower() or v]
    if b == nil then return nil, "expects a boolean, got " .. format("%q", tostring(v)) end
    return b
  end,
}

--- A field meta's DataType when this library knows it, else "any" (for src/di_rows.c's column plan).
function M.kind(meta)
  return meta and CONVERT[meta.type] and meta.type or "any"
end

--- The converter of a field meta: function(v) -> the wire value | nil, why.  An unknown DataType
-- passes values as they are (but dates given as tables, and text that cannot be sent).
function M.converter(meta)
  return meta and CONVERT[meta.type] or untyped
end

--- The wire value of v for a field meta, or nil, why (di.null clears a field that is not required).
function M.convert(meta, v)
  if v == NULL then
    if meta and meta.required then return nil, "is required and cannot be cleared" end
    return NULL
  end
  return M.converter(meta)(v)
end

local function label(l)
  return type(l) == "table" and type(l[1]) == "table" and l[1].Value or nil
end

--- The schema of projects:fields(), from a Projects.Get ProjectInfo.
function M.schema(info)
  local s = { fields = {}, optins = {} }
  for _, f in ipairs(type(info) == "table" and info.ProjectFields or {}) do
    s.fields[#s.fields + 1] = { name = f.Code, wire = "f_" .. f.Code, type = f.DataType,
      required = f.isRequired == true, key = f.isKey == true, label = label(f.Labels) }
    if f.isKey == true then s.key = f.Code end
  end
  for _, o in ipairs(type(info) == "table" and info.OptinFields or {}) do
    s.optins[#s.optins + 1] = { name = o.Code, wire = "optin_" .. o.Code, label = label(o.Labels) }
  end
  if s.key == nil then
    for _, f in ipairs(s.fields) do
      if f.name == M.DEFAULT_KEY then s.key = f.name end
    end
  end
  return s
end

local indexes = setmetatable({}, { __mode = "k" })

--- A schema's lookup tables, built once, lower-cased: the server matches names in any case.
function M.index(schema)
  local idx = indexes[schema]
  if idx then return idx end
  idx = { schema = schema, names = {}, optins = {}, optin_names = {}, key = schema.key }
  for _, f in ipairs(schema.fields) do
    local meta = { name = f.name, wire = f.wire, type = f.type, required = f.required, key = f.key }
    idx.names[f.name:lower()], idx.names[f.wire:lower()] = meta, meta
  end
  for _, o in ipairs(schema.optins) do
    local meta = { name = o.name, wire = o.wire, type = "Boolean", optin = true }
    idx.optins[o.name:lower()], idx.names[o.wire:lower()] = meta, meta
    idx.names[("dtOptin_" .. o.name):lower()] =
      { name = "dtOptin_" .. o.name, wire = "dtOptin_" .. o.name, type = "DateTime" }
  end
  idx.names.idcontact = { name = "idContact", wire = "idContact", type = "Integer" }
  indexes[schema] = idx
  return idx
end

-- Names ---------------------------------------------------------------------------

local function unknown(name, list, what, guess_none)
  local names = {}
  for _, m in ipairs(list) do names[#names + 1] = m.name end
  local guess = not guess_none and errors.closest(name, names)
  return "is not " .. what .. " of the project"
    .. (guess and (" (did you mean '" .. guess .. "'?)") or "")
end

local WIRE = { "^f_", "^optin_", "^dtOptin_", "^key_" }

local function is_wire(name)
  if name == "idContact" then return true end
  for _, p in ipairs(WIRE) do if name:match(p) then return true end end
  return false
end

--- The meta of a contact field named by its friendly or wire name: with an
-- index (idx), the project's field or nil, why; without one, a meta that
-- only knows the wire name.  guess_none: why names no close field (a
-- header of a million unknown columns must not cost a guess each).
function M.resolve(name, idx, guess_none)
  if not idx then
    return { name = name, wire = is_wire(name) and name or "f_" .. name }
  end
  local meta = idx.names[name:lower()]
  if meta then return meta end
  if not is_wire(name) then meta = idx.optins[name:lower()] end
  if meta then return meta end
  return nil, unknown((name:gsub("^f_", "")), idx.schema.fields, "a field", guess_none)
end

--- The meta of an opt-in named without its prefix.
function M.resolve_optin(name, idx)
  if not idx then return { name = name, wire = "optin_" .. name, type = "Boolean" } end
  local meta = idx.optins[name:lower()]
  if meta then return meta end
  return nil, unknown(name, idx.schema.optins, "an opt-in")
end

--- A wire name read back as a friendly one (f_FirstName -> FirstName).
function M.friendly(wire)
  return (wire:gsub("^key_", ""):gsub("^f_", ""):gsub("^optin_", "optin."))
end

--- A contact as the server returns it, with friendly names: c.FirstName, c.optin.Newsletter == true
-- (a field named optin stays c.f_optin); nil, why when a bare member optin would take their place.
function M.from_wire(rec)
  local c, optin = {}, {}
  for k, v in pairs(rec) do
    if k == "f_optin" then
      c.f_optin = v -- a project field named optin: under its wire name, the opt-ins hold c.optin
    elseif type(k) == "string" and k:match("^f_") then
      c[k:sub(3)] = v
    elseif type(k) == "string" and k:match("^optin_") then
      local b = BOOL[type(v) == "string" and v:lower() or v]
      if b == nil then b = v end
      optin[k:sub(7)] = b
    else
      c[k] = v
    end
  end
  -- a bare member optin (no wire name: not the service's) would take the opt-ins' place
  if c.optin ~= nil then return nil, "its member optin takes the place of the opt-ins" end
  c.optin = optin
  return c
end

--- Message parameters as the wire wants them (names to strings), a problem added for each bad one.
function M.parameters(params, problems)
  if params == nil then return nil end
  if type(params) ~= "table" then
    problems[#problems + 1] = { field = "params", message = "must be a table of name = value" }
    return nil
  end
  local out = {}
  for k, v in pairs(params) do
    if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number") then
      problems[#problems + 1] = { field = "params." .. tostring(k),
                                  message = "must be a string or a number" }
    else
      out[k] = type(v) == "number" and CONVERT.Text(v) or v
    end
  end
  return out
end

--- The validation error of a list of problems ({ record?, field, message }).
function M.invalid(problems, service, method)
  local lines = {}
  for i, p in ipairs(problems) do
    if i > 5 then
      lines[#lines + 1] = "and " .. (#problems - 5) .. " more"
      break
    end
    lines[#lines + 1] = (p.record and ("record " .. p.record .. ", ") or "")
      .. "field " .. options.field(p.field) .. " " .. p.message
  end
  local n = #problems
  return errors.new {
    kind = "validation", service = service, method = method,
    field = problems[1] and problems[1].field, problems = problems,
    message = n .. (n == 1 and " problem: " or " problems: ") .. table.concat(lines, "; "),
  }
end

return M
