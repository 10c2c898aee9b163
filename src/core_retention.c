/*
 * core_retention.c -- retention's writer side (core.h sd_core_op_retain):
 * one batch of old events or texts, chosen by the maintenance thread
 * (retention.c), deleted in one writer transaction, and what was derived
 * from them brought in line with what is left.
 *
 * Users' views are decayed sums of everything the user ever sent, so
 * rows deleted under them would keep weighing in the user's vector (a
 * 90-day-old event under a 30-day half-life still weighs an eighth of a
 * new one). So every user who lost rows in the batch is recomputed from
 * the rows that remain, replayed in time order through the same view
 * updates as ingest: counts, first and last seen, the four views, then
 * the segment. A user with nothing left is removed (and leaves their
 * segment, with a `segments.diff` of reason "retention"). A deleted text
 * leaves the intents space's counts, representatives and terms, and the
 * embedding queue.
 *
 * Not rewritten, as aggregates over many users rather than anyone's data
 * (the same as an erasure): the centroids' online moves (the next
 * re-cluster fits on what is left), the encoder's document frequencies
 * (re-counted from the stored texts at the next start), and the drift
 * windows in memory. The behaviour feature frequencies (IDF) are
 * decremented. The database goes first; what memory must follow is kept
 * in a `later` list and applied only once every statement succeeded, so
 * only a failed COMMIT could leave memory off until the next start (as in
 * core_admin.c).
 */
#include "core_int.h"

#include "segmentd/err.h"
#include "segmentd/log.h"
#include "segmentd/timeutil.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  char **ids;
  size_t n, cap;
} user_list;

static int users_add(user_list *l, const unsigned char *uid) {
  if (!uid) return 0; /* a text without a user */
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 64;
    char **ni = realloc(l->ids, nc * sizeof(char *));
    if (!ni) return SD_ENOMEM;
    l->ids = ni, l->cap = nc;
  }
  return (l->ids[l->n++] = strdup((const char *)uid)) ? 0 : SD_ENOMEM;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts and drops repeats. */
static void users_unique(user_list *l) {
  if (l->n < 2) return;
  qsort(l->ids, l->n, sizeof(char *), cmp_str);
  size_t k = 1;
  for (size_t i = 1; i < l->n; i++) {
    if (!strcmp(l->ids[i], l->ids[k - 1])) free(l->ids[i]);
    else l->ids[k++] = l->ids[i];
  }
  l->n = k;
}

static void users_free(user_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->ids[i]);
  free(l->ids);
}

/* What memory does once the batch's statements all succeeded. */
typedef struct {
  int kind;           /* 0 behaviour count, 1 text leaves, 2 user moves,
                         3 queue count (embedded: 1 failed, 0 pending) */
  int bucket;         /* 0: behaviour bucket */
  int from, to;       /* 1: cluster index (from); 2: segment indexes */
  int embedded;       /* 1: the text was a point of the intents space */
  float from_sim, sim;
  char *id, *text;    /* 1: text id and text; 2: user id */
  size_t len;
  float *vec;         /* 2: the user's new vector (to >= 0) */
} later_item;

typedef struct {
  later_item *a;
  size_t n, cap;
} later_list;

static later_item *later_add(later_list *l) {
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 64;
    later_item *na = realloc(l->a, nc * sizeof(*na));
    if (!na) return NULL;
    l->a = na, l->cap = nc;
  }
  memset(&l->a[l->n], 0, sizeof(later_item));
  return &l->a[l->n++];
}

static void later_apply(sd_core *c, const later_list *l) {
  sd_space *in = &c->spaces[SD_SPACE_INTENTS], *seg = &c->spaces[SD_SPACE_SEGMENTS];
  for (size_t i = 0; i < l->n; i++) {
    const later_item *t = &l->a[i];
    if (t->kind == 0 && c->beh_count[t->bucket] >= 1) {
      c->beh_count[t->bucket] -= 1.0;
      c->beh_total -= 1.0;
    } else if (t->kind == 1) {
      in->points -= t->embedded;
      if (t->from >= 0)
        sd_space_member_remove(in, t->from, t->from_sim, t->id, t->text, t->len);
    } else if (t->kind == 3) {
      atomic_fetch_sub(t->embedded ? &c->failed : &c->pending, 1);
    } else if (t->kind == 2) {
      seg->points -= t->to == -2; /* removed */
      if (t->from >= 0) sd_space_member_remove(seg, t->from, t->from_sim, t->id, NULL, 0);
      if (t->to >= 0) sd_space_member_add(seg, t->to, t->sim, t->id, NULL, 0, t->vec);
    }
  }
  core_beh_idf(c);
}

