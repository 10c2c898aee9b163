/*
 * core_embed.c -- the writer's side of embedding texts later: which
 * embedder the database's vectors belong to, the embedding queue's
 * counters, marking texts the embedder rejected, and the re-cluster that
 * ends a re-embed (reembed.c prepares one).
 *
 * The database records its embedder in meta key "embedder" ("builtin", or
 * "openai:<model>"); a server configured with another one refuses to start
 * rather than mix vectors of two models in one space.
 */
#include "core_int.h"

#include "segmentd/err.h"
#include "segmentd/log.h"
#include "segmentd/maint.h"
#include "segmentd/reembed.h"
#include "segmentd/timeutil.h"

#include <stdio.h>
#include <string.h>

/* Databases from before the key was kept hold built-in vectors, if any. */
static int embedder_of_old_db(sd_core *c, const char *want, char *have,
                              size_t cap) {
  sqlite3_stmt *st = sd_store_stmt(
      c->db, "SELECT 1 FROM texts WHERE embedding IS NOT NULL AND "
             "embedder_id!=?1 LIMIT 1");
  if (!st) return SD_EDB;
  sqlite3_bind_int64(st, 1, c->client_embedder_id);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SD_EDB;
  snprintf(have, cap, "%s", rc == SQLITE_ROW ? "builtin" : want);
  return sd_store_meta_set(c->db, "embedder", have);
}

static int check_embedder(sd_core *c, char *msg, size_t msglen) {
  char want[600], have[600];
  sd_embedder_key(c->cfg, want, sizeof(want));
  int rc = sd_store_meta_get(c->db, "embedder", have, sizeof(have));
  if (rc == SD_ENOTFOUND) rc = embedder_of_old_db(c, want, have, sizeof(have));
  if (rc < 0) return rc;
  if (strcmp(have, want) != 0) {
    snprintf(msg, msglen,
             "the database holds vectors of embedder \"%s\" but the server is "
             "configured with \"%s\"; segmentd never mixes the two: start "
             "with the database's embedder, or run `segmentd reembed` with "
             "the new embedder's flags to re-embed the stored texts (then "
             "start the server with the same flags)", have, want);
    return SD_EINVAL;
  }
  return 0;
}

static int load_counts(sd_core *c) {
  sqlite3_stmt *st = sd_store_stmt(
      c->db, "SELECT count(*)-count(failed_at),count(failed_at) FROM embed_queue");
  if (!st) return SD_EDB;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    atomic_store(&c->pending, sqlite3_column_int64(st, 0));
    atomic_store(&c->failed, sqlite3_column_int64(st, 1));
  }
  sqlite3_reset(st);
  if (rc != SQLITE_ROW) return SD_EDB;
  char v[64];
  rc = sd_store_meta_get(c->db, "reembed", v, sizeof(v));
  c->reembed = rc == 0;
  return rc == 0 || rc == SD_ENOTFOUND ? 0 : rc;
}

int core_embed_load(sd_core *c, char *msg, size_t msglen) {
  c->remote = sd_config_remote(c->cfg);
  int rc = check_embedder(c, msg, msglen);
  if (rc == 0 && c->remote)
    rc = sd_store_embedder_id(c->db, "openai", c->cfg->embed_model,
                              (int)c->cfg->dim, "1", sd_now_ms(),
                              &c->remote_embedder_id);
  if (rc == 0) rc = load_counts(c);
  if (rc == 0 && atomic_load(&c->pending) > 0)
    sd_log_info("%lld texts wait for their embedding%s",
                (long long)atomic_load(&c->pending),
                c->reembed ? " (re-embedding)" : "");
  return rc;
}

/* A drained re-embed ends with a re-cluster, on all their points, of the
 * spaces whose model was fitted (or is being fitted) on the first few. */
static void reembed_finish(sd_core *c) {
  struct sd_maint *m = atomic_load(&c->maint);
  if (!m) return; /* asked again after the next commit */
  c->reembed = 0;
  if (sd_store_exec(c->db, "DELETE FROM meta WHERE key='reembed'") < 0)
    sd_log_error("clearing the re-embed mark failed");
  for (int s = 0; s < SD_SPACES; s++) {
    if (!c->spaces[s].has_model && !atomic_load(&c->spaces[s].train_requested))
      continue; /* its first model, asked for next, sees every point */
    sd_recluster_req req = {s, SD_ALGO_KMEANS, (int)c->cfg->k,
                            s == SD_SPACE_INTENTS && !c->remote, 0x5e9d, 0};
    int64_t job;
    if (sd_maint_submit(m, &req, NULL, NULL, &job) == 0)
      sd_log_info("re-embed done: re-clustering %s (job %lld)",
                  c->spaces[s].name, (long long)job);
  }
}

void core_embed_committed(sd_core *c, int64_t queued, int64_t embedded) {
  if (!queued && !embedded) return;
  int64_t left = atomic_fetch_add(&c->pending, queued - embedded) + queued -
                 embedded;
  if (queued && c->on_pending) c->on_pending(c->on_pending_ud);
  if (c->reembed && left <= 0) reembed_finish(c);
}

static const char SQL_FAIL[] =
    "UPDATE embed_queue SET failed_at=?2,attempts=attempts+?3,error=?4 "
    "WHERE seq=?1 AND failed_at IS NULL";

int sd_core_op_embed_failed(sd_core *c, void *arg) {
  const sd_embed_fail_op *op = arg;
  int64_t now = sd_now_ms(), n = 0;
  for (size_t i = 0; i < op->n; i++) {
    sqlite3_stmt *st = sd_store_stmt(c->db, SQL_FAIL);
    if (!st) return SD_EDB;
    sqlite3_bind_int64(st, 1, op->seqs[i]);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int(st, 3, op->attempts);
    sqlite3_bind_text(st, 4, op->error, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
    n += sqlite3_changes(sd_store_db(c->db));
  }
  /* counted before the commit: a failed commit leaves the queue to retry
   * them, and the next start counts again from the table */
  atomic_fetch_sub(&c->pending, n);
  atomic_fetch_add(&c->failed, n);
  return 0;
}

void sd_core_on_outbox(sd_core *c, void (*fn)(void *ud), void *ud) {
  c->on_outbox = fn;
  c->on_outbox_ud = ud;
}

void sd_core_on_pending(sd_core *c, void (*fn)(void *ud), void *ud) {
  c->on_pending = fn;
  c->on_pending_ud = ud;
}

void sd_core_embed_counts(const sd_core *c, int64_t *pending, int64_t *failed) {
  *pending = atomic_load(&c->pending);
  *failed = atomic_load(&c->failed);
}

int sd_core_remote(const sd_core *c) { return c->remote; }
