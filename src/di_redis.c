/*
 * di_redis.c: a minimal Redis client on hiredis, for the limiter backend
 * that a fleet of hosts shares (lua/dialoginsight/limiter/redis.lua).
 *
 *   local r = core.redis_connect{ host=, port= } or { path= }, timeout = s }
 *                                      -- or nil, message
 *   value = r:command(budget_s, "EVALSHA", sha, 1, key, ...)
 *                                      -- integer, string, list (with n, its
 *                                      -- length), or nil; nil, message,
 *                                      -- "redis" for an error reply
 *                                      -- (NOSCRIPT...); nil, message, "io"
 *                                      -- when the exchange failed
 *   r:close()
 *
 * A limiter decision must never hold a call longer than its budget, in the
 * tens of milliseconds, whatever Redis does.  hiredis's own timeout is per
 * read(): a Redis that drips its reply a byte at a time would hold a
 * command for as long as it likes.  So hiredis only connects, formats and
 * parses here; the bytes move through poll() on the socket, each wait cut
 * to what is left of the command's budget, and read() only after poll
 * said the socket is readable.  A reply may hold at most
 * DI_REDIS_MAX_REPLY bytes and lists of DI_REDIS_MAX_ELEMENTS (ours are a
 * sha or two integers): more is refused before it is kept.
 * hiredis's connect does not bound the name lookup (a silent name server
 * held every call 20 s): a host name is resolved here first, within the
 * connect's timeout (resolve), and hiredis is given the numeric address.
 * After an "io" failure the connection is unusable (its reply may still be
 * on the way); the Lua side drops it, falls back to the local limiter and
 * connects again later.  The protocol logic (AUTH, SELECT, scripts, what a
 * valid reply is) is in Lua; this file only moves commands and replies.
 */
#define _GNU_SOURCE /* getaddrinfo_a */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "di_aux.h"
#include "di_core.h"
#include "di_time.h"

#define DI_REDIS_MT "dialoginsight.redis"
#define DI_REDIS_MAX_ARGS 32
#define DI_REDIS_MAX_REPLY 65536
#define DI_REDIS_MAX_ELEMENTS 64
#define DI_REDIS_MAX_BUDGET 60.0

typedef struct di_redis {
  redisContext *c;
  redisReplyObjectFunctions fn; /* hiredis's, but for createArray */
  void *(*create_array)(const redisReadTask *, int);
  int too_many; /* the reply being read announced a list too long */
} di_redis;

static struct timeval to_timeval(lua_Number secs) {
  struct timeval tv;
  /* 1 ms at least: a timeval of 0 is no timeout to setsockopt */
  if (!(secs >= 0.001)) secs = 0.001;
  if (secs > DI_REDIS_MAX_BUDGET) secs = DI_REDIS_MAX_BUDGET;
  tv.tv_sec = (time_t)secs;
  tv.tv_usec = (suseconds_t)((secs - (lua_Number)tv.tv_sec) * 1e6);
  return tv;
}

/* A name lookup, bounded.  getaddrinfo_a (glibc) runs it in a helper
 * thread and gai_suspend waits for it with a timeout: chosen over a
 * thread of our own (the same, with more code) and over resolving once at
 * client creation (a Redis that moves, or a name that resolves later, would
 * never be found again).  A lookup still running when the time is out
 * cannot be freed (glibc writes its result later): it is kept on a list
 * and freed by a later call once it has ended (a silent name server ends
 * it within its own timeouts, so the list stays a few entries long). */
typedef struct di_lookup {
  struct gaicb cb;
  struct addrinfo hints;
  char host[256];
  char port[8];
  struct di_lookup *next;
} di_lookup;

static di_lookup *abandoned;
static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;

static void lookup_free(di_lookup *l) {
  if (l->cb.ar_result) freeaddrinfo(l->cb.ar_result);
  free(l);
}

static void reap_lookups(void) {
  di_lookup **p, *l;
  pthread_mutex_lock(&abandoned_lock);
  for (p = &abandoned; (l = *p) != NULL;) {
    if (gai_error(&l->cb) == EAI_INPROGRESS) { p = &l->next; continue; }
    *p = l->next;
    lookup_free(l);
  }
  pthread_mutex_unlock(&abandoned_lock);
}

