/*
 * di_limiter_file.c: the file that holds a shared limit (di_limiter.c).
 *
 * Every process using one API key on the host maps the same small file, so
 * the file is a place where one process can hurt the others.  Three rules:
 *
 *  - Where it lives.  The directory (limiter_dir) is either this user's own
 *    (not world-writable), or group-shared: setgid, closed to others, so
 *    that nginx workers (www-data) and a cron job (another user) in one group
 *    share one limit.  A symbolic link is refused for the directory (lstat,
 *    then O_NOFOLLOW and a device/inode check against the lstat) and for the
 *    file (O_NOFOLLOW): whoever owns a link can re-point it.  A file or a
 *    directory owned by another user is accepted only in the group-shared
 *    case, with the directory's group and no access for others.
 *  - How it is made.  Under a temporary name, with its final mode (0600, or
 *    0660 in a group-shared directory, whatever the umask) and size, then
 *    linked into place: a sharer never opens it half made, nor finds it
 *    still 0640 under a 022 umask and is refused.
 *  - How it is touched.  A MAP_SHARED page whose file was truncated faults
 *    (SIGBUS) on the next access, which would kill every sharer at once.
 *    So the descriptor stays open and di_limfile_guard() checks the size
 *    with fstat before each access, extending the file again if it shrank.
 *    (A truncation landing between that fstat and the access, a window of a
 *    few instructions, can still fault: a limiter file is to be deleted,
 *    never truncated.)
 */
#include "di_limiter_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHARED_HINT                                             \
  "use a directory of your own (mode 0700), or a group-shared " \
  "one (mode 2770 with the group of every user of the key)"

/* A group-shared directory: its files are the group's, not only ours. */
static int group_shared(const struct stat *dsb) {
  return (dsb->st_mode & S_ISGID) != 0 && (dsb->st_mode & S_IRWXO) == 0;
}

/* Opens dir (see the rules above); returns its descriptor and fills *dsb,
 * or pushes why not and returns -1. */
static int open_dir(lua_State *L, const char *dir, struct stat *dsb) {
  struct stat sb;
  int dfd;
  if (lstat(dir, dsb) != 0) {
    lua_pushfstring(L, "cannot use %s: %s", dir, strerror(errno));
    return -1;
  }
  if (S_ISLNK(dsb->st_mode)) {
    lua_pushfstring(
        L,
        "%s is a symbolic link, refused (its owner could re-point it): "
        "give the directory itself",
        dir);
    return -1;
  }
  if (!S_ISDIR(dsb->st_mode)) {
    lua_pushfstring(L, "%s is not a directory", dir);
    return -1;
  }
  if (dsb->st_mode & S_IWOTH) {
    lua_pushfstring(L,
                    "%s is world-writable, refused (anyone could replace the "
                    "limit's file): " SHARED_HINT,
                    dir);
    return -1;
  }
  if (dsb->st_uid != geteuid() && !group_shared(dsb)) {
    lua_pushfstring(
        L,
        "%s belongs to another user (uid %d) and is not group-shared "
        "(setgid, closed to others), refused: " SHARED_HINT,
        dir, (int)dsb->st_uid);
    return -1;
  }
  dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) {
    lua_pushfstring(L, "cannot open %s: %s", dir, strerror(errno));
    return -1;
  }
  if (fstat(dfd, &sb) != 0 || sb.st_dev != dsb->st_dev ||
      sb.st_ino != dsb->st_ino) {
    close(dfd);
    lua_pushfstring(L, "%s was replaced while it was being opened, refused",
                    dir);
    return -1;
  }
  return dfd;
}

/* Creates name in dfd complete (mode, size), under a temporary name linked
 * into place; returns its descriptor, or -1 with errno (EEXIST: another
 * process made it first). */
static int create_file(int dfd, const char *name, mode_t mode, size_t size) {
  char tmp[NAME_MAX + 1];
  int fd, e, tries;
  if (snprintf(tmp, sizeof tmp, ".%s.%ld.tmp", name, (long)getpid()) >=
      (int)sizeof tmp) {
    errno = ENAMETOOLONG;
    return -1;
  }
  for (tries = 0;; tries++) {
    fd = openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                mode);
    if (fd >= 0 || errno != EEXIST || tries > 0) break;
    unlinkat(dfd, tmp, 0); /* left by a crashed process of our pid */
  }
  if (fd < 0) return -1;
  if (fchmod(fd, mode) != 0 || ftruncate(fd, (off_t)size) != 0 ||
      linkat(dfd, tmp, dfd, name, 0) != 0) {
    e = errno;
    unlinkat(dfd, tmp, 0);
    close(fd);
    errno = e;
    return -1;
  }
  unlinkat(dfd, tmp, 0);
  return fd;
}

