/*
 * views_store.h -- a user's views in the users table: the column list,
 * reading a row's accumulators into an sd_user_state, binding them back,
 * and the views configuration from segmentd's config. Every place that
 * reads or writes user vectors goes through here, so the row format lives
 * in one file.
 *
 * Memory: sd_user_buf owns one array holding every view's accumulator;
 * release it with sd_user_buf_free (NULL-safe).
 */
#ifndef SEGMENTD_VIEWS_STORE_H
#define SEGMENTD_VIEWS_STORE_H

#include <sqlite3.h>

#include "segmentd/config.h"
#include "segmentd/views.h"

/* The view columns of users, in the order read and bound below. */
#define SD_VIEWS_COLS \
  "text_sum,text_t,beh_sum,beh_t,time_sum,time_t,ctx_sum,ctx_t,last_act"
#define SD_VIEWS_NCOLS 9

sd_views_conf sd_views_conf_of(const sd_config *cfg, const float *beh_idf);

typedef struct {
  float *buf;
  sd_user_state u;
} sd_user_buf;

/* Allocates zeroed accumulators for every view; 0 or SD_ENOMEM. */
int sd_user_buf_init(sd_user_buf *b, const sd_views_conf *vc);
void sd_user_buf_free(sd_user_buf *b);
/* Empties the accumulators (and the counters). */
void sd_user_buf_clear(sd_user_buf *b, const sd_views_conf *vc);

/* Reads SD_VIEWS_NCOLS columns from col on into u's accumulators (views
 * stored with another width are left empty). */
void sd_views_read(sqlite3_stmt *st, int col, const sd_views_conf *vc,
                   sd_user_state *u);
/* Binds u's accumulators to SD_VIEWS_NCOLS parameters from param on. The
 * arrays must outlive the statement's step. */
void sd_views_bind(sqlite3_stmt *st, int param, const sd_views_conf *vc,
                   const sd_user_state *u);

#endif
