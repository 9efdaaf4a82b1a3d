/*
 * di_http.c: HTTPS POSTs through libcurl.
 *
 * A session owns one curl share (connection cache, TLS sessions, DNS), so
 * every call a client makes, sequential or through a multi, reuses the same
 * warm connections.  Sequential calls go through one long-lived easy handle;
 * concurrent calls go through a multi whose completions are handed back to
 * Lua one batch at a time, so scheduling, limits and retries stay in Lua.
 *
 * No Lua function is ever called from a curl callback: the write callback
 * only appends to a malloc'd buffer.  A Lua error therefore cannot unwind
 * through libcurl, and curl's state is consistent whenever we return to Lua.
 *
 * Every transfer answers one reply table (docs/transport.md): on a reply,
 * status, body, seconds, http_version, retry_after (the header's text); on a failure, kind
 * ("network"|"timeout"|"tls"|"too_large"), message and sent, where `sent` is false only
 * when no byte of the request left this host, which is what lets the retry
 * policy re-send a non-idempotent call safely.
 *
 * A reply's body is kept up to max_reply_bytes (decoded: a compressed body
 * counts as what it inflates to): a Content-Length over it is refused
 * before the body is read, and the write callback stops the transfer at
 * the first byte beyond it, so memory holds max_reply_bytes at most.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "di_aux.h"
#include "di_buf.h"
#include "di_compat.h"
#include "di_core.h"
#include "di_time.h"

#define DI_SESSION_MT "dialoginsight.session"
#define DI_MULTI_MT "dialoginsight.multi"

/* What a transfer keeps of its reply: the body, and the one header the
 * retry policy needs, as its text: call/reply.lua reads it for both
 * transports. */
#define DI_RETRY_AFTER_MAX 64
typedef struct di_reply {
  di_buf body;
  char retry_after[DI_RETRY_AFTER_MAX]; /* the header's value; "" when absent */
  size_t max;         /* max_reply_bytes */
  double announced;   /* the Content-Length, < 0 when absent */
  int too_large;      /* the body went past max */
} di_reply;

typedef struct di_session {
  CURLSH *share;
  CURL *easy; /* for sequential calls; created on first use */
  struct curl_slist *headers;
  di_reply reply;
  char *ca_file;
  char *user_agent;
  long timeout_ms;
  long connect_timeout_ms;
  size_t max_reply;
  int verify;
  int http2;
  int users; /* open multis still using the share */
  int closed;
  char errbuf[CURL_ERROR_SIZE];
} di_session;

typedef struct di_xfer {
  CURL *easy;
  di_reply reply;
  lua_Integer tag;
  int body_ref; /* anchors the request body string while curl reads it */
  struct di_xfer *next; /* in the multi's free list */
  struct di_xfer *all_next; /* every transfer the multi owns */
  char errbuf[CURL_ERROR_SIZE];
} di_xfer;

typedef struct di_multi {
  CURLM *multi;
  di_session *s;
  int session_ref; /* keeps the session (and its share) alive */
  int active;
  di_xfer *idle;
  di_xfer *all;
  int closed;
} di_multi;

/* The session takes every setting from the client's resolved settings
 * (lua/dialoginsight/config.lua holds the defaults); a missing one is a bug
 * in the caller, so it raises rather than guess. */
static void need(lua_State *L, int t, const char *field, int type) {
  lua_getfield(L, t, field);
  if (lua_type(L, -1) != type)
    luaL_error(L, "session option '%s' must be a %s", field, lua_typename(L, type));
}

/* A copy of an optional string option (curl keeps the pointer). */
static char *dup_opt(lua_State *L, int t, const char *field, int required) {
  const char *v;
  char *copy;
  size_t len;
  lua_getfield(L, t, field);
  if (lua_isnil(L, -1) && !required) { lua_pop(L, 1); return NULL; }
  lua_pop(L, 1);
  need(L, t, field, LUA_TSTRING);
  v = lua_tolstring(L, -1, &len);
  copy = malloc(len + 1);
  if (copy) memcpy(copy, v, len + 1);
  lua_pop(L, 1);
  return copy;
}

