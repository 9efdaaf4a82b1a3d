/*
 * harness.h: what the libFuzzer targets share.  Each target is a Lua
 * 5.4 state with the C core linked in (package.preload, as the host does)
 * and the Lua layer loaded from the source tree (lua/), plus a driver,
 * fuzz/lua/<target>.lua, that returns function(bytes).  The driver checks
 * the target's invariants itself and raises on a violation; any Lua error
 * that escapes it is a finding, so it is printed with a traceback and the
 * process aborts, which libFuzzer records as a crash.
 *
 * One state lives for the whole run (requiring the layer per input would
 * cost more than the input); the incremental GC keeps it small.
 */
#ifndef DI_FUZZ_HARNESS_H
#define DI_FUZZ_HARNESS_H

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#ifndef DI_ROOT
#define DI_ROOT "."
#endif

int luaopen_dialoginsight_core(lua_State *L);

static lua_State *fz_L;

/* Coverage of the Lua layer.  libFuzzer sees only instrumented C (the core);
 * the code under test here is mostly Lua, and cjson is not instrumented.  A
 * line hook feeds "edges" between Lua lines (chunk, line, previous line)
 * into libFuzzer's extra counters, which it treats as coverage, so inputs
 * that reach new Lua paths are kept as well. */
#define FZ_LUA_EDGES 65536
__attribute__((section("__libfuzzer_extra_counters")))
static uint8_t fz_lua_edges[FZ_LUA_EDGES];
static uintptr_t fz_prev_line;

/* Only the line number, which Lua sets before a line hook runs: asking for
 * the chunk's name (lua_getinfo "S") formats a string per line and cost 5x
 * the exec rate.  Edges between line numbers of different files collide
 * now and then, which only blurs the signal. */
static void fz_line_hook(lua_State *L, lua_Debug *ar) {
  uintptr_t here = (uintptr_t)ar->currentline * 2654435761u;
  (void)L;
  fz_lua_edges[(here ^ (fz_prev_line >> 1)) % FZ_LUA_EDGES]++;
  fz_prev_line = here;
}

static int fz_traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static void fz_die(lua_State *L, const char *what) {
  fprintf(stderr, "\n==fuzz== %s:\n%s\n", what, lua_tostring(L, -1));
  fflush(stderr);
  abort();
}

/* Builds the state and loads the driver; DI_FUZZ_ROOT overrides the source
 * tree the binary was built from. */
static void fz_init(const char *target) {
  const char *root = getenv("DI_FUZZ_ROOT");
  lua_State *L;
  if (root == NULL || *root == '\0') root = DI_ROOT;
  L = fz_L = luaL_newstate();
  if (L == NULL) abort();
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_dialoginsight_core);
  lua_setfield(L, -2, "dialoginsight.core");
  lua_pop(L, 1);
  lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;%s/fuzz/lua/?.lua", root, root, root);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
  lua_pushcfunction(L, fz_traceback);
  lua_getglobal(L, "require");
  lua_pushstring(L, target);
  if (lua_pcall(L, 1, 1, 1) != LUA_OK) fz_die(L, "cannot load the driver");
  if (!lua_isfunction(L, -1)) {
    lua_pushliteral(L, "the driver must return a function");
    fz_die(L, "bad driver");
  }
  lua_setfield(L, LUA_REGISTRYINDEX, "di.fuzz.driver");
  lua_settop(L, 0);
  if (getenv("DI_FUZZ_NO_LUA_COVERAGE") == NULL)
    lua_sethook(L, fz_line_hook, LUA_MASKLINE, 0);
}

static int fz_run(const uint8_t *data, size_t size) {
  lua_State *L = fz_L;
  lua_settop(L, 0);
  lua_pushcfunction(L, fz_traceback);
  lua_getfield(L, LUA_REGISTRYINDEX, "di.fuzz.driver");
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 1) != LUA_OK) fz_die(L, "invariant violated or unexpected Lua error");
  lua_settop(L, 0);
  return 0;
}

/* fuzz_memfd(bytes) -> "/proc/self/fd/N", fd: for the targets whose input
 * is a file (the CSV reader opens its own FILE on the path), so the bytes
 * never touch the disk; fuzz_closefd(fd) when done. */
static inline int fz_memfd(lua_State *L) {
  size_t len, off = 0;
  const char *s = luaL_checklstring(L, 1, &len);
  int fd = memfd_create("di-fuzz", MFD_CLOEXEC);
  if (fd < 0) return luaL_error(L, "memfd_create failed");
  while (off < len) {
    ssize_t n = write(fd, s + off, len - off);
    if (n <= 0) { close(fd); return luaL_error(L, "memfd write failed"); }
    off += (size_t)n;
  }
  lua_pushfstring(L, "/proc/self/fd/%d", fd);
  lua_pushinteger(L, fd);
  return 2;
}

static inline int fz_closefd(lua_State *L) {
  close((int)luaL_checkinteger(L, 1));
  return 0;
}

/* A target whose driver reads its input as a file (fuzz_memfd). */
#define DI_FUZZ_FILE_TARGET(name)                                     \
  int LLVMFuzzerInitialize(int *argc, char ***argv);                  \
  int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);       \
  int LLVMFuzzerInitialize(int *argc, char ***argv) {                 \
    (void)argc; (void)argv;                                           \
    fz_init(name);                                                    \
    lua_pushcfunction(fz_L, fz_memfd);                                \
    lua_setglobal(fz_L, "fuzz_memfd");                                \
    lua_pushcfunction(fz_L, fz_closefd);                              \
    lua_setglobal(fz_L, "fuzz_closefd");                              \
    return 0;                                                         \
  }                                                                   \
  int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {      \
    return fz_run(data, size);                                        \
  }

#define DI_FUZZ_TARGET(name)                                          \
  int LLVMFuzzerInitialize(int *argc, char ***argv);                  \
  int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);       \
  int LLVMFuzzerInitialize(int *argc, char ***argv) {                 \
    (void)argc; (void)argv;                                           \
    fz_init(name);                                                    \
    return 0;                                                         \
  }                                                                   \
  int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {      \
    return fz_run(data, size);                                        \
  }

#endif
