/*
 * di_rows.c: the column plan of a CSV sync, carried out in C.
 *
 * A sync reads a million rows a night, and building each one in Lua cost a
 * Lua string per field, a table per row and a Lua call per value (a date
 * alone was a microsecond).  Here the CSV reader's record (still in C,
 * src/di_csv.c) is validated and converted per column and written straight
 * out as the JSON of its wire record, into a batch that the encoder writes
 * as the Records array of the Merge (src/di_json.c).  No Lua value is made
 * for a good row.
 *
 *   local plan = core.row_plan(steps, max_text)
 *       -- max_text: a short text's length in characters (fields.MAX_TEXT);
 *       -- steps[j]: false (column skipped)
 *       -- or { kind = "id" | "raw" | "Text" | "Integer" | "Decimal" |
 *       --      "Date" | "DateTime" | "Boolean" | "any", wire = "f_X",
 *       --      key = bool }   (records/record.lua's Builder:plan)
 *   local b = core.row_batch()
 *   ok, line = reader:next_record(plan, b)  -- true: the record is in b
 *   b:add(record, line)   -- a record built in Lua: true, or nil, why
 *   b:count(), b:line(i), b:row(i)  -- the fields of record i as read
 *                                    -- (nil for one added in Lua)
 *   b:json(i), b:hash(i)  -- the JSON text of record i, its core.hash64
 *   b:key(i, j)           -- field j of record i, as a key (trimmed,
 *                         -- lower-cased): rows of one key never share a call
 *   b:key_hash(i, j, p)   -- core.hash64(p .. b:key(i, j)), no string made
 *   b:move_last(dst)      -- the last record moves to batch dst
 *   b:drop_last()         -- the last record leaves the batch
 *   b:pick{ i, j, ... }   -- a new batch of those records' JSON, in that
 *                         -- order: a Merge the server refused as a whole,
 *                         -- sent again in parts (records/merge.lua)
 *   b:close()             -- frees it now (it is empty after): the GC sees
 *                         -- a small userdata, not the memory it holds
 *
 * The plan only ever takes what the Lua builder (records/record.lua,
 * records/fields.lua) takes, and writes what core.encode would write of
 * the Lua builder's record; anything else it declines, and the row goes
 * to the Lua builder, which is the reference: it builds the record or says
 * why not, in the words the rejects file has always had.  fuzz/fuzz_rows
 * checks both halves of that promise.
 */
#include <stdlib.h>
#include <string.h>

#include "di_aux.h"
#include "di_buf.h"
#include "di_core.h"
#include "di_hash.h"
#include "di_json.h"
#include "di_json_write.h"
#include "di_rows.h"

#define PLAN_MT "dialoginsight.row_plan"
#define BATCH_MT "dialoginsight.row_batch"

enum { K_SKIP, K_ID, K_RAW, K_TEXT, K_INTEGER, K_DECIMAL, K_DATE, K_DATETIME,
       K_BOOLEAN, K_ANY };

static const char *const kind_names[] = {
  "skip", "id", "raw", "Text", "Integer", "Decimal", "Date", "DateTime", "Boolean", "any", NULL
};

typedef struct step {
  int kind, key;
  char *member;     /* "wire": as the record's JSON has it */
  size_t member_len;
} step;

typedef struct plan {
  int n;
  step *steps;
  size_t max_text;  /* characters of a short text (records/fields.lua's MAX_TEXT) */
  char *key_member; /* "key_<wire>": the key's member in ID */
  size_t key_member_len;
  di_buf id, data;  /* the record being built */
  char *numeral;    /* room for a Decimal's copy (lua_stringtonumber) */
  size_t numeral_cap;
} plan;

typedef struct batch_rec {
  long line;
  size_t first;     /* its first field's end in ends; */
  int nf;           /* its fields, or -1 for a record added from Lua */
  size_t json_at, json_end; /* its JSON object in the batch's json */
} batch_rec;

