/*
 * di_csv.c: a streaming RFC 4180 reader.  Bulk jobs read CSV exports of a
 * million rows and more, so the file is read in fixed chunks and only the
 * current record is ever held: memory stays flat whatever the file's size.
 * The record is held in C (its bytes and where each field ends), so that
 * next_record can build a wire record from it without a Lua string per
 * field; next() makes the Lua row from it.
 *
 *   local r = core.csv_open(path [, { max_record = bytes }])  -- or nil, err
 *   local names = r:header()            -- or nil, err (empty file, bad
 *                                       -- header, read error)
 *   row, line = r:next()                -- a list of strings and the line the
 *                                       -- record starts on
 *   false, why, line, row = r:next()    -- a bad record (ragged, stray quote,
 *                                       -- runaway quote, too long); reading
 *                                       -- goes on
 *   nil = r:next()                      -- the end
 *   nil, err = r:next()                 -- reading cannot go on: a read error
 *                                       -- ("line N: read error: ..."), or a runaway
 *                                       -- quote in an input that cannot be
 *                                       -- read again; every later call says
 *                                       -- the same
 *   true, line = r:next_record(plan, batch)
 *                                       -- a record that the column plan
 *                                       -- (di_rows.c) took: built into the
 *                                       -- batch, no Lua value made; else as
 *                                       -- r:next() (a row it declines comes
 *                                       -- back as a row, for the Lua builder)
 *   lines, blank = r:lines()            -- lines read so far (a last line
 *                                       -- without a line end counts), and
 *                                       -- the blank lines skipped among them
 *   offset, hash, cut = r:mark()        -- the input the records so far were
 *                                       -- read from: its first offset bytes
 *                                       -- (every byte the reader looked at,
 *                                       -- also past a runaway quote it went
 *                                       -- back from), their hash (FNV-1a,
 *                                       -- 64 bits, 16 hex digits), and
 *                                       -- whether a record was ended by the
 *                                       -- end of the file (then a longer
 *                                       -- file would read differently)
 *   hash = r:digest(n)                  -- the hash of the file's first n
 *                                       -- bytes, read again from the same
 *                                       -- open file (nil, why when it holds
 *                                       -- fewer); the reading goes on as if
 *                                       -- it were not called
 *   bytes = r:size()                    -- the open file's size now
 *
 * Quotes, doubled quotes, newlines inside quotes, a UTF-8 BOM, CRLF or LF, and
 * ',' or ';' (whichever the header line has more of, outside quotes) are
 * understood.  Bad input never crashes: it is reported for the record, with
 * its line number, and the reader carries on with the next record.  A failed
 * read is the file's fault, not the caller's, so it is a result too; only
 * running out of memory raises.
 *
 * A record that never ends must not end the file.  A quoted field that
 * reaches a line end and then never closes (the file ends inside it), or
 * closes with a quote followed by text (the stray quote has paired with the
 * next field's opening one), is a runaway quote: the lines it swallowed are
 * rows of their own.  The record is reported cut at the end of the line the
 * quote opened on, and reading goes back (a seek) to the next line.  A
 * record over max_record bytes (4 MiB) is scanned to its end without being
 * stored, and is one bad record: the rest of the file is read as usual.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "di_aux.h"
#include "di_buf.h"
#include "di_compat.h"
#include "di_hash.h"
#include "di_core.h"
#include "di_rows.h"

#define CSV_MT "dialoginsight.csv"
#define CSV_CHUNK 65536
/* Bytes of one record kept in memory; the rest of a longer one is scanned
 * but not stored (memory stays bounded), and the record is refused. */
#define CSV_MAX_RECORD (4 * 1024 * 1024)

enum { S_START, S_UNQUOTED, S_QUOTED, S_QUOTE };

typedef struct di_csv {
  FILE *f;
  size_t pos, len;      /* window of buf not yet consumed */
  long long consumed;   /* file offset of buf[pos]: bytes before it */
  long line;            /* physical line of the next byte (1-based) */
  long blanks;          /* blank lines skipped */
  size_t max_record;    /* bytes of a record kept at most */
  int eof, sep, skip_lf, ncols;
  long long line_off;   /* offset where the current line starts */
  int err;              /* errno of a failed read or seek; 0 if none */
  unsigned long long hash; /* FNV-1a of the input's first `hashed` bytes */
  long long hashed;     /* the bytes the parser consumed, at most */
  int cut;              /* a record was ended by the end of the file */
  char stop[192];       /* why reading cannot go on, when not a read error */
  char why[256];        /* the message of the current bad record */
  di_buf rec;           /* the bytes of the current record's fields */
  size_t *ends;         /* where each of its fields ends in rec */
  int nf, ends_cap;     /* its fields; room in ends */
  char buf[CSV_CHUNK];
} di_csv;