/* Resolves host by deadline (di_now()) into out, numeric; NULL, or why not. */
static const char *resolve(const char *host, int port, double deadline, char *out, size_t outlen) {
  struct addrinfo hints, *res;
  struct gaicb *list[1];
  di_lookup *l;
  int rc;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST;
  if (getaddrinfo(host, NULL, &hints, &res) == 0) { /* an address already */
    freeaddrinfo(res);
    snprintf(out, outlen, "%s", host);
    return NULL;
  }
  reap_lookups();
  if (strlen(host) >= sizeof l->host) return "the host name is too long";
  l = calloc(1, sizeof *l);
  if (l == NULL) return "out of memory";
  snprintf(l->host, sizeof l->host, "%s", host);
  snprintf(l->port, sizeof l->port, "%d", port);
  l->hints.ai_socktype = SOCK_STREAM;
  l->cb.ar_name = l->host;
  l->cb.ar_service = l->port;
  l->cb.ar_request = &l->hints;
  list[0] = &l->cb;
  rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
  if (rc != 0) {
    free(l);
    return gai_strerror(rc);
  }
  for (;;) {
    struct timespec ts;
    double left = deadline - di_now();
    if (left <= 0 || gai_error(&l->cb) != EAI_INPROGRESS) break;
    ts.tv_sec = (time_t)left;
    ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
    gai_suspend((const struct gaicb *const *)list, 1, &ts);
  }
  rc = gai_error(&l->cb);
  if (rc == EAI_INPROGRESS) {
    /* not gai_cancel: a lookup it cancels before it starts leaks glibc's
     * own wait list (valgrind); one left to end frees it */
    pthread_mutex_lock(&abandoned_lock);
    l->next = abandoned;
    abandoned = l;
    pthread_mutex_unlock(&abandoned_lock);
    return "its name did not resolve in time";
  }
  if (rc != 0 || l->cb.ar_result == NULL) {
    lookup_free(l);
    return rc != 0 ? gai_strerror(rc) : "its name has no address";
  }
  rc = getnameinfo(l->cb.ar_result->ai_addr, l->cb.ar_result->ai_addrlen, out, (socklen_t)outlen,
                   NULL, 0, NI_NUMERICHOST);
  lookup_free(l);
  return rc == 0 ? NULL : gai_strerror(rc);
}

/* A list announced longer than any reply of ours is refused before hiredis
 * allocates it (a "*2000000000" would be 16 GB of pointers). */
static void *create_array(const redisReadTask *task, int elements) {
  di_redis *r = task->privdata;
  if (elements < 0 || elements > DI_REDIS_MAX_ELEMENTS) {
    r->too_many = 1;
    return NULL; /* hiredis: an out-of-memory error, which ends the read */
  }
  return r->create_array(task, elements);
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
  r = lua_newuserdata(L, sizeof *r);
  memset(r, 0, sizeof *r);
  luaL_getmetatable(L, DI_REDIS_MT);
  lua_setmetatable(L, -2);
  if (path == NULL) {
    char addr[NI_MAXHOST];
    const char *why = resolve(host, (int)port,
                              di_now() + (double)tv.tv_sec + (double)tv.tv_usec / 1e6, addr, sizeof addr);
    if (why != NULL) {
      lua_pushnil(L);
      lua_pushfstring(L, "cannot connect to Redis at %s:%d: %s", host, (int)port, why);
      return 2;
    }
    c = redisConnectWithTimeout(addr, (int)port, tv);
  } else {
    c = redisConnectUnixWithTimeout(path, tv);
  }
  if (c == NULL || c->err) {
    lua_pushnil(L);
    if (path) lua_pushfstring(L, "cannot connect to Redis at %s: %s", path,
                              c ? c->errstr : "out of memory");
    else lua_pushfstring(L, "cannot connect to Redis at %s:%d: %s", host, (int)port,
                         c ? c->errstr : "out of memory");
    if (c) redisFree(c);
    return 2;
  }
  /* a last guard only: every wait of a command is cut by poll() first */
  redisSetTimeout(c, tv);
  r->c = c;
  r->fn = *c->reader->fn;
  r->create_array = r->fn.createArray;
  r->fn.createArray = create_array;
  c->reader->fn = &r->fn;
  c->reader->privdata = r;
  return 1;
}

static di_redis *check_redis(lua_State *L) {
  di_redis *r = luaL_checkudata(L, 1, DI_REDIS_MT);
  if (r->c == NULL) luaL_error(L, "attempt to use a closed Redis connection");
  return r;
}

/* Pushes a reply as a Lua value (depth-first for arrays; hiredis refuses
 * nesting deeper than 7).  A list carries its length as n, nil elements
 * included. */
static void push_reply(lua_State *L, const redisReply *rep) {
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
    lua_createtable(L, (int)rep->elements, 1);
    for (i = 0; i < rep->elements; i++) {
      push_reply(L, rep->element[i]);
      lua_rawseti(L, -2, (int)i + 1);
    }
    lua_pushinteger(L, (lua_Integer)rep->elements);
    lua_setfield(L, -2, "n");
    break;
  default: /* nil, and what cannot nest here */
    lua_pushnil(L);
  }
}

