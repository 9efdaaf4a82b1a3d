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
        local text = core.encode(v)
        if text == nil then text = core.encode((tostring(v):gsub("[\128-\255]", "?"))) end
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
