/*
 * auth.c -- API keys (auth.h): parsing, SHA-256 digests (OpenSSL
 * libcrypto's EVP_Digest) and the constant-time check of a bearer token.
 *
 * A key in clear lives only in the caller's strings (the environment, a
 * line buffer wiped after use) and in the request's header; what is kept
 * is its digest. A check hashes the presented token and compares the
 * digest with every key's by CRYPTO_memcmp, visiting all of them whatever
 * matches, so neither the comparison nor the loop says by its timing how
 * close a guess came or which key matched.
 */
#include "segmentd/auth.h"
#include "segmentd/err.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KEY_MIN 16
#define KEY_MAX 512
#define FILE_MAX (1 << 20) /* bytes of a keys file */

typedef struct {
  unsigned char digest[32];
  int scopes;
  char name[48]; /* where it was given: "SEGMENTD_API_KEYS entry 2" */
} auth_key;

struct sd_auth {
  auth_key *keys;
  size_t n, cap;
};

static const char *const scope_names[] = {"ingest", "read", "admin"};

const char *sd_scope_name(int bit) {
  for (int i = 0; i < 3; i++)
    if (bit == 1 << i) return scope_names[i];
  return "?";
}

const char *sd_access_name(int access) {
  static const char *const names[] = {"unset", "probe", "open", "metrics",
                                      "any",   "ingest", "read", "admin"};
  return access >= 0 && access <= SD_ACCESS_ADMIN ? names[access] : "unset";
}

int sd_access_scope(int access) {
  switch (access) {
  case SD_ACCESS_PROBE:
  case SD_ACCESS_OPEN: return 0;
  case SD_ACCESS_ANY_KEY: return -1;
  case SD_ACCESS_INGEST: return SD_SCOPE_INGEST;
  case SD_ACCESS_READ: return SD_SCOPE_READ;
  default: return SD_SCOPE_ADMIN; /* admin, and a row without a scope */
  }
}

int sd_scopes_parse(const char *s, size_t len, int *out) {
  *out = 0;
  size_t i = 0;
  while (i <= len) {
    size_t j = i;
    while (j < len && s[j] != '+') j++;
    int bit = 0;
    for (int k = 0; k < 3; k++)
      if (strlen(scope_names[k]) == j - i && !strncmp(s + i, scope_names[k], j - i))
        bit = 1 << k;
    if (!bit) return SD_EINVAL;
    *out |= bit;
    i = j + 1;
  }
  return 0;
}

/* RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" /
 * "/" ) *"=". */
static int token_ok(const char *s, size_t len) {
  size_t i = 0;
  while (i < len && (((s[i] | 32) >= 'a' && (s[i] | 32) <= 'z') ||
                     (s[i] >= '0' && s[i] <= '9') || strchr("-._~+/", s[i])))
    i++;
  if (i == 0) return 0;
  while (i < len && s[i] == '=') i++;
  return i == len;
}

