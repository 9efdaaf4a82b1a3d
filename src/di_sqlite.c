/*
 * di_sqlite.c: the smallest SQLite binding the event store needs
 * (lua/dialoginsight/webhooks/store.lua), so that nginx workers, batch jobs
 * and a user's `sqlite3` shell share one file with real transactions.
 *
 *   db = core.sqlite_open(path, busy_ms [, create]) -- or nil, message, code
 *   db:exec(sql)                              -- true, or nil, message, code
 *   rows, changes = db:query(sql, ...)        -- or nil, message, code
 *   db:close()
 *
 * query binds its extra arguments to the ?s (nil, boolean, number, string)
 * and returns every row as a table keyed by column name (NULL is absent).
 * code is "busy", "full", "io", "constraint" or "sqlite": a caller answers
 * a busy or full store with "try again later", never with a loss.
 *
 * The file is created 0600 before SQLite opens it, unless create is false
 * (events hold contacts' data; SQLite gives its -wal and -shm files the
 * same mode), and a symbolic link is refused, as for the CLI's outputs.
 * Only a file will do: ":memory:", a "file:" URI or a path with a NUL would
 * acknowledge events that a restart loses, or open another file.  The
 * store's statements need SQLite 3.35 (UPDATE ... RETURNING): an older
 * library is refused at open, not at the first claim.  query runs the first
 * statement of its text.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sqlite3.h>
#include <unistd.h>

#include "di_aux.h"
#include "di_compat.h"
#include "di_core.h"
#include "di_sqlite.h"

#define DI_SQLITE_MT "dialoginsight.sqlite"

/* The statements last used, kept prepared: a sync asks the same two
 * questions of its state a million times a night, and preparing costs more
 * than the lookup itself. */
#define DI_SQL_CACHE 16

typedef struct cached {
  char *sql;
  size_t len;
  sqlite3_stmt *st;
  unsigned long used;
} cached;

typedef struct di_db {
  sqlite3 *db;
  cached cache[DI_SQL_CACHE];
  unsigned long tick;
} di_db;

static void cache_clear(di_db *d) {
  int i;
  for (i = 0; i < DI_SQL_CACHE; i++) {
    sqlite3_finalize(d->cache[i].st);
    free(d->cache[i].sql);
    memset(&d->cache[i], 0, sizeof d->cache[i]);
  }
}

/* The prepared statement of sql (reset, its bindings cleared), from the
 * cache or prepared into it in place of the least recently used; NULL with
 * *rc set when it cannot be prepared, or holds no statement (*rc OK). */
static sqlite3_stmt *statement(di_db *d, const char *sql, size_t len, int *rc) {
  int i, victim = 0;
  cached *c;
  sqlite3_stmt *st = NULL;
  for (i = 0; i < DI_SQL_CACHE; i++) {
    c = &d->cache[i];
    if (c->st != NULL && c->len == len && memcmp(c->sql, sql, len) == 0) {
      sqlite3_reset(c->st);
      sqlite3_clear_bindings(c->st);
      c->used = ++d->tick;
      *rc = SQLITE_OK;
      return c->st;
    }
    if (d->cache[i].used < d->cache[victim].used) victim = i;
  }
  *rc = sqlite3_prepare_v3(d->db, sql, (int)len, SQLITE_PREPARE_PERSISTENT, &st, NULL);
  if (*rc != SQLITE_OK || st == NULL) return NULL;
  c = &d->cache[victim];
  sqlite3_finalize(c->st);
  free(c->sql);
  c->sql = malloc(len ? len : 1);
  if (c->sql == NULL) {
    memset(c, 0, sizeof *c);
    sqlite3_finalize(st);
    *rc = SQLITE_NOMEM;
    return NULL;
  }
  memcpy(c->sql, sql, len);
  c->len = len;
  c->st = st;
  c->used = ++d->tick;
  return st;
}

static const char *code_name(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY: case SQLITE_LOCKED: return "busy";
    case SQLITE_FULL: return "full";
    case SQLITE_CONSTRAINT: return "constraint";
    case SQLITE_IOERR: case SQLITE_CANTOPEN: case SQLITE_READONLY:
    case SQLITE_CORRUPT: case SQLITE_NOTADB: case SQLITE_PERM: return "io";
    default: return "sqlite";
  }
}

