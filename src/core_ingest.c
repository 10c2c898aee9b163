/*
 * core_ingest.c -- group commit: every job the writer picked up is stored
 * in one SQLite transaction; only after COMMIT are the in-memory models
 * moved, the snapshot published and the jobs answered.
 *
 * Per group: events are inserted (duplicates skipped by their unique id),
 * texts are embedded and assigned to the intents model, every touched user
 * is loaded once, updated in O(view width) per item, re-assigned to the
 * segments model and written back once.
 *
 * With a remote embedder, a text without a client vector is stored with no
 * embedding and queued (embed_queue); it counts for its user at once, and
 * joins the text view and the intents space when its SD_BATCH_EMBED batch
 * comes back. Taking the text's queue row is the claim that makes that
 * happen exactly once.
 */
#include "core_int.h"

#include "segmentd/err.h"
#include "segmentd/lookup_cache.h"
#include "segmentd/log.h"
#include "segmentd/timeutil.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *user_id; /* points into a job's batch */
  int is_new;
  sd_user_buf ub;      /* the user's view accumulators (ub.u) */
  int old_idx;         /* cluster index before this group, or -1 */
  float old_sim;
  int idx;             /* cluster index after, or -1 */
  float sim, conf;
  float *vec;          /* the composed vector */
} user_slot;

typedef struct {
  user_slot *slots;
  size_t n, cap;
  uint32_t *table; /* slot + 1, 0 = empty */
  size_t tcap;
} user_map;

typedef struct {
  const sd_text *t;
  float *vec; /* L2-normalised embedding */
  int idx;    /* intents cluster index, or -1 */
  float sim;
} text_rec;

typedef struct {
  user_map users;
  text_rec *texts;
  size_t n_texts;
  float *vecs; /* dim floats per text of the group */
  int64_t now;
  int64_t queued, embedded; /* texts put in / taken off the embed queue */
} group;

static const char SQL_EVENT_INSERT[] =
    "INSERT INTO events(event_id,user_id,type,ts,properties) "
    "VALUES(?1,?2,?3,?4,?5) ON CONFLICT(event_id) DO NOTHING";
static const char SQL_TEXT_EXISTS[] = "SELECT 1 FROM texts WHERE text_id=?1";
static const char SQL_TEXT_INSERT[] =
    "INSERT INTO texts(text_id,user_id,text,ts,embedding,embedder_id,"
    "cluster,similarity,confidence) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)";
static const char SQL_USER_GET[] =
    "SELECT first_seen,last_seen,n_events,n_texts,cluster,similarity,"
    SD_VIEWS_COLS " FROM users WHERE user_id=?1";
static const char SQL_USER_PUT[] =
    "INSERT INTO users(user_id,first_seen,last_seen,n_events,n_texts,"
    "cluster,similarity,confidence,updated_at," SD_VIEWS_COLS ")"
    " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18)"
    " ON CONFLICT(user_id) DO UPDATE SET first_seen=excluded.first_seen,"
    "last_seen=excluded.last_seen,n_events=excluded.n_events,"
    "n_texts=excluded.n_texts,cluster=excluded.cluster,"
    "similarity=excluded.similarity,confidence=excluded.confidence,"
    "updated_at=excluded.updated_at,text_sum=excluded.text_sum,"
    "text_t=excluded.text_t,beh_sum=excluded.beh_sum,beh_t=excluded.beh_t,"
    "time_sum=excluded.time_sum,time_t=excluded.time_t,"
    "ctx_sum=excluded.ctx_sum,ctx_t=excluded.ctx_t,last_act=excluded.last_act";

int core_blob_floats(sqlite3_stmt *st, int col, float *out, int n) {
  if (sqlite3_column_type(st, col) != SQLITE_BLOB ||
      sqlite3_column_bytes(st, col) != (int)(sizeof(float) * (size_t)n))
    return -1;
  memcpy(out, sqlite3_column_blob(st, col), sizeof(float) * (size_t)n);
  return 0;
}

/* ---- the group's user map ---- */

static void um_free(user_map *m) {
  for (size_t i = 0; i < m->n; i++) {
    sd_user_buf_free(&m->slots[i].ub);
    free(m->slots[i].vec);
  }
  free(m->slots);
  free(m->table);
}

