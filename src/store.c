/*
 * store.c -- SQLite connections, migrations and statement caches
 * (see store.h).
 */
#include "segmentd/store.h"
#include "segmentd/err.h"
#include "segmentd/log.h"
#include "segmentd/metrics.h"
#include "segmentd/timeutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORE_STMTS 64

struct sd_store {
  sqlite3 *db;
  char *path;
  int readonly;
  struct {
    const char *key;
    sqlite3_stmt *st;
  } cache[STORE_STMTS];
  sd_store *next_reader; /* registry of reader connections */
};

static int store_migrate(sd_store *s, char *msg, size_t msglen) {
  sqlite3_stmt *st = NULL;
  int have = 0;
  if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) ==
          SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    have = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  if (have > sd_migrations_count) {
    snprintf(msg, msglen, "database schema version %d is newer than this "
             "build knows (%d)", have, sd_migrations_count);
    return SD_EDB;
  }
  for (int i = have; i < sd_migrations_count; i++) {
    char *err = NULL, pragma[64];
    snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", i + 1);
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", 0, 0, &err) != SQLITE_OK ||
        sqlite3_exec(s->db, sd_migrations[i].sql, 0, 0, &err) != SQLITE_OK ||
        sqlite3_exec(s->db, pragma, 0, 0, &err) != SQLITE_OK ||
        sqlite3_exec(s->db, "COMMIT", 0, 0, &err) != SQLITE_OK) {
      snprintf(msg, msglen, "migration %s failed: %s", sd_migrations[i].name,
               err ? err : sqlite3_errmsg(s->db));
      sqlite3_free(err);
      sqlite3_exec(s->db, "ROLLBACK", 0, 0, NULL);
      return SD_EDB;
    }
    sd_log_info("applied migration %s", sd_migrations[i].name);
  }
  return 0;
}

static _Atomic int64_t mmap_bytes = 1073741824;

void sd_store_set_mmap(int64_t bytes) { mmap_bytes = bytes; }

/* How a connection reads the file: the readers of request threads through
 * the memory map (the lookup's hot path); the writer and the background
 * threads' readers through their own bounded page caches, so that the
 * pages their scans and inserts touch do not stay mapped in the RSS. */
typedef enum { READ_MAPPED, READ_CACHED, READ_SCAN } read_mode;

static void store_tune(sd_store *s, read_mode mode) {
  char pragmas[96];
  long long map = mode == READ_MAPPED ? (long long)mmap_bytes : 0;
  /* a scan reads each page once: a small cache serves its b-tree's
   * interior pages; request readers and the writer keep more */
  int cache_kib = mode == READ_SCAN ? 2048 : mode == READ_MAPPED ? 16384 : 65536;
  snprintf(pragmas, sizeof(pragmas), "PRAGMA mmap_size=%lld; PRAGMA cache_size=-%d",
           map, cache_kib);
  sqlite3_exec(s->db, pragmas, 0, 0, NULL);
}

static int store_connect(const char *path, int readonly, read_mode mode,
                         sd_store **out, char *msg, size_t msglen) {
  *out = NULL;
  sd_store *s = calloc(1, sizeof(*s));
  if (!s || !(s->path = strdup(path))) {
    free(s);
    snprintf(msg, msglen, "out of memory");
    return SD_ENOMEM;
  }
  s->readonly = readonly;
  int flags = readonly ? SQLITE_OPEN_READONLY
                       : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  flags |= SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
    snprintf(msg, msglen, "cannot open %s: %s", path,
             s->db ? sqlite3_errmsg(s->db) : "out of memory");
    sd_store_close(s);
    return SD_EDB;
  }
  sqlite3_busy_timeout(s->db, 5000);
  sqlite3_extended_result_codes(s->db, 1);
  store_tune(s, mode);
  *out = s;
  return 0;
}

int sd_store_open(const char *path, sd_store **out, char *msg, size_t msglen) {
  sd_store *s;
  int rc = store_connect(path, 0, READ_CACHED, &s, msg, msglen);
  if (rc < 0) return rc;
  char *err = NULL;
  if (sqlite3_exec(s->db,
                   "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                   "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; "
                   "PRAGMA journal_size_limit=67108864",
                   0, 0, &err) != SQLITE_OK) {
    snprintf(msg, msglen, "cannot configure %s: %s", path,
             err ? err : sqlite3_errmsg(s->db));
    sqlite3_free(err);
    sd_store_close(s);
    return SD_EDB;
  }
  if ((rc = store_migrate(s, msg, msglen)) < 0) {
    sd_store_close(s);
    return rc;
  }
  *out = s;
  return 0;
}

