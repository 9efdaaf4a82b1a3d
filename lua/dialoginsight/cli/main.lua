--- The `dialoginsight` command (bin/dialoginsight, src/host/di_host.c): the global options
-- and the table of commands, parsed by argparse (Debian's lua-argparse, embedded in the
-- host), which builds each --help from the options so none is left out.  A command's
-- table (name, usage, help, options, check, run, ...) is described in docs/cli.md.
-- Exit statuses: 0 done; 1 error; 2 sync done with rejects; 64 usage; 130 Ctrl-C.
local argparse = require "argparse"
local settings = require "dialoginsight.cli.settings"
local commands = require "dialoginsight.cli.commands"
local options = require "dialoginsight.options"
local errors = require "dialoginsight.errors"
local config = require "dialoginsight.config"
local log = require "dialoginsight.log"
local textfile = require "dialoginsight.cli.textfile"

local M = {}

M.EXIT = commands.EXIT

local HELP = [[
usage: dialoginsight [--config FILE] [-q | -v] [--metrics FILE] [--log-format json] COMMAND [ARGS]
       dialoginsight --version

commands:
  run SCRIPT.lua [ARGS]      run a script with a ready `client` (also: dialoginsight SCRIPT.lua)
  check                      are the credentials valid, and which projects can the key see?
  fields                     the project's fields and opt-ins
  call SERVICE METHOD [JSON|-]   any OFC4 call, the reply as pretty JSON
  sync contacts FILE.csv     merge a CSV file of contacts (resumable, with a rejects file)
  export contacts [--where F=V]...   contacts as CSV on stdout
  stats CAMPAIGN_ID          sends, opens, clicks and rates of a campaign
  probe [--writes] [--record DIR]   which methods exist on your account (docs/wire.md)
  events run HANDLER.lua | list | replay | purge   the webhook events a receiver stored
  webhooks send TYPE --to URL   post a signed sample event to a receiver
  limits [--json] [--watch S]   the shared rate limit's state (no call is made)

options (before or after the command):
  --config FILE   settings as `key = value` lines (key_id, key, project, base_url, ...);
                  - reads them from stdin
  -q, --quiet     no progress lines or notes: only errors, warnings and the summary
  -v, --verbose   a line on stderr per call attempt (service, method, status, time),
                  per retry and per rate-limit wait (--trace is the same)
  --metrics FILE  the metrics as a node_exporter textfile (docs/metrics.md), replaced
                  whole at the start, every 5 s of calls, and at the end
  --log-format F  text (the default) or json: one JSON object per log line
                  (docs/logging.md; DI_LOG_FORMAT)
  --version       the versions of dialoginsight, its C core, libcurl and Lua
  -h, --help      this help; `dialoginsight COMMAND --help` for a command

{environment}

A file argument may be - for stdin: sync contacts -, call ... -, run -, --config -.

exit status: 0 ok, 1 error, 2 sync done but rows rejected, 64 usage, 130 Ctrl-C
]]
-- every DI_* variable of config.lua's schema (cli/settings.lua)
HELP = HELP:gsub("{environment}\n", function() return settings.environment_help() end)

