/*
 * di_limiter.c: a GCRA rate limiter shared by every process on the host.
 *
 * The whole state of a limit is one 64-bit "theoretical arrival time" (TAT,
 * nanoseconds on CLOCK_MONOTONIC, which all processes of a host share).  It
 * lives in a small file mapped MAP_SHARED, and is only ever changed with a
 * compare-and-swap, so nginx workers, batch jobs and cron scripts using one
 * API key draw from one budget without a lock, a daemon, or a syscall per
 * call.  A process that dies mid-update leaves nothing half-written: the CAS
 * either happened or it did not.
 *
 * The limiter never sleeps.  acquire() answers "go" (0) or "wait d seconds",
 * and the caller decides how to wait: the host sleeps, call_many schedules
 * other work, nginx yields with ngx.sleep.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "di_aux.h"
#include "di_core.h"

#define DI_LIMITER_MT "dialoginsight.limiter"
#define DI_LIMITER_MAGIC 0x4449474352413031ULL /* "DIGCRA01" */

/* The file's layout.  Padding to a cache line keeps the hot word alone. */
typedef struct shared_state {
  uint64_t magic;
  uint64_t tat_ns;
  uint64_t pad[6];
} shared_state;

typedef struct di_limiter {
  shared_state *st;
  uint64_t interval_ns;  /* 1 / rate */
  uint64_t tolerance_ns; /* (burst - 1) * interval: how far ahead we may run */
} di_limiter;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static di_limiter *check_limiter(lua_State *L) {
  di_limiter *lim = luaL_checkudata(L, 1, DI_LIMITER_MT);
  if (lim->st == NULL) luaL_error(L, "attempt to use a closed limiter");
  return lim;
}

static void set_rate(lua_State *L, di_limiter *lim, lua_Number rate,
                     lua_Number burst) {
  if (!(rate > 0) || rate > 1e6)
    luaL_error(L, "limiter rate must be between 0 and 1e6 calls/s");
  if (!(burst >= 1) || burst > 1e6)
    luaL_error(L, "limiter burst must be between 1 and 1e6 calls");
  lim->interval_ns = (uint64_t)(1e9 / rate);
  lim->tolerance_ns = (uint64_t)((burst - 1) * (lua_Number)lim->interval_ns);
}

/* limiter{ path=, rate=, burst= } -> limiter | nil, message */
static int limiter_new(lua_State *L) {
  const char *path;
  lua_Number rate, burst;
  di_limiter *lim;
  struct stat sb;
  void *map;
  int fd;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "path");
  lua_getfield(L, 1, "rate");
  lua_getfield(L, 1, "burst");
  path = luaL_checkstring(L, -3);
  rate = luaL_checknumber(L, -2);
  burst = luaL_optnumber(L, -1, 1);
  lim = lua_newuserdata(L, sizeof *lim);
  memset(lim, 0, sizeof *lim);
  luaL_getmetatable(L, DI_LIMITER_MT);
  lua_setmetatable(L, -2);
  set_rate(L, lim, rate, burst);

  /* O_NOFOLLOW: in a shared directory, a planted symlink must not make us
   * write through to some other file. */
  fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot open limiter file %s: %s", path, strerror(errno));
    return 2;
  }
  /* Two processes may create the file at once; extending it to the same
   * size twice is harmless, and the zero fill is a valid initial state. */
  if (fstat(fd, &sb) != 0 ||
      (sb.st_size < (off_t)sizeof(shared_state) &&
       ftruncate(fd, sizeof(shared_state)) != 0)) {
    int e = errno;
    close(fd);
    lua_pushnil(L);
    lua_pushfstring(L, "cannot size limiter file %s: %s", path, strerror(e));
    return 2;
  }
  map = mmap(NULL, sizeof(shared_state), PROT_READ | PROT_WRITE, MAP_SHARED,
             fd, 0);
  close(fd); /* the mapping stays valid */
  if (map == MAP_FAILED) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot map limiter file %s: %s", path, strerror(errno));
    return 2;
  }
  lim->st = map;
  {
    uint64_t zero = 0;
    __atomic_compare_exchange_n(&lim->st->magic, &zero, DI_LIMITER_MAGIC, 0,
                                __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  }
  if (__atomic_load_n(&lim->st->magic, __ATOMIC_SEQ_CST) != DI_LIMITER_MAGIC) {
    munmap(map, sizeof(shared_state));
    lim->st = NULL;
    lua_pushnil(L);
    lua_pushfstring(L, "%s is not a dialoginsight limiter file", path);
    return 2;
  }
  return 1;
}

