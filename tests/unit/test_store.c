/* Unit tests of store.c: migrations, reopen, statement cache, readers. */
#include "check.h"
#include "segmentd/err.h"
#include "segmentd/store.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int user_version(sd_store *s) {
  sqlite3_stmt *st = sd_store_stmt(s, "PRAGMA user_version");
  int v = st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
  if (st) sqlite3_reset(st);
  return v;
}

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* One commit of n rows of 4,000 bytes (about a page each) keyed tag<t>-i. */
static int write_rows(sd_store *s, const char *tag, int t, int n) {
  char sql[256];
  snprintf(sql, sizeof(sql),
           "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
           "WHERE i < %d) INSERT INTO meta(key,value) SELECT '%s%d-' || i, "
           "hex(randomblob(2000)) FROM n", n, tag, t);
  return sd_store_exec(s, sql);
}

/* The checkpoint thread copies the WAL back into the database file: after
 * ~8 MB of commits (over its 1,000-page threshold) the file itself grows.
 * A checkpoint that does not run leaves every new page in the WAL. */
static void test_checkpointer(const char *path) {
  char msg[256];
  sd_store *s;
  sd_checkpointer *c;
  CHECK_INT(sd_store_open(path, &s, msg, sizeof(msg)), 0);
  CHECK_INT(sd_checkpointer_start(s, path, 64L << 20, &c), 0);
  long before = file_size(path);
  CHECK(before > 0);
  for (int t = 0; t < 20; t++) CHECK_INT(write_rows(s, "ck", t, 100), 0);
  long after = before;
  for (int i = 0; i < 1000 && after < before + (4L << 20); i++) {
    nanosleep(&(struct timespec){0, 10000000L}, NULL);
    after = file_size(path);
  }
  CHECK(after >= before + (4L << 20));
  /* sustained writes: 160 MB more in 40 commits; the WAL is rewound near
   * 16,000 pages (64 MB) instead of growing by all of it */
  char wal[300];
  snprintf(wal, sizeof(wal), "%s-wal", path);
  long wal_max = 0;
  for (int t = 0; t < 40; t++) {
    CHECK_INT(write_rows(s, "big", t, 1000), 0);
    long w = file_size(wal);
    if (w > wal_max) wal_max = w;
  }
  CHECK(wal_max > 0 && wal_max < (100L << 20));
  sd_checkpointer_stop(c, s);
  sd_store_close(s);
}

int main(void) {
  char dir[] = "/tmp/sd-store-XXXXXX", path[256], msg[256];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof(path), "%s/t.db", dir);
  sd_store *s;
  CHECK_INT(sd_store_open(path, &s, msg, sizeof(msg)), 0);
  CHECK(sd_migrations_count >= 1);
  CHECK_INT(user_version(s), sd_migrations_count);
  CHECK_INT(sd_store_exec(s, "INSERT INTO meta(key,value) VALUES('a','b')"), 0);
  char v[16];
  CHECK_INT(sd_store_meta_get(s, "a", v, sizeof(v)), 0);
  CHECK_STR(v, "b");
  CHECK_INT(sd_store_meta_get(s, "nope", v, sizeof(v)), SD_ENOTFOUND);
  CHECK_INT(sd_store_meta_set(s, "a", "c"), 0);
  CHECK_INT(sd_store_meta_get(s, "a", v, sizeof(v)), 0);
  CHECK_STR(v, "c");
  int64_t id1, id2, id3;
  CHECK_INT(sd_store_embedder_id(s, "builtin", "m", 256, "1", 0, &id1), 0);
  CHECK_INT(sd_store_embedder_id(s, "builtin", "m", 256, "1", 5, &id2), 0);
  CHECK_INT(sd_store_embedder_id(s, "builtin", "m", 128, "1", 5, &id3), 0);
  CHECK_INT(id1, id2);
  CHECK(id1 != id3);
  CHECK_INT(sd_store_exec(s, "THIS IS NOT SQL"), SD_EDB);
  sd_store_close(s);
  /* reopening applies nothing twice and keeps the data */
  CHECK_INT(sd_store_open(path, &s, msg, sizeof(msg)), 0);
  CHECK_INT(user_version(s), sd_migrations_count);
  CHECK_INT(sd_store_meta_get(s, "a", v, sizeof(v)), 0);
  /* readers see committed data, and are read-only */
  CHECK_INT(sd_store_readers_init(path), 0);
  sd_store *r = sd_store_reader();
  CHECK(r != NULL);
  CHECK(sd_store_reader() == r);
  sqlite3_stmt *st = sd_store_stmt(r, "SELECT value FROM meta WHERE key='a'");
  CHECK(st && sqlite3_step(st) == SQLITE_ROW);
  if (st) sqlite3_reset(st);
  CHECK_INT(sd_store_exec(r, "INSERT INTO meta(key,value) VALUES('x','y')"),
            SD_EDB);
  sd_store_close_readers();
  /* a database from a newer build is refused */
  CHECK_INT(sd_store_exec(s, "PRAGMA user_version=999"), 0);
  sd_store_close(s);
  CHECK_INT(sd_store_open(path, &s, msg, sizeof(msg)), SD_EDB);
  CHECK(strstr(msg, "newer") != NULL);
  snprintf(path, sizeof(path), "%s/ckpt.db", dir);
  test_checkpointer(path);
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  CHECK_INT(system(cmd), 0);
  return check_done("test_store");
}
