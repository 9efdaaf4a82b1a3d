/*
 * di_limiter.c: a GCRA rate limiter shared by every process on the host.
 *
 * The whole state of a limit is one 64-bit "theoretical arrival time" (TAT,
 * nanoseconds on CLOCK_MONOTONIC, which all processes of a host share).  It
 * lives in a small file mapped MAP_SHARED, and is only ever changed with a
 * compare-and-swap, so nginx workers, batch jobs and cron scripts using one
 * API key draw from one budget without a lock or a daemon (one fstat per
 * call guards the mapping: di_limiter_file.c).  A process that dies
 * mid-update leaves nothing half-written: the CAS either happened or it did
 * not.
 *
 * Nothing one sharer writes may freeze the others: a pause (penalize) is
 * capped at max_penalty, and a TAT further ahead than any sharer could have
 * put it (a file from before a reboot, or written by something else) is
 * reset at the next access (load_tat).
 *
 * Calls of priority "batch" keep a reserve for the "interactive" ones in the
 * same word (docs/limiter.md, "A reserve for interactive calls"): a batch
 * costs interval / batch_share, and goes only while the TAT it leaves still
 * lets `reserve` interactive calls through at once.  Both kinds read and
 * write the one TAT, so the reserve holds across processes with no other
 * shared state.
 *
 * The limiter never sleeps.  acquire() answers "go" (0) or "wait d seconds",
 * and the caller decides how to wait: the host sleeps, call_many schedules
 * other work, nginx yields with ngx.sleep.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "di_aux.h"
#include "di_core.h"
#include "di_limiter_file.h"

#define DI_LIMITER_MT "dialoginsight.limiter"
#define DI_LIMITER_MAGIC 0x4449474352413031ULL /* "DIGCRA01" */

#define NS_PER_S 1000000000ULL
/* The longest shared pause one 429 may cause, whatever the caller asks:
 * the retry policy's max_retry_after (30 s by default) is normally lower. */
#define DI_LIMITER_MAX_PENALTY_S 3600
#define DI_LIMITER_DEFAULT_PENALTY_S 30
/* What one sharer's rate and burst may make the others wait: a slot (1/rate)
 * of 100 s at most (config.lua refuses a rate under 0.01/s) and a burst
 * spanning 60 s at most (a larger burst counts as that).  Uncapped, a rate
 * of 1e-9 wrote the state two days ahead and held every sharer that long. */
#define DI_LIMITER_MAX_SLOT_S 100
#define DI_LIMITER_MAX_WINDOW_S 60
/* Slack over the lead a sharer can legitimately write (rounding, a rate
 * changed between two writes). */
#define DI_LIMITER_MARGIN_NS NS_PER_S
/* The longest lead any sharer can declare (see lead_of): no setting of one
 * process holds the others longer. */
#define DI_LIMITER_MAX_LEAD_S                                        \
  (DI_LIMITER_MAX_PENALTY_S + DI_LIMITER_MAX_SLOT_S + DI_LIMITER_MAX_WINDOW_S + 1)
#define DI_LIMITER_MAX_LEAD_NS ((uint64_t)DI_LIMITER_MAX_LEAD_S * NS_PER_S)

/* The file's layout, little-endian words:
 *   0  magic    DI_LIMITER_MAGIC once the file is ours
 *   8  tat_ns   the theoretical arrival time, ns on CLOCK_MONOTONIC
 *  16  lead_ns  the furthest ahead of now any sharer may put tat_ns (the
 *               largest its users declared; see lead_of)
 * Padding to a cache line keeps the hot words alone. */
typedef struct shared_state {
  uint64_t magic;
  uint64_t tat_ns;
  uint64_t lead_ns;
  uint64_t pad[5];
} shared_state;

typedef struct di_limiter {
  di_limfile file;
  shared_state *st;      /* file.map; NULL once closed */
  uint64_t interval_ns;  /* 1 / rate */
  uint64_t tolerance_ns; /* (burst - 1) * interval: how far ahead we may run */
  uint64_t max_penalty_ns; /* the longest pause penalize() may impose */
  lua_Number share;      /* batch_share, in (0, 1] */
  lua_Number reserve;    /* interactive calls a batch leaves room for */
  uint64_t batch_interval_ns; /* interval / share: what a batch call costs */
  uint64_t batch_room_ns; /* how far ahead a batch call may still start */
} di_limiter;

/* What an access found and repaired, reported to Lua as a second result so
 * that the Lua side can warn (once per process) where its logs go. */
enum { EV_NONE, EV_RESET, EV_REGROWN, EV_UNUSABLE };

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static di_limiter *check_limiter(lua_State *L) {
  di_limiter *lim = luaL_checkudata(L, 1, DI_LIMITER_MT);
  if (lim->st == NULL) luaL_error(L, "attempt to use a closed limiter");
  return lim;
}

