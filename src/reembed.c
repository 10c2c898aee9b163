/*
 * reembed.c -- preparing a database for another embedder (reembed.h), and
 * the per-database process lock.
 */
#include "segmentd/reembed.h"

#include "segmentd/err.h"
#include "segmentd/store.h"
#include "segmentd/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

void sd_embedder_key(const sd_config *cfg, char *out, size_t cap) {
  if (sd_config_remote(cfg))
    snprintf(out, cap, "openai:%s", cfg->embed_model);
  else
    snprintf(out, cap, "builtin");
}

/* Everything derived from the old vectors goes; raw input stays. */
static const char *const REEMBED_SQL[] = {
    "UPDATE texts SET embedding=NULL,embedder_id=NULL,cluster=NULL,"
    "similarity=NULL,confidence=NULL",
    "DELETE FROM embed_queue",
    "INSERT INTO embed_queue(text_rowid,received_at) "
    "SELECT id,CAST(strftime('%s','now') AS INTEGER)*1000 FROM texts ORDER BY id",
    "UPDATE users SET text_sum=NULL,text_t=NULL,cluster=NULL,similarity=NULL,"
    "confidence=NULL",
    "INSERT INTO meta(key,value) SELECT 'version.'||space,max(version) "
    "FROM models GROUP BY space "
    "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
    "DELETE FROM models",
    "UPDATE clusters SET retired_at=CAST(strftime('%s','now') AS INTEGER)*1000 "
    "WHERE retired_at IS NULL",
    "DELETE FROM projection_parts",
    "DELETE FROM projections",
    "DELETE FROM meta WHERE key='reassign'",
};

static int reembed_meta(sd_store *s, const sd_config *cfg, int64_t queued) {
  char key[600], v[64];
  sd_embedder_key(cfg, key, sizeof(key));
  int rc = sd_store_meta_set(s, "embedder", key);
  snprintf(v, sizeof(v), "%ld", cfg->dim);
  if (rc == 0) rc = sd_store_meta_set(s, "dim", v);
  snprintf(v, sizeof(v), "%lld", (long long)sd_now_ms());
  if (rc == 0) rc = sd_store_meta_set(s, "reembed", v);
  sqlite3_stmt *st = rc == 0 ? sd_store_stmt(
      s, "INSERT INTO audit(at,action,target,detail) VALUES(?1,'reembed',?2,?3)")
                             : NULL;
  if (!st) return SD_EDB;
  char detail[64];
  snprintf(detail, sizeof(detail), "{\"texts\":%lld}", (long long)queued);
  sqlite3_bind_int64(st, 1, sd_now_ms());
  sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 3, detail, -1, SQLITE_TRANSIENT);
  return sqlite3_step(st) == SQLITE_DONE ? 0 : SD_EDB;
}

static int reembed_txn(sd_store *s, const sd_config *cfg, int64_t *queued) {
  int rc = 0;
  for (size_t i = 0; i < sizeof(REEMBED_SQL) / sizeof(*REEMBED_SQL) && rc == 0;
       i++) {
    rc = sd_store_exec(s, REEMBED_SQL[i]);
    if (rc == 0 && i == 2) *queued = sqlite3_changes(sd_store_db(s));
  }
  return rc == 0 ? reembed_meta(s, cfg, *queued) : rc;
}

int sd_reembed_prepare(const sd_config *cfg, int64_t *queued, char *msg,
                       size_t msglen) {
  sd_store *s = NULL;
  *queued = 0;
  int rc = sd_store_open(cfg->db, &s, msg, msglen);
  if (rc < 0) return rc;
  rc = sd_store_exec(s, "BEGIN IMMEDIATE");
  if (rc == 0) rc = reembed_txn(s, cfg, queued);
  if (rc == 0) rc = sd_store_exec(s, "COMMIT");
  if (rc < 0) {
    snprintf(msg, msglen, "preparing the re-embed failed: %s",
             sqlite3_errmsg(sd_store_db(s)));
    sd_store_exec(s, "ROLLBACK");
  }
  sd_store_close(s);
  return rc;
}

int sd_db_lock(const char *db, int *fd, char *msg, size_t msglen) {
  char path[4096];
  snprintf(path, sizeof(path), "%s.lock", db);
  *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (*fd < 0) {
    snprintf(msg, msglen, "cannot open %s: %s", path, strerror(errno));
    return SD_EINTERNAL;
  }
  if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
    snprintf(msg, msglen, "%s is in use by another segmentd process "
             "(lock %s): stop it first", db, path);
    close(*fd);
    *fd = -1;
    return SD_EBUSY;
  }
  return 0;
}

void sd_db_unlock(int fd) {
  if (fd >= 0) close(fd);
}
