/*
 * di_buf.h: a growable byte buffer on malloc.  libcurl callbacks and the JSON
 * encoder append to it; it never touches the Lua state, so nothing that
 * fills it can raise a Lua error in the middle of a C library call.
 */
#ifndef DI_BUF_H
#define DI_BUF_H

#include <stddef.h>

typedef struct di_buf {
  char *data;
  size_t len;
  size_t cap;
  int oom; /* set once an allocation failed; later appends are dropped */
} di_buf;

void di_buf_init(di_buf *b);
void di_buf_free(di_buf *b);
void di_buf_reset(di_buf *b);
int di_buf_reserve(di_buf *b, size_t extra);
int di_buf_add(di_buf *b, const void *p, size_t n);
int di_buf_addc(di_buf *b, char c);

#endif
