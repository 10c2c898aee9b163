/*
 * cli_admin.c -- `segmentd migrate` (the database schema, server
 * stopped) and `segmentd recluster` (a re-cluster job on a running server,
 * followed until it ends).
 *
 * migrate applies the same compiled-in migrations as `serve` at start
 * (store.h), under the same <db>.lock, so it never runs beside a server on
 * that file. recluster is a client of POST /v1/spaces/{space}/recluster
 * (without "wait": the job is polled at GET /v1/jobs/{id}, so no request
 * stays open for the whole fit) and prints each change of the job's state.
 */
#include "segmentd/cli.h"
#include "segmentd/config.h"
#include "segmentd/log.h"
#include "segmentd/reembed.h"
#include "segmentd/store.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- migrate ---- */

typedef struct {
  const char *db;
  int dry_run;
} migrate_opts;

static const sd_cli_opt migrate_rows[] = {
    {"db", 'd', "SEGMENTD_DB", SD_CLI_STR, offsetof(migrate_opts, db), NULL, 0,
     0, "FILE", "the database file (default: that of `segmentd serve`,\n"
     "./var/segmentd.db); created when missing (not with --dry-run)"},
    {"dry-run", 'n', NULL, SD_CLI_BOOL, offsetof(migrate_opts, dry_run), NULL,
     0, 0, "", "list the pending migrations and change nothing"},
};

static const sd_cli_cmd migrate_cmd = {
    "migrate", "bring a database's schema up to date, then exit",
    "[--db FILE] [--dry-run]",
    "Applies the migrations compiled into this binary that the database\n"
    "has not had yet, in order, each in its own transaction (the schema\n"
    "version is SQLite's PRAGMA user_version), and prints their names.\n"
    "`segmentd serve` does the same at start; migrate lets a deployment do\n"
    "it as a separate step (an init container, a package upgrade).\n"
    "\n"
    "It takes the database's lock (<db>.lock): with a server running on\n"
    "the file it exits 1 and changes nothing. A database newer than this\n"
    "binary (a higher schema version) is refused.",
    migrate_rows, sizeof(migrate_rows) / sizeof(migrate_rows[0]), NULL,
    "segmentd migrate --db /var/lib/segmentd/segmentd.db\n"
    "segmentd migrate --dry-run",
    0, 0};

/* The schema version of an existing file (0 when there is none). */
static int schema_version(const char *db, int *version, char *msg, size_t cap) {
  *version = 0;
  if (access(db, F_OK) != 0) return 0;
  sqlite3 *h = NULL;
  sqlite3_stmt *st = NULL;
  int ok = sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
           sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &st, NULL) ==
               SQLITE_OK &&
           sqlite3_step(st) == SQLITE_ROW;
  if (ok) *version = sqlite3_column_int(st, 0);
  else snprintf(msg, cap, "cannot read %s: %s", db, h ? sqlite3_errmsg(h) : "?");
  sqlite3_finalize(st);
  sqlite3_close(h);
  return ok ? 0 : -1;
}

static int migrate_apply(const char *db, int have) {
  char msg[600] = "";
  int lock = -1;
  sd_store *s = NULL;
  if (sd_db_lock(db, &lock, msg, sizeof(msg)) < 0 ||
      sd_store_open(db, &s, msg, sizeof(msg)) < 0) {
    sd_cli_err("migrate", "%s", msg);
    sd_db_unlock(lock);
    return SD_EXIT_FAIL;
  }
  sd_store_close(s);
  sd_db_unlock(lock);
  for (int i = have; i < sd_migrations_count; i++)
    printf("applied %s\n", sd_migrations[i].name);
  printf("%s: schema version %d, up to date\n", db, sd_migrations_count);
  return SD_EXIT_OK;
}

