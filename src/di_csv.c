/*
 * di_csv.c: a streaming RFC 4180 reader.  Bulk jobs read CSV exports of a
 * million rows and more, so the file is read in fixed chunks and only the
 * current record is ever held: memory stays flat whatever the file's size.
 *
 *   local r = core.csv_open(path)       -- or nil, err
 *   local names = r:header()            -- or nil, err (empty file, bad
 *                                       -- header, read error)
 *   row, line = r:next()                -- a list of strings and the line the
 *                                       -- record starts on
 *   false, why, line, row = r:next()    -- a bad record (ragged, stray quote,
 *                                       -- unterminated quote); reading goes on
 *   nil = r:next()                      -- the end
 *   nil, err = r:next()                 -- a read error ("read error: ..."):
 *                                       -- reading stops, and every later
 *                                       -- call says the same
 *
 * Quotes, doubled quotes, newlines inside quotes, a UTF-8 BOM, CRLF or LF, and
 * ',' or ';' (whichever the header line has more of, outside quotes) are
 * understood.  Bad input never crashes: it is reported for the record, with
 * its line number, and the reader carries on with the next record.  A failed
 * read is the file's fault, not the caller's, so it is a result too; only
 * running out of memory raises.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "di_aux.h"
#include "di_buf.h"
#include "di_compat.h"
#include "di_core.h"

#define CSV_MT "dialoginsight.csv"
#define CSV_CHUNK 65536
/* A record longer than this is not a CSV row but a runaway quote: stop there
 * rather than let one record eat the memory. */
#define CSV_MAX_RECORD (4 * 1024 * 1024)

enum { S_START, S_UNQUOTED, S_QUOTED, S_QUOTE };

typedef struct di_csv {
  FILE *f;
  size_t pos, len;      /* window of buf not yet consumed */
  long long consumed;   /* bytes consumed, for progress */
  long line;            /* physical line of the next byte (1-based) */
  int eof, sep, skip_lf, started, ncols, dead;
  int err;              /* errno of a failed read; 0 if none */
  di_buf field;
  char buf[CSV_CHUNK];
} di_csv;

static di_csv *csv_check(lua_State *L) {
  di_csv *c = (di_csv *)luaL_checkudata(L, 1, CSV_MT);
  if (!c->f) luaL_error(L, "attempt to use a closed CSV reader");
  return c;
}

/* Refills the window; returns 0 at the end of the file or after a read
 * error (c->err tells which).  errno is kept at the failed fread, since it
 * may be clobbered before the error is reported; and the file is not read
 * again after it, so that the error, not a later short read, is what every
 * call reports. */
static int csv_fill(di_csv *c) {
  if (c->pos < c->len) return 1;
  if (c->eof) return 0;
  errno = 0;
  c->len = fread(c->buf, 1, sizeof c->buf, c->f);
  c->pos = 0;
  if (c->len < sizeof c->buf && ferror(c->f)) {
    c->err = errno ? errno : EIO;
    c->eof = 1;
  }
  if (c->len == 0) {
    c->eof = 1;
    return 0;
  }
  return 1;
}

/* The separator: ',' or ';', whichever the first line has more of outside
 * quotes (a tie, or neither, means ','). Looks only at the first chunk.
 * The first line is the header's: blank lines before it are skipped, as the
 * reader skips them (fuzz_csv found "\r\na;b\r\n" read as one column). */
static int csv_detect(di_csv *c) {
  int st = S_START, commas = 0, semis = 0;
  size_t i = c->pos;
  while (i < c->len && (c->buf[i] == '\r' || c->buf[i] == '\n')) i++;
  /* Quotes as csv_record reads them: only a quote that starts a field opens
   * a quoted one (ab"c is plain text), else counting goes wrong past it. */
  for (; i < c->len; i++) {
    char ch = c->buf[i];
    if (st == S_QUOTED) {
      if (ch == '"') st = S_QUOTE;
      continue;
    }
    if (st == S_QUOTE && ch == '"') { st = S_QUOTED; continue; }
    if (st == S_START && ch == '"') { st = S_QUOTED; continue; }
    st = S_UNQUOTED;
    if (ch == '\n' || ch == '\r') break;
    if (ch == ',') { commas++; st = S_START; }
    else if (ch == ';') { semis++; st = S_START; }
  }
  return semis > commas ? ';' : ',';
}

