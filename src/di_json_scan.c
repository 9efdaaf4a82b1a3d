/*
 * di_json_scan.c: keeps core.decode strict and exact.
 *
 * lua-cjson 2.1.0, even configured to refuse invalid numbers, still reads
 * "-.5", "1." and "1.e3" as numbers and takes raw control characters inside
 * strings; and it turns every number into a double, so 9007199254740993
 * reads as ...992, 1e400 as inf and 0.12345678901234567890 loses digits,
 * all silently.  One pass over the text, outside its strings, settles both
 * before cjson parses it:
 *  - every bare token must be true, false, null or a number of RFC 8259's
 *    grammar, and a string may not hold a raw control character (below
 *    U+0020): anything else is refused with its offset;
 *  - a number a Lua number cannot hold as written is wrapped in quotes, so
 *    cjson hands it over as the string the server wrote: an integer beyond
 *    2^53, or a number with a fraction or an exponent whose nearest double
 *    does not print back with its digits (0.12345678901234567, 1e400,
 *    1e-400, 4e-324).  Up to 15 significant digits in the normal range
 *    always survive (DBL_DIG), so only longer or far-out numbers are tried.
 * Nearly every reply has no such number, and then the pass only reads: the
 * text goes to cjson uncopied.  README.md ("JSON") documents the rules.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "di_json_scan.h"

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Byte classes outside strings.  C_WORD is every byte that can continue a
 * bare token; JSON has only numbers and three literals there, so anything
 * else (letters of NaN, '+', '.', bytes >= 0x80) ends up in a token that is
 * then refused.  White space and punctuation share a class: the scan steps
 * over both alike.  So do control bytes other than NUL, which cjson refuses
 * as it meets them; a NUL it would take for the end of the text, and
 * ignore what follows, so the scan refuses it. */
enum { C_WORD = 0, C_SKIP, C_QUOTE, C_NUL };
static const unsigned char outside[256] = {
  ['\0'] = C_NUL, [1 ... 32] = C_SKIP, ['"'] = C_QUOTE,
  ['{'] = C_SKIP, ['}'] = C_SKIP, ['['] = C_SKIP, [']'] = C_SKIP,
  [','] = C_SKIP, [':'] = C_SKIP,
};

/* Bytes that end a run of plain string content. */
static const unsigned char inside[256] = {
  [0 ... 31] = 1, ['"'] = 1, ['\\'] = 1,
};

enum { T_BAD, T_PLAIN, T_WRAP };

/* Up to 15 significant digits survive the trip through a double (DBL_DIG)
 * anywhere in the normal range, 1e-307 to 1e307 with room to spare. */
#define SURE_DIGITS 15
#define SURE_E10 307
/* No double has more significant digits than this in its exact decimal
 * expansion (767 at most), nor a decimal exponent outside +-400. */
#define MAX_DIGITS 800
#define MAX_E10 400

static int is_digit(unsigned char c) { return (unsigned)(c - '0') < 10u; }

/* Skips a string whose opening quote is just before s[i]: returns the offset
 * after its closing quote, or len when it is not closed (cjson reports
 * that), or (size_t)-1 with *at set on a raw control character. */
