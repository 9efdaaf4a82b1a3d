--- Where the library's log lines go, and in which format: nginx's error log inside
-- nginx, else stderr; plain text, or one JSON object per line (log_format = "json",
-- DI_LOG_FORMAT, --log-format: docs/logging.md).  Every layer logs through here.
-- @module dialoginsight.log
local core = require "dialoginsight.core"

local M = {}

--- The formats.
M.FORMATS = { text = true, json = true }

-- The process's format: the last client made sets it (a warning is no client's).
local format = "text"

--- Sets the process's format ("text" or "json").
-- @local
function M.configure(f)
  if not M.FORMATS[f] then error("dialoginsight: log format must be \"text\" or \"json\"", 2) end
  format = f
end

--- The process's format.
-- @local
function M.format() return format end

-- Writes a whole line at level ("warn" or "info") to the home of this process.
local function write(level, line)
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and ngx.log and ngx.WARN then
    ngx.log(level == "warn" and ngx.WARN or ngx.NOTICE, line)
  else
    io.stderr:write(line, "\n")
  end
end

-- The fields a JSON line starts with, in this order; the others follow by name.
local FIRST = { "ts", "level", "event", "call_id", "service", "method" }
local IS_FIRST = {}
for _, k in ipairs(FIRST) do IS_FIRST[k] = true end

-- UTC time with milliseconds, as log collectors parse it.
local function timestamp(t)
  local s = math.floor(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", s) .. string.format(".%03dZ", math.floor((t - s) * 1000))
end

-- The longest string a JSON line holds in one member: nginx cuts an entry at about 2 KB,
-- and a cut line is not JSON (a server's error message can be of any length).
local MAX_STRING = 512

-- s with each byte that starts no valid UTF-8 sequence replaced by "?" (the JSON
-- encoder refuses invalid UTF-8; the rest of the text stays as it was).
local function utf8_only(s)
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = s:byte(i)
    local len = c < 0x80 and 1 or (c >= 0xC2 and c <= 0xDF) and 2
      or (c >= 0xE0 and c <= 0xEF) and 3 or (c >= 0xF0 and c <= 0xF4) and 4 or 0
    local ok = len > 0 and i + len - 1 <= n
    for j = i + 1, i + len - 1 do
      local b = s:byte(j)
      if not b or b < 0x80 or b > 0xBF then ok = false end
    end
    if ok then out[#out + 1] = s:sub(i, i + len - 1); i = i + len else out[#out + 1] = "?"; i = i + 1 end
  end
  return table.concat(out)
end

-- A string member's JSON: cut to MAX_STRING bytes (never inside a character), valid UTF-8.
local function string_json(v)
  if #v > MAX_STRING then
    local cut = MAX_STRING
    while cut > 0 and (v:byte(cut + 1) or 0) >= 0x80 and (v:byte(cut + 1) or 0) < 0xC0 do cut = cut - 1 end
    v = v:sub(1, cut) .. string.format("... (%d bytes)", #v)
  end
  return core.encode(v) or core.encode(utf8_only(v)) or core.encode((v:gsub("[\128-\255]", "?")))
end

-- A JSON object of fields: strings, numbers and booleans (others dropped).
local function json(fields)
  local names = {}
  for k, v in pairs(fields) do
    local t = type(v)
    if not IS_FIRST[k] and type(k) == "string" and (t == "string" or t == "number" or t == "boolean") then
      names[#names + 1] = k
    end
  end
  table.sort(names)
  local parts = {}
  for _, list in ipairs { FIRST, names } do
    for _, k in ipairs(list) do
      local v = fields[k]
      if v ~= nil then
        local text = type(v) == "string" and string_json(v) or core.encode(v) or "null"
        parts[#parts + 1] = core.encode(k) .. ":" .. text
      end
    end
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

--- Logs an event: event is its name (call, retry, wait, limit, fallback, warning),
-- fields its members; text is its line in the text format (nil: none, a warning says it).
-- @local
function M.event(event, fields, text, level)
  level = level or "info"
  if format ~= "json" then
    if text then write(level, text) end
    return
  end
  fields.ts, fields.level, fields.event = timestamp(core.wall()), level, event
  write(level, json(fields))
end

--- Writes msg, a whole line without its newline, as a warning.
-- @tparam string msg
function M.warn(msg)
  if format ~= "json" then return write("warn", msg) end
  M.event("warning", { message = (msg:gsub("^dialoginsight: WARNING: ", "")) }, msg, "warn")
end

--- A call's id in logs: this process's id and the call's number in it.
-- @local
function M.call_id(n)
  local ngx = rawget(_G, "ngx")
  local pid = type(ngx) == "table" and ngx.worker and ngx.worker.pid() or core.pid()
  return pid .. "-" .. n
end

return M
