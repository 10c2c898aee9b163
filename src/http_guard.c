/*
 * http_guard.c -- the request gate (http_int.h): what a request must pass
 * between routing and its handler, in this order:
 *
 *   1. the key: with keys set, a route that needs a scope (the router's
 *      scope column; /metrics as --metrics-scope says) needs
 *      `Authorization: Bearer <key>` naming a known key (401 otherwise,
 *      with WWW-Authenticate) that holds the scope (403 otherwise);
 *   2. the rate: with --rate-limit, one token bucket per key (per client
 *      address for requests without one, and for every request when no
 *      keys are set); an empty bucket is 429 with Retry-After.
 *
 * /healthz and /readyz pass both, always. Keys and addresses are never
 * logged here.
 */
#include "http_int.h"

#include "segmentd/err.h"
#include "segmentd/log.h"
#include "segmentd/ratelimit.h"
#include "segmentd/timeutil.h"
#include "segmentd/tokenize.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sd_guard {
  sd_auth *auth;
  int metrics_access;
  sd_rate *keys;  /* one bucket per key (set per key index: no sharing) */
  sd_rate *addrs; /* buckets of client addresses, bounded */
};

#define REALM "Bearer realm=\"segmentd\""

static int metrics_access(const char *scope) {
  return !strcmp(scope, "open")    ? SD_ACCESS_OPEN
         : !strcmp(scope, "admin") ? SD_ACCESS_ADMIN
                                   : SD_ACCESS_READ;
}

static int guard_rates(sd_guard *g, const sd_config *cfg, char *msg,
                       size_t msglen) {
  if (!(cfg->rate_limit > 0)) return 0;
  double burst = cfg->rate_burst > 0 ? cfg->rate_burst : cfg->rate_limit;
  if (burst < 1) burst = 1;
  size_t nkeys = sd_auth_count(g->auth);
  int rc = sd_rate_new(cfg->rate_limit, burst, (size_t)cfg->rate_clients,
                       &g->addrs);
  if (rc == 0 && nkeys)
    rc = sd_rate_new(cfg->rate_limit, burst, nkeys * 8, &g->keys);
  if (rc < 0) snprintf(msg, msglen, "cannot set up the rate limit");
  return rc;
}

int sd_guard_new(const sd_config *cfg, sd_guard **out, char *msg,
                 size_t msglen) {
  *out = NULL;
  sd_guard *g = calloc(1, sizeof(*g));
  if (!g) return SD_ENOMEM;
  g->metrics_access = metrics_access(cfg->metrics_scope);
  int rc = sd_auth_new(cfg->api_keys, cfg->api_keys_file, &g->auth, msg, msglen);
  if (rc == 0) rc = guard_rates(g, cfg, msg, msglen);
  if (rc < 0) {
    sd_guard_free(g);
    return rc;
  }
  *out = g;
  return 0;
}

void sd_guard_free(sd_guard *g) {
  if (!g) return;
  sd_auth_free(g->auth);
  sd_rate_free(g->keys);
  sd_rate_free(g->addrs);
  free(g);
}

const sd_auth *sd_guard_auth(const sd_guard *g) { return g->auth; }

/* The 403 challenge naming the scope wanted (RFC 6750 section 3). */
static const char *scope_challenge(int bit) {
  return bit == SD_SCOPE_INGEST ? REALM ", error=\"insufficient_scope\", scope=\"ingest\""
         : bit == SD_SCOPE_READ ? REALM ", error=\"insufficient_scope\", scope=\"read\""
                                : REALM ", error=\"insufficient_scope\", scope=\"admin\"";
}

/* 1. The key: its index (>= 0), -1 when the route needs none, or the
 * error filled into rep. */
static int check_key(sd_guard *g, int access, sd_reply *rep,
                     const char *authz) {
  int need = sd_access_scope(access), scopes = 0;
  if (need == 0 || sd_auth_count(g->auth) == 0) return -1;
  int key = sd_auth_check(g->auth, authz, &scopes);
  if (key < 0) {
    rep->www_auth = authz ? REALM ", error=\"invalid_token\"" : REALM;
    return sd_reply_error(rep, SD_EUNAUTH,
                          authz ? "unknown or malformed API key (expected "
                                  "Authorization: Bearer <key>)"
                                : "an API key is required (Authorization: "
                                  "Bearer <key>)", NULL);
  }
  if (need > 0 && !(scopes & need)) {
    char m[96];
    snprintf(m, sizeof(m), "this API key lacks the %s scope",
             sd_scope_name(need));
    rep->www_auth = scope_challenge(need);
    return sd_reply_error(rep, SD_EFORBIDDEN, m, NULL);
  }
  return key;
}

/* A bucket id for a client address (IPv4 or IPv6, without the port). */
static uint64_t addr_id(const struct sockaddr *sa) {
  if (sa && sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    return sd_hash64(&a->sin_addr, sizeof(a->sin_addr), 0x1b4);
  }
  if (sa && sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    return sd_hash64(&a->sin6_addr, sizeof(a->sin6_addr), 0x1b6);
  }
  return 1;
}

int sd_guard_check(sd_guard *g, const sd_req *req, sd_reply *rep,
                   const char *authz, const struct sockaddr *client,
                   int *key_out) {
  int access = req->access == SD_ACCESS_METRICS ? g->metrics_access
                                                : req->access;
  *key_out = -1;
  if (access == SD_ACCESS_PROBE) return 0;
  int key = check_key(g, access, rep, authz);
  if (key >= 0) *key_out = key;
  if (key < -1) {
    rep->allow = NULL; /* a 404/405 the client may not learn of */
    return key;
  }
  if (!g->addrs) return 0;
  int64_t now = sd_mono_ns();
  int wait = key >= 0 ? sd_rate_take(g->keys, (uint64_t)key + 1, now)
                      : sd_rate_take(g->addrs, addr_id(client), now);
  if (wait == 0) return 0;
  sd_reply_error(rep, SD_ERATE, key >= 0 ? "this API key's request rate "
                 "limit is exceeded" : "this client's request rate limit "
                 "is exceeded", NULL);
  rep->retry_after = wait;
  rep->allow = NULL;
  return SD_ERATE;
}