static int digest(const char *s, size_t len, unsigned char out[32]) {
  unsigned int n = 0;
  return EVP_Digest(s, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32
             ? 0
             : SD_EINTERNAL;
}

/* Index of the key with this digest, or -1; visits every key. */
static int find(const sd_auth *a, const unsigned char d[32]) {
  size_t hit = 0;
  for (size_t i = 0; i < a->n; i++) {
    size_t eq = (size_t)(CRYPTO_memcmp(d, a->keys[i].digest, 32) == 0);
    hit |= ((size_t)0 - eq) & (i + 1);
  }
  return (int)hit - 1;
}

/* One "key:scope+scope" entry (already trimmed). */
static int add_entry(sd_auth *a, const char *s, size_t len, const char *where,
                     const char *name, char *msg, size_t msglen) {
  const char *colon = memchr(s, ':', len);
  size_t klen = colon ? (size_t)(colon - s) : len;
  int scopes = 0;
  const char *problem = NULL;
  unsigned char d[32];
  if (!colon)
    problem = "expected key:scope+scope";
  else if (klen < KEY_MIN || klen > KEY_MAX)
    problem = "a key must be 16 to 512 characters";
  else if (!token_ok(s, klen))
    problem = "a key may hold only A-Z a-z 0-9 - . _ ~ + / and trailing =";
  else if (sd_scopes_parse(colon + 1, len - klen - 1, &scopes) < 0)
    problem = "scopes must be ingest, read or admin joined by +";
  else if (digest(s, klen, d) < 0)
    problem = "cannot hash the key";
  else if (find(a, d) >= 0)
    problem = "the same key is given twice";
  if (problem) {
    snprintf(msg, msglen, "API keys: %s: %s", where, problem);
    return SD_EINVAL;
  }
  if (a->n == a->cap) {
    size_t nc = a->cap ? a->cap * 2 : 8;
    auth_key *nk = realloc(a->keys, nc * sizeof(*nk));
    if (!nk) return SD_ENOMEM;
    a->keys = nk, a->cap = nc;
  }
  memcpy(a->keys[a->n].digest, d, 32);
  snprintf(a->keys[a->n].name, sizeof(a->keys[a->n].name), "%s", name);
  a->keys[a->n++].scopes = scopes;
  OPENSSL_cleanse(d, sizeof(d));
  return 0;
}

static void trim(const char **s, size_t *len) {
  while (*len && (**s == ' ' || **s == '\t')) (*s)++, (*len)--;
  while (*len && strchr(" \t\r\n", (*s)[*len - 1])) (*len)--;
}

static int parse_env(sd_auth *a, const char *v, char *msg, size_t msglen) {
  int entry = 0;
  for (const char *p = v; p && *p;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    const char *s = p;
    char where[64];
    snprintf(where, sizeof(where), "SEGMENTD_API_KEYS entry %d", ++entry);
    trim(&s, &len);
    if (len) {
      int rc = add_entry(a, s, len, where, where, msg, msglen);
      if (rc < 0) return rc;
    }
    p = comma ? comma + 1 : NULL;
  }
  return 0;
}

/* One line of a keys file: blank, "# comment", or an entry with an
 * optional trailing "# comment". */
static int parse_line(sd_auth *a, char *line, const char *path, int no,
                      char *msg, size_t msglen) {
  char *hash = strchr(line, '#');
  if (hash) *hash = 0;
  const char *s = line;
  size_t len = strlen(line);
  trim(&s, &len);
  if (!len) return 0;
  char where[300], name[48];
  snprintf(where, sizeof(where), "%s line %d", path, no);
  snprintf(name, sizeof(name), "--api-keys-file line %d", no);
  return add_entry(a, s, len, where, name, msg, msglen);
}

static int parse_file(sd_auth *a, const char *path, char *msg, size_t msglen) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(msg, msglen, "API keys: cannot read --api-keys-file %s", path);
    return SD_EINVAL;
  }
  char line[KEY_MAX + 256];
  int no = 0, rc = 0;
  long total = 0;
  while (rc == 0 && fgets(line, sizeof(line), f)) {
    no++;
    total += (long)strlen(line);
    if (!strchr(line, '\n') && !feof(f)) {
      snprintf(msg, msglen, "API keys: %s line %d: line too long", path, no);
      rc = SD_EINVAL;
    } else if (total > FILE_MAX) {
      snprintf(msg, msglen, "API keys: %s: larger than 1 MiB", path);
      rc = SD_EINVAL;
    } else {
      rc = parse_line(a, line, path, no, msg, msglen);
    }
  }
  OPENSSL_cleanse(line, sizeof(line));
  fclose(f);
  return rc;
}

int sd_auth_new(const char *env_value, const char *path, sd_auth **out,
                char *msg, size_t msglen) {
  *out = NULL;
  sd_auth *a = calloc(1, sizeof(*a));
  if (!a) return SD_ENOMEM;
  int rc = parse_env(a, env_value, msg, msglen);
  if (rc == 0 && path) rc = parse_file(a, path, msg, msglen);
  if (rc < 0) {
    sd_auth_free(a);
    return rc;
  }
  *out = a;
  return 0;
}

void sd_auth_free(sd_auth *a) {
  if (!a) return;
  if (a->keys) OPENSSL_cleanse(a->keys, a->cap * sizeof(*a->keys));
  free(a->keys);
  free(a);
}

size_t sd_auth_count(const sd_auth *a) { return a ? a->n : 0; }

const char *sd_auth_key_name(const sd_auth *a, int key) {
  return a && key >= 0 && (size_t)key < a->n ? a->keys[key].name : NULL;
}

size_t sd_auth_count_scope(const sd_auth *a, int s) {
  size_t n = 0;
  for (size_t i = 0; a && i < a->n; i++) n += (a->keys[i].scopes & s) != 0;
  return n;
}

int sd_auth_check(const sd_auth *a, const char *header, int *scopes) {
  *scopes = 0;
  if (!a || !header) return SD_EUNAUTH;
  while (*header == ' ') header++;
  if (strncasecmp(header, "Bearer ", 7) != 0) return SD_EUNAUTH;
  const char *tok = header + 7;
  size_t len = strlen(tok);
  trim(&tok, &len);
  if (len > KEY_MAX || !token_ok(tok, len)) return SD_EUNAUTH;
  unsigned char d[32];
  if (digest(tok, len, d) < 0) return SD_EUNAUTH;
  int i = find(a, d);
  OPENSSL_cleanse(d, sizeof(d));
  if (i < 0) return SD_EUNAUTH;
  *scopes = a->keys[i].scopes;
  return i;
}
