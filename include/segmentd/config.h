/*
 * config.h -- segmentd's configuration: flags, SEGMENTD_* environment
 * variables and their defaults.
 *
 * Owns: the sd_config struct, parsing argv and the environment into it
 * (a flag beats its environment variable, which beats the default), --help
 * text, and rendering the config (no secrets) as JSON for /v1/info.
 * Strings in sd_config point into argv/environ or static defaults: they are
 * never freed and must outlive the config.
 */
#ifndef SEGMENTD_CONFIG_H
#define SEGMENTD_CONFIG_H

#include <stdio.h>
#include <stddef.h>

typedef struct {
  const char *listen;      /* host:port; port 0 = ephemeral */
  const char *db;          /* SQLite file path */
  const char *port_file;   /* where to write the bound port, or NULL */
  const char *embedder;    /* "builtin" | "openai" */
  const char *embed_url;   /* remote embedder base URL */
  const char *embed_model; /* remote model name */
  const char *embed_api_key_file;
  const char *embed_encoding; /* "float" | "base64" */
  const char *embed_api_key; /* from SEGMENTD_EMBED_API_KEY or the file;
                                not a flag, never rendered nor logged */
  long embed_batch;        /* texts per remote request */
  long embed_inflight;     /* remote requests in flight */
  long embed_timeout_ms;   /* per remote request */
  long embed_retries;      /* attempts at a rejected text before it fails */
  long embed_backoff_ms;   /* first retry delay */
  long embed_backoff_max_ms;
  long embed_breaker_failures;   /* consecutive failures opening the breaker */
  long embed_breaker_cooldown_ms;
  const char *log_level;   /* error | warn | info | debug */
  const char *log_format;  /* json | text */
  long threads;            /* HTTP thread pool size */
  long max_body;           /* bytes */
  long max_batch;          /* items per batch */
  long max_text;           /* bytes per text */
  long max_props;          /* properties per event */
  long max_depth;          /* JSON nesting depth */
  long max_id;             /* bytes of an event, text or user id */
  long max_conns;          /* concurrent connections */
  long conn_timeout;       /* seconds of idle before a connection is closed */
  long request_timeout;    /* seconds to send a whole request (slow clients) */
  long queue_max;          /* ingest batches waiting for the writer */
  long dim;                /* embedding dimension */
  long train_min;          /* points before a space trains its first model */
  long k;                  /* clusters of a first model; 0 = automatic */
  long k_max;              /* upper bound of automatic k */
  double half_life_days;   /* decay of user views and centroids */
  double w_text;           /* segment view weights */
  double w_behaviour;
  double w_time;
  double w_context;
  long save_interval_ms;   /* how often online centroids are persisted */
  long sample_size;        /* re-cluster reservoir sample */
  long k_min;              /* smallest automatic number of clusters */
  long stability_runs;     /* bootstrap re-fits for cluster stability */
  double match_threshold;  /* centroid cosine to keep a cluster id */
  long recluster_interval; /* seconds between scheduled re-clusters */
  double recluster_growth; /* share of new points that triggers one */
  long silhouette_sample;  /* rows scored when choosing K */
  long restarts;           /* k-means++ restarts of a final fit */
  double k_tolerance;      /* smallest K within this share of the best
                              silhouette is chosen (parsimony) */
  long actionable_size;    /* fewer members: the cluster is not actionable */
  double actionable_stability; /* lower bootstrap Jaccard: not actionable */
  long reassign_chunk;     /* entities moved per writer turn after an install */
  double fresh_gain;       /* a fresh k-means must beat the warm start from
                              the live model by this share of inertia */
  /* drift (drift.h) */
  long drift_interval;     /* seconds between checks; 0 = on request */
  long drift_sample;       /* MMD sample per side, recent ring */
  long drift_baseline;     /* vector baseline rows (0: 4 x drift_sample); use
                              sd_drift_baseline_size() */
  long drift_window;       /* sliding window of assignments for shares */
  long drift_min_points;   /* new points a distribution test needs */
  double drift_p_value;    /* MMD test level */
  long drift_permutations;
  long drift_persist;      /* drifted checks in a row before critical */
  double psi_warning, psi_critical;
  double centroid_shift;   /* 1 - cosine */
  double share_shift;      /* relative share change */
  double cohesion_drop;    /* fall of mean similarity */
  double outlier_quantile; /* per-cluster radius quantile */
  long emerging_min_size;    /* of a density candidate */
  long emerging_nb_min_size; /* of a neighbourhood candidate */
  long emerging_neighbours;  /* K of the neighbourhood test */
  double emerging_p_value;   /* its per-point tail probability */
  double vanish_floor;     /* window share / reference share */
  long drift_recluster;    /* 1: critical drift re-clusters */
  /* webhooks (notify.h) */
  const char *webhook_url;
  const char *webhook_secret_file;
  const char *webhook_secret; /* env SEGMENTD_WEBHOOK_SECRET or the file;
                                 not a flag, never rendered nor logged */
  const char *segments_webhook_url;
  long webhook_timeout_ms;
  long webhook_backoff_ms, webhook_backoff_max_ms;
  long webhook_max_attempts;
  /* auth and rate limits (auth.h, ratelimit.h) */
  const char *api_keys;      /* env SEGMENTD_API_KEYS: not a flag, never
                                rendered nor logged */
  const char *api_keys_file;
  const char *metrics_scope; /* open | read | admin */
  double rate_limit;         /* requests a second per key or address; 0 off */
  double rate_burst;         /* bucket size; 0 = max(1, rate_limit) */
  long rate_clients;         /* address buckets kept */
  /* retention (retention.h) */
  long retention_days;       /* 0 = keep forever */
  long retention_batch;      /* rows per writer transaction */
  long retention_interval;   /* seconds between runs */
  long sqlite_mmap_mb;       /* PRAGMA mmap_size of request readers (MiB) */
  long sqlite_wal_mb;        /* WAL size at which the writer catches up (MiB) */
  /* segment answer cache (lookup_cache.h) */
  long lookup_cache;         /* entries; 0 = off */
  long lookup_cache_ttl;     /* seconds */
} sd_config;

/* 1 when texts are embedded by a remote OpenAI-compatible server. */
int sd_config_remote(const sd_config *c);

/* Fills *c with defaults, then the environment, then argv (starting after
 * the subcommand). Returns 0, or SD_EINVAL after printing the problem to
 * err. *help is set when --help was asked for. */
int sd_config_parse(sd_config *c, int argc, char **argv, FILE *err, int *help);

/* Prints every flag, its environment variable and default. */
void sd_config_usage(FILE *out);

/* Sets the built-in defaults only (used by tests). */
void sd_config_defaults(sd_config *c);

struct json_t;
/* A new JSON object describing the config (no secrets); caller decrefs. */
struct json_t *sd_config_json(const sd_config *c);

#endif