static size_t skip_string(const unsigned char *s, size_t len, size_t i,
                          size_t *at) {
  for (;;) {
    /* Strings are half of a reply's bytes: test 8 at a time for a quote, a
     * backslash or a control byte (the classic "has a zero byte" and "has
     * a byte below n" word tricks); the byte loop then finds which. */
    while (i + 8 <= len) {
      uint64_t v, q, b;
      memcpy(&v, s + i, 8);
      q = v ^ (ONES * '"');
      b = v ^ (ONES * '\\');
      if ((((v - ONES * 0x20) & ~v) | ((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGHS)
        break;
      i += 8;
    }
    while (!inside[s[i]]) i++;
    if (s[i] == '"') return i + 1; /* s[len] is '\0', so i < len here */
    if (s[i] == '\\') {
      if (i + 1 >= len) return len;
      i += 2; /* cjson judges the escape itself */
      continue;
    }
    if (i >= len) return len;
    *at = i;
    return (size_t)-1;
  }
}

static int literal(const unsigned char *t, size_t n) {
  if (n == 4 && (memcmp(t, "true", 4) == 0 || memcmp(t, "null", 4) == 0))
    return T_PLAIN;
  if (n == 5 && memcmp(t, "false", 5) == 0) return T_PLAIN;
  return T_BAD;
}

/* The digits of a number token, each digit named by its power of ten. */
typedef struct digits {
  const unsigned char *t;
  size_t int0, int1, frac0, frac1; /* t[int0..int1) . t[frac0..frac1) */
} digits;

static int digit_at(const digits *d, long p) {
  if (p >= 0)
    return p < (long)(d->int1 - d->int0) ? d->t[d->int1 - 1 - p] - '0' : 0;
  return -p <= (long)(d->frac1 - d->frac0) ? d->t[d->frac0 - 1 - p] - '0' : 0;
}

/* Whether the double nearest to the number whose significant digits have
 * the powers lead..last, and whose lead digit's power is e once the
 * exponent is applied, prints back with those digits exactly: then it holds
 * the number as written (0.30000000000000004, as %.17g writes 0.1 + 0.2);
 * otherwise reading it would round (0.1234567890123456), overflow (1e400)
 * or lose digits in the subnormals (4e-324).  strtod and printf are exact
 * in glibc; neither sees a decimal point, so the locale cannot interfere. */
static int held_exactly(const digits *d, long lead, long last, long e) {
  char want[MAX_DIGITS + 24], got[MAX_DIGITS + 24];
  long n = lead - last + 1, p, k = 0, g;
  const char *q;
  double x;
  if (n > MAX_DIGITS || e > MAX_E10 || e < -MAX_E10) return 0;
  for (p = lead; p >= last; p--) want[k++] = (char)('0' + digit_at(d, p));
  snprintf(want + k, sizeof want - (size_t)k, "e%ld", e - (n - 1));
  x = strtod(want, NULL); /* digits x 10^(e - n + 1) */
  if (!isfinite(x) || x == 0) return 0;
  snprintf(got, sizeof got, "%.*e", (int)(n - 1), x);
  for (q = got, g = 0; *q != 'e' && *q != '\0'; q++) {
    if (!is_digit((unsigned char)*q)) continue; /* the decimal point */
    if (g >= n || *q != want[g]) return 0;
    g++;
  }
  return g == n && *q == 'e' && strtol(q + 1, NULL, 10) == e;
}

/* A number with a fraction or an exponent: plain when a double holds its
 * digits exactly, else wrapped. */
static int decimal(const digits *d, long exp) {
  long lead = 0, last = 0, e;
  size_t k;
  int found = 0;
  for (k = d->int0; k < d->int1 && !found; k++)
    if (d->t[k] != '0') { lead = (long)(d->int1 - 1 - k); found = 1; }
  for (k = d->frac0; k < d->frac1 && !found; k++)
    if (d->t[k] != '0') { lead = -(long)(k - d->frac0 + 1); found = 1; }
  if (!found) return T_PLAIN; /* zero, whatever its exponent */
  for (k = d->frac1; k > d->frac0 && d->t[k - 1] == '0'; k--) {
  }
  if (k > d->frac0) {
    last = -(long)(k - d->frac0);
  } else {
    for (k = d->int1; d->t[k - 1] == '0'; k--) { /* stops at the lead digit */
    }
    last = (long)(d->int1 - k);
  }
  e = lead + exp;
  if (lead - last < SURE_DIGITS && e >= -SURE_E10 && e <= SURE_E10) return T_PLAIN;
  return held_exactly(d, lead, last, e) ? T_PLAIN : T_WRAP;
}

/* A token that starts with '-' or a digit: T_BAD unless it follows JSON's
 * number grammar, T_WRAP when a double cannot hold it, else T_PLAIN. */
static int number(const unsigned char *t, size_t n) {
  digits d = {t, 0, 0, 0, 0};
  size_t i = 0;
  long exp = 0;
  int has_exp = 0;
  if (t[0] == '-') i++;
  d.int0 = i;
  if (i < n && t[i] == '0') i++;
  else if (i < n && t[i] >= '1' && t[i] <= '9')
    while (i < n && is_digit(t[i])) i++;
  else return T_BAD;
  d.int1 = d.frac0 = d.frac1 = i;
  if (i < n && t[i] == '.') {
    d.frac0 = ++i;
    while (i < n && is_digit(t[i])) i++;
    d.frac1 = i;
    if (d.frac1 == d.frac0) return T_BAD;
  }
  if (i < n && (t[i] == 'e' || t[i] == 'E')) {
    int neg = 0;
    size_t e0;
    has_exp = 1;
    if (++i < n && (t[i] == '+' || t[i] == '-')) neg = t[i++] == '-';
    for (e0 = i; i < n && is_digit(t[i]); i++)
      if (exp < 100000) exp = exp * 10 + (t[i] - '0'); /* far out is enough */
    if (i == e0) return T_BAD;
    if (neg) exp = -exp;
  }
  if (i != n) return T_BAD;
  if (d.frac1 == d.frac0 && !has_exp) {
    /* an integer: exact up to 2^53 (no leading zeros, so length orders it) */
    size_t len = d.int1 - d.int0;
    return len < 16 || (len == 16 && memcmp(t + d.int0, "9007199254740992", 16) <= 0)
               ? T_PLAIN : T_WRAP;
  }
  return decimal(&d, exp);
}

int di_json_number_kind(const unsigned char *t, size_t n) {
  switch (n ? number(t, n) : T_BAD) {
  case T_PLAIN: return DI_NUM_PLAIN;
  case T_WRAP: return DI_NUM_WRAP;
  default: return DI_NUM_BAD;
  }
}

#if defined(__SSE2__)
#include <emmintrin.h>

/* Sets bit k of the result when the number of set bits at or below k in x
 * is odd: applied to the quotes of a chunk, it marks what lies inside a
 * string (an opening quote and what follows it, up to the closing one). */
static uint64_t prefix_xor(uint64_t x) {
  x ^= x << 1;
  x ^= x << 2;
  x ^= x << 4;
  x ^= x << 8;
  x ^= x << 16;
  x ^= x << 32;
  return x;
}

/* One bit per byte of a 64-byte chunk: its quotes, its backslashes and
 * control bytes, and the bytes that cannot start or continue a bare token
 * (white space, punctuation, quotes, controls other than NUL). */
typedef struct chunk {
  uint64_t quote, escape_or_ctl, not_word;
} chunk;

static void chunk_masks(const unsigned char *p, chunk *m) {
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
  const __m128i ctl = _mm_set1_epi8(0x1F), space = _mm_set1_epi8(' ');
  const __m128i low = _mm_set1_epi8(0x20), zero = _mm_setzero_si128();
  const __m128i open = _mm_set1_epi8('{'), close = _mm_set1_epi8('}');
  const __m128i comma = _mm_set1_epi8(','), colon = _mm_set1_epi8(':');
  int k;
  m->quote = m->escape_or_ctl = m->not_word = 0;
  for (k = 0; k < 4; k++) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
    __m128i folded = _mm_or_si128(v, low); /* '[' -> '{', ']' -> '}' */
    __m128i q = _mm_cmpeq_epi8(v, quote);
    __m128i c = _mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v); /* below 0x20 */
    __m128i punct = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(v, space), _mm_cmpeq_epi8(folded, open)),
        _mm_or_si128(_mm_cmpeq_epi8(folded, close),
                     _mm_or_si128(_mm_cmpeq_epi8(v, comma),
                                  _mm_cmpeq_epi8(v, colon))));
    /* controls other than NUL as white space, as in `outside` */
    __m128i not_word = _mm_or_si128(
        _mm_or_si128(punct, q), _mm_andnot_si128(_mm_cmpeq_epi8(v, zero), c));
    m->quote |= (uint64_t)(unsigned)_mm_movemask_epi8(q) << (16 * k);
    m->escape_or_ctl |= (uint64_t)(unsigned)_mm_movemask_epi8(
        _mm_or_si128(c, _mm_cmpeq_epi8(v, backslash))) << (16 * k);
    m->not_word |= (uint64_t)(unsigned)_mm_movemask_epi8(not_word) << (16 * k);
  }
}