/* Opens the file name of the directory (dfd, dsb), creating it when
 * missing; returns its descriptor, or pushes why not and returns -1. */
static int open_file(lua_State *L, int dfd, const struct stat *dsb,
                     const char *path, const char *name, size_t size) {
  mode_t mode = group_shared(dsb) ? 0660 : 0600;
  struct stat sb;
  int fd = -1, tries;
  for (tries = 0; tries < 5 && fd < 0; tries++) {
    fd = openat(dfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) fd = create_file(dfd, name, mode, size);
    if (fd < 0 && errno != ENOENT && errno != EEXIST)
      break; /* else: a race, again */
  }
  if (fd < 0) {
    if (errno == ELOOP)
      lua_pushfstring(
          L,
          "limiter file %s is a symbolic link, refused (it could point "
          "anywhere)",
          path);
    else
      lua_pushfstring(L, "cannot open limiter file %s: %s", path,
                      strerror(errno));
    return -1;
  }
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    lua_pushfstring(L, "limiter file %s is not a regular file", path);
    return -1;
  }
  if (sb.st_uid != geteuid() &&
      !(group_shared(dsb) && sb.st_gid == dsb->st_gid &&
        (sb.st_mode & S_IRWXO) == 0)) {
    close(fd);
    lua_pushfstring(
        L,
        "limiter file %s belongs to another user (uid %d), refused: only a "
        "group-shared directory's files may (with its group, closed to "
        "others)",
        path, (int)sb.st_uid);
    return -1;
  }
  /* ours, made 0600 before the directory was shared: let the group in */
  if (sb.st_uid == geteuid() && mode == 0660 && (sb.st_mode & 0660) != 0660)
    fchmod(fd, mode);
  return fd;
}

int di_limfile_open(lua_State *L, di_limfile *f, const char *path,
                    size_t size) {
  char dir[PATH_MAX];
  const char *slash = strrchr(path, '/');
  const char *name = slash ? slash + 1 : path;
  struct stat dsb;
  size_t dlen = slash == NULL ? 0 : slash == path ? 1 : (size_t)(slash - path);
  int dfd, fd;
  f->fd = -1;
  f->map = NULL;
  f->size = size;
  if (*name == '\0' || dlen >= sizeof dir) {
    lua_pushfstring(L, "bad limiter file path %s", path);
    return 0;
  }
  if (slash == NULL) {
    strcpy(dir, ".");
  } else {
    memcpy(dir, path, dlen);
    dir[dlen] = '\0';
  }
  dfd = open_dir(L, dir, &dsb);
  if (dfd < 0) return 0;
  fd = open_file(L, dfd, &dsb, path, name, size);
  close(dfd);
  if (fd < 0) return 0;
  /* Mapping more than the file holds is allowed; only touching it is not,
   * and the first guard extends a short file before anything is touched. */
  f->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (f->map == MAP_FAILED) {
    f->map = NULL;
    close(fd);
    lua_pushfstring(L, "cannot map limiter file %s: %s", path, strerror(errno));
    return 0;
  }
  f->fd = fd;
  if (di_limfile_guard(f) < 0) {
    int e = errno;
    di_limfile_close(f);
    lua_pushfstring(L, "cannot size limiter file %s: %s", path, strerror(e));
    return 0;
  }
  return 1;
}

int di_limfile_guard(di_limfile *f) {
  struct stat sb;
  if (fstat(f->fd, &sb) != 0) return -1;
  if (sb.st_size >= (off_t)f->size) return 0;
  /* Two processes may extend it at once: to the same size, so the second
   * changes nothing the first may already have written. */
  if (ftruncate(f->fd, (off_t)f->size) != 0) return -1;
  return 1;
}

void di_limfile_close(di_limfile *f) {
  if (f->map != NULL) munmap(f->map, f->size);
  if (f->fd >= 0) close(f->fd);
  f->map = NULL;
  f->fd = -1;
}
