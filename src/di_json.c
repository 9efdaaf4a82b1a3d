/*
 * di_json.c: JSON for the wire.
 *
 * Decoding is one strict pass in C (src/di_json_pick.c), the same parser as
 * the Merge outcomes' reader: only RFC 8259 JSON (no NaN, Infinity, hex, "1.",
 * raw control characters, lone surrogates), integers within 2^53 as Lua
 * integers, a number a double cannot hold exactly as the text the server wrote
 * (di_json_scan.c), and JSON null members of objects absent, so that a missing
 * and a null field read the same, as nil (`if r.ErrorCode then` never lies).
 * Until issue 26 it was lua-cjson between a scan and a walk that fixed what
 * cjson 2.1.0 gets wrong for this API: three passes where one does.
 *
 * Encoding is our own, because lua-cjson cannot do three things a
 * request needs: emit an empty array as [], keep integers exact (it prints
 * 14 significant digits), and refuse invalid UTF-8 instead of sending it.
 * Owning the encoder also lets a refusal name the exact field at fault
 * ("Records[3].Data.f_City: invalid UTF-8 at byte 7"), which is what a user
 * fixing a CSV row needs to see.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "di_compat.h"
#include "di_buf.h"
#include "di_core.h"
#include "di_json.h"
#include "di_json_write.h"

/* Deep enough for any OFC4 payload (clauses nest a handful of levels), shallow
 * enough that a runaway structure is refused before the C stack suffers. */
#define DI_JSON_MAX_DEPTH 64

/* Registry key (its address, as a lightuserdata) of the metatable that marks
 * a Lua table as a JSON array, so that an empty one encodes as [] rather
 * than {}.  Only the encoder and core.array need it: Lua reaches the same
 * table as core.array_mt. */
static const char array_mt_key[] = "dialoginsight.array";

/* One step of the path from the root to the value being encoded; lives on
 * the C stack of the recursive encoder, so building it costs nothing unless
 * an error needs to be reported. */
typedef struct path_seg {
  const struct path_seg *up;
  const char *key; /* object member, or NULL for an array element */
  size_t keylen;
  lua_Integer index;
} path_seg;

typedef struct encoder {
  lua_State *L;
  di_buf *out;
  int depth;
  const void *open[DI_JSON_MAX_DEPTH]; /* tables being encoded, for cycles */
  di_buf err; /* set when the encoding failed */
} encoder;

static void format_path(di_buf *b, const path_seg *p) {
  const path_seg *segs[DI_JSON_MAX_DEPTH + 2];
  int n = 0, i;
  char num[32];
  for (; p != NULL && n < (int)(sizeof segs / sizeof *segs); p = p->up)
    if (p->up != NULL) segs[n++] = p; /* the root has no name */
  if (n == 0) { di_buf_add(b, "(value)", 7); return; }
  for (i = n - 1; i >= 0; i--) {
    if (segs[i]->key != NULL) {
      if (i != n - 1) di_buf_addc(b, '.');
      di_buf_add(b, segs[i]->key, segs[i]->keylen);
    } else {
      int len = snprintf(num, sizeof num, "[%lld]", (long long)segs[i]->index);
      di_buf_add(b, num, (size_t)len);
    }
  }
}

static int fail(encoder *e, const path_seg *p, const char *what) {
  if (e->err.len == 0) { /* keep the innermost, first reported cause */
    format_path(&e->err, p);
    di_buf_add(&e->err, ": ", 2);
    di_buf_add(&e->err, what, strlen(what));
  }
  return 0;
}

static int encode_string(encoder *e, const path_seg *p, const char *str,
                         size_t len) {
  size_t bad;
  char msg[64];
  if (di_json_put_string(e->out, str, len, &bad)) return 1;
  if (bad == 0) return fail(e, p, "out of memory");
  snprintf(msg, sizeof msg, "invalid UTF-8 at byte %zu", bad);
  return fail(e, p, msg);
}

static int encode_number(encoder *e, const path_seg *p, int idx) {
  const char *why = di_json_put_number(e->out, e->L, idx);
  return why ? fail(e, p, why) : 1;
}

/* Classifies the table at idx: returns its length if it is an array (keys
 * exactly 1..n), -1 if it is an object (string keys only); on a table that is
 * neither it reports the cause and returns -2.  An empty table is an object
 * unless marked with di.array(), since Lua cannot tell them apart. */
