/*
 * config.c -- flags and SEGMENTD_* environment variables, table-driven.
 *
 * Each option is one row: flag, environment name, type, offset into
 * sd_config, default and help. Parsing, --help and /v1/info all walk the
 * same table, so they cannot disagree.
 */
#include "segmentd/config.h"
#include "segmentd/err.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OPT_STR, OPT_LONG, OPT_DOUBLE } opt_type;

typedef struct {
  const char *flag;
  const char *env;
  opt_type type;
  size_t off;
  const char *def;
  double min, max;
  const char *help;
} opt_row;

#define O(f) offsetof(sd_config, f)
static const opt_row opt_rows[] = {
    {"listen", "SEGMENTD_LISTEN", OPT_STR, O(listen), "127.0.0.1:8080", 0, 0,
     "address to serve on (host:port, port 0 = any free port)"},
    {"db", "SEGMENTD_DB", OPT_STR, O(db), "./var/segmentd.db", 0, 0,
     "SQLite database file (created and migrated at start)"},
    {"port-file", "SEGMENTD_PORT_FILE", OPT_STR, O(port_file), NULL, 0, 0,
     "write the bound port to this file once listening"},
    {"embedder", "SEGMENTD_EMBEDDER", OPT_STR, O(embedder), "builtin", 0, 0,
     "text embedder: builtin | openai (any OpenAI-compatible /v1/embeddings "
     "server: OpenAI, Ollama, vLLM, text-embeddings-inference, llama.cpp)"},
    {"embed-url", "SEGMENTD_EMBED_URL", OPT_STR, O(embed_url), NULL, 0, 0,
     "remote embedder base URL (POSTs to <url>/v1/embeddings unless it "
     "already ends in /embeddings)"},
    {"embed-model", "SEGMENTD_EMBED_MODEL", OPT_STR, O(embed_model), NULL, 0, 0,
     "remote embedder model name"},
    {"embed-api-key-file", "SEGMENTD_EMBED_API_KEY_FILE", OPT_STR,
     O(embed_api_key_file), NULL, 0, 0,
     "file holding the remote embedder's API key (or set "
     "SEGMENTD_EMBED_API_KEY); never logged"},
    {"embed-encoding", "SEGMENTD_EMBED_ENCODING", OPT_STR, O(embed_encoding),
     "float", 0, 0, "float | base64: how the embedder sends vectors (base64 "
     "is far cheaper to parse; OpenAI, vLLM and text-embeddings-inference "
     "support it)"},
    {"embed-batch", "SEGMENTD_EMBED_BATCH", OPT_LONG, O(embed_batch), "64", 1,
     2048, "texts per remote embedding request"},
    {"embed-inflight", "SEGMENTD_EMBED_INFLIGHT", OPT_LONG, O(embed_inflight),
     "4", 1, 64, "remote embedding requests in flight at once"},
    {"embed-timeout-ms", "SEGMENTD_EMBED_TIMEOUT_MS", OPT_LONG,
     O(embed_timeout_ms), "30000", 100, 600000,
     "timeout of one remote embedding request"},
    {"embed-retries", "SEGMENTD_EMBED_RETRIES", OPT_LONG, O(embed_retries), "5",
     1, 1000, "attempts at a text the embedder rejects (HTTP 400, 413, 422) "
     "before it is marked failed; other failures retry forever"},
    {"embed-backoff-ms", "SEGMENTD_EMBED_BACKOFF_MS", OPT_LONG,
     O(embed_backoff_ms), "500", 1, 600000,
     "first retry delay of a failed embedding request (doubles, jittered)"},
    {"embed-backoff-max-ms", "SEGMENTD_EMBED_BACKOFF_MAX_MS", OPT_LONG,
     O(embed_backoff_max_ms), "60000", 1, 3600000,
     "longest retry delay of a failed embedding request"},
    {"embed-breaker-failures", "SEGMENTD_EMBED_BREAKER_FAILURES", OPT_LONG,
     O(embed_breaker_failures), "5", 1, 1000,
     "consecutive failed requests that open the circuit breaker"},
    {"embed-breaker-cooldown-ms", "SEGMENTD_EMBED_BREAKER_COOLDOWN_MS",
     OPT_LONG, O(embed_breaker_cooldown_ms), "30000", 10, 3600000,
     "how long an open breaker sends nothing before one probe request"},
    {"log-level", "SEGMENTD_LOG_LEVEL", OPT_STR, O(log_level), "info", 0, 0,
     "error | warn | info | debug"},
    {"log-format", "SEGMENTD_LOG_FORMAT", OPT_STR, O(log_format), "json", 0, 0,
     "json (one JSON object per line) | text"},
    {"threads", "SEGMENTD_THREADS", OPT_LONG, O(threads), "4", 1, 256,
     "HTTP worker threads"},
    {"max-body", "SEGMENTD_MAX_BODY", OPT_LONG, O(max_body), "16777216", 1024,
     1073741824.0, "largest request body in bytes"},
    {"max-batch", "SEGMENTD_MAX_BATCH", OPT_LONG, O(max_batch), "10000", 1,
     1000000, "most items in one ingest batch"},
    {"max-text", "SEGMENTD_MAX_TEXT", OPT_LONG, O(max_text), "16384", 1,
     1048576, "longest text in bytes"},
    {"max-props", "SEGMENTD_MAX_PROPS", OPT_LONG, O(max_props), "64", 0, 4096,
     "most properties on one event"},
    {"max-depth", "SEGMENTD_MAX_DEPTH", OPT_LONG, O(max_depth), "32", 2, 1024,
     "deepest JSON nesting accepted"},
    {"max-id", "SEGMENTD_MAX_ID", OPT_LONG, O(max_id), "256", 1, 256,
     "longest event, text or user id in bytes"},
    {"max-conns", "SEGMENTD_MAX_CONNS", OPT_LONG, O(max_conns), "1024", 1,
     100000, "most concurrent HTTP connections"},
    {"conn-timeout", "SEGMENTD_CONN_TIMEOUT", OPT_LONG, O(conn_timeout), "30",
     1, 3600, "seconds an idle connection is kept"},
    {"request-timeout", "SEGMENTD_REQUEST_TIMEOUT", OPT_LONG,
     O(request_timeout), "60", 1, 86400, "seconds a connection has to send a "
     "whole request (headers and body), from its start or its previous "
     "answer; slower ones are closed"},
    {"queue-max", "SEGMENTD_QUEUE_MAX", OPT_LONG, O(queue_max), "256", 1,
     100000, "ingest batches waiting for the writer before 429"},
    {"dim", "SEGMENTD_DIM", OPT_LONG, O(dim), "256", 8, 4096,
     "embedding dimension"},
    {"train-min", "SEGMENTD_TRAIN_MIN", OPT_LONG, O(train_min), "1000", 2,
     10000000, "points a space needs before its first model is trained"},
    {"k", "SEGMENTD_K", OPT_LONG, O(k), "0", 0, 10000,
     "clusters of a first model (0 = automatic)"},
    {"k-max", "SEGMENTD_K_MAX", OPT_LONG, O(k_max), "100", 2, 10000,
     "largest automatic number of clusters"},
    {"half-life-days", "SEGMENTD_HALF_LIFE_DAYS", OPT_DOUBLE,
     O(half_life_days), "30", 0.01, 36500, "half-life of user views, days"},
    {"w-text", "SEGMENTD_W_TEXT", OPT_DOUBLE, O(w_text), "1", 0, 1000,
     "weight of the text view in user vectors"},
    {"w-behaviour", "SEGMENTD_W_BEHAVIOUR", OPT_DOUBLE, O(w_behaviour), "1", 0,
     1000, "weight of the behaviour view in user vectors"},
    {"w-time", "SEGMENTD_W_TIME", OPT_DOUBLE, O(w_time), "0.5", 0, 1000,
     "weight of the time view (hours, weekdays, cadence) in user vectors"},
    {"w-context", "SEGMENTD_W_CONTEXT", OPT_DOUBLE, O(w_context), "0.5", 0,
     1000, "weight of the context view (event properties) in user vectors"},
    {"save-interval-ms", "SEGMENTD_SAVE_INTERVAL_MS", OPT_LONG,
     O(save_interval_ms), "2000", 10, 3600000,
     "how often online centroid updates are persisted"},
    {"sample-size", "SEGMENTD_SAMPLE_SIZE", OPT_LONG, O(sample_size), "20000",
     100, 10000000, "entities sampled (recency-weighted) for a re-cluster"},
    {"k-min", "SEGMENTD_K_MIN", OPT_LONG, O(k_min), "2", 2, 10000,
     "smallest automatic number of clusters"},
    {"stability-runs", "SEGMENTD_STABILITY_RUNS", OPT_LONG,
     O(stability_runs), "3", 0, 100,
     "bootstrap re-fits measuring cluster stability (0 = off)"},
    {"match-threshold", "SEGMENTD_MATCH_THRESHOLD", OPT_DOUBLE,
     O(match_threshold), "0.5", -1, 1,
     "centroid cosine above which a new cluster keeps an old id"},
    {"recluster-interval", "SEGMENTD_RECLUSTER_INTERVAL", OPT_LONG,
     O(recluster_interval), "3600", 0, 31536000,
     "seconds between scheduled re-clusters (0 = only on request)"},
    {"recluster-growth", "SEGMENTD_RECLUSTER_GROWTH", OPT_DOUBLE,
     O(recluster_growth), "0.1", 0, 1000,
     "a scheduled re-cluster runs once points grew by this share"},
    {"silhouette-sample", "SEGMENTD_SILHOUETTE_SAMPLE", OPT_LONG,
     O(silhouette_sample), "2000", 100, 100000,
     "rows scored by the silhouette when choosing K"},
    {"restarts", "SEGMENTD_RESTARTS", OPT_LONG, O(restarts), "10", 1, 100,
     "k-means++ restarts of a final re-cluster fit (best inertia kept)"},
    {"k-tolerance", "SEGMENTD_K_TOLERANCE", OPT_DOUBLE, O(k_tolerance), "0.05",
     0, 0.5, "automatic K: the smallest K whose silhouette is within this "
     "share of the best"},
    {"actionable-size", "SEGMENTD_ACTIONABLE_SIZE", OPT_LONG,
     O(actionable_size), "20", 0, 100000000,
     "clusters with fewer members are flagged \"actionable\": false"},
    {"actionable-stability", "SEGMENTD_ACTIONABLE_STABILITY", OPT_DOUBLE,
     O(actionable_stability), "0.6", 0, 1,
     "clusters whose bootstrap Jaccard stability is lower are flagged "
     "\"actionable\": false (Hennig: below 0.6 is doubtful)"},
    {"reassign-chunk", "SEGMENTD_REASSIGN_CHUNK", OPT_LONG, O(reassign_chunk),
     "1000", 1, 100000, "entities moved onto a new model per writer turn "
     "(ingest waits for at most one such chunk)"},
    {"fresh-gain", "SEGMENTD_FRESH_GAIN", OPT_DOUBLE, O(fresh_gain), "0.01", 0,
     1, "a re-cluster replaces the warm start from the live model only when "
     "a fresh fit lowers inertia by this share"},
    {"drift-interval", "SEGMENTD_DRIFT_INTERVAL", OPT_LONG, O(drift_interval),
     "300", 0, 86400, "seconds between drift checks (0 = only on "
     "GET /v1/drift?refresh=true)"},
    {"drift-sample", "SEGMENTD_DRIFT_SAMPLE", OPT_LONG, O(drift_sample), "500",
     50, 5000, "points of the reference and of the current window compared "
     "by the MMD test, and of the recent ring the emerging test compares with "
     "the baseline"},
    {"drift-baseline", "SEGMENTD_DRIFT_BASELINE", OPT_LONG, O(drift_baseline),
     "0", 0, 20000, "points of the vector baseline (the first assigned after a "
     "model, or pinned): the emerging test's reference and the clusters' "
     "radii; the MMD test draws --drift-sample of them afresh at each check "
     "(0 = 4 x --drift-sample)"},
    {"drift-window", "SEGMENTD_DRIFT_WINDOW", OPT_LONG, O(drift_window), "5000",
     100, 1000000, "latest assignments whose cluster shares are compared "
     "with the reference (sliding window)"},
    {"drift-min-points", "SEGMENTD_DRIFT_MIN_POINTS", OPT_LONG,
     O(drift_min_points), "100", 10, 1000000,
     "fewer new points since the last check: the distribution test waits"},
    {"drift-p-value", "SEGMENTD_DRIFT_P_VALUE", OPT_DOUBLE, O(drift_p_value),
     "0.05", 0.0001, 0.5, "MMD permutation test level (Alibi Detect's "
     "default)"},
    {"drift-permutations", "SEGMENTD_DRIFT_PERMUTATIONS", OPT_LONG,
     O(drift_permutations), "200", 20, 10000,
     "permutations of the MMD test's p-value"},
    {"drift-persist", "SEGMENTD_DRIFT_PERSIST", OPT_LONG, O(drift_persist), "3",
     1, 100, "consecutive drifted checks before a distribution alert turns "
     "critical"},
    {"psi-warning", "SEGMENTD_PSI_WARNING", OPT_DOUBLE, O(psi_warning), "0.1",
     0, 10, "population stability index of cluster shares for a warning"},
    {"psi-critical", "SEGMENTD_PSI_CRITICAL", OPT_DOUBLE, O(psi_critical),
     "0.25", 0, 10, "population stability index for a critical alert"},
    {"centroid-shift", "SEGMENTD_CENTROID_SHIFT", OPT_DOUBLE, O(centroid_shift),
     "0.1", 0, 2, "1 - cosine between a cluster's reference and current mean "
     "that raises centroid_shift"},
    {"share-shift", "SEGMENTD_SHARE_SHIFT", OPT_DOUBLE, O(share_shift), "0.5",
     0, 100, "relative change of a cluster's share that raises share_shift "
     "(when also significant)"},
    {"cohesion-drop", "SEGMENTD_COHESION_DROP", OPT_DOUBLE, O(cohesion_drop),
     "0.1", 0, 2, "fall of a cluster's mean similarity that raises "
     "cohesion_drop"},
    {"outlier-quantile", "SEGMENTD_OUTLIER_QUANTILE", OPT_DOUBLE,
     O(outlier_quantile), "0.05", 0.001, 0.5, "a point less similar to its "
     "cluster than this quantile of the cluster's reference members is an "
     "outlier"},
    {"emerging-min-size", "SEGMENTD_EMERGING_MIN_SIZE", OPT_LONG,
     O(emerging_min_size), "30", 5, 100000,
     "outliers that must group densely before an emerging_cluster alert "
     "(the density method)"},
    {"emerging-neighbourhood-min-size", "SEGMENTD_EMERGING_NEIGHBOURHOOD_MIN_SIZE",
     OPT_LONG, O(emerging_nb_min_size), "20", 5, 100000,
     "recent points in new neighbourhoods that must group, once their rims "
     "and the members with a twin in the baseline are dropped, before an "
     "emerging_cluster alert (the neighbourhood method)"},
    {"emerging-neighbours", "SEGMENTD_EMERGING_NEIGHBOURS", OPT_LONG,
     O(emerging_neighbours), "20", 3, 100,
     "nearest neighbours per recent point in the emerging neighbourhood test"},
    {"emerging-p-value", "SEGMENTD_EMERGING_P_VALUE", OPT_DOUBLE,
     O(emerging_p_value), "0.05", 0.0001, 0.5, "a recent point is in a new "
     "neighbourhood when its count of recent neighbours has a binomial tail "
     "probability below this"},
    {"vanish-floor", "SEGMENTD_VANISH_FLOOR", OPT_DOUBLE, O(vanish_floor), "0.1",
     0, 1, "a cluster whose window share falls below this fraction of its "
     "reference share is vanishing"},
    {"drift-recluster", "SEGMENTD_DRIFT_RECLUSTER", OPT_LONG, O(drift_recluster),
     "0", 0, 1, "1: a critical drift alert or an emerging cluster triggers a "
     "re-cluster (recorded in the lineage with the alert)"},
    {"webhook-url", "SEGMENTD_WEBHOOK_URL", OPT_STR, O(webhook_url), NULL, 0, 0,
     "URL that receives every alert as JSON (signed when a secret is set; "
     "unset: no webhook)"},
    {"webhook-secret-file", "SEGMENTD_WEBHOOK_SECRET_FILE", OPT_STR,
     O(webhook_secret_file), NULL, 0, 0, "file holding the HMAC-SHA256 "
     "signing secret (or set SEGMENTD_WEBHOOK_SECRET); never logged"},
    {"segments-webhook-url", "SEGMENTD_SEGMENTS_WEBHOOK_URL", OPT_STR,
     O(segments_webhook_url), NULL, 0, 0, "URL that receives users entering "
     "and leaving segments (a snapshot, then diffs; unset: off)"},
    {"webhook-timeout-ms", "SEGMENTD_WEBHOOK_TIMEOUT_MS", OPT_LONG,
     O(webhook_timeout_ms), "10000", 100, 600000, "timeout of one delivery"},
    {"webhook-backoff-ms", "SEGMENTD_WEBHOOK_BACKOFF_MS", OPT_LONG,
     O(webhook_backoff_ms), "1000", 1, 3600000,
     "first retry delay of a failed delivery (doubles, jittered)"},
    {"webhook-backoff-max-ms", "SEGMENTD_WEBHOOK_BACKOFF_MAX_MS", OPT_LONG,
     O(webhook_backoff_max_ms), "600000", 1, 86400000,
     "longest retry delay of a failed delivery"},
    {"webhook-max-attempts", "SEGMENTD_WEBHOOK_MAX_ATTEMPTS", OPT_LONG,
     O(webhook_max_attempts), "15", 1, 1000, "attempts before a delivery is "
     "given up (logged, counted in /metrics, kept in the outbox)"},
    {"api-keys-file", "SEGMENTD_API_KEYS_FILE", OPT_STR, O(api_keys_file),
     NULL, 0, 0, "file of API keys, one \"key:scope+scope\" a line, # "
     "comments (adds to SEGMENTD_API_KEYS); no keys: the API is open"},
    {"metrics-scope", "SEGMENTD_METRICS_SCOPE", OPT_STR, O(metrics_scope),
     "read", 0, 0, "what GET /metrics needs when keys are set: open | read "
     "| admin"},
    {"rate-limit", "SEGMENTD_RATE_LIMIT", OPT_DOUBLE, O(rate_limit), "0", 0,
     1e6, "requests a second per API key (per client address when no keys "
     "are set); 0 = no limit"},
    {"rate-burst", "SEGMENTD_RATE_BURST", OPT_DOUBLE, O(rate_burst), "0", 0,
     1e7, "bucket size: requests a client may send at once (0 = one "
     "second's worth of --rate-limit, at least 1)"},
    {"rate-clients", "SEGMENTD_RATE_CLIENTS", OPT_LONG, O(rate_clients),
     "10000", 8, 10000000, "client addresses whose rate buckets are kept "
     "(the least recently seen make room)"},
    {"retention-days", "SEGMENTD_RETENTION_DAYS", OPT_LONG,
     O(retention_days), "0", 0, 36500, "events and texts older than this "
     "many days are deleted (0 = kept forever)"},
    {"retention-batch", "SEGMENTD_RETENTION_BATCH", OPT_LONG,
     O(retention_batch), "1000", 1, 100000,
     "rows deleted per writer transaction by retention"},
    {"retention-interval", "SEGMENTD_RETENTION_INTERVAL", OPT_LONG,
     O(retention_interval), "3600", 1, 604800,
     "seconds between retention runs (the first runs once serving)"},
    {"sqlite-mmap-mb", "SEGMENTD_SQLITE_MMAP_MB", OPT_LONG, O(sqlite_mmap_mb),
     "1024", 0, 1048576, "MiB of the database the request threads' SQLite "
     "connections read through a memory map (0 = off: reads copy pages into "
     "their page caches; mapped pages count in RSS); the writer and "
     "background threads never map"},
    {"sqlite-wal-mb", "SEGMENTD_SQLITE_WAL_MB", OPT_LONG, O(sqlite_wal_mb),
     "256", 8, 65536, "MiB of WAL past which the writer finishes the "
     "checkpoint so the WAL is rewound (bounds the WAL file under sustained "
     "ingest; smaller: less disk, slower ingest)"},
    {"lookup-cache", "SEGMENTD_LOOKUP_CACHE", OPT_LONG, O(lookup_cache),
     "1000000", 0, 100000000, "users whose segment answers are kept in "
     "memory (about 250 bytes each; 0 = off)"},
    {"lookup-cache-ttl", "SEGMENTD_LOOKUP_CACHE_TTL", OPT_LONG,
     O(lookup_cache_ttl), "60", 1, 86400, "seconds a kept segment answer is "
     "served (a change to the user or a new model ends it at once)"},
};
#undef O
#define OPT_N (sizeof(opt_rows) / sizeof(opt_rows[0]))

