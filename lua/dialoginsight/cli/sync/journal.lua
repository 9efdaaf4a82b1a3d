--- The journal of a sync (docs/sync.md, format DIJ3): which records the server
-- confirmed and which input bytes they came from, so that --resume skips them and
-- re-sends the rest (Merge is an upsert: a batch sent again does no harm), and
-- refuses a changed input, another target or another rejects file.  Locked for the
-- run (cli/sync/output.lua); E is written only after everything else succeeded.
local core = require "dialoginsight.core"
local host_of = require("dialoginsight.limiter.host").of
local output = require "dialoginsight.cli.sync.output"

local M = {}

M.VERSION = "DIJ3"

-- A B line: the batch's records first..last, its counts (created, updated,
-- rejected, superseded), the rejects file's size after it, the reader's mark.
local B = "^B (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%x+) ([01])$"
-- The same, then the records found unchanged against the sync's state (--changed-only;
-- absent when none).
local BU = "^B (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%x+) ([01]) (%d+)$"
-- An R line: the rejects file from here on (its name and host.fileid), when
-- a resumed run started it afresh (the journal counted no rejected row).
local R = "^R (%S+) (%S+)$"

-- The header's values, %XX-escaped so that each is one word.
local function escape(v)
  return (tostring(v):gsub("[^%w%._~:/@+,-]", function(c) return string.format("%%%02X", c:byte()) end))
end