static lua_Integer table_shape(encoder *e, const path_seg *p, int idx) {
  lua_State *L = e->L;
  lua_Integer count = 0, max = 0;
  int strings = 0, marked = 0;
  char msg[96];
  if (lua_getmetatable(L, idx)) {
    lua_pushlightuserdata(L, (void *)array_mt_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    marked = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      strings = 1;
    } else if (lua_type(L, -1) == LUA_TNUMBER) {
      lua_Number k = lua_tonumber(L, -1);
      if (k < 1 || floor(k) != k || k > INT_MAX) {
        lua_pop(L, 1);
        snprintf(msg, sizeof msg, "table key %.14g is neither a field name "
                 "nor an array index", (double)k);
        return fail(e, p, msg), -2;
      }
      count++;
      if ((lua_Integer)k > max) max = (lua_Integer)k;
    } else {
      snprintf(msg, sizeof msg, "a table key of type %s cannot be encoded",
               luaL_typename(L, -1));
      lua_pop(L, 1);
      return fail(e, p, msg), -2;
    }
  }
  if (strings && count) return fail(e, p, "table mixes array items and named "
                                          "fields"), -2;
  if (strings) return marked ? (fail(e, p, "table marked as array has named "
                                           "fields"), -2) : -1;
  if (count == 0) return marked ? 0 : -1;
  if (max != count) {
    lua_Integer i;
    for (i = 1; i <= max; i++) {
      lua_rawgeti(L, idx, (int)i);
      if (lua_isnil(L, -1)) { lua_pop(L, 1); break; }
      lua_pop(L, 1);
    }
    snprintf(msg, sizeof msg, "array has a nil hole at index %lld",
             (long long)i);
    return fail(e, p, msg), -2;
  }
  return count;
}

static int encode_value(encoder *e, const path_seg *p, int idx);