static int opt_set(sd_config *c, const opt_row *o, const char *v, FILE *err,
                   const char *src) {
  char *end = NULL;
  void *p = (char *)c + o->off;
  if (o->type == OPT_STR) {
    *(const char **)p = v;
    return 0;
  }
  errno = 0;
  double d = strtod(v, &end);
  if (errno || end == v || *end || !isfinite(d) || d < o->min ||
      d > o->max || (o->type == OPT_LONG && d != floor(d))) {
    fprintf(err, "segmentd: %s %s=\"%s\": expected a %s in [%g, %g]\n", src,
            o->flag, v, o->type == OPT_LONG ? "whole number" : "number",
            o->min, o->max);
    return SD_EINVAL;
  }
  if (o->type == OPT_LONG)
    *(long *)p = (long)d;
  else
    *(double *)p = d;
  return 0;
}

void sd_config_defaults(sd_config *c) {
  memset(c, 0, sizeof(*c));
  for (size_t i = 0; i < OPT_N; i++)
    if (opt_rows[i].def) opt_set(c, &opt_rows[i], opt_rows[i].def, stderr, "default");
}

static const opt_row *opt_find(const char *flag, size_t len) {
  for (size_t i = 0; i < OPT_N; i++)
    if (strlen(opt_rows[i].flag) == len && !strncmp(opt_rows[i].flag, flag, len))
      return &opt_rows[i];
  return NULL;
}

