/*
 * di_keyset.c: a sync state's index in memory (lua/dialoginsight/cli/sync/state.lua).
 * A nightly --changed-only run asks, for each of a million rows, "is this
 * key's record the one last confirmed?"; asked of SQLite from Lua, that
 * cost 7 times the dry run (bench/README.md, scenario 9).  The state's keys
 * are loaded once into an open-addressing table of 64-bit hashes (FNV-1a of
 * the key's text and of the record's JSON: a collision, 2^-64 per pair,
 * could only make a changed row look unchanged, and the state keeps the
 * record for --plan's diff), 34 bytes a key at most (half the slots used).
 *
 *   local ix = core.keyset(expected)        -- sized for expected keys
 *   ix:load(db, sql)       -- rows of (key TEXT or its hash64, h INTEGER, hold INTEGER), read
 *                          -- in C: hold marks a key that is never skipped
 *   h, held = ix:look(key)   -- the record hash (nil: not in the state), and
 *                            -- whether held or sent; marks the key seen; a
 *                            -- key is its text or its core.hash64
 *   ix:sent(key)           -- a row of the key goes out in this run
 *   ix:hold(key)           -- the key is never skipped from now on
 *   n = ix:unseen()        -- keys of the state no row of this run had
 *   ix:seen(key)           -- whether a row of this run had key
 *   core.hash64(s)         -- FNV-1a 64 of s, as an integer (Lua 5.4's 64 bits:
 *                          -- under Lua 5.1 a hash is rounded, and only compared)
 */
#include <stdlib.h>
#include <string.h>

#include "di_aux.h"
#include "di_compat.h"
#include "di_core.h"
#include "di_hash.h"
#include "di_sqlite.h"

#define KEYSET_MT "dialoginsight.keyset"

enum { F_USED = 1, F_STATE = 2, F_HOLD = 4, F_SENT = 8, F_SEEN = 16 };

typedef struct slot {
  uint64_t k, h;
} slot;

/* The flags apart from the slots: 16 bytes a slot, not 24 (a million keys: 32 MB). */
typedef struct keyset {
  slot *s;
  unsigned char *f;
  size_t cap, n; /* cap a power of two, n <= cap / 2 */
} keyset;

static keyset *check(lua_State *L) {
  keyset *ks = luaL_checkudata(L, 1, KEYSET_MT);
  if (ks->s == NULL) luaL_error(L, "attempt to use a closed keyset");
  return ks;
}

static int grow(keyset *ks, size_t cap);

/* The index of k's slot: its own, or the empty one where it would go. */
static size_t find(const keyset *ks, uint64_t k) {
  size_t i = (size_t)(k ^ (k >> 29)) & (ks->cap - 1);
  while ((ks->f[i] & F_USED) && ks->s[i].k != k) i = (i + 1) & (ks->cap - 1);
  return i;
}

/* The index of k's slot, made when absent; (size_t)-1 when memory ran out. */
static size_t place(keyset *ks, uint64_t k) {
  size_t i;
  if ((ks->n + 1) * 2 > ks->cap && !grow(ks, ks->cap * 2)) return (size_t)-1;
  i = find(ks, k);
  if (!(ks->f[i] & F_USED)) {
    ks->s[i].k = k;
    ks->s[i].h = 0;
    ks->f[i] = F_USED;
    ks->n++;
  }
  return i;
}

static int grow(keyset *ks, size_t cap) {
  slot *old = ks->s;
  unsigned char *oldf = ks->f;
  size_t i, oldcap = ks->cap;
  slot *s = calloc(cap, sizeof *s);
  unsigned char *f = calloc(cap, 1);
  if (s == NULL || f == NULL) {
    free(s);
    free(f);
    return 0;
  }
  ks->s = s;
  ks->f = f;
  ks->cap = cap;
  for (i = 0; i < oldcap; i++)
    if (oldf[i] & F_USED) {
      size_t j = find(ks, old[i].k);
      ks->s[j] = old[i];
      ks->f[j] = oldf[i];
    }
  free(old);
  free(oldf);
  return 1;
}

/* A key given as its text, or as its core.hash64 (an integer). */
static uint64_t key_hash(lua_State *L, int i) {
  size_t len;
  const char *k;
  if (lua_type(L, i) == LUA_TNUMBER) return (uint64_t)luaL_checkinteger(L, i);
  k = luaL_checklstring(L, i, &len);
  return di_fnv(DI_FNV_BASIS, k, len);
}

