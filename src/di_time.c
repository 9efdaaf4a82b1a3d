/*
 * di_time.c: a monotonic clock and a sleep, which plain Lua lacks.  The
 * retry policy and the limiter need both; CLOCK_MONOTONIC is also the clock
 * the shared limiter stores, because it is common to every process on the
 * host and never jumps with the wall clock.
 */
#include <errno.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

#include "di_core.h"
#include "di_time.h"

double di_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int time_now(lua_State *L) {
  lua_pushnumber(L, di_now());
  return 1;
}

/* The wall clock, in seconds with a fraction: what processes that share a
 * store on disk (webhook events' leases and back-offs) can agree on, where
 * the monotonic clock of each boot would not survive a reboot. */
static int time_wall(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
  return 1;
}

/* sleep(seconds): sleeps through signals (EINTR), so a stray SIGCHLD does not
 * cut a back-off short. */
static int time_sleep(lua_State *L) {
  lua_Number secs = luaL_checknumber(L, 1);
  struct timespec ts;
  if (!(secs > 0)) return 0;
  if (secs > 86400) secs = 86400;
  ts.tv_sec = (time_t)secs;
  ts.tv_nsec = (long)((secs - floor(secs)) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
  return 0;
}

/* The process id: the logs' call ids (lua/dialoginsight/log.lua) tell the calls
 * of two processes apart with it; plain Lua has no way to read it. */
static int time_pid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

void di_time_open(lua_State *L) {
  lua_pushcfunction(L, time_pid);
  lua_setfield(L, -2, "pid");
  lua_pushcfunction(L, time_now);
  lua_setfield(L, -2, "now");
  lua_pushcfunction(L, time_wall);
  lua_setfield(L, -2, "wall");
  lua_pushcfunction(L, time_sleep);
  lua_setfield(L, -2, "sleep");
}
