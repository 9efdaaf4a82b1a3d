/*
 * di_host.c: the `dialoginsight` program, a Lua 5.4 host modelled on
 * PUC-Rio's lua.c.  Everything it does is in Lua (lua/dialoginsight/cli/);
 * this file gives that Lua what a plain interpreter lacks:
 *
 *   - the C core linked in, as package.preload["dialoginsight.core"], and the
 *     Lua layer embedded (di_embed.c, generated at build time) behind a
 *     package searcher, so the binary needs no LUA_PATH and runs from any
 *     directory or after `make install`;
 *   - `pmain` under lua_pcall, with a message handler that adds a traceback;
 *   - Ctrl-C: by default, as in lua.c, a hook raises "interrupted!" at the
 *     next Lua instruction (said at once and without a traceback, exit 130;
 *     a second press while a call blocks stops now).  SIGTERM and SIGHUP
 *     are taken as Ctrl-C.  A batch
 *     job that must stop between two batches (sync: let the calls in flight
 *     finish, write the checkpoint) asks for a "graceful" stop instead:
 *     SIGINT then only counts the presses, which it polls through
 *     host.interrupted() (1: finish what is in flight, 2: stop now), and
 *     says at once what it does; a third Ctrl-C kills (a job that waits in
 *     one blocking call, export, ends at the second).
 *   - dialoginsight.host: interrupted, graceful, inflight, isatty, width,
 *     fsync, mode, size, truncate, lock, create, append, islink, fileid,
 *     rss: the few system calls the commands need.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "di_embed.h"

int luaopen_dialoginsight_core(lua_State *L);

static const char *progname = "dialoginsight";
static lua_State *globalL = NULL;
static volatile sig_atomic_t interrupted = 0;
static volatile sig_atomic_t graceful = 0;
static volatile sig_atomic_t graceful_tty = 0; /* stderr a terminal: a bar to end */
static volatile sig_atomic_t inflight = 0;

#define DI_INTERRUPTED "interrupted!"

/* The hook a signal installs: the next Lua instruction raises, as in lua.c
 * (without a position: main tells this error from the others). */
static void lstop(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  lua_pushliteral(L, DI_INTERRUPTED);
  lua_error(L);
}

/* As lua.c's setsignal: sigaction, not signal(), whose semantics vary
 * (System V resets the handler on delivery); an installed handler stays
 * installed until replaced, and no signal is masked while it runs. */