/* Seconds as curl's milliseconds, 1 at least: libcurl reads 0 as "no
 * timeout", so a timeout under 0.5 ms rounded to 0 waited forever.  Checked
 * before the conversion: a float out of a long's range (inf, 1e300) makes
 * the cast undefined. */
static long checked_ms(lua_State *L, lua_Number secs, const char *what) {
  long ms;
  if (!(secs > 0) || secs > 86400)
    luaL_error(L, "%s must be between 0 and 86400 s", what);
  ms = (long)(secs * 1000 + 0.5);
  return ms < 1 ? 1 : ms;
}

/* A header value is written into every request as given: a CR or LF in it
 * would add header lines of the caller's choosing.  config.lua refuses such
 * a user_agent first, naming the setting; this holds for direct callers of
 * core.session too.  (An embedded NUL only cuts the C string short.) */
static void header_value_check(lua_State *L, const char *v, const char *field) {
  for (; v != NULL && *v != '\0'; v++)
    if ((unsigned char)*v < 0x20 || (unsigned char)*v == 0x7f)
      luaL_error(L, "session option '%s' must not hold control characters (CR, LF, ...)",
                 field);
}

static long ms_opt(lua_State *L, int t, const char *field) {
  long ms;
  need(L, t, field, LUA_TNUMBER);
  ms = checked_ms(L, lua_tonumber(L, -1), field);
  lua_pop(L, 1);
  return ms;
}

static int bool_opt(lua_State *L, int t, const char *field) {
  int on;
  need(L, t, field, LUA_TBOOLEAN);
  on = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return on;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud) {
  di_reply *r = ud;
  size_t n = size * nmemb;
  /* Returning a short count makes curl abort with CURLE_WRITE_ERROR. */
  if (n > r->max - r->body.len) {
    r->too_large = 1;
    return 0;
  }
  return di_buf_add(&r->body, ptr, n) ? n : 0;
}

/* Retry-After's value as sent (trimmed; a longer one is cut, and then
 * read as no wait by call/reply.lua), and Content-Length for the message
 * of a reply too large. */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud) {
  di_reply *r = ud;
  size_t n = size * nmemb;
  static const char name[] = "retry-after:";
  static const char length[] = "content-length:";
  if (n > sizeof length && strncasecmp(ptr, length, sizeof length - 1) == 0) {
    char tmp[32];
    size_t len = n - (sizeof length - 1);
    if (len >= sizeof tmp) len = sizeof tmp - 1;
    memcpy(tmp, ptr + sizeof length - 1, len);
    tmp[len] = '\0';
    r->announced = strtod(tmp, NULL);
  }
  if (n >= sizeof name && strncasecmp(ptr, name, sizeof name - 1) == 0) {
    const char *v = ptr + sizeof name - 1, *end = ptr + n;
    size_t len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
      end--;
    len = (size_t)(end - v);
    if (len >= sizeof r->retry_after) len = sizeof r->retry_after - 1;
    memcpy(r->retry_after, v, len);
    r->retry_after[len] = '\0';
  }
  return n;
}

static void reply_reset(di_reply *r) {
  di_buf_reset(&r->body);
  r->retry_after[0] = '\0';
  r->announced = -1;
  r->too_large = 0;
}

static void setup_easy(di_session *s, CURL *e, di_reply *reply, char *errbuf) {
  curl_easy_setopt(e, CURLOPT_SHARE, s->share);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L); /* signals break hosts and nginx */
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->headers);
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* all curl supports */
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                   s->http2 ? (long)CURL_HTTP_VERSION_2TLS
                            : (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, s->verify ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, s->verify ? 2L : 0L);
  if (s->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, s->ca_file);
  if (s->user_agent) curl_easy_setopt(e, CURLOPT_USERAGENT, s->user_agent);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, s->timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, reply);
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s->max_reply);
  reply->max = s->max_reply;
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, reply);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
}

static const char *error_kind(CURLcode rc) {
  switch (rc) {
  case CURLE_OPERATION_TIMEDOUT:
    return "timeout";
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ENGINE_INITFAILED:
    return "tls";
  default:
    return "network";
  }
}

/* Pushes the reply table of a finished transfer (docs/transport.md):
 *   { status=, body=, seconds=, http_version=, retry_after= }  or
 *   { kind=, message=, sent= }
 * post() returns it and multi completions are it (plus their tag), so the
 * Lua side reads one shape, whichever path the call took. */