static void later_free(later_list *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->a[i].id), free(l->a[i].text), free(l->a[i].vec);
  free(l->a);
}

static char *dup_col(sqlite3_stmt *st, int col, size_t *len) {
  const char *s = (const char *)sqlite3_column_text(st, col);
  if (len) *len = (size_t)sqlite3_column_bytes(st, col);
  return s ? strdup(s) : NULL;
}

/* ---- deleting ---- */

static const char SQL_EVENT_DEL[] =
    "DELETE FROM events WHERE id=?1 AND ts<?2 RETURNING user_id,type";
static const char SQL_TEXT_DEL[] =
    "DELETE FROM texts WHERE id=?1 AND ts<?2 RETURNING user_id,text_id,text,"
    "cluster,similarity,embedding IS NOT NULL";
static const char SQL_QUEUE_DEL[] =
    "DELETE FROM embed_queue WHERE text_rowid=?1 RETURNING failed_at IS NOT NULL";

static int delete_events(sd_core *c, sd_retain_op *op, user_list *users,
                         later_list *later) {
  int rc = 0;
  for (size_t i = 0; i < op->n && rc == 0; i++) {
    sqlite3_stmt *st = sd_store_stmt(c->db, SQL_EVENT_DEL);
    if (!st) return SD_EDB;
    sqlite3_bind_int64(st, 1, op->ids[i]);
    sqlite3_bind_int64(st, 2, op->cutoff);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
      float sign;
      const char *type = (const char *)sqlite3_column_text(st, 1);
      later_item *t = later_add(later);
      if (t) t->bucket = sd_views_beh_bucket(type, strlen(type), &sign);
      op->events++;
      rc = t ? users_add(users, sqlite3_column_text(st, 0)) : SD_ENOMEM;
      s = sqlite3_step(st);
    }
    if (rc == 0 && s != SQLITE_DONE) rc = SD_EDB;
    sqlite3_reset(st);
  }
  return rc;
}

/* The deleted text leaves the embedding queue (its counts later). */
static int unqueue(sd_core *c, int64_t rowid, later_list *later) {
  sqlite3_stmt *st = sd_store_stmt(c->db, SQL_QUEUE_DEL);
  if (!st) return SD_EDB;
  sqlite3_bind_int64(st, 1, rowid);
  int s = sqlite3_step(st), rc = 0;
  if (s == SQLITE_ROW) {
    later_item *t = later_add(later);
    if (t) *t = (later_item){.kind = 3, .embedded = sqlite3_column_int(st, 0)};
    else rc = SD_ENOMEM;
    s = sqlite3_step(st);
  }
  sqlite3_reset(st);
  return rc < 0 ? rc : s == SQLITE_DONE ? 0 : SD_EDB;
}

/* What the intents space forgets of a deleted text (st: its RETURNING
 * row; a text never embedded is no point yet). */
static int forget_text(sd_core *c, sqlite3_stmt *st, later_list *later) {
  const sd_space *in = &c->spaces[SD_SPACE_INTENTS];
  later_item *t = later_add(later);
  if (!t) return SD_ENOMEM;
  t->kind = 1;
  t->embedded = sqlite3_column_int(st, 5) != 0;
  t->from = t->embedded && in->has_model && sqlite3_column_type(st, 3) != SQLITE_NULL
                ? sd_space_index_of(in, sqlite3_column_int64(st, 3)) : -1;
  if (t->from < 0) return 0;
  t->from_sim = (float)sqlite3_column_double(st, 4);
  t->id = dup_col(st, 1, NULL);
  t->text = dup_col(st, 2, &t->len);
  return t->id && t->text ? 0 : SD_ENOMEM;
}