static void setsignal(int sig, void (*handler)(int)) {
  struct sigaction sa;
  sa.sa_handler = handler;
  sa.sa_flags = 0;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

/* Appends text to buf (of size DI_SAY) at *n, and the decimal v if v >= 0. */
#define DI_SAY 160
static void say_append(char *buf, size_t *n, const char *text, long v) {
  char digits[24];
  size_t k = 0;
  while (*text && *n < DI_SAY - 1) buf[(*n)++] = *text++;
  if (v < 0) return;
  do { digits[k++] = (char)('0' + v % 10); v /= 10; } while (v > 0 && k < sizeof digits);
  while (k > 0 && *n < DI_SAY - 1) buf[(*n)++] = digits[--k];
}

/* What a graceful job does on Ctrl-C, said at once: the job may be waiting
 * for replies for seconds before Lua runs again.  write(2) only. */
static void say_graceful(int presses) {
  char buf[DI_SAY];
  size_t n = 0;
  long calls = (long)inflight;
  ssize_t w;
  if (graceful_tty) say_append(buf, &n, "\n", -1);
  if (presses == 1) {
    say_append(buf, &n, "dialoginsight: finishing ", calls);
    say_append(buf, &n, calls == 1 ? " call in flight" : " calls in flight", -1);
    say_append(buf, &n, " (Ctrl-C again to stop now)\n", -1);
  } else if (graceful == 2) {
    say_append(buf, &n, "dialoginsight: stopping without waiting for the calls in flight "
               "(Ctrl-C again to kill)\n", -1);
  } else {
    say_append(buf, &n, "dialoginsight: stopped (second Ctrl-C): the output is incomplete\n", -1);
  }
  w = write(2, buf, n);
  (void)w;
}

/* Only async-signal-safe work here: flags, write, sigaction, and
 * lua_sethook, which lua.c relies on being safe to call from a handler. */
static void laction(int sig) {
  int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
  if (graceful && interrupted < 2) {
    interrupted++;
    say_graceful(interrupted);
    /* a job that cannot leave a blocking call ("once") ends here; the
     * others are asked to stop now, and a third Ctrl-C kills */
    if (interrupted == 2 && graceful == 1) _exit(130);
    if (interrupted == 2) setsignal(sig, SIG_DFL);
    return;
  }
  if (interrupted) {
    /* Lua has not run since the first press (a blocking call): stop now,
     * saying so; nothing of a graceful job's outputs is open yet */
    static const char stopped[] = "dialoginsight: stopped (second Ctrl-C)\n";
    ssize_t w = write(2, stopped, sizeof stopped - 1);
    (void)w;
    _exit(130);
  }
  interrupted = 1;
  {
    /* said at once: the call in flight may take its whole timeout */
    static const char stopping[] = "dialoginsight: stopping after the call in flight (Ctrl-C again to stop now)\n";
    ssize_t w = write(2, stopping, sizeof stopping - 1);
    (void)w;
  }
  lua_sethook(globalL, lstop, flag, 1);
}

/* Takes sig over unless it is ignored: nohup's SIG_IGN for SIGHUP stands.  (Not
 * for SIGINT, which a non-interactive shell ignores in every background job: as
 * in lua.c, Ctrl-C, or kill -INT, always reaches the job.) */
static void catch_signal(int sig) {
  struct sigaction old;
  if (sigaction(sig, NULL, &old) == 0 && old.sa_handler == SIG_IGN) return;
  setsignal(sig, laction);
}

/* Gives sig back to its default, if it is still ours. */
static void release_signal(int sig) {
  struct sigaction cur;
  if (sigaction(sig, NULL, &cur) == 0 && cur.sa_handler == laction) setsignal(sig, SIG_DFL);
}

static void l_message(const char *pname, const char *msg) {
  if (pname) fprintf(stderr, "%s: ", pname);
  fprintf(stderr, "%s\n", msg);
  fflush(stderr);
}

/* The message handler: adds a traceback to a string error; an error object
 * with a __tostring (the library's errors) is shown through it. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (interrupted && msg && strcmp(msg, DI_INTERRUPTED) == 0) return 1;
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* host.interrupted() -> false, or how many times Ctrl-C was pressed */
static int h_interrupted(lua_State *L) {
  if (interrupted == 0) lua_pushboolean(L, 0);
  else lua_pushinteger(L, interrupted);
  return 1;
}

/* host.graceful(how): while on, Ctrl-C only counts (see laction).  how:
 * "stream" (the job polls host.interrupted() often enough to stop at once
 * on the second press), "once" (it cannot: the second press ends the
 * process), or false. */
static int h_graceful(lua_State *L) {
  const char *how = lua_toboolean(L, 1) ? luaL_checkstring(L, 1) : NULL;
  graceful_tty = isatty(2);
  if (how == NULL) graceful = 0;
  else if (strcmp(how, "stream") == 0) graceful = 2;
  else if (strcmp(how, "once") == 0) graceful = 1;
  else return luaL_argerror(L, 1, "\"stream\", \"once\" or false");
  return 0;
}

/* host.inflight(n): the calls in flight, for what Ctrl-C says */
static int h_inflight(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  inflight = (sig_atomic_t)(n < 0 ? 0 : n > 1000000 ? 1000000 : n);
  return 0;
}

/* host.isatty(fd) */
static int h_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

/* host.width() -> columns of the terminal on stderr, or 80 */
static int h_width(lua_State *L) {
  struct winsize ws;
  int w = 80;
  if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) w = ws.ws_col;
  lua_pushinteger(L, w);
  return 1;
}

/* Failures below are luaL_fileresult's nil, "name: message", errno, as
 * liolib's functions return them, so Lua code handles both the same way. */

/* host.fsync(file) -> true, or nil, err, errno: flushes a Lua file and asks
 * the kernel to put it on disk; the journal relies on it to survive more
 * than a killed process.  A file handle has no name to put in err. */
static int h_fsync(lua_State *L) {
  luaL_Stream *p = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  if (p->closef == NULL) return luaL_error(L, "attempt to use a closed file");
  return luaL_fileresult(L, fflush(p->f) == 0 && fsync(fileno(p->f)) == 0, NULL);
}

