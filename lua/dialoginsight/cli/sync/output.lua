--- An output file of a sync (the journal, the rejects file) whose every write,
-- flush, fsync, truncate and close is checked: a failure is a `nil, message` that
-- stops the run, never a row silently lost, and every later write says the same.
-- It is never truncated before the lock is held (a second run must not cut a
-- running one's files); it holds contact data: created 0600, opened O_NOFOLLOW
-- (host.append), cut back through the open file, never by its name.
local host = require "dialoginsight.host"

local M = {}

local Out = {}
Out.__index = Out

--- Opens path (what: "journal", "rejects file") for reading and appending, or nil, message.
function M.open(path, what)
  local f, err = host.append(path)
  if not f then return nil, "cannot open the " .. what .. " " .. tostring(err) end
  return setmetatable({ f = f, path = path, what = what }, Out)
end

--- An output that writes nowhere (a plan's rejects: its report has them), size 0.
function M.null()
  local ok = function() return true end
  return { write = ok, flush = ok, sync = ok, close = ok, truncate = ok, size = function() return 0 end }
end

-- Records the first failure and returns nil, its message.
function Out:fail(op, err)
  self.broken = self.broken or string.format("cannot %s the %s %s: %s", op, self.what,
    self.path, tostring(err))
  return nil, self.broken
end

--- Takes the exclusive lock (host.lock): true, or nil, message, pid of the
-- process that holds it.
function Out:lock()
  local ok, err, pid = host.lock(self.f)
  if ok then return true end
  if pid then
    return nil, string.format("the %s %s is in use by another run (process %d)", self.what,
      self.path, pid), pid
  end
  return self:fail("lock", err)
end

--- The whole content ("" for a new file), or nil, message.
function Out:read_all()
  local ok, err = self.f:seek("set", 0)
  if not ok then return self:fail("read", err) end
  local text
  text, err = self.f:read("a")
  if not text then return self:fail("read", err) end
  return text
end

--- The first n bytes (fewer when the file is shorter), or nil, message.
function Out:read_head(n)
  local ok, err = self.f:seek("set", 0)
  if not ok then return self:fail("read", err) end
  local text
  text, err = self.f:read(n)
  if text == nil and err == nil then text = "" end
  if not text then return self:fail("read", err) end
  return self:at_end(text)
end

-- Back to the end for the next append; v, or nil, message.
function Out:at_end(v)
  local ok, err = self.f:seek("end")
  if not ok then return self:fail("seek in", err) end
  return v
end

--- Cuts the file back to size bytes (0: empties it).
function Out:truncate(size)
  local ok, err = host.truncate(self.f, size)
  if not ok then return self:fail("truncate", err) end
  return self:at_end(true)
end

--- Appends s (buffered: flush() says whether it reached the file).
function Out:write(s)
  if self.broken then return nil, self.broken end
  local ok, err = self.f:write(s)
  if not ok then return self:fail("write", err) end
  return true
end

function Out:flush()
  if self.broken then return nil, self.broken end
  local ok, err = self.f:flush()
  if not ok then return self:fail("write", err) end
  return true
end

--- Flushes and asks the kernel to put the file on disk.
function Out:sync()
  if self.broken then return nil, self.broken end
  local ok, err = host.fsync(self.f)
  if not ok then return self:fail("write (fsync)", err) end
  return true
end

--- The size of the file: where the next append goes.
function Out:size()
  local n, err = self.f:seek("end")
  if not n then return self:fail("seek in", err) end
  return n
end

--- Closes the file, dropping the lock: true, or nil and the first failure.
function Out:close()
  if not self.f then return true end
  local ok, err = self.f:close()
  self.f = nil
  if self.broken then return nil, self.broken end
  if not ok then return self:fail("close", err) end
  return true
end

return M
