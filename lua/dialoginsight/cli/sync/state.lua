--- A sync's state (docs/sync.md, "The state"): for each key, the wire record that Dialog
-- Insight last confirmed merged, in one SQLite file beside the journal, so that a nightly
-- run sends only what changed (--changed-only) and can show its plan first (--plan).
-- Written only from confirmed outcomes, before the batch's journal line: a kill leaves it
-- holding nothing the server did not confirm.
local core = require "dialoginsight.core"
local sqlite = require "dialoginsight.sqlite"

local M = {}

local SCHEMA = [[
CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE rows (
  key    TEXT PRIMARY KEY,  -- the row's key as the sync compares keys (trimmed, lower case)
  hash   TEXT NOT NULL,     -- SHA-256 of record, for a look from sqlite3
  record TEXT NOT NULL,     -- the wire record's JSON, as the Merge sent it
  at     REAL NOT NULL      -- when it was confirmed (Unix time)
);
]]

-- "DISS" as the file's application_id (sqlite.lua).
local KIND = { app = 0x44495353, version = 1, schema = SCHEMA, what = "sync state", busy_ms = 2000 }

local State = {}
State.__index = State

local function fail(what, msg) return nil, what .. ": " .. tostring(msg) end

-- The meta values that make the state's records comparable with a run's: where they went,
-- and what they were built with.
local WHERE = { "target", "project" }
local BUILT = { "key", "types" }

--- Opens (creates) the state at path for a run: meta = { target, project, key (the key
-- field), types (the project's field types, as text) }.  Another target or project is
-- refused (a wrong --state); another key field or field types empty it (every row is then
-- new), said in the second value.
-- @return state, note | nil, why
function M.open(path, meta)
  local db, msg = sqlite.open(path, KIND)
  if not db then return fail("the sync state " .. path, msg) end
  local s = setmetatable({ db = db, path = path }, State)
  local rows, err = db:query("SELECT k, v FROM meta")
  if not rows then db:close(); return fail("the sync state " .. path, err) end
  local old = {}
  for _, r in ipairs(rows) do old[r.k] = r.v end
  for _, k in ipairs(WHERE) do
    if old[k] and old[k] ~= tostring(meta[k]) then
      db:close()
      return nil, "the sync state " .. path .. " is of another " .. k .. " (" .. old[k] .. ", not "
        .. tostring(meta[k]) .. "): give --state another file for this one"
    end
  end
  local note
  for _, k in ipairs(BUILT) do
    if old[k] and old[k] ~= tostring(meta[k]) then
      note = "the sync state " .. path .. " was built with another " .. (k == "key" and "key field"
        or "set of field types") .. ": it is emptied, and every row is new to it"
    end
  end
  local ok
  ok, err = db:exec("BEGIN IMMEDIATE")
  if ok and note then ok, err = db:exec("DELETE FROM rows") end
  for k, v in pairs(meta) do
    if ok then ok, err = db:query("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = "
      .. "excluded.v", k, tostring(v)) end
  end
  if ok then ok, err = db:exec("COMMIT") else db:exec("ROLLBACK") end
  -- the keys of this run's rows (seen) and whether one was sent: temporary, never on disk
  if ok then ok, err = db:exec("CREATE TEMP TABLE seen (key TEXT PRIMARY KEY, sent INTEGER NOT NULL)") end
  if not ok then db:close(); return fail("the sync state " .. path, err) end
  return s, note
end

--- The record last confirmed for key, or nil; and whether this run already sent a row of it.
function State:get(key)
  local rows, err = self.db:query("SELECT record, (SELECT sent FROM temp.seen WHERE key = ?1) AS sent "
    .. "FROM (SELECT 1) LEFT JOIN rows ON rows.key = ?1", key)
  if not rows then return nil, nil, err end
  return rows[1].record, rows[1].sent == 1
end

--- Notes that this run read a row of key, and whether it is sent.
function State:saw(key, sent)
  local ok, err = self.db:query("INSERT INTO temp.seen (key, sent) VALUES (?, ?) ON CONFLICT (key) "
    .. "DO UPDATE SET sent = max(sent, excluded.sent)", key, sent and 1 or 0)
  if not ok then return nil, err end
  return true
end

--- Records what the server confirmed merged: list of { key, json }, in one transaction.
-- @return true, or nil, why (a full disk: the run stops before the journal's line)
function State:confirm(list, now)
  if #list == 0 then return true end
  local db = self.db
  local ok, err = db:exec("BEGIN IMMEDIATE")
  for _, r in ipairs(list) do
    if not ok then break end
    ok, err = db:query("INSERT INTO rows (key, hash, record, at) VALUES (?, ?, ?, ?) ON CONFLICT (key) "
      .. "DO UPDATE SET hash = excluded.hash, record = excluded.record, at = excluded.at",
      r[1], core.hmac("sha256", "", r[2]), r[2], now)
  end
  if ok then ok, err = db:exec("COMMIT") else db:exec("ROLLBACK") end
  if not ok then return fail("cannot write the sync state " .. self.path, err) end
  return true
end

--- The keys of the state that no row of this run had: their count, and a function that
-- gives each (for --missing-out).
function State:missing()
  local rows, err = self.db:query("SELECT count(*) AS n FROM rows WHERE key NOT IN (SELECT key FROM temp.seen)")
  if not rows then return nil, err end
  local after = ""
  local function each()
    local r = self.db:query("SELECT key FROM rows WHERE key > ? AND key NOT IN (SELECT key FROM temp.seen) "
      .. "ORDER BY key LIMIT 1", after)
    if not r or not r[1] then return nil end
    after = r[1].key
    return after
  end
  return rows[1].n, each
end

function State:close() self.db:close() end

-- Two decoded records alike, whatever their members' order.
local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

--- Whether the JSON texts new and old hold the same record (their members in any order).
function M.same(new, old)
  if new == old then return true end
  if old == nil then return false end
  return same(core.decode(new), core.decode(old))
end

--- The fields that differ between the records old and new (JSON texts): a list of
-- { field, old, new } (values as JSON text, nil when absent), ID and Data alike.
function M.diff(new, old)
  local a, b = core.decode(new) or {}, old and core.decode(old) or {}
  local out = {}
  for _, part in ipairs { "ID", "Data" } do
    local na, nb = type(a[part]) == "table" and a[part] or {}, type(b[part]) == "table" and b[part] or {}
    local names = {}
    for k in pairs(na) do names[#names + 1] = k end
    for k in pairs(nb) do if na[k] == nil then names[#names + 1] = k end end
    table.sort(names)
    for _, k in ipairs(names) do
      if not same(na[k], nb[k]) then
        out[#out + 1] = { k, nb[k] ~= nil and core.encode(nb[k]) or nil, na[k] ~= nil and core.encode(na[k]) or nil }
      end
    end
  end
  return out
end

return M