/* host.mode(path) -> permission bits, or nil, err, errno */
static int h_mode(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(path, &st) != 0) return luaL_fileresult(L, 0, path);
  lua_pushinteger(L, st.st_mode & 07777);
  return 1;
}

/* host.size(path) -> bytes, or nil, err, errno */
static int h_size(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(path, &st) != 0) return luaL_fileresult(L, 0, path);
  lua_pushinteger(L, (lua_Integer)st.st_size);
  return 1;
}

/* host.truncate(path or file, size) -> true, or nil, err, errno: cuts a file
 * back to a known good length.  Given an open Lua file, the file itself
 * (ftruncate): a name may since have been swapped for a link. */
static int h_truncate(lua_State *L) {
  off_t size = (off_t)luaL_checkinteger(L, 2);
  luaL_Stream *p = (luaL_Stream *)luaL_testudata(L, 1, LUA_FILEHANDLE);
  if (p) {
    if (p->closef == NULL) return luaL_error(L, "attempt to use a closed file");
    return luaL_fileresult(L, fflush(p->f) == 0 && ftruncate(fileno(p->f), size) == 0, NULL);
  }
  return luaL_fileresult(L, truncate(luaL_checkstring(L, 1), size) == 0, lua_tostring(L, 1));
}

static int h_fclose(lua_State *L) {
  luaL_Stream *p = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  return luaL_fileresult(L, fclose(p->f) == 0, NULL);
}

/* Pushes path opened with flags (and `mode` when it is created: 0600 for files
 * that hold contact data, which must not be readable by others) as a Lua
 * file of fopen mode `how`, or nil, err, errno.  No file may be written
 * through a link that someone else planted: O_NOFOLLOW, and a link is said
 * as such.  unlink_new: remove the file if it was made here and could not
 * be opened as a stream. */
static int push_file(lua_State *L, const char *path, int flags, const char *how, int unlink_new,
                     mode_t mode) {
  luaL_Stream *p = (luaL_Stream *)lua_newuserdatauv(L, sizeof(luaL_Stream), 0);
  int fd;
  p->closef = NULL; /* a closed file until it is open */
  luaL_setmetatable(L, LUA_FILEHANDLE);
  fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == ELOOP) {
      lua_pushnil(L);
      lua_pushfstring(L, "%s: is a symbolic link: not followed", path);
      lua_pushinteger(L, ELOOP);
      return 3;
    }
    return luaL_fileresult(L, 0, path);
  }
  if ((p->f = fdopen(fd, how)) == NULL) {
    int e = errno;
    close(fd);
    if (unlink_new) unlink(path);
    errno = e;
    return luaL_fileresult(L, 0, path);
  }
  p->closef = h_fclose;
  return 1;
}

/* host.create(path [, readable]) -> file, or nil, err, errno: a NEW file, 0600
 * whatever the umask (readable: 0644 less the umask, for what another user's
 * daemon reads, such as metrics), opened for writing; O_EXCL refuses any
 * existing name, a symbolic link included (even a dangling one). */
static int h_create(lua_State *L) {
  mode_t mode = lua_toboolean(L, 2) ? 0644 : 0600;
  return push_file(L, luaL_checkstring(L, 1), O_WRONLY | O_CREAT | O_EXCL, "wb", 1, mode);
}

/* host.append(path) -> file, or nil, err, errno: path opened for reading and
 * appending ("a+b"), created 0600 when it does not exist.  A sync's journal
 * and rejects file are cut back and rewritten: through a link planted at
 * their name the sync would truncate whatever file it points to. */
static int h_append(lua_State *L) {
  return push_file(L, luaL_checkstring(L, 1), O_RDWR | O_APPEND | O_CREAT, "a+b", 0, 0600);
}

/* host.islink(path) -> whether path is a symbolic link (false when it does
 * not exist), or nil, err, errno */
static int h_islink(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (lstat(path, &st) != 0) {
    if (errno == ENOENT) { lua_pushboolean(L, 0); return 1; }
    return luaL_fileresult(L, 0, path);
  }
  lua_pushboolean(L, S_ISLNK(st.st_mode));
  return 1;
}

/* host.lock(file) -> true, or nil, err, pid: an exclusive lock (fcntl
 * F_SETLK, whole file) on an open Lua file, so that two runs never write one
 * journal.  It lasts until the process ends or closes any descriptor of that
 * file (fcntl locks belong to the process), so the caller keeps the file open
 * and never opens it a second time meanwhile.  The file must be open for
 * writing.  When another process holds it, pid is that process (F_GETLK). */