static int config_argv(sd_config *c, int argc, char **argv, FILE *err,
                       int *help) {
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      *help = 1;
      continue;
    }
    if (strncmp(a, "--", 2) != 0) {
      fprintf(err, "segmentd: unexpected argument \"%s\"\n", a);
      return SD_EINVAL;
    }
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const opt_row *o = opt_find(name, len);
    if (!o) {
      fprintf(err, "segmentd: unknown flag \"%s\" (see --help)\n", a);
      return SD_EINVAL;
    }
    const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
    if (!v) {
      fprintf(err, "segmentd: flag --%s needs a value\n", o->flag);
      return SD_EINVAL;
    }
    if (opt_set(c, o, v, err, "flag") < 0) return SD_EINVAL;
  }
  return 0;
}

/* A secret: the environment variable env, else the first line of file
 * (kept in buf: the config never frees its strings). NULL when neither. */
static int config_secret(const char *env, const char *file, char *buf,
                         size_t cap, const char **out, FILE *err) {
  const char *v = getenv(env);
  *out = NULL;
  if (v && *v) {
    *out = v;
    return 0;
  }
  if (!file) return 0;
  FILE *f = fopen(file, "r");
  if (!f || !fgets(buf, (int)cap, f)) {
    fprintf(err, "segmentd: cannot read the secret file %s\n", file);
    if (f) fclose(f);
    return SD_EINVAL;
  }
  fclose(f);
  buf[strcspn(buf, "\r\n")] = 0;
  *out = buf[0] ? buf : NULL;
  return 0;
}

