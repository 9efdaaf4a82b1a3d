--- The commands of `dialoginsight` other than sync and export: run,
-- check, fields, call, stats (see cli/main.lua for the command table, whose
-- parser argparse builds), and what every command shares: the guards that
-- keep the key off the command line, failing, exit statuses.
local di = require "dialoginsight"
local config = require "dialoginsight.config"
local options = require "dialoginsight.options"
local errors = require "dialoginsight.errors"

local M = {}

M.EXIT = { ok = 0, error = 1, rejected = 2, usage = 64, interrupted = 130 }

-- Flags that would put the secret on the command line (visible in ps and
-- shell history): refused, with the way to do it instead.
local SECRET_FLAGS = { ["key-secret"] = true, secret = true, ["api-key"] = true, apikey = true,
                       ["auth-key"] = true, authkey = true, ["key-id"] = true, password = true,
                       token = true, ["di-key"] = true }

local NOT_ON_ARGV = "the API key is never read from the command line "
  .. "(ps and the shell history would show it); set DI_KEY and DI_KEY_ID "
  .. "in the environment, or `key` and `key_id` in a --config file (mode 600)"

--- True for a path that names the standard input: "-", or its names in /dev and /proc.
function M.is_stdin(path)
  return path == "-" or path == "/dev/stdin" or path == "/dev/fd/0" or path == "/proc/self/fd/0"
end

--- The message refusing args when one of them holds one of keys (the
-- configured API keys, cli/settings.lua: keys), or nil.  The argument is
-- not shown, only its position.
function M.holds_key(args, keys)
  for i, a in ipairs(args) do
    for _, k in ipairs(keys) do
      if errors.holds(a, k) then return "argument " .. i .. " holds the API key: " .. NOT_ON_ARGV end
    end
  end
  return nil
end

--- The message refusing an option of args that would carry the key
-- (--api-key, --password=...), with the way to give it instead; or nil.
-- args are the ones the command parses, never a script's own.
function M.secret_flag(args)
  for _, a in ipairs(args) do
    if a == "--" then break end
    local name = a:match("^%-%-([%w%-]+)")
    if name and SECRET_FLAGS[name] then return "--" .. name .. ": " .. NOT_ON_ARGV end
    -- --key named sync's key field until issue 22: it reads as the API key
    if name == "key" then
      return "--key is not an option: the key field is --key-field FIELD; and " .. NOT_ON_ARGV
    end
  end
  return nil
end

--- The value of --key-field (sync), as argparse converts it: a field name,
-- or nil and why.  A value that looks like the secret itself is refused
-- without being shown, whether given as --key-field=VALUE or as
-- --key-field VALUE.
function M.key_field(value)
  if options.secret_like(value) then return nil, "--key-field: " .. NOT_ON_ARGV end
  if not value:match("^[%a_][%w_]*$") or #value > 64 then
    return nil, "--key-field expects a field name (letters, digits and _), such as EMail"
  end
  return value
end

--- "1 row", "2 rows": n and noun, plural (default noun .. "s") unless n is 1.
function M.count(n, noun, plural)
  return n .. " " .. (n == 1 and noun or plural or noun .. "s")
end

-- The library's advice names what a program sets (di.new{...}); the
-- command's user sets variables and --config lines, and options.
local CLI_TERMS = {
  { "set ca_file in di.new{} or DI_CA_FILE", "set DI_CA_FILE, or ca_file in a --config file" },
  { "set 'project' in di.new{} or DI_PROJECT, or pass idProject",
    "set DI_PROJECT, or project in a --config file" },
  { "the key_field setting of di.new (or opts.key)",
    "--key-field FIELD (sync), DI_KEY_FIELD, or key_field in a --config file" },
}

local function esc(c) return string.format("\\%03d", c:byte()) end

-- s with the bytes of class C0 (a Lua pattern class), and the C1 controls U+0080-U+009F
-- in UTF-8 (CSI among them), as \ddd.
local function no_controls(s, C0)
  s = s:gsub(C0, esc)
  return (s:gsub("\194[\128-\159]", function(c) return esc(c:sub(1, 1)) .. esc(c:sub(2)) end))
