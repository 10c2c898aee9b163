/*
 * store_ckpt.c -- WAL checkpoints off the writer thread (store.h).
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that crosses its
 * threshold, on the committing thread, and a checkpoint fsyncs the WAL and
 * the database: the writer then waits for the disk instead of committing
 * the next group (measured: most of the writer's waiting under event
 * ingest). Here the writer's automatic checkpoint is off; its WAL hook
 * (called after every commit with the WAL's size) wakes a thread that runs
 * a PASSIVE checkpoint on its own connection, which never blocks the
 * writer or readers. Should readers keep the WAL from being reset and it
 * grows past RESTART_FACTOR times the threshold, a RESTART checkpoint
 * (which waits for readers, up to the busy timeout) brings it back.
 *
 * Under sustained ingest the WAL is never rewound: SQLite rewinds it only
 * when a write transaction starts with every frame checkpointed, and a
 * checkpoint beside a busy writer is always a little behind (measured:
 * 1.2 GB of WAL after 210,000 events on a 150 MB database). Letting it grow
 * is what makes sustained ingest fast: a checkpoint copies each page once
 * however many frames it has, so rare checkpoints copy far less (a writer
 * checkpoint every 32 MB or 256 MB of WAL halved event ingest, 13.5k ->
 * 6-7k rows/s, p99 0.4 -> 2 s; at 1 GB the one catch-up stalled the writer
 * 5 s). So the WAL is rewound when ingest pauses (the checkpoint thread
 * then catches up), journal_size_limit truncates the file when it is
 * rewound (disk use falls back after a burst instead of keeping its
 * high-water mark), and the bound is a last-resort valve against filling
 * the disk: past CATCHUP_PAGES (~4 GB) the writer itself finishes the
 * checkpoint after its commit (a stall of seconds) and its next
 * transaction rewinds the WAL.
 */
#include "segmentd/store.h"

#include "segmentd/err.h"
#include "segmentd/log.h"

#include <pthread.h>
#include <stdlib.h>

#define CKPT_PAGES 1000     /* SQLite's default automatic threshold */
#define RESTART_FACTOR 16
#define CATCHUP_PAGES (CKPT_PAGES * 1024) /* ~4 GB of WAL */

struct sd_checkpointer {
  sqlite3 *db;             /* its own connection */
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int pages, stopping;     /* WAL pages at the last commit */
};

static int on_wal(void *ud, sqlite3 *db, const char *name, int pages) {
  sd_checkpointer *c = ud;
  (void)name;
  if (pages < CKPT_PAGES) return SQLITE_OK;
  if (pages >= CATCHUP_PAGES) { /* on the writer: see the top */
    int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                       NULL, NULL);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
      sd_log_warn("WAL checkpoint (writer): %s", sqlite3_errmsg(db));
    return SQLITE_OK;
  }
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
    int mode = c->pages >= CKPT_PAGES * RESTART_FACTOR ? SQLITE_CHECKPOINT_RESTART
                                                       : SQLITE_CHECKPOINT_PASSIVE;
    c->pages = 0;
    pthread_mutex_unlock(&c->mu);
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, mode, &log, &done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
      sd_log_warn("WAL checkpoint: %s", sqlite3_errmsg(c->db));
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
  if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK ||
      pthread_create(&c->thread, NULL, ckpt_main, c) != 0) {
    sqlite3_close(c->db);
    free(c);
    return SD_EDB;
  }
  sqlite3_busy_timeout(c->db, 5000);
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