typedef struct batch {
  di_buf json;      /* first (src/di_json.h): the records' JSON objects, comma-separated */
  di_buf text;      /* the fields of the records the plan built */
  size_t *ends;     /* where each of those fields ends in text */
  size_t nends, ends_cap;
  batch_rec *recs;
  int n, cap;
} batch;

/* Values ------------------------------------------------------------------ */

/* Lua's %s (isspace in the C locale), which records/fields.lua's integer
 * pattern allows around the digits. */
static int is_space(unsigned char ch) {
  return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

static int is_digit(unsigned char ch) { return ch >= '0' && ch <= '9'; }

/* fields.lua's integer(): ^%s*%-?%d+%s*$, and a value within 2^53. */
static int parse_integer(const unsigned char *s, size_t len, long long *out) {
  size_t i = 0;
  int neg = 0, digits = 0;
  unsigned long long v = 0;
  while (i < len && is_space(s[i])) i++;
  if (i < len && s[i] == '-') { neg = 1; i++; }
  for (; i < len && is_digit(s[i]); i++, digits++) {
    v = v * 10 + (unsigned)(s[i] - '0');
    if (v > 9007199254740992ULL) return 0; /* beyond 2^53: refused there too */
  }
  while (i < len && is_space(s[i])) i++;
  if (!digits || i != len) return 0;
  *out = neg ? -(long long)v : (long long)v;
  return 1;
}

static const unsigned char DAYS[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

/* 1 or 2 digits at s[*i], as Lua's %d%d? takes them (greedily). */
static int digits12(const unsigned char *s, size_t len, size_t *i, int *v) {
  if (*i >= len || !is_digit(s[*i])) return 0;
  *v = s[(*i)++] - '0';
  if (*i < len && is_digit(s[*i])) *v = *v * 10 + (s[(*i)++] - '0');
  return 1;
}

static int is_datesep(unsigned char ch) { return ch == '.' || ch == '-' || ch == '/'; }

/* fields.lua's date of a string: ^(%d%d%d%d)[%.%-/](%d%d?)[%.%-/](%d%d?)(.*)$
 * with the rest empty or ^[T ](%d%d?):(%d%d):?(%d?%d?)$, then the ranges of
 * valid_digits.  Writes "YYYY.MM.DD[ HH:MM:SS]" to out (20 bytes); returns
 * its length, or 0. */
static int parse_date(const unsigned char *s, size_t len, int with_time, char out[20]) {
  size_t i = 0;
  int y = 0, mo, d, h = 0, mi = 0, sec = 0, k;
  for (k = 0; k < 4; k++, i++) {
    if (i >= len || !is_digit(s[i])) return 0;
    y = y * 10 + (s[i] - '0');
  }
  if (i >= len || !is_datesep(s[i++])) return 0;
  if (!digits12(s, len, &i, &mo)) return 0;
  if (i >= len || !is_datesep(s[i++])) return 0;
  if (!digits12(s, len, &i, &d)) return 0;
  if (i < len) {
    if (s[i] != 'T' && s[i] != ' ') return 0;
    i++;
    if (!digits12(s, len, &i, &h)) return 0;
    if (i >= len || s[i++] != ':') return 0;
    if (i + 2 > len || !is_digit(s[i]) || !is_digit(s[i + 1])) return 0;
    mi = (s[i] - '0') * 10 + (s[i + 1] - '0');
    i += 2;
    if (i < len && s[i] == ':') i++;
    if (i < len && !digits12(s, len, &i, &sec)) return 0;
    if (i != len) return 0;
  }
  if (y < 1 || mo < 1 || mo > 12 || h > 23 || mi > 59 || sec > 59) return 0;
  if (d < 1 || d > DAYS[mo - 1]) return 0;
  if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 0;
  if (with_time)
    return snprintf(out, 20, "%04d.%02d.%02d %02d:%02d:%02d", y, mo, d, h, mi, sec);
  return snprintf(out, 20, "%04d.%02d.%02d", y, mo, d);
}

/* fields.lua's BOOL of a string, lower-cased: 1, true, 0, false. */
static int parse_boolean(const unsigned char *s, size_t len, int *out) {
  static const char t[] = "true", f[] = "false";
  size_t i;
  if (len == 1 && (s[0] == '1' || s[0] == '0')) { *out = s[0] == '1'; return 1; }
  if (len != 4 && len != 5) return 0;
  for (i = 0; i < len; i++) {
    unsigned char ch = s[i];
    if (ch >= 'A' && ch <= 'Z') ch = (unsigned char)(ch - 'A' + 'a');
    if (ch != (len == 4 ? t : f)[i]) return 0;
  }
  *out = len == 4;
  return 1;
}

/* fields.lua's Decimal: tonumber(v), and a number the encoder sends as it
 * is (no NaN, no infinity, no integer beyond 2^53). */
static int put_decimal(lua_State *L, plan *p, di_buf *b, const char *s, size_t len) {
  const char *why;
  if (len + 1 > p->numeral_cap) {
    char *room = (char *)realloc(p->numeral, len + 1);
    if (!room) luaL_error(L, "out of memory");
    p->numeral = room;
    p->numeral_cap = len + 1;
  }
  if (!di_push_numeral(L, s, len, p->numeral)) return 0;
  why = di_json_put_number(b, L, -1);
  lua_pop(L, 1);
  return why == NULL;
}

/* The JSON of one value of a column of the given kind, appended to b; 0
 * when the Lua builder would not take it as it is. */
static int put_value(lua_State *L, plan *p, di_buf *b, int kind, const char *s, size_t len) {
  const unsigned char *u = (const unsigned char *)s;
  size_t bad, i, chars;
  long long v;
  int on, n;
  char date[20];
  /* text with a NUL: the service refuses the whole call for it, so the Lua
   * builder refuses the row, and says why (records/fields.lua) */
  if ((kind == K_TEXT || kind == K_RAW || kind == K_ANY) && memchr(s, 0, len)) return 0;
  switch (kind) {
  case K_TEXT:
    if (!di_json_put_string(b, s, len, &bad)) return 0;
    if (len <= p->max_text) return 1; /* never fewer bytes than characters */
    for (i = 0, chars = len; i < len; i++)
      if ((u[i] & 0xC0) == 0x80) chars--;
    return chars <= p->max_text;
  case K_RAW:
  case K_ANY:
    return di_json_put_string(b, s, len, &bad);
  case K_ID:
    return parse_integer(u, len, &v) && v >= 1 && di_json_put_integer(b, v);
  case K_INTEGER:
    return parse_integer(u, len, &v) && di_json_put_integer(b, v);
  case K_DECIMAL:
    return put_decimal(L, p, b, s, len);
  case K_DATE:
  case K_DATETIME:
    n = parse_date(u, len, kind == K_DATETIME, date);
    if (n <= 0) return 0;
    return di_buf_addc(b, '"') && di_buf_add(b, date, (size_t)n) && di_buf_addc(b, '"');
  case K_BOOLEAN:
    if (!parse_boolean(u, len, &on)) return 0;
    return on ? di_buf_add(b, "true", 4) : di_buf_add(b, "false", 5);
  }
  return 0;
}

/* Starts a member of the object being written in b. */
static void put_member(di_buf *b, const char *member, size_t len) {
  if (b->len) di_buf_addc(b, ',');
  di_buf_add(b, member, len);
  di_buf_addc(b, ':');
}

/* Building a record ------------------------------------------------------------ */

/* Builds the ID and Data of a record in p->id and p->data, as
 * Builder:row and Builder:finish (records/record.lua) would.  Returns 0 when
 * the Lua builder must look at the row. */
static int build(lua_State *L, plan *p, const char *data, const size_t *ends, int nf) {
  size_t key_at = 0, key_value = 0, key_end = 0, at = 0;
  int j, n = nf < p->n ? nf : p->n, has_key = 0;
  di_buf_reset(&p->id);
  di_buf_reset(&p->data);
  for (j = 0; j < n; at = ends[j], j++) {
    const step *st = &p->steps[j];
    size_t len = ends[j] - at;
    di_buf *b;
    if (st->kind == K_SKIP || len == 0) continue; /* an empty cell is left out */
    b = (st->kind == K_ID || st->kind == K_RAW) ? &p->id : &p->data;
    if (st->key) key_at = b->len;
    put_member(b, st->member, st->member_len);
    if (st->key) key_value = b->len;
    if (!put_value(L, p, b, st->kind, data + at, len)) return 0;
    if (st->key) { key_end = b->len; has_key = 1; }
  }
  if (p->id.len == 0) {
    /* not identified by idContact nor a key_ member: the key's value moves
     * from Data to ID */
    if (!has_key) return 0; /* the Lua builder says it is missing */
    put_member(&p->id, p->key_member, p->key_member_len);
    di_buf_add(&p->id, p->data.data + key_value, key_end - key_value);
    if (key_at == 0 && key_end < p->data.len) key_end++; /* the comma after it */
    memmove(p->data.data + key_at, p->data.data + key_end, p->data.len - key_end);
    p->data.len -= key_end - key_at;
  }
  if (p->id.oom || p->data.oom) luaL_error(L, "out of memory");
  return 1;
}

/* The batch ----------------------------------------------------------------- */

static batch *batch_check(lua_State *L, int idx) {
  return (batch *)luaL_checkudata(L, idx, BATCH_MT);
}

static batch_rec *batch_new_rec(lua_State *L, batch *b, long line) {
  if (b->n == b->cap) {
    int cap = b->cap ? b->cap * 2 : 128;
    batch_rec *recs = (batch_rec *)realloc(b->recs, (size_t)cap * sizeof *recs);
    if (!recs) luaL_error(L, "out of memory");
    b->recs = recs;
    b->cap = cap;
  }
  b->recs[b->n].line = line;
  b->recs[b->n].first = b->nends;
  b->recs[b->n].nf = -1;
  b->recs[b->n].json_at = b->recs[b->n].json_end = 0;
  return &b->recs[b->n++];
}

/* Keeps the fields of a record, for b:row(i) (a rejects file line). */
static void batch_keep_fields(lua_State *L, batch *b, batch_rec *r, const char *data,
                              const size_t *ends, int nf) {
  size_t base = b->text.len, bytes = nf ? ends[nf - 1] : 0;
  int j;
  if (b->nends + (size_t)nf > b->ends_cap) {
    size_t cap = b->ends_cap ? b->ends_cap : 1024;
    size_t *room;
    while (cap < b->nends + (size_t)nf) cap *= 2;
    room = (size_t *)realloc(b->ends, cap * sizeof *room);
    if (!room) luaL_error(L, "out of memory");
    b->ends = room;
    b->ends_cap = cap;
  }
  if (!di_buf_add(&b->text, data, bytes) && bytes) luaL_error(L, "out of memory");
  for (j = 0; j < nf; j++) b->ends[b->nends++] = base + ends[j];
  r->nf = nf;
}

void di_rows_check(lua_State *L, int plan_idx, int batch_idx) {
  luaL_checkudata(L, plan_idx, PLAN_MT);
  batch_check(L, batch_idx);
}

int di_rows_add(lua_State *L, int plan_idx, int batch_idx, const char *data,
                const size_t *ends, int nf, long line) {
  plan *p = (plan *)luaL_checkudata(L, plan_idx, PLAN_MT);
  batch *b = batch_check(L, batch_idx);
  di_buf *j = &b->json;
  batch_rec *r;
  size_t at;
  if (!build(L, p, data, ends, nf)) return 0;
  if (j->len) di_buf_addc(j, ',');
  at = j->len;
  di_buf_add(j, "{\"ID\":{", 7);
  di_buf_add(j, p->id.data, p->id.len);
  di_buf_add(j, "},\"Data\":{", 10);
  di_buf_add(j, p->data.data, p->data.len);
  di_buf_add(j, "}}", 2);
  if (j->oom) luaL_error(L, "out of memory");
  r = batch_new_rec(L, b, line);
  r->json_at = at;
  r->json_end = j->len;
  batch_keep_fields(L, b, r, data, ends, nf);
  return 1;
}

/* core.row_batch() -> an empty batch */
static int batch_new(lua_State *L) {
  batch *b = (batch *)lua_newuserdata(L, sizeof *b);
  memset(b, 0, sizeof *b);
  di_buf_init(&b->json);
  di_buf_init(&b->text);
  luaL_getmetatable(L, BATCH_MT);
  lua_setmetatable(L, -2);
  return 1;
}

/* b:add(record, line) -> true | nil, why: a record the Lua builder made,
 * encoded now, so that a value the encoder refuses is this record's
 * problem, not the whole call's. */
static int batch_add(lua_State *L) {
  batch *b = batch_check(L, 1);
  long line = (long)luaL_checkinteger(L, 3);
  size_t mark = b->json.len, at;
  di_buf err;
  batch_rec *r;
  luaL_checktype(L, 2, LUA_TTABLE);
  if (mark) di_buf_addc(&b->json, ',');
  at = b->json.len;
  di_buf_init(&err);
  if (!di_json_encode(L, 2, &b->json, &err)) {
    b->json.len = mark;
    b->json.oom = 0;
    lua_pushnil(L);
    if (err.len) lua_pushlstring(L, err.data, err.len);
    else lua_pushliteral(L, "out of memory while encoding JSON");
    di_buf_free(&err);
    return 2;
  }
  r = batch_new_rec(L, b, line);
  r->json_at = at;
  r->json_end = b->json.len;
  lua_pushboolean(L, 1);
  return 1;
}

/* b:pick{ i, ... } -> a new batch of records i, ... of b (their JSON and
 * lines; b:row() of it is nil: the caller keeps the fields) */
static int batch_pick(lua_State *L) {
  batch *b = batch_check(L, 1), *out;
  int k, n;
  luaL_checktype(L, 2, LUA_TTABLE);
  n = (int)di_rawlen(L, 2);
  batch_new(L);
  out = batch_check(L, 3);
  for (k = 1; k <= n; k++) {
    const batch_rec *r;
    batch_rec *o;
    lua_Integer i;
    lua_rawgeti(L, 2, k);
    i = luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    luaL_argcheck(L, i >= 1 && i <= b->n, 2, "no such record in the batch");
    r = &b->recs[i - 1];
    if (out->json.len) di_buf_addc(&out->json, ',');
    o = batch_new_rec(L, out, r->line);
    o->json_at = out->json.len;
    di_buf_add(&out->json, b->json.data + r->json_at, r->json_end - r->json_at);
    o->json_end = out->json.len;
    if (out->json.oom) luaL_error(L, "out of memory");
  }
  return 1;
}

static int batch_count(lua_State *L) {
  lua_pushinteger(L, batch_check(L, 1)->n);
  return 1;
}

static const batch_rec *batch_rec_arg(lua_State *L, const batch *b) {
  lua_Integer i = luaL_checkinteger(L, 2);
  luaL_argcheck(L, i >= 1 && i <= b->n, 2, "no such record in the batch");
  return &b->recs[i - 1];
}

/* b:line(i) -> the line record i starts on */
static int batch_line(lua_State *L) {
  batch *b = batch_check(L, 1);
  lua_pushinteger(L, batch_rec_arg(L, b)->line);
  return 1;
}

/* b:json(i) -> the JSON text of record i, as the Merge sends it (a sync's
 * state compares it with the record last confirmed for its key) */
static int batch_json(lua_State *L) {
  batch *b = batch_check(L, 1);
  const batch_rec *r = batch_rec_arg(L, b);
  lua_pushlstring(L, b->json.data + r->json_at, r->json_end - r->json_at);
  return 1;
}

/* b:hash(i) -> FNV-1a 64 of record i's JSON (core.hash64 of b:json(i)), without
 * making the string: a sync's state compares a million of them */
static int batch_hash(lua_State *L) {
  batch *b = batch_check(L, 1);
  const batch_rec *r = batch_rec_arg(L, b);
  lua_pushinteger(L, (lua_Integer)di_fnv(DI_FNV_BASIS, b->json.data + r->json_at, r->json_end - r->json_at));
  return 1;
}

/* b:row(i) -> the fields of record i as read, or nil for one added from Lua */
static int batch_row(lua_State *L) {
  batch *b = batch_check(L, 1);
  const batch_rec *r = batch_rec_arg(L, b);
  size_t at;
  int j;
  if (r->nf < 0) return 0;
  at = r->first ? b->ends[r->first - 1] : 0;
  /* the record's text starts where the previous kept record ended */
  lua_createtable(L, r->nf, 0);
  for (j = 0; j < r->nf; j++) {
    size_t end = b->ends[r->first + (size_t)j];
    lua_pushlstring(L, end > at ? b->text.data + at : "", end - at);
    lua_rawseti(L, -2, j + 1);
    at = end;
  }
  return 1;
}

/* The text of field j of record r (nf >= 0), as kept. */
static const char *batch_field(const batch *b, const batch_rec *r, int j, size_t *len) {
  size_t start = r->first + (size_t)j ? b->ends[r->first + (size_t)j - 1] : 0;
  size_t end = b->ends[r->first + (size_t)j];
  /* a record's first field starts where the previous kept record ended */
  *len = end > start ? end - start : 0;
  return *len ? b->text.data + start : "";
}

/* b:key(i, j) -> field j of record i as a key for telling rows apart (a
 * sync never sends two rows of one key at once: cli/sync/batches.lua):
 * without the ASCII spaces around it, lower-cased, a number without its
 * leading zeros.  nil for a record added from Lua, a field it does not
 * have, or an empty one.  records/merge.lua's key() says the same in Lua. */
/* Field j of record r as a key: trimmed; digits alone without leading
 * zeros, else lower-cased (ASCII) into buf when lower is set.  Sets *len; NULL
 * when the key is empty. */
static const char *key_of(const batch *b, const batch_rec *r, int j, size_t *len, int *lower) {
  size_t k, digits = 0, n;
  const char *f = batch_field(b, r, j, &n);
  while (n && is_space((unsigned char)f[0])) f++, n--;
  while (n && is_space((unsigned char)f[n - 1])) n--;
  if (!n) return NULL;
  for (k = 0; k < n && is_digit((unsigned char)f[k]); k++) digits++;
  *lower = digits != n;
  if (!*lower) while (n > 1 && f[0] == '0') f++, n--;
  *len = n;
  return f;
}

static int batch_key(lua_State *L) {
  batch *b = batch_check(L, 1);
  const batch_rec *r = batch_rec_arg(L, b);
  lua_Integer j = luaL_checkinteger(L, 3);
  size_t len, k;
  int lower;
  const char *f;
  luaL_Buffer buf;
  if (r->nf < 0 || j < 1 || j > r->nf) return 0;
  f = key_of(b, r, (int)j - 1, &len, &lower);
  if (f == NULL) return 0;
  if (!lower) {
    lua_pushlstring(L, f, len);
    return 1;
  }
  luaL_buffinit(L, &buf);
  for (k = 0; k < len; k++) {
    unsigned char ch = (unsigned char)f[k];
    luaL_addchar(&buf, (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch));
  }
  luaL_pushresult(&buf);
  return 1;
}

/* b:key_hash(i, j, prefix) -> core.hash64(prefix .. b:key(i, j)), or nil for
 * an empty key (or a record added from Lua): a sync's state is asked a
 * million times a night, without a string made for each */
static int batch_key_hash(lua_State *L) {
  batch *b = batch_check(L, 1);
  const batch_rec *r = batch_rec_arg(L, b);
  lua_Integer j = luaL_checkinteger(L, 3);
  size_t plen, len, k;
  const char *prefix = luaL_checklstring(L, 4, &plen);
  int lower;
  const char *f;
  uint64_t h;
  if (r->nf < 0 || j < 1 || j > r->nf) return 0;
  f = key_of(b, r, (int)j - 1, &len, &lower);
  if (f == NULL) return 0;
  h = di_fnv(DI_FNV_BASIS, prefix, plen);
  for (k = 0; k < len; k++) {
    unsigned char ch = (unsigned char)f[k];
    if (lower && ch >= 'A' && ch <= 'Z') ch += 32;
    h = di_fnv(h, &ch, 1);
  }
  lua_pushinteger(L, (lua_Integer)h);
  return 1;
}

/* b:move_last(to) -> moves the last record of b (its JSON, line and kept
 * fields) to the end of batch to: a row that must not go in the same call
 * as b's others starts the next batch (cli/sync/batches.lua). */
static int batch_move_last(lua_State *L) {
  batch *b = batch_check(L, 1), *to = batch_check(L, 2);
  batch_rec r, *o;
  luaL_argcheck(L, b->n > 0, 1, "an empty batch");
  luaL_argcheck(L, b != to, 2, "the same batch");
  r = b->recs[b->n - 1];
  if (to->json.len) di_buf_addc(&to->json, ',');
  o = batch_new_rec(L, to, r.line);
  o->json_at = to->json.len;
  di_buf_add(&to->json, b->json.data + r.json_at, r.json_end - r.json_at);
  o->json_end = to->json.len;
  if (to->json.oom) luaL_error(L, "out of memory");
  if (r.nf >= 0) {
    size_t base = r.first ? b->ends[r.first - 1] : 0;
    size_t *rel = (size_t *)malloc((r.nf ? (size_t)r.nf : 1) * sizeof *rel);
    int j;
    if (!rel) luaL_error(L, "out of memory");
    for (j = 0; j < r.nf; j++) rel[j] = b->ends[r.first + (size_t)j] - base;
    batch_keep_fields(L, to, o, b->text.data ? b->text.data + base : "", rel, r.nf);
    free(rel);
    b->text.len = base;
  }
  b->nends = r.first;
  b->json.len = r.json_at ? r.json_at - 1 : 0; /* and the comma before it */
  b->n--;
  return 0;
}

/* b:drop_last() -> the last record leaves b for good (a row a sync does not
 * send: superseded, or unchanged against its state), with no batch to take it */
static int batch_drop_last(lua_State *L) {
  batch *b = batch_check(L, 1);
  batch_rec r;
  luaL_argcheck(L, b->n > 0, 1, "an empty batch");
  r = b->recs[b->n - 1];
  if (r.nf >= 0) {
    b->text.len = r.first ? b->ends[r.first - 1] : 0;
    b->nends = r.first;
  }
  b->json.len = r.json_at ? r.json_at - 1 : 0; /* and the comma before it */
  b->n--;
  return 0;
}

static int batch_gc(lua_State *L) {
  batch *b = (batch *)luaL_checkudata(L, 1, BATCH_MT);
  di_buf_free(&b->json);
  di_buf_free(&b->text);
  free(b->ends);
  free(b->recs);
  b->ends = NULL;
  b->recs = NULL;
  b->n = b->cap = 0;
  b->nends = b->ends_cap = 0;
  return 0;
}

static int batch_tostring(lua_State *L) {
  lua_pushfstring(L, "dialoginsight.row_batch (%d records)", batch_check(L, 1)->n);
  return 1;
}

/* The plan ----------------------------------------------------------------------- */

/* "name": the JSON of a member's name, checked (a name the encoder would
 * refuse raises: steps come from the Lua builder, never from the file). */
static char *member_json(lua_State *L, const char *name, size_t len, size_t *out_len) {
  di_buf b;
  size_t bad;
  char *s;
  di_buf_init(&b);
  if (!di_json_put_string(&b, name, len, &bad)) {
    di_buf_free(&b);
    luaL_error(L, "row_plan: a member name that is not valid UTF-8");
  }
  s = (char *)malloc(b.len);
  if (!s) { di_buf_free(&b); luaL_error(L, "out of memory"); }
  memcpy(s, b.data, b.len);
  *out_len = b.len;
  di_buf_free(&b);
  return s;
}

static int plan_gc(lua_State *L) {
  plan *p = (plan *)luaL_checkudata(L, 1, PLAN_MT);
  int j;
  for (j = 0; p->steps && j < p->n; j++) free(p->steps[j].member);
  free(p->steps);
  free(p->key_member);
  free(p->numeral);
  di_buf_free(&p->id);
  di_buf_free(&p->data);
  p->steps = NULL;
  p->key_member = p->numeral = NULL;
  p->n = 0;
  return 0;
}

/* One step of core.row_plan's list, at the top of the stack. */
static void plan_step(lua_State *L, plan *p, step *st) {
  size_t len;
  const char *wire;
  if (lua_toboolean(L, -1) == 0) return; /* false: skipped */
  luaL_checktype(L, -1, LUA_TTABLE);
  lua_getfield(L, -1, "kind");
  st->kind = luaL_checkoption(L, -1, NULL, kind_names);
  lua_getfield(L, -2, "key");
  /* the key is a Data member: idContact and key_ members identify the
   * record themselves */
  st->key = lua_toboolean(L, -1) && st->kind != K_ID && st->kind != K_RAW;
  lua_getfield(L, -3, "wire");
  wire = luaL_checklstring(L, -1, &len);
  st->member = member_json(L, wire, len, &st->member_len);
  if (st->key && !p->key_member) {
    /* key_<wire> */
    lua_pushliteral(L, "key_");
    lua_pushvalue(L, -2);
    lua_concat(L, 2);
    wire = lua_tolstring(L, -1, &len);
    p->key_member = member_json(L, wire, len, &p->key_member_len);
    lua_pop(L, 1);
  }
  lua_pop(L, 3);
}

/* core.row_plan(steps, max_text) -> plan */
static int plan_new(lua_State *L) {
  plan *p;
  int j, n;
  lua_Integer max_text = luaL_checkinteger(L, 2);
  luaL_argcheck(L, max_text >= 0, 2, "max_text must be a number of characters");
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  n = (int)di_rawlen(L, 1);
  p = (plan *)lua_newuserdata(L, sizeof *p);
  memset(p, 0, sizeof *p);
  di_buf_init(&p->id);
  di_buf_init(&p->data);
  luaL_getmetatable(L, PLAN_MT);
  lua_setmetatable(L, -2);
  p->steps = (step *)calloc(n ? (size_t)n : 1, sizeof *p->steps);
  if (!p->steps) return luaL_error(L, "out of memory");
  p->n = n;
  p->max_text = (size_t)max_text;
  for (j = 0; j < n; j++) {
    lua_rawgeti(L, 1, j + 1);
    plan_step(L, p, &p->steps[j]);
    lua_pop(L, 1);
  }
  return 1;
}

static int plan_tostring(lua_State *L) {
  lua_pushfstring(L, "dialoginsight.row_plan (%d columns)",
                  ((plan *)luaL_checkudata(L, 1, PLAN_MT))->n);
  return 1;
}

static const luaL_Reg plan_methods[] = {
  {NULL, NULL}
};

static const luaL_Reg batch_methods[] = {
  {"add", batch_add},
  {"count", batch_count},
  {"line", batch_line},
  {"row", batch_row},
  {"json", batch_json},
  {"hash", batch_hash},
  {"pick", batch_pick},
  {"key", batch_key},
  {"move_last", batch_move_last},
  {"drop_last", batch_drop_last},
  {"key_hash", batch_key_hash},
  {"close", batch_gc},
  {NULL, NULL}
};

void di_rows_open(lua_State *L) {
  di_new_class(L, PLAN_MT, plan_methods, plan_gc, plan_tostring);
  di_new_class(L, BATCH_MT, batch_methods, batch_gc, batch_tostring);
  luaL_getmetatable(L, BATCH_MT);
  di_json_mark_raw_array(L, -1);
  lua_pop(L, 1);
  lua_pushcfunction(L, plan_new);
  lua_setfield(L, -2, "row_plan");
  lua_pushcfunction(L, batch_new);
  lua_setfield(L, -2, "row_batch");
}
