/*
 * notify_sign.c -- the webhook signature (notify.h): HMAC-SHA256 of
 * "<timestamp>.<body>" under the webhook secret, in lowercase hex, as in
 * the Stripe and GitHub conventions. The MAC is OpenSSL's (EVP_MAC from
 * libcrypto), fed in three pieces so the message is never copied. Nothing
 * here keeps or logs the secret; the MAC context is freed on every path.
 */
#include "segmentd/notify.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <string.h>

#include "segmentd/err.h"

#define SIGN_PREFIX "sha256="

/* mac = HMAC-SHA256(secret, ts "." body); 0 or SD_EINTERNAL. */
static int sign_raw(const char *secret, const char *ts, const char *body,
                    size_t len, unsigned char mac[32]) {
  EVP_MAC *alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
  EVP_MAC_CTX *ctx = alg ? EVP_MAC_CTX_new(alg) : NULL;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  size_t out = 0;
  int ok = ctx &&
           EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret),
                        params) == 1 &&
           EVP_MAC_update(ctx, (const unsigned char *)ts, strlen(ts)) == 1 &&
           EVP_MAC_update(ctx, (const unsigned char *)".", 1) == 1 &&
           EVP_MAC_update(ctx, (const unsigned char *)body, len) == 1 &&
           EVP_MAC_final(ctx, mac, &out, 32) == 1 && out == 32;
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(alg);
  return ok ? 0 : SD_EINTERNAL;
}

int sd_notify_sign(const char *secret, const char *ts, const char *body,
                   size_t len, char out_hex[65]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char mac[32];
  out_hex[0] = '\0';
  if (!secret || !ts || (!body && len > 0)) return SD_EINTERNAL;
  int rc = sign_raw(secret, ts, body ? body : "", len, mac);
  if (rc < 0) return rc;
  for (int i = 0; i < 32; i++) {
    out_hex[2 * i] = hex[mac[i] >> 4];
    out_hex[2 * i + 1] = hex[mac[i] & 15];
  }
  out_hex[64] = '\0';
  OPENSSL_cleanse(mac, sizeof(mac));
  return 0;
}

int sd_notify_verify(const char *secret, const char *ts, const char *body,
                     size_t len, const char *header) {
  char want[65];
  size_t pl = strlen(SIGN_PREFIX);
  if (!header || strncmp(header, SIGN_PREFIX, pl) != 0 ||
      strlen(header + pl) != 64)
    return 0;
  if (sd_notify_sign(secret, ts, body, len, want) < 0) return 0;
  return CRYPTO_memcmp(want, header + pl, 64) == 0;
}