int sd_cli_migrate(int argc, char **argv) {
  migrate_opts o = {0};
  int np, rc = sd_cli_parse(&migrate_cmd, &o, argc, argv, NULL, 0, &np);
  if (rc) return rc == SD_CLI_HELP ? SD_EXIT_OK : SD_EXIT_USAGE;
  sd_config dflt;
  sd_config_defaults(&dflt);
  const char *db = o.db ? o.db : dflt.db;
  sd_log_set_level("warn"); /* the names are printed below */
  char msg[600];
  int have;
  if (schema_version(db, &have, msg, sizeof(msg)) < 0)
    return sd_cli_err("migrate", "%s", msg), SD_EXIT_FAIL;
  if (have > sd_migrations_count)
    return sd_cli_err("migrate", "%s has schema version %d, newer than this "
                      "binary's %d: use a newer segmentd", db, have,
                      sd_migrations_count), SD_EXIT_FAIL;
  if (!o.dry_run) return migrate_apply(db, have);
  for (int i = have; i < sd_migrations_count; i++)
    printf("pending %s\n", sd_migrations[i].name);
  printf("%s: schema version %d of %d, %d pending\n", db, have,
         sd_migrations_count, sd_migrations_count - have);
  return SD_EXIT_OK;
}

/* ---- recluster ---- */

typedef struct {
  sd_cli_http_opts http;
  const char *algorithm;
  long k, poll_ms;
  int no_wait;
} recluster_opts;

static const sd_cli_opt recluster_rows[] = {
    SD_CLI_HTTP_ROWS(recluster_opts),
    {"algorithm", 'a', NULL, SD_CLI_STR, offsetof(recluster_opts, algorithm),
     "kmeans", 0, 0, "ALGO", "kmeans | hierarchical | density"},
    {"k", 'k', NULL, SD_CLI_LONG, offsetof(recluster_opts, k), "0", 0, 10000,
     "K", "number of clusters (0 = chosen by the server, up to its --k-max)"},
    {"no-wait", 0, NULL, SD_CLI_BOOL, offsetof(recluster_opts, no_wait), NULL,
     0, 0, "", "print the queued job and exit without following it"},
    {"poll-ms", 0, NULL, SD_CLI_LONG, offsetof(recluster_opts, poll_ms), "500",
     50, 60000, "MS", "how often the job's state is asked for"},
};

static const sd_cli_cmd recluster_cmd = {
    "recluster", "re-cluster a space on a running server and wait for it",
    "[OPTIONS] intents|segments",
    "Asks the server at --url to re-cluster the space (POST\n"
    "/v1/spaces/{space}/recluster), then follows the job (GET\n"
    "/v1/jobs/{id}): each change of state (queued, running, done, failed)\n"
    "goes to stderr with the time since the request, and a line every 10 s\n"
    "while it runs. When the job is done, the summary of the new live\n"
    "model (version, algorithm, K, quality, lineage) is printed on stdout\n"
    "as JSON. Interrupting the command does not cancel the job.\n"
    "Needs the admin scope when the server has API keys.",
    recluster_rows, sizeof(recluster_rows) / sizeof(recluster_rows[0]),
    "1   also when the job failed (its error is printed).",
    "segmentd recluster intents\n"
    "segmentd recluster --algorithm hierarchical --k 8 segments\n"
    "segmentd recluster --no-wait intents   # prints {\"job_id\": ...}",
    1, 1};

static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* GET path as a JSON object, or NULL after a message. */
static json_t *rc_get(sd_cli_client *cl, const char *path) {
  sd_cli_resp r;
  json_t *v = NULL;
  if (sd_cli_call(cl, "GET", path, NULL, 0, 1, &r) == 0 && r.status == 200)
    v = json_loads(r.body, 0, NULL);
  if (!v) {
    char why[600];
    sd_cli_describe(&r, why, sizeof(why));
    sd_cli_err("recluster", "GET %s failed: %s", path, why);
  }
  sd_cli_resp_free(&r);
  return v;
}

static const char *jstr(const json_t *o, const char *k, const char *dflt) {
  const char *v = json_string_value(json_object_get(o, k));
  return v ? v : dflt;
}

