/*
 * experiments_int.h -- what experiments.c (writer side) and
 * experiments_read.c (readers) share: the definition columns and their
 * decoding.
 */
#ifndef SEGMENTD_EXPERIMENTS_INT_H
#define SEGMENTD_EXPERIMENTS_INT_H

#include <sqlite3.h>

#include "segmentd/experiments.h"

/* The columns exp_def_row reads, in order (table alias e). */
#define EXP_DEF_COLS                                                       \
  "e.id,e.name,e.variants,e.weights,e.stratify,e.event_type,"               \
  "e.window_days,e.created_at,e.stopped_at"
#define EXP_DEF_NCOLS 9

/* Fills def from the EXP_DEF_COLS starting at column col. 0, or SD_EDB
 * when a stored array does not decode (a damaged row). */
int exp_def_row(sqlite3_stmt *st, int col, sd_exp_def *def);

#endif
