/*
 * harness_db.c -- direct SQLite reads of the integration tests (contract in
 * harness_db.h): per-key counts and PRAGMA integrity_check.
 */
#include "harness_db.h"

#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

static sqlite3 *db_open_ro(const char *path) {
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    fprintf(stderr, "harness: open %s: %s\n", path,
            db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return NULL;
  }
  sqlite3_busy_timeout(db, 5000);
  return db;
}

json_t *db_key_counts(const char *path, const char *sql) {
  sqlite3 *db = db_open_ro(path);
  sqlite3_stmt *st = NULL;
  if (!db)
    return NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
    fprintf(stderr, "harness: %s: %s\n", sql, sqlite3_errmsg(db));
    sqlite3_close(db);
    return NULL;
  }
  json_t *out = json_object();
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *key = (const char *)sqlite3_column_text(st, 0);
    if (key)
      json_object_set_new(out, key, json_integer(sqlite3_column_int64(st, 1)));
  }
  if (rc != SQLITE_DONE) {
    fprintf(stderr, "harness: %s: %s\n", sql, sqlite3_errmsg(db));
    json_decref(out);
    out = NULL;
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

int db_integrity_ok(const char *path, char *msg, size_t cap) {
  snprintf(msg, cap, "cannot open %s", path);
  sqlite3 *db = db_open_ro(path);
  sqlite3_stmt *st = NULL;
  int ok = 0;
  if (!db)
    return 0;
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) !=
      SQLITE_OK) {
    snprintf(msg, cap, "%s", sqlite3_errmsg(db));
  } else if (sqlite3_step(st) == SQLITE_ROW) {
    const char *v = (const char *)sqlite3_column_text(st, 0);
    snprintf(msg, cap, "%s", v ? v : "(null)");
    ok = v && strcmp(v, "ok") == 0;
  } else {
    snprintf(msg, cap, "%s", sqlite3_errmsg(db));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return ok;
}
