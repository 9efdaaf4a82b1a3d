-- A deterministic, byte-driven builder of "Lua-like" values for fuzz_fields:
-- the same bytes always build the same value.  It can make nested tables
-- (up to MAX_DEPTH, plus a cheap deep chain), strings with any bytes (and
-- large ones), integers up to math.maxinteger, floats incl. NaN, inf and
-- -0.0, booleans, di.null, arrays marked with di.array, nil holes, cycles
-- (back-references to a table already built), where-clause nodes, date
-- tables and a few values of types no field takes (functions, threads).
local core = require "dialoginsight.core"
local where = require "dialoginsight.records.where"

local M = {}

local MAX_DEPTH = 12
local MAX_ITEMS = 24

-- Names that steer the builder into the code paths that matter.
M.NAMES = {
  "EMail", "email", "FirstName", "f_FirstName", "LastName", "Points", "f_Points",
  "Birthday", "LastVisit", "Active", "Score", "City", "idContact", "optin",
  "Newsletter", "Promos", "optin_Newsletter", "dtOptin_Newsletter", "key_f_EMail",
  "key_", "f_", "ID", "Data", "$type", "op", "field", "value", "combo", "list",
  "year", "month", "day", "hour", "min", "sec", "Emial", "FristName", "", "f_Unknown",
}

local SPECIAL_NUMBERS = {
  0 / 0, math.huge, -math.huge, 2^53, 2^53 + 2, -(2^53), -0.0, 1e308, 5e-324, 0.5,
  math.maxinteger, math.mininteger, 2^63, -(2^63), 9007199254740993, 1.5, 12.0, 2020,
}

local SPECIAL_STRINGS = {
  "2020-02-29", "2021-02-29", "2020.13.01", "2020-01-01 23:59:59", "2020-01-01T24:00",
  "1", "0", "true", "FALSE", " 42 ", "-7", "12abc", "1e3", "nan", "inf", "0x10",
  "\xff\xfe", "\xed\xa0\x80", "\xc0\x80", "caf\xc3\xa9", "\0", "a\"b\\c\n",
  "ann@example.com",
}

local Reader = {}
Reader.__index = Reader

function M.reader(bytes) return setmetatable({ s = bytes, i = 1, tables = {} }, Reader) end

function Reader:byte()
  local b = self.s:byte(self.i)
  self.i = self.i + 1
  return b or 0
end

function Reader:left() return #self.s - self.i + 1 end

function Reader:take(n)
  local s = self.s:sub(self.i, self.i + n - 1)
  self.i = self.i + n
  return s
end

function Reader:name()
  return M.NAMES[self:byte() % #M.NAMES + 1]
end

-- A key for a table: mostly names, sometimes any value.
function Reader:key(depth)
  local b = self:byte()
  if b < 160 then return self:name() end
  if b < 200 then return (b - 160) % 6 + 1 end -- array-ish index
  local k = self:value(depth + 1)
  if k == nil or k ~= k then return self:name() end
  return k
end

function Reader:table(depth, array)
  local t = {}
  self.tables[#self.tables + 1] = t
  local n = self:byte() % MAX_ITEMS
  for i = 1, n do
    if self:left() <= 0 then break end
    if array then
      t[i] = self:value(depth + 1) -- nil leaves a hole
    else
      local k = self:key(depth)
      t[k] = self:value(depth + 1)
    end
  end
  return t
end

function Reader:value(depth)
  if self:left() <= 0 then return nil end
  local op = self:byte() % 24
  if op == 0 then return nil
  elseif op == 1 then return false
  elseif op == 2 then return true
  elseif op == 3 then return self:byte() - 128
  elseif op == 4 then return (string.unpack("<i8", self:take(8) .. ("\0"):rep(8)))
  elseif op == 5 then return (string.unpack("<d", self:take(8) .. ("\0"):rep(8)))
  elseif op == 6 then return SPECIAL_NUMBERS[self:byte() % #SPECIAL_NUMBERS + 1]
  elseif op == 7 then return self:take(self:byte())
  elseif op == 8 then return self:name()
  elseif op == 9 then return SPECIAL_STRINGS[self:byte() % #SPECIAL_STRINGS + 1]
  elseif op == 10 then -- a large string: up to 255 KiB of one byte (speed)
    local b, n = self:byte(), self:byte()
    return string.char(b):rep(n * 1024)
  elseif op == 11 or op == 12 or op == 13 then
    if depth >= MAX_DEPTH then return self:name() end
    return self:table(depth, false)
  elseif op == 14 then
    if depth >= MAX_DEPTH then return 1 end
    return self:table(depth, true)
  elseif op == 15 then
    if depth >= MAX_DEPTH then return core.array() end
    return core.array(self:table(depth, true))
  elseif op == 16 then -- a back-reference: cycles and shared tables
    if #self.tables == 0 then return {} end
    return self.tables[self:byte() % #self.tables + 1]
  elseif op == 17 then return core.null
  elseif op == 18 then -- a chain nested up to 255 levels
    local n = self:byte()
    local leaf = self:value(MAX_DEPTH)
    local t = { leaf }
    for _ = 1, n do t = { t } end
    self.tables[#self.tables + 1] = t
    return t
  elseif op == 19 then -- an os.date("*t")-like table
    local d = { year = self:value(MAX_DEPTH), month = self:value(MAX_DEPTH),
                day = self:value(MAX_DEPTH) }
    if self:byte() % 2 == 1 then
      d.hour, d.min, d.sec = self:value(MAX_DEPTH), self:value(MAX_DEPTH), self:value(MAX_DEPTH)
    end
    return d
  elseif op == 20 then -- a where-clause node (built through the public API)
    local kinds = { "eq", "ne", "gt", "lt", "contains", "starts_with", "is_null", "not_null",
                    "all", "any" }
    local f = where[kinds[self:byte() % #kinds + 1]]
    local a = self:byte() % 3 == 0 and self:value(depth + 1) or self:name()
    local b = self:value(depth + 1)
    local ok, node = pcall(f, a, b)
    if ok then return node end
    return self:name()
  elseif op == 21 then return print -- a function
  elseif op == 22 then return coroutine.create(print)
  else return self:byte() * 1000003 end
end

--- The value the bytes describe.
function M.build(bytes)
  local r = M.reader(bytes)
  return r:value(0), r
end

return M