static void push_result(lua_State *L, CURL *e, CURLcode rc, const di_reply *r,
                        const char *errbuf) {
  const di_buf *reply = &r->body;
  lua_createtable(L, 0, 6);
  if (rc == CURLE_OK && !reply->oom) {
    long status = 0, version = 0;
    double secs = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(e, CURLINFO_TOTAL_TIME, &secs);
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, reply->data ? reply->data : "", reply->len);
    lua_setfield(L, -2, "body");
    lua_pushnumber(L, secs);
    lua_setfield(L, -2, "seconds");
    lua_pushnumber(L, version == CURL_HTTP_VERSION_2_0 ? 2 :
                      version == CURL_HTTP_VERSION_1_0 ? 1.0 : 1.1);
    lua_setfield(L, -2, "http_version");
    if (r->retry_after[0] != '\0') {
      lua_pushstring(L, r->retry_after);
      lua_setfield(L, -2, "retry_after");
    }
  } else {
    long sent = 0;
    curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &sent);
    if (r->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
      lua_pushliteral(L, "too_large");
      lua_setfield(L, -2, "kind");
      lua_pushinteger(L, (lua_Integer)r->max);
      lua_setfield(L, -2, "limit");
      {
        /* (lua_pushfstring has no 64-bit integer format before Lua 5.3) */
        char msg[256];
        if (r->announced > (double)r->max)
          snprintf(msg, sizeof msg, "the reply is larger than max_reply_bytes (%llu bytes; the "
                   "server announced %.0f): not read further; raise the max_reply_bytes "
                   "setting if replies this large are expected",
                   (unsigned long long)r->max, r->announced);
        else
          snprintf(msg, sizeof msg, "the reply is larger than max_reply_bytes (%llu bytes): "
                   "not read further; raise the max_reply_bytes setting if replies this "
                   "large are expected", (unsigned long long)r->max);
        lua_pushstring(L, msg);
      }
    } else if (reply->oom) {
      lua_pushliteral(L, "network");
      lua_setfield(L, -2, "kind");
      lua_pushliteral(L, "out of memory while receiving the reply");
    } else {
      lua_pushstring(L, error_kind(rc));
      lua_setfield(L, -2, "kind");
      if (rc == CURLE_PARTIAL_FILE || rc == CURLE_HTTP2_STREAM ||
          rc == CURLE_GOT_NOTHING || rc == CURLE_RECV_ERROR)
        lua_pushfstring(L, "connection dropped or reply truncated: %s",
                        errbuf[0] ? errbuf : curl_easy_strerror(rc));
      else
        lua_pushstring(L, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    }
    lua_setfield(L, -2, "message");
    lua_pushboolean(L, sent > 0);
    lua_setfield(L, -2, "sent");
  }
}

/* ---- session ---------------------------------------------------------- */

static di_session *check_session(lua_State *L, int i) {
  di_session *s = luaL_checkudata(L, i, DI_SESSION_MT);
  if (s->closed) luaL_error(L, "attempt to use a closed session");
  return s;
}

static void session_release(di_session *s) {
  if (s->users > 0) return; /* the last multi to close finishes the job */
  if (s->easy) curl_easy_cleanup(s->easy);
  if (s->share) curl_share_cleanup(s->share);
  curl_slist_free_all(s->headers);
  di_buf_free(&s->reply.body);
  free(s->ca_file);
  free(s->user_agent);
  s->easy = NULL;
  s->share = NULL;
  s->headers = NULL;
  s->ca_file = s->user_agent = NULL;
}

/* session{ verify=, http2=, timeout=, connect_timeout=, user_agent=,
 *          max_reply_bytes= [, ca_file=, headers=] }: all but ca_file and headers
 *          required */