static int delete_texts(sd_core *c, sd_retain_op *op, user_list *users,
                        later_list *later) {
  int rc = 0;
  for (size_t i = 0; i < op->n && rc == 0; i++) {
    sqlite3_stmt *st = sd_store_stmt(c->db, SQL_TEXT_DEL);
    if (!st) return SD_EDB;
    sqlite3_bind_int64(st, 1, op->ids[i]);
    sqlite3_bind_int64(st, 2, op->cutoff);
    int s = sqlite3_step(st), gone = s == SQLITE_ROW;
    if (gone) {
      op->texts_deleted++;
      rc = users_add(users, sqlite3_column_text(st, 0));
      if (rc == 0) rc = forget_text(c, st, later);
      s = sqlite3_step(st);
    }
    if (rc == 0 && s != SQLITE_DONE) rc = SD_EDB;
    sqlite3_reset(st);
    /* only now: the rowid may belong to a newer text if the old one went */
    if (rc == 0 && gone) rc = unqueue(c, op->ids[i], later);
  }
  return rc;
}

/* ---- recomputing users ---- */

static const char SQL_USER_EVENTS[] =
    "SELECT ts,type,properties FROM events WHERE user_id=?1 ORDER BY ts,id";
static const char SQL_USER_TEXTS[] =
    "SELECT ts,embedding FROM texts WHERE user_id=?1 ORDER BY ts,id";

static int replay_event(sd_core *c, sd_user_state *u, sqlite3_stmt *st) {
  const char *props = (const char *)sqlite3_column_text(st, 2);
  sd_event e = {.type = (const char *)sqlite3_column_text(st, 1),
                .ts = sqlite3_column_int64(st, 0),
                .props = props ? json_loads(props, 0, NULL) : NULL};
  int rc = core_event_view(c, u, &e);
  json_decref(e.props);
  return rc;
}

static void replay_text(sd_core *c, sd_user_state *u, sqlite3_stmt *st) {
  float *v = c->scratch;
  int has = core_blob_floats(st, 1, v, c->vc.dim) == 0;
  float len = has ? cblas_snrm2(c->vc.dim, v, 1) : 0;
  if (len > 0) cblas_sscal(c->vc.dim, 1.0f / len, v, 1);
  sd_views_add_text(&c->vc, u, len > 0 ? v : NULL, sqlite3_column_int64(st, 0));
}

/* The user's state from the rows left, in time order (as ingest would
 * have built it from them). */
static int replay(sd_core *c, const char *uid, sd_user_state *u) {
  sqlite3_stmt *ev = sd_store_stmt(c->db, SQL_USER_EVENTS);
  sqlite3_stmt *tx = sd_store_stmt(c->db, SQL_USER_TEXTS);
  if (!ev || !tx) return SD_EDB;
  sqlite3_bind_text(ev, 1, uid, -1, SQLITE_STATIC);
  sqlite3_bind_text(tx, 1, uid, -1, SQLITE_STATIC);
  int re = sqlite3_step(ev), rt = sqlite3_step(tx), rc = 0;
  while (rc == 0 && (re == SQLITE_ROW || rt == SQLITE_ROW)) {
    if (re == SQLITE_ROW &&
        (rt != SQLITE_ROW || sqlite3_column_int64(ev, 0) <= sqlite3_column_int64(tx, 0))) {
      rc = replay_event(c, u, ev);
      re = sqlite3_step(ev);
    } else {
      replay_text(c, u, tx);
      rt = sqlite3_step(tx);
    }
  }
  sqlite3_reset(ev);
  sqlite3_reset(tx);
  return rc < 0 ? rc : re == SQLITE_DONE && rt == SQLITE_DONE ? 0 : SD_EDB;
}

/* The user's stored segment: 1 (row found), 0 (none). */
static int user_segment(sd_core *c, const char *uid, int *idx, float *sim) {
  sqlite3_stmt *st = sd_store_stmt(c->db, "SELECT cluster,similarity FROM "
                                          "users WHERE user_id=?1");
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
  const sd_space *seg = &c->spaces[SD_SPACE_SEGMENTS];
  int s = sqlite3_step(st);
  *idx = -1;
  if (s == SQLITE_ROW && seg->has_model && sqlite3_column_type(st, 0) != SQLITE_NULL) {
    *idx = sd_space_index_of(seg, sqlite3_column_int64(st, 0));
    *sim = (float)sqlite3_column_double(st, 1);
  }
  sqlite3_reset(st);
  return s == SQLITE_ROW ? 1 : s == SQLITE_DONE ? 0 : SD_EDB;
}

