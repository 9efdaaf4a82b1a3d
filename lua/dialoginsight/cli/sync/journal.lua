--- The journal of a sync: which records the server confirmed, and which
-- bytes of the input they were read from, so that --resume after a crash, a
-- kill -9 or Ctrl-C skips them and re-sends the rest (Merge is an upsert: a
-- batch sent but not confirmed does no harm when sent again), and refuses
-- an input whose confirmed part changed.  The format (DIJ2) is described in
-- docs/sync.md.
--
-- One run per journal: the file is locked (host.lock, through
-- cli/sync/output.lua) from before it is read until the run ends, and a
-- second run on the same input stops, naming the first one's process.
-- Every write is checked; E is written only after everything else
-- succeeded.
local core = require "dialoginsight.core"
local output = require "dialoginsight.cli.sync.output"

local M = {}

-- A B line: DIJ2's, or DIJ1's (no mark: an older version's journal).
local B2 = "^B (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%x+) ([01])$"
local B1 = "^B (%d+) (%d+) (%d+) (%d+) (%d+) (%d+)$"

--- Reads a journal's text: { version, key, ranges (sorted), created,
-- updated, rejected, rows, rejects_size, mark = { offset, hash, cut } (the
-- furthest the confirmed batches were read from), good (bytes of whole
-- lines), complete }, or nil when it holds no whole line (none yet: a run
-- that confirmed nothing), or nil, why when it is not a journal.
function M.parse(text)
  local j = { ranges = {}, created = 0, updated = 0, rejected = 0, rows = 0,
              rejects_size = 0, good = 0 }
  local pos = 1
  while true do
    local nl = text:find("\n", pos, true)
    if not nl then break end -- a torn last line was never confirmed
    local line = text:sub(pos, nl - 1)
    pos = nl + 1
    j.good = nl
    local key = line:match("^DIJ2 key=(.*)$")
    local key1 = not key and line:match("^DIJ1 size=%d+ key=(.*)$")
    if key or key1 then
      j.version, j.key = key and 2 or 1, key or key1
    elseif line == "E" then
      j.complete = true
    else
      local a, b, cr, up, rj, off, at, hash, cut
      if j.version == 2 then
        a, b, cr, up, rj, off, at, hash, cut = line:match(B2)
      else
        a, b, cr, up, rj, off = line:match(B1)
      end
      if not a then return nil, "line '" .. line:sub(1, 40) .. "' is not a journal line" end
      a, b, at = tonumber(a), tonumber(b), tonumber(at)
      if at and not (j.mark and j.mark.offset >= at) then
        j.mark = { offset = at, hash = hash, cut = cut == "1" }
      end
      j.ranges[#j.ranges + 1] = { a, b }
      j.created, j.updated = j.created + tonumber(cr), j.updated + tonumber(up)
      j.rejected = j.rejected + tonumber(rj)
      j.rows = j.rows + (b - a + 1)
      j.rejects_size = tonumber(off)
    end
  end
  if j.good == 0 then return nil end
  if not j.version then return nil, "it has no header line" end
  table.sort(j.ranges, function(x, y) return x[1] < y[1] end)
  return j
end

local Journal = {}
Journal.__index = Journal

-- What an existing journal means for this run: nil (go on), or a message
-- and an exit status (refuse).
local function refusal(old, opts)
  if opts.resume then
    if old.version == 1 and not old.complete then
      return "the journal " .. opts.path .. " was written by an older version of dialoginsight "
        .. "(DIJ1), which identified the input by its size alone: it cannot show that "
        .. opts.file .. " is unchanged, so it is not resumed; use --restart to sync it again "
        .. "from the start (Merge is an upsert)", 1
    end
    if old.key ~= opts.key then
      return "the journal " .. opts.path .. " was written for the key field " .. old.key
        .. ", not " .. opts.key .. ": cannot resume; use --restart to start over", 1
    end
    if old.complete then
      return "the journal says this file was already synced completely; "
        .. "use --restart to sync it again", 0
    end
  elseif not old.complete and not opts.restart then
    if opts.stream then
      return "an unfinished journal exists (" .. opts.path .. ") and a stream cannot be "
        .. "resumed: use --restart to start over", 1
    end
    if old.version == 1 then
      return "an unfinished journal of an older version exists (" .. opts.path .. "), which "
        .. "cannot be resumed: use --restart to start over", 1
    end
    return "an unfinished journal exists (" .. opts.path .. "): use --resume to "
      .. "continue it, or --restart to start over", 1
  end
  return nil
end

--- Whether the input, as the reader (src/di_csv.c) has it open, still
-- holds what the confirmed batches of the journal old were read from: nil,
-- or why not.  Bytes appended after them are new rows, unless the last row
-- read then ended with the file (no line end): it may read differently now.
function M.check_input(old, reader, file)
  local m = old.mark
  if not m then return nil end
  local size, why = reader:size()
  if not size then return "cannot check " .. file .. ": " .. tostring(why) end
  local advice = ": cannot resume; use --restart to sync it from the start (Merge is an upsert)"
  if size < m.offset then
    return file .. " changed since the journal was written: it holds " .. size .. " bytes, and "
      .. "the batches confirmed then were read from its first " .. m.offset .. advice
  end
  local hash
  hash, why = reader:digest(m.offset)
  if not hash then return "cannot check " .. file .. ": " .. tostring(why) end
  if hash ~= m.hash then
    return file .. " changed since the journal was written: its first " .. m.offset
      .. " bytes, which the confirmed batches were read from, are not the same now (hash "
      .. m.hash .. " then, " .. hash .. " now)" .. advice
  end
  if m.cut and size ~= m.offset then
    return file .. " grew after its last row, which had no line end, was read (" .. m.offset
      .. " bytes then, " .. size .. " now): that row may read differently now" .. advice
  end
  return nil
end

--- Opens and locks the journal of an input for a run, and decides from
-- what it holds.  opts: path, file, key, resume, restart, stream.  Returns the journal, with `old` (what M.parse gave)
-- when it resumes; or nil, message, exit status.  Nothing is written yet:
-- start() does that once the other outputs are open, and abandon() leaves
-- things as they were.
function M.open(opts, say)
  local out, err = output.open(opts.path, "journal")
  if not out then return nil, err, 1 end
  local ok, lerr, pid = out:lock()
  if not ok then
    out:close()
    if pid then lerr = lerr .. ": wait for it to end, or stop it (kill " .. pid .. ")" end
    return nil, lerr, 1
  end
  local text
  text, err = out:read_all()
  if not text then out:close(); return nil, err, 1 end
  local j = setmetatable({ out = out, opts = opts, fresh = text == "" }, Journal)
  local old, why = M.parse(text)
  if why then
    j:abandon()
    return nil, "journal " .. opts.path .. ": " .. why .. "; remove it or use --restart", 1
  end
  local refuse, status
  if old then refuse, status = refusal(old, opts) end
  if refuse then
    j:abandon()
    return nil, refuse, status
  end
  if old and opts.resume then
    j.old = old
  elseif opts.resume then
    say("no journal to resume (", opts.path, "): starting from the beginning")
  end
  return j
end

--- Starts writing: cuts a resumed journal back to its whole lines, or
-- writes a new one's header.  true, or nil, message.
function Journal:start()
  local out, ok, err = self.out
  if self.old then
    ok, err = out:truncate(self.old.good)
  else
    ok, err = out:truncate(0)
    if ok then
      ok, err = out:write(string.format("DIJ2 key=%s\n", self.opts.key))
    end
    if ok then ok, err = out:sync() end
  end
  self.last_sync = core.now()
  return ok, err
end

--- Records a settled batch (b.mark: the reader's mark once its last record
-- was read); fsyncs it (and the rejects file before it) at most once a
-- second.  rejects: the rejects file's output.  true, or nil, message.
function Journal:record(b, rejects)
  local size, err = rejects:size()
  if not size then return nil, err end
  local ok
  local m = b.mark
  ok, err = self.out:write(string.format("B %d %d %d %d %d %d %d %s %d\n", b.first, b.last,
    b.created, b.updated, #b.rejects, size, m.offset, m.hash, m.cut and 1 or 0))
  if ok then ok, err = self.out:flush() end
  if ok and core.now() - self.last_sync >= 1 then
    ok, err = rejects:sync()
    if ok then ok, err = self.out:sync() end
    self.last_sync = core.now()
  end
  return ok, err
end

--- Ends the journal: marked complete (E) when the whole input was settled,
-- fsync'd, closed (which drops the lock).  true, or nil, message; a journal
-- whose writes failed is never marked complete.
function Journal:close(complete)
  local out = self.out
  local ok, err = true, nil
  if complete then ok, err = out:write("E\n") end
  if ok then ok, err = out:sync() end
  local cok, cerr = out:close()
  if ok then ok, err = cok, cerr end
  return ok, err
end

--- Leaves without a run: a journal this run made (it was empty) is removed,
-- so that it blocks no later run; any other is left as it was.
function Journal:abandon()
  if self.fresh then os.remove(self.opts.path) end
  self.out:close()
end

return M