/* One record being read: its state, and the quoted field that may turn out
 * to be a runaway. */
typedef struct csv_rec {
  int st, n, any, overflow;
  int q_n;              /* fields before the current quoted field */
  size_t total;         /* bytes of the record so far */
  long start;           /* the line it starts on */
  long q_line;          /* the line the current quoted field opened on */
  long long q_resume;   /* offset of the line after it, once the field has
                           reached that line end; -1 before */
  long q_next;          /* that line's number */
  size_t q_keep;        /* c->rec's length at that line end (SIZE_MAX when
                           the record was already over the limit) */
} csv_rec;

static di_csv *csv_check(lua_State *L) {
  di_csv *c = (di_csv *)luaL_checkudata(L, 1, CSV_MT);
  if (!c->f) luaL_error(L, "attempt to use a closed CSV reader");
  return c;
}


/* Adds to the hash the bytes of the window the parser consumed that it
 * does not hold yet: called before the window is refilled or dropped, so
 * that every byte of the input is hashed once, in order, whatever the
 * seeks back after a runaway quote read again. */
static void csv_hash(di_csv *c) {
  long long base = c->consumed - (long long)c->pos, from = c->hashed > base ? c->hashed : base;
  if (c->consumed <= from) return;
  c->hash = di_fnv(c->hash, (const unsigned char *)c->buf + (from - base), (size_t)(c->consumed - from));
  c->hashed = c->consumed;
}

/* Refills the window; returns 0 at the end of the file or after a read
 * error (c->err tells which).  errno is kept at the failed fread, since it
 * may be clobbered before the error is reported; and the file is not read
 * again after it, so that the error, not a later short read, is what every
 * call reports. */
