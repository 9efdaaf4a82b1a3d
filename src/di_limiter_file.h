/* di_limiter_file.h: the file behind a shared limit (di_limiter_file.c):
 * opened only where nobody else can swap it, and checked before each access
 * so that a file that shrank under us is extended again, not faulted on. */
#ifndef DI_LIMITER_FILE_H
#define DI_LIMITER_FILE_H

#include <stddef.h>

#include "di_compat.h"

typedef struct di_limfile {
  int fd;    /* kept open: the guard fstat()s it before each access */
  void *map; /* size bytes, MAP_SHARED; NULL when closed */
  size_t size;
} di_limfile;

/* Opens path (creating it when missing, size bytes of zeros) and maps it.
 * Returns 1, or pushes a message naming the path and returns 0.  The
 * directory must be this user's, or group-shared (setgid, closed to
 * others); see di_limiter_file.c. */
int di_limfile_open(lua_State *L, di_limfile *f, const char *path, size_t size);

/* Makes f->map safe to touch now: 0 when it was, 1 when the file had shrunk
 * and was extended again (its lost part reads as zeros), -1 (errno set)
 * when it cannot be: the map must then not be touched. */
int di_limfile_guard(di_limfile *f);

void di_limfile_close(di_limfile *f);

#endif
