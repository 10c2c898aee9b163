/*
 * harness_db.h -- direct reads of a segmentd SQLite file for the
 * integration tests (the black-box check beside the HTTP answers).
 *
 * Each call opens the database read-only, runs its query and closes it;
 * with the server stopped (or in WAL mode while it runs) that reads what
 * is durable on disk. Ownership: every json_t returned is a new reference
 * for the caller.
 */
#ifndef SD_TEST_HARNESS_DB_H
#define SD_TEST_HARNESS_DB_H

#include <stddef.h>

#include <jansson.h>

/* Runs sql, whose rows are (text key, integer count), and returns
 * {key: count}; NULL (reason on stderr) when the file or query fails. */
json_t *db_key_counts(const char *db, const char *sql);

/* Runs PRAGMA integrity_check; returns 1 when its answer is "ok", else 0
 * with the first answer (or the error) in msg (cap bytes). */
int db_integrity_ok(const char *db, char *msg, size_t cap);

#endif
