/*
 * di_json_scan.h: what a JSON number token is (src/di_json_scan.c), for the
 * decoder (src/di_json_pick.c).  Plain C on bytes, no Lua state.
 */
#ifndef DI_JSON_SCAN_H
#define DI_JSON_SCAN_H

#include <locale.h>
#include <stddef.h>

/* What a number token t[0..n) is: DI_NUM_BAD unless it follows JSON's
 * grammar, DI_NUM_WRAP when no double holds it exactly (core.decode gives it
 * as its text), else DI_NUM_PLAIN. */
enum { DI_NUM_BAD = 0, DI_NUM_PLAIN = 1, DI_NUM_WRAP = 2 };
int di_json_number_kind(const unsigned char *t, size_t n);

/* strtod in the C locale: JSON's decimal point is '.' whatever LC_NUMERIC says
 * (src/di_json_scan.c); and that locale, for printing numbers (di_json_write.c). */
double di_strtod(const char *s, char **end);
locale_t di_c_locale(void);

#endif
