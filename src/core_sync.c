/*
 * core_sync.c -- segment membership sync: the "segments" webhook stream
 * (--segments-webhook-url), the way product-analytics tools sync cohorts.
 *
 * The stream starts with a snapshot of every assigned user (events
 * "segments.snapshot", parts of SYNC_CHUNK users), then carries one
 * "segments.diff" per ingest group whose users entered or left segments,
 * and "segments.diff" with reason "erased" for an erased user. A new
 * segments model ends, once every user is moved onto it, with a new
 * snapshot (diffs in between use the new model's ids). Every event is
 * added to the outbox inside the transaction that made the change, so the
 * stream is exactly the committed history; meta "segments_synced" holds
 * the model version of the last snapshot (a restart sends one only when
 * the model changed or the stream was just turned on).
 */
#include "core_int.h"

#include "segmentd/err.h"
#include "segmentd/log.h"
#include "segmentd/notify.h"
#include "segmentd/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYNC_CHUNK 1000

static int sync_on(const sd_core *c) {
  return c->cfg->segments_webhook_url && c->cfg->segments_webhook_url[0];
}

static int sync_event(sd_core *c, const char *event, json_t *payload) {
  char *js = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
  json_decref(payload);
  if (!js) return SD_ENOMEM;
  int rc = sd_outbox_add(c->cfg, c->db, "segments", event, js, sd_now_ms());
  free(js);
  return rc;
}

static json_t *member(const char *user_id, int64_t segment) {
  return json_pack("{s:s,s:I}", "user_id", user_id, "segment",
                   (json_int_t)segment);
}

/* One part of the snapshot: up to SYNC_CHUNK users after *after. */
static int snapshot_part(sd_core *c, int64_t version, int part, int64_t *after,
                         int *more) {
  sqlite3_stmt *st = sd_store_stmt(
      c->db, "SELECT id,user_id,cluster FROM users WHERE id>?1 AND cluster "
             "IS NOT NULL ORDER BY id LIMIT ?2");
  json_t *members = json_array();
  if (!st || !members) return json_decref(members), st ? SD_ENOMEM : SD_EDB;
  sqlite3_bind_int64(st, 1, *after);
  sqlite3_bind_int(st, 2, SYNC_CHUNK);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    *after = sqlite3_column_int64(st, 0);
    json_array_append_new(members, member((const char *)sqlite3_column_text(st, 1),
                                          sqlite3_column_int64(st, 2)));
  }
  sqlite3_reset(st);
  *more = json_array_size(members) == SYNC_CHUNK;
  if (rc != SQLITE_DONE) return json_decref(members), SD_EDB;
  return sync_event(c, "segments.snapshot",
                    json_pack("{s:I,s:i,s:b,s:o}", "model_version",
                              (json_int_t)version, "part", part, "last", !*more,
                              "members", members));
}

int core_sync_snapshot(sd_core *c, int64_t version) {
  if (!sync_on(c)) return 0;
  int64_t after = 0;
  int more = 1, rc = 0;
  for (int part = 0; more && rc == 0; part++)
    rc = snapshot_part(c, version, part, &after, &more);
  char v[32];
  snprintf(v, sizeof(v), "%lld", (long long)version);
  if (rc == 0) rc = sd_store_meta_set(c->db, "segments_synced", v);
  if (rc == 0) sd_log_info("segments sync: snapshot of model v%lld queued",
                           (long long)version);
  return rc;
}

int core_sync_start(sd_core *c) {
  const sd_space *seg = &c->spaces[SD_SPACE_SEGMENTS];
  if (!sync_on(c) || !seg->has_model || c->reassign.active) return 0;
  char have[32], want[32];
  snprintf(want, sizeof(want), "%lld", (long long)seg->version);
  int rc = sd_store_meta_get(c->db, "segments_synced", have, sizeof(have));
  if (rc == 0 && !strcmp(have, want)) return 0;
  if (rc < 0 && rc != SD_ENOTFOUND) return rc;
  rc = sd_store_exec(c->db, "BEGIN IMMEDIATE");
  if (rc == 0) rc = core_sync_snapshot(c, seg->version);
  if (rc == 0) return sd_store_commit(c->db);
  sd_store_exec(c->db, "ROLLBACK");
  return rc;
}

int core_sync_diff(sd_core *c, const int64_t *from, const int64_t *to,
                   const char *const *users, size_t n, const char *reason) {
  if (!sync_on(c) || n == 0) return 0;
  json_t *enter = json_array(), *exit_ = json_array();
  for (size_t i = 0; i < n && enter && exit_; i++) {
    if (from[i] == to[i]) continue;
    if (from[i] >= 0) json_array_append_new(exit_, member(users[i], from[i]));
    if (to[i] >= 0) json_array_append_new(enter, member(users[i], to[i]));
  }
  if (!enter || !exit_ ||
      json_array_size(enter) + json_array_size(exit_) == 0) {
    json_decref(enter);
    json_decref(exit_);
    return enter && exit_ ? 0 : SD_ENOMEM;
  }
  json_t *o = json_pack("{s:I,s:o,s:o}", "model_version",
                        (json_int_t)c->spaces[SD_SPACE_SEGMENTS].version,
                        "enter", enter, "exit", exit_);
  if (o && reason) json_object_set_new(o, "reason", json_string(reason));
  return sync_event(c, "segments.diff", o);
}