static int session_new(lua_State *L) {
  di_session *s;
  luaL_checktype(L, 1, LUA_TTABLE);
  s = lua_newuserdata(L, sizeof *s);
  memset(s, 0, sizeof *s);
  di_buf_init(&s->reply.body);
  luaL_getmetatable(L, DI_SESSION_MT);
  lua_setmetatable(L, -2);
  s->verify = bool_opt(L, 1, "verify");
  s->http2 = bool_opt(L, 1, "http2");
  s->timeout_ms = ms_opt(L, 1, "timeout");
  s->connect_timeout_ms = ms_opt(L, 1, "connect_timeout");
  s->ca_file = dup_opt(L, 1, "ca_file", 0);
  s->user_agent = dup_opt(L, 1, "user_agent", 1);
  header_value_check(L, s->user_agent, "user_agent");
  need(L, 1, "max_reply_bytes", LUA_TNUMBER);
  {
    lua_Number max = lua_tonumber(L, -1);
    /* checked as a double: a cast of inf or NaN is undefined */
    if (!(max >= 1 && max <= 1099511627776.0))
      return luaL_error(L, "session option 'max_reply_bytes' must be between 1 and 2^40");
    s->max_reply = (size_t)max;
  }
  lua_pop(L, 1);
  s->share = curl_share_init();
  if (s->share == NULL) return luaL_error(L, "curl_share_init failed");
  curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  /* "Expect:" stops curl from waiting a round trip for 100-continue before
   * sending a large body. */
  s->headers = curl_slist_append(NULL, "Content-Type: application/json");
  s->headers = curl_slist_append(s->headers, "Accept: application/json");
  s->headers = curl_slist_append(s->headers, "Expect:");
  if (s->headers == NULL) return luaL_error(L, "out of memory");
  /* headers = { "Name: value", ... }: more of them (a webhook's signature,
   * for `dialoginsight webhooks send`); each checked like user_agent */
  lua_getfield(L, 1, "headers");
  if (lua_istable(L, -1)) {
    int i, n = (int)di_rawlen(L, -1);
    for (i = 1; i <= n; i++) {
      const char *h;
      lua_rawgeti(L, -1, i);
      h = lua_tostring(L, -1);
      if (h == NULL || strchr(h, ':') == NULL) return luaL_error(L, "session option 'headers' must be a list of \"Name: value\"");
      header_value_check(L, h, "headers");
      s->headers = curl_slist_append(s->headers, h);
      if (s->headers == NULL) return luaL_error(L, "out of memory");
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    return luaL_error(L, "session option 'headers' must be a list of \"Name: value\"");
  }
  lua_pop(L, 1);
  return 1;
}

static CURL *session_easy(lua_State *L, di_session *s) {
  if (s->easy == NULL) {
    s->easy = curl_easy_init();
    if (s->easy == NULL) luaL_error(L, "curl_easy_init failed");
    setup_easy(s, s->easy, &s->reply, s->errbuf);
  }
  return s->easy;
}

/* A request's URL, body, timeout and whether it needs a connection of its
 * own.  Non-idempotent calls ask for one (`fresh`): on a reused connection
 * that dies before any reply, libcurl silently sends the request again, which
 * is right for a stale keep-alive but could send a message twice if the
 * server had in fact received it. */
static void set_request(lua_State *L, CURL *e, int url_i, int body_i,
                        int timeout_i, long dflt_ms) {
  size_t len;
  const char *body = luaL_checklstring(L, body_i, &len);
  long ms = dflt_ms;
  if (!lua_isnoneornil(L, timeout_i))
    ms = checked_ms(L, luaL_checknumber(L, timeout_i), "the timeout");
  curl_easy_setopt(e, CURLOPT_URL, luaL_checkstring(L, url_i));
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms);
  curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, lua_toboolean(L, timeout_i + 1) ? 1L : 0L);
}

/* session:post(url, body [, timeout_s [, fresh]]) */
static int session_post(lua_State *L) {
  di_session *s = check_session(L, 1);
  CURL *e = session_easy(L, s);
  CURLcode rc;
  set_request(L, e, 2, 3, 4, s->timeout_ms);
  reply_reset(&s->reply);
  s->errbuf[0] = '\0';
  rc = curl_easy_perform(e);
  push_result(L, e, rc, &s->reply, s->errbuf);
  return 1;
}

static int session_close(lua_State *L) {
  di_session *s = luaL_checkudata(L, 1, DI_SESSION_MT);
  if (!s->closed) {
    s->closed = 1;
    session_release(s);
  }
  return 0;
}

