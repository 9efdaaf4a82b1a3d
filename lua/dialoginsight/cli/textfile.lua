--- `--metrics FILE`: the process's metrics (metrics/init.lua) as a node_exporter
-- textfile, written whole (cli/files.lua: never seen half-written) when the command
-- starts, every EVERY seconds while it makes calls, and when it ends.
local core = require "dialoginsight.core"
local files = require "dialoginsight.cli.files"
local log = require "dialoginsight.log"
local metrics = require "dialoginsight.metrics"

local M = {}

--- Seconds between two writes during a run (DI_METRICS_EVERY: from 0.05 to 3600).
M.EVERY = 5

local function every_of(v)
  local n = tonumber(v)
  if n and n >= 0.05 and n <= 3600 then return n end
  return nil
end

--- Why path cannot be the textfile, or nil: its directory must exist (a typo fails
-- the command at once, not after an hour's sync), and it must not be a directory.
function M.problem(path)
  if path == "" then return "--metrics needs a file name" end
  local e = os.getenv("DI_METRICS_EVERY")
  if e and e ~= "" and not every_of(e) then return "DI_METRICS_EVERY must be seconds from 0.05 to 3600" end
  local dir = path:match("^(.*)/[^/]*$") or "."
  if dir == "" then dir = "/" end
  local d = io.open(dir .. "/.")
  if not d then return "--metrics " .. path .. ": no such directory " .. dir end
  d:close()
  local f = io.open(path, "rb")
  if f then
    local _, _, code = f:read(1)
    f:close()
    if code == 21 then return "--metrics " .. path .. " is a directory" end
  end
  return nil
end

--- Starts writing the metrics to path; returns the writer, whose finish() writes the last.
function M.start(path, every)
  local reg = metrics.default()
  local dir, base = path:match("^(.*/)([^/]*)$")
  -- a name of this process's own beside path: a second command writing the same
  -- file never removes this one's half-written text (node_exporter reads *.prom only)
  local tmp = (dir or "") .. "." .. (base or path) .. "." .. core.pid() .. ".tmp"
  local w = { last = core.now() }
  local warned = false
  local function write()
    local ok, err = files.replace(path, metrics.render(reg:snapshot()), true, tmp)
    if not ok and not warned then
      warned = true
      log.warn("dialoginsight: WARNING: --metrics " .. path .. ": cannot write (" .. tostring(err)
        .. "); the command goes on")
    end
  end
  every = every or every_of(os.getenv("DI_METRICS_EVERY")) or M.EVERY
  reg.tick = function()
    local t = core.now()
    if t - w.last >= every then w.last = t; write() end
  end
  function w.finish()
    reg.tick = false
    write()
  end
  write()
  return w
end

return M