static int um_grow(user_map *m) {
  size_t nc = m->tcap ? m->tcap * 2 : 256;
  uint32_t *nt = calloc(nc, sizeof(uint32_t));
  user_slot *ns = realloc(m->slots, sizeof(user_slot) * (nc / 2));
  if (!nt || !ns) {
    free(nt);
    if (ns) m->slots = ns;
    return SD_ENOMEM;
  }
  m->slots = ns;
  m->cap = nc / 2;
  for (size_t i = 0; i < m->n; i++) {
    const char *u = m->slots[i].user_id;
    size_t h = sd_hash64(u, strlen(u), 3) & (nc - 1);
    while (nt[h]) h = (h + 1) & (nc - 1);
    nt[h] = (uint32_t)i + 1;
  }
  free(m->table);
  m->table = nt;
  m->tcap = nc;
  return 0;
}

/* Fills a new slot from the users row, if any. */
static int user_load(sd_core *c, user_slot *s) {
  const sd_space *seg = &c->spaces[SD_SPACE_SEGMENTS];
  sqlite3_stmt *st = sd_store_stmt(c->db, SQL_USER_GET);
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, s->user_id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  s->is_new = rc == SQLITE_DONE;
  s->old_idx = s->idx = -1;
  if (rc == SQLITE_ROW) {
    sd_user_state *u = &s->ub.u;
    u->first_seen = sqlite3_column_int64(st, 0);
    u->last_seen = sqlite3_column_int64(st, 1);
    u->n_events = sqlite3_column_int64(st, 2);
    u->n_texts = sqlite3_column_int64(st, 3);
    sd_views_read(st, 6, &c->vc, u);
    if (sqlite3_column_type(st, 4) != SQLITE_NULL && seg->has_model) {
      s->old_idx = sd_space_index_of(seg, sqlite3_column_int64(st, 4));
      s->old_sim = (float)sqlite3_column_double(st, 5);
    }
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : SD_EDB;
}

static user_slot *um_get(sd_core *c, user_map *m, const char *user_id,
                         int *err) {
  if ((m->n + 1) * 2 > m->tcap && (*err = um_grow(m)) < 0) return NULL;
  size_t h = sd_hash64(user_id, strlen(user_id), 3) & (m->tcap - 1);
  while (m->table[h]) {
    user_slot *s = &m->slots[m->table[h] - 1];
    if (!strcmp(s->user_id, user_id)) return s;
    h = (h + 1) & (m->tcap - 1);
  }
  user_slot *s = &m->slots[m->n];
  memset(s, 0, sizeof(*s));
  s->user_id = user_id;
  s->vec = calloc((size_t)sd_views_width(&c->vc), sizeof(float));
  if (!s->vec || (*err = sd_user_buf_init(&s->ub, &c->vc)) < 0 ||
      (*err = user_load(c, s)) < 0) {
    if (!s->vec) *err = SD_ENOMEM;
    sd_user_buf_free(&s->ub);
    free(s->vec);
    return NULL;
  }
  m->table[h] = (uint32_t)++m->n;
  return s;
}

/* ---- items ---- */

static const char SQL_TYPE_INSERT[] =
    "INSERT INTO event_types(type,first_seen) VALUES(?1,?2) "
    "ON CONFLICT(type) DO NOTHING";

/* Records the event type in event_types (every type: outcomes and
 * experiments ask whether one was ever ingested) and remembers a name for
 * its behaviour bucket (first wins). A type sharing its bucket with an
 * earlier one is not cached, so it costs one INSERT .. DO NOTHING per
 * event. */
static int note_beh_name(sd_core *c, const char *type, int64_t now) {
  float sign;
  int b = sd_views_beh_bucket(type, strlen(type), &sign);
  if (c->beh_names[b] && !strcmp(c->beh_names[b], type)) return 0;
  sqlite3_stmt *st = sd_store_stmt(c->db, SQL_TYPE_INSERT);
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, now);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) return SD_EDB;
  if (c->beh_names[b]) return 0;
  c->beh_names[b] = strdup(type);
  return c->beh_names[b] ? 0 : SD_ENOMEM;
}

static const char SQL_CTX_NAME[] =
    "INSERT INTO feature_names(view,bucket,name) VALUES('context',?1,?2) "
    "ON CONFLICT DO NOTHING";

