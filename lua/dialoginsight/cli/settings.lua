--- The command's client settings: the DI_* environment, then a config file
-- over it (`key = value` lines), both read through config.lua's schema.
local di = require "dialoginsight"
local config = require "dialoginsight.config"
local host = require "dialoginsight.host"

local M = {}

local function unquote(v)
  return (v:gsub('^"(.*)"$', "%1"):gsub("^'(.*)'$", "%1"))
end

--- Reads a config file: `key = value` lines, # comments, every setting the
-- schema marks `file`.  Warns when group or others may read it (it holds
-- the key).  Raises on a bad line.
function M.read_file(path, settings)
  local mode = host.mode(path)
  if not mode then error("config file " .. path .. " cannot be read", 0) end
  if mode & 0x24 ~= 0 then -- 044: readable by group or others
    io.stderr:write(string.format("dialoginsight: warning: config file %s is readable by "
      .. "group or others (mode %03o) and holds the API key: chmod 600 %s\n", path, mode & 0x1ff, path))
  end
  local f, why = io.open(path, "r")
  if not f then error("config file " .. why, 0) end
  local n = 0
  for line in f:lines() do
    n = n + 1
    local text = line:gsub("^%s+", ""):gsub("%s+$", "")
    if text ~= "" and not text:match("^#") then
      local k, v = text:match("^([%w_]+)%s*=%s*(.-)$")
      local where = path .. ":" .. n
      local def = k and config.setting(k)
      if not k then f:close(); error(where .. ": expected `name = value`", 0) end
      if not (def and def.file) then f:close(); error(where .. ": unknown setting '" .. k .. "'", 0) end
      settings[k] = config.from_text(k, unquote(v), where .. ": " .. k)
    end
  end
  f:close()
  return settings
end

--- The client settings of the global options g (config, trace).
function M.read(g)
  local s = config.from_env()
  local path = g.config or os.getenv("DI_CONFIG")
  if path and path ~= "" then M.read_file(path, s) end
  if g.trace then s.trace = true end
  return s
end

--- A client from the configuration, or nil, message (never showing the key).
function M.client(g)
  local ok, c = pcall(function() return di.new(M.read(g)) end)
  if ok then return c end
  local msg = tostring(c):gsub("^dialoginsight: ", "")
  if msg:match("'key'") or msg:match("'key_id'") then
    msg = msg .. " (set DI_KEY and DI_KEY_ID, or key and key_id in a --config file)"
  end
  return nil, "configuration: " .. msg
end

return M
