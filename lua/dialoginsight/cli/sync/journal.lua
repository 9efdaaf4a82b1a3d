--- The journal of a sync: which records the server confirmed, so that
-- --resume after a crash, a kill -9 or Ctrl-C skips them and re-sends the
-- rest (Merge is an upsert: a batch sent but not confirmed does no harm
-- when sent again).
--
-- Text lines, appended, flushed after each batch, fsync'd at most once a
-- second and at the end:
--   DIJ1 size=<input bytes> key=<key field>
--   B <first record> <last record> <created> <updated> <rejected> <rejects file size>
--   E
-- Records are counted from 1 after the header.  A batch covers a contiguous
-- range of records, invalid ones included (their rejects are written when
-- the batch settles), so the ranges alone say what is done.  The rejects
-- file is cut back to the size the last B line recorded, which drops any
-- rejects written for a batch whose B line never made it to the journal.
local core = require "dialoginsight.core"
local host = require "dialoginsight.host"

local M = {}

--- Reads the journal at path: { size, key, ranges (sorted), created,
-- updated, rejected, rows, rejects_size, good (bytes of whole lines),
-- complete }, or nil when there is none, or nil, why when it is not one.
function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local j = { ranges = {}, created = 0, updated = 0, rejected = 0, rows = 0,
              rejects_size = 0, good = 0 }
  local pos = 1
  while true do
    local nl = text:find("\n", pos, true)
    if not nl then break end -- a torn last line was never confirmed
    local line = text:sub(pos, nl - 1)
    pos = nl + 1
    j.good = nl
    local size, key = line:match("^DIJ1 size=(%d+) key=(.*)$")
    if size then
      j.size, j.key = tonumber(size), key
    elseif line == "E" then
      j.complete = true
    else
      local a, b, cr, up, rj, off = line:match("^B (%d+) (%d+) (%d+) (%d+) (%d+) (%d+)$")
      if not a then return nil, "line '" .. line:sub(1, 40) .. "' is not a journal line" end
      a, b = tonumber(a), tonumber(b)
      j.ranges[#j.ranges + 1] = { a, b }
      j.created, j.updated = j.created + tonumber(cr), j.updated + tonumber(up)
      j.rejected = j.rejected + tonumber(rj)
      j.rows = j.rows + (b - a + 1)
      j.rejects_size = tonumber(off)
    end
  end
  if not j.size then return nil, "it has no header line" end
  table.sort(j.ranges, function(x, y) return x[1] < y[1] end)
  return j
end

local Journal = {}
Journal.__index = Journal

--- Opens the journal of an input for a run.  opts: path, size (of the
-- input), key, resume, restart.  Returns the journal, with `old` (what
-- M.read gave) when it resumes; or nil, message, exit status.
function M.open(opts, say)
  local old, why = M.read(opts.path)
  if why then return nil, "journal " .. opts.path .. ": " .. why .. "; remove it or use --restart", 1 end
  if old and opts.resume then
    if old.size ~= opts.size then
      return nil, opts.file .. " changed since the journal was written (" .. old.size
        .. " bytes then, " .. opts.size .. " now): cannot resume; use --restart to start over", 1
    end
    if old.complete then
      return nil, "the journal says this file was already synced completely; "
        .. "use --restart to sync it again", 0
    end
    host.truncate(opts.path, old.good)
    local f = assert(io.open(opts.path, "ab"))
    say("resuming: ", old.rows, " rows were confirmed by earlier runs")
    return setmetatable({ file = f, old = old, last_sync = core.now() }, Journal)
  elseif old and not old.complete and not opts.restart then
    return nil, "an unfinished journal exists (" .. opts.path .. "): use --resume to "
      .. "continue it, or --restart to start over", 1
  elseif opts.resume then
    say("no journal to resume (", opts.path, "): starting from the beginning")
  end
  local f
  f, why = io.open(opts.path, "wb")
  if not f then return nil, why, 1 end
  f:write(string.format("DIJ1 size=%d key=%s\n", opts.size, opts.key))
  f:flush()
  host.fsync(f)
  return setmetatable({ file = f, last_sync = core.now() }, Journal)
end

--- Records a settled batch; fsyncs it (and the rejects file before it) at
-- most once a second.
function Journal:record(b, rejects)
  self.file:write(string.format("B %d %d %d %d %d %d\n", b.first, b.last, b.created,
    b.updated, #b.rejects, rejects:seek("cur")))
  self.file:flush()
  if core.now() - self.last_sync >= 1 then
    host.fsync(rejects)
    host.fsync(self.file)
    self.last_sync = core.now()
  end
end

--- Ends the journal: marked complete when the whole input was settled.
function Journal:close(complete)
  if complete then self.file:write("E\n") end
  host.fsync(self.file)
  self.file:close()
end

return M
