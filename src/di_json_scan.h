/*
 * di_json_scan.h: the pass core.decode runs over a reply before lua-cjson
 * sees it (src/di_json_scan.c).  Plain C on bytes, no Lua state.
 */
#ifndef DI_JSON_SCAN_H
#define DI_JSON_SCAN_H

#include <stddef.h>

#include "di_buf.h"

enum {
  DI_SCAN_OK = 0,      /* nothing to change: hand the text to cjson as is */
  DI_SCAN_WRAPPED = 1, /* out holds the text with inexact numbers quoted */
  DI_SCAN_BAD_TOKEN = -1,   /* a bare word or number that is not JSON */
  DI_SCAN_BAD_CONTROL = -2, /* a raw control character inside a string */
  DI_SCAN_NOMEM = -3
};

/* What a number token t[0..n) is: DI_NUM_BAD unless it follows JSON's
 * grammar, DI_NUM_WRAP when no double holds it exactly (core.decode gives it
 * as its text), else DI_NUM_PLAIN. */
enum { DI_NUM_BAD = 0, DI_NUM_PLAIN = 1, DI_NUM_WRAP = 2 };
int di_json_number_kind(const unsigned char *t, size_t n);

/* Walks the JSON text s[0..len) outside its strings.  s[len] must be '\0'
 * (Lua strings always are): it stops the inner loops without a bounds test
 * per byte.  With out == NULL it only checks, and answers DI_SCAN_WRAPPED
 * when a copy would be needed; with out it also writes that copy.  On a
 * refusal *at is the 0-based offset of the byte at fault. */
int di_json_scan(const char *s, size_t len, di_buf *out, size_t *at);

#endif