/* Remembers a "key=value" name for its context bucket (first wins). */
static int note_ctx_name(sd_core *c, int b, const char *kv) {
  if (c->ctx_names[b]) return 0;
  sqlite3_stmt *st = sd_store_stmt(c->db, SQL_CTX_NAME);
  if (!st) return SD_EDB;
  sqlite3_bind_int(st, 1, b);
  sqlite3_bind_text(st, 2, kv, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
  c->ctx_names[b] = strdup(kv);
  return c->ctx_names[b] ? 0 : SD_ENOMEM;
}

/* The event's categorical properties (strings and booleans) feed the
 * context view as "key=value"; numbers are left to later views. */
static int event_context(sd_core *c, sd_user_state *u, const sd_event *e) {
  const char *key;
  json_t *v;
  char kv[256];
  int rc = 0;
  json_object_foreach(e->props, key, v) {
    const char *val = json_is_string(v) ? json_string_value(v)
                      : json_is_boolean(v) ? (json_is_true(v) ? "true" : "false")
                      : NULL;
    if (!val) continue;
    int n = snprintf(kv, sizeof(kv), "%s=%s", key, val);
    if (n < 0 || (size_t)n >= sizeof(kv)) continue; /* too long to be a category */
    sd_views_add_context(&c->vc, u, kv, (size_t)n, e->ts);
    float sign;
    if ((rc = note_ctx_name(c, sd_views_ctx_bucket(kv, (size_t)n, &sign), kv)) < 0)
      break;
  }
  return rc;
}

int core_event_view(sd_core *c, sd_user_state *u, const sd_event *e) {
  sd_views_add_event(&c->vc, u, e->type, strlen(e->type), e->ts);
  return event_context(c, u, e);
}

static int group_event(sd_core *c, group *g, sd_job *j, const sd_event *e) {
  sqlite3_stmt *st = sd_store_stmt(c->db, SQL_EVENT_INSERT);
  if (!st) return SD_EDB;
  char *props = e->props ? json_dumps(e->props, JSON_COMPACT) : NULL;
  if (e->props && !props) return SD_ENOMEM;
  sqlite3_bind_text(st, 1, e->event_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, e->user_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, e->type, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, e->ts);
  if (props) sqlite3_bind_text(st, 5, props, -1, free);
  if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
  if (sqlite3_changes(sd_store_db(c->db)) == 0) {
    j->duplicates++;
    return 0;
  }
  j->accepted++;
  int err = 0;
  user_slot *u = um_get(c, &g->users, e->user_id, &err);
  if (!u) return err;
  float sign;
  int b = sd_views_beh_bucket(e->type, strlen(e->type), &sign);
  c->beh_count[b] += 1.0;
  c->beh_total += 1.0;
  int rc = note_beh_name(c, e->type, g->now);
  return rc < 0 ? rc : core_event_view(c, &u->ub.u, e);
}

static int text_exists(sd_core *c, const char *text_id) {
  sqlite3_stmt *st = sd_store_stmt(c->db, SQL_TEXT_EXISTS);
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, text_id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : SD_EDB;
}

/* Embeds t into vec (L2-normalised): the client's vector or the encoder's. */
static int text_embed(sd_core *c, const sd_text *t, float *vec) {
  int dim = c->vc.dim;
  if (t->embedding) {
    memcpy(vec, t->embedding, sizeof(float) * (size_t)dim);
    float len = cblas_snrm2(dim, vec, 1);
    if (len > 0) cblas_sscal(dim, 1.0f / len, vec, 1);
    return 0;
  }
  sd_sparse f;
  int rc = sd_features(t->text, t->text_len, SD_ENCODER_BITS, &f);
  if (rc < 0) return rc;
  sd_encoder_observe(c->enc, &f);
  rc = sd_encoder_encode_proj(c->enc, c->proj, &f, vec);
  sd_sparse_free(&f);
  return rc;
}

/* Binds a text's embedding (or NULL while it waits for one), its embedder
 * and its intent from parameter col on. */
static void bind_derived(sd_core *c, sqlite3_stmt *st, int col,
                         const float *stored, int64_t embedder,
                         const text_rec *r, float conf) {
  const sd_space *in = &c->spaces[SD_SPACE_INTENTS];
  if (stored) {
    sqlite3_bind_blob(st, col, stored, (int)(sizeof(float) * (size_t)c->vc.dim),
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, col + 1, embedder);
  }
  if (r->idx >= 0) {
    sqlite3_bind_int64(st, col + 2, in->ids[r->idx]);
    sqlite3_bind_double(st, col + 3, r->sim);
    sqlite3_bind_double(st, col + 4, conf);
  }
}

static int text_insert(sd_core *c, const sd_text *t, const text_rec *r,
                       float conf) {
  sqlite3_stmt *st = sd_store_stmt(c->db, SQL_TEXT_INSERT);
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, t->text_id, -1, SQLITE_STATIC);
  if (t->user_id) sqlite3_bind_text(st, 2, t->user_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, t->text, (int)t->text_len, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, t->ts);
  bind_derived(c, st, 5, t->embedding ? t->embedding : r->vec,
               t->embedding ? c->client_embedder_id : c->proj->embedder_id, r,
               conf);
  return sqlite3_step(st) == SQLITE_DONE ? 0 : SD_EDB;
}

