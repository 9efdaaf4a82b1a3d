--- The `dialoginsight` command (bin/dialoginsight, src/host/di_host.c):
-- option parsing, configuration, and the commands other than sync.
--
-- Exit statuses: 0 done; 1 error; 2 sync finished but some rows were
-- rejected; 64 bad usage; 130 interrupted (Ctrl-C).
local di = require "dialoginsight"
local config = require "dialoginsight.config"
local host = require "dialoginsight.host"

local M = {}

M.EXIT = { ok = 0, error = 1, rejected = 2, usage = 64, interrupted = 130 }

local HELP = {}

HELP.main = [[
usage: dialoginsight [--config FILE] [--trace] COMMAND [ARGS]

commands:
  run SCRIPT.lua [ARGS]      run a script with a ready `client` (also: dialoginsight SCRIPT.lua)
  check                      are the credentials valid, and which projects can the key see?
  fields                     the project's fields and opt-ins
  call SERVICE METHOD [JSON|-]   any OFC4 call, the reply as pretty JSON
  sync contacts FILE.csv     merge a CSV file of contacts (resumable, with a rejects file)
  export contacts [--where F=V]...   contacts as CSV on stdout
  stats CAMPAIGN_ID          sends, opens, clicks and rates of a campaign

options (before or after the command):
  --config FILE   settings as `key = value` lines (key_id, key, project, base_url, ...)
  --trace         log every call (service, method, status, time, attempts) on stderr
  -h, --help      this help; `dialoginsight COMMAND --help` for a command

The API key is read from DI_KEY (and DI_KEY_ID, DI_PROJECT, DI_BASE_URL,
DI_CA_FILE, DI_REGION, DI_RATE, DI_BURST) or from the config file, never
from the command line.

exit status: 0 ok, 1 error, 2 sync done but rows rejected, 64 usage, 130 Ctrl-C
]]

HELP.run = [[
usage: dialoginsight run SCRIPT.lua [ARGS...]
       dialoginsight SCRIPT.lua [ARGS...]

Runs SCRIPT.lua with these globals:
  client   a client built from the configuration (DI_* or --config)
  di       require "dialoginsight"
  arg      arg[0] = SCRIPT.lua, arg[1..] = ARGS (also passed as ...)
The script's error shows with a traceback and exits 1; `return N` or
os.exit(N) sets the exit status.
]]

HELP.check = [[
usage: dialoginsight check

Calls projects.List: says whether the key is accepted and lists the
projects it can see (the configured one is marked with *).  Exit 1 when the
credentials are refused.
]]

HELP.fields = [[
usage: dialoginsight fields

The project's fields (name, type, required, key, label) and opt-ins, from
projects.Get: the names you can use in scripts and as sync column headers.
]]