/* Follows a job to its end: 0 done (summary printed), 1 otherwise. */
static int follow(sd_cli_client *cl, const recluster_opts *o, long long job) {
  char path[64], last[32] = "";
  snprintf(path, sizeof(path), "/v1/jobs/%lld", job);
  double t0 = sd_cli_now(), told = t0;
  for (;;) {
    json_t *j = rc_get(cl, path);
    if (!j) return SD_EXIT_FAIL;
    const char *st = json_string_value(json_object_get(j, "state"));
    double now = sd_cli_now();
    if (st && (strcmp(st, last) || now - told >= 10)) {
      fprintf(stderr, "segmentd recluster: job %lld %s%s (%.1f s)\n", job,
              strcmp(st, last) ? "" : "still ", st, now - t0);
      snprintf(last, sizeof(last), "%s", st);
      told = now;
    }
    int end = st && (!strcmp(st, "done") || !strcmp(st, "failed"));
    if (end && !strcmp(st, "done")) {
      json_dumpf(json_object_get(j, "model"), stdout, JSON_INDENT(2));
      putchar('\n');
    } else if (end || !st) {
      json_t *e = json_object_get(j, "error");
      sd_cli_err("recluster", "job %lld failed: %s: %s", job,
                 jstr(e, "code", "?"), jstr(e, "message", "no state in the answer"));
    }
    json_decref(j);
    if (end || !st) return end && !strcmp(last, "done") ? SD_EXIT_OK : SD_EXIT_FAIL;
    pause_ms(o->poll_ms);
  }
}

/* POSTs the request; the job id, or -1 after a message. */
static long long submit(sd_cli_client *cl, const recluster_opts *o,
                        const char *space) {
  json_t *b = json_pack("{s:s}", "algorithm", o->algorithm);
  if (o->k) json_object_set_new(b, "k", json_integer(o->k));
  char *body = json_dumps(b, JSON_COMPACT), path[128];
  json_decref(b);
  snprintf(path, sizeof(path), "/v1/spaces/%s/recluster", space);
  sd_cli_resp r;
  long long job = -1;
  int ok = body && sd_cli_call(cl, "POST", path, body, strlen(body), 0, &r) == 0;
  json_t *a = ok && r.status == 202 ? json_loads(r.body, 0, NULL) : NULL;
  if (json_is_integer(json_object_get(a, "job_id")))
    job = json_integer_value(json_object_get(a, "job_id"));
  if (job < 0) {
    char why[600] = "out of memory";
    if (body) sd_cli_describe(&r, why, sizeof(why));
    sd_cli_err("recluster", "POST %s failed: %s", path, why);
  } else if (o->no_wait) {
    json_dumpf(a, stdout, JSON_COMPACT);
    putchar('\n');
  }
  json_decref(a);
  if (body) sd_cli_resp_free(&r);
  free(body);
  return job;
}

int sd_cli_recluster(int argc, char **argv) {
  recluster_opts o;
  memset(&o, 0, sizeof(o));
  char *pos[1];
  int np, rc = sd_cli_parse(&recluster_cmd, &o, argc, argv, pos, 1, &np);
  if (rc) return rc == SD_CLI_HELP ? SD_EXIT_OK : SD_EXIT_USAGE;
  if (strcmp(pos[0], "intents") && strcmp(pos[0], "segments"))
    return sd_cli_err("recluster", "the space is intents or segments, not "
                      "\"%s\"", pos[0]), SD_EXIT_USAGE;
  if (strcmp(o.algorithm, "kmeans") && strcmp(o.algorithm, "hierarchical") &&
      strcmp(o.algorithm, "density"))
    return sd_cli_err("recluster", "--algorithm must be kmeans, hierarchical "
                      "or density"), SD_EXIT_USAGE;
  sd_cli_client *cl;
  char msg[600];
  if ((rc = sd_cli_client_new(&o.http, "recluster", &cl, msg, sizeof(msg))))
    return sd_cli_err("recluster", "%s", msg), rc;
  long long job = submit(cl, &o, pos[0]);
  rc = job < 0 ? SD_EXIT_FAIL : o.no_wait ? SD_EXIT_OK : follow(cl, &o, job);
  sd_cli_client_free(cl);
  return rc;
}
