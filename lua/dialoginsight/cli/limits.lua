--- `dialoginsight limits`: the shared rate limit's state for the configured key
-- (client:limit_status), read without a call and without taking a slot.
local core = require "dialoginsight.core"
local commands = require "dialoginsight.cli.commands"

local M = { name = "limits", needs_client = true,
            usage = "limits [--json] [--watch [SECONDS]] [--count N]",
            options = {
              { "--json", nil, "one JSON object (with --watch: one per line)" },
              { "--watch", "SECONDS", "print again every SECONDS (default 1) until Ctrl-C",
                optional = true },
              { "--count", "N", "with --watch: stop after N prints" },
            } }

M.help = [[
The rate limit this configuration shares (rate, burst, its reserve for
interactive calls), and its state now: how many calls could go at once,
how long the next one would wait, and the pause a 429 imposed.  The state
is read, never changed: no API call is made and no slot is taken.
  dialoginsight limits
  dialoginsight limits --watch 0.5
]]

M.epilog = [[
available is what an interactive call finds free now, available_batch a
batch one's (sync and export run as batch; docs/limiter.md).  A penalty is
shown only when longer than a batch slot.]]

-- Positive seconds of --watch/--count, or nil, why.
local function number_of(v, what, whole)
  local n = tonumber(v)
  if not n or n ~= n or n <= 0 or n > 86400 or (whole and n ~= math.floor(n)) then
    return nil, "limits: " .. what
  end
  return n
end

function M.check(opts, pos)
  if #pos > 0 then return "limits takes no argument" end
  local why
  if opts.watch then
    opts.every, why = number_of(opts.watch[1] or "1", "--watch expects seconds from 0.001 to 86400", false)
    if not opts.every then return why end
    if opts.every < 0.001 then return "limits: --watch expects seconds from 0.001 to 86400" end
  end
  if opts.count then
    if not opts.watch then return "limits: --count goes with --watch" end
    opts.count, why = number_of(opts.count, "--count expects a whole number of prints from 1", true)
    if not opts.count then return why end
  end
end

local function seconds(v) return string.format("%.3f s", v) end

local function when(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

-- The state as lines, one item per line.
local function lines(st)
  local out = { { "backend", st.backend } }
  if st.path then out[#out + 1] = { "file", st.path } end
  if st.key then out[#out + 1] = { "redis key", st.key } end
  if st.why then out[#out + 1] = { "fallback why", st.why } end
  if st.backend == "none" then
    out[#out + 1] = { "rate", "off (rate = false): calls are not limited" }
    return out
  end
  local rows = {
    { "rate", string.format("%g calls/s", st.rate) },
    { "burst", string.format("%g", st.burst) },
    { "priority", st.priority },
    { "batch_share", string.format("%g", st.batch_share) },
    { "reserve", st.reserve_void or (commands.count(st.reserve, "interactive call") .. " kept from batch calls") },
    { "available", commands.count(st.available, "call") .. " now (interactive)" },
    { "available_batch", commands.count(st.available_batch, "call") .. " now (batch)" },
    { "wait", seconds(st.wait) .. " (interactive), " .. seconds(st.wait_batch) .. " (batch)" },
    { "penalty", st.penalty > 0 and seconds(st.penalty) .. " left, until " .. when(st.penalty_until)
      or "none" },
    { "fallback_transitions", tostring(st.fallback_transitions) },
  }
  for _, r in ipairs(rows) do out[#out + 1] = r end
  return out
end

-- The state as one JSON object: every field, penalty_until null when none.
local function json(st)
  local t = {}
  for k, v in pairs(st) do t[k] = v end
  if t.backend ~= "none" and t.penalty_until == nil then t.penalty_until = core.null end
  return core.encode(t)
end

-- One line of --watch.
local function tick(st)
  if st.backend == "none" then return os.date("%H:%M:%S") .. "  backend none: not limited" end
  return string.format("%s  %s  available %d  batch %d  wait %.3f s  penalty %s",
    os.date("%H:%M:%S"), st.backend, st.available, st.available_batch, st.wait,
    st.penalty > 0 and seconds(st.penalty) or "none")
end

function M.run(client, opts)
  local n = 0
  while true do
    local st, why = client:limit_status()
    if not st then return commands.fail(why) end
    if opts.json then
      io.stdout:write(json(st), "\n")
    elseif opts.watch then
      io.stdout:write(tick(st), "\n")
    else
      for _, l in ipairs(lines(st)) do io.stdout:write(string.format("%-21s %s\n", l[1], l[2])) end
    end
    io.stdout:flush()
    n = n + 1
    if not opts.watch or (opts.count and n >= opts.count) then return 0 end
    core.sleep(opts.every) -- (Ctrl-C: the host's exit 130, as every command)
  end
end

return M