static int number(const unsigned char *t, size_t n);
static int literal(const unsigned char *t, size_t n);

/* The fast path, 64 bytes at a time with SSE2 (every x86-64 has it): from
 * i, outside any string, steps over white space, punctuation, strings
 * without escapes and bare tokens a double holds, and stops at the first
 * byte the byte-wise code must see: a token to quote or refuse, or one
 * that runs past the chunk, a NUL outside strings, a backslash or a control
 * byte inside one, or the last 63 bytes of the text.  *in_string tells
 * which side of a quote that byte is on.  Judged byte by byte, a reply
 * costs a mispredicted branch at every change between white space, names
 * and values: the scan then took a third of cjson's own time. */
static size_t skip_chunks(const unsigned char *s, size_t len, size_t i,
                          int *in_string) {
  uint64_t in = 0; /* all ones while inside a string */
  chunk m;
  while (i + 64 <= len) {
    uint64_t str, word, events;
    chunk_masks(s + i, &m);
    str = prefix_xor(m.quote) ^ in;
    word = ~m.not_word & ~str;
    events = word | (str & m.escape_or_ctl);
    while (events != 0) {
      unsigned k = (unsigned)__builtin_ctzll(events), end;
      uint64_t rest = ~(word >> k);
      if (!((word >> k) & 1u)) break; /* in a string: for the byte loop */
      /* a token to the chunk's end may go on: the byte loop sees it */
      if (rest == 0) break;
      end = k + (unsigned)__builtin_ctzll(rest);
      if (end >= 64) break;
      if ((s[i + k] == '-' || is_digit(s[i + k]) ? number(s + i + k, end - k)
                                                 : literal(s + i + k, end - k))
          != T_PLAIN)
        break;
      events &= ~0ULL << end;
    }
    if (events != 0) {
      unsigned k = (unsigned)__builtin_ctzll(events);
      *in_string = (int)((str >> k) & 1u);
      return i + k;
    }
    in = (uint64_t)0 - (str >> 63);
    i += 64;
  }
  *in_string = in != 0;
  return i;
}
#else
static size_t skip_chunks(const unsigned char *s, size_t len, size_t i,
                          int *in_string) {
  (void)s;
  (void)len;
  *in_string = 0;
  return i;
}
#endif

