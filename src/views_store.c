/* views_store.c -- users' view columns (see views_store.h). */
#include "segmentd/views_store.h"
#include "segmentd/err.h"

#include <stdlib.h>
#include <string.h>

sd_views_conf sd_views_conf_of(const sd_config *cfg, const float *beh_idf) {
  return (sd_views_conf){(int)cfg->dim, cfg->half_life_days * 86400e3,
                         cfg->w_text, cfg->w_behaviour, cfg->w_time,
                         cfg->w_context, beh_idf};
}

int sd_user_buf_init(sd_user_buf *b, const sd_views_conf *vc) {
  memset(b, 0, sizeof(*b));
  b->buf = calloc((size_t)sd_views_width(vc), sizeof(float));
  if (!b->buf) return SD_ENOMEM;
  b->u.text_sum = b->buf + sd_views_offset(vc, SD_VIEW_TEXT);
  b->u.beh_sum = b->buf + sd_views_offset(vc, SD_VIEW_BEH);
  b->u.time_sum = b->buf + sd_views_offset(vc, SD_VIEW_TIME);
  b->u.ctx_sum = b->buf + sd_views_offset(vc, SD_VIEW_CTX);
  return 0;
}

void sd_user_buf_free(sd_user_buf *b) {
  if (!b) return;
  free(b->buf);
  memset(b, 0, sizeof(*b));
}

void sd_user_buf_clear(sd_user_buf *b, const sd_views_conf *vc) {
  float *buf = b->buf;
  memset(buf, 0, sizeof(float) * (size_t)sd_views_width(vc));
  sd_user_state keep = b->u;
  memset(&b->u, 0, sizeof(b->u));
  b->u.text_sum = keep.text_sum, b->u.beh_sum = keep.beh_sum;
  b->u.time_sum = keep.time_sum, b->u.ctx_sum = keep.ctx_sum;
}

/* A float BLOB of exactly n floats into out: its time, or 0 (empty). */
static int64_t read_view(sqlite3_stmt *st, int col, float *out, int n) {
  if (sqlite3_column_type(st, col) != SQLITE_BLOB ||
      sqlite3_column_bytes(st, col) != (int)(sizeof(float) * (size_t)n)) {
    memset(out, 0, sizeof(float) * (size_t)n);
    return 0;
  }
  memcpy(out, sqlite3_column_blob(st, col), sizeof(float) * (size_t)n);
  return sqlite3_column_int64(st, col + 1);
}

void sd_views_read(sqlite3_stmt *st, int col, const sd_views_conf *vc,
                   sd_user_state *u) {
  u->text_t = read_view(st, col, u->text_sum, vc->dim);
  u->beh_t = read_view(st, col + 2, u->beh_sum, SD_BEH_DIM);
  u->time_t = read_view(st, col + 4, u->time_sum, SD_TIME_DIM);
  u->ctx_t = read_view(st, col + 6, u->ctx_sum, SD_CTX_DIM);
  u->last_act = sqlite3_column_int64(st, col + 8);
}

static void bind_view(sqlite3_stmt *st, int p, const float *v, int n,
                      int64_t t) {
  if (!t) return; /* empty view: NULL columns */
  sqlite3_bind_blob(st, p, v, (int)(sizeof(float) * (size_t)n), SQLITE_STATIC);
  sqlite3_bind_int64(st, p + 1, t);
}

void sd_views_bind(sqlite3_stmt *st, int param, const sd_views_conf *vc,
                   const sd_user_state *u) {
  bind_view(st, param, u->text_sum, vc->dim, u->text_t);
  bind_view(st, param + 2, u->beh_sum, SD_BEH_DIM, u->beh_t);
  bind_view(st, param + 4, u->time_sum, SD_TIME_DIM, u->time_t);
  bind_view(st, param + 6, u->ctx_sum, SD_CTX_DIM, u->ctx_t);
  if (u->last_act) sqlite3_bind_int64(st, param + 8, u->last_act);
}