static void csv_push_field(lua_State *L, di_csv *c, int row, int *n) {
  lua_pushlstring(L, c->field.len ? c->field.data : "", c->field.len);
  lua_rawseti(L, row, ++*n);
  di_buf_reset(&c->field);
}

/* Reads one record into a new table on the stack.  Returns 1 with the table
 * pushed, 0 at the end and -1 on a read error (nothing pushed: a record cut
 * by the error is not one); *why is set for a bad record (the table is still
 * pushed), *start to the record's first line. */
static int csv_record(lua_State *L, di_csv *c, const char **why, long *start) {
  int st = S_START, n = 0, row, any = 0;
  size_t total = 0;
  *why = NULL;
  /* sized for the header's columns (once it is read): a good record then
   * fills the table without regrowing it 1, 2, 4, 8... (0.24 us a row of
   * 7 fields under Lua 5.4) */
  lua_createtable(L, c->ncols, 0);
  row = lua_gettop(L);
  di_buf_reset(&c->field);
  for (;;) {
    if (!csv_fill(c)) {
      if (c->err) {
        lua_pop(L, 1);
        return -1;
      }
      if (!any) {
        lua_pop(L, 1);
        return 0;
      }
      if (st == S_QUOTED && !*why) *why = "unterminated quote (the file ends inside a quoted field)";
      csv_push_field(L, c, row, &n);
      return 1;
    }
    while (c->pos < c->len) {
      char ch = c->buf[c->pos++];
      c->consumed++;
      if (c->skip_lf) {
        c->skip_lf = 0;
        if (ch == '\n') continue;
      }
      if (!any) {
        any = 1;
        *start = c->line;
      }
      if (++total > CSV_MAX_RECORD) {
        *why = "record longer than 4 MiB (an unterminated quote?); reading stops here";
        c->dead = 1;
        csv_push_field(L, c, row, &n);
        return 1;
      }
      if (ch == '\n' || ch == '\r') {
        c->line++;
        if (st != S_QUOTED) {
          if (ch == '\r') c->skip_lf = 1;
          csv_push_field(L, c, row, &n);
          return 1;
        }
        if (ch == '\r') {
          /* CRLF inside quotes counts as one line; keep the bytes as they are */
          if (!di_buf_addc(&c->field, ch)) return luaL_error(L, "out of memory");
          if (csv_fill(c) && c->buf[c->pos] == '\n') {
            c->pos++;
            c->consumed++;
            if (!di_buf_addc(&c->field, '\n')) return luaL_error(L, "out of memory");
          }
          continue;
        }
      }
      switch (st) {
        case S_START:
          if (ch == '"') { st = S_QUOTED; continue; }
          if (ch == c->sep) { csv_push_field(L, c, row, &n); continue; }
          st = S_UNQUOTED;
          break;
        case S_UNQUOTED:
          if (ch == c->sep) { csv_push_field(L, c, row, &n); st = S_START; continue; }
          break;
        case S_QUOTED:
          if (ch == '"') { st = S_QUOTE; continue; }
          break;
        case S_QUOTE:
          if (ch == '"') { st = S_QUOTED; break; }
          if (ch == c->sep) { csv_push_field(L, c, row, &n); st = S_START; continue; }
          if (!*why) *why = "unexpected character after a closing quote";
          st = S_UNQUOTED;
          break;
      }
      if (!di_buf_addc(&c->field, ch)) return luaL_error(L, "out of memory");
    }
  }
}

