--- Progress of a long job on stderr: a live bar redrawn in place on a
-- terminal, otherwise a plain line every few seconds (cron mail and CI logs
-- then get a readable history instead of control characters).
local core = require "dialoginsight.core"

local M = {}

local P = {}
P.__index = P

--- opts: tty (boolean), width, interval (seconds between plain lines),
-- total (bytes of the input, for the fraction and the ETA).
function M.new(opts)
  return setmetatable({ tty = opts.tty, width = opts.width or 80,
    interval = opts.interval or 5, total = opts.total or 0,
    started = core.now(), last = core.now(), shown = false }, P)
end

local function clock(s)
  if s ~= s or s == math.huge or s < 0 then return "--:--" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format("%d:%02d:%02d", s // 3600, s % 3600 // 60, s % 60) end
  return string.format("%d:%02d", s // 60, s % 60)
end

--- st: rows, created, updated, rejected, pos (bytes read).  force draws now.
function P:update(st, force)
  local now = core.now()
  local every = self.tty and 0.2 or self.interval
  if not force and now - self.last < every then return end
  self.last = now
  local elapsed = now - self.started
  local rate = elapsed > 0 and st.rows / elapsed or 0
  local frac = self.total > 0 and math.min(1, (st.pos or 0) / self.total) or 0
  local eta = frac > 0 and elapsed * (1 - frac) / frac or math.huge
  local tail = string.format("%3d%% %d rows %d/s ETA %s  created %d updated %d rejected %d",
    math.floor(frac * 100), st.rows, math.floor(rate + 0.5), clock(eta),
    st.created, st.updated, st.rejected)
  if self.tty then
    local barw = math.max(10, math.min(30, self.width - #tail - 4))
    local full = math.floor(frac * barw + 0.5)
    local line = "[" .. string.rep("#", full) .. string.rep(".", barw - full) .. "] " .. tail
    io.stderr:write("\r", line:sub(1, self.width - 1), "\27[K")
  else
    io.stderr:write("progress: ", tail, "\n")
  end
  self.shown = true
end

--- Leaves the terminal on a fresh line.
function P:finish(st)
  self:update(st, true)
  if self.tty then io.stderr:write("\n") end
end

return M
