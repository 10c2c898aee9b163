/*
 * store_ckpt.c -- WAL checkpoints off the writer thread (store.h).
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that crosses its
 * threshold, on the committing thread, and a checkpoint fsyncs the WAL and
 * the database: the writer then waits for the disk instead of committing
 * the next group. Here the writer's automatic checkpoint is off; its WAL
 * hook (called after every commit with the WAL's size) wakes a thread that
 * runs a PASSIVE checkpoint on its own connection every CKPT_PAGES, which
 * never blocks the writer or readers.
 *
 * SQLite rewinds the WAL (the next frames go to its start) only when a
 * write transaction starts with every frame copied back and no reader
 * using them; beside a busy writer a checkpoint from another connection is
 * always a little behind, so under sustained ingest the WAL would never be
 * rewound and would grow by every page written (and the WAL index that
 * every connection maps with it). So once the WAL holds REWIND_PAGES, the
 * writer itself, right after its commit, copies back what the thread has
 * not yet (a PASSIVE checkpoint that returns at once if the thread is busy
 * with one): then nothing is left and its next transaction rewinds the WAL.
 * journal_size_limit (64 MB) truncates the file. The WAL stays near
 * REWIND_PAGES pages (64 MB) however long ingest runs.
 *
 * The thread's connection reads the database once before its first
 * checkpoint: SQLite opens a connection's WAL at its first read, and a
 * checkpoint on a connection without one returns SQLITE_OK having done
 * nothing (*pnLog == -1).
 */
#include "segmentd/store.h"

#include "segmentd/err.h"
#include "segmentd/log.h"
#include "segmentd/metrics.h"

#include <pthread.h>
#include <stdlib.h>

#define CKPT_PAGES 1000 /* SQLite's default automatic threshold (4 MB) */
#define REWIND_PAGES (CKPT_PAGES * 16) /* the writer catches up: 64 MB */

struct sd_checkpointer {
  sqlite3 *db;             /* its own connection */
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int pages, stopping;     /* WAL pages at the last commit */
};

/* One PASSIVE checkpoint on db (it never waits): 1 when it ran against
 * the WAL, 0 when another checkpoint was running, -1 on an error (logged)
 * or when db had no WAL open (SQLITE_OK and *pnLog == -1: see the top). */
static int checkpoint(sqlite3 *db, const char *who) {
  int log = -1, done = -1;
  int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
  if (rc == SQLITE_BUSY) return 0;
  if (rc == SQLITE_OK && log >= 0) return 1;
  sd_log_warn("WAL checkpoint (%s) did not run: %s", who,
              rc != SQLITE_OK ? sqlite3_errmsg(db) : "no WAL open");
  return -1;
}

static int on_wal(void *ud, sqlite3 *db, const char *name, int pages) {
  sd_checkpointer *c = ud;
  (void)name;
  sd_metrics_wal_pages(pages);
  if (pages < CKPT_PAGES) return SQLITE_OK;
  if (pages >= REWIND_PAGES && checkpoint(db, "writer") == 1) /* see the top */
    sd_metrics_checkpoint(1);
  pthread_mutex_lock(&c->mu);
  c->pages = pages;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
  return SQLITE_OK;
}

static void *ckpt_main(void *arg) {
  sd_checkpointer *c = arg;
  pthread_mutex_lock(&c->mu);
  for (;;) {
    while (!c->stopping && c->pages < CKPT_PAGES) pthread_cond_wait(&c->cv, &c->mu);
    if (c->stopping) break;
    c->pages = 0;
    pthread_mutex_unlock(&c->mu);
    if (checkpoint(c->db, "thread") == 1) sd_metrics_checkpoint(0);
    pthread_mutex_lock(&c->mu);
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

int sd_checkpointer_start(sd_store *writer, const char *path,
                          sd_checkpointer **out) {
  sd_checkpointer *c = calloc(1, sizeof(*c));
  *out = NULL;
  if (!c) return SD_ENOMEM;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  /* one read opens the connection's WAL; the first checkpoint proves it */
  if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK ||
      sqlite3_busy_timeout(c->db, 5000) != SQLITE_OK ||
      sqlite3_exec(c->db, "SELECT count(*) FROM sqlite_schema", NULL, NULL,
                   NULL) != SQLITE_OK ||
      checkpoint(c->db, "thread") < 0 ||
      pthread_create(&c->thread, NULL, ckpt_main, c) != 0) {
    sd_log_error("WAL checkpointer: %s", c->db ? sqlite3_errmsg(c->db) : "out of memory");
    sqlite3_close(c->db);
    free(c);
    return SD_EDB;
  }
  sqlite3_wal_autocheckpoint(sd_store_db(writer), 0);
  sqlite3_wal_hook(sd_store_db(writer), on_wal, c);
  *out = c;
  return 0;
}

void sd_checkpointer_stop(sd_checkpointer *c, sd_store *writer) {
  if (!c) return;
  sqlite3_wal_hook(sd_store_db(writer), NULL, NULL);
  pthread_mutex_lock(&c->mu);
  c->stopping = 1;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
  pthread_join(c->thread, NULL);
  sqlite3_close(c->db);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
  free(c);
}