/* The embedder and what it needs. */
static int config_embedder(sd_config *c, FILE *err) {
  if (!strcmp(c->embedder, "builtin")) return 0;
  if (strcmp(c->embedder, "openai") != 0) {
    fprintf(err, "segmentd: unknown embedder \"%s\" (builtin | openai)\n",
            c->embedder);
    return SD_EINVAL;
  }
  if (!c->embed_url || (strncmp(c->embed_url, "http://", 7) != 0 &&
                        strncmp(c->embed_url, "https://", 8) != 0)) {
    fprintf(err, "segmentd: --embedder openai needs --embed-url "
                 "(SEGMENTD_EMBED_URL), an http:// or https:// URL\n");
    return SD_EINVAL;
  }
  if (strcmp(c->embed_encoding, "float") != 0 &&
      strcmp(c->embed_encoding, "base64") != 0) {
    fprintf(err, "segmentd: --embed-encoding must be float or base64\n");
    return SD_EINVAL;
  }
  if (!c->embed_model || !*c->embed_model) {
    fprintf(err, "segmentd: --embedder openai needs --embed-model "
                 "(SEGMENTD_EMBED_MODEL)\n");
    return SD_EINVAL;
  }
  static char key[4096];
  return config_secret("SEGMENTD_EMBED_API_KEY", c->embed_api_key_file, key,
                       sizeof(key), &c->embed_api_key, err);
}

