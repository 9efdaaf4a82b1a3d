/* di_buf.c: see di_buf.h for why this exists. */
#include <stdlib.h>
#include <string.h>

#include "di_buf.h"

void di_buf_init(di_buf *b) {
  b->data = NULL;
  b->len = b->cap = 0;
  b->oom = 0;
}

void di_buf_free(di_buf *b) {
  free(b->data);
  di_buf_init(b);
}

/* Keeps the allocation: a session reuses one buffer for every reply, so a
 * steady stream of calls does not malloc per call. */
void di_buf_reset(di_buf *b) {
  b->len = 0;
  b->oom = 0;
}

/* di_buf_reserve's slow path: room for extra more bytes, or 0 (oom set). */
int di_buf_grow(di_buf *b, size_t extra) {
  size_t need, cap;
  char *p;
  if (b->oom) return 0;
  if (extra > (size_t)-1 - b->len) { b->oom = 1; return 0; }
  need = b->len + extra;
  if (need <= b->cap) return 1;
  cap = b->cap ? b->cap : 256;
  while (cap < need) cap = (cap > (size_t)-1 / 2) ? need : cap * 2;
  p = realloc(b->data, cap);
  if (p == NULL) { b->oom = 1; return 0; }
  b->data = p;
  b->cap = cap;
  return 1;
}