static const char SQL_QUEUE_ADD[] =
    "INSERT INTO embed_queue(text_rowid,received_at) VALUES(?1,?2)";

/* A text for the remote embedder: stored and queued, counted for its user. */
static int group_text_pending(sd_core *c, group *g, sd_job *j,
                              const sd_text *t) {
  text_rec r = {t, NULL, -1, 0};
  int rc = text_insert(c, t, &r, 0);
  sqlite3_stmt *st = rc == 0 ? sd_store_stmt(c->db, SQL_QUEUE_ADD) : NULL;
  if (!st) return rc < 0 ? rc : SD_EDB;
  sqlite3_bind_int64(st, 1, sqlite3_last_insert_rowid(sd_store_db(c->db)));
  sqlite3_bind_int64(st, 2, g->now);
  if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
  j->accepted++;
  j->pending++;
  g->queued++;
  if (!t->user_id) return 0;
  user_slot *u = um_get(c, &g->users, t->user_id, &rc);
  if (!u) return rc;
  sd_views_add_text(&c->vc, &u->ub.u, NULL, t->ts);
  return 0;
}

/* Embeds r->t into r->vec and assigns it to the intents model. */
static int text_place(sd_core *c, text_rec *r, float *conf) {
  int rc = text_embed(c, r->t, r->vec);
  const sd_space *in = &c->spaces[SD_SPACE_INTENTS];
  *conf = 0;
  if (rc == 0 && in->has_model)
    rc = sd_space_assign(in, r->vec, &r->idx, &r->sim, conf);
  return rc;
}

static text_rec *group_next_text(sd_core *c, group *g, const sd_text *t) {
  text_rec *r = &g->texts[g->n_texts];
  r->t = t;
  r->vec = g->vecs + g->n_texts * (size_t)c->vc.dim;
  r->idx = -1;
  return r;
}

/* By seq too: a text erased meanwhile may have left its rowid to a new one. */
static const char SQL_QUEUE_TAKE[] =
    "DELETE FROM embed_queue WHERE seq=?1 AND text_rowid=?2 AND failed_at IS NULL";
static const char SQL_TEXT_EMBEDDED[] =
    "UPDATE texts SET embedding=?2,embedder_id=?3,cluster=?4,similarity=?5,"
    "confidence=?6 WHERE id=?1";

/* A queued text's embedding arrived: stored once, however often it came
 * back (a text no longer queued, embedded or erased, counts as a duplicate). */
static int group_embedded(sd_core *c, group *g, sd_job *j, const sd_text *t,
                          int64_t seq, int64_t rowid) {
  sqlite3_stmt *st = sd_store_stmt(c->db, SQL_QUEUE_TAKE);
  if (!st) return SD_EDB;
  sqlite3_bind_int64(st, 1, seq);
  sqlite3_bind_int64(st, 2, rowid);
  if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
  if (sqlite3_changes(sd_store_db(c->db)) == 0) {
    j->duplicates++;
    return 0;
  }
  text_rec *r = group_next_text(c, g, t);
  float conf;
  int rc = text_place(c, r, &conf);
  if (rc < 0 || !(st = sd_store_stmt(c->db, SQL_TEXT_EMBEDDED)))
    return rc < 0 ? rc : SD_EDB;
  sqlite3_bind_int64(st, 1, rowid);
  bind_derived(c, st, 2, t->embedding ? t->embedding : r->vec,
               t->embedding ? c->remote_embedder_id : c->proj->embedder_id, r,
               conf);
  if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
  g->n_texts++;
  g->embedded++;
  j->accepted++;
  if (!t->user_id) return 0;
  user_slot *u = um_get(c, &g->users, t->user_id, &rc);
  if (!u) return rc;
  sd_views_add_text_vec(&c->vc, &u->ub.u, r->vec, t->ts);
  return 0;
}

