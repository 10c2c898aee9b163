/*
 * ceiling_sqlite.c -- the storage ceiling of the benchmark suite (issue 7):
 * the naive loop inserting the event rows segmentd stores, into the table
 * segmentd's migrations/0001_init.sql creates (INTEGER PRIMARY KEY rowid,
 * event_id TEXT UNIQUE, user_id, type, ts, properties JSON text, and the
 * events_user index), WAL, synchronous=NORMAL, one prepared INSERT,
 * `per_tx` rows per transaction (default 1,000). The rows are the ones
 * loadgen posts to segmentd (bench_events.h: random UUID-shaped event ids,
 * so the UNIQUE index grows at random places), generated before the clock
 * starts. Prints one JSON line: rows, seconds, rows_per_s.
 *
 * usage: ceiling_sqlite DBPATH [rows=500000] [users=200000] [per_tx=1000]
 *                       [seed=1]
 * DBPATH (and its -wal/-shm) is deleted first.
 */
#include "bench_events.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int exec(sqlite3 *db, const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
    fprintf(stderr, "ceiling_sqlite: %s: %s\n", sql, err ? err : "?");
    sqlite3_free(err);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: ceiling_sqlite DBPATH [rows] [users] [per_tx] "
                    "[seed]\n");
    return 2;
  }
  const char *path = argv[1];
  long rows = argc > 2 ? atol(argv[2]) : 500000;
  long users = argc > 3 ? atol(argv[3]) : 200000;
  long per_tx = argc > 4 ? atol(argv[4]) : 1000;
  uint64_t seed = argc > 5 ? strtoull(argv[5], NULL, 10) : 1;
  if (rows <= 0 || users <= 0 || per_tx <= 0) return 2;
  char p2[4096];
  unlink(path);
  snprintf(p2, sizeof p2, "%s-wal", path), unlink(p2);
  snprintf(p2, sizeof p2, "%s-shm", path), unlink(p2);

  bench_event *ev = malloc((size_t)rows * sizeof(*ev));
  if (!ev) return 1;
  struct timespec wall;
  clock_gettime(CLOCK_REALTIME, &wall);
  int64_t now_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
  for (long r = 0; r < rows; r++)
    bench_event_make(seed, (uint64_t)r, (uint64_t)users, now_ms, &ev[r]);

  sqlite3 *db = NULL;
  if (sqlite3_open(path, &db) != SQLITE_OK) {
    fprintf(stderr, "ceiling_sqlite: cannot open %s\n", path);
    return 1;
  }
  if (exec(db, "PRAGMA journal_mode=WAL") ||
      exec(db, "PRAGMA synchronous=NORMAL") ||
      exec(db, "CREATE TABLE events (id INTEGER PRIMARY KEY, event_id TEXT "
               "NOT NULL UNIQUE, user_id TEXT NOT NULL, type TEXT NOT NULL, "
               "ts INTEGER NOT NULL, properties TEXT)") ||
      exec(db, "CREATE INDEX events_user ON events (user_id)"))
    return 1;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db,
                         "INSERT INTO events (event_id,user_id,type,ts,"
                         "properties) VALUES (?1,?2,?3,?4,?5)",
                         -1, &st, NULL) != SQLITE_OK)
    return 1;
  double t0 = now_s();
  for (long r = 0; r < rows; r++) {
    if (r % per_tx == 0 && exec(db, "BEGIN")) return 1;
    const bench_event *e = &ev[r];
    sqlite3_bind_text(st, 1, e->event_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, e->type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, e->ts);
    sqlite3_bind_text(st, 5, e->props, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
      fprintf(stderr, "ceiling_sqlite: insert: %s\n", sqlite3_errmsg(db));
      return 1;
    }
    sqlite3_reset(st);
    if ((r + 1) % per_tx == 0 || r + 1 == rows)
      if (exec(db, "COMMIT")) return 1;
  }
  double secs = now_s() - t0;
  sqlite3_finalize(st);
  sqlite3_close(db);
  free(ev);
  printf("{\"rows\": %ld, \"per_tx\": %ld, \"seconds\": %.3f, "
         "\"rows_per_s\": %.0f}\n",
         rows, per_tx, secs, (double)rows / secs);
  return 0;
}
