--- The command's client settings: the DI_* environment, then a config file
-- over it (`key = value` lines), both read through config.lua's schema.
local di = require "dialoginsight"
local config = require "dialoginsight.config"
local host = require "dialoginsight.host"
local options = require "dialoginsight.options"

local M = {}

-- The settings a config file may set, for the closest name to a misspelling.
local FILE_NAMES = {}
for _, def in ipairs(config.SETTINGS) do
  if def.file then FILE_NAMES[#FILE_NAMES + 1] = def.name end
end

--- The help's section on the environment, from config.lua's schema: each
-- DI_* variable with the first part of its setting's doc.
function M.environment_help()
  local lines = { "environment (in a --config file: the names in lower case without DI_, key_id = 12):" }
  for _, def in ipairs(config.SETTINGS) do
    if def.env then
      local what = def.doc:match("^(.-); ") or def.doc
      lines[#lines + 1] = string.format("  %-17s %s", def.env, what)
    end
  end
  lines[#lines + 1] = string.format("  %-17s %s", "DI_CONFIG", "the config file, when --config is not given")
  lines[#lines + 1] = "The API key is read from DI_KEY or the config file, never from the command line."
  return table.concat(lines, "\n") .. "\n"
end

-- A config line's value (leading spaces gone): quoted, or bare without the `# comment`
-- that may follow it; # starts a comment only at the start or after a space, so a key
-- holding # reads whole.  The value, or nil and why (never quoting it: it may be the key).
local function value_of(rest)
  local q = rest:sub(1, 1)
  if q == '"' or q == "'" then
    local close = rest:find(q, 2, true)
    if not close then return nil, "the quote is not closed" end
    local after = rest:sub(close + 1)
    if not (after:match("^%s*$") or after:match("^%s*#")) then
      return nil, "text after the closing quote (only a # comment may follow)"
    end
    return rest:sub(2, close - 1)
  end
  local cut = rest:find("#", 1, true) == 1 and 1 or rest:find("%s#")
  if cut then
    rest = rest:sub(1, cut - 1):gsub("%s+$", "")
    if rest == "" then
      return nil, "no value before the # comment (quote a value that holds #)"
    end
  end
  return rest
end

-- --config - : stdin, read once (M.keys reads the settings before M.read).
local stdin_text

-- The lines of the config file at path ("-": stdin), or raises.
local function config_lines(path, quiet)
  if path == "-" then
    stdin_text = stdin_text or io.stdin:read("a") or ""
    return (stdin_text .. "\n"):gmatch("([^\n]*)\n"), function() end
  end
  local mode = host.mode(path)
  if not mode then error("config file " .. path .. " cannot be read", 0) end
  if mode & 0x24 ~= 0 and not quiet then -- 044: readable by group or others
    io.stderr:write(string.format("dialoginsight: warning: config file %s is readable by "
      .. "group or others (mode %03o) and holds the API key: chmod 600 %s\n", path, mode & 0x1ff, path))
  end
  local f, why = io.open(path, "r")
  if not f then error("config file " .. why, 0) end
  return f:lines(), function() f:close() end
end

--- Reads a config file: `key = value` lines and # comments, for every setting the schema
-- marks `file`.  Warns when group or others may read it (it holds the key), unless quiet;
-- raises on a bad line, naming the line and the setting, never the value.
function M.read_file(path, settings, quiet)
  local lines, close = config_lines(path, quiet)
  local n = 0
  for line in lines do
    n = n + 1
    local text = line:gsub("^%s+", ""):gsub("%s+$", "")
    if text ~= "" and not text:match("^#") then
      local k, rest = text:match("^([%w_]+)%s*=%s*(.-)$")
      local where = path .. ":" .. n
      local def = k and config.setting(k)
      if not k then close(); error(where .. ": expected `name = value`", 0) end
      if not (def and def.file) then
        close()
        local guess = require("dialoginsight.errors").closest(k, FILE_NAMES)
        error(where .. ": unknown setting " .. options.shown(k)
          .. (guess and guess ~= k and (" (did you mean '" .. guess .. "'?)") or ""), 0)
      end
      local v, bad = value_of(rest)
      if not v then close(); error(where .. ": " .. k .. ": " .. bad, 0) end
      settings[k] = config.from_text(k, v, where .. ": " .. k)
    end
  end
  close()
  return settings
end

--- The API keys this run is configured with (DI_KEY, and the config file's
-- `key`), read quietly: what no argument may hold.  A problem with the file
-- is left for M.client to report.
function M.keys(g)
  local keys = {}
  local env = os.getenv("DI_KEY")
  if env and env ~= "" then keys[#keys + 1] = env end
  local path = g.config or os.getenv("DI_CONFIG")
  if path and path ~= "" then
    local ok, s = pcall(M.read_file, path, {}, true)
    if ok and type(s.key) == "string" and s.key ~= "" then keys[#keys + 1] = s.key end
  end
  return keys
end

--- The settings of the global options g (config, trace): the client's, or with home
-- "webhooks" the receiver's (config.SETTINGS' home); a config file holds both.
function M.read(g, home)
  local s = config.from_env(nil, home)
  local path = g.config or os.getenv("DI_CONFIG")
  if path and path ~= "" then
    local all = M.read_file(path, {})
    for k, v in pairs(all) do
      if config.setting(k).home == home then s[k] = v end
    end
  end
  if home == nil and (g.trace or g.verbose) then s.trace = true end
  if home == nil and g.log_format then s.log_format = g.log_format end
  return s
end

--- A client from the configuration, or nil, message (never showing the key).
-- priority: the command's own default (sync, export: "batch"), which a priority
-- the user set (DI_PRIORITY, the config file) overrides.
function M.client(g, priority)
  local ok, c = pcall(function()
    local s = M.read(g)
    if s.priority == nil then s.priority = priority end
    return di.new(s)
  end)
  if ok then return c end
  local msg = tostring(c):gsub("^dialoginsight: ", "")
  if msg:match("'key'") or msg:match("'key_id'") then
    msg = msg .. " (set DI_KEY and DI_KEY_ID, or key and key_id in a --config file)"
  end
  return nil, "configuration: " .. msg
end

return M