void sd_store_close(sd_store *s) {
  if (!s) return;
  for (int i = 0; i < STORE_STMTS; i++) sqlite3_finalize(s->cache[i].st);
  if (s->db && sqlite3_close(s->db) != SQLITE_OK)
    sd_log_error("sqlite close: %s", sqlite3_errmsg(s->db));
  free(s->path);
  free(s);
}

sqlite3 *sd_store_db(sd_store *s) { return s->db; }
const char *sd_store_path(const sd_store *s) { return s->path; }

sqlite3_stmt *sd_store_stmt(sd_store *s, const char *sql) {
  int i;
  for (i = 0; i < STORE_STMTS && s->cache[i].key; i++) {
    if (s->cache[i].key == sql) {
      sqlite3_reset(s->cache[i].st);
      sqlite3_clear_bindings(s->cache[i].st);
      return s->cache[i].st;
    }
  }
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
    sd_log_error("prepare failed: %s: %s", sqlite3_errmsg(s->db), sql);
    return NULL;
  }
  if (i == STORE_STMTS) { /* cache full: a programming error, stay correct */
    sd_log_error("statement cache full; raise STORE_STMTS");
    sqlite3_finalize(st);
    return NULL;
  }
  s->cache[i].key = sql;
  s->cache[i].st = st;
  return st;
}

int sd_store_exec(sd_store *s, const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(s->db, sql, 0, 0, &err) != SQLITE_OK) {
    sd_log_error("sqlite: %s: %s", err ? err : sqlite3_errmsg(s->db), sql);
    sqlite3_free(err);
    return SD_EDB;
  }
  return 0;
}

int sd_store_commit(sd_store *s) {
  int64_t t0 = sd_mono_ns();
  int rc = sd_store_exec(s, "COMMIT");
  if (rc == 0) sd_metrics_commit((double)(sd_mono_ns() - t0) / 1e9);
  return rc;
}

/* ---- per-thread readers ---- */

static pthread_mutex_t readers_mu = PTHREAD_MUTEX_INITIALIZER;
static sd_store *readers_head;
static char *readers_path;
static _Thread_local sd_store *reader_mine;
static _Thread_local int reader_scans;

void sd_store_reader_for_scans(void) { reader_scans = 1; }

int sd_store_readers_init(const char *path) {
  pthread_mutex_lock(&readers_mu);
  free(readers_path);
  readers_path = strdup(path);
  pthread_mutex_unlock(&readers_mu);
  return readers_path ? 0 : SD_ENOMEM;
}

sd_store *sd_store_reader(void) {
  if (reader_mine) return reader_mine;
  char msg[256];
  sd_store *s = NULL;
  pthread_mutex_lock(&readers_mu);
  if (readers_path && store_connect(readers_path, 1, reader_scans ? READ_SCAN : READ_MAPPED,
                                    &s, msg, sizeof(msg)) == 0) {
    s->next_reader = readers_head;
    readers_head = s;
  } else {
    sd_log_error("reader connection: %s", readers_path ? msg : "not initialised");
  }
  pthread_mutex_unlock(&readers_mu);
  reader_mine = s;
  return s;
}

void sd_store_close_readers(void) {
  pthread_mutex_lock(&readers_mu);
  while (readers_head) {
    sd_store *n = readers_head->next_reader;
    sd_store_close(readers_head);
    readers_head = n;
  }
  free(readers_path);
  readers_path = NULL;
  pthread_mutex_unlock(&readers_mu);
  reader_mine = NULL; /* other threads' pointers die with their threads */
}

int sd_store_meta_get(sd_store *s, const char *key, char *out, size_t cap) {
  sqlite3_stmt *st = sd_store_stmt(s, "SELECT value FROM meta WHERE key=?1");
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    return 0;
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? SD_ENOTFOUND : SD_EDB;
}

int sd_store_meta_set(sd_store *s, const char *key, const char *value) {
  sqlite3_stmt *st = sd_store_stmt(
      s, "INSERT INTO meta(key,value) VALUES(?1,?2) "
         "ON CONFLICT(key) DO UPDATE SET value=excluded.value");
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : SD_EDB;
}

int sd_store_embedder_id(sd_store *s, const char *kind, const char *model,
                         int dim, const char *version, int64_t now_ms,
                         int64_t *id) {
  sqlite3_stmt *st = sd_store_stmt(
      s, "INSERT INTO embedders(kind,model,dim,version,created_at) "
         "VALUES(?1,?2,?3,?4,?5) ON CONFLICT DO NOTHING");
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, model, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 3, dim);
  sqlite3_bind_text(st, 4, version, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, now_ms);
  if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
  st = sd_store_stmt(s, "SELECT id FROM embedders WHERE kind=?1 AND model=?2 "
                        "AND dim=?3 AND version=?4");
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, model, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 3, dim);
  sqlite3_bind_text(st, 4, version, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_ROW) return SD_EDB;
  *id = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return 0;
}
