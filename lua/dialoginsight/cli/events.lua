--- `dialoginsight events run|list|replay|purge`: the webhook events an nginx receiver stored
-- (dialoginsight.webhooks.receiver), handled and managed from a batch job.  The store is
-- --store, else webhook_store (DI_WEBHOOK_STORE or the config file).
local core = require "dialoginsight.core"
local host = require "dialoginsight.host"
local store = require "dialoginsight.webhooks.store"
local runner = require "dialoginsight.webhooks.runner"
local settings = require "dialoginsight.cli.settings"
local commands = require "dialoginsight.cli.commands"

local M = { name = "events",
  usage = "events run HANDLER.lua | list | replay ID...|--dead | purge [--older-than DAYS] [--dead]",
  options = {
    { "--store", "PATH", "the event store (default: webhook_store, DI_WEBHOOK_STORE)" },
    { "--state", "STATE", "list: pending, running, done, dead or purged (default: all but purged)" },
    { "--limit", "N", "list: at most N events (100)" },
    { "--json", nil, "list: one JSON object per line" },
    { "--dead", nil, "replay: every dead event; purge: the dead ones too" },
    { "--older-than", "DAYS", "purge: only events received more than DAYS days ago" },
    { "--follow", nil, "run: keep waiting for new events until Ctrl-C" },
    { "--wait", "SECONDS", "run: wait for a retry due within SECONDS (30) before ending" },
  } }

M.help = [[
Works on the events that a webhook receiver stored (docs/webhooks.md):
  run HANDLER.lua  hands each due event to the handler the file returns
                   (a function(event), or { handle = f, on_test = f }), at
                   least once; a failure is retried with back-off, then the
                   event is dead until replayed
  list             the events, oldest first, with their state and error
  replay ID...     hands dead (or done) events to the handler again;
                   --dead replays every dead one
  purge            deletes handled events' bodies (--older-than DAYS; --dead:
                   the dead ones too), keeping their ids 30 days so that a
                   late redelivery is still a duplicate; pending events are
                   never purged]]

M.epilog = [[
Exit status of run: 0 when every event it took was handled; 1 when one
failed (it stays pending, or dead after its retries) or the store failed.
A test event (isTest) goes to on_test, never to the handler.
]]

local ACTIONS = { run = true, list = true, replay = true, purge = true }
local STATES = { pending = true, running = true, done = true, dead = true, purged = true }