static int group_text(sd_core *c, group *g, sd_job *j, const sd_text *t) {
  int rc = text_exists(c, t->text_id);
  if (rc < 0) return rc;
  if (rc == 1) {
    j->duplicates++;
    return 0;
  }
  if (c->remote && !t->embedding) return group_text_pending(c, g, j, t);
  text_rec *r = group_next_text(c, g, t);
  float conf;
  if ((rc = text_place(c, r, &conf)) < 0) return rc;
  if ((rc = text_insert(c, t, r, conf)) < 0) return rc;
  g->n_texts++;
  j->accepted++;
  if (!t->user_id) return 0;
  user_slot *u = um_get(c, &g->users, t->user_id, &rc);
  if (!u) return rc;
  sd_views_add_text(&c->vc, &u->ub.u, r->vec, t->ts);
  return 0;
}

/* ---- users ---- */

int core_user_store(sd_core *c, const char *user_id, const sd_user_state *us,
                    int idx, float sim, float conf, int64_t now) {
  const sd_space *seg = &c->spaces[SD_SPACE_SEGMENTS];
  sqlite3_stmt *st = sd_store_stmt(c->db, SQL_USER_PUT);
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, us->first_seen);
  sqlite3_bind_int64(st, 3, us->last_seen);
  sqlite3_bind_int64(st, 4, us->n_events);
  sqlite3_bind_int64(st, 5, us->n_texts);
  if (idx >= 0) {
    sqlite3_bind_int64(st, 6, seg->ids[idx]);
    sqlite3_bind_double(st, 7, sim);
    sqlite3_bind_double(st, 8, conf);
  }
  sqlite3_bind_int64(st, 9, now);
  sd_views_bind(st, 10, &c->vc, us);
  return sqlite3_step(st) == SQLITE_DONE ? 0 : SD_EDB;
}

static int user_put(sd_core *c, user_slot *u, int64_t now) {
  const sd_space *seg = &c->spaces[SD_SPACE_SEGMENTS];
  int any = sd_views_vector(&c->vc, &u->ub.u, u->vec);
  if (any && seg->has_model) {
    int rc = sd_space_assign(seg, u->vec, &u->idx, &u->sim, &u->conf);
    if (rc < 0) return rc;
  }
  return core_user_store(c, u->user_id, &u->ub.u, u->idx, u->sim, u->conf, now);
}

/* Users who entered or left a segment in this group, for the segments
 * webhook stream. */
static int group_sync(sd_core *c, const group *g) {
  const sd_space *seg = &c->spaces[SD_SPACE_SEGMENTS];
  size_t n = g->users.n;
  if (!c->cfg->segments_webhook_url || !seg->has_model || n == 0) return 0;
  int64_t *from = malloc(sizeof(int64_t) * n), *to = malloc(sizeof(int64_t) * n);
  const char **users = malloc(sizeof(char *) * n);
  int rc = from && to && users ? 0 : SD_ENOMEM;
  for (size_t i = 0; i < n && rc == 0; i++) {
    const user_slot *u = &g->users.slots[i];
    from[i] = u->old_idx >= 0 ? seg->ids[u->old_idx] : -1;
    to[i] = u->idx >= 0 ? seg->ids[u->idx] : -1;
    users[i] = u->user_id;
  }
  if (rc == 0) rc = core_sync_diff(c, from, to, users, n, NULL);
  free(from);
  free(to);
  free((void *)users);
  return rc;
}

/* ---- the group ---- */

