/*
 * di_file.c: reading a small file a setting names (methods_file), or
 * checking that one can be (ca_file), without the traps of io.open: a FIFO
 * blocks its open until a writer comes (di.new hung forever), and a device
 * such as /dev/zero is read until memory runs out.  Only a regular file is
 * taken, opened without blocking, and read up to a bound.
 *
 *   core.read_file(path, max) -> text | nil, why   (max 0: check only, "")
 *
 * why is the reason alone, never the path (a setting's value).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "di_core.h"

static int failed(lua_State *L, int fd, const char *why) {
  if (fd >= 0) close(fd);
  lua_pushnil(L);
  lua_pushstring(L, why);
  return 2;
}

static int read_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Number max = luaL_checknumber(L, 2);
  struct stat sb;
  char *buf;
  size_t got = 0;
  int fd;
  if (!(max >= 0 && max <= 1073741824.0)) return luaL_error(L, "read_file: bad size bound");
  fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return failed(L, -1, strerror(errno));
  if (fstat(fd, &sb) != 0) return failed(L, fd, strerror(errno));
  if (S_ISDIR(sb.st_mode)) return failed(L, fd, strerror(EISDIR));
  if (!S_ISREG(sb.st_mode))
    return failed(L, fd, S_ISFIFO(sb.st_mode) ? "a FIFO, not a regular file"
                         : S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode) ? "a device, not a regular file"
                         : "not a regular file");
  if (max == 0) {
    close(fd);
    lua_pushliteral(L, "");
    return 1;
  }
  if ((lua_Number)sb.st_size > max) {
    close(fd);
    lua_pushnil(L);
    lua_pushfstring(L, "larger than %d bytes", (int)max);
    return 2;
  }
  buf = malloc((size_t)sb.st_size + 1);
  if (buf == NULL) return failed(L, fd, "out of memory");
  /* a file that grows while read is cut at the size fstat gave */
  while (got < (size_t)sb.st_size) {
    ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      free(buf);
      return failed(L, fd, strerror(e));
    }
    if (n == 0) break;
    got += (size_t)n;
  }
  close(fd);
  lua_pushlstring(L, buf, got);
  free(buf);
  return 1;
}

void di_file_open(lua_State *L) {
  lua_pushcfunction(L, read_file);
  lua_setfield(L, -2, "read_file");
}
