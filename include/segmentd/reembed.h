/*
 * reembed.h -- switching a database to another embedder.
 *
 * Owns: the name a database records for its embedder, and preparing a
 * re-embed (`segmentd reembed`): in one transaction every stored text loses
 * its vector and joins the embedding queue, users lose their text views
 * and assignments, models are set aside (their versions go on) and the
 * database records the new embedder and dimension. The server started with
 * the same flags then embeds the queue in the background (progress in
 * GET /v1/info) and re-clusters both spaces once it has drained.
 *
 * The server must not run on the database meanwhile: the caller holds the
 * database's lock (sd_db_lock) while preparing.
 */
#ifndef SEGMENTD_REEMBED_H
#define SEGMENTD_REEMBED_H

#include <stddef.h>
#include <stdint.h>

#include "segmentd/config.h"

/* "builtin", or "openai:<model>". */
void sd_embedder_key(const sd_config *cfg, char *out, size_t cap);

/* Prepares the re-embed of the database at cfg->db for cfg's embedder.
 * *queued = texts queued. 0 or a negative sd_err with msg set. */
int sd_reembed_prepare(const sd_config *cfg, int64_t *queued, char *msg,
                       size_t msglen);

/* Takes an exclusive lock on "<db>.lock" for this process's lifetime
 * (released at exit or by sd_db_unlock). SD_EBUSY (msg set) when another
 * process holds it: one server or tool per database. */
int sd_db_lock(const char *db, int *fd, char *msg, size_t msglen);
void sd_db_unlock(int fd);

#endif
