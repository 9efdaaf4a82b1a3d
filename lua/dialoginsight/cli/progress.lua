--- Progress of a long job on stderr: a live bar redrawn in place on a
-- terminal, otherwise a plain line every few seconds (cron mail and CI logs
-- then get a readable history instead of control characters).
local core = require "dialoginsight.core"

local M = {}

local P = {}
P.__index = P

local SILENT = { update = function() end, finish = function() end }

--- opts: tty (boolean), width (the terminal's columns), interval (seconds
-- between plain lines), total (bytes of the input, for the fraction and
-- the ETA), off (-q: a bar that draws nothing).
function M.new(opts)
  if opts.off then return SILENT end
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

local MIN_BAR = 10

--- The text of the progress of st (rows, created, updated, rejected, unchanged, pos:
-- bytes read) for a terminal of self.width columns.  Every count stays
-- visible: the bar goes first, then the rate and the ETA, then the labels
-- shorten, before a count would be cut; and the bar is full only when
-- everything was read.
function P:line(st, now)
  local elapsed = now - self.started
  local rate = elapsed > 0 and st.rows / elapsed or 0
  local frac = self.total > 0 and math.min(1, (st.pos or 0) / self.total) or 0
  local eta = frac > 0 and elapsed * (1 - frac) / frac or math.huge
  local pct = string.format("%3d%%", math.floor(frac * 100))
  local counts = string.format("created %d updated %d rejected %d", st.created, st.updated, st.rejected)
  local same = (st.unchanged or 0) > 0 and st.unchanged -- --changed-only's rows not sent
  if same then counts = counts .. " unchanged " .. same end
  local rows = st.rows == 1 and "1 row" or (st.rows .. " rows")
  local timing = string.format("%s %d/s ETA %s", rows, math.floor(rate + 0.5), clock(eta))
  local full_text = pct .. " " .. timing .. "  " .. counts
  if not self.tty then return full_text end
  local room = self.width - 1 -- the last column would wrap the line
  local short = string.format("new %d upd %d rej %d", st.created, st.updated, st.rejected)
    .. (same and (" same " .. same) or "")
  local candidates = {
    full_text,
    pct .. " " .. timing .. "  " .. short,
    pct .. " " .. rows .. "  " .. short,
    string.format("%s %d n %d u %d r %d", pct, st.rows, st.created, st.updated, st.rejected),
  }
  for _, tail in ipairs(candidates) do
    local barw = math.min(30, room - #tail - 3)
    if barw >= MIN_BAR then
      local full = math.floor(frac * barw) -- floor: 99.9 % of the file is not a full bar
      return "[" .. string.rep("#", full) .. string.rep(".", barw - full) .. "] " .. tail
    end
  end
  for _, tail in ipairs(candidates) do
    if #tail <= room then return tail end
  end
  return candidates[#candidates] -- narrower still: the terminal wraps it, no count is cut
end

--- st: rows, created, updated, rejected, pos (bytes read).  force draws now.
function P:update(st, force)
  local now = core.now()
  local every = self.tty and 0.2 or self.interval
  if not force and now - self.last < every then return end
  self.last = now
  local text = self:line(st, now)
  if self.tty then
    io.stderr:write("\r", text, "\27[K")
  else
    io.stderr:write("progress: ", text, "\n")
  end
  self.shown = true
end

--- Leaves the terminal on a fresh line.
function P:finish(st)
  self:update(st, true)
  if self.tty then io.stderr:write("\n") end
end

return M