function M.check(opts, pos)
  local a = pos[1]
  if not a then return "events: which action? run, list, replay or purge" end
  if not ACTIONS[a] then return "events: no action " .. commands.quote(a) .. " (run, list, replay, purge)" end
  if a == "run" and #pos ~= 2 then return "events run: give the handler's file, HANDLER.lua" end
  if a == "replay" and (#pos > 1) == (opts.dead == true) then
    return "events replay: give event ids, or --dead (not both)"
  end
  if (a == "list" or a == "purge") and #pos > 1 then return "events " .. a .. " takes no argument" end
  if opts.state and not STATES[opts.state] then
    return "events list: --state is pending, running, done, dead or purged"
  end
  local limit = opts.limit and tonumber(opts.limit)
  if opts.limit and not (limit and limit >= 1 and limit <= 1e9 and limit % 1 == 0) then
    return "events list: --limit expects a whole number of events (1 or more)"
  end
  for _, k in ipairs { "older-than", "wait" } do
    local v = opts[k] and tonumber(opts[k])
    if opts[k] and not (v and v >= 0 and v <= 36500) then
      return "events: --" .. k .. " expects a number from 0 to 36500"
    end
  end
end

local function open(opts, g)
  local path = opts.store
  if not path then
    local ok, s = pcall(settings.read, g, "webhooks")
    if not ok then return nil, tostring(s) end
    path = s.webhook_store
  end
  if not path then return nil, "events: which store? --store PATH, or webhook_store (DI_WEBHOOK_STORE)" end
  -- never created here: a mistyped path must not read as an empty store (the receiver makes it)
  local s, err = store.open(path, { create = false })
  if not s then return nil, "events: " .. tostring(err.message) end
  return s
end

local function utc(t) return t and os.date("!%Y-%m-%d %H:%M:%S", math.floor(t)) or "" end

local function list(s, opts)
  local rows, err = s:list(opts.state, tonumber(opts.limit) or 100)
  if not rows then return commands.fail(err.message) end
  if opts.json then
    for _, r in ipairs(rows) do
      io.stdout:write(core.encode { seq = r.seq, id = r.id, type = r.type, test = r.test == 1, state = r.state,
        attempts = r.attempts, received = utc(r.received), handled = r.handled and utc(r.handled) or nil,
        error = r.error }, "\n")
    end
  else
    local out = {}
    for _, r in ipairs(rows) do
      out[#out + 1] = { tostring(r.seq), commands.cli_terms(r.id), commands.cli_terms(r.type)
        .. (r.test == 1 and " (test)" or ""), r.state, tostring(r.attempts), utc(r.received),
        commands.cli_terms((r.error or ""):gsub("\n.*", ""):sub(1, 60)) }
    end
    commands.table_print(out, { "seq", "id", "type", "state", "attempts", "received (UTC)", "error" })
  end
  local c = s:counts()
  if c then
    io.stderr:write(string.format("events: %d pending, %d running, %d done, %d dead\n",
      c.pending, c.running, c.done, c.dead))
  end
  return 0
end

-- The handler the file returns: { handler =, on_test = }, or nil, why.
local function handlers_of(path)
  local chunk, why = loadfile(path)
  if not chunk then return nil, why end
  local ok, h = pcall(chunk)
  if not ok then return nil, tostring(h) end
  if type(h) == "function" then return { handler = h } end
  if type(h) == "table" and type(h.handle) == "function"
      and (h.on_test == nil or type(h.on_test) == "function") then
    return { handler = h.handle, on_test = h.on_test }
  end
  return nil, path .. " must return a function(event), or { handle = function(event), on_test = ... }"
end

local function run(s, opts, pos, g)
  local h, why = handlers_of(pos[2])
  if not h then return commands.fail("events run: " .. commands.cli_terms(why)) end
  local wait = tonumber(opts.wait) or 30
  local total = { handled = 0, failed = 0, dead = 0, test = 0, lost = 0 }
  host.graceful("once")
  local status = 0
  while not host.interrupted() do
    host.inflight(1)
    local counts, err = runner.run_due(s, h, core.wall)
    host.inflight(0)
    if not counts then status = commands.fail(err.message); break end
    for k in pairs(total) do total[k] = total[k] + counts[k] end
    if counts.claimed == 0 then
      local due = s:next_due()
      local left = due and due - core.wall()
      if opts.follow then core.sleep(math.max(0.2, math.min(left or 1, 1)))
      elseif left and left <= wait then core.sleep(math.max(0.01, left))
      else break end
    elseif not g.quiet and counts.failed + counts.dead > 0 then
      io.stderr:write(string.format("events: %d failed (retried later), %d dead so far\n",
        total.failed, total.dead))
    end
  end
  host.graceful(false)
  local c = s:counts() or { pending = 0, dead = 0 }
  if not g.quiet then
    io.stderr:write(string.format("events: %d handled, %d test events skipped, %d failed, %d dead "
      .. "this run; the store holds %d pending, %d dead\n", total.handled, total.test,
      total.failed, total.dead, c.pending, c.dead))
  end
  if host.interrupted() then return commands.EXIT.interrupted end
  if status ~= 0 or total.dead > 0 or total.failed > 0 then return 1 end
  return 0
end

function M.run(_, opts, pos, g)
  local s, why = open(opts, g)
  if not s then return commands.fail(why) end
  local a = pos[1]
  if a == "list" then return list(s, opts) end
  if a == "run" then return run(s, opts, pos, g) end
  if a == "replay" then
    local n = 0
    for i = 2, math.max(2, #pos) do
      local k, err = s:replay(opts.dead and nil or pos[i], core.wall())
      if not k then return commands.fail(err.message) end
      n = n + k
    end
    io.stderr:write("events: ", commands.count(n, "event"), " sent back to the handler (events run)\n")
    return (opts.dead or n == #pos - 1) and 0 or 1
  end
  local days = tonumber(opts["older-than"])
  local n, err = s:purge(days and core.wall() - days * 86400, opts.dead)
  if not n then return commands.fail(err.message) end
  io.stderr:write("events: ", commands.count(n, "event"), " purged (their ids are kept 30 days: "
    .. "a late redelivery is still a duplicate)\n")
  return 0
end

return M
