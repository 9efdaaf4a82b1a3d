/*
 * di_buf.h: a growable byte buffer on malloc.  libcurl callbacks and the JSON
 * encoder append to it; it never touches the Lua state, so nothing that
 * fills it can raise a Lua error in the middle of a C library call.
 */
#ifndef DI_BUF_H
#define DI_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct di_buf {
  char *data;
  size_t len;
  size_t cap;
  int oom; /* set once an allocation failed; later appends are dropped */
} di_buf;

void di_buf_init(di_buf *b);
void di_buf_free(di_buf *b);
void di_buf_reset(di_buf *b);
int di_buf_grow(di_buf *b, size_t extra);

/* The appends are inline: the encoder adds a byte or a few at a time, and a call
 * per byte cost more than the copy (issue 26).  Only growing is out of line. */
static inline int di_buf_reserve(di_buf *b, size_t extra) {
  if (!b->oom && extra <= b->cap - b->len) return 1;
  return di_buf_grow(b, extra);
}

static inline int di_buf_add(di_buf *b, const void *p, size_t n) {
  if (n == 0) return !b->oom;
  if (!di_buf_reserve(b, n)) return 0;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 1;
}

static inline int di_buf_addc(di_buf *b, char c) {
  if (!di_buf_reserve(b, 1)) return 0;
  b->data[b->len++] = c;
  return 1;
}

#endif
