/*
 * experiments_read.c -- the read side of experiments (see
 * experiments.h): definitions, the fast path of an assignment lookup, and
 * the counts behind outcomes and results, each one statement on the
 * calling thread's read-only connection (WAL: never blocked by the
 * writer; it sees every commit finished before the statement began).
 *
 * Conversion. A user converted when the events table holds an event of
 * the outcome type with ts in [anchor, anchor + window): the anchor is
 * the assignment time for experiments and the user's first_seen (the
 * earliest ts of their events and texts) for outcomes. Each user is
 * looked up through the events (user_id) index. Users whose window has
 * not closed yet are counted (as converted or not, so far) and reported
 * as `open`.
 */
#include "experiments_int.h"

#include "segmentd/err.h"
#include "segmentd/store.h"

#include <stdlib.h>
#include <string.h>

static sqlite3_stmt *reader_stmt(const char *sql) {
  sd_store *rd = sd_store_reader();
  return rd ? sd_store_stmt(rd, sql) : NULL;
}

int sd_exp_read_def(const char *name, sd_exp_def *def, int64_t *users) {
  sqlite3_stmt *st = reader_stmt(
      "SELECT " EXP_DEF_COLS ",(SELECT count(*) FROM experiment_assignments a "
      "WHERE a.experiment_id=e.id) FROM experiments e WHERE e.name=?1");
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st), out = rc == SQLITE_DONE ? SD_ENOTFOUND : SD_EDB;
  if (rc == SQLITE_ROW) out = exp_def_row(st, 0, def);
  if (rc == SQLITE_ROW && users) *users = sqlite3_column_int64(st, EXP_DEF_NCOLS);
  sqlite3_reset(st);
  return out;
}

int sd_exp_read_list(sd_exp_def **defs, int64_t **users, size_t *n) {
  sqlite3_stmt *st = reader_stmt(
      "SELECT " EXP_DEF_COLS ",(SELECT count(*) FROM experiment_assignments a "
      "WHERE a.experiment_id=e.id) FROM experiments e ORDER BY e.id LIMIT ?1");
  *defs = NULL, *users = NULL, *n = 0;
  if (!st) return SD_EDB;
  sqlite3_bind_int(st, 1, SD_EXP_LIST_MAX);
  size_t cap = 0;
  int rc, err = 0;
  while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 8;
      sd_exp_def *d = realloc(*defs, sizeof(**defs) * cap);
      if (d) *defs = d;
      int64_t *u = d ? realloc(*users, sizeof(**users) * cap) : NULL;
      if (u) *users = u;
      if (!d || !u) { err = SD_ENOMEM; break; }
    }
    err = exp_def_row(st, 0, &(*defs)[*n]);
    (*users)[(*n)++] = sqlite3_column_int64(st, EXP_DEF_NCOLS);
  }
  sqlite3_reset(st);
  if (!err && rc != SQLITE_DONE) err = SD_EDB;
  if (err) {
    free(*defs), free(*users);
    *defs = NULL, *users = NULL, *n = 0;
  }
  return err;
}

int sd_exp_read_assignment(const char *name, const char *user_id,
                           sd_exp_def *def, int *assigned,
                           sd_exp_assignment *a) {
  sqlite3_stmt *st = reader_stmt(
      "SELECT " EXP_DEF_COLS ",a.variant,a.segment,a.assigned_at FROM "
      "experiments e LEFT JOIN experiment_assignments a ON "
      "a.experiment_id=e.id AND a.user_id=?2 WHERE e.name=?1");
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, user_id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st), out = rc == SQLITE_DONE ? SD_ENOTFOUND : SD_EDB;
  if (rc == SQLITE_ROW && (out = exp_def_row(st, 0, def)) == 0) {
    const int c = EXP_DEF_NCOLS;
    *assigned = sqlite3_column_type(st, c) != SQLITE_NULL;
    a->variant = sqlite3_column_int(st, c);
    a->has_segment = sqlite3_column_type(st, c + 1) != SQLITE_NULL;
    a->segment = sqlite3_column_int64(st, c + 1);
    a->assigned_at = sqlite3_column_int64(st, c + 2);
  }
  sqlite3_reset(st);
  return out;
}

/* Collects the rows of a counting statement: (segment, variant, users,
 * converted, open); a statement without variants gives -1 as variant. */
static int read_cells(sqlite3_stmt *st, sd_exp_cell **cells, size_t *n) {
  size_t cap = 0;
  int rc, err = 0;
  *cells = NULL, *n = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      sd_exp_cell *c = realloc(*cells, sizeof(**cells) * (cap = cap ? cap * 2 : 16));
      if (!c) { err = SD_ENOMEM; break; }
      *cells = c;
    }
    sd_exp_cell *c = &(*cells)[(*n)++];
    c->has_segment = sqlite3_column_type(st, 0) != SQLITE_NULL;
    c->segment = sqlite3_column_int64(st, 0);
    c->variant = sqlite3_column_int(st, 1);
    c->users = sqlite3_column_int64(st, 2);
    c->converted = sqlite3_column_int64(st, 3);
    c->open = sqlite3_column_int64(st, 4);
  }
  sqlite3_reset(st);
  if (!err && rc != SQLITE_DONE) err = SD_EDB;
  if (err) free(*cells), *cells = NULL, *n = 0;
  return err;
}

int sd_exp_read_cells(const sd_exp_def *def, int64_t now_ms,
                      sd_exp_cell **cells, size_t *n) {
  sqlite3_stmt *st = reader_stmt(
      "SELECT a.segment,a.variant,count(*),sum(EXISTS(SELECT 1 FROM events ev "
      "WHERE ev.user_id=a.user_id AND ev.type=?2 AND ev.ts>=a.assigned_at AND "
      "ev.ts<a.assigned_at+?3)),sum(a.assigned_at+?3>?4) FROM "
      "experiment_assignments a WHERE a.experiment_id=?1 "
      "GROUP BY a.segment,a.variant ORDER BY a.segment,a.variant");
  if (!st) return SD_EDB;
  sqlite3_bind_int64(st, 1, def->id);
  sqlite3_bind_text(st, 2, def->event_type, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, (int64_t)def->window_days * 86400000);
  sqlite3_bind_int64(st, 4, now_ms);
  return read_cells(st, cells, n);
}

int sd_exp_read_outcomes(const char *event_type, int64_t window_ms,
                         int64_t now_ms, sd_exp_cell **cells, size_t *n) {
  sqlite3_stmt *st = reader_stmt(
      "SELECT u.cluster,-1,count(*),sum(EXISTS(SELECT 1 FROM events ev "
      "WHERE ev.user_id=u.user_id AND ev.type=?1 AND ev.ts>=u.first_seen AND "
      "ev.ts<u.first_seen+?2)),sum(u.first_seen+?2>?3) FROM users u "
      "GROUP BY u.cluster ORDER BY u.cluster");
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, event_type, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, window_ms);
  sqlite3_bind_int64(st, 3, now_ms);
  return read_cells(st, cells, n);
}

int sd_exp_read_event_type_known(const char *type) {
  sqlite3_stmt *st = reader_stmt("SELECT 1 FROM event_types WHERE type=?1");
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : SD_EDB;
}