static int csv_fill(di_csv *c) {
  if (c->pos < c->len) return 1;
  if (c->eof) return 0;
  csv_hash(c);
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

/* Ends the current field (its bytes are the end of c->rec), unless the
 * record is over the limit: its fields are no longer stored. */
static void csv_push_field(lua_State *L, di_csv *c, csv_rec *r) {
  if (r->overflow) return;
  if (r->n == c->ends_cap) {
    int cap = c->ends_cap ? c->ends_cap * 2 : 64;
    size_t *ends = (size_t *)realloc(c->ends, (size_t)cap * sizeof *ends);
    if (!ends) luaL_error(L, "out of memory");
    c->ends = ends;
    c->ends_cap = cap;
  }
  c->ends[r->n++] = c->rec.len;
  c->nf = r->n;
}

static void csv_addc(lua_State *L, di_csv *c, const csv_rec *r, char ch) {
  if (!r->overflow && !di_buf_addc(&c->rec, ch)) luaL_error(L, "out of memory");
}

/* The record went over the limit: what was read of the current field is
 * kept, and nothing more is stored. */
static void csv_overflow(lua_State *L, di_csv *c, csv_rec *r) {
  csv_push_field(L, c, r);
  r->overflow = 1;
}

/* Counts one more byte of the record (inline: this is the per-byte path). */
#define csv_count(L, c, r) \
  do { if (++(r)->total > (c)->max_record && !(r)->overflow) csv_overflow((L), (c), (r)); } while (0)

/* Lines read so far: a line counts once its first byte was read. */
static long csv_lines_read(const di_csv *c) {
  return c->line - 1 + (c->consumed > c->line_off ? 1 : 0);
}

/* The end of a record that is over the limit. */
static const char *csv_too_long(di_csv *c, const csv_rec *r) {
  snprintf(c->why, sizeof c->why, "record longer than %lu bytes (%llu bytes, lines %ld-%ld): "
           "only its first %lu bytes are kept", (unsigned long)c->max_record,
           (unsigned long long)r->total, r->start, csv_lines_read(c), (unsigned long)c->max_record);
  return c->why;
}

/* A newline inside a quoted field: kept as it is (CRLF counts as one line).
 * The field's first one is where a runaway would be cut and read again. */
static void csv_quoted_newline(lua_State *L, di_csv *c, csv_rec *r, char ch) {
  size_t keep = r->overflow ? (size_t)-1 : c->rec.len;
  csv_addc(L, c, r, ch);
  if (ch == '\r' && csv_fill(c) && c->buf[c->pos] == '\n') {
    c->pos++;
    c->consumed++;
    csv_count(L, c, r);
    csv_addc(L, c, r, '\n');
  }
  c->line_off = c->consumed;
  if (r->q_resume < 0) {
    r->q_resume = c->consumed;
    r->q_next = c->line;
    r->q_keep = keep;
  }
}

/* A runaway quote (see the top of the file), noticed at the end of the file
 * or at a stray quote: the record is cut at the end of the line the quote
 * opened on, and reading goes back to the next line.  When the input cannot
 * be read again (a pipe), the cut record is still returned, and reading
 * stops there: every later call reports why.  Returns 1 (the record). */
static int csv_runaway(lua_State *L, di_csv *c, csv_rec *r, const char **why, int at_eof) {
  long noticed = csv_lines_read(c);
  if (!r->overflow) {
    if (c->rec.len > r->q_keep) c->rec.len = r->q_keep;
    csv_push_field(L, c, r);
  } else if (r->n == r->q_n + 1 && c->ends[r->n - 1] > r->q_keep) {
    /* the runaway field itself went over the limit: cut what was kept */
    c->ends[r->n - 1] = r->q_keep;
  }
  csv_hash(c);
  c->pos = c->len = 0;
  c->skip_lf = 0;
  clearerr(c->f);
  if (fseeko(c->f, (off_t)r->q_resume, SEEK_SET) != 0) {
    c->err = errno ? errno : ESPIPE;
    c->eof = 1;
    snprintf(c->stop, sizeof c->stop, "line %ld: reading stops: the input cannot be read "
             "again from line %ld, after the runaway quote of line %ld (%s)", noticed,
             r->q_next, r->q_line, strerror(c->err));
  } else {
    c->eof = 0;
    c->consumed = c->line_off = r->q_resume;
    c->line = r->q_next;
  }
  {
    char how[64];
    snprintf(how, sizeof how, at_eof ? "never closes (the file ends on line %ld)"
             : "runs on to a stray quote on line %ld", noticed);
    snprintf(c->why, sizeof c->why, "unterminated quote: the quoted field opened on line %ld "
             "%s; the record is cut at the end of line %ld and reading %s line %ld", r->q_line,
             how, r->q_line, c->err ? "cannot go back to" : "resumes on", r->q_next);
  }
  *why = c->why;
  return 1;
}

/* The end of the file within a record. */
static int csv_record_eof(lua_State *L, di_csv *c, csv_rec *r, const char **why) {
  c->cut = 1;
  if (r->st == S_QUOTED && r->q_resume >= 0) return csv_runaway(L, c, r, why, 1);
  if (r->st == S_QUOTED && !*why) *why = "unterminated quote (the file ends inside a quoted field)";
  csv_push_field(L, c, r);
  if (r->overflow) *why = csv_too_long(c, r);
  return 1;
}

/* Reads one record into c->rec and c->ends (c->nf fields).  Returns 1, 0 at
 * the end and -1 when reading cannot go on (a record cut by a read error is
 * not one); *why is set for a bad record (its fields are still there),
 * *start to the record's first line. */
static int csv_record(lua_State *L, di_csv *c, const char **why, long *start) {
  csv_rec r;
  memset(&r, 0, sizeof r);
  r.st = S_START;
  r.q_resume = -1;
  *why = NULL;
  if (c->err && c->pos >= c->len) return -1;
  di_buf_reset(&c->rec);
  c->nf = 0;
  for (;;) {
    if (!csv_fill(c)) {
      if (c->err || !r.any) return c->err ? -1 : 0;
      return csv_record_eof(L, c, &r, why);
    }
    while (c->pos < c->len) {
      char ch = c->buf[c->pos++];
      c->consumed++;
      if (c->skip_lf) {
        c->skip_lf = 0;
        if (ch == '\n') {
          c->line_off = c->consumed;
          continue;
        }
      }
      if (!r.any) {
        r.any = 1;
        r.start = *start = c->line;
      }
      csv_count(L, c, &r);
      if (ch == '\n' || ch == '\r') {
        c->line++;
        c->line_off = c->consumed;
        if (r.st == S_QUOTED) {
          csv_quoted_newline(L, c, &r, ch);
          continue;
        }
        if (ch == '\r') c->skip_lf = 1;
        csv_push_field(L, c, &r);
        if (r.overflow) *why = csv_too_long(c, &r);
        return 1;
      }
      switch (r.st) {
        case S_START:
          if (ch == '"') {
            r.st = S_QUOTED;
            r.q_line = c->line;
            r.q_resume = -1;
            r.q_n = r.n;
            continue;
          }
          if (ch == c->sep) { csv_push_field(L, c, &r); continue; }
          r.st = S_UNQUOTED;
          break;
        case S_UNQUOTED:
          if (ch == c->sep) { csv_push_field(L, c, &r); r.st = S_START; continue; }
          break;
        case S_QUOTED:
          if (ch == '"') { r.st = S_QUOTE; continue; }
          break;
        case S_QUOTE:
          if (ch == '"') { r.st = S_QUOTED; break; }
          if (ch == c->sep) { csv_push_field(L, c, &r); r.st = S_START; continue; }
          /* text after a closing quote: a stray quote; when the field ran
           * over a line end, the quote that opened it was the stray one */
          if (r.q_resume >= 0) return csv_runaway(L, c, &r, why, 0);
          if (!*why) *why = "unexpected character after a closing quote";
          r.st = S_UNQUOTED;
          break;
      }
      csv_addc(L, c, &r, ch);
    }
  }
}

/* csv_open(path [, opts]) -> reader, or nil, err.  opts.max_record: bytes of
 * one record kept at most (4 MiB); a smaller one lets the specs and the
 * fuzzer reach that path with small files. */
static int csv_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t max_record = CSV_MAX_RECORD;
  di_csv *c;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "max_record");
    if (!lua_isnil(L, -1)) {
      lua_Number n = luaL_checknumber(L, -1);
      luaL_argcheck(L, n >= 1 && n <= CSV_MAX_RECORD && n == (lua_Number)(size_t)n, 2,
                    "max_record must be a whole number of bytes, 1 to 4 MiB");
      max_record = (size_t)n;
    }
    lua_pop(L, 1);
  }
  c = (di_csv *)lua_newuserdata(L, sizeof *c);
  memset(c, 0, offsetof(di_csv, buf));
  di_buf_init(&c->rec);
  c->hash = DI_FNV_BASIS;
  c->line = 1;
  c->max_record = max_record;
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
    int got = csv_record(L, c, why, start);
    if (got <= 0) return got;
    if (*why || c->nf != 1 || c->ends[0] != 0) return 1;
    c->blanks++;
  }
}