local LIST = {}
for _, c in ipairs(commands.LIST) do LIST[#LIST + 1] = c end
LIST[#LIST + 1] = require "dialoginsight.cli.sync"
LIST[#LIST + 1] = require "dialoginsight.cli.export"
LIST[#LIST + 1] = require "dialoginsight.cli.probe"
LIST[#LIST + 1] = require "dialoginsight.cli.events"
LIST[#LIST + 1] = require "dialoginsight.cli.webhooks"
LIST[#LIST + 1] = require "dialoginsight.cli.limits"

local COMMANDS = {}
for _, c in ipairs(LIST) do COMMANDS[c.name] = c end

-- The global options that take a value, and the flags.
local GLOBAL_VALUES = { ["--config"] = true, ["--metrics"] = true, ["--log-format"] = true }
local GLOBAL_FLAGS = { "--trace", "-q --quiet", "-v --verbose", "--version", "-h --help" }

local function usage_error(msg, cmd)
  io.stderr:write("dialoginsight: ", commands.cli_terms(msg), "\n")
  io.stderr:write("see: dialoginsight ", cmd and (cmd .. " ") or "", "--help\n")
  return M.EXIT.usage
end

local function trim(text) return (text:gsub("%s+$", "")) end

-- Each command's help ends with the options every command takes.
local GLOBAL_LINE = "global options (before or after the command): --config FILE, -q/--quiet, "
  .. "-v/--verbose, --metrics FILE, --log-format json; see dialoginsight --help"

-- The command's subparser of p: its options, its positionals (all in "args",
-- checked by the command's check), its help from the same table.
local function add_command(p, c)
  local sub = p:command(c.name):add_help(false):usage("usage: dialoginsight " .. c.usage)
    :description(trim(c.help))
  sub:epilog((c.epilog and (trim(c.epilog) .. "\n") or "") .. GLOBAL_LINE)
  local group = { sub:flag("-h --help", "this help") }
  for _, o in ipairs(c.options) do
    local opt = o[2] and sub:option(o[1], o[3]):argname(o[2]) or sub:flag(o[1], o[3])
    opt:target(o[1]:sub(3))
    -- a value that may be left out (--watch [SECONDS]): a list of 0 or 1
    if o.optional then opt:args("?") end
    if o.many then opt:count("*") end
    -- the guard of --key-field's value (a field name, never the key)
    if o[1] == "--key-field" then opt:convert(commands.key_field) end
    group[#group + 1] = opt
  end
  sub:group("options", table.unpack(group))
  if not c.stop_at_script then sub:argument("args"):args("*"):hidden(true) end
  return sub
end

-- The parser of the whole command line but a script's own arguments, and
-- each command's subparser by name.  The program's own help is HELP.
local function parser()
  local p = argparse("dialoginsight"):add_help(false):require_command(false)
    :command_target("command"):help_max_width(79)
  p:option("--config"):argname("FILE")
  p:option("--metrics"):argname("FILE")
  p:option("--log-format"):argname("FORMAT")
  for _, f in ipairs(GLOBAL_FLAGS) do p:flag(f) end
  local subs = {}
  for _, c in ipairs(LIST) do subs[c.name] = add_command(p, c) end
  p:command("help"):add_help(false):argument("topic"):args("?")
  return p, subs
end

-- The value options of the command named name, with the global ones.
local function value_options(name)
  local set = {}
  for k in pairs(GLOBAL_VALUES) do set[k] = true end
  for _, o in ipairs(COMMANDS[name] and COMMANDS[name].options or {}) do
    -- (an optional value never takes the next argument: --watch --count 2)
    if o[2] and not o.optional then set[o[1]] = true end
  end
  return set
end

-- The one pass argparse cannot make for us: it has no notion of arguments
-- that are not its to parse, and it takes "-5" for an option.
--   * `run SCRIPT ARGS` and `SCRIPT.lua ARGS` hand SCRIPT and all after it
--     to the script, verbatim (--trace and --config included);
--   * an option that takes a value takes the next argument whatever it
--     starts with, as getopt's do (`--page-size -5` is a bad size, not an
--     unknown option -5): it is passed as `--page-size=-5`.
-- Returns the arguments for argparse ("run" put before a SCRIPT.lua), the
-- command's name (or nil), and the script's own arguments (or nil).
local function split(args)
  local head, values, name = {}, GLOBAL_VALUES, nil
  local i = 1
  while i <= #args do
    local a = args[i]
    local positional = a == "-" or a:sub(1, 1) ~= "-"
    if a == "--" then
      if name == "run" then return head, name, { table.unpack(args, i + 1) } end
      for j = i, #args do head[#head + 1] = args[j] end
      break
    elseif values[a] and args[i + 1] ~= nil then
      head[#head + 1] = a .. "=" .. args[i + 1]
      i = i + 1
    elseif positional and (name == "run" or (name == nil and a:match("%.lua$"))) then
      if name == nil then head[#head + 1] = "run" end
      return head, "run", { table.unpack(args, i) }
    else
      if positional and name == nil then name, values = a, value_options(a) end
      head[#head + 1] = a
    end
    i = i + 1
  end
  return head, name, nil
end

-- The --config FILE given in head (as split leaves it), for the key guard,
-- which must run before anything may echo an argument.
local function config_of(head)
  local path
  for _, a in ipairs(head) do
    if a == "--" then break end
    path = a:match("^%-%-config=(.*)$") or path
  end
  return path
end

local function version()
  local di = require "dialoginsight"
  local core = require "dialoginsight.core"
  io.stdout:write(di._VERSION, "\n", core._VERSION, ", ", core.curl_version, ", ", _VERSION,
    ", argparse ", argparse.version, "\n")
  return 0
end

-- The options of res (argparse's result) that are c's, and the globals.
local function pick(res, c)
  local opts = { help = res.help }
  for _, o in ipairs(c.options) do
    local k = o[1]:sub(3)
    opts[k] = res[k]
    if o.many and opts[k] and #opts[k] == 0 then opts[k] = nil end
  end
  return opts, { config = res.config, trace = res.trace or res.verbose, quiet = res.quiet,
                 verbose = res.verbose or res.trace, metrics = res.metrics,
                 log_format = res.log_format }
end

local function help_of(subs, name)
  return subs[name or ""] and subs[name]:get_help() .. "\n" or HELP
end

-- The options a user of command name (nil: none) may give.
local function option_names(name)
  local names = {}
  for k in pairs(GLOBAL_VALUES) do names[#names + 1] = k end
  for _, f in ipairs(GLOBAL_FLAGS) do
    for n in f:gmatch("%S+") do names[#names + 1] = n end
  end
  for _, o in ipairs(COMMANDS[name or ""] and COMMANDS[name].options or {}) do
    names[#names + 1] = o[1]
  end
  table.sort(names)
  return names
end

-- argparse's "unknown option" message, with our suggestion: for -X, the
-- options spelled with that letter (-V: --verbose, --version, -v), since a
-- one-letter distance says nothing; for a long one, the closest name.
local function unknown_option(msg, name)
  local bad = msg:match("^unknown option '(.-)'")
  if not bad then return msg end
  if options.secret_like(bad:gsub("^%-+", ""):match("^[^=]*")) then
    return "unknown option (not shown: it looks like a key)"
  end
  local names, guesses = option_names(name), {}
  local letter = bad:match("^%-(%a)$")
  if letter then
    letter = letter:lower()
    for _, n in ipairs(names) do
      if n ~= bad and (n:lower() == "-" .. letter or n:sub(1, 3):lower() == "--" .. letter) then
        guesses[#guesses + 1] = "'" .. n .. "'"
      end
    end
  elseif not bad:match("^%-%-[^-]") or not errors.closest(bad, names) then
    guesses = {}
  else
    guesses[1] = "'" .. errors.closest(bad, names) .. "'"
  end
  local s = "unknown option '" .. bad .. "'"
  if #guesses > 0 then s = s .. "; did you mean " .. table.concat(guesses, " or ") .. "?" end
  return s
end

-- The arguments that read stdin (-): what a run can read only once.
local function stdin_readers(res, cmd, pos)
  local n = res.config and commands.is_stdin(res.config) and 1 or 0
  for _, a in ipairs(cmd and cmd.reads_stdin and cmd.reads_stdin(pos) or {}) do
    if commands.is_stdin(a) then n = n + 1 end
  end
  return n
end

--- The entry point: arg as lua.c builds it.  Returns the exit status.
function M.main(args)
  local head, name, own = split(args)
  local held = commands.holds_key(args, settings.keys({ config = config_of(head) }))
  if held then return usage_error(held) end
  local secret = commands.secret_flag(head)
  if secret then return usage_error(secret, COMMANDS[name or ""] and name) end
  if name and name ~= "help" and not COMMANDS[name] and options.secret_like(name) then
    return usage_error("unknown command (not shown: it looks like a key)")
  end
  local p, subs = parser()
  local ok, res = p:pparse(head)
  local known = COMMANDS[name or ""] and name
  if not ok then return usage_error(unknown_option(res, known), known) end
  if res.version then return version() end
  local cmd = COMMANDS[res.command or ""]
  if res.command == "help" then
    if res.topic and not COMMANDS[res.topic] then
      return usage_error("help: no command '" .. res.topic .. "'")
    end
    io.stdout:write(help_of(subs, res.topic))
    return 0
  elseif not cmd then
    if res.help then io.stdout:write(HELP); return 0 end
    io.stderr:write(HELP)
    return M.EXIT.usage
  end
  if res.help then io.stdout:write(help_of(subs, cmd.name)); return 0 end
  local opts, g = pick(res, cmd)
  if g.quiet and g.verbose then return usage_error("-q and -v exclude each other", cmd.name) end
  local pos = own or res.args or {}
  local problem = cmd.check and cmd.check(opts, pos)
  if problem then return usage_error(problem, cmd.name) end
  if stdin_readers(res, cmd, pos) > 1 then
    return usage_error("stdin (-) can be read only once: give one of them as a file", cmd.name)
  end
  -- before any line: the commands without a client log too (the setting's variable, as
  -- di.new reads it: config.lua's schema)
  local format_env = config.setting("log_format").env
  local format = g.log_format or os.getenv(format_env)
  if format and format ~= "" then
    if not log.FORMATS[format] then
      return usage_error((g.log_format and "--log-format" or format_env) .. " must be text or json", cmd.name)
    end
    log.configure(format)
  end
  local why = g.metrics and textfile.problem(g.metrics)
  if why then return usage_error(why, cmd.name) end
  local function run()
    local client, err
    if cmd.needs_client then
      client, err = settings.client(g, cmd.priority)
      if not client then return commands.fail(err) end
    end
    return cmd.run(client, opts, pos, g)
  end
  if not g.metrics then return run() end
  local writer = textfile.start(g.metrics)
  local ran, status = pcall(run)
  -- the last text of the metrics, whatever the end (a raise too)
  writer.finish()
  if not ran then error(status, 0) end
  return status
end

return M
