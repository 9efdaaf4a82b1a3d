/*
 * di_json_pick.c: the decoding of a Merge reply that reads only what the
 * outcome of each record needs.
 *
 *   core.decode_outcomes(text) -> { Success, ErrorCode, ErrorMessage,
 *       idRequest, CreatedRecords, UpdatedRecords,
 *       Records = { { IdRecord, Status, ValidationResult, Message }, ... } }
 *     | nil, message
 *   (those members in any case, each under its name as sent)
 *
 * A sync reads a 100-record Merge reply per batch; the reply echoes each
 * record's ID (and, from some servers, its Data and the stored Record), and
 * the server's Trace.  Decoding all of it with cjson, then walking it again
 * to fix numbers and nulls, made a fifth of the sync's CPU.  This parser
 * checks the whole text as strictly as core.decode does (src/di_json.c,
 * di_json_scan.c: only JSON tokens, no raw control characters), but builds
 * Lua values for the members above only, and skips the rest without making
 * a single Lua string of it.  The values are what core.decode gives for
 * them: integers within 2^53 as integers, others as numbers, a number a
 * double cannot hold exactly as its text; a null member is absent, a null
 * element of an array is cjson.null; a container where a scalar or a
 * record was expected is built whole.  spec/client/json_spec.lua checks the
 * agreement on random replies (a #property).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "di_buf.h"
#include "di_compat.h"
#include "di_core.h"
#include "di_json.h"
#include "di_json_scan.h"

/* As deep as lua-cjson goes (its decode_max_depth), so that the two agree */
#define PICK_MAX_DEPTH 1000
#define PICK_MAX_EXACT 9007199254740992.0

typedef struct pick {
  lua_State *L;
  const unsigned char *s, *end;
  const char *err; /* set on the first error */
  size_t at;       /* offset of the error */
  di_buf str;      /* scratch for unescaped strings */
  int held;        /* stack slots held by containers not yet made (hold_done) */
  const char *sp;  /* the last string read: in the text itself when it had no */
  size_t sn;       /* escape (most do, and then nothing is copied), else str */
} pick;

/* WANT_FULL: a container where the outcome reader wanted a scalar or a
 * record; it is built whole, as core.decode builds it, so that the two
 * never disagree on a member this function keeps. */
enum { WANT_SKIP, WANT_TOP, WANT_RECORDS, WANT_RECORD, WANT_FULL };

static int bad(pick *p, const unsigned char *where, const char *why) {
  if (!p->err) {
    p->err = why;
    p->at = (size_t)(where - p->s);
  }
  return 0;
}

static const unsigned char *ws(const unsigned char *c, const unsigned char *end) {
  while (c < end && (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r')) c++;
  return c;
}

static int hexval(int ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

static int hex4(const unsigned char *c, const unsigned char *end, unsigned *out) {
  int i, v;
  unsigned u = 0;
  if (end - c < 4) return 0;
  for (i = 0; i < 4; i++) {
    if ((v = hexval(c[i])) < 0) return 0;
    u = u << 4 | (unsigned)v;
  }
  *out = u;
  return 1;
}

static void put_utf8(di_buf *b, unsigned cp) {
  char u[4];
  if (cp < 0x80) { u[0] = (char)cp; di_buf_add(b, u, 1); }
  else if (cp < 0x800) {
    u[0] = (char)(0xC0 | cp >> 6); u[1] = (char)(0x80 | (cp & 0x3F));
    di_buf_add(b, u, 2);
  } else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | cp >> 12); u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F));
    di_buf_add(b, u, 3);
  } else {
    u[0] = (char)(0xF0 | cp >> 18); u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    u[2] = (char)(0x80 | (cp >> 6 & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F));
    di_buf_add(b, u, 4);
  }
}


/* Reads the string at *pc (its opening quote); with keep, its unescaped
 * bytes are at p->sp, p->sn.  Moves *pc past the closing quote. */