int sd_config_parse(sd_config *c, int argc, char **argv, FILE *err,
                    int *help) {
  *help = 0;
  sd_config_defaults(c);
  for (size_t i = 0; i < OPT_N; i++) {
    const char *v = getenv(opt_rows[i].env);
    if (v && opt_set(c, &opt_rows[i], v, err, "environment") < 0)
      return SD_EINVAL;
  }
  if (config_argv(c, argc, argv, err, help) < 0) return SD_EINVAL;
  if (config_embedder(c, err) < 0) return SD_EINVAL;
  static char secret[4096];
  if (config_secret("SEGMENTD_WEBHOOK_SECRET", c->webhook_secret_file, secret,
                    sizeof(secret), &c->webhook_secret, err) < 0)
    return SD_EINVAL;
  c->api_keys = getenv("SEGMENTD_API_KEYS");
  if (strcmp(c->metrics_scope, "open") != 0 &&
      strcmp(c->metrics_scope, "read") != 0 &&
      strcmp(c->metrics_scope, "admin") != 0) {
    fprintf(err, "segmentd: --metrics-scope must be open, read or admin\n");
    return SD_EINVAL;
  }
  if (c->psi_critical < c->psi_warning) {
    fprintf(err, "segmentd: --psi-critical must not be below --psi-warning\n");
    return SD_EINVAL;
  }
  if (c->w_text + c->w_behaviour + c->w_time + c->w_context <= 0) {
    fprintf(err, "segmentd: view weights must not all be zero\n");
    return SD_EINVAL;
  }
  return 0;
}

