--- A sync's state (docs/sync.md, "The state"): for each key, the wire record that Dialog
-- Insight last confirmed merged, in one SQLite file beside the journal, so that a nightly
-- run sends only what changed (--changed-only) and can show its plan first (--plan).
-- Written only from confirmed outcomes, before the batch's journal line: a kill leaves it
-- holding nothing the server did not confirm.  A run compares its rows against an index in
-- memory (src/di_keyset.c: 64-bit hashes of each key and record), loaded once.
local core = require "dialoginsight.core"
local sqlite = require "dialoginsight.sqlite"

local M = {}

local SCHEMA = [[
CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE rows (
  k64    INTEGER PRIMARY KEY, -- core.hash64 of key: the row's id, what a run loads
                            -- (src/di_keyset.c; two keys of one hash, 2^-64 a pair, would share)
  key    TEXT NOT NULL,     -- the row's key (batches.state_columns): the key field's value
                            -- trimmed and lower-cased, else "#" and its idContact
  h64    INTEGER NOT NULL,  -- the hash of record that a run compares: FNV-1a 64 of its bytes
                            -- (core.hash64), as a signed 64-bit integer
  record TEXT NOT NULL,     -- the wire record's JSON, as the Merge sent it
  at     REAL NOT NULL,     -- when it was confirmed (Unix time)
  seq    INTEGER NOT NULL,  -- the order of confirmations (records of one call: their order in it)
  contact INTEGER,          -- the contact it went to (the reply's IdRecord), when said
  held   INTEGER NOT NULL DEFAULT 0 -- 1: its contact was written later through another key
                            -- (an e-mail row, then an idContact row of it): never skipped
);
-- (contact, held): the contact's keys not yet held, found without walking its others
CREATE INDEX rows_contact ON rows (contact, held);
-- what a run loads, read from this index alone (its entries hold k64, the rowid; a scan
-- of rows would read every record)
CREATE INDEX rows_index ON rows (h64, held);
-- keys sent whose outcome is not known yet: the server may hold the row or not, so the
-- state's record says nothing of them until a confirmed outcome clears them
CREATE TABLE doubt (k64 INTEGER PRIMARY KEY); -- core.hash64 of the key
]]

-- "DISS" as the file's application_id (sqlite.lua).
local KIND = { app = 0x44495353, version = 1, schema = SCHEMA, what = "sync state", busy_ms = 2000 }

-- The index: each key, its record's hash and whether it is held; then the keys in doubt.
local INDEX = { "SELECT k64, h64, held FROM rows", "SELECT k64, NULL, 1 FROM doubt" }

local State = {}
State.__index = State

local function fail(what, msg) return nil, what .. ": " .. tostring(msg) end

-- The meta values that make the state's records comparable with a run's: where they went,
-- and what they were built with.
local WHERE = { "target", "project" }
local BUILT = { "key", "types" }

-- A dry run's state when there is none (or none comparable): every row new, no key missing.
local function empty()
  return setmetatable({ ix = core.keyset(1024), read_only = true }, State)
end

local function load(s)
  -- sized by the keys held (a count read from the smallest index), not by the
  -- confirmations ever made (meta's seq), which only grows
  local n = s.db:query("SELECT v FROM meta WHERE k = 'seq'")
  s.seq = n and n[1] and tonumber(n[1].v) or 0
  n = s.db:query("SELECT (SELECT count(*) FROM rows) + (SELECT count(*) FROM doubt) AS n")
  s.ix = core.keyset(math.max(1024, n and n[1].n or 0))
  for _, sql in ipairs(INDEX) do
    local ok, err = s.ix:load(s.db, sql)
    if not ok then return nil, err end
  end
  return true
end

--- Opens the state at path for a run: meta = { target, project, key (the key field),
-- types (a digest of the project's field types) }.  Another target or project is refused
-- (a wrong --state); another key field or field types empty it (every row is then new),
-- said in the second value.  read_only (a dry run, --plan): nothing is created or written
-- (a missing state, or one built otherwise, compares as empty).
-- @return state, note | nil, why
function M.open(path, meta, read_only)
  local db, msg = sqlite.open(path, KIND, not read_only, read_only)
  if not db and read_only and msg == "no sync state at " .. path then return empty() end
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
  if read_only then
    if note then db:close(); return empty(), (note:gsub("it is emptied", "a real run empties it")) end
    s.read_only = true
  else
    -- commits survive kill -9 without an fsync each (WAL); a power cut may undo the last
    -- ones: confirmations (those rows are then sent again) and doubts (docs/sync.md)
    -- (a checkpoint every 40 MB of log: a batch's rows land on random pages, and a later
    -- checkpoint writes a page rewritten many times once)
    ok, err = db:exec("PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 10000")
    if ok then ok, err = db:exec("BEGIN IMMEDIATE") end
    if ok and note then ok, err = db:exec("DELETE FROM rows; DELETE FROM doubt;") end
    for k, v in pairs(meta) do
      if ok then ok, err = db:query("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = "
        .. "excluded.v", k, tostring(v)) end
    end
    if ok then ok, err = db:exec("COMMIT") else db:exec("ROLLBACK") end
    if not ok then db:close(); return fail("the sync state " .. path, err) end
  end
  ok, err = load(s)
  if not ok then db:close(); return fail("the sync state " .. path, err) end
  return s, note
end

--- The hash of the record last confirmed for key (its text or core.hash64; nil: none), and
-- whether the key is held: never skipped (a row of it sent in this run, in doubt, its
-- contact written later through another key).  Marks the key as in this file.
function State:look(key) return self.ix:look(key) end
-- (batches.lua asks self.ix directly, once per row)

--- A row of key (kh: its core.hash64) goes out in this run: later rows of it are never
-- skipped, nor, when the run compares, rows of its contact's other keys (an idContact row,
-- then an e-mail row of the same contact: known from the state's contact ids).
function State:sent(key, kh)
  kh = kh or core.hash64(key)
  self.ix:sent(kh)
  if not (self.links and self.db) then return end
  local id = tonumber(key:match("^#(%d+)$"))
  if not id then
    local r = self.db:query("SELECT contact FROM rows WHERE k64 = ?", kh)
    id = r and r[1] and r[1].contact
  end
  if not id then return end
  self.ix:hold(core.hash64("#" .. id))
  for _, r in ipairs(self.db:query("SELECT k64 FROM rows WHERE contact = ?", id) or {}) do
    self.ix:hold(r.k64)
  end
end

--- The record last confirmed for key (its JSON), or nil.
function State:record(key)
  if not self.db then return nil end
  local rows = self.db:query("SELECT record FROM rows WHERE k64 = ?", core.hash64(key))
  return rows and rows[1] and rows[1].record
end

--- Keys about to be sent (a batch): in doubt until a confirmed outcome, in one transaction
-- before the call, so that a kill or a lost reply never leaves a stale record trusted.
-- "(?), (?), ..." for n values, and the keys' hashes: one statement for a batch's keys.
local function each_hash(keys, from, to)
  local marks, hashes = {}, {}
  for i = from, to do
    marks[#marks + 1] = "(?)"
    hashes[#hashes + 1] = core.hash64(keys[i])
  end
  return table.concat(marks, ", "), hashes
end

-- Runs sql (with {} for the marks) over the keys' hashes, 500 at a time.
local function over_keys(db, sql, keys)
  local ok, err = true, nil
  for from = 1, #keys, 500 do
    local marks, hashes = each_hash(keys, from, math.min(#keys, from + 499))
    ok, err = db:query((sql:gsub("{}", marks)), table.unpack(hashes))
    if not ok then return nil, err end
  end
  return ok, err
end

function State:doubt(keys)
  if #keys == 0 or self.read_only then return true end
  local ok, err = over_keys(self.db, "INSERT INTO doubt (k64) VALUES {} ON CONFLICT (k64) DO NOTHING", keys)
  if not ok then return fail("cannot write the sync state " .. self.path, err) end
  return true
end

--- Records a settled batch: what the server confirmed merged (list of { key, json,
-- contact }), and the end of doubt for every key it sent (settled: merged or rejected), in
-- one transaction.
-- @return true, or nil, why (a full disk: the run stops before the journal's line)
function State:confirm(list, settled, now)
  if (#list == 0 and #settled == 0) or self.read_only then return true end
  local db = self.db
  local ok, err = db:exec("BEGIN IMMEDIATE")
  local base = self.seq
  for i, r in ipairs(list) do
    if not ok then break end
    local k64 = core.hash64(r[1])
    ok, err = db:query("INSERT INTO rows (k64, key, h64, record, at, seq, contact, held) VALUES "
      .. "(?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT (k64) DO UPDATE SET key = excluded.key, h64 = excluded.h64, "
      .. "record = excluded.record, at = excluded.at, seq = excluded.seq, contact = excluded.contact, held = 0",
      k64, r[1], core.hash64(r[2]), r[2], now, base + i, r[3])
    -- the contact's other keys now hold an older record of it
    if ok and r[3] then
      ok, err = db:query("UPDATE rows SET held = 1 WHERE contact = ? AND held = 0 AND k64 != ?", r[3], k64)
    end
  end
  if ok and #settled > 0 then
    ok, err = over_keys(db, "DELETE FROM doubt WHERE k64 IN (VALUES {})", settled)
  end
  if ok and #list > 0 then
    ok, err = db:query("INSERT INTO meta (k, v) VALUES ('seq', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
      tostring(base + #list))
  end
  if ok then ok, err = db:exec("COMMIT") else db:exec("ROLLBACK") end
  if not ok then return fail("cannot write the sync state " .. self.path, err) end
  self.seq = base + #list
  return true
end

--- The keys of the state that no row of this run had: their count, and a function that
-- gives each (for --missing-out, --plan-out).
function State:missing()
  local n = self.ix:unseen()
  local after, ix, db = math.mininteger, self.ix, self.db
  local function each()
    while db do
      local r = db:query("SELECT k64, key FROM rows WHERE k64 > ? ORDER BY k64 LIMIT 1", after)
      if not r or not r[1] then return nil end
      after = r[1].k64
      if not ix:seen(r[1].k64) then return r[1].key end
    end
  end
  return n, each
end

function State:close()
  if self.db then self.db:close() end
  self.ix:close()
end

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