static int failed(lua_State *L, sqlite3 *db, int rc) {
  lua_pushnil(L);
  lua_pushstring(L, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  lua_pushstring(L, code_name(rc));
  return 3;
}

static di_db *check_db(lua_State *L) {
  di_db *d = luaL_checkudata(L, 1, DI_SQLITE_MT);
  if (d->db == NULL) luaL_error(L, "attempt to use a closed store");
  return d;
}

static int refused(lua_State *L, const char *why, const char *code) {
  lua_pushnil(L);
  lua_pushstring(L, why);
  lua_pushstring(L, code);
  return 3;
}

sqlite3 *di_sqlite_handle(lua_State *L, int i) {
  di_db *d = luaL_checkudata(L, i, DI_SQLITE_MT);
  if (d->db == NULL) luaL_error(L, "attempt to use a closed store");
  return d->db;
}

static int db_open(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  lua_Number busy = luaL_checknumber(L, 2);
  int create = lua_isnoneornil(L, 3) || lua_toboolean(L, 3);
  di_db *d;
  int rc, fd;
  if (!(busy >= 0 && busy <= 600000)) return luaL_argerror(L, 2, "busy_ms must be 0 to 600000");
  if (sqlite3_libversion_number() < 3035000)
    return refused(L, "SQLite 3.35 or later is needed (UPDATE ... RETURNING)", "sqlite");
  if (len == 0 || strlen(path) != len || strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0)
    return refused(L, "not a file path (\":memory:\", a file: URI, a NUL byte)", "io");
  fd = open(path, O_RDWR | (create ? O_CREAT : 0) | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return refused(L, errno == ELOOP ? "a symbolic link, refused" : strerror(errno), "io");
  close(fd);
  d = lua_newuserdata(L, sizeof *d);
  memset(d, 0, sizeof *d);
  luaL_getmetatable(L, DI_SQLITE_MT);
  lua_setmetatable(L, -2);
  rc = sqlite3_open_v2(path, &d->db,
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
  if (rc != SQLITE_OK) {
    int n = failed(L, d->db, rc);
    sqlite3_close_v2(d->db);
    d->db = NULL;
    return n;
  }
  sqlite3_busy_timeout(d->db, (int)busy);
  sqlite3_extended_result_codes(d->db, 1);
  return 1;
}

static int db_exec(lua_State *L) {
  di_db *d = check_db(L);
  int rc = sqlite3_exec(d->db, luaL_checkstring(L, 2), NULL, NULL, NULL);
  if (rc != SQLITE_OK) return failed(L, d->db, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* Binds the values from index first on; -1 for too many values, -2 for
 * a value of a type SQL cannot hold (both raised by the caller, once the
 * statement is finalized). */
static int bind(lua_State *L, sqlite3_stmt *st, int first) {
  int i, n = lua_gettop(L), rc = SQLITE_OK;
  if (n - first + 1 > sqlite3_bind_parameter_count(st)) return -1;
  for (i = first; i <= n && rc == SQLITE_OK; i++) {
    int at = i - first + 1;
    switch (lua_type(L, i)) {
      case LUA_TNIL: rc = sqlite3_bind_null(st, at); break;
      case LUA_TBOOLEAN: rc = sqlite3_bind_int(st, at, lua_toboolean(L, i)); break;
      case LUA_TNUMBER:
        if (di_isinteger(L, i)) rc = sqlite3_bind_int64(st, at, (sqlite3_int64)lua_tointeger(L, i));
        else rc = sqlite3_bind_double(st, at, lua_tonumber(L, i));
        break;
      case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, i, &len);
        rc = sqlite3_bind_text64(st, at, s, len, SQLITE_TRANSIENT, SQLITE_UTF8);
        break;
      }
      default: return -2;
    }
  }
  return rc;
}

static void push_column(lua_State *L, sqlite3_stmt *st, int c) {
  switch (sqlite3_column_type(st, c)) {
    case SQLITE_INTEGER: lua_pushinteger(L, (lua_Integer)sqlite3_column_int64(st, c)); break;
    case SQLITE_FLOAT: lua_pushnumber(L, sqlite3_column_double(st, c)); break;
    case SQLITE_NULL: lua_pushnil(L); break;
    default: {
      const char *p = (const char *)sqlite3_column_blob(st, c);
      lua_pushlstring(L, p ? p : "", (size_t)sqlite3_column_bytes(st, c));
    }
  }
}

static int db_query(lua_State *L) {
  di_db *d = check_db(L);
  size_t len;
  const char *sql = luaL_checklstring(L, 2, &len);
  int rc, row = 0, cols;
  sqlite3_stmt *st = statement(d, sql, len, &rc);
  if (rc != SQLITE_OK) return failed(L, d->db, rc);
  if (st == NULL) { /* no statement in the text: nothing to run */
    lua_newtable(L);
    lua_pushinteger(L, 0);
    return 2;
  }
  rc = bind(L, st, 3);
  if (rc < 0) {
    sqlite3_clear_bindings(st);
    return luaL_error(L, rc == -1 ? "query: more values than parameters"
                                  : "query: a value is not nil, a boolean, a number or a string");
  }
  if (rc != SQLITE_OK) return failed(L, d->db, rc);
  lua_newtable(L);
  cols = sqlite3_column_count(st);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int c;
    lua_createtable(L, 0, cols);
    for (c = 0; c < cols; c++) {
      push_column(L, st, c);
      lua_setfield(L, -2, sqlite3_column_name(st, c));
    }
    lua_rawseti(L, -2, ++row);
  }
  if (rc != SQLITE_DONE) {
    lua_pop(L, 1);
    rc = failed(L, d->db, rc);
    sqlite3_reset(st); /* ends a read transaction the statement held */
    return rc;
  }
  /* reset now, not at the next use: a finished SELECT would otherwise keep
   * its read transaction open, and the WAL could not be checkpointed */
  sqlite3_reset(st);
  lua_pushinteger(L, sqlite3_changes(d->db));
  return 2;
}

static int db_close(lua_State *L) {
  di_db *d = luaL_checkudata(L, 1, DI_SQLITE_MT);
  if (d->db != NULL) {
    cache_clear(d);
    sqlite3_close_v2(d->db);
    d->db = NULL;
  }
  return 0;
}

void di_sqlite_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"exec", db_exec},
    {"query", db_query},
    {"close", db_close},
    {NULL, NULL}
  };
  di_new_class(L, DI_SQLITE_MT, methods, db_close, NULL);
  lua_pushcfunction(L, db_open);
  lua_setfield(L, -2, "sqlite_open");
}