/* Prints text wrapped at HELP_WIDTH columns, every line indented. */
#define HELP_WIDTH 78
static void put_wrapped(FILE *out, const char *text, int indent) {
  const char *p = text;
  while (*p) {
    size_t room = (size_t)(HELP_WIDTH - indent), n = strlen(p);
    if (n > room) { /* cut at the last space that fits */
      n = room;
      while (n > 0 && p[n] != ' ') n--;
      if (n == 0) n = strcspn(p, " "); /* one long word */
    }
    fprintf(out, "%*s%.*s\n", indent, "", (int)n, p);
    p += n;
    while (*p == ' ') p++;
  }
}

static const char USAGE_DESCRIPTION[] =
    "serve runs the HTTP API on --listen with its database in --db (created "
    "and migrated at start) until SIGTERM or SIGINT, then drains and stops. "
    "reembed marks every stored text for re-embedding with the embedder the "
    "flags name; run it with the server stopped, then serve with the same "
    "flags does the work. Every flag can also be set by its environment "
    "variable; a flag given on the command line wins.";

void sd_config_usage(FILE *out) {
  fprintf(out, "NAME\n    segmentd serve - serve the HTTP API\n"
               "    segmentd reembed - re-embed every stored text (server "
               "stopped)\n\n"
               "SYNOPSIS\n    segmentd serve [OPTIONS]\n"
               "    segmentd reembed [OPTIONS]\n\nDESCRIPTION\n");
  put_wrapped(out, USAGE_DESCRIPTION, 4);
  fprintf(out, "\nOPTIONS\n");
  for (size_t i = 0; i < OPT_N; i++) {
    const opt_row *o = &opt_rows[i];
    char tail[160];
    fprintf(out, "    --%s %s\n", o->flag,
            o->type == OPT_STR ? "VALUE" : o->type == OPT_LONG ? "N" : "X");
    put_wrapped(out, o->help, 12);
    snprintf(tail, sizeof(tail), "Environment: %s. Default: %s.", o->env,
             o->def ? o->def : "unset");
    put_wrapped(out, tail, 12);
  }
  fprintf(out, "    -h, --help\n%12sprint this help and exit\n\n"
               "EXIT STATUS\n    0   stopped cleanly\n"
               "    1   start failure (database, port, embedder: see the log)\n"
               "    2   usage error: unknown flag or bad value\n\n"
               "EXAMPLES\n    segmentd serve --listen 127.0.0.1:8080 --db "
               "var/segmentd.db\n"
               "    SEGMENTD_API_KEYS='k1:read+ingest' segmentd serve\n"
               "    segmentd routes\n", "");
}

json_t *sd_config_json(const sd_config *c) {
  json_t *o = json_object();
  if (!o) return NULL;
  for (size_t i = 0; i < OPT_N; i++) {
    const opt_row *r = &opt_rows[i];
    const void *p = (const char *)c + r->off;
    json_t *v = NULL;
    if (r->type == OPT_STR) {
      const char *s = *(const char *const *)p;
      v = s ? json_string(s) : json_null();
    } else if (r->type == OPT_LONG) {
      v = json_integer(*(const long *)p);
    } else {
      v = json_real(*(const double *)p);
    }
    char key[64];
    size_t j;
    for (j = 0; r->flag[j] && j + 1 < sizeof(key); j++)
      key[j] = r->flag[j] == '-' ? '_' : r->flag[j]; /* snake_case */
    key[j] = 0;
    json_object_set_new(o, key, v);
  }
  return o;
}

int sd_config_remote(const sd_config *c) {
  return c->embedder && !strcmp(c->embedder, "openai");
}
