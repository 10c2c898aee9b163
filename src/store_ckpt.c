/*
 * store_ckpt.c -- WAL checkpoints off the writer thread (store.h).
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that crosses its
 * threshold, on the committing thread, and a checkpoint fsyncs the WAL and
 * the database: the writer then waits for the disk instead of committing
 * the next group. Here the writer's automatic checkpoint is off; its WAL
 * hook (called after every commit with the WAL's size) wakes a thread that
 * runs a PASSIVE checkpoint on its own connection each time the WAL has
 * grown by CKPT_PAGES, which never blocks the writer or readers. (Not after
 * every commit past the threshold, as SQLite's own: each checkpoint fsyncs
 * twice, and a page written by many commits is copied once per checkpoint.)
 *
 * SQLite rewinds the WAL (the next frames go to its start) only when a
 * write transaction starts with every frame copied back and no reader
 * using them; beside a busy writer a checkpoint from another connection is
 * always a little behind, so under sustained ingest the WAL would never be
 * rewound and would grow by every page written (and the WAL index that
 * every connection maps with it). So once the WAL holds rewind_pages
 * (--sqlite-wal-mb, 256 MB), the writer itself, right after its commit,
 * copies back what the thread has not yet (PASSIVE, after the thread's
 * checkpoint if one runs: SQLite refuses a second at once): then nothing
 * is left and, unless a reader still reads an older snapshot from the WAL,
 * its next transaction rewinds it (else the next commit tries again).
 * journal_size_limit (64 MB) truncates the file. The WAL stays under about
 * --sqlite-wal-mb however long ingest runs.
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

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>

#define CKPT_PAGES 1000 /* SQLite's default automatic threshold (4 MB) */

struct sd_checkpointer {
  sqlite3 *db;             /* its own connection */
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int pages, stopping;     /* WAL pages at the last commit */
  int ran_at;              /* WAL pages when the thread's last checkpoint began */
  int rewind_pages;        /* the writer catches up past this many */
  pthread_mutex_t run_mu;  /* held around every checkpoint (thread, writer) */
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
  if (pages >= c->rewind_pages) { /* see the top */
    /* SQLite answers BUSY to a checkpoint beside another one: wait for the
     * thread's to end instead */
    pthread_mutex_lock(&c->run_mu);
    if (checkpoint(db, "writer") == 1) sd_metrics_checkpoint(1);
    pthread_mutex_unlock(&c->run_mu);
  }
  pthread_mutex_lock(&c->mu);
  if (pages < c->ran_at) c->ran_at = 0; /* rewound */
  c->pages = pages;
  if (pages - c->ran_at >= CKPT_PAGES) pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
  return SQLITE_OK;
}

static void *ckpt_main(void *arg) {
  sd_checkpointer *c = arg;
  pthread_mutex_lock(&c->mu);
  for (;;) {
    while (!c->stopping && c->pages - c->ran_at < CKPT_PAGES)
      pthread_cond_wait(&c->cv, &c->mu);
    if (c->stopping) break;
    c->ran_at = c->pages;
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_lock(&c->run_mu);
    if (checkpoint(c->db, "thread") == 1) sd_metrics_checkpoint(0);
    pthread_mutex_unlock(&c->run_mu);
    pthread_mutex_lock(&c->mu);
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

/* bytes of the writer's database in pages, at least CKPT_PAGES */
static int pages_of(sd_store *writer, int64_t bytes) {
  sqlite3_stmt *st = NULL;
  int64_t page = 0;
  if (sqlite3_prepare_v2(sd_store_db(writer), "PRAGMA page_size", -1, &st,
                         NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    page = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  int64_t n = bytes / (page > 0 ? page : 4096);
  return (int)(n < CKPT_PAGES ? CKPT_PAGES : n > INT_MAX ? INT_MAX : n);
}

int sd_checkpointer_start(sd_store *writer, const char *path,
                          int64_t rewind_bytes, sd_checkpointer **out) {
  sd_checkpointer *c = calloc(1, sizeof(*c));
  *out = NULL;
  if (!c) return SD_ENOMEM;
  c->rewind_pages = pages_of(writer, rewind_bytes);
  pthread_mutex_init(&c->mu, NULL);
  pthread_mutex_init(&c->run_mu, NULL);
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
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->run_mu);
    pthread_cond_destroy(&c->cv);
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
  pthread_mutex_destroy(&c->run_mu);
  pthread_cond_destroy(&c->cv);
  free(c);
}