/* The user moves from segment index from to to (-1: none, -2: the user
 * is removed): in the segments stream now, in memory later. */
static int move_user(sd_core *c, const char *uid, int from, float from_sim,
                     int to, float sim, const float *vec, later_list *later) {
  const sd_space *seg = &c->spaces[SD_SPACE_SEGMENTS];
  int64_t f = from >= 0 ? seg->ids[from] : -1, t = to >= 0 ? seg->ids[to] : -1;
  int rc = core_sync_diff(c, &f, &t, &uid, 1, "retention");
  later_item *it = rc == 0 ? later_add(later) : NULL;
  if (!it) return rc < 0 ? rc : SD_ENOMEM;
  *it = (later_item){.kind = 2, .from = from, .to = to, .from_sim = from_sim,
                     .sim = sim, .id = strdup(uid)};
  size_t w = (size_t)sd_views_width(&c->vc);
  if (to >= 0 && (it->vec = malloc(w * sizeof(float))))
    memcpy(it->vec, vec, w * sizeof(float));
  return it->id && (to < 0 || it->vec) ? 0 : SD_ENOMEM;
}

static int recompute_user(sd_core *c, const char *uid, sd_user_buf *ub,
                          float *vec, sd_retain_op *op, later_list *later) {
  int from = -1, to = -1;
  float from_sim = 0, sim = 0, conf = 0;
  int rc = user_segment(c, uid, &from, &from_sim);
  if (rc <= 0) return rc; /* no users row: nothing derived to fix */
  sd_user_buf_clear(ub, &c->vc);
  if ((rc = replay(c, uid, &ub->u)) < 0) return rc;
  if (ub->u.n_events + ub->u.n_texts == 0) {
    sqlite3_stmt *st = sd_store_stmt(c->db, "DELETE FROM users WHERE user_id=?1");
    if (!st) return SD_EDB;
    sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
    op->users_removed++;
    return move_user(c, uid, from, from_sim, -2, 0, NULL, later);
  }
  const sd_space *seg = &c->spaces[SD_SPACE_SEGMENTS];
  if (sd_views_vector(&c->vc, &ub->u, vec) && seg->has_model &&
      (rc = sd_space_assign(seg, vec, &to, &sim, &conf)) < 0)
    return rc;
  if ((rc = core_user_store(c, uid, &ub->u, to, sim, conf, sd_now_ms())) < 0)
    return rc;
  op->users_recomputed++;
  return move_user(c, uid, from, from_sim, to, sim, vec, later);
}

static int recompute_users(sd_core *c, user_list *users, sd_retain_op *op,
                           later_list *later) {
  users_unique(users);
  sd_user_buf ub = {0};
  float *vec = calloc((size_t)sd_views_width(&c->vc), sizeof(float));
  int rc = vec ? sd_user_buf_init(&ub, &c->vc) : SD_ENOMEM;
  for (size_t i = 0; i < users->n && rc == 0; i++)
    rc = recompute_user(c, users->ids[i], &ub, vec, op, later);
  sd_user_buf_free(&ub);
  free(vec);
  return rc;
}

static int record_run(sd_core *c, const sd_retain_op *op) {
  char target[48];
  snprintf(target, sizeof(target), "ts<%lld", (long long)op->cutoff);
  return core_audit(c, "retention", target,
                    json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "days",
                              (json_int_t)op->days, "cutoff_ms",
                              (json_int_t)op->cutoff, "events",
                              (json_int_t)op->events, "texts",
                              (json_int_t)op->texts_deleted, "users_recomputed",
                              (json_int_t)op->users_recomputed, "users_removed",
                              (json_int_t)op->users_removed, "ms",
                              (json_int_t)op->ms));
}

int sd_core_op_retain(sd_core *c, void *arg) {
  sd_retain_op *op = arg;
  if (op->audit) return record_run(c, op);
  user_list users = {0};
  later_list later = {0};
  int rc = op->texts ? delete_texts(c, op, &users, &later)
                     : delete_events(c, op, &users, &later);
  if (rc == 0) rc = recompute_users(c, &users, op, &later);
  c->lookups_stale |= users.n > 0;
  if (rc == 0) later_apply(c, &later);
  later_free(&later);
  users_free(&users);
  return rc;
}