/* csv_open(path) -> reader, or nil, err */
static int csv_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  di_csv *c = (di_csv *)lua_newuserdata(L, sizeof *c);
  memset(c, 0, offsetof(di_csv, buf));
  di_buf_init(&c->field);
  c->line = 1;
  luaL_getmetatable(L, CSV_MT);
  lua_setmetatable(L, -2);
  c->f = fopen(path, "rb");
  if (!c->f) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(errno));
    return 2;
  }
  {
    /* fopen takes a directory; only its first read would fail (EISDIR).
     * Caught here, it is the nil, err of a file that cannot be opened,
     * with the path, rather than a read error from header(). */
    struct stat sb;
    if (fstat(fileno(c->f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
      fclose(c->f);
      c->f = NULL;
      lua_pushnil(L);
      lua_pushfstring(L, "%s: %s", path, strerror(EISDIR));
      return 2;
    }
  }
  /* a UTF-8 BOM is not part of the first column's name */
  if (csv_fill(c) && c->len >= 3 && memcmp(c->buf, "\xEF\xBB\xBF", 3) == 0) {
    c->pos = 3;
    c->consumed = 3;
  }
  c->sep = csv_detect(c);
  return 1;
}

/* Skips records that are only an empty line.  Returns as csv_record. */
static int csv_next_record(lua_State *L, di_csv *c, const char **why, long *start) {
  for (;;) {
    int blank, got;
    if (c->dead) return 0;
    got = csv_record(L, c, why, start);
    if (got <= 0) return got;
    if (*why || di_rawlen(L, -1) != 1) return 1;
    lua_rawgeti(L, -1, 1);
    blank = di_rawlen(L, -1) == 0;
    lua_pop(L, 1);
    if (!blank) return 1;
    lua_pop(L, 1);
  }
}

/* The nil, err of a failed read. */
static int csv_read_error(lua_State *L, const di_csv *c) {
  lua_pushnil(L);
  lua_pushfstring(L, "read error: %s", strerror(c->err));
  return 2;
}

/* r:header() -> list of names, or nil, err */
static int csv_header(lua_State *L) {
  di_csv *c = csv_check(L);
  const char *why;
  long start = 0;
  int got;
  if (c->ncols) return luaL_error(L, "the header was already read");
  got = csv_next_record(L, c, &why, &start);
  if (got < 0) return csv_read_error(L, c);
  if (got == 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "the file is empty (no header line)");
    return 2;
  }
  if (why) {
    lua_pushnil(L);
    lua_pushfstring(L, "line %d: header: %s", (int)start, why);
    return 2;
  }
  c->ncols = (int)di_rawlen(L, -1);
  return 1;
}

/* r:next() -> row, line | false, why, line, row | nil (end) | nil, err */
static int csv_next(lua_State *L) {
  di_csv *c = csv_check(L);
  const char *why;
  long start = 0;
  int n, got;
  got = csv_next_record(L, c, &why, &start);
  if (got < 0) return csv_read_error(L, c);
  if (got == 0) {
    lua_pushnil(L);
    return 1;
  }
  n = (int)di_rawlen(L, -1);
  if (!why && c->ncols && n != c->ncols) {
    lua_pushboolean(L, 0);
    lua_pushfstring(L, "line %d: has %d fields, the header has %d", (int)start, n, c->ncols);
  } else if (why) {
    lua_pushboolean(L, 0);
    lua_pushfstring(L, "line %d: %s", (int)start, why);
  } else {
    lua_pushinteger(L, start);
    return 2;
  }
  lua_pushinteger(L, start);
  lua_pushvalue(L, -4); /* the row */
  return 4;
}

/* r:tell() -> bytes consumed so far (for progress and ETA) */
static int csv_tell(lua_State *L) {
  di_csv *c = csv_check(L);
  lua_pushinteger(L, (lua_Integer)c->consumed);
  return 1;
}

/* r:separator() -> "," or ";" */
static int csv_separator(lua_State *L) {
  di_csv *c = csv_check(L);
  char s = (char)c->sep;
  lua_pushlstring(L, &s, 1);
  return 1;
}

static int csv_close(lua_State *L) {
  di_csv *c = (di_csv *)luaL_checkudata(L, 1, CSV_MT);
  if (c->f) {
    fclose(c->f);
    c->f = NULL;
  }
  di_buf_free(&c->field);
  return 0;
}

static int csv_tostring(lua_State *L) {
  di_csv *c = (di_csv *)luaL_checkudata(L, 1, CSV_MT);
  lua_pushfstring(L, "dialoginsight.csv (%s)", c->f ? "open" : "closed");
  return 1;
}

static const luaL_Reg csv_methods[] = {
  {"header", csv_header},
  {"next", csv_next},
  {"tell", csv_tell},
  {"separator", csv_separator},
  {"close", csv_close},
  {NULL, NULL}
};

void di_csv_open(lua_State *L) {
  di_new_class(L, CSV_MT, csv_methods, csv_close, csv_tostring);
  lua_pushcfunction(L, csv_open);
  lua_setfield(L, -2, "csv_open");
}