static int group_store(sd_core *c, group *g, sd_job **jobs, int n) {
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    sd_batch *b = &jobs[i]->batch;
    for (size_t k = 0; k < b->n && rc == 0; k++)
      rc = b->kind == SD_BATCH_EVENTS ? group_event(c, g, jobs[i], &b->events[k])
           : b->kind == SD_BATCH_TEXTS
               ? group_text(c, g, jobs[i], &b->texts[k])
               : group_embedded(c, g, jobs[i], &b->texts[k], b->seqs[k],
                                b->rowids[k]);
  }
  for (size_t i = 0; i < g->users.n && rc == 0; i++)
    rc = user_put(c, &g->users.slots[i], g->now);
  return rc == 0 ? group_sync(c, g) : rc;
}

/* After COMMIT: members, representatives, terms and centroids move. */
static void group_apply(sd_core *c, group *g) {
  sd_space *in = &c->spaces[SD_SPACE_INTENTS];
  sd_space *seg = &c->spaces[SD_SPACE_SEGMENTS];
  for (size_t i = 0; i < g->n_texts; i++) {
    text_rec *r = &g->texts[i];
    in->points++;
    if (r->idx < 0) continue;
    sd_space_member_add(in, r->idx, r->sim, r->t->text_id, r->t->text,
                        r->t->text_len, r->vec);
    core_drift_observe_text(c, r->idx, r->sim, r->vec, r->t->text_id,
                            r->t->text, r->t->text_len);
    sd_space_update(in, r->idx, r->vec, g->now);
  }
  for (size_t i = 0; i < g->users.n; i++) {
    user_slot *u = &g->users.slots[i];
    sd_lookup_cache_invalidate(u->user_id); /* committed: answers change */
    if (u->is_new) seg->points++;
    if (u->idx < 0) continue;
    if (u->old_idx >= 0)
      sd_space_member_remove(seg, u->old_idx, u->old_sim, u->user_id, NULL, 0);
    sd_space_member_add(seg, u->idx, u->sim, u->user_id, NULL, 0, u->vec);
    core_drift_observe_user(c, u->idx, u->sim, u->vec, u->user_id);
    sd_space_update(seg, u->idx, u->vec, g->now);
  }
}

static int group_alloc(sd_core *c, group *g, sd_job **jobs, int n) {
  size_t texts = 0;
  for (int i = 0; i < n; i++)
    if (jobs[i]->batch.kind != SD_BATCH_EVENTS) texts += jobs[i]->batch.n;
  g->texts = calloc(texts ? texts : 1, sizeof(text_rec));
  g->vecs = malloc(sizeof(float) * (texts ? texts : 1) * (size_t)c->vc.dim);
  return g->texts && g->vecs ? 0 : SD_ENOMEM;
}

static void group_finish(sd_core *c, const group *g) {
  core_beh_idf(c);
  if (c->on_outbox && c->cfg->segments_webhook_url) c->on_outbox(c->on_outbox_ud);
  core_embed_committed(c, g->queued, g->embedded);
  core_request_first_models(c);
  int64_t now = sd_now_ms();
  if (now - c->last_save >= c->cfg->save_interval_ms) {
    if (core_save_models(c) < 0) sd_log_error("saving models failed");
    c->last_save = now;
  }
  if (core_publish(c) < 0) sd_log_error("publishing a snapshot failed");
}

void core_group(sd_core *c, sd_job **jobs, int n) {
  group g;
  memset(&g, 0, sizeof(g));
  g.now = sd_now_ms();
  for (int i = 0; i < n; i++)
    jobs[i]->accepted = jobs[i]->duplicates = jobs[i]->pending = 0;
  int rc = group_alloc(c, &g, jobs, n);
  if (rc == 0) rc = sd_store_exec(c->db, "BEGIN IMMEDIATE");
  if (rc == 0) {
    rc = group_store(c, &g, jobs, n);
    if (rc == 0) rc = sd_store_commit(c->db);
    if (rc < 0) {
      sd_log_error("ingest group of %d batches failed (%s): rolled back", n,
                   sqlite3_errmsg(sd_store_db(c->db)));
      sd_store_exec(c->db, "ROLLBACK");
    }
  }
  if (rc == 0) {
    group_apply(c, &g);
    group_finish(c, &g);
  }
  for (int i = 0; i < n; i++) {
    jobs[i]->rc = rc;
    if (rc < 0) jobs[i]->accepted = jobs[i]->duplicates = jobs[i]->pending = 0;
  }
  um_free(&g.users);
  free(g.texts);
  free(g.vecs);
  for (int i = 0; i < n; i++) jobs[i]->done(jobs[i], jobs[i]->ud);
}
