-- An independent reading of a reply's bare tokens, for fuzz_decode: what
-- core.decode must refuse, and what each number must come back as.  It is
-- written from RFC 8259 and README.md ("JSON"), not from src/di_json_scan.c,
-- so that the two can disagree.
--
-- oracle.read(text) -> rewritten, mark | nil, why
--   nil when the text has a bare token that is not JSON (NaN, 0x10, 1.,
--   a NUL outside strings) or a raw control byte in a string: core.decode
--   must then refuse it.  Otherwise the text with every number token turned
--   into a string mark .. token, for a plain cjson to decode into the same
--   shape as core.decode's result.  mark is a byte that never starts valid
--   UTF-8 (so no \u escape decodes to it) and that the text does not hold
--   (so no raw string has it); false when the text holds all of them.
-- oracle.expect(token) -> "string" | number
--   what core.decode must give for a number token: the token itself as a
--   string when a double does not hold it as written, else the number.
local M = {}

local function valid_number(t)
  local int, frac, exp = t:match("^%-?(%d+)(%.?%d*)([eE]?[+-]?%d*)$")
  if not int then return false end
  if #int > 1 and int:sub(1, 1) == "0" then return false end
  if frac ~= "" and not frac:match("^%.%d+$") then return false end
  if exp ~= "" and not exp:match("^[eE][+-]?%d+$") then return false end
  return true
end

local function valid_token(t)
  return t == "true" or t == "false" or t == "null" or valid_number(t)
end

function M.read(text)
  if text:sub(1, 3) == "\239\187\191" then text = text:sub(4) end
  local mark = false
  for b = 255, 245, -1 do
    if not text:find(string.char(b), 1, true) then mark = string.char(b); break end
  end
  local out, pos, n = {}, 1, #text
  while pos <= n do
    local s, e = text:find("^[\1- {}%[%],:]+", pos)
    if s then
      out[#out + 1] = text:sub(s, e)
      pos = e + 1
    elseif text:sub(pos, pos) == '"' then
      local i = pos + 1
      while true do
        local j = text:find('["\\%z\1-\31]', i)
        if not j then return nil, "unterminated string" end
        local c = text:sub(j, j)
        if c == '"' then i = j + 1; break end
        if c ~= "\\" then return nil, "raw control byte in a string" end
        i = j + 2
      end
      out[#out + 1] = text:sub(pos, i - 1)
      pos = i
    else
      local t = text:match('^[^\1- {}%[%],:"%z]*', pos)
      if t == "" or not valid_token(t) then return nil, "not a JSON token" end
      out[#out + 1] = valid_number(t) and mark and ('"' .. mark .. t .. '"') or t
      pos = pos + #t
    end
  end
  return table.concat(out), mark
end

-- The significant digits of a decimal token and the power of ten of the
-- first: "-0.0120e3" -> "12", 1.
local function significant(t)
  local mant, exp = t:match("^%-?([%d.]+)[eE]?([+-]?%d*)$")
  local int = mant:match("^(%d+)")
  local digits = mant:gsub("%.", "")
  local lead = digits:find("[1-9]")
  if not lead then return nil end
  local sig = digits:sub(lead):gsub("0+$", "")
  return sig, #int - lead + (tonumber(exp) or 0)
end

function M.expect(t)
  if not t:find("[.eE]") then
    local digits = t:gsub("^%-", "")
    if #digits < 16 or (#digits == 16 and digits <= "9007199254740992") then
      return math.tointeger(tonumber(t))
    end
    return "string"
  end
  local x = tonumber(t)
  local sig, power = significant(t)
  if not sig then return 0 end
  -- held exactly: the double prints back with the same digits and power
  -- (beyond 99 digits string.format cannot tell, and no fuzzer writes out
  -- a double's whole expansion)
  if #sig > 99 or x ~= x or x == math.huge or x == -math.huge or x == 0 then return "string" end
  local shown, shown_power = string.format("%." .. (#sig - 1) .. "e", math.abs(x)):match("^([%d.]+)e([+-]%d+)$")
  if shown:gsub("%.", "") ~= sig or tonumber(shown_power) ~= power then return "string" end
  return x
end

return M