static int session_tostring(lua_State *L) {
  di_session *s = luaL_checkudata(L, 1, DI_SESSION_MT);
  lua_pushfstring(L, "dialoginsight.session (%s%p)", s->closed ? "closed, " : "",
                  (void *)s);
  return 1;
}

/* ---- multi ------------------------------------------------------------ */

static di_multi *check_multi(lua_State *L, int i) {
  di_multi *m = luaL_checkudata(L, i, DI_MULTI_MT);
  if (m->closed) luaL_error(L, "attempt to use a closed multi");
  return m;
}

/* session:multi([concurrency]) -> a handle for concurrent calls on the same share;
 * concurrency: how many its caller keeps in flight (the connections kept, below) */
static int session_multi(lua_State *L) {
  di_session *s = check_session(L, 1);
  /* (a number, bounded before any cast: LuaJIT's and 5.1's tointeger cast out-of-range
   * doubles, which C leaves undefined) */
  lua_Number concurrency = luaL_optnumber(L, 2, 0);
  di_multi *m = lua_newuserdata(L, sizeof *m);
  memset(m, 0, sizeof *m);
  m->session_ref = LUA_NOREF;
  luaL_getmetatable(L, DI_MULTI_MT);
  lua_setmetatable(L, -2);
  m->multi = curl_multi_init();
  if (m->multi == NULL) return luaL_error(L, "curl_multi_init failed");
  /* Every call in flight has a connection of its own (HTTP/2 where the
   * server offers it), not a stream of one shared connection: multiplexed,
   * eight 100-record Merges at a time each took about 0.9 ms longer (bench
   * scenario 4, bench/README.md), and separate connections neither share a
   * congestion window nor block each other on a lost packet. */
  curl_multi_setopt(m->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
  /* libcurl's own cap on the connections it keeps is 4 x the transfers in the multi
   * at the moment one ends: calls that complete as soon as they are sent (a fast
   * server) leave a transfer or two in it, the cap falls below the connections the
   * calls use, and one is closed, to be opened again for the next calls (a connect
   * per 25 calls, issue 26).  A cap from the calls' concurrency keeps them. */
  if (concurrency > 0) /* (NaN is not) */
    curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS,
                      concurrency < 4 ? 8L : concurrency > 4096 ? 8192L : (long)(2 * concurrency));
  m->s = s;
  lua_pushvalue(L, 1);
  m->session_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  s->users++;
  return 1;
}

/* multi:add(tag, url, body [, timeout_s [, fresh]]) */
static int multi_add(lua_State *L) {
  di_multi *m = check_multi(L, 1);
  lua_Integer tag = luaL_checkinteger(L, 2);
  di_xfer *x = m->idle;
  CURLMcode mc;
  luaL_checkstring(L, 3);
  luaL_checkstring(L, 4);
  /* checked before a transfer is taken, so a bad one loses none */
  if (!lua_isnoneornil(L, 5)) checked_ms(L, luaL_checknumber(L, 5), "the timeout");
  if (x != NULL) {
    m->idle = x->next;
  } else {
    x = calloc(1, sizeof *x);
    if (x == NULL) return luaL_error(L, "out of memory");
    x->easy = curl_easy_init();
    if (x->easy == NULL) { free(x); return luaL_error(L, "curl_easy_init failed"); }
    di_buf_init(&x->reply.body);
    x->body_ref = LUA_NOREF;
    x->all_next = m->all;
    m->all = x;
    setup_easy(m->s, x->easy, &x->reply, x->errbuf);
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (void *)x);
  }
  x->tag = tag;
  reply_reset(&x->reply);
  x->errbuf[0] = '\0';
  set_request(L, x->easy, 3, 4, 5, m->s->timeout_ms);
  lua_pushvalue(L, 4);
  x->body_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  mc = curl_multi_add_handle(m->multi, x->easy);
  if (mc != CURLM_OK) {
    luaL_unref(L, LUA_REGISTRYINDEX, x->body_ref);
    x->body_ref = LUA_NOREF;
    x->next = m->idle;
    m->idle = x;
    return luaL_error(L, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
  }
  m->active++;
  return 0;
}

