/*
 * fuzz_csv: arbitrary bytes as a CSV file (a memfd, through /proc/self/fd),
 * read to the end with core.csv_open; the rows it accepts are written back
 * with the host's CSV writer (cli/csv.lua) and must read back the same.
 * Invariants in fuzz/lua/fuzz_csv.lua.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"

/* csv_memfd(bytes) -> "/proc/self/fd/N", fd: the reader opens its own FILE
 * on the path, so the bytes never touch the disk. */
static int csv_memfd(lua_State *L) {
  size_t len, off = 0;
  const char *s = luaL_checklstring(L, 1, &len);
  int fd = memfd_create("di-fuzz-csv", MFD_CLOEXEC);
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

static int csv_closefd(lua_State *L) {
  close((int)luaL_checkinteger(L, 1));
  return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  fz_init("fuzz_csv");
  lua_pushcfunction(fz_L, csv_memfd);
  lua_setglobal(fz_L, "fuzz_memfd");
  lua_pushcfunction(fz_L, csv_closefd);
  lua_setglobal(fz_L, "fuzz_closefd");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return fz_run(data, size);
}
