/*
 * floor.h: what the two libcurl reference programs of the benchmarks share
 * (bench/seq/curl_floor.c, bench/many/multi_floor.c): a write callback that
 * drops the reply, a clock, and the settings read from the environment.
 * FLOOR_NAME names the program in its messages.
 */
#ifndef BENCH_FLOOR_H
#define BENCH_FLOOR_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static size_t on_write(char *p, size_t size, size_t n, void *ud) {
  (void)p; (void)ud;
  return size * n;
}

static double clock_s(clockid_t id) {
  struct timespec t;
  clock_gettime(id, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The variable's value; dflt when it is unset or empty (NULL: required). */
static const char *env(const char *name, const char *dflt) {
  const char *v = getenv(name);
  if (v == NULL || *v == '\0') {
    if (dflt == NULL) { fprintf(stderr, FLOOR_NAME ": %s is not set\n", name); exit(2); }
    return dflt;
  }
  return v;
}

#endif
