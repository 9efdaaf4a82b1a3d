/*
 * Scenario 2, for reference: the floor of any libcurl-multi client at
 * concurrency 8.  Eight easy handles on one multi, with the options
 * src/di_http.c sets for plain HTTP (headers, Accept-Encoding, keep-alive,
 * TCP_NODELAY, HTTP/1.1, PIPEWAIT, write callback), each re-added the moment
 * it completes, driven by curl_multi_perform and curl_multi_poll as
 * src/di_http.c drives them; POSTing the bytes of BENCH_BODY_FILE,
 * BENCH_CALLS times after BENCH_WARMUP.  No Lua and no JSON.
 *
 * With -s it is driven by curl_multi_socket_action and epoll instead, the
 * event-driven way: measured here (bench/README.md) it costs more per call at
 * 8 connections (curl changes each socket's interest in and out per
 * transfer, one epoll_ctl each), so src/di_http.c keeps perform and poll.
 * Prints calls=N wall=S cpu=S like the other contenders.
 * Built by bench/run: cc -O2 multi_floor.c -lcurl.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#define FLOOR_NAME "multi_floor"
#include "../floor.h"

#define CONNS 8

static int ep = -1;
static long timer_ms = -1;

/* curl_multi_socket_action's callbacks (-s): the sockets it wants watched,
 * in an epoll set, and the timeout it asks for. */
static int on_socket(CURL *e, curl_socket_t s, int what, void *ud, void *sp) {
  struct epoll_event ev;
  (void)e; (void)ud; (void)sp;
  if (what == CURL_POLL_REMOVE) return epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL), 0;
  memset(&ev, 0, sizeof ev);
  ev.data.fd = s;
  ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
  if (epoll_ctl(ep, EPOLL_CTL_MOD, s, &ev) != 0) epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
  return 0;
}

static int on_timer(CURLM *m, long ms, void *ud) {
  (void)m; (void)ud;
  timer_ms = ms;
  return 0;
}

/* One turn of the loop: lets curl work, then waits for the sockets. */
static void turn(CURLM *m, int sockets) {
  int running, n, k;
  struct epoll_event evs[CONNS * 2];
  if (!sockets) {
    curl_multi_perform(m, &running);
    return;
  }
  n = epoll_wait(ep, evs, CONNS * 2, timer_ms < 0 ? 1000 : (int)timer_ms);
  if (n <= 0) curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
  for (k = 0; k < n; k++) {
    int flags = (evs[k].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                (evs[k].events & EPOLLOUT ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(m, evs[k].data.fd, flags, &running);
  }
}

int main(int argc, char **argv) {
  char url[1024], body[65536];
  int sockets = argc > 1 && strcmp(argv[1], "-s") == 0, i, running;
  long total = atol(env("BENCH_CALLS", "20000")), warmup = atol(env("BENCH_WARMUP", "200"));
  long done = 0, started = 0;
  double t0 = 0, c0 = 0;
  size_t len;
  FILE *f = fopen(env("BENCH_BODY_FILE", NULL), "rb");
  struct curl_slist *h = NULL;
  CURLM *m;
  CURL *e[CONNS];
  if (f == NULL) { perror("multi_floor: BENCH_BODY_FILE"); return 2; }
  len = fread(body, 1, sizeof body, f);
  fclose(f);
  snprintf(url, sizeof url, "%scontacts.ashx?method=Merge", env("BENCH_URL", NULL));
  curl_global_init(CURL_GLOBAL_DEFAULT);
  m = curl_multi_init();
  if (sockets) {
    ep = epoll_create1(0);
    curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_timer);
  }
  h = curl_slist_append(h, "Content-Type: application/json");
  h = curl_slist_append(h, "Accept: application/json");
  h = curl_slist_append(h, "Expect:");
  for (i = 0; i < CONNS; i++) {
    e[i] = curl_easy_init();
    curl_easy_setopt(e[i], CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e[i], CURLOPT_POST, 1L);
    curl_easy_setopt(e[i], CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e[i], CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e[i], CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e[i], CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e[i], CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e[i], CURLOPT_USERAGENT, "dialoginsight-lua/0.1");
    curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e[i], CURLOPT_URL, url);
    curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e[i], CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_multi_add_handle(m, e[i]);
    started++;
  }
  if (sockets) curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
  while (done < warmup + total) {
    CURLMsg *msg;
    int left, got = 0;
    if (done >= warmup && c0 == 0) {
      t0 = clock_s(CLOCK_MONOTONIC);
      c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    }
    turn(m, sockets);
    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
      long status = 0;
      if (msg->msg != CURLMSG_DONE) continue;
      if (msg->data.result != CURLE_OK) {
        fprintf(stderr, "multi_floor: %s\n", curl_easy_strerror(msg->data.result));
        return 1;
      }
      curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
      if (status != 200) return 1;
      done++;
      got++;
      curl_multi_remove_handle(m, msg->easy_handle);
      if (started < warmup + total) {
        curl_multi_add_handle(m, msg->easy_handle);
        started++;
      }
    }
    if (!sockets && !got) curl_multi_poll(m, NULL, 0, 1000, NULL);
  }
  printf("calls=%ld wall=%.6f cpu=%.6f\n", total, clock_s(CLOCK_MONOTONIC) - t0,
         clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0);
  for (i = 0; i < CONNS; i++) curl_easy_cleanup(e[i]);
  curl_multi_cleanup(m);
  curl_slist_free_all(h);
  curl_global_cleanup();
  return 0;
}