static int is_marked_array(lua_State *L, int idx) {
  int marked = 0;
  if (lua_getmetatable(L, idx)) {
    lua_pushlightuserdata(L, (void *)array_mt_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    marked = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  return marked;
}

/* Encodes the members of an object whose first key/value pair lua_next has
 * just pushed.  Returns 1 when done, 0 on failure, and -1 (stack restored)
 * when a key is not a string: the caller then lets table_shape name the
 * fault, exactly as for any other malformed table. */
static int encode_members(encoder *e, const path_seg *p, int idx) {
  lua_State *L = e->L;
  int first = 1;
  di_buf_addc(e->out, '{');
  do {
    size_t klen;
    const char *key;
    path_seg seg;
    if (lua_type(L, -2) != LUA_TSTRING) { lua_pop(L, 2); return -1; }
    key = lua_tolstring(L, -2, &klen);
    seg.up = p; seg.key = key; seg.keylen = klen; seg.index = 0;
    if (!first) di_buf_addc(e->out, ',');
    first = 0;
    if (!encode_string(e, &seg, key, klen)) return 0;
    di_buf_addc(e->out, ':');
    if (!encode_value(e, &seg, lua_gettop(L))) return 0;
    lua_pop(L, 1);
  } while (lua_next(L, idx) != 0);
  di_buf_addc(e->out, '}');
  return 1;
}

static int encode_table(encoder *e, const path_seg *p, int idx) {
  lua_State *L = e->L;
  const void *self = lua_topointer(L, idx);
  lua_Integer n, i;
  int k;
  for (k = 0; k < e->depth; k++)
    if (e->open[k] == self) return fail(e, p, "table contains itself (cycle)");
  if (e->depth >= DI_JSON_MAX_DEPTH)
    return fail(e, p, "nested deeper than 64 levels");
  if (!lua_checkstack(L, 4)) return fail(e, p, "Lua stack overflow");
  e->open[e->depth++] = self;
  /* Most tables of a request are objects (records, their ID and Data):
   * encode them in the pass that checks their keys, rather than walking
   * every object twice.  Arrays, marked tables and bad keys go through
   * table_shape. */
  if (!is_marked_array(L, idx)) {
    size_t mark = e->out->len;
    int top = lua_gettop(L);
    lua_pushnil(L);
    if (lua_next(L, idx) != 0 && lua_type(L, -2) == LUA_TSTRING) {
      int r = encode_members(e, p, idx);
      if (r == 0) return 0;
      if (r == 1) goto done;
      e->out->len = mark; /* a non-string key: undo, and classify below */
    }
    lua_settop(L, top);
  }
  n = table_shape(e, p, idx);
  if (n == -2) return 0;
  if (n >= 0) {
    di_buf_addc(e->out, '[');
    for (i = 1; i <= n; i++) {
      path_seg seg = {p, NULL, 0, i};
      if (i > 1) di_buf_addc(e->out, ',');
      lua_rawgeti(L, idx, (int)i);
      if (!encode_value(e, &seg, lua_gettop(L))) return 0;
      lua_pop(L, 1);
    }
    di_buf_addc(e->out, ']');
  } else {
    di_buf_add(e->out, "{}", 2); /* an empty, unmarked table */
  }
done:
  e->depth--;
  return e->out->oom ? fail(e, p, "out of memory") : 1;
}

/* The classes of raw arrays: a set of metatables in the registry, under a
 * key Lua code cannot name.  A userdata is one when its metatable is in the
 * set (by identity: a mark inside the metatable could be copied to another
 * class's by any Lua code that reads it). */
static const char raw_array_key = 0;

void di_json_mark_raw_array(lua_State *L, int mt_idx) {
  mt_idx = di_absindex(L, mt_idx);
  lua_pushlightuserdata(L, (void *)&raw_array_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushlightuserdata(L, (void *)&raw_array_key);
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
  }
  lua_pushvalue(L, mt_idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

static int is_raw_array(lua_State *L, int idx) {
  int marked;
  if (!lua_checkstack(L, 3) || !lua_getmetatable(L, idx)) return 0;
  lua_pushlightuserdata(L, (void *)&raw_array_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  if (!lua_istable(L, -1)) { lua_pop(L, 2); return 0; }
  lua_pushvalue(L, -2);
  lua_rawget(L, -2);
  marked = lua_toboolean(L, -1);
  lua_pop(L, 3);
  return marked;
}

static int encode_value(encoder *e, const path_seg *p, int idx) {
  lua_State *L = e->L;
  size_t len;
  const char *s;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    return di_buf_add(e->out, "null", 4) || fail(e, p, "out of memory");
  case LUA_TBOOLEAN:
    return (lua_toboolean(L, idx) ? di_buf_add(e->out, "true", 4)
                                  : di_buf_add(e->out, "false", 5)) ||
           fail(e, p, "out of memory");
  case LUA_TNUMBER:
    return encode_number(e, p, idx);
  case LUA_TSTRING:
    s = lua_tolstring(L, idx, &len);
    return encode_string(e, p, s, len);
  case LUA_TTABLE:
    return encode_table(e, p, idx);
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) /* cjson.null and di.null */
      return di_buf_add(e->out, "null", 4) || fail(e, p, "out of memory");
    break;
  case LUA_TUSERDATA:
    if (is_raw_array(L, idx)) {
      const di_buf *items = (const di_buf *)lua_touserdata(L, idx);
      /* a batch inside a record added to itself: copying a buffer into
       * itself reads it after the reserve moved it */
      if (items == e->out) return fail(e, p, "a row batch cannot hold itself");
      return (di_buf_addc(e->out, '[') && di_buf_add(e->out, items->data, items->len) &&
              di_buf_addc(e->out, ']')) || fail(e, p, "out of memory");
    }
    break;
  default:
    break;
  }
  {
    char msg[64];
    snprintf(msg, sizeof msg, "a %s cannot be encoded as JSON",
             luaL_typename(L, idx));
    return fail(e, p, msg);
  }
}

int di_json_encode(lua_State *L, int idx, di_buf *out, di_buf *err) {
  encoder e;
  path_seg root = {NULL, NULL, 0, 0};
  int ok;
  e.L = L;
  e.out = out;
  e.depth = 0;
  di_buf_init(&e.err);
  ok = encode_value(&e, &root, di_absindex(L, idx)) && !out->oom;
  if (!ok) di_buf_add(err, e.err.data, e.err.len);
  di_buf_free(&e.err);
  return ok;
}

/* encode(value) -> string | nil, "path: reason" */
static int json_encode(lua_State *L) {
  di_buf out, err;
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  di_buf_init(&out);
  di_buf_init(&err);
  if (di_json_encode(L, 1, &out, &err)) {
    lua_pushlstring(L, out.data, out.len);
    di_buf_free(&out);
    return 1;
  }
  di_buf_free(&out);
  lua_pushnil(L);
  if (err.len) lua_pushlstring(L, err.data, err.len);
  else lua_pushliteral(L, "out of memory while encoding JSON");
  di_buf_free(&err);
  return 2;
}

/* decode(string) -> value | nil, message: one strict pass (src/di_json_pick.c). */
static int json_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  lua_settop(L, 1);
  return di_json_decode_text(L, s, len);
}

/* encode_body(params, head, idProject) -> string | nil, "path: reason" | false
 * A request's body without a copy of params: `{` head (the client's AuthKey
 * member, encoded once), then idProject (a number, or nil: none) unless params
 * has its own (not false), then params' members but AuthKey.  Params are read
 * raw: call/request.lua copies those with a metatable instead.  false when params has a key
 * that is not a string: the caller encodes a copy, and the encoder names the
 * fault as for any table (call/request.lua). */
static int json_encode_body(lua_State *L) {
  di_buf out;
  encoder e;
  path_seg root = {NULL, NULL, 0, 0};
  size_t hlen;
  const char *head = luaL_checklstring(L, 2, &hlen);
  int has_params = !lua_isnoneornil(L, 1), ok = 1, own_project = 0;
  if (has_params) luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 3);
  di_buf_init(&out);
  e.L = L; e.out = &out; e.depth = 0;
  di_buf_init(&e.err);
  di_buf_addc(&out, '{');
  di_buf_add(&out, head, hlen);
  if (has_params) { /* raw, as the members are read: no metamethod runs while out is held */
    lua_pushliteral(L, "idProject");
    lua_rawget(L, 1);
    own_project = !lua_isnil(L, -1) && !(lua_isboolean(L, -1) && !lua_toboolean(L, -1));
    lua_pop(L, 1);
  }
  if (!own_project && !lua_isnil(L, 3)) {
    path_seg seg = {&root, "idProject", 9, 0};
    di_buf_add(&out, ",\"idProject\":", 13);
    ok = encode_value(&e, &seg, 3);
  }
  if (ok && has_params) {
    e.open[e.depth++] = lua_topointer(L, 1); /* a member holding params is a cycle */
    lua_pushnil(L);
    while (ok && lua_next(L, 1) != 0) {
      size_t klen;
      const char *key;
      path_seg seg;
      if (lua_type(L, -2) != LUA_TSTRING) {
        di_buf_free(&out);
        di_buf_free(&e.err);
        lua_pushboolean(L, 0);
        return 1;
      }
      key = lua_tolstring(L, -2, &klen);
      /* not AuthKey (the client's), nor an idProject of false (none: the client's) */
      if (!(klen == 7 && memcmp(key, "AuthKey", 7) == 0) &&
          !(!own_project && klen == 9 && memcmp(key, "idProject", 9) == 0)) {
        seg.up = &root; seg.key = key; seg.keylen = klen; seg.index = 0;
        di_buf_addc(&out, ',');
        ok = encode_string(&e, &seg, key, klen);
        if (ok) { di_buf_addc(&out, ':'); ok = encode_value(&e, &seg, lua_gettop(L)); }
      }
      lua_pop(L, 1);
    }
  }
  di_buf_addc(&out, '}');
  if (ok && !out.oom) {
    lua_pushlstring(L, out.data, out.len);
    di_buf_free(&out);
    di_buf_free(&e.err);
    return 1;
  }
  di_buf_free(&out);
  lua_pushnil(L);
  if (e.err.len) lua_pushlstring(L, e.err.data, e.err.len);
  else lua_pushliteral(L, "out of memory while encoding JSON");
  di_buf_free(&e.err);
  return 2;
}

static int json_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) { lua_settop(L, 0); lua_newtable(L); }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_pushlightuserdata(L, (void *)array_mt_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  lua_setmetatable(L, 1);
  return 1;
}

void di_json_open(lua_State *L) {
  lua_pushcfunction(L, json_decode);
  lua_setfield(L, -2, "decode");

  /* The marker metatable for arrays, kept in the registry under a
   * lightuserdata key so no other library can clash with it. */
  lua_pushlightuserdata(L, (void *)array_mt_key);
  lua_newtable(L);
  lua_pushliteral(L, "array");
  lua_setfield(L, -2, "__name");
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "array_mt");
  lua_rawset(L, LUA_REGISTRYINDEX);

  lua_pushcfunction(L, json_encode);
  lua_setfield(L, -2, "encode");
  lua_pushcfunction(L, json_encode_body);
  lua_setfield(L, -2, "encode_body");
  lua_pushcfunction(L, json_array);
  lua_setfield(L, -2, "array");
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
}