local function unescape(v)
  return (v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- The members a DIJ3 header must have.
local HEADER = { "key", "target", "key_id", "project", "rejects", "rejects_id" }

--- Where a sync sends its rows, as the journal names it: the base URL, its host
-- spelled as the limiter spells it (limiter/host.lua), with no trailing slash.
function M.target(base_url)
  local scheme, path = tostring(base_url):match("^(%a+)://[^/?#]+(.*)$")
  if not scheme then return tostring(base_url) end
  return scheme:lower() .. "://" .. host_of(base_url) .. path:gsub("/+$", "")
end

--- Reads a journal's text: { version, key, target, key_id, project, rejects, rejects_id,
-- ranges (sorted), created, updated, rejected, superseded, unchanged, rows, rejects_size, mark =
-- { offset, hash, cut }, good (bytes of whole lines before E), complete }; nil when it
-- holds no whole line, or nil, why when it is not a journal.  Of DIJ1/DIJ2 only version
-- and complete are read: such a journal is never resumed.
function M.parse(text)
  local j = { ranges = {}, created = 0, updated = 0, rejected = 0, superseded = 0, unchanged = 0, rows = 0,
              rejects_size = 0, good = 0 }
  local pos, whole = 1, 0
  while true do
    local nl = text:find("\n", pos, true)
    if not nl then break end -- a torn last line was never confirmed
    local line, first = text:sub(pos, nl - 1), pos == 1
    pos, whole = nl + 1, nl
    if j.complete then return nil, "a line follows its end (E)" end
    local older = first and line:match("^(DIJ[12]) ")
    local h = first and line:match("^DIJ3 (.*)$")
    if older or h then
      if older then
        j.version = tonumber(older:sub(4))
        j.complete = text:sub(-3) == "\nE\n"
        j.good = #text
        return j
      end
      j.version = 3
      local got = {}
      for name, v in h:gmatch("([%w_]+)=(%S*)") do got[name] = unescape(v) end
      j.input = got.input
      for _, name in ipairs(HEADER) do
        if got[name] == nil then return nil, "its header line has no " .. name end
        j[name] = got[name]
      end
    elseif line == "E" and j.version then
      j.complete = true
    elseif j.version and line:match(R) then
      local name, id = line:match(R)
      j.rejects, j.rejects_id = unescape(name), unescape(id)
    else
      local a, b, cr, up, rj, sp, off, at, hash, cut, un
      if j.version then a, b, cr, up, rj, sp, off, at, hash, cut, un = line:match(BU) end
      if j.version and not a then a, b, cr, up, rj, sp, off, at, hash, cut = line:match(B) end
      if not a then return nil, "line '" .. line:sub(1, 40) .. "' is not a journal line" end
      a, b, at = tonumber(a), tonumber(b), tonumber(at)
      if not (j.mark and j.mark.offset >= at) then
        j.mark = { offset = at, hash = hash, cut = cut == "1" }
      end
      j.ranges[#j.ranges + 1] = { a, b }
      j.created, j.updated = j.created + tonumber(cr), j.updated + tonumber(up)
      j.rejected, j.superseded = j.rejected + tonumber(rj), j.superseded + tonumber(sp)
      j.unchanged = j.unchanged + tonumber(un or "0")
      j.rows = j.rows + (b - a + 1)
      j.rejects_size = math.max(j.rejects_size, tonumber(off))
    end
    if not j.complete then j.good = whole end
  end
  if whole == 0 then return nil end
  if not j.version then return nil, "it has no header line" end
  table.sort(j.ranges, function(x, y) return x[1] < y[1] end)
  return j
end

local Journal = {}
Journal.__index = Journal

-- The target of a journal or of this run's settings, said.
local function target_of(t)
  return t.target .. " (key id " .. tostring(t.key_id) .. ", project " .. tostring(t.project) .. ")"
end

-- What an existing journal means for this run: nil (go on), or a message
-- and an exit status (refuse).
local function refusal(old, opts)
  if opts.resume then
    if old.version < 3 then
      return "the journal " .. opts.path .. " was written by an older version of dialoginsight "
        .. "(DIJ" .. old.version .. "), " .. (old.version == 1 and "which identified the input by "
        .. "its size alone: it cannot show that " .. opts.file .. " is unchanged"
        or "which does not name where its rows were sent") .. ", so it is not resumed; use "
        .. "--restart to sync it again from the start (Merge is an upsert)", 1
    end
    if old.key ~= opts.key then
      return "the journal " .. opts.path .. " was written for the key field " .. old.key
        .. ", not " .. opts.key .. ": cannot resume; use --restart to start over", 1
    end
    if old.target ~= opts.target or old.key_id ~= tostring(opts.key_id)
        or old.project ~= tostring(opts.project) then
      return "the journal " .. opts.path .. " was written for another target: its rows went to "
        .. target_of(old) .. ", and these settings name " .. target_of { target = opts.target,
          key_id = opts.key_id, project = opts.project } .. "; cannot resume (the rows it "
        .. "confirmed are not in this one): run with the settings of the first run, or use "
        .. "--restart to sync the whole file to this target", 1
    end
  elseif not old.complete and not opts.restart then
    if opts.stream then
      return "an unfinished journal exists (" .. opts.path .. ") and a stream cannot be "
        .. "resumed: use --restart to start over (it empties " .. tostring(old.rejects or opts.rejects)
        .. ": move that away first to keep its rejected rows, or give --out-dir)", 1
    end
    if old.version < 3 then
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

--- Opens and locks the journal of an input for a run, and decides from what it holds.
-- opts: path, file, key, target (M.target), key_id, project, rejects, resume, restart,
-- stream.  Returns the journal, with `old` (M.parse's) when it resumes and `prev` when
-- there was one; or nil, message, exit status.  Nothing is written before start().
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
  -- the journal being replaced names the rejects file its runs wrote
  j.prev = old
  if old and opts.resume then
    j.old = old
  elseif opts.resume then
    say("no journal to resume (", opts.path, "): starting from the beginning")
  end
  return j
end

--- Starts writing: cuts a resumed journal back to its whole lines, before its E,
-- or writes a new one's header (the target and the rejects file, never the API
-- key).  true, or nil, message.
function Journal:start(rejects_id)
  local out, ok, err = self.out
  if self.old then
    ok, err = out:truncate(self.old.good)
  else
    ok, err = out:truncate(0)
    if ok then
      local o, h = self.opts, { M.VERSION }
      local v = { key = o.key, target = o.target, key_id = o.key_id, project = o.project,
                  rejects = o.rejects, rejects_id = rejects_id }
      for _, name in ipairs(HEADER) do h[#h + 1] = name .. "=" .. escape(v[name]) end
      -- (optional: a later run of another input tells a stream's rejects by it)
      if o.stream then h[#h + 1] = "input=stream" end
      ok, err = out:write(table.concat(h, " ") .. "\n")
    end
    if ok then ok, err = out:sync() end
  end
  self.last_sync = core.now()
  return ok, err
end

--- Names the rejects file a resumed run started afresh (an R line).
-- true, or nil, message.
function Journal:renew_rejects(path, rejects_id)
  local ok, err = self.out:write("R " .. escape(path) .. " " .. escape(rejects_id) .. "\n")
  if ok then ok, err = self.out:sync() end
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
  ok, err = self.out:write(string.format("B %d %d %d %d %d %d %d %d %s %d%s\n", b.first, b.last,
    b.created, b.updated, #b.rejects, b.superseded, size, m.offset, m.hash, m.cut and 1 or 0,
    (b.unchanged or 0) > 0 and (" " .. b.unchanged) or ""))
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

--- Why the journal at opts.path cannot be resumed with these settings (another target, key
-- field, ...), read without opening it for writing: message, exit status; nil when it can
-- (or is not there, or not a journal: M.open says so).
function M.refused(opts)
  local f = io.open(opts.path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local old = M.parse(text)
  if not old then return nil end
  return refusal(old, opts)
end

--- Leaves without a run: a journal this run made (it was empty) is removed,
-- so that it blocks no later run; any other is left as it was.
function Journal:abandon()
  if self.fresh then os.remove(self.opts.path) end
  self.out:close()
end

return M