/* Pushes the current record as a list of strings, sized for its fields: a
 * table filled without regrowing it 1, 2, 4, 8... (0.24 us a row of 7
 * fields under Lua 5.4). */
static void csv_push_row(lua_State *L, const di_csv *c) {
  int j;
  size_t at = 0;
  lua_createtable(L, c->nf, 0);
  for (j = 0; j < c->nf; j++) {
    lua_pushlstring(L, c->rec.len ? c->rec.data + at : "", c->ends[j] - at);
    lua_rawseti(L, -2, j + 1);
    at = c->ends[j];
  }
}

/* The nil, err of a reader that cannot go on; after a read error, nothing
 * is read any more, so c->line is still the line it failed on. */
static int csv_read_error(lua_State *L, const di_csv *c) {
  lua_pushnil(L);
  if (c->stop[0])
    lua_pushstring(L, c->stop);
  else
    lua_pushfstring(L, "line %d: read error: %s", (int)c->line, strerror(c->err));
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
  c->ncols = c->nf;
  csv_push_row(L, c);
  return 1;
}

/* What next() and next_record() return for the record just read (got, why
 * and start from csv_next_record) when it is not a good one: the end, the
 * reader's failure, or a bad record (false, why, line, row).  Returns 0 for
 * a good record, with nothing pushed. */
static int csv_not_good(lua_State *L, const di_csv *c, int got, const char *why, long start) {
  if (got < 0) return csv_read_error(L, c);
  if (got == 0) {
    lua_pushnil(L);
    return 1;
  }
  if (!why && c->ncols && c->nf != c->ncols) {
    lua_pushboolean(L, 0);
    lua_pushfstring(L, "line %d: has %d fields, the header has %d", (int)start, c->nf, c->ncols);
  } else if (why) {
    lua_pushboolean(L, 0);
    lua_pushfstring(L, "line %d: %s", (int)start, why);
  } else {
    return 0;
  }
  lua_pushinteger(L, start);
  csv_push_row(L, c);
  return 4;
}

