-- Ordered JSON encoder for the sandbox's responses, plus a decode wrapper.
--
-- Why our own encoder: the envelope needs a fixed key order (Success, ErrorCode,
-- ErrorMessage, ..., idRequest, Trace), indented output with CRLF line ends like
-- the real IIS/Json.NET server, and integers printed as integers (LuaJIT numbers
-- are doubles; cjson would print 1e+15 for big ids).
--
-- Value model:
--   M.obj{ "k1", v1, "k2", v2, ... }  ordered object (alternating keys/values)
--   M.arr{ ... } or a plain table with t[1] ~= nil (or empty)  array
--   plain non-empty table without [1]   map (keys sorted, for echoes of input)
--   M.null (or cjson.null)              null
local cjson = require "cjson.safe"

local type, getmetatable, setmetatable, pairs, next = type, getmetatable, setmetatable, pairs, next
local floor, huge = math.floor, math.huge
local find, gsub, format, rep = string.find, string.gsub, string.format, string.rep
local concat, sort = table.concat, table.sort
local tostring, tonumber = tostring, tonumber

local M = {}

local OBJ = { __name = "sbx.obj" }
local ARR = { __name = "sbx.arr" }
local NULL = setmetatable({}, { __name = "sbx.null", __tostring = function() return "null" end })
M.null = NULL
-- RAW: already-encoded JSON text, emitted verbatim (see M.raw)
local RAW = { __name = "sbx.raw" }
M.OBJ, M.ARR = OBJ, ARR
local CJNULL = cjson.null

function M.obj(t) return setmetatable(t, OBJ) end
-- raw(json_text): a value the encoder copies as is (e.g. a pre-escaped string)
function M.raw(s) return setmetatable({ s }, RAW) end
-- raw_pieces(list): the same, given as the pieces of the list, in order
-- (no vararg: a vararg table aborts LuaJIT's traces on the reply path)
function M.raw_pieces(list) return setmetatable(list, RAW) end
function M.arr(t) return setmetatable(t or {}, ARR) end
function M.isnull(v) return v == nil or v == NULL or v == CJNULL end

local ESC = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}
for i = 0, 31 do
  local c = string.char(i)
  if not ESC[c] then ESC[c] = format("\\u%04x", i) end
end
ESC["\127"] = "\\u007f"

-- Quoted-string cache: keys and enumerations repeat on every response.
local qcache, qcount = {}, 0
local function quote(s)
  local q = qcache[s]
  if q then return q end
  if find(s, '[%c"\\]') then
    q = '"' .. gsub(s, '[%c"\\]', ESC) .. '"'
  else
    q = '"' .. s .. '"'
  end
  if #s <= 64 then
    if qcount >= 20000 then qcache, qcount = {}, 0 end
    qcount = qcount + 1
    qcache[s] = q
  end
  return q
end
M.quote = quote

local function number(v)
  if v ~= v or v == huge or v == -huge then return "null" end
  if v == floor(v) and v > -9007199254740992 and v < 9007199254740992 then
    return format("%d", v)
  end
  local s = format("%.14g", v)
  if tonumber(s) == v then return s end
  return format("%.17g", v)
end
M.number = number

-- Indent strings, cached per depth and per mode.
local IND_PRETTY, IND_COMPACT = {}, {}
for d = 0, 64 do IND_PRETTY[d] = "\r\n" .. rep("  ", d); IND_COMPACT[d] = "" end
local COLON_PRETTY, COLON_COMPACT = ": ", ":"

local IND, COLON = IND_PRETTY, COLON_PRETTY

local enc

local function sortkeys(a, b) return tostring(a) < tostring(b) end