static int keyset_new(lua_State *L) {
  lua_Number want = luaL_optnumber(L, 1, 1024);
  size_t cap = 64;
  keyset *ks;
  while ((lua_Number)cap < want * 2 && cap < ((size_t)1 << 40)) cap *= 2;
  ks = lua_newuserdata(L, sizeof *ks);
  ks->s = calloc(cap, sizeof *ks->s);
  ks->f = calloc(cap, 1);
  ks->cap = cap;
  ks->n = 0;
  luaL_getmetatable(L, KEYSET_MT);
  lua_setmetatable(L, -2);
  if (ks->s == NULL || ks->f == NULL) return luaL_error(L, "keyset: out of memory");
  return 1;
}

/* Steps sql on db (a core.sqlite_open object) in C. */
static int keyset_load(lua_State *L) {
  keyset *ks = check(L);
  sqlite3 *db = di_sqlite_handle(L, 2);
  const char *sql = luaL_checkstring(L, 3);
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK) {
    lua_pushnil(L);
    lua_pushstring(L, sqlite3_errmsg(db));
    return 2;
  }
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    /* the key's text, or its hash already made (an integer column) */
    size_t i;
    if (sqlite3_column_type(st, 0) == SQLITE_INTEGER) {
      i = place(ks, (uint64_t)sqlite3_column_int64(st, 0));
    } else {
      const void *k = sqlite3_column_blob(st, 0);
      i = place(ks, di_fnv(DI_FNV_BASIS, k ? k : "", (size_t)sqlite3_column_bytes(st, 0)));
    }
    if (i == (size_t)-1) {
      sqlite3_finalize(st);
      return luaL_error(L, "keyset: out of memory");
    }
    if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
      ks->s[i].h = (uint64_t)sqlite3_column_int64(st, 1);
      ks->f[i] |= F_STATE;
    }
    if (sqlite3_column_int(st, 2)) ks->f[i] |= F_HOLD;
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    lua_pushnil(L);
    lua_pushstring(L, sqlite3_errstr(rc));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int keyset_look(lua_State *L) {
  keyset *ks = check(L);
  size_t i = place(ks, key_hash(L, 2));
  if (i == (size_t)-1) return luaL_error(L, "keyset: out of memory");
  ks->f[i] |= F_SEEN;
  if (ks->f[i] & F_STATE) lua_pushinteger(L, (lua_Integer)ks->s[i].h);
  else lua_pushnil(L);
  lua_pushboolean(L, (ks->f[i] & (F_HOLD | F_SENT)) != 0);
  return 2;
}

static int keyset_sent(lua_State *L) {
  keyset *ks = check(L);
  size_t i = place(ks, key_hash(L, 2));
  if (i == (size_t)-1) return luaL_error(L, "keyset: out of memory");
  ks->f[i] |= F_SEEN | F_SENT;
  return 0;
}

/* ix:hold(key): never skipped from now on (another key of its contact goes out) */
static int keyset_hold(lua_State *L) {
  keyset *ks = check(L);
  size_t i = place(ks, key_hash(L, 2));
  if (i == (size_t)-1) return luaL_error(L, "keyset: out of memory");
  ks->f[i] |= F_HOLD;
  return 0;
}

static int keyset_seen(lua_State *L) {
  keyset *ks = check(L);
  size_t i = find(ks, key_hash(L, 2));
  lua_pushboolean(L, (ks->f[i] & F_USED) && (ks->f[i] & F_SEEN));
  return 1;
}

static int keyset_unseen(lua_State *L) {
  keyset *ks = check(L);
  size_t i, n = 0;
  for (i = 0; i < ks->cap; i++)
    if ((ks->f[i] & F_STATE) && !(ks->f[i] & F_SEEN)) n++;
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

static int keyset_close(lua_State *L) {
  keyset *ks = luaL_checkudata(L, 1, KEYSET_MT);
  free(ks->s);
  free(ks->f);
  ks->s = NULL;
  ks->f = NULL;
  return 0;
}

static int hash64(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)key_hash(L, 1));
  return 1;
}

void di_keyset_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"load", keyset_load}, {"look", keyset_look}, {"sent", keyset_sent}, {"hold", keyset_hold},
    {"seen", keyset_seen}, {"unseen", keyset_unseen}, {"close", keyset_close},
    {NULL, NULL}
  };
  di_new_class(L, KEYSET_MT, methods, keyset_close, NULL);
  lua_pushcfunction(L, keyset_new);
  lua_setfield(L, -2, "keyset");
  lua_pushcfunction(L, hash64);
  lua_setfield(L, -2, "hash64");
}
