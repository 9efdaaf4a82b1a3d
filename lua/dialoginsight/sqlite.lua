--- A SQLite file of the library's own (src/di_sqlite.c): the webhook event store and a
-- sync's state.  Each kind is marked by its application_id and schema version, made in a
-- new file or checked in an existing one, in one transaction (two processes opening a new
-- file at once both find it made or empty); another application's database is refused
-- untouched.
-- @module dialoginsight.sqlite
local core = require "dialoginsight.core"

local M = {}

--- What a path must be, or nil: a file (":memory:" or a "file:" URI would hold the data
-- in memory only, or elsewhere).
function M.path_problem(path)
  if type(path) ~= "string" or path == "" or path == ":memory:" or path:sub(1, 5) == "file:"
      or path:find("%z") then
    return "must be a file path (not :memory: or a file: URI)"
  end
end

--- Opens the file at path as kind: { app = application_id, version = user_version, schema =
-- SQL that makes it, what = "event store" (for messages), busy_ms }; create = false: a
-- missing file is an error (a reader's typo must not read as an empty one); read_only:
-- only checked, never made or changed (a dry run).
-- @return the db (core.sqlite_open's), or nil, message, code
function M.open(path, kind, create, read_only)
  local why = M.path_problem(path)
  if why then return nil, why, "io" end
  local db, msg, code = core.sqlite_open(path, kind.busy_ms, create ~= false)
  if not db then
    if create == false and msg == "No such file or directory" then msg = "no " .. kind.what .. " at " .. path end
    return nil, msg, code
  end
  local ok
  ok, msg, code = db:exec(read_only and "BEGIN" or "BEGIN IMMEDIATE")
  if ok then
    local app = db:query("PRAGMA application_id")
    local v = db:query("PRAGMA user_version")
    local objects = db:query("SELECT count(*) AS n FROM sqlite_master")
    app, v, objects = app and app[1].application_id, v and v[1].user_version, objects and objects[1].n
    if app == 0 and v == 0 and objects == 0 and not read_only then
      ok, msg, code = db:exec(kind.schema .. string.format("\nPRAGMA application_id = %d; PRAGMA user_version = %d;",
        kind.app, kind.version))
    elseif app ~= kind.app or v ~= kind.version then
      ok, msg, code = nil, "the file is not a dialoginsight " .. kind.what .. " (version "
        .. kind.version .. "): give another path", "sqlite"
    end
    if ok then ok, msg, code = db:exec("COMMIT") else db:exec("ROLLBACK") end
  end
  if ok and not read_only then ok, msg, code = db:exec("PRAGMA journal_mode = WAL") end
  if not ok then
    db:close()
    return nil, msg, code
  end
  return db
end

return M