static int string(pick *p, const unsigned char **pc, int keep) {
  const unsigned char *c = *pc + 1, *end = p->end;
  const unsigned char *first = di_json_plain(c, end, 0);
  if (first < end && *first == '"') { /* no escape: the text's own bytes */
    p->sp = (const char *)c;
    p->sn = (size_t)(first - c);
    *pc = first + 1;
    return 1;
  }
  if (keep) di_buf_reset(&p->str);
  for (;;) {
    const unsigned char *run = c;
    c = di_json_plain(c, end, 0);
    if (keep && c > run) di_buf_add(&p->str, run, (size_t)(c - run));
    if (c >= end) return bad(p, c, "unterminated string");
    if (*c == '"') break;
    if (*c < 0x20) return bad(p, c, "unescaped control character in a string");
    /* a backslash */
    if (c + 1 >= end) return bad(p, c, "unterminated string");
    switch (c[1]) {
    case '"': case '\\': case '/':
      if (keep) di_buf_addc(&p->str, (char)c[1]);
      c += 2;
      break;
    case 'b': if (keep) di_buf_addc(&p->str, '\b'); c += 2; break;
    case 'f': if (keep) di_buf_addc(&p->str, '\f'); c += 2; break;
    case 'n': if (keep) di_buf_addc(&p->str, '\n'); c += 2; break;
    case 'r': if (keep) di_buf_addc(&p->str, '\r'); c += 2; break;
    case 't': if (keep) di_buf_addc(&p->str, '\t'); c += 2; break;
    case 'u': {
      unsigned cp, lo;
      if (!hex4(c + 2, end, &cp)) return bad(p, c, "bad \\u escape");
      c += 6;
      if (cp >= 0xD800 && cp <= 0xDBFF && end - c >= 6 && c[0] == '\\' && c[1] == 'u' &&
          hex4(c + 2, end, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        c += 6;
      } else if (cp >= 0xD800 && cp <= 0xDFFF) {
        return bad(p, c - 6, "a lone UTF-16 surrogate in a \\u escape");
      }
      if (keep) put_utf8(&p->str, cp);
      break;
    }
    default:
      return bad(p, c, "bad escape in a string");
    }
  }
  *pc = c + 1;
  p->sp = p->str.data ? p->str.data : "";
  p->sn = p->str.len;
  return 1;
}

/* Reads the number token at *pc, checked as core.decode checks it
 * (di_json_scan.c); with keep, pushes it as core.decode gives it: an
 * integral value within 2^53 as an integer, another a double holds exactly
 * as a number, else its text.  Moves *pc past it. */
static int number(pick *p, const unsigned char **pc, int keep) {
  const unsigned char *c = *pc, *start = c;
  int kind;
  double x;
  size_t len;
  /* the token: as far as a bare word goes (a letter makes it no number) */
  while (c < p->end && (((*c | 0x20) >= 'a' && (*c | 0x20) <= 'z') ||
                        (*c >= '0' && *c <= '9') || *c == '-' || *c == '+' || *c == '.'))
    c++;
  len = (size_t)(c - start);
  kind = di_json_number_kind(start, len);
  if (kind == DI_NUM_BAD)
    return bad(p, start, "invalid token: not a JSON number, true, false or null");
  *pc = c;
  if (!keep) return 1;
  if (kind == DI_NUM_WRAP) {
    lua_pushlstring(p->L, (const char *)start, len);
    return 1;
  }
  /* an integer of at most 15 digits (below 2^53, so exact) is read here: strtod
   * cost more than the rest of the number's work (a reply's ids and counts) */
  if (len <= 16) {
    const unsigned char *d = start + (*start == '-');
    lua_Integer n = 0;
    while (d < c && *d >= '0' && *d <= '9') n = n * 10 + (*d++ - '0');
    if (d == c && c - start - (*start == '-') <= 15) {
      lua_pushinteger(p->L, *start == '-' ? -n : n); /* (-0 is 0, as below) */
      return 1;
    }
  }
  /* the token is a whole JSON number followed by no number character, so
   * strtod reads exactly it, however long (a Lua string ends in a NUL) */
  x = di_strtod((const char *)start, NULL); /* (the C locale's '.', never a comma) */
  if (floor(x) == x && fabs(x) <= PICK_MAX_EXACT) lua_pushinteger(p->L, (lua_Integer)x);
  else lua_pushnumber(p->L, x);
  return 1;
}

static int value(pick *p, const unsigned char **pc, int want, int depth);

/* Whether the n bytes at k spell lit, in any case (ASCII). */
static int same_name(const char *k, size_t n, const char *lit, size_t len) {
  size_t i;
  if (n != len) return 0;
  for (i = 0; i < n; i++) {
    unsigned char a = (unsigned char)k[i], b = (unsigned char)lit[i];
    if (a >= 'A' && a <= 'Z') a = (unsigned char)(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = (unsigned char)(b - 'A' + 'a');
    if (a != b) return 0;
  }
  return 1;
}

/* Which member of an object of kind `want` is kept, and as what.  Names
 * are matched in any case, as the service matches them on input (a server
 * may answer `records`, `validationResult`), and kept as they are spelled:
 * the reader (records/merge.lua, call/reply.lua) looks them up the same
 * way. */
static int member_want(int want, const char *k, size_t n) {
#define IS(lit) same_name(k, n, lit, sizeof(lit) - 1)
  if (want == WANT_FULL) return WANT_FULL;
  if (want == WANT_TOP) {
    if (IS("Records")) return WANT_RECORDS;
    if (IS("Success") || IS("ErrorCode") || IS("ErrorMessage") || IS("idRequest") ||
        IS("CreatedRecords") || IS("UpdatedRecords"))
      return WANT_TOP; /* a scalar, kept */
  } else if (want == WANT_RECORD) {
    if (IS("IdRecord") || IS("Status") || IS("ValidationResult") || IS("Message"))
      return WANT_TOP;
  }
  return WANT_SKIP;
#undef IS
}

/* A kept container's members are held on the Lua stack until it closes, and
 * its table is then made at its size: no rehash as it grows, and no slot left
 * unused (tables made at 8 slots up front left the 1-member ID of each record
 * of a reply with 7 empty ones, 168 bytes of the 1,024 that a single-record
 * Merge reply kept in memory, issue 26).  What one parse holds is bounded,
 * so that the stack stays small whatever the nesting (LuaJIT's holds 65,500
 * slots): past PICK_HELD the container is made at what it has and grows as
 * any table. */
#define PICK_HELD 4096

/* The most slots an object is made with: its size is counted from the members
 * read, and a repeated name counts each time, so that a hostile reply of one
 * name 1,025 times made a 2,048-slot table for one key (the hostile review of
 * issue 26).  Past this the table grows as any, so one costs what its distinct
 * names cost. */
#define PICK_SIZED 32

/* Makes the table of the n values (pairs: n keys and values) held above base,
 * sized for `size`, in their place at base + 1: set in the order read, so that
 * a repeated name takes the last value, as cjson does, and a null member (nil)
 * removes an earlier one. */
static void hold_done(pick *p, int base, int n, int pairs, int size) {
  lua_State *L = p->L;
  int i;
  luaL_checkstack(L, 3, "JSON nested too deeply");
  if (pairs) lua_createtable(L, 0, size);
  else lua_createtable(L, size, 0);
  for (i = 0; i < n; i++) {
    if (pairs) {
      lua_pushvalue(L, base + 1 + 2 * i);
      lua_pushvalue(L, base + 2 + 2 * i);
      lua_rawset(L, -3);
    } else {
      lua_pushvalue(L, base + 1 + i);
      lua_rawseti(L, -2, i + 1);
    }
  }
  p->held -= pairs ? 2 * n : n;
  if (n > 0) {
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
  }
}

static int object(pick *p, const unsigned char **pc, int want, int depth) {
  const unsigned char *c = ws(*pc + 1, p->end);
  int keep = want != WANT_SKIP, base = lua_gettop(p->L), t = 0, n = 0, set = 0;
  if (c < p->end && *c == '}') {
    if (keep) lua_createtable(p->L, 0, 0);
    *pc = c + 1;
    return 1;
  }
  for (;;) {
    int sub = WANT_SKIP;
    if (c >= p->end || *c != '"') return bad(p, c, "expected a member name");
    if (!string(p, &c, keep)) return 0;
    if (keep) sub = member_want(want, p->sp, p->sn);
    if (sub != WANT_SKIP) lua_pushlstring(p->L, p->sp, p->sn);
    c = ws(c, p->end);
    if (c >= p->end || *c != ':') return bad(p, c, "expected ':'");
    c = ws(c + 1, p->end);
    if (!value(p, &c, sub, depth + 1)) return 0;
    /* a null member is absent (and a repeated name, as in cjson, takes the
     * last value: setting nil removes an earlier one) */
    if (sub != WANT_SKIP) {
      if (t) {
        lua_rawset(p->L, t);
      } else {
        n++;
        if (!lua_isnil(p->L, -1)) set++;
        p->held += 2;
        if (p->held > PICK_HELD) { hold_done(p, base, n, 1, PICK_SIZED); t = base + 1; }
      }
    }
    c = ws(c, p->end);
    if (c < p->end && *c == ',') { c = ws(c + 1, p->end); continue; }
    if (c < p->end && *c == '}') {
      if (keep && !t) hold_done(p, base, n, 1, set < PICK_SIZED ? set : PICK_SIZED);
      *pc = c + 1;
      return 1;
    }
    return bad(p, c, "expected ',' or '}'");
  }
}

static int array(pick *p, const unsigned char **pc, int want, int depth) {
  const unsigned char *c = ws(*pc + 1, p->end);
  int keep = want != WANT_SKIP, base = lua_gettop(p->L), t = 0, n = 0;
  int sub = want == WANT_RECORDS ? WANT_RECORD : want;
  if (c < p->end && *c == ']') {
    if (keep) lua_createtable(p->L, 0, 0);
    *pc = c + 1;
    return 1;
  }
  for (;;) {
    if (!value(p, &c, sub, depth + 1)) return 0;
    if (keep) {
      /* a null element stays in its place, as cjson.null (core.decode) */
      if (lua_isnil(p->L, -1)) { lua_pop(p->L, 1); lua_pushlightuserdata(p->L, NULL); }
      n++;
      if (t) {
        lua_rawseti(p->L, t, n);
      } else if (++p->held > PICK_HELD) {
        hold_done(p, base, n, 0, n);
        t = base + 1;
      }
    }
    c = ws(c, p->end);
    if (c < p->end && *c == ',') { c = ws(c + 1, p->end); continue; }
    if (c < p->end && *c == ']') {
      if (keep && !t) hold_done(p, base, n, 0, n);
      *pc = c + 1;
      return 1;
    }
    return bad(p, c, "expected ',' or ']'");
  }
}

static int literal(pick *p, const unsigned char **pc, const char *word, int keep, int b) {
  size_t n = strlen(word);
  const unsigned char *c = *pc;
  if ((size_t)(p->end - c) < n || memcmp(c, word, n) != 0 ||
      (c + n < p->end && ((c[n] >= 'a' && c[n] <= 'z') || (c[n] >= '0' && c[n] <= '9'))))
    return bad(p, c, "invalid token: not a JSON number, true, false or null");
  *pc = c + n;
  if (keep) {
    if (b < 0) lua_pushnil(p->L);
    else lua_pushboolean(p->L, b);
  }
  return 1;
}

/* Reads one value; with want != WANT_SKIP pushes it (nil for null). */
static int value(pick *p, const unsigned char **pc, int want, int depth) {
  const unsigned char *c = *pc;
  int keep = want != WANT_SKIP;
  if (depth > PICK_MAX_DEPTH) return bad(p, c, "nested too deeply");
  if (keep) luaL_checkstack(p->L, 4, "JSON nested too deeply");
  if (c >= p->end) return bad(p, c, "unexpected end of the text");
  switch (*c) {
  case '{':
    if (want == WANT_SKIP || want == WANT_RECORD) return object(p, pc, want, depth);
    return object(p, pc, WANT_FULL, depth);
  case '[':
    if (want == WANT_SKIP || want == WANT_RECORDS) return array(p, pc, want, depth);
    return array(p, pc, WANT_FULL, depth);
  case '"':
    if (!string(p, pc, keep)) return 0;
    if (keep) lua_pushlstring(p->L, p->sp, p->sn);
    return 1;
  case 't': return literal(p, pc, "true", keep, 1);
  case 'f': return literal(p, pc, "false", keep, 0);
  case 'n': return literal(p, pc, "null", keep, -1);
  case '}': case ']': case ',': case ':':
    return bad(p, c, "expected a value");
  default:
    return number(p, pc, keep);
  }
}

/* The value of the whole JSON text s[0..len) (a leading UTF-8 BOM skipped), pushed
 * as core.decode gives it: one strict pass, the rules above (a JSON null at the top
 * is core.null).  Returns 1; or pushes nil and the message and returns 2.  Before
 * issue 26, core.decode ran di_json_scan.c's pass, lua-cjson, then a walk fixing
 * numbers and nulls: three passes and a table write per number, 3 x the
 * instructions of this one (bench scenario 11). */
int di_json_decode_text(lua_State *L, const char *s, size_t len) {
  pick p;
  const unsigned char *c;
  int ok, base = lua_gettop(L);
  memset(&p, 0, sizeof p);
  p.L = L;
  if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) { s += 3; len -= 3; }
  p.s = (const unsigned char *)s;
  p.end = p.s + len;
  di_buf_init(&p.str);
  c = ws(p.s, p.end);
  ok = value(&p, &c, WANT_FULL, 0);
  if (ok) {
    c = ws(c, p.end);
    if (c < p.end) ok = bad(&p, c, "text after the end of the JSON value");
  }
  di_buf_free(&p.str);
  if (!ok) {
    lua_settop(L, base);
    lua_pushnil(L);
    lua_pushfstring(L, "%s at character %d", p.err, (int)p.at + 1);
    return 2;
  }
  if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_pushlightuserdata(L, NULL); }
  return 1;
}

/* decode_outcomes(text) -> table | nil, message */
static int decode_outcomes(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  pick p;
  const unsigned char *c;
  int ok;
  memset(&p, 0, sizeof p);
  p.L = L;
  if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) { s += 3; len -= 3; }
  p.s = (const unsigned char *)s;
  p.end = p.s + len;
  di_buf_init(&p.str);
  lua_settop(L, 1);
  c = ws(p.s, p.end);
  if (c < p.end && *c == '{') {
    ok = object(&p, &c, WANT_TOP, 0);
  } else {
    ok = value(&p, &c, WANT_SKIP, 0) && bad(&p, c, "the reply is not a JSON object");
  }
  if (ok) {
    c = ws(c, p.end);
    if (c < p.end) ok = bad(&p, c, "text after the end of the JSON value");
  }
  di_buf_free(&p.str);
  if (!ok) {
    lua_settop(L, 1);
    lua_pushnil(L);
    lua_pushfstring(L, "%s at character %d", p.err, (int)p.at + 1);
    return 2;
  }
  return 1;
}

void di_json_pick_open(lua_State *L) {
  lua_pushcfunction(L, decode_outcomes);
  lua_setfield(L, -2, "decode_outcomes");
}
