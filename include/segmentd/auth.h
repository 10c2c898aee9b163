/*
 * auth.h -- API keys and their scopes.
 *
 * Owns: parsing the keys (SEGMENTD_API_KEYS, "key:scope+scope,...", and
 * the lines of --api-keys-file), holding each one only as its SHA-256
 * digest with its scopes, checking an `Authorization: Bearer <key>`
 * header against every key in constant time (CRYPTO_memcmp over all of
 * them, no early exit), the scope names, what each kind of route needs
 * (sd_access, the router's scope column), and where each key was given
 * (its entry or line, which names it in records such as a drift pin).
 *
 * Keys are never logged and never kept in clear: error messages name the
 * entry or line, never its key. Memory: sd_auth_new allocates, sd_auth_free
 * (NULL-safe) wipes and releases. An sd_auth is read-only after creation,
 * so any thread may check headers against it.
 */
#ifndef SEGMENTD_AUTH_H
#define SEGMENTD_AUTH_H

#include <stddef.h>

/* Key scopes, a bit set. They do not imply each other. */
enum {
  SD_SCOPE_INGEST = 1, /* POST /v1/events, /v1/texts */
  SD_SCOPE_READ = 2,   /* GETs, lookup, assign */
  SD_SCOPE_ADMIN = 4,  /* PATCH, DELETE, recluster, evaluate */
};

/* What a route needs: the scope column of the route table. 0 is no value,
 * so a row that forgets it is caught (test_router) and fails closed
 * (treated as admin). */
typedef enum {
  SD_ACCESS_PROBE = 1, /* /healthz, /readyz: always open, never limited */
  SD_ACCESS_OPEN,      /* no key needed (the dashboard page, its assets) */
  SD_ACCESS_METRICS,   /* what --metrics-scope says */
  SD_ACCESS_ANY_KEY,   /* any known key (unknown /v1 paths: 404 or 405) */
  SD_ACCESS_INGEST,
  SD_ACCESS_READ,
  SD_ACCESS_ADMIN,
} sd_access;

/* "probe", "open", "metrics", "any", "ingest", "read", "admin". */
const char *sd_access_name(int access);
/* The scope bit an access needs: 0 for none (probe, open), -1 for any key. */
int sd_access_scope(int access);

typedef struct sd_auth sd_auth;

/* Parses keys from env_value (may be NULL or empty) and from the file at
 * path (may be NULL); both add up. 0 with *out (which has no keys when
 * none were given: the API is open), or SD_EINVAL with msg naming the
 * entry or line and the problem. A key is 16 to 512 characters of
 * A-Z a-z 0-9 - . _ ~ + / (then '=' padding), not repeated. */
int sd_auth_new(const char *env_value, const char *path, sd_auth **out,
                char *msg, size_t msglen);
void sd_auth_free(sd_auth *a);

/* Number of keys (0: auth off). */
size_t sd_auth_count(const sd_auth *a);
/* Keys holding scope bit s. */
size_t sd_auth_count_scope(const sd_auth *a, int s);

/* Checks an Authorization header value (NULL when absent). The key's
 * index (>= 0) with its scope bits in *scopes, or SD_EUNAUTH when the
 * header is missing, is not "Bearer <token>", or names no key. */
int sd_auth_check(const sd_auth *a, const char *header, int *scopes);

/* Where key index `key` (of sd_auth_check) was given, never the key:
 * "SEGMENTD_API_KEYS entry 2" or "--api-keys-file line 5"; NULL for a
 * negative index. Lives as long as a. */
const char *sd_auth_key_name(const sd_auth *a, int key);

/* Parses "read+admin" style scope lists; 0 or SD_EINVAL. */
int sd_scopes_parse(const char *s, size_t len, int *out);
/* The scope name of one bit ("ingest", "read", "admin"), or "?". */
const char *sd_scope_name(int bit);

#endif