static int h_lock(lua_State *L) {
  luaL_Stream *p = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  struct flock fl;
  int fd, tries;
  if (p->closef == NULL) return luaL_error(L, "attempt to use a closed file");
  fd = fileno(p->f);
  /* the holder may let go between F_SETLK and F_GETLK: then try again */
  for (tries = 0; tries < 3; tries++) {
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &fl) == 0) {
      lua_pushboolean(L, 1);
      return 1;
    }
    if (errno != EACCES && errno != EAGAIN) return luaL_fileresult(L, 0, NULL);
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_GETLK, &fl) != 0) return luaL_fileresult(L, 0, NULL);
    if (fl.l_type != F_UNLCK) {
      lua_pushnil(L);
      lua_pushfstring(L, "locked by process %d", (int)fl.l_pid);
      lua_pushinteger(L, (lua_Integer)fl.l_pid);
      return 3;
    }
  }
  errno = EAGAIN;
  return luaL_fileresult(L, 0, NULL);
}

static const char *file_type(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "directory";
  if (S_ISFIFO(m)) return "fifo";
  if (S_ISCHR(m)) return "character device";
  if (S_ISBLK(m)) return "block device";
  if (S_ISSOCK(m)) return "socket";
  return "other";
}

/* Where a dangling symbolic link at cur points: its target, relative to the
 * link's directory.  Returns 1 when cur was such a link, 0 when it is none
 * (a file yet to be made), -1 when the target's name is too long. */
static int follow_dangling(char *cur, size_t size) {
  char link[PATH_MAX], next[PATH_MAX];
  const char *slash;
  int len;
  ssize_t n = readlink(cur, link, sizeof link - 1);
  if (n < 0) return 0;
  link[n] = '\0';
  slash = strrchr(cur, '/');
  if (link[0] == '/' || slash == NULL)
    len = snprintf(next, sizeof next, "%s", link);
  else
    len = snprintf(next, sizeof next, "%.*s/%s", (int)(slash - cur), cur, link);
  if (len < 0 || (size_t)len >= sizeof next || (size_t)len >= size) return -1;
  memcpy(cur, next, (size_t)len + 1);
  return 1;
}

/* host.fileid(path) -> id, type, or nil, err, errno: what path names, so
 * that two spellings of one file compare equal.  An existing file (through
 * any symbolic links) is "inode:DEV:INO" and its type ("file", "directory",
 * "fifo", "character device", ...); a file yet to be made is "path:" and
 * the absolute path it would get (its directory resolved, a dangling link
 * followed: writing to it makes its target), with type "none". */
static int h_fileid(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char cur[PATH_MAX], dir[PATH_MAX], real[PATH_MAX];
  const char *base, *slash;
  struct stat st;
  int hops = 0, followed;
  if (snprintf(cur, sizeof cur, "%s", path) >= (int)sizeof cur) {
    errno = ENAMETOOLONG;
    return luaL_fileresult(L, 0, path);
  }
  for (;;) {
    if (stat(cur, &st) == 0) {
      lua_pushfstring(L, "inode:%I:%I", (lua_Integer)st.st_dev, (lua_Integer)st.st_ino);
      lua_pushstring(L, file_type(st.st_mode));
      return 2;
    }
    if (errno != ENOENT) return luaL_fileresult(L, 0, path);
    followed = follow_dangling(cur, sizeof cur);
    if (followed == 0) break;
    if (followed < 0 || ++hops > 40) {
      errno = followed < 0 ? ENAMETOOLONG : ELOOP;
      return luaL_fileresult(L, 0, path);
    }
  }
  slash = strrchr(cur, '/');
  base = slash ? slash + 1 : cur;
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == cur) snprintf(dir, sizeof dir, "/");
  else snprintf(dir, sizeof dir, "%.*s", (int)(slash - cur), cur);
  if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
    errno = EISDIR;
    return luaL_fileresult(L, 0, path);
  }
  if (!realpath(dir, real)) return luaL_fileresult(L, 0, path);
  lua_pushfstring(L, "path:%s%s%s", real, strcmp(real, "/") == 0 ? "" : "/", base);
  lua_pushliteral(L, "none");
  return 2;
}

