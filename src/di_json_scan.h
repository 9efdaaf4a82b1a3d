/*
 * di_json_scan.h: what a JSON number token is (src/di_json_scan.c), and where
 * a string's plain bytes end, for the decoder (src/di_json_pick.c) and the
 * encoder (src/di_json_write.c).  Plain C on bytes, no Lua state.
 */
#ifndef DI_JSON_SCAN_H
#define DI_JSON_SCAN_H

#include <locale.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* What a number token t[0..n) is: DI_NUM_BAD unless it follows JSON's
 * grammar, DI_NUM_WRAP when no double holds it exactly (core.decode gives it
 * as its text), else DI_NUM_PLAIN. */
enum { DI_NUM_BAD = 0, DI_NUM_PLAIN = 1, DI_NUM_WRAP = 2 };
int di_json_number_kind(const unsigned char *t, size_t n);

/* strtod in the C locale: JSON's decimal point is '.' whatever LC_NUMERIC says
 * (src/di_json_scan.c); and that locale, for printing numbers (di_json_write.c). */
double di_strtod(const char *s, char **end);
locale_t di_c_locale(void);

/* The first byte at or after c that a JSON string cannot hold as it is: a
 * quote, a backslash, a control byte, and with high, a byte of 0x80 or more
 * (the encoder validates UTF-8 there; the decoder takes it as it comes); or
 * end.  Strings are half of a reply's bytes and most of a request's, so 8 are
 * tested at a time (the "has a zero byte" and "has a byte below n" word
 * tricks).  The lowest flagged byte of a word is always a true one (a false
 * flag comes only from a borrow out of a lower, true one), so on a
 * little-endian machine its place is the flags' trailing zero bits / 8,
 * without a byte loop: most strings end within their first word. */
static inline const unsigned char *di_json_plain(const unsigned char *c, const unsigned char *end,
                                                 int high) {
  const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  while (end - c >= 8) {
    uint64_t v, q, b, hit;
    memcpy(&v, c, 8);
    q = v ^ (ones * '"');
    b = v ^ (ones * '\\');
    hit = ((v - ones * 0x20) & ~v) | ((q - ones) & ~q) | ((b - ones) & ~b);
    hit = (high ? hit | v : hit) & highs;
    if (hit) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
      return c + (__builtin_ctzll(hit) >> 3);
#else
      break;
#endif
    }
    c += 8;
  }
  while (c < end && *c != '"' && *c != '\\' && *c >= 0x20 && !(high && *c >= 0x80)) c++;
  return c;
}

#endif
