/*
 * di_json_write.h: the bytes of JSON values, as the encoder writes them
 * (src/di_json.c), shared with the record plan (src/di_rows.c) so that a
 * record built in C is byte for byte what core.encode makes of the same
 * values: one set of rules for strings, UTF-8 and numbers.
 */
#ifndef DI_JSON_WRITE_H
#define DI_JSON_WRITE_H

#include <stddef.h>

#include "di_buf.h"
#include "di_compat.h"

/* 2^53: beyond it doubles (and so most JSON parsers) lose integer precision. */
#define DI_JSON_MAX_EXACT 9007199254740992.0

/* The length of the valid UTF-8 sequence at s (avail bytes left), or 0 if
 * it is not one (overlong forms, surrogates and code points past U+10FFFF
 * included). */
size_t di_utf8_len(const unsigned char *s, size_t avail);

/* Appends s[0..len) as a JSON string.  Returns 1; 0 on invalid UTF-8, with
 * *bad set to the 1-based byte at fault, or on running out of memory, with
 * *bad set to 0. */
int di_json_put_string(di_buf *b, const char *s, size_t len, size_t *bad);

/* Appends v in decimal. */
int di_json_put_integer(di_buf *b, long long v);
int di_json_put_double(di_buf *b, double x);

/* Appends the number at idx: integers and integral floats within 2^53 in
 * decimal, other floats in the shortest of 15, 16 or 17 significant
 * digits that reads back as the same double.  Returns NULL, or why
 * the number is not sent (NaN, infinity, an integer beyond 2^53: it would
 * arrive changed), or "out of memory". */
const char *di_json_put_number(di_buf *b, lua_State *L, int idx);

#endif
