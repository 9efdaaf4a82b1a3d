--- A JSON pretty-printer for `dialoginsight call`: two-space indent, keys
-- sorted so that the output is stable (diffable, testable).  Scalars are
-- written by the core's encoder, so strings are escaped exactly as on the
-- wire.
local core = require "dialoginsight.core"

local M = {}

local ARRAY_MT = getmetatable(core.array {})

local function is_array(t)
  if getmetatable(t) == ARRAY_MT then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local function scalar(v)
  if v == core.null then return "null" end
  local tv = type(v)
  if tv == "string" or tv == "number" or tv == "boolean" then
    local s = core.encode(v)
    if s then return s end
  end
  return core.encode(tostring(v)) or '"?"'
end

local function write(out, v, indent)
  if type(v) ~= "table" or v == core.null then
    out[#out + 1] = scalar(v)
    return
  end
  local inner = indent .. "  "
  if is_array(v) then
    if #v == 0 then out[#out + 1] = "[]"; return end
    out[#out + 1] = "[\n"
    for i = 1, #v do
      out[#out + 1] = inner
      write(out, v[i], inner)
      out[#out + 1] = i < #v and ",\n" or "\n"
    end
    out[#out + 1] = indent .. "]"
    return
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  if #keys == 0 then out[#out + 1] = "{}"; return end
  out[#out + 1] = "{\n"
  for i, k in ipairs(keys) do
    local val = v[k]
    if val == nil then val = v[tonumber(k)] end
    out[#out + 1] = inner .. scalar(k) .. ": "
    write(out, val, inner)
    out[#out + 1] = i < #keys and ",\n" or "\n"
  end
  out[#out + 1] = indent .. "}"
end

--- v as indented JSON text (no trailing newline).
function M.pretty(v)
  local out = {}
  write(out, v, "")
  return table.concat(out)
end

return M