end

--- text (a message of the library) in the terms of the command's user.
function M.cli_terms(text)
  text = tostring(text)
  for _, t in ipairs(CLI_TERMS) do
    local i, j = text:find(t[1], 1, true)
    if i then text = text:sub(1, i - 1) .. t[2] .. text:sub(j + 1) end
  end
  -- "setting 'ca_file' ..." -> "... (ca_file: DI_CA_FILE, or a --config file line)"
  local name = text:match("setting '([%w_]+)'")
  local def = name and config.setting(name)
  if def and def.env and not text:find(def.env, 1, true) then
    text = text .. " (" .. name .. ": " .. def.env .. (def.file and ", or a --config file line" or "") .. ")"
  end
  -- a column name or a server's text may hold terminal controls (ESC, BEL): shown as \ddd
  return no_controls(text, "[%z\1-\8\11-\31\127]")
end

--- s quoted for a message, every control byte escaped, newline and tab too: a name
-- read from a file can neither drive the terminal nor forge a line of its own.
function M.quote(s)
  return "'" .. no_controls(tostring(s), "[%z\1-\31\127]") .. "'"
end

--- Writes msg as the command's error, with one "dialoginsight" prefix (an
-- error object's text has its own); returns the error exit status.
function M.fail(msg)
  msg = M.cli_terms(msg)
  if not msg:match("^dialoginsight[ :]") then msg = "dialoginsight: " .. msg end
  io.stderr:write(msg, "\n")
  return M.EXIT.error
end

local HELP_RUN = [[
Runs SCRIPT.lua with these globals:
  client   a client built from the configuration (DI_* or --config)
  di       require "dialoginsight"
  arg      arg[0] = SCRIPT.lua, arg[1..] = ARGS (also passed as ...)
The script's error shows with a traceback and exits 1; `return N` or
os.exit(N) sets the exit status.
]]

local HELP_CHECK = [[
Calls projects.List: says whether the key is accepted and lists the
projects it can see (the configured one is marked with *).  Exit 1 when the
credentials are refused.
]]

local HELP_FIELDS = [[
The project's fields (name, type, required, key, label) and opt-ins, from
projects.Get: the names you can use in scripts and as sync column headers.
]]

local HELP_CALL = [[
Calls SERVICE.METHOD with the JSON object given (or read from stdin with
-) as parameters; AuthKey and idProject are added.  Prints the reply as
JSON with sorted keys (the server's Trace member is left out).
  dialoginsight call projects List
  dialoginsight call contacts Get '{"Clause":{"$type":"FieldClause",
    "Field":{"Name":"f_EMail"},"TypeOperator":"Equal","ComparisonValue":"ann@example.com"}}'
]]

local HELP_STATS = [[
The campaign's name (when the statistics carry it), its counts (Sent,
Delivered, Opened, Clicked, ...) and its open and click rates.
]]

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

local function no_args(cmd)
  return function(_, pos)
    if #pos > 0 then return cmd .. " takes no argument" end
  end
end

local run = { name = "run", help = HELP_RUN, options = {}, stop_at_script = true,
              usage = "run SCRIPT.lua [ARGS...]\n       dialoginsight SCRIPT.lua [ARGS...]",
              needs_client = true }

function run.check(_, pos)
  if not pos[1] then return "run: which script? (SCRIPT.lua, or - for stdin)" end
end

function run.reads_stdin(pos) return { pos[1] } end