/* Waits until fd is ready for events, or the deadline (di_now()) passes:
 * 1 ready, 0 timed out, -1 failed (errno). */
static int wait_fd(int fd, short events, double deadline) {
  for (;;) {
    struct pollfd p;
    double left = deadline - di_now();
    int n;
    if (left <= 0) return 0;
    p.fd = fd;
    p.events = events;
    p.revents = 0;
    n = poll(&p, 1, (int)ceil(left * 1000));
    if (n > 0) return 1;
    if (n < 0 && errno != EINTR) return -1;
  }
}

/* What waits on an idle connection before a command: NULL when nothing
 * does, else why the connection cannot carry the command. */
static const char *idle_problem(redisContext *c) {
  struct pollfd p;
  char b;
  ssize_t n;
  if (c->reader->pos < c->reader->len) return "Redis sent bytes that answer no command";
  p.fd = c->fd;
  p.events = POLLIN;
  p.revents = 0;
  if (poll(&p, 1, 0) <= 0) return NULL;
  n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return "Redis closed the connection";
  if (n > 0) return "Redis sent bytes that answer no command";
  return errno == EAGAIN || errno == EINTR ? NULL : strerror(errno);
}

static int io_failure(lua_State *L, const char *what) {
  lua_pushnil(L);
  lua_pushstring(L, what);
  lua_pushliteral(L, "io");
  return 3;
}

/* conn:command(budget_s, arg, ...) -> value | nil, message, "redis" | "io"
 * The whole exchange, sending included, lasts budget_s at most. */
static int redis_command(lua_State *L) {
  di_redis *r = check_redis(L);
  redisContext *c = r->c;
  const char *argv[DI_REDIS_MAX_ARGS];
  size_t lens[DI_REDIS_MAX_ARGS];
  lua_Number budget = luaL_checknumber(L, 2);
  int argc = lua_gettop(L) - 2, i, done = 0, w;
  size_t got = 0;
  double deadline;
  const char *why;
  void *reply = NULL;
  redisReply *rep;
  if (argc < 1 || argc > DI_REDIS_MAX_ARGS)
    return luaL_error(L, "command takes 1 to %d arguments", DI_REDIS_MAX_ARGS);
  if (!(budget > 0)) budget = 0.001;
  if (budget > DI_REDIS_MAX_BUDGET) budget = DI_REDIS_MAX_BUDGET;
  deadline = di_now() + budget;
  for (i = 0; i < argc; i++) argv[i] = luaL_checklstring(L, i + 3, &lens[i]);
  if (c->err) return io_failure(L, c->errstr);
  /* bytes before a command was sent answer nothing: the stream would be out
   * of step with the commands */
  if ((why = idle_problem(c)) != NULL) return io_failure(L, why);
  if (redisAppendCommandArgv(c, argc, argv, lens) != REDIS_OK) return io_failure(L, c->errstr);
  while (!done) {
    w = wait_fd(c->fd, POLLOUT, deadline);
    if (w <= 0) return io_failure(L, w == 0 ? "Redis did not take the command in time" : strerror(errno));
    if (redisBufferWrite(c, &done) != REDIS_OK) return io_failure(L, c->errstr);
  }
  r->too_many = 0;
  for (;;) {
    char buf[4096];
    ssize_t n;
    if (redisGetReplyFromReader(c, &reply) != REDIS_OK) {
      if (r->too_many)
        return io_failure(L, "Redis answered a list longer than any reply of the limiter");
      return io_failure(L, c->errstr[0] ? c->errstr : "Redis sent a reply that is not RESP");
    }
    if (reply != NULL) break;
    w = wait_fd(c->fd, POLLIN, deadline);
    if (w <= 0) return io_failure(L, w == 0 ? "Redis did not answer in time" : strerror(errno));
    n = read(c->fd, buf, sizeof buf);
    if (n == 0) return io_failure(L, "Redis closed the connection");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return io_failure(L, strerror(errno));
    }
    got += (size_t)n;
    if (got > DI_REDIS_MAX_REPLY)
      return io_failure(L, "Redis sent a reply longer than any reply of the limiter");
    if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK) return io_failure(L, "out of memory");
  }
  rep = reply;
  if (c->reader->pos < c->reader->len) {
    freeReplyObject(rep);
    return io_failure(L, "Redis sent more than one reply to a command");
  }
  if (rep->type == REDIS_REPLY_ERROR) {
    lua_pushnil(L);
    lua_pushlstring(L, rep->str, rep->len);
    lua_pushliteral(L, "redis");
    freeReplyObject(rep);
    return 3;
  }
  push_reply(L, rep);
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
