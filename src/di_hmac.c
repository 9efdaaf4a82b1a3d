/*
 * di_hmac.c: the signature of a webhook delivery (lua/dialoginsight/webhooks/),
 * with the libcrypto that libcurl already brings into every home.
 *
 *   core.hmac(algorithm, key, data [, encoding]) -> signature
 *       algorithm "sha256" | "sha1" | "sha512"; encoding "hex" (lower case,
 *       the default) | "base64" | "raw"
 *   core.digest(algorithm, data) -> lower-case hex of the plain digest (a sync
 *       state's record hash, which `sha256sum` reproduces)
 *   core.equal(a, b) -> boolean
 *       compares in time that depends on the lengths only, so that a forger
 *       cannot learn a signature byte by byte from how fast we refuse it
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "di_compat.h"
#include "di_core.h"

static const EVP_MD *digest(const char *name) {
  if (strcmp(name, "sha256") == 0) return EVP_sha256();
  if (strcmp(name, "sha1") == 0) return EVP_sha1();
  if (strcmp(name, "sha512") == 0) return EVP_sha512();
  return NULL;
}

static int hmac(lua_State *L) {
  static const char *const encodings[] = {"hex", "base64", "raw", NULL};
  const char *alg = luaL_checkstring(L, 1);
  size_t klen, dlen;
  const char *key = luaL_checklstring(L, 2, &klen);
  const char *data = luaL_checklstring(L, 3, &dlen);
  int enc = luaL_checkoption(L, 4, "hex", encodings);
  const EVP_MD *md = digest(alg);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mlen = 0;
  if (md == NULL)
    return luaL_argerror(L, 1, "algorithm must be \"sha256\", \"sha1\" or \"sha512\"");
  /* an empty key is HMAC's business, not ours to refuse: the caller's
   * settings refuse it with a sentence that names the setting */
  if (HMAC(md, key, (int)klen, (const unsigned char *)data, dlen, mac, &mlen) == NULL)
    return luaL_error(L, "hmac: libcrypto failed");
  if (enc == 0) {
    static const char hex[] = "0123456789abcdef";
    char out[EVP_MAX_MD_SIZE * 2];
    unsigned int i;
    for (i = 0; i < mlen; i++) {
      out[2 * i] = hex[mac[i] >> 4];
      out[2 * i + 1] = hex[mac[i] & 15];
    }
    lua_pushlstring(L, out, 2 * (size_t)mlen);
  } else if (enc == 1) {
    unsigned char out[EVP_MAX_MD_SIZE * 2];
    int n = EVP_EncodeBlock(out, mac, (int)mlen);
    lua_pushlstring(L, (const char *)out, (size_t)n);
  } else {
    lua_pushlstring(L, (const char *)mac, mlen);
  }
  return 1;
}

static int digest_hex(lua_State *L) {
  static const char hex[] = "0123456789abcdef";
  size_t dlen;
  const EVP_MD *md = digest(luaL_checkstring(L, 1));
  const char *data = luaL_checklstring(L, 2, &dlen);
  unsigned char out[EVP_MAX_MD_SIZE];
  char text[EVP_MAX_MD_SIZE * 2];
  unsigned int i, n = 0;
  if (md == NULL)
    return luaL_argerror(L, 1, "algorithm must be \"sha256\", \"sha1\" or \"sha512\"");
  if (!EVP_Digest(data, dlen, out, &n, md, NULL)) return luaL_error(L, "digest: libcrypto failed");
  for (i = 0; i < n; i++) {
    text[2 * i] = hex[out[i] >> 4];
    text[2 * i + 1] = hex[out[i] & 15];
  }
  lua_pushlstring(L, text, 2 * (size_t)n);
  return 1;
}

static int equal(lua_State *L) {
  size_t alen, blen;
  const char *a = luaL_checklstring(L, 1, &alen);
  const char *b = luaL_checklstring(L, 2, &blen);
  lua_pushboolean(L, alen == blen && CRYPTO_memcmp(a, b, alen) == 0);
  return 1;
}

void di_hmac_open(lua_State *L) {
  lua_pushcfunction(L, hmac);
  lua_setfield(L, -2, "hmac");
  lua_pushcfunction(L, digest_hex);
  lua_setfield(L, -2, "digest");
  lua_pushcfunction(L, equal);
  lua_setfield(L, -2, "equal");
}