function run.run(client, _, pos)
  local script = pos[1]
  -- loadfile(nil) reads stdin, its chunk named "=stdin"
  local chunk, why = loadfile(script ~= "-" and script or nil)
  -- (a config file given as the script would quote its key in the syntax error)
  if not chunk then return M.fail(client.engine.redact(why)) end
  local a = { [0] = script }
  for i = 2, #pos do a[i - 1] = pos[i] end
  _G.arg, _G.client, _G.di = a, client, di
  local r = chunk(table.unpack(a, 1, #a))
  io.stdout:flush()
  if math.type(r) == "integer" then return r end
  if r == false then return 1 end
  return 0
end

-- A command of the client that takes no argument.
local function plain(name, help)
  return { name = name, usage = name, help = help, options = {}, check = no_args(name), needs_client = true }
end

local check = plain("check", HELP_CHECK)

function check.run(client)
  local list, err = client.projects:list()
  if not list then
    if err.kind == "auth" then
      io.stdout:write("credentials: refused (key id ", tostring(client.key_id), " at ",
        client.base_url, "): ", tostring(err.message), "\n")
    else
      io.stdout:write("credentials: could not be checked: ", M.cli_terms(err), "\n")
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

local fields = plain("fields", HELP_FIELDS)

function fields.run(client)
  local s, err = client.projects:fields()
  if not s then return M.fail(err) end
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

local call = { name = "call", usage = "call SERVICE METHOD [JSON|-]", help = HELP_CALL,
               options = {}, needs_client = true }

-- The parameters of call in text (none when blank): a table, or nil, why.
local function params_of(text)
  if not (text and text:match("%S")) then return {} end
  local v, why = di.decode(text)
  if type(v) ~= "table" then
    return nil, "the parameters are not a JSON object: " .. tostring(why or ("a " .. type(v)))
  end
  return v
end

function call.check(opts, pos)
  if #pos < 2 then
    return "call: expected SERVICE METHOD [JSON|-], got " .. M.count(#pos, "argument")
  end
  if #pos > 3 then
    return "call: expected SERVICE METHOD [JSON|-], got " .. #pos .. " arguments (quote the JSON)"
  end
  -- the parameters on the command line are read here, before any call (a usage
  -- error); from stdin, by run (a runtime one)
  if pos[3] ~= "-" then
    local why
    opts.params, why = params_of(pos[3])
    if not opts.params then return "call: " .. why end
  end
end

function call.reads_stdin(pos) return { pos[3] } end

function call.run(client, opts, pos)
  local params, why = opts.params, nil
  if not params then params, why = params_of(io.stdin:read("a")) end
  if not params then return M.fail(why) end
  local ok, r, e = pcall(client.call, client, pos[1], pos[2], params)
  if not ok and r == "interrupted!" then error(r, 0) end -- Ctrl-C: the host's exit 130
  if not ok then return M.fail((tostring(r):gsub("^dialoginsight: ", ""))) end
  if not r then return M.fail(e) end
  r.Trace = nil
  io.stdout:write(require("dialoginsight.cli.json").pretty(r), "\n")
  return 0
end

local stats = { name = "stats", usage = "stats CAMPAIGN_ID", help = HELP_STATS, options = {},
                needs_client = true }

function stats.check(_, pos)
  if #pos ~= 1 then return "stats: expected one CAMPAIGN_ID, got " .. M.count(#pos, "argument") end
  local id = math.tointeger(tonumber(pos[1]))
  if not id or id < 1 or not pos[1]:match("^%s*%d+%s*$") then
    return "stats: '" .. (options.secret_like(pos[1]) and "(not shown)" or pos[1])
      .. "' is not a campaign id (idCampaign: a whole number from 1)"
  end
end

function stats.run(client, _, pos)
  local id = math.tointeger(tonumber(pos[1]))
  local s, err = client.campaigns:stats(id)
  if not s then return M.fail(err) end
  -- the name when the reply has one [assumed] (docs/wire.md, campaigns)
  io.stdout:write("campaign ", id, s.name and (": " .. s.name) or "", "\n")
  for _, k in ipairs { "Sent", "Delivered", "Bounced", "Opened", "UniqueOpened",
                       "Clicked", "UniqueClicked", "Unsubscribed" } do
    io.stdout:write(string.format("  %-14s %d\n", k, math.tointeger(s[k] or 0) or 0))
  end
  io.stdout:write(string.format("  %-14s %.1f %%\n", "open rate", s.open_rate * 100))
  io.stdout:write(string.format("  %-14s %.1f %%\n", "click rate", s.click_rate * 100))
  return 0
end

--- The commands of this module, in the order of the main help.
M.LIST = { run, check, fields, call, stats }

return M