/* host.rss() -> peak resident set size in kB */
static int h_rss(lua_State *L) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  lua_pushinteger(L, ru.ru_maxrss);
  return 1;
}

static const luaL_Reg host_funcs[] = {
  {"interrupted", h_interrupted},
  {"graceful", h_graceful},
  {"inflight", h_inflight},
  {"isatty", h_isatty},
  {"width", h_width},
  {"fsync", h_fsync},
  {"mode", h_mode},
  {"size", h_size},
  {"truncate", h_truncate},
  {"lock", h_lock},
  {"create", h_create},
  {"append", h_append},
  {"islink", h_islink},
  {"fileid", h_fileid},
  {"rss", h_rss},
  {NULL, NULL}
};

static int luaopen_host(lua_State *L) {
  luaL_newlib(L, host_funcs);
  return 1;
}

/* The searcher of the embedded Lua layer: require "dialoginsight.client"
 * finds lua/dialoginsight/client.lua as it was at build time. */
static int embedded_searcher(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const di_embedded *m;
  for (m = di_embedded_modules; m->name; m++) {
    if (strcmp(m->name, name) == 0) {
      if (luaL_loadbufferx(L, (const char *)m->data, m->size, m->chunkname, "t") != LUA_OK)
        return luaL_error(L, "error loading embedded module '%s':\n\t%s", name,
                          lua_tostring(L, -1));
      lua_pushstring(L, m->chunkname + 1);
      return 2;
    }
  }
  lua_pushfstring(L, "no embedded module '%s'", name);
  return 1;
}

/* package.preload for the C parts; the embedded searcher goes second, right
 * after preload, so that this binary's own Lua layer wins over any other
 * version found on LUA_PATH. */
static void install_modules(lua_State *L) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_dialoginsight_core);
  lua_setfield(L, -2, "dialoginsight.core");
  lua_pushcfunction(L, luaopen_host);
  lua_setfield(L, -2, "dialoginsight.host");
  lua_pop(L, 1);
  lua_getfield(L, -1, "searchers");
  lua_getglobal(L, "table");
  lua_getfield(L, -1, "insert");
  lua_pushvalue(L, -3);
  lua_pushinteger(L, 2);
  lua_pushcfunction(L, embedded_searcher);
  lua_call(L, 3, 0);
  lua_pop(L, 3);
}

/* pmain(argc, argv): everything that may raise runs here, under lua_pcall.
 * Leaves the exit status on the stack. */
static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int i;
  luaL_checkversion(L);
  luaL_openlibs(L);
  install_modules(L);
  /* arg[0] is the program, arg[1..] the command line, as lua.c does */
  lua_createtable(L, argc, 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  lua_setglobal(L, "arg");
  lua_getglobal(L, "require");
  lua_pushliteral(L, "dialoginsight.cli.main");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "main");
  lua_getglobal(L, "arg");
  lua_call(L, 1, 1);
  return 1;
}

int main(int argc, char **argv) {
  int status, code = 1;
  lua_State *L = luaL_newstate();
  if (argv[0] && argv[0][0]) progname = argv[0];
  if (L == NULL) {
    l_message(progname, "cannot create state: not enough memory");
    return EXIT_FAILURE;
  }
  globalL = L;
  /* a kill or a closed terminal stops a job as Ctrl-C does: its summary,
   * its journal written, rather than silently */
  setsignal(SIGINT, laction);
  setsignal(SIGTERM, laction);
  catch_signal(SIGHUP);
  lua_pushcfunction(L, msghandler);
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 1);
  if (status != LUA_OK && interrupted && lua_type(L, -1) == LUA_TSTRING &&
      strcmp(lua_tostring(L, -1), DI_INTERRUPTED) == 0) {
    /* the hook's error, wherever it struck: Ctrl-C, not a bug to trace */
    l_message("dialoginsight", "interrupted (Ctrl-C)");
    code = 130;
  } else if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    l_message(progname, msg ? msg : "(error object is not a string)");
    code = interrupted ? 130 : 1;
  } else if (lua_isinteger(L, -1)) {
    code = (int)lua_tointeger(L, -1);
  } else {
    code = lua_toboolean(L, -1) || lua_isnil(L, -1) ? 0 : 1;
  }
  release_signal(SIGINT);
  release_signal(SIGTERM);
  release_signal(SIGHUP);
  lua_close(L);
  return code;
}