/* r:next() -> row, line | false, why, line, row | nil (end) | nil, err */
static int csv_next(lua_State *L) {
  di_csv *c = csv_check(L);
  const char *why;
  long start = 0;
  int got = csv_next_record(L, c, &why, &start);
  int n = csv_not_good(L, c, got, why, start);
  if (n) return n;
  csv_push_row(L, c);
  lua_pushinteger(L, start);
  return 2;
}

/* r:next_record(plan, batch) -> true, line (the record is in the batch) |
 * row, line (the plan declines it: the caller's builder says why) | as
 * r:next() for the rest.  See di_rows.h. */
static int csv_next_planned(lua_State *L) {
  di_csv *c = csv_check(L);
  const char *why;
  long start = 0;
  int got, n;
  di_rows_check(L, 2, 3);
  got = csv_next_record(L, c, &why, &start);
  n = csv_not_good(L, c, got, why, start);
  if (n) return n;
  if (di_rows_add(L, 2, 3, c->rec.data, c->ends, c->nf, start))
    lua_pushboolean(L, 1);
  else
    csv_push_row(L, c);
  lua_pushinteger(L, start);
  return 2;
}

/* r:tell() -> bytes consumed so far (for progress and ETA) */
static int csv_tell(lua_State *L) {
  di_csv *c = csv_check(L);
  lua_pushinteger(L, (lua_Integer)c->consumed);
  return 1;
}

/* r:mark() -> offset, hash, cut (see the top of the file) */
static int csv_mark(lua_State *L) {
  di_csv *c = csv_check(L);
  char hex[17];
  csv_hash(c);
  snprintf(hex, sizeof hex, "%016llx", c->hash);
  lua_pushinteger(L, (lua_Integer)c->hashed);
  lua_pushstring(L, hex);
  lua_pushboolean(L, c->cut);
  return 3;
}

/* r:digest(n) -> the hash of the file's first n bytes | nil, why.  pread:
 * the stream's position and window are left as they are. */
static int csv_digest(lua_State *L) {
  di_csv *c = csv_check(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  unsigned long long h = DI_FNV_BASIS;
  long long at = 0;
  unsigned char chunk[CSV_CHUNK];
  char hex[17];
  luaL_argcheck(L, n >= 0, 2, "a number of bytes");
  while (at < (long long)n) {
    size_t want = (size_t)((long long)n - at < CSV_CHUNK ? (long long)n - at : CSV_CHUNK);
    ssize_t got = pread(fileno(c->f), chunk, want, (off_t)at);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      lua_pushnil(L);
      lua_pushfstring(L, "read error: %s", strerror(errno));
      return 2;
    }
    if (got == 0) {
      char why[96];
      snprintf(why, sizeof why, "it holds %lld bytes, fewer than %lld", at, (long long)n);
      lua_pushnil(L);
      lua_pushstring(L, why);
      return 2;
    }
    h = di_fnv(h, chunk, (size_t)got);
    at += got;
  }
  snprintf(hex, sizeof hex, "%016llx", h);
  lua_pushstring(L, hex);
  return 1;
}

/* r:size() -> the open file's size now, or nil, why */
static int csv_size(lua_State *L) {
  di_csv *c = csv_check(L);
  struct stat sb;
  if (fstat(fileno(c->f), &sb) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  lua_pushinteger(L, (lua_Integer)sb.st_size);
  return 1;
}

/* r:lines() -> lines read so far (a last line without a line end counts),
 * blank lines skipped among them: with the lines of the records returned,
 * they account for every line of the file. */
static int csv_lines(lua_State *L) {
  di_csv *c = csv_check(L);
  lua_pushinteger(L, (lua_Integer)csv_lines_read(c));
  lua_pushinteger(L, (lua_Integer)c->blanks);
  return 2;
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
  di_buf_free(&c->rec);
  free(c->ends);
  c->ends = NULL;
  c->ends_cap = 0;
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
  {"next_record", csv_next_planned},
  {"tell", csv_tell},
  {"mark", csv_mark},
  {"digest", csv_digest},
  {"size", csv_size},
  {"lines", csv_lines},
  {"separator", csv_separator},
  {"close", csv_close},
  {NULL, NULL}
};

void di_csv_open(lua_State *L) {
  di_new_class(L, CSV_MT, csv_methods, csv_close, csv_tostring);
  lua_pushcfunction(L, csv_open);
  lua_setfield(L, -2, "csv_open");
}