/* Moves finished transfers into the result list at the top of the stack. */
static int collect(lua_State *L, di_multi *m, int list) {
  CURLMsg *msg;
  int left, n = 0;
  while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
    di_xfer *x = NULL;
    if (msg->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    push_result(L, x->easy, msg->data.result, &x->reply, x->errbuf);
    lua_pushinteger(L, x->tag);
    lua_setfield(L, -2, "tag");
    lua_rawseti(L, list, (int)di_rawlen(L, list) + 1);
    curl_multi_remove_handle(m->multi, x->easy);
    luaL_unref(L, LUA_REGISTRYINDEX, x->body_ref);
    x->body_ref = LUA_NOREF;
    x->next = m->idle;
    m->idle = x;
    m->active--;
    n++;
  }
  return n;
}

/* multi:perform(wait_s) -> list of completions: reply tables (see
 * push_result), each with the tag its call was added with.
 * Returns as soon as at least one call finished, or after wait_s. */
static int multi_perform(lua_State *L) {
  di_multi *m = check_multi(L, 1);
  lua_Number wait = luaL_optnumber(L, 2, 1.0);
  double deadline;
  int running, list;
  /* (int)(left * 1000) below must fit: NaN waits not at all, a day at most */
  if (!(wait > 0)) wait = 0;
  if (wait > 86400) wait = 86400;
  deadline = di_now() + wait;
  lua_newtable(L);
  list = lua_gettop(L);
  for (;;) {
    double left;
    CURLMcode mc = curl_multi_perform(m->multi, &running);
    if (mc != CURLM_OK)
      return luaL_error(L, "curl_multi_perform: %s", curl_multi_strerror(mc));
    left = deadline - di_now();
    if (collect(L, m, list) > 0 || m->active == 0 || left <= 0) break;
    /* poll returns early on socket activity or curl's own timers, so the
     * budget is measured on the clock, not counted down per poll */
    mc = curl_multi_poll(m->multi, NULL, 0, (int)(left * 1000) + 1, NULL);
    if (mc != CURLM_OK)
      return luaL_error(L, "curl_multi_poll: %s", curl_multi_strerror(mc));
  }
  return 1;
}

static int multi_pending(lua_State *L) {
  di_multi *m = check_multi(L, 1);
  lua_pushinteger(L, m->active);
  return 1;
}

static int multi_close(lua_State *L) {
  di_multi *m = luaL_checkudata(L, 1, DI_MULTI_MT);
  di_xfer *x;
  if (m->closed) return 0;
  m->closed = 1;
  /* Transfers still in flight are abandoned.  Each handle is removed from
   * the multi before it is cleaned, as curl requires. */
  while ((x = m->all) != NULL) {
    m->all = x->all_next;
    curl_multi_remove_handle(m->multi, x->easy);
    curl_easy_cleanup(x->easy);
    if (x->body_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, x->body_ref);
    di_buf_free(&x->reply.body);
    free(x);
  }
  m->idle = NULL;
  m->active = 0;
  curl_multi_cleanup(m->multi);
  m->multi = NULL;
  luaL_unref(L, LUA_REGISTRYINDEX, m->session_ref);
  m->s->users--;
  if (m->s->closed) session_release(m->s);
  return 0;
}

static const luaL_Reg session_methods[] = {
    {"post", session_post},
    {"multi", session_multi},
    {"close", session_close},
    {NULL, NULL}};

static const luaL_Reg multi_methods[] = {
    {"add", multi_add},
    {"perform", multi_perform},
    {"pending", multi_pending},
    {"close", multi_close},
    {NULL, NULL}};

void di_http_open(lua_State *L) {
  /* Not thread-safe before curl 7.84, but module loading is single-threaded
   * in every host we support, and later calls are reference-counted no-ops. */
  curl_global_init(CURL_GLOBAL_DEFAULT);
  di_new_class(L, DI_SESSION_MT, session_methods, session_close, session_tostring);
  di_new_class(L, DI_MULTI_MT, multi_methods, multi_close, NULL);
  lua_pushcfunction(L, session_new);
  lua_setfield(L, -2, "session");
  {
    /* curl_version() allocates on each call (valgrind reports it lost);
     * curl_version_info() returns static data. */
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    lua_pushfstring(L, "libcurl/%s %s", v->version,
                    v->ssl_version ? v->ssl_version : "no-TLS");
    lua_setfield(L, -2, "curl_version");
  }
}