static uint64_t capped_ns(lua_Number secs, uint64_t cap_s) {
  lua_Number ns = secs * 1e9;
  return ns >= (lua_Number)(cap_s * NS_PER_S) ? cap_s * NS_PER_S : (uint64_t)ns;
}

static void set_rate(lua_State *L, di_limiter *lim, lua_Number rate,
                     lua_Number burst, lua_Number share) {
  int64_t ceiling;
  if (!(rate > 0) || rate > 1e6)
    luaL_error(L, "limiter rate must be between 0 and 1e6 calls/s");
  if (!(burst >= 1) || burst > 1e6)
    luaL_error(L, "limiter burst must be between 1 and 1e6 calls");
  if (!(share > 0) || share > 1)
    luaL_error(L, "limiter batch_share must be a number in (0, 1]");
  lim->interval_ns = capped_ns(1 / rate, DI_LIMITER_MAX_SLOT_S);
  lim->tolerance_ns = capped_ns((burst - 1) * ((lua_Number)lim->interval_ns / 1e9),
                                DI_LIMITER_MAX_WINDOW_S);
  lim->share = share;
  /* share 1 keeps no reserve: a batch call is then an interactive one,
   * exactly the limiter before priorities */
  lim->reserve = share >= 1 ? 0 : floor((1 - share) * burst + 0.5);
  if (share < 1 && lim->reserve < 1) lim->reserve = 1;
  /* a batch slot is capped as a slot is: no sharer writes further ahead */
  lim->batch_interval_ns = capped_ns((lua_Number)lim->interval_ns / 1e9 / share,
                                     DI_LIMITER_MAX_SLOT_S);
  if (lim->batch_interval_ns < lim->interval_ns) lim->batch_interval_ns = lim->interval_ns;
  /* After a batch call, reserve interactive calls must still fit: the TAT it
   * leaves is at most tolerance + interval - reserve * interval ahead (the
   * ceiling).  A ceiling under one batch slot (a small burst) would starve
   * batches: they then go when the TAT is behind now (room 0), and the
   * reserve is not guaranteed (docs/limiter.md). */
  ceiling = (int64_t)lim->tolerance_ns + (int64_t)lim->interval_ns -
            (int64_t)(lim->reserve * (lua_Number)lim->interval_ns);
  lim->batch_room_ns = ceiling > (int64_t)lim->batch_interval_ns
                           ? (uint64_t)ceiling - lim->batch_interval_ns
                           : 0;
}

/* The furthest ahead of now this process could put the TAT itself. */
static uint64_t own_lead(const di_limiter *lim) {
  /* a batch call writes at most max(tolerance, batch slot) ahead: the batch
   * slot (>= the slot) is counted, so that a process running batch calls
   * declares how far they reach and no sharer resets them as corrupt */
  return lim->tolerance_ns + lim->batch_interval_ns + lim->max_penalty_ns +
         DI_LIMITER_MARGIN_NS;
}

/* How far ahead of now a TAT may stand before it is corrupt.  Sharers may
 * run other rates (a lower rate writes further ahead), so each declares its
 * own lead in the file (a maximum, redone at every access so that it
 * survives a truncation) and honours the largest one declared, up to what
 * any configuration allows: a process never resets a wait another sharer
 * set on purpose. */
