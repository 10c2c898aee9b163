/*
 * store.h -- SQLite storage: opening, migrations, and the connections of
 * the writer and of the readers.
 *
 * Owns: the database file's settings (WAL, synchronous=NORMAL, busy
 * timeout), applying the compiled-in migrations in order (tracked with
 * PRAGMA user_version), a cache of prepared statements per connection, and
 * one read-only connection per reading thread.
 *
 * Threads: an sd_store (the write connection) belongs to the core writer
 * thread. sd_store_reader() hands each calling thread its own read-only
 * connection; they are all closed by sd_store_close_readers() once no
 * reader thread runs any more.
 */
#ifndef SEGMENTD_STORE_H
#define SEGMENTD_STORE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  const char *name; /* file name, e.g. "0001_init.sql" */
  const char *sql;
} sd_migration;

extern const sd_migration sd_migrations[];
extern const int sd_migrations_count;

typedef struct sd_store sd_store;

/* Bytes of the database the request threads' readers opened from now on
 * read through a memory map (PRAGMA mmap_size; default 1 GiB, 0 = off).
 * The writer and the readers of sd_store_reader_for_scans() threads never
 * map: they read into bounded page caches (writer 64 MiB, scans 2 MiB), so
 * the pages their inserts and scans touch do not stay in the RSS.
 * Process-wide: set once before the first connection. */
void sd_store_set_mmap(int64_t bytes);

/* Opens (creating directories' file if needed) and migrates the database.
 * 0 or a negative sd_err; on error *out is NULL and msg says why. */
int sd_store_open(const char *path, sd_store **out, char *msg, size_t msglen);
void sd_store_close(sd_store *s);

sqlite3 *sd_store_db(sd_store *s);
const char *sd_store_path(const sd_store *s);

/* A cached prepared statement of the connection for this SQL text (the
 * pointer of a string literal is the cache key), reset and with bindings
 * cleared. NULL on a prepare error (logged). Not thread-safe: one
 * connection, one thread. */
sqlite3_stmt *sd_store_stmt(sd_store *s, const char *sql);

/* Runs SQL without results (BEGIN, COMMIT, ...). 0 or SD_EDB (logged). */
int sd_store_exec(sd_store *s, const char *sql);
/* COMMIT, timed into the writer's commit latency metric (metrics.h). */
int sd_store_commit(sd_store *s);

/* The read-only connection of the calling thread, opened on first use on
 * the database at `path` given to sd_store_readers_init. NULL on error. */
sd_store *sd_store_reader(void);
/* Marks the calling thread as a background thread (maintenance, outboxes,
 * embedding queue) whose reads are scans: its reader, opened after this,
 * does not map the file. Call first thing in the thread. */
void sd_store_reader_for_scans(void);
int sd_store_readers_init(const char *path);
void sd_store_close_readers(void);

/* WAL checkpoints on a thread of their own (store_ckpt.c): turns the
 * writer connection's automatic checkpoint off and checkpoints (PASSIVE)
 * from another connection each time the WAL has grown by 1,000 pages; once
 * the WAL holds rewind_bytes, the writer finishes the checkpoint after its
 * commit so its next transaction can rewind the WAL. Start after opening
 * the writer; stop before closing it. */
typedef struct sd_checkpointer sd_checkpointer;
int sd_checkpointer_start(sd_store *writer, const char *path,
                          int64_t rewind_bytes, sd_checkpointer **out);
void sd_checkpointer_stop(sd_checkpointer *c, sd_store *writer);

/* meta key/value helpers (writer connection). */
int sd_store_meta_get(sd_store *s, const char *key, char *out, size_t cap);
int sd_store_meta_set(sd_store *s, const char *key, const char *value);

/* The id of the embedders row for (kind, model, dim, version), inserted if
 * new. 0 or SD_EDB. */
int sd_store_embedder_id(sd_store *s, const char *kind, const char *model,
                         int dim, const char *version, int64_t now_ms,
                         int64_t *id);

#endif