enc = function(v, buf, n, d)
  local tv = type(v)
  if tv == "string" then
    -- a value is mostly unique (an e-mail, a name): quoting it as three
    -- pieces makes no new string, and keeps it out of the cache of names
    local q = qcache[v]
    if q then
      n = n + 1; buf[n] = q
    elseif find(v, '[%c"\\]') then
      n = n + 1; buf[n] = '"' .. gsub(v, '[%c"\\]', ESC) .. '"'
    else
      buf[n + 1], buf[n + 2], buf[n + 3] = '"', v, '"'
      n = n + 3
    end
  elseif tv == "number" then
    n = n + 1; buf[n] = number(v)
  elseif tv == "boolean" then
    n = n + 1; buf[n] = v and "true" or "false"
  elseif tv == "table" then
    if v == NULL or v == CJNULL then n = n + 1; buf[n] = "null"; return n end
    local mt = getmetatable(v)
    local ind, ind1 = IND[d] or IND[64], IND[d + 1] or IND[64]
    if mt == RAW then
      for i = 1, #v do n = n + 1; buf[n] = v[i] end
      return n
    end
    if mt == OBJ then
      local len = #v
      if len == 0 then n = n + 1; buf[n] = "{}"; return n end
      n = n + 1; buf[n] = "{"
      for i = 1, len, 2 do
        if i > 1 then n = n + 1; buf[n] = "," end
        n = n + 1; buf[n] = ind1
        n = n + 1; buf[n] = quote(v[i])
        n = n + 1; buf[n] = COLON
        n = enc(v[i + 1], buf, n, d + 1)
      end
      n = n + 1; buf[n] = ind
      n = n + 1; buf[n] = "}"
    elseif mt == ARR or v[1] ~= nil or next(v) == nil then
      local len = #v
      if len == 0 then n = n + 1; buf[n] = "[]"; return n end
      n = n + 1; buf[n] = "["
      for i = 1, len do
        if i > 1 then n = n + 1; buf[n] = "," end
        n = n + 1; buf[n] = ind1
        n = enc(v[i], buf, n, d + 1)
      end
      n = n + 1; buf[n] = ind
      n = n + 1; buf[n] = "]"
    else
      local keys, k, allstr = {}, 0, true
      for key in pairs(v) do
        k = k + 1; keys[k] = key
        if type(key) ~= "string" then allstr = false end
      end
      if k > 1 then
        if allstr then sort(keys) else sort(keys, sortkeys) end
      end
      n = n + 1; buf[n] = "{"
      for i = 1, k do
        if i > 1 then n = n + 1; buf[n] = "," end
        n = n + 1; buf[n] = ind1
        n = n + 1; buf[n] = quote(tostring(keys[i]))
        n = n + 1; buf[n] = COLON
        n = enc(v[keys[i]], buf, n, d + 1)
      end
      n = n + 1; buf[n] = ind
      n = n + 1; buf[n] = "}"
    end
  else
    n = n + 1; buf[n] = "null"
  end
  return n
end

-- one buffer for every call: encode is not re-entrant and this saves a
-- growing table per response
local shared_buf = {}

-- encode(value [, compact]) -> string. Pretty = 2-space indent, CRLF.
function M.encode(v, compact)
  if compact then IND, COLON = IND_COMPACT, COLON_COMPACT end
  local buf = shared_buf
  local n = enc(v, buf, 0, 0)
  IND, COLON = IND_PRETTY, COLON_PRETTY
  return concat(buf, "", 1, n)
end

-- encode_parts(value [, compact]) -> the pieces of encode's string, in a
-- list, for ngx.print.  A reply is never made into one Lua string: LuaJIT
-- hashes a long string from a few of its bytes, and replies that differ
-- only elsewhere (the same contact merged over and over: only idRequest and
-- the time change) all land in one hash chain, each new one compared with
-- every live one (memcmp was three quarters of the worker's time).  Nor is
-- it left as the encoder's pieces (about 5,000 for a 100-record Merge):
-- ngx.print walks a table of pieces three times through the C API, a
-- quarter of that Merge's time.  So runs of pieces are joined into strings
-- of at most PIECE bytes, under 128: OpenResty's LuaJIT hashes those in
-- full, and longer ones from samples (strings of 256 bytes that differed in
-- one number collided, and joining at 256 cost more than it saved).
local PIECE = 127

function M.encode_parts(v, compact)
  if compact then IND, COLON = IND_COMPACT, COLON_COMPACT end
  local buf = shared_buf
  local n = enc(v, buf, 0, 0)
  IND, COLON = IND_PRETTY, COLON_PRETTY
  local out, m, first, size = {}, 0, 1, 0
  for i = 1, n do
    local len = #buf[i]
    if size + len > PIECE and i > first then
      m = m + 1; out[m] = concat(buf, "", first, i - 1)
      first, size = i, 0
    end
    size = size + len
  end
  if n >= first then m = m + 1; out[m] = concat(buf, "", first, n) end
  return out
end

-- decode(text) -> value | nil, err   (never raises).  A private instance,
-- set as a typed service's parser is: no NaN, Infinity or hex numbers
-- (cjson's default reads them), at most 64 levels.
local strict = cjson.new()
strict.decode_invalid_numbers(false)
strict.decode_max_depth(64)
M.decode = strict.decode

return M
