--- The received events, in one SQLite file (src/di_sqlite.c) that nginx workers, batch jobs
-- and `sqlite3` share: an event is acknowledged only once its row is committed (WAL,
-- synchronous FULL), and leaves only through a handler's success or an explicit purge.
-- docs/webhooks.md says why SQLite, and what each state means.
-- @module dialoginsight.webhooks.store
local core = require "dialoginsight.core"
local errors = require "dialoginsight.errors"

local M = {}

--- How long a writer waits for another's transaction, in ms: an nginx worker is held
-- that long at most (docs/webhooks.md has the figures).
M.BUSY_MS = 2000

local SCHEMA = [[
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS events (
  seq      INTEGER PRIMARY KEY AUTOINCREMENT,
  id       TEXT NOT NULL UNIQUE,      -- EventUniqueID: a second delivery is a duplicate
  type     TEXT NOT NULL,
  test     INTEGER NOT NULL,          -- isTest: never given to the production handler
  body     TEXT NOT NULL,             -- the raw body, as signed
  received REAL NOT NULL,
  state    TEXT NOT NULL,             -- pending, running, done, dead
  attempts INTEGER NOT NULL DEFAULT 0,-- handler runs, all rounds
  round    INTEGER NOT NULL DEFAULT 0,-- attempts when last replayed
  due      REAL NOT NULL,             -- pending: not before; running: the lease's end
  error    TEXT,
  handled  REAL
);
CREATE INDEX IF NOT EXISTS events_due ON events (state, due);
PRAGMA user_version = 1;
]]

local Store = {}
Store.__index = Store

local function failed(what, msg, code)
  return nil, errors.new { kind = "store", status = 503, service = "webhooks", code = code,
    message = what .. ": " .. tostring(msg) }
end

--- Opens (and creates, 0600) the store at path.
-- @tparam string path the SQLite file
-- @treturn table a store, or nil and an error of kind store
function M.open(path)
  if type(path) ~= "string" or path == "" then
    error("dialoginsight: webhooks: the store must be a file path (option 'store', or webhook_store)", 2)
  end
  local db, msg, code = core.sqlite_open(path, M.BUSY_MS)
  if not db then return failed("cannot open the event store", msg, code) end
  local ok
  ok, msg, code = db:exec("PRAGMA busy_timeout = " .. M.BUSY_MS .. ";")
  if ok then ok, msg, code = db:exec(SCHEMA) end
  if not ok then
    db:close()
    return failed("cannot prepare the event store", msg, code)
  end
  local v = db:query("PRAGMA user_version")
  if not v or v[1].user_version ~= 1 then
    db:close()
    return failed("cannot use the event store", "it is not a dialoginsight event store (version 1)")
  end
  return setmetatable({ db = db, path = path }, Store)
end

-- How durable the next commits are: FULL (fsync at each commit) for an event about to be
-- acknowledged, NORMAL for the handling state (WAL: survives kill -9; a power cut may undo
-- the last "done", and the event then runs again, announced as a retry).
function Store:sync(full)
  if self.full == full then return true end
  local ok, msg, code = self.db:exec(full and "PRAGMA synchronous = FULL" or "PRAGMA synchronous = NORMAL")
  if not ok then return failed("cannot set the store's durability", msg, code) end
  self.full = full
  return true
end

function Store:query(what, sql, ...)
  local rows, n, code = self.db:query(sql, ...)
  if not rows then return failed(what, n, code) end
  return rows, n
end

--- Stores event (parsed) with its raw body: "stored", or "duplicate" when its id is there.
-- @return "stored" | "duplicate", or nil and an error of kind store (answer 503)
function Store:put(event, body, now)
  local ok, err = self:sync(true)
  if not ok then return nil, err end
  local _, n = self:query("cannot store the event", "INSERT INTO events "
    .. "(id, type, test, body, received, state, due) VALUES (?, ?, ?, ?, ?, 'pending', ?) "
    .. "ON CONFLICT (id) DO NOTHING", event.id, event.type, event.test and 1 or 0, body, now, now)
  if not n then return nil, _ end
  return n == 1 and "stored" or "duplicate"