HELP.call = [[
usage: dialoginsight call SERVICE METHOD [JSON|-]

Calls SERVICE.METHOD with the JSON object given (or read from stdin with
-) as parameters; AuthKey and idProject are added.  Prints the reply as
JSON with sorted keys (the server's Trace member is left out).
  dialoginsight call projects List
  dialoginsight call contacts Get '{"Clause":{"$type":"FieldClause","Field":{"Name":"f_EMail"},"TypeOperator":"Equal","ComparisonValue":"ann@example.com"}}'
]]

HELP.sync = [[
usage: dialoginsight sync contacts FILE.csv [options]

Merges every row of FILE.csv into the project's contacts (Contacts.Merge,
an upsert).  Column headers are field names (FirstName, f_FirstName),
opt-ins (Newsletter, optin_Newsletter), or idContact.

options:
  --key FIELD         the key field (default: the project's, e.g. EMail)
  --map COL=FIELD     read column COL as FIELD (repeatable); COL= ignores COL
  --batch-size N      records per Merge call (default 100)
  --concurrency N     calls in flight (default 8)
  --rejects PATH      where rejected rows go (default FILE.csv.rejects.csv)
  --dry-run           validate only: nothing is sent, no journal
  --resume            continue an interrupted run from its journal
  --restart           discard an unfinished journal and start over
  --progress-interval S   seconds between progress lines when not on a TTY (5)

Every row ends merged or in the rejects file (its fields, then di_line and
di_reason).  The journal FILE.csv.di-journal records each confirmed batch;
--resume skips those and re-sends the rest.
exit status: 0 all merged, 2 some rows rejected, 1 error, 130 Ctrl-C
(the journal is written: run again with --resume).
]]

HELP.export = [[
usage: dialoginsight export contacts [--where FIELD=VALUE]... [--page-size N] > out.csv

Writes the matching contacts (all of them without --where) as CSV on
stdout, paging through Contacts.Get.  --where takes FIELD=VALUE, FIELD!=VALUE,
FIELD>VALUE or FIELD<VALUE; several are joined with And.  The columns are
idContact, the project's fields and optin_<name> columns, so the file can be
synced back.
]]

HELP.stats = [[
usage: dialoginsight stats CAMPAIGN_ID

The campaign's counts (Sent, Delivered, Opened, Clicked, ...) and its open
and click rates.
]]

-- Flags that would put the secret on the command line (visible in ps and
-- shell history): refused, with the way to do it instead.
local SECRET_FLAGS = { "key-secret", "secret", "api-key", "apikey", "auth-key", "authkey",
                       "key-id", "password", "token", "di-key" }

local function usage_error(msg, cmd)
  io.stderr:write("dialoginsight: ", msg, "\n")
  io.stderr:write("see: dialoginsight ", cmd and (cmd .. " ") or "", "--help\n")
  return M.EXIT.usage
end

local function fail(msg)
  io.stderr:write("dialoginsight: ", tostring(msg), "\n")
  return M.EXIT.error
end
M.fail = fail

--- Parses args[from..] against spec (name -> "flag" | "value" | "list").
-- Returns options, positionals; or nil, message.  stop_at_positional ends
-- option parsing at the first positional (run: the script's own args).
function M.parse(args, from, spec, stop_at_positional)
  local opts, pos = {}, {}
  local i = from
  while i <= #args do
    local a = args[i]
    if a == "--" then
      for j = i + 1, #args do pos[#pos + 1] = args[j] end
      break
    end
    local name, value = a:match("^%-%-([%w%-]+)=(.*)$")
    name = name or a:match("^%-%-([%w%-]+)$")
    if a == "-h" then name = "help" end
    if name then
      for _, s in ipairs(SECRET_FLAGS) do
        if name == s or (name == "key" and value and value:match("^%x+$") and #value >= 16) then
          return nil, "--" .. name .. ": the API key is never read from the command line "
            .. "(ps and the shell history would show it); set DI_KEY and DI_KEY_ID "
            .. "in the environment, or `key` and `key_id` in a --config file (mode 600)"
        end
      end
      local kind = spec[name]
      if not kind then return nil, "unknown option --" .. name end
      if kind == "flag" then
        if value then return nil, "--" .. name .. " takes no value" end
        opts[name] = true
      else
        if not value then
          i = i + 1
          value = args[i]
          if value == nil then return nil, "--" .. name .. " needs a value" end
        end
        if kind == "list" then
          opts[name] = opts[name] or {}
          table.insert(opts[name], value)
        else
          opts[name] = value
        end
      end
    elseif a:match("^%-.") and not a:match("^%-%d") then
      return nil, "unknown option " .. a
    else
      pos[#pos + 1] = a
      if stop_at_positional then
        for j = i + 1, #args do pos[#pos + 1] = args[j] end
        break
      end
    end
    i = i + 1
  end
  return opts, pos
end

-- Configuration -----------------------------------------------------------------

-- Settings a config file may hold, and how to read their values.
local FILE_KEYS = {
  key_id = "string", key = "string", project = "string", region = "string",
  base_url = "string", ca_file = "string", limiter_dir = "string", user_agent = "string",
  rate = "number", burst = "number", timeout = "number", connect_timeout = "number",
  concurrency = "number", retries = "number", tls_verify = "boolean", http2 = "boolean",
}

local EXTRA_ENV = { rate = "DI_RATE", burst = "DI_BURST" }

local function file_value(kind, v, where)
  v = v:gsub('^"(.*)"$', "%1"):gsub("^'(.*)'$", "%1")
  if kind == "number" then
    local n = tonumber(v)
    if not n then error(where .. ": expects a number", 0) end
    return n
  elseif kind == "boolean" then
    if v == "true" then return true elseif v == "false" then return false end
    error(where .. ": expects true or false", 0)
  end
  return v
end

--- Reads a config file: `key = value` lines, # comments.  Warns when group
-- or others may read it (it holds the key).  Raises on a bad line.
function M.read_config(path, settings)
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
      if not k then f:close(); error(where .. ": expected `name = value`", 0) end
      if not FILE_KEYS[k] then f:close(); error(where .. ": unknown setting '" .. k .. "'", 0) end
      settings[k] = file_value(FILE_KEYS[k], v, where .. ": " .. k)
    end
  end
  f:close()
  return settings
end

--- The client settings: DI_* environment, then the config file over it.
function M.settings(g)
  local s = config.from_env()
  for k, var in pairs(EXTRA_ENV) do
    local v = tonumber(os.getenv(var) or "")
    if v then s[k] = v end
  end
  local path = g.config or os.getenv("DI_CONFIG")
  if path and path ~= "" then M.read_config(path, s) end
  if g.trace then s.trace = true end
  return s
end

--- A client from the configuration, or nil, message (never showing the key).
function M.client(g)
  local ok, c = pcall(function() return di.new(M.settings(g)) end)
  if ok then return c end
  local msg = tostring(c):gsub("^dialoginsight: ", "")
  if msg:match("'key'") or msg:match("'key_id'") then
    msg = msg .. " (set DI_KEY and DI_KEY_ID, or key and key_id in a --config file)"
  end
  return nil, "configuration: " .. msg
end

-- Commands ----------------------------------------------------------------------

local C = {}

function C.run(g, args, from)
  local opts, pos = M.parse(args, from, { help = "flag" }, true)
  if not opts then return usage_error(pos, "run") end
  if opts.help then io.stdout:write(HELP.run); return 0 end
  local script = pos[1]
  if not script then return usage_error("run: which script?", "run") end
  local chunk, why = loadfile(script)
  if not chunk then return fail(why) end
  local client, err = M.client(g)
  if not client then return fail(err) end
  local a = { [0] = script }
  for i = 2, #pos do a[i - 1] = pos[i] end
  _G.arg, _G.client, _G.di = a, client, di
  local r = chunk(table.unpack(a, 1, #a))
  io.stdout:flush()
  if math.type(r) == "integer" then return r end
  if r == false then return 1 end
  return 0
end

function C.check(g, args, from)
  local opts, pos = M.parse(args, from, { help = "flag" })
  if not opts then return usage_error(pos, "check") end
  if opts.help then io.stdout:write(HELP.check); return 0 end
  if #pos > 0 then return usage_error("check takes no argument", "check") end
  local client, err = M.client(g)
  if not client then return fail(err) end
  local list
  list, err = client.projects:list()
  if not list then
    if err.kind == "auth" then
      io.stdout:write("credentials: refused (key id ", tostring(client.key_id), " at ",
        client.base_url, "): ", tostring(err.message), "\n")
    else
      io.stdout:write("credentials: could not be checked: ", tostring(err), "\n")
    end
    return 1
  end
  io.stdout:write("credentials: valid (key id ", tostring(client.key_id), " at ",
    client.base_url, ")\n")
  io.stdout:write(#list, #list == 1 and " project" or " projects", " visible to this key:\n")
  local seen = false
  for _, p in ipairs(list) do
    local mine = p.idProject == client.project
    seen = seen or mine
    io.stdout:write(string.format("  %s %-8s %s\n", mine and "*" or " ",
      tostring(p.idProject), tostring(p.ProjectName)))
  end
  if client.project and not seen then
    io.stdout:write("warning: the configured project ", tostring(client.project),
      " is not among them\n")
    return 1
  end
  return 0
end

local function table_print(rows, head)
  local w = {}
  for i, h in ipairs(head) do w[i] = #h end
  for _, r in ipairs(rows) do
    for i = 1, #head do w[i] = math.max(w[i], utf8.len(r[i] or "") or #(r[i] or "")) end
  end
  local function line(r)
    local parts = {}
    for i = 1, #head do
      local s = r[i] or ""
      parts[i] = s .. string.rep(" ", w[i] - (utf8.len(s) or #s))
    end
    io.stdout:write((table.concat(parts, "  "):gsub("%s+$", "")), "\n")
  end
  line(head)
  local rule = {}
  for i = 1, #head do rule[i] = string.rep("-", w[i]) end
  line(rule)
  for _, r in ipairs(rows) do line(r) end
end
M.table_print = table_print

function C.fields(g, args, from)
  local opts, pos = M.parse(args, from, { help = "flag" })
  if not opts then return usage_error(pos, "fields") end
  if opts.help then io.stdout:write(HELP.fields); return 0 end
  if #pos > 0 then return usage_error("fields takes no argument", "fields") end
  local client, err = M.client(g)
  if not client then return fail(err) end
  local s
  s, err = client.projects:fields()
  if not s then return fail(err) end
  local rows = {}
  for _, f in ipairs(s.fields) do
    rows[#rows + 1] = { f.name, f.wire, tostring(f.type), f.required and "yes" or "",
      f.name == s.key and "key" or "", f.label or "" }
  end
  io.stdout:write("fields of project ", tostring(client.project), ":\n")
  table_print(rows, { "name", "wire", "type", "required", "key", "label" })
  rows = {}
  for _, o in ipairs(s.optins) do rows[#rows + 1] = { o.name, o.wire, o.label or "" } end
  io.stdout:write("\nopt-ins:\n")
  table_print(rows, { "name", "wire", "label" })
  return 0
end

function C.call(g, args, from)
  local opts, pos = M.parse(args, from, { help = "flag" })
  if not opts then return usage_error(pos, "call") end
  if opts.help then io.stdout:write(HELP.call); return 0 end
  if #pos < 2 or #pos > 3 then return usage_error("call SERVICE METHOD [JSON|-]", "call") end
  local text = pos[3]
  if text == "-" then text = io.stdin:read("a") end
  local params = {}
  if text and text:match("%S") then
    local v, why = di.decode(text)
    if type(v) ~= "table" then return fail("the parameters are not a JSON object: " .. tostring(why)) end
    params = v
  end
  local client, err = M.client(g)
  if not client then return fail(err) end
  local ok, r, e = pcall(client.call, client, pos[1], pos[2], params)
  if not ok then return fail((tostring(r):gsub("^dialoginsight: ", ""))) end
  if not r then return fail(e) end
  r.Trace = nil
  io.stdout:write(require("dialoginsight.cli.json").pretty(r), "\n")
  return 0
end

function C.stats(g, args, from)
  local opts, pos = M.parse(args, from, { help = "flag" })
  if not opts then return usage_error(pos, "stats") end
  if opts.help then io.stdout:write(HELP.stats); return 0 end
  local id = math.tointeger(tonumber(pos[1] or ""))
  if #pos ~= 1 or not id or id < 1 then return usage_error("stats CAMPAIGN_ID", "stats") end
  local client, err = M.client(g)
  if not client then return fail(err) end
  local s
  s, err = client.campaigns:stats(id)
  if not s then return fail(err) end
  io.stdout:write("campaign ", id, "\n")
  for _, k in ipairs { "Sent", "Delivered", "Bounced", "Opened", "UniqueOpened",
                       "Clicked", "UniqueClicked", "Unsubscribed" } do
    io.stdout:write(string.format("  %-14s %d\n", k, math.tointeger(s[k] or 0) or 0))
  end
  io.stdout:write(string.format("  %-14s %.1f %%\n", "open rate", s.open_rate * 100))
  io.stdout:write(string.format("  %-14s %.1f %%\n", "click rate", s.click_rate * 100))
  return 0
end

function C.sync(g, args, from)
  local opts, pos = M.parse(args, from, { help = "flag", key = "value", map = "list",
    ["batch-size"] = "value", concurrency = "value", ["dry-run"] = "flag", resume = "flag",
    restart = "flag", rejects = "value", ["progress-interval"] = "value", skip = "list" })
  if not opts then return usage_error(pos, "sync") end
  if opts.help then io.stdout:write(HELP.sync); return 0 end
  if pos[1] ~= "contacts" or #pos ~= 2 then
    return usage_error("sync contacts FILE.csv [options]", "sync")
  end
  local function count(name, default)
    local v = opts[name]
    if v == nil then return default end
    local n = math.tointeger(tonumber(v))
    if not n or n < 1 then return nil end
    return n
  end
  local bs, conc = count("batch-size", 100), count("concurrency", 8)
  if not bs or bs > 10000 then return usage_error("--batch-size must be 1..10000", "sync") end
  if not conc or conc > 64 then return usage_error("--concurrency must be 1..64", "sync") end
  if opts.resume and opts.restart then
    return usage_error("--resume and --restart exclude each other", "sync")
  end
  local map = {}
  for _, m in ipairs(opts.map or {}) do
    local col, field = m:match("^(.-)=(.*)$")
    if not col or col == "" then return usage_error("--map expects COL=FIELD, got " .. m, "sync") end
    map[col] = field
  end
  for _, col in ipairs(opts.skip or {}) do map[col] = "" end
  local client, err = M.client(g)
  if not client then return fail(err) end
  return require("dialoginsight.cli.sync").run(client, {
    file = pos[2], key = opts.key, map = map, batch_size = bs, concurrency = conc,
    dry_run = opts["dry-run"], resume = opts.resume, restart = opts.restart,
    rejects = opts.rejects, interval = tonumber(opts["progress-interval"] or "") or 5,
  })
end

function C.export(g, args, from)
  local opts, pos = M.parse(args, from, { help = "flag", where = "list", ["page-size"] = "value" })
  if not opts then return usage_error(pos, "export") end
  if opts.help then io.stdout:write(HELP.export); return 0 end
  if pos[1] ~= "contacts" or #pos ~= 1 then
    return usage_error("export contacts [--where FIELD=VALUE]...", "export")
  end
  local client, err = M.client(g)
  if not client then return fail(err) end
  return require("dialoginsight.cli.export").run(client, {
    where = opts.where or {}, page_size = math.tointeger(tonumber(opts["page-size"] or "")) or 500,
  })
end

local ALIASES = { ["-h"] = "help", ["--help"] = "help" }

--- The entry point: arg as lua.c builds it.  Returns the exit status.
function M.main(args)
  -- global options come before the command
  local g, i = {}, 1
  while args[i] do
    local a = args[i]
    if a == "--trace" then g.trace = true
    elseif a == "--config" then i = i + 1; g.config = args[i]
      if not g.config then return usage_error("--config needs a file") end
    elseif a:match("^%-%-config=") then g.config = a:sub(10)
    else break end
    i = i + 1
  end
  local cmd = args[i]
  if cmd == nil or ALIASES[cmd] or cmd == "help" then
    local topic = cmd == "help" and args[i + 1]
    io.stdout:write(HELP[topic] or HELP.main)
    return cmd == nil and M.EXIT.usage or 0
  end
  -- global options may also follow the command (but not a run script's args)
  if cmd ~= "run" and not cmd:match("%.lua$") then
    local rest = {}
    for j = 1, i - 1 do rest[j] = args[j] end
    local j = i
    while args[j] do
      local a = args[j]
      if a == "--trace" then g.trace = true
      elseif a == "--config" then g.config = args[j + 1]; j = j + 1
      elseif a:match("^%-%-config=") then g.config = a:sub(10)
      else rest[#rest + 1] = a end
      j = j + 1
    end
    args = rest
  end
  if cmd:match("%.lua$") then return C.run(g, args, i) end
  local f = C[cmd]
  if not f then return usage_error("unknown command '" .. cmd .. "'") end
  return f(g, args, i + 1)
end

return M
