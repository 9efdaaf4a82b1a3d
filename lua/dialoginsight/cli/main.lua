--- The `dialoginsight` command (bin/dialoginsight, src/host/di_host.c): the
-- global options, parsed once, and the table of commands.
--
-- A command is a table (cli/commands.lua, cli/export.lua, cli/sync/):
--   { name, help, options = { name = "flag" | "value" | "list" },
--     stop_at_script (its first positional and all after it are its own),
--     check(opts, pos) -> nil or a usage message,
--     needs_client, run(client, opts, pos, g) -> exit status }
--
-- Exit statuses: 0 done; 1 error; 2 sync finished but some rows were
-- rejected; 64 bad usage; 130 interrupted (Ctrl-C).
local settings = require "dialoginsight.cli.settings"
local commands = require "dialoginsight.cli.commands"

local M = {}

M.EXIT = commands.EXIT

local HELP = [[
usage: dialoginsight [--config FILE] [--trace] COMMAND [ARGS]

commands:
  run SCRIPT.lua [ARGS]      run a script with a ready `client` (also: dialoginsight SCRIPT.lua)
  check                      are the credentials valid, and which projects can the key see?
  fields                     the project's fields and opt-ins
  call SERVICE METHOD [JSON|-]   any OFC4 call, the reply as pretty JSON
  sync contacts FILE.csv     merge a CSV file of contacts (resumable, with a rejects file)
  export contacts [--where F=V]...   contacts as CSV on stdout
  stats CAMPAIGN_ID          sends, opens, clicks and rates of a campaign
  probe [--writes] [--record DIR]   which methods exist on your account (docs/wire.md)

options (before or after the command):
  --config FILE   settings as `key = value` lines (key_id, key, project, base_url, ...)
  --trace         log every call (service, method, status, time, attempts) on stderr
  -h, --help      this help; `dialoginsight COMMAND --help` for a command

The API key is read from DI_KEY (and DI_KEY_ID, DI_PROJECT, DI_BASE_URL,
DI_CA_FILE, DI_REGION, DI_RATE, DI_BURST, DI_LIMITER_DIR) or from the config
file, never from the command line.

exit status: 0 ok, 1 error, 2 sync done but rows rejected, 64 usage, 130 Ctrl-C
]]

local COMMANDS = {}
for _, c in ipairs(commands.LIST) do COMMANDS[c.name] = c end
COMMANDS.export = require "dialoginsight.cli.export"
COMMANDS.sync = require "dialoginsight.cli.sync"
COMMANDS.probe = require "dialoginsight.cli.probe"

local function usage_error(msg, cmd)
  io.stderr:write("dialoginsight: ", msg, "\n")
  io.stderr:write("see: dialoginsight ", cmd and (cmd .. " ") or "", "--help\n")
  return M.EXIT.usage
end

-- The global options (--config FILE, --config=FILE, --trace), wherever
-- they stand before the command or after it, but never among a script's
-- own arguments (run SCRIPT ARGS, SCRIPT.lua ARGS) or after "--".
-- Returns g and the other arguments, or nil, message.
local function globals(args)
  local g, rest, i = {}, {}, 1
  local cmd, own = nil, false
  while i <= #args do
    local a = args[i]
    if own or a == "--" then
      own = true
      rest[#rest + 1] = a
    elseif a == "--trace" then
      g.trace = true
    elseif a == "--config" then
      i = i + 1
      g.config = args[i]
      if not g.config then return nil, "--config needs a file" end
    elseif a:match("^%-%-config=") then
      g.config = a:sub(10)
    else
      rest[#rest + 1] = a
      if not a:match("^%-") then
        -- the script of run, or a script given as the command
        own = (cmd == "run") or (cmd == nil and a:match("%.lua$") ~= nil)
        cmd = cmd or a
      end
    end
    i = i + 1
  end
  return g, rest
end

--- The entry point: arg as lua.c builds it.  Returns the exit status.
function M.main(args)
  local g, rest = globals(args)
  if not g then return usage_error(rest) end
  local held = commands.holds_key(args, settings.keys(g))
  if held then return usage_error(held) end
  local name = rest[1]
  if name == nil or name == "-h" or name == "--help" or name == "help" then
    local topic = name == "help" and COMMANDS[rest[2] or ""]
    io.stdout:write(topic and topic.help or HELP)
    return name == nil and M.EXIT.usage or 0
  end
  local from = 2
  if name:match("%.lua$") then name, from = "run", 1 end
  local cmd = COMMANDS[name]
  if not cmd then
    return usage_error(commands.looks_secret(name) and "unknown command (not shown: it looks "
      .. "like a key)" or ("unknown command '" .. name .. "'"))
  end
  local opts, pos = commands.parse(rest, from, cmd.options, cmd.stop_at_script)
  if not opts then return usage_error(pos, name) end
  if opts.help then io.stdout:write(cmd.help); return 0 end
  local problem = cmd.check and cmd.check(opts, pos)
  if problem then return usage_error(problem, name) end
  local client, err
  if cmd.needs_client then
    client, err = settings.client(g)
    if not client then return commands.fail(err) end
  end
  return cmd.run(client, opts, pos, g)
end

return M