end

local COLUMNS = "seq, id, type, test, body, received, state, attempts, round, due, error, handled"

--- Takes up to n events that are due (pending, or running past their lease: the runner
-- died), in the order received; each is leased for lease seconds and its attempts counted.
function Store:claim(n, now, lease)
  local ok, err = self:sync(false)
  if not ok then return nil, err end
  local rows
  rows, err = self:query("cannot read the event store", "UPDATE events SET state = 'running', "
    .. "attempts = attempts + 1, due = ? WHERE seq IN (SELECT seq FROM events WHERE state IN "
    .. "('pending', 'running') AND due <= ? ORDER BY seq LIMIT ?) RETURNING " .. COLUMNS,
    now + lease, now, n)
  if not rows then return nil, err end
  table.sort(rows, function(a, b) return a.seq < b.seq end)
  return rows
end

--- The event's handling succeeded (only while it holds the lease claim gave: attempts).
-- @treturn boolean false when the lease was lost (another runner took the event)
function Store:done(row, now)
  local _, n = self:query("cannot record the event's handling", "UPDATE events SET state = 'done', "
    .. "handled = ?, error = NULL WHERE seq = ? AND state = 'running' AND attempts = ?",
    now, row.seq, row.attempts)
  if not n then return nil, _ end
  return n == 1
end

--- The handling failed: pending again from `due`, or dead (due nil) with why.
function Store:fail(row, why, due, now)
  local _, n = self:query("cannot record the event's failure", "UPDATE events SET state = ?, "
    .. "due = ?, error = ? WHERE seq = ? AND state = 'running' AND attempts = ?",
    due and "pending" or "dead", due or now, why, row.seq, row.attempts)
  if not n then return nil, _ end
  return n == 1
end

--- Events by state ("pending", "running", "done", "dead", nil: all), oldest first.
function Store:list(state, limit, after)
  return self:query("cannot read the event store", "SELECT " .. COLUMNS .. " FROM events WHERE "
    .. "(? IS NULL OR state = ?) AND seq > ? ORDER BY seq LIMIT ?", state, state, after or 0, limit or 100)
end

--- The event of EventUniqueID id, or nil.
function Store:get(id)
  local rows, err = self:query("cannot read the event store", "SELECT " .. COLUMNS
    .. " FROM events WHERE id = ?", id)
  if not rows then return nil, err end
  return rows[1] or false
end

--- Sends dead (or done) events back to the handler, with a new round of attempts:
-- the one of id, or every dead one (id nil).  Returns how many.
function Store:replay(id, now)
  local _, n = self:query("cannot replay", "UPDATE events SET state = 'pending', due = ?, "
    .. "round = attempts WHERE state IN ('dead', 'done') AND (? IS NULL AND state = 'dead' OR id = ?)",
    now, id, id)
  if not n then return nil, _ end
  return n
end

--- Deletes handled events (done) received before `before` (nil: all of them), and with
-- dead = true the dead ones too.  Returns how many.  Pending events are never purged.
function Store:purge(before, dead)
  local _, n = self:query("cannot purge", "DELETE FROM events WHERE (state = 'done' OR "
    .. "(? AND state = 'dead')) AND (? IS NULL OR received < ?)", dead and 1 or 0, before, before)
  if not n then return nil, _ end
  return n
end

--- How many events are in each state: { pending =, running =, done =, dead = }.
function Store:counts()
  local rows, err = self:query("cannot read the event store",
    "SELECT state, count(*) AS n FROM events GROUP BY state")
  if not rows then return nil, err end
  local c = { pending = 0, running = 0, done = 0, dead = 0 }
  for _, r in ipairs(rows) do c[r.state] = r.n end
  return c
end

--- The next time an event is due, or nil when none waits.
function Store:next_due()
  local rows = self:query("cannot read the event store",
    "SELECT min(due) AS due FROM events WHERE state IN ('pending', 'running')")
  return rows and rows[1] and rows[1].due
end

function Store:close() self.db:close() end

return M
