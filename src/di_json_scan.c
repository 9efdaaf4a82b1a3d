/*
 * di_json_scan.c: what a JSON number token is, for core.decode (src/di_json_pick.c).
 *
 * A number must follow RFC 8259's grammar ("-.5", "1.", "1.e3", NaN, hex are
 * refused), and one a Lua number cannot hold as written is handed over as the
 * text the server wrote: an integer beyond 2^53, or a number with a fraction or
 * an exponent whose nearest double does not print back with its digits
 * (0.12345678901234567, 1e400, 1e-400, 4e-324).  Up to 15 significant digits in
 * the normal range always survive (DBL_DIG), so only longer or far-out numbers
 * are tried.  README.md ("JSON") and docs/json.md document the rules.
 *
 * JSON's decimal point is '.', whatever the process's locale: a library or a
 * script that sets LC_NUMERIC to a comma locale must not make 1.5 read as 1,
 * nor [1,5] as { 1.5, 5 } (strtod reads past a token's end there).  Numbers
 * are read and written in the C locale (di_strtod, di_c_locale).
 */
#define _GNU_SOURCE /* strtod_l, newlocale (glibc) */
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "di_json_scan.h"

enum { T_BAD, T_PLAIN, T_WRAP };

locale_t di_c_locale(void) {
  /* made once per process; a race of two first users leaks one locale object at most */
  static locale_t c;
  if (c == (locale_t)0) c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
  return c;
}

double di_strtod(const char *s, char **end) {
  locale_t c = di_c_locale();
  return c != (locale_t)0 ? strtod_l(s, end, c) : strtod(s, end);
}

/* Up to 15 significant digits survive the trip through a double (DBL_DIG)
 * anywhere in the normal range, 1e-307 to 1e307 with room to spare. */
#define SURE_DIGITS 15
#define SURE_E10 307
/* No double has more significant digits than this in its exact decimal
 * expansion (767 at most), nor a decimal exponent outside +-400. */
#define MAX_DIGITS 800
#define MAX_E10 400

static int is_digit(unsigned char c) { return (unsigned)(c - '0') < 10u; }


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
  x = di_strtod(want, NULL); /* digits x 10^(e - n + 1) */
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