/* Whether the next byte after s[j] that is not white space is ':': then the
 * token sits where a member name goes, which JSON never allows a number,
 * and quoting it would make a broken reply valid. */
static int before_colon(const unsigned char *s, size_t j) {
  while (s[j] != '\0' && s[j] <= ' ') j++;
  return s[j] == ':';
}

int di_json_scan(const char *text, size_t len, di_buf *out, size_t *at) {
  const unsigned char *s = (const unsigned char *)text;
  size_t i = 0, j, copied = 0;
  int kind;
  for (;;) {
    int in_string;
    i = skip_chunks(s, len, i, &in_string);
    if (!in_string)
      while (outside[s[i]] == C_SKIP) i++;
    if (in_string || s[i] == '"') {
      i = skip_string(s, len, in_string ? i : i + 1, at);
      if (i == (size_t)-1) return DI_SCAN_BAD_CONTROL;
      continue;
    }
    if (i >= len) break;
    if (s[i] == '\0') { *at = i; return DI_SCAN_BAD_TOKEN; }
    for (j = i; outside[s[j]] == C_WORD; j++) {
    }
    kind = (s[i] == '-' || is_digit(s[i])) ? number(s + i, j - i)
                                           : literal(s + i, j - i);
    if (kind == T_BAD) { *at = i; return DI_SCAN_BAD_TOKEN; }
    if (kind == T_WRAP && !before_colon(s, j)) {
      if (out == NULL) return DI_SCAN_WRAPPED;
      di_buf_add(out, s + copied, i - copied);
      di_buf_addc(out, '"');
      di_buf_add(out, s + i, j - i);
      di_buf_addc(out, '"');
      copied = j;
    }
    i = j;
  }
  if (out == NULL || copied == 0) return DI_SCAN_OK;
  di_buf_add(out, s + copied, len - copied);
  return out->oom ? DI_SCAN_NOMEM : DI_SCAN_WRAPPED;
}