/* limiter:acquire() -> 0 when the call may start now (its slot is taken),
 * or the seconds to wait before asking again (nothing is taken). */
static int limiter_acquire(lua_State *L) {
  di_limiter *lim = check_limiter(L);
  uint64_t now = now_ns();
  uint64_t tat = __atomic_load_n(&lim->st->tat_ns, __ATOMIC_SEQ_CST);
  for (;;) {
    uint64_t start = tat > now ? tat : now;
    if (start - now > lim->tolerance_ns) {
      lua_pushnumber(L, (double)(start - now - lim->tolerance_ns) / 1e9);
      return 1;
    }
    /* On failure the CAS reloads tat with the value another process wrote. */
    if (__atomic_compare_exchange_n(&lim->st->tat_ns, &tat,
                                    start + lim->interval_ns, 0,
                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
      lua_pushnumber(L, 0);
      return 1;
    }
  }
}

/* limiter:penalize(seconds): nobody sharing the limit starts a call for
 * that long (a 429's Retry-After, seen by one process, holds them all). */
static int limiter_penalize(lua_State *L) {
  di_limiter *lim = check_limiter(L);
  lua_Number secs = luaL_checknumber(L, 2);
  uint64_t target, tat;
  if (!(secs > 0)) return 0;
  if (secs > 3600) secs = 3600;
  target = now_ns() + (uint64_t)(secs * 1e9) + lim->tolerance_ns;
  tat = __atomic_load_n(&lim->st->tat_ns, __ATOMIC_SEQ_CST);
  while (tat < target &&
         !__atomic_compare_exchange_n(&lim->st->tat_ns, &tat, target, 0,
                                      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
  }
  return 0;
}

/* limiter:delay() -> seconds until a call could start, without taking it */
static int limiter_delay(lua_State *L) {
  di_limiter *lim = check_limiter(L);
  uint64_t now = now_ns();
  uint64_t tat = __atomic_load_n(&lim->st->tat_ns, __ATOMIC_SEQ_CST);
  uint64_t start = tat > now ? tat : now;
  lua_pushnumber(L, start - now > lim->tolerance_ns
                        ? (double)(start - now - lim->tolerance_ns) / 1e9
                        : 0.0);
  return 1;
}

/* limiter:configure(rate, burst): this process's view of the limit */
static int limiter_configure(lua_State *L) {
  di_limiter *lim = check_limiter(L);
  set_rate(L, lim, luaL_checknumber(L, 2), luaL_optnumber(L, 3, 1));
  return 0;
}

static int limiter_close(lua_State *L) {
  di_limiter *lim = luaL_checkudata(L, 1, DI_LIMITER_MT);
  if (lim->st != NULL) {
    munmap(lim->st, sizeof(shared_state));
    lim->st = NULL;
  }
  return 0;
}

static const luaL_Reg limiter_methods[] = {
    {"acquire", limiter_acquire},
    {"penalize", limiter_penalize},
    {"delay", limiter_delay},
    {"configure", limiter_configure},
    {"close", limiter_close},
    {NULL, NULL}};

/* runtime_dir() -> the default directory of limiter files: $XDG_RUNTIME_DIR
 * when set, else /tmp/dialoginsight-<uid>, created 0700.  In /tmp anyone
 * could have made that name first, so it must be a real directory owned by
 * us and closed to others, or we refuse it. */
static int limiter_runtime_dir(lua_State *L) {
  const char *xdg = getenv("XDG_RUNTIME_DIR");
  char path[64];
  struct stat sb;
  if (xdg != NULL && xdg[0] == '/') {
    lua_pushstring(L, xdg);
    return 1;
  }
  snprintf(path, sizeof path, "/tmp/dialoginsight-%lu", (unsigned long)getuid());
  if (mkdir(path, 0700) != 0 && errno != EEXIST) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot create %s: %s", path, strerror(errno));
    return 2;
  }
  if (lstat(path, &sb) != 0 || !S_ISDIR(sb.st_mode) || sb.st_uid != getuid() ||
      (sb.st_mode & 077) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s is not a private directory of this user; set "
                    "limiter_dir", path);
    return 2;
  }
  lua_pushstring(L, path);
  return 1;
}

void di_limiter_open(lua_State *L) {
  di_new_class(L, DI_LIMITER_MT, limiter_methods, limiter_close, NULL);
  lua_pushcfunction(L, limiter_new);
  lua_setfield(L, -2, "limiter");
  lua_pushcfunction(L, limiter_runtime_dir);
  lua_setfield(L, -2, "runtime_dir");
}
