/*
 * Scenario 1, for reference: the floor of any libcurl-based client.  A C
 * loop of curl_easy_perform on one easy handle (one keep-alive connection)
 * with the options src/di_http.c sets (headers, Accept-Encoding, user agent,
 * keep-alive, TCP_NODELAY, HTTP/2 over TLS when offered, verification
 * against the CA, time-outs, write and header callbacks), POSTing the bytes
 * of BENCH_BODY_FILE.  No Lua and no JSON: what remains is libcurl's own
 * cost per transfer.  Prints calls=N wall=S cpu=S like the other contenders.
 * Built by bench/run: cc -O2 curl_floor.c -lcurl.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FLOOR_NAME "curl_floor"
#include "../floor.h"

int main(void) {
  char url[1024], body[65536];
  double secs = atof(env("BENCH_SECS", "1")), t0, c0;
  int warmup = atoi(env("BENCH_WARMUP", "200")), i;
  long n = 0;
  size_t len;
  FILE *f = fopen(env("BENCH_BODY_FILE", NULL), "rb");
  struct curl_slist *h = NULL;
  CURL *e;
  if (f == NULL) { perror("curl_floor: BENCH_BODY_FILE"); return 2; }
  len = fread(body, 1, sizeof body, f);
  fclose(f);
  snprintf(url, sizeof url, "%scontacts.ashx?method=Merge", env("BENCH_URL", NULL));
  curl_global_init(CURL_GLOBAL_DEFAULT);
  e = curl_easy_init();
  h = curl_slist_append(h, "Content-Type: application/json");
  h = curl_slist_append(h, "Accept: application/json");
  h = curl_slist_append(h, "Expect:");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(e, CURLOPT_CAINFO, env("BENCH_CA", NULL));
  curl_easy_setopt(e, CURLOPT_USERAGENT, "dialoginsight-lua/0.1");
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_write);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  for (i = 0; i < warmup; i++) {
    CURLcode rc = curl_easy_perform(e);
    if (rc != CURLE_OK) { fprintf(stderr, "curl_floor: %s\n", curl_easy_strerror(rc)); return 1; }
  }
  t0 = clock_s(CLOCK_MONOTONIC);
  c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
  /* BENCH_CALLS=N: exactly N calls, for instruction counts (bench scenario 11) */
  if (getenv("BENCH_CALLS") != NULL) {
    long exact = atol(getenv("BENCH_CALLS"));
    for (n = 0; n < exact; n++) {
      long status = 0;
      if (curl_easy_perform(e) != CURLE_OK) return 1;
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
      if (status != 200) return 1;
    }
    secs = 0;
  }
  while (secs > 0) {
    for (i = 0; i < 16; i++) {
      long status = 0;
      if (curl_easy_perform(e) != CURLE_OK) return 1;
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
      if (status != 200) return 1;
    }
    n += 16;
    if (clock_s(CLOCK_MONOTONIC) >= t0 + secs) break;
  }
  printf("calls=%ld wall=%.6f cpu=%.6f\n", n, clock_s(CLOCK_MONOTONIC) - t0,
         clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0);
  curl_easy_cleanup(e);
  curl_slist_free_all(h);
  curl_global_cleanup();
  return 0;
}
