--- The received events, in one SQLite file (src/di_sqlite.c) that nginx workers, batch jobs
-- and `sqlite3` share: an event is acknowledged only once its row is committed (WAL,
-- synchronous FULL), and leaves only through a handler's success or an explicit purge.
-- docs/webhooks.md says why SQLite, and what each state means.
-- @module dialoginsight.webhooks.store
local core = require "dialoginsight.core"
local errors = require "dialoginsight.errors"
local sqlite = require "dialoginsight.sqlite"

local M = {}

--- How long a writer waits for another's transaction, in ms: an nginx worker is held
-- that long at most (docs/webhooks.md has the figures).
M.BUSY_MS = 2000

--- Seconds a purged event's id is remembered (30 days), so that a late redelivery of it is
-- still a duplicate: purge keeps the id alone (state purged, no body) that long.
M.REMEMBER_S = 30 * 86400

--- How far ahead a due time can honestly be (seconds): a lease and a back-off last a day at
-- most (options.seconds).  One further ahead was written while the wall clock ran ahead;
-- it is taken as due now, else the clock's correction would strand the event.
M.MAX_AHEAD_S = 2 * 86400

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS events (
  seq      INTEGER PRIMARY KEY AUTOINCREMENT,
  id       TEXT NOT NULL UNIQUE,      -- EventUniqueID: a second delivery is a duplicate
  type     TEXT NOT NULL,
  test     INTEGER NOT NULL,          -- isTest: never given to the production handler
  body     TEXT NOT NULL,             -- the raw body, as signed
  received REAL NOT NULL,
  state    TEXT NOT NULL,             -- pending, running, done, dead, purged (the id alone)
  attempts INTEGER NOT NULL DEFAULT 0,-- handler runs, all rounds
  round    INTEGER NOT NULL DEFAULT 0,-- attempts when last replayed
  due      REAL NOT NULL,             -- pending: not before; running: the lease's end
  error    TEXT,
  handled  REAL
);
CREATE INDEX IF NOT EXISTS events_due ON events (state, due);
]]

local Store = {}
Store.__index = Store

local function failed(what, msg, code)
  return nil, errors.new { kind = "store", status = 503, service = "webhooks", code = code,
    message = what .. ": " .. tostring(msg) }
end

--- What a store path must be, or nil (sqlite.path_problem).
M.path_problem = sqlite.path_problem

-- The store's kind of file (sqlite.lua): "DIWH" as its application_id.
local KIND = { app = 0x44495748, version = 1, schema = SCHEMA, what = "event store", busy_ms = M.BUSY_MS }

--- Opens (and creates, 0600) the store at path.
-- @tparam string path the SQLite file
-- @tparam[opt] table opts create = false: a missing file is an error (a reader's typo)
-- @treturn table a store, or nil and an error of kind store
function M.open(path, opts)
  local db, msg, code = sqlite.open(path, KIND, not (opts and opts.create == false))
  if not db then return failed("cannot open the event store", msg, code) end
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
    .. "('pending', 'running') AND (due <= ? OR due > ?) ORDER BY seq LIMIT ?) RETURNING " .. COLUMNS,
    now + lease, now, now + M.MAX_AHEAD_S, n)
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

--- Events by state ("pending", "running", "done", "dead", "purged"; nil: all but purged), oldest first.
function Store:list(state, limit, after)
  return self:query("cannot read the event store", "SELECT " .. COLUMNS .. " FROM events WHERE "
    .. "(? IS NULL AND state != 'purged' OR state = ?) AND seq > ? ORDER BY seq LIMIT ?",
    state, state, after or 0, limit or 100)
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

--- Purges handled events (done) received before `before` (nil: all of them), and with
-- dead = true the dead ones too: their bodies go, their ids stay REMEMBER_S after receipt
-- (a late redelivery is still a duplicate).  Returns how many.  Pending events never go.
function Store:purge(before, dead, now)
  now = now or core.wall()
  local _, n = self:query("cannot purge", "UPDATE events SET state = 'purged', body = '', "
    .. "error = NULL WHERE (state = 'done' OR (? AND state = 'dead')) AND (? IS NULL OR received < ?)",
    dead and 1 or 0, before, before)
  if not n then return nil, _ end
  local ok, err = self:query("cannot purge", "DELETE FROM events WHERE state = 'purged' AND received < ?",
    now - M.REMEMBER_S)
  if not ok then return nil, err end
  return n
end

--- How many events are in each state: { pending =, running =, done =, dead = }.
function Store:counts()
  local rows, err = self:query("cannot read the event store",
    "SELECT state, count(*) AS n FROM events GROUP BY state")
  if not rows then return nil, err end
  local c = { pending = 0, running = 0, done = 0, dead = 0, purged = 0 }
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
