/* di_json_write.c: see di_json_write.h. */
#define _GNU_SOURCE /* uselocale (glibc) */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "di_json_scan.h"
#include "di_json_write.h"

size_t di_utf8_len(const unsigned char *s, size_t avail) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;
  if (c < 0xE0) {
    return (avail >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
  }
  if (c < 0xF0) {
    if (avail < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && s[1] < 0xA0) return 0; /* overlong */
    if (c == 0xED && s[1] >= 0xA0) return 0; /* UTF-16 surrogate */
    return 3;
  }
  if (c < 0xF5) {
    if (avail < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
        (s[3] & 0xC0) != 0x80)
      return 0;
    if (c == 0xF0 && s[1] < 0x90) return 0; /* overlong */
    if (c == 0xF4 && s[1] >= 0x90) return 0; /* past U+10FFFF */
    return 4;
  }
  return 0;
}

int di_json_put_string(di_buf *b, const char *str, size_t len, size_t *bad) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0, run;
  *bad = 0;
  if (!di_buf_reserve(b, len + 2)) return 0;
  b->data[b->len++] = '"';
  while (i < len) {
    /* Copy the longest run that needs neither escaping nor validation. */
    run = (size_t)(di_json_plain(s + i, s + len, 1) - s);
    if (run > i) {
      di_buf_add(b, s + i, run - i);
      i = run;
      if (i == len) break;
    }
    if (s[i] >= 0x80) {
      size_t n = di_utf8_len(s + i, len - i);
      if (n == 0) {
        *bad = i + 1;
        return 0;
      }
      di_buf_add(b, s + i, n);
      i += n;
      continue;
    }
    switch (s[i]) {
    case '"': di_buf_add(b, "\\\"", 2); break;
    case '\\': di_buf_add(b, "\\\\", 2); break;
    case '\n': di_buf_add(b, "\\n", 2); break;
    case '\r': di_buf_add(b, "\\r", 2); break;
    case '\t': di_buf_add(b, "\\t", 2); break;
    default: {
      char u[6] = {'\\', 'u', '0', '0', hex[s[i] >> 4], hex[s[i] & 15]};
      di_buf_add(b, u, 6);
    }
    }
    i++;
  }
  return di_buf_addc(b, '"');
}

/* snprintf("%lld") costs more than the rest of encoding a small number,
 * and ids and counts are most of the numbers in a request. */
int di_json_put_integer(di_buf *b, long long v) {
  char num[24];
  char *q = num + sizeof num;
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  do { *--q = (char)('0' + u % 10); u /= 10; } while (u != 0);
  if (v < 0) *--q = '-';
  return di_buf_add(b, q, (size_t)(num + sizeof num - q));
}

/* The shortest of 15, 16 and 17 significant digits that reads back as the
 * same double: 19.99 goes out as 19.99, not 19.989999999999998 (17 digits
 * always round-trip, but show the binary error to the service). */
int di_json_put_double(di_buf *b, double x) {
  char num[40];
  int len = 0, prec;
  /* in the C locale: JSON's decimal point is '.', whatever LC_NUMERIC says */
  locale_t c = di_c_locale(), old = c != (locale_t)0 ? uselocale(c) : (locale_t)0;
  for (prec = 15; prec <= 17; prec++) {
    len = snprintf(num, sizeof num, "%.*g", prec, x);
    if (prec == 17 || di_strtod(num, NULL) == x) break;
  }
  if (old != (locale_t)0) uselocale(old);
  return di_buf_add(b, num, (size_t)len);
}

#define BEYOND "integer beyond 2^53 would lose precision in JSON; send it as a string"

const char *di_json_put_number(di_buf *b, lua_State *L, int idx) {
  int ok;
  if (di_isinteger(L, idx)) {
    long long v = (long long)lua_tointeger(L, idx);
    if (v > (long long)DI_JSON_MAX_EXACT || v < -(long long)DI_JSON_MAX_EXACT) return BEYOND;
    ok = di_json_put_integer(b, v);
  } else {
    lua_Number x = lua_tonumber(L, idx);
    if (isnan(x) || isinf(x)) return "NaN and infinity are not JSON";
    if (floor(x) == x) {
      if (fabs(x) > DI_JSON_MAX_EXACT) return BEYOND;
      ok = di_json_put_integer(b, (long long)x);
    } else {
      ok = di_json_put_double(b, (double)x);
    }
  }
  return ok ? NULL : "out of memory";
}
