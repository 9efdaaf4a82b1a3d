/*
 * di_hash.h: FNV-1a 64, the one non-cryptographic hash of the core: the CSV
 * reader's mark of the bytes it read (di_csv.c), a row's JSON and key in a
 * sync's state index (di_keyset.c, di_rows.c).  A leaf: no Lua.
 */
#ifndef DI_HASH_H
#define DI_HASH_H

#include <stddef.h>
#include <stdint.h>

#define DI_FNV_BASIS 14695981039346656037ULL
#define DI_FNV_PRIME 1099511628211ULL

static inline uint64_t di_fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *s = p;
  size_t i;
  for (i = 0; i < n; i++) h = (h ^ s[i]) * DI_FNV_PRIME;
  return h;
}

#endif