static uint64_t lead_of(di_limiter *lim) {
  uint64_t own = own_lead(lim);
  uint64_t seen = __atomic_load_n(&lim->st->lead_ns, __ATOMIC_SEQ_CST);
  while (seen < own &&
         !__atomic_compare_exchange_n(&lim->st->lead_ns, &seen, own, 0,
                                      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
  }
  if (seen > DI_LIMITER_MAX_LEAD_NS) seen = DI_LIMITER_MAX_LEAD_NS;
  return seen > own ? seen : own;
}

/* Readies the state for one access: the file's size first (a mapped page
 * past the end of the file faults), then the magic of a file that was
 * extended again (its zeros).  EV_UNUSABLE: nothing may be touched. */
static int begin(di_limiter *lim) {
  int g = di_limfile_guard(&lim->file);
  if (g < 0) return EV_UNUSABLE;
  if (g > 0) {
    uint64_t zero = 0;
    __atomic_compare_exchange_n(&lim->st->magic, &zero, DI_LIMITER_MAGIC, 0,
                                __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return EV_REGROWN;
  }
  return EV_NONE;
}

/* The TAT, checked: one further ahead than any sharer could have written is
 * a file from before a reboot (CLOCK_MONOTONIC restarts near 0), or was
 * written by something else; left there, it would hold every sharer for
 * hours.  It is reset to now (*ev = EV_RESET). */
static uint64_t load_tat(di_limiter *lim, uint64_t now, int *ev) {
  uint64_t tat = __atomic_load_n(&lim->st->tat_ns, __ATOMIC_SEQ_CST);
  uint64_t lead = lead_of(lim);
  while (tat > now && tat - now > lead) {
    if (__atomic_compare_exchange_n(&lim->st->tat_ns, &tat, now, 0,
                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
      *ev = EV_RESET;
      return now;
    }
  }
  return tat;
}

/* Pushes the event of an access as an extra result; returns how many. */
static int push_event(lua_State *L, int ev, int err) {
  switch (ev) {
    case EV_RESET:
      lua_pushliteral(L, "reset");
      return 1;
    case EV_REGROWN:
      lua_pushliteral(L, "regrown");
      return 1;
    case EV_UNUSABLE:
      lua_pushfstring(L, "unusable: %s", strerror(err));
      return 1;
    default:
      return 0;
  }
}

/* limiter{ path=, rate=, burst=, max_penalty=, batch_share= } -> limiter |
 * nil, message.  max_penalty: the longest pause penalize() imposes, seconds
 * (default 30, at most 3600); batch_share: the part of the rate batch calls
 * may take (default 1: no reserve). */
static int limiter_new(lua_State *L) {
  const char *path;
  lua_Number rate, burst, max_penalty, share;
  di_limiter *lim;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "path");
  lua_getfield(L, 1, "rate");
  lua_getfield(L, 1, "burst");
  lua_getfield(L, 1, "max_penalty");
  lua_getfield(L, 1, "batch_share");
  path = luaL_checkstring(L, -5);
  rate = luaL_checknumber(L, -4);
  burst = luaL_optnumber(L, -3, 1);
  max_penalty = luaL_optnumber(L, -2, DI_LIMITER_DEFAULT_PENALTY_S);
  share = luaL_optnumber(L, -1, 1);
  if (!(max_penalty >= 0))
    luaL_error(L, "limiter max_penalty must be a number of seconds >= 0");
  if (max_penalty > DI_LIMITER_MAX_PENALTY_S)
    max_penalty = DI_LIMITER_MAX_PENALTY_S;
  lim = lua_newuserdata(L, sizeof *lim);
  memset(lim, 0, sizeof *lim);
  lim->file.fd = -1;
  luaL_getmetatable(L, DI_LIMITER_MT);
  lua_setmetatable(L, -2);
  set_rate(L, lim, rate, burst, share);
  lim->max_penalty_ns = (uint64_t)(max_penalty * 1e9);

  if (!di_limfile_open(L, &lim->file, path, sizeof(shared_state))) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  lim->st = lim->file.map;
  {
    uint64_t zero = 0;
    __atomic_compare_exchange_n(&lim->st->magic, &zero, DI_LIMITER_MAGIC, 0,
                                __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  }
  if (__atomic_load_n(&lim->st->magic, __ATOMIC_SEQ_CST) != DI_LIMITER_MAGIC) {
    di_limfile_close(&lim->file);
    lim->st = NULL;
    lua_pushnil(L);
    lua_pushfstring(L, "%s is not a dialoginsight limiter file", path);
    return 2;
  }
  return 1;
}

static const char *const priorities[] = {"interactive", "batch", NULL};

/* limiter:acquire([priority]) -> 0 when the call may start now (its slot is
 * taken), or the seconds to wait before asking again (nothing is taken);
 * and, when the access repaired something, "reset", "regrown" or
 * "unusable: why" (the call then goes unlimited: the file cannot be
 * touched).  priority: "interactive" (the default) or "batch". */
static int limiter_acquire(lua_State *L) {
  di_limiter *lim = check_limiter(L);
  int batch = luaL_checkoption(L, 2, "interactive", priorities) == 1;
  /* one rule for both kinds: a call may start while the TAT is at most
   * room ahead of now, and moves it by cost */
  uint64_t cost = batch ? lim->batch_interval_ns : lim->interval_ns;
  uint64_t room = batch ? lim->batch_room_ns : lim->tolerance_ns;
  int ev = begin(lim);
  uint64_t now, tat;
  if (ev == EV_UNUSABLE) {
    int e = errno;
    lua_pushnumber(L, 0);
    return 1 + push_event(L, ev, e);
  }
  now = now_ns();
  tat = load_tat(lim, now, &ev);
  for (;;) {
    uint64_t start = tat > now ? tat : now;
    if (start - now > room) {
      lua_pushnumber(L, (double)(start - now - room) / 1e9);
      return 1 + push_event(L, ev, 0);
    }
    /* On failure the CAS reloads tat with the value another process wrote. */
    if (__atomic_compare_exchange_n(&lim->st->tat_ns, &tat, start + cost, 0,
                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
      lua_pushnumber(L, 0);
      return 1 + push_event(L, ev, 0);
    }
  }
}

/* limiter:status() -> { ahead, interval, tolerance, batch_interval,
 * batch_room, reserve, share } (seconds; ahead: TAT - now, negative when
 * idle), and the event of acquire.  Reads only: the TAT is loaded, never
 * written (a corrupt one is reported as it stands, not reset). */
static int limiter_status(lua_State *L) {
  di_limiter *lim = check_limiter(L);
  int ev = begin(lim);
  uint64_t now, tat;
  if (ev == EV_UNUSABLE) {
    int e = errno;
    lua_pushnil(L);
    return 1 + push_event(L, ev, e);
  }
  now = now_ns();
  tat = __atomic_load_n(&lim->st->tat_ns, __ATOMIC_SEQ_CST);
  lua_createtable(L, 0, 7);
  lua_pushnumber(L, tat >= now ? (double)(tat - now) / 1e9 : -(double)(now - tat) / 1e9);
  lua_setfield(L, -2, "ahead");
  lua_pushnumber(L, (double)lim->interval_ns / 1e9);
  lua_setfield(L, -2, "interval");
  lua_pushnumber(L, (double)lim->tolerance_ns / 1e9);
  lua_setfield(L, -2, "tolerance");
  lua_pushnumber(L, (double)lim->batch_interval_ns / 1e9);
  lua_setfield(L, -2, "batch_interval");
  lua_pushnumber(L, (double)lim->batch_room_ns / 1e9);
  lua_setfield(L, -2, "batch_room");
  lua_pushnumber(L, lim->reserve);
  lua_setfield(L, -2, "reserve");
  lua_pushnumber(L, lim->share);
  lua_setfield(L, -2, "share");
  return 1 + push_event(L, ev, 0);
}

/* limiter:penalize(seconds) -> nothing, or the event of acquire: nobody
 * sharing the limit starts a call for that long (a 429's Retry-After, seen
 * by one process, holds them all), max_penalty at most. */
static int limiter_penalize(lua_State *L) {
  di_limiter *lim = check_limiter(L);
  lua_Number secs = luaL_checknumber(L, 2);
  uint64_t now, pause, target, tat;
  int ev;
  if (!(secs > 0)) return 0;
  ev = begin(lim);
  if (ev == EV_UNUSABLE) return push_event(L, ev, errno);
  pause = secs * 1e9 >= (lua_Number)lim->max_penalty_ns
              ? lim->max_penalty_ns
              : (uint64_t)(secs * 1e9);
  now = now_ns();
  target = now + pause + lim->tolerance_ns;
  tat = load_tat(lim, now, &ev);
  while (tat < target &&
         !__atomic_compare_exchange_n(&lim->st->tat_ns, &tat, target, 0,
                                      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
  }
  return push_event(L, ev, 0);
}

/* limiter:configure(rate, burst [, batch_share]): this process's view of the
 * limit (the share is kept when not given: the adaptation moves the rate). */
static int limiter_configure(lua_State *L) {
  di_limiter *lim = check_limiter(L);
  set_rate(L, lim, luaL_checknumber(L, 2), luaL_optnumber(L, 3, 1),
           luaL_optnumber(L, 4, lim->share));
  return 0;
}

static int limiter_close(lua_State *L) {
  di_limiter *lim = luaL_checkudata(L, 1, DI_LIMITER_MT);
  di_limfile_close(&lim->file);
  lim->st = NULL;
  return 0;
}

static const luaL_Reg limiter_methods[] = {
    {"acquire", limiter_acquire},
    {"status", limiter_status},
    {"penalize", limiter_penalize},
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
  /* the same bounds for the Redis backend (lua/dialoginsight/limiter/redis.lua) */
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, DI_LIMITER_MAX_PENALTY_S);
  lua_setfield(L, -2, "max_penalty");
  lua_pushinteger(L, DI_LIMITER_MAX_SLOT_S);
  lua_setfield(L, -2, "max_slot");
  lua_pushinteger(L, DI_LIMITER_MAX_WINDOW_S);
  lua_setfield(L, -2, "max_window");
  lua_pushinteger(L, DI_LIMITER_MAX_LEAD_S);
  lua_setfield(L, -2, "max_lead");
  lua_setfield(L, -2, "limiter_bounds");
  lua_pushcfunction(L, limiter_new);
  lua_setfield(L, -2, "limiter");
  lua_pushcfunction(L, limiter_runtime_dir);
  lua_setfield(L, -2, "runtime_dir");
}
