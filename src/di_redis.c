/*
 * di_redis.c: a minimal Redis client on hiredis, for the limiter backend
 * that a fleet of hosts shares (lua/dialoginsight/limiter/redis.lua).
 *
 *   local r = core.redis_connect{ host=, port= } or { path= }, timeout = s }
 *                                      -- or nil, message
 *   value = r:command("EVALSHA", sha, 1, key, ...)
 *                                      -- integer, string, list, or nil;
 *                                      -- nil, message, "redis" for an error
 *                                      -- reply (NOSCRIPT...), nil, message,
 *                                      -- "io" when the connection failed
 *   r:close()
 *
 * Blocking, with one timeout for connecting and for every command, in the
 * tens of milliseconds: a limiter decision must never hold a call longer.
 * After an "io" failure the connection is unusable (hiredis keeps the
 * error); the Lua side drops it, falls back to the local limiter and
 * connects again later.  The protocol logic (AUTH, SELECT, scripts) is in
 * Lua; this file only moves commands and replies.
 */
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "di_aux.h"
#include "di_core.h"

#define DI_REDIS_MT "dialoginsight.redis"
#define DI_REDIS_MAX_ARGS 32

typedef struct di_redis {
  redisContext *c;
} di_redis;

static struct timeval to_timeval(lua_Number secs) {
  struct timeval tv;
  if (!(secs > 0)) secs = 0.001;
  if (secs > 60) secs = 60;
  tv.tv_sec = (time_t)secs;
  tv.tv_usec = (suseconds_t)((secs - (lua_Number)tv.tv_sec) * 1e6);
  return tv;
}

/* redis_connect{ host=, port= | path=, timeout= } -> conn | nil, message.
 * The message names the address, never a password (the caller sends AUTH
 * itself). */
static int redis_connect(lua_State *L) {
  const char *host, *path;
  lua_Integer port;
  struct timeval tv;
  redisContext *c;
  di_redis *r;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "host");
  lua_getfield(L, 1, "port");
  lua_getfield(L, 1, "path");
  lua_getfield(L, 1, "timeout");
  host = lua_tostring(L, -4);
  port = lua_isnil(L, -3) ? 6379 : luaL_checkinteger(L, -3);
  path = lua_tostring(L, -2);
  tv = to_timeval(luaL_optnumber(L, -1, 0.05));
  if (path == NULL && host == NULL) return luaL_error(L, "redis_connect needs host or path");
  if (port < 1 || port > 65535) return luaL_error(L, "redis_connect: bad port");
  c = path ? redisConnectUnixWithTimeout(path, tv)
           : redisConnectWithTimeout(host, (int)port, tv);
  if (c == NULL || c->err) {
    lua_pushnil(L);
    if (path) lua_pushfstring(L, "cannot connect to Redis at %s: %s", path,
                              c ? c->errstr : "out of memory");
    else lua_pushfstring(L, "cannot connect to Redis at %s:%d: %s", host, (int)port,
                         c ? c->errstr : "out of memory");
    if (c) redisFree(c);
    return 2;
  }
  /* the same bound for every command as for connecting */
  redisSetTimeout(c, tv);
  r = lua_newuserdata(L, sizeof *r);
  r->c = c;
  luaL_getmetatable(L, DI_REDIS_MT);
  lua_setmetatable(L, -2);
  return 1;
}

static di_redis *check_redis(lua_State *L) {
  di_redis *r = luaL_checkudata(L, 1, DI_REDIS_MT);
  if (r->c == NULL) luaL_error(L, "attempt to use a closed Redis connection");
  return r;
}

/* Pushes a reply as a Lua value (depth-first for arrays). */
static void push_reply(lua_State *L, const redisReply *rep, int depth) {
  size_t i;
  switch (rep->type) {
  case REDIS_REPLY_INTEGER:
    lua_pushinteger(L, (lua_Integer)rep->integer);
    break;
  case REDIS_REPLY_STRING:
  case REDIS_REPLY_STATUS:
    lua_pushlstring(L, rep->str, rep->len);
    break;
  case REDIS_REPLY_ARRAY:
    lua_createtable(L, (int)rep->elements, 0);
    for (i = 0; i < rep->elements && depth < 8; i++) {
      push_reply(L, rep->element[i], depth + 1);
      lua_rawseti(L, -2, (int)i + 1);
    }
    break;
  default: /* nil, and what cannot nest here */
    lua_pushnil(L);
  }
}

/* conn:command(arg, ...) -> value | nil, message, "redis" | "io" */
static int redis_command(lua_State *L) {
  di_redis *r = check_redis(L);
  const char *argv[DI_REDIS_MAX_ARGS];
  size_t lens[DI_REDIS_MAX_ARGS];
  int argc = lua_gettop(L) - 1, i;
  redisReply *rep;
  if (argc < 1 || argc > DI_REDIS_MAX_ARGS)
    return luaL_error(L, "command takes 1 to %d arguments", DI_REDIS_MAX_ARGS);
  for (i = 0; i < argc; i++) argv[i] = luaL_checklstring(L, i + 2, &lens[i]);
  rep = redisCommandArgv(r->c, argc, argv, lens);
  if (rep == NULL) {
    lua_pushnil(L);
    lua_pushstring(L, r->c->errstr[0] ? r->c->errstr : "Redis connection failed");
    lua_pushliteral(L, "io");
    return 3;
  }
  if (rep->type == REDIS_REPLY_ERROR) {
    lua_pushnil(L);
    lua_pushlstring(L, rep->str, rep->len);
    lua_pushliteral(L, "redis");
    freeReplyObject(rep);
    return 3;
  }
  push_reply(L, rep, 0);
  freeReplyObject(rep);
  return 1;
}

static int redis_close(lua_State *L) {
  di_redis *r = luaL_checkudata(L, 1, DI_REDIS_MT);
  if (r->c) {
    redisFree(r->c);
    r->c = NULL;
  }
  return 0;
}

static const luaL_Reg redis_methods[] = {
    {"command", redis_command},
    {"close", redis_close},
    {NULL, NULL}};

void di_redis_open(lua_State *L) {
  di_new_class(L, DI_REDIS_MT, redis_methods, redis_close, NULL);
  lua_pushcfunction(L, redis_connect);
  lua_setfield(L, -2, "redis_connect");
}
