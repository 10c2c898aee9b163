/*
 * test_cli.c -- the client subcommands against a real server: `segmentd
 * import` (bad lines reported by line number, --max-errors, kill -9 of the
 * importer mid-way and a resumed run storing every line exactly once),
 * `segmentd export` (the same rows as the API), `segmentd migrate` (a
 * fresh file gets the schema; refused beside a running server), `segmentd
 * version`, exit status 2 for usage errors, and the client's retries: a
 * receiver answering 503 with Retry-After is waited for, and the API key
 * goes out as a bearer token.
 */
#include "check.h"
#include "harness.h"
#include "harness_receiver.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_LINES 12000 /* good lines: half texts, half events */
#define N_USERS 200
#define BAD_AT 5000   /* first bad line (1-based line numbers) */

static const char *bin;
static char dir[300], input[400], url[64];
static json_t *text_ids; /* id -> 1 for every good text line */
static long long n_events;

/* Writes N_LINES good lines and 3 bad ones; returns the bad line numbers. */
static void write_input(long long bad[3]) {
  FILE *f = fopen(input, "w");
  long long line = 0;
  int nb = 0;
  text_ids = json_object();
  for (int i = 0; i < N_LINES; i++) {
    if (i == BAD_AT || i == BAD_AT + 10 || i == BAD_AT + 20) {
      const char *b = nb == 0 ? "{\"event_id\": \"x\", truncated\n"
                      : nb == 1 ? "{\"event_id\":\"no-user\",\"type\":\"view\"}\n"
                                : "[\"an array\"]\n";
      fputs(b, f);
      bad[nb++] = ++line;
    }
    char text[128];
    planted_text(i % 3, (unsigned)i, text, sizeof(text));
    if (i % 2 == 0) {
      fprintf(f, "{\"text_id\":\"t%d\",\"user_id\":\"u%d\",\"text\":\"%s\"}\n",
              i, i % N_USERS, text);
      char id[32];
      snprintf(id, sizeof(id), "t%d", i);
      json_object_set_new(text_ids, id, json_integer(0));
    } else {
      fprintf(f, "{\"event_id\":\"e%d\",\"user_id\":\"u%d\",\"type\":\"t%d\","
              "\"ts\":%lld}\n", i, i % N_USERS, i % 3, 1764237600000LL + i);
      n_events++;
    }
    line++;
    if (i % 1000 == 999) fputs("\n", f), line++; /* blank lines are skipped */
  }
  fclose(f);
}

/* Runs `segmentd <args>` with the server's URL; returns the exit status,
 * stdout+stderr in out. */
static int cli(const char *args, char *out, size_t cap) {
  char cmd[2048];
  snprintf(cmd, sizeof(cmd), "SEGMENTD_URL=%s %s %s%s", url, bin, args,
           strstr(args, "2>") ? "" : " 2>&1");
  return run_capture(cmd, out, cap);
}

static long long progress_offset(const char *path) {
  json_t *p = json_load_file(path, 0, NULL);
  long long off = json_path_int(p, "offset", -1);
  json_decref(p);
  return off;
}

/* Starts an import in the background, kills it with SIGKILL once it has
 * recorded progress; 1 when it was killed mid-way. */
static int import_killed(const char *progress) {
  char log[400];
  snprintf(log, sizeof(log), "%s/import1.log", dir);
  char *argv[] = {(char *)bin, "import", "--batch", "40", "--max-errors", "5",
                  "--url", url, input, NULL};
  pid_t pid = fork();
  if (pid == 0) harness_exec_child(log, argv);
  struct stat st;
  stat(input, &st);
  long long off = -1;
  double t0 = now_s();
  while (now_s() - t0 < 120 && (off = progress_offset(progress)) <= 0)
    sleep_ms(5);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  off = progress_offset(progress);
  fprintf(stderr, "importer killed at byte %lld of %lld\n", off,
          (long long)st.st_size);
  return WIFSIGNALED(status) && off > 0 && off < st.st_size;
}

static void check_import(sd_server *srv, const long long bad[3]) {
  char progress[420], out[65536];
  snprintf(progress, sizeof(progress), "%s.progress", input);
  CHECK(import_killed(progress));
  /* max-errors 1 < 3 bad lines: the resumed run stops at the second */
  char args[1024], both[2 * 65536];
  snprintf(args, sizeof(args), "import --batch 500 --max-errors 1 %s", input);
  int rc = cli(args, both, sizeof(out));
  CHECK_INT(rc, 1);
  CHECK(strstr(both, "more than 1 bad line") != NULL);
  snprintf(args, sizeof(args), "import --batch 500 --max-errors 5 "
           "--progress-interval 1 %s", input);
  rc = cli(args, out, sizeof(out));
  CHECK_INT(rc, 0);
  fprintf(stderr, "--- resumed imports ---\n%s%s", both, out);
  CHECK(strstr(both, "resuming") != NULL && strstr(out, "resuming") != NULL);
  strcat(both, out);
  for (int i = 0; i < 3; i++) { /* each reported by its line number */
    char want[32];
    snprintf(want, sizeof(want), "line %lld: ", bad[i]);
    CHECK(strstr(both, want) != NULL);
  }
  CHECK(strstr(out, "3 bad lines skipped") != NULL);
  CHECK(strstr(out, "lines/s; ") != NULL); /* plain progress lines (no tty) */
  /* every good line stored exactly once (read once the model the import
     caused is in place: under valgrind its fit starves the stream) */
  CHECK_INT(wait_space_settled(srv, "intents", 120), 0);
  long st;
  int badl = 0;
  json_t *a = get_assignments(srv, "intents", &st, NULL, 0, &badl);
  CHECK_INT(st, 200);
  CHECK_INT(json_array_size(a), json_object_size(text_ids));
  json_t *seen = json_object(), *row;
  size_t i;
  json_array_foreach(a, i, row) {
    const char *id = json_string_value(json_object_get(row, "id"));
    CHECK(id && json_object_get(text_ids, id) && !json_object_get(seen, id));
    if (id) json_object_set_new(seen, id, json_true());
  }
  json_decref(seen);
  json_decref(a);
  long long events = 0, e, t;
  for (int u = 0; u < N_USERS; u++) {
    char id[16];
    snprintf(id, sizeof(id), "u%d", u);
    if (get_user_counts(srv, id, &e, &t) == 0) events += e;
  }
  CHECK_INT(events, n_events);
  /* a re-run finds nothing new */
  rc = cli(args, out, sizeof(out));
  CHECK_INT(rc, 0);
  CHECK(strstr(out, ": 0 lines") != NULL);
  /* the progress file belongs to this server: another one is refused */
  snprintf(args, sizeof(args), "import --url http://127.0.0.1:1 %s", input);
  CHECK_INT(cli(args, out, sizeof(out)), 1);
  CHECK(strstr(out, "--restart") != NULL);
}

/* On a terminal (script(1) gives one) the progress is a bar with the
 * rate and the ETA, redrawn in place. */
static void check_tty_progress(void) {
  char args[4096], out[16384];
  snprintf(args, sizeof(args), "head -n 300 %s > %s/tty.ndjson && script -qec "
           "\"SEGMENTD_URL=%s %s import --batch 50 %s/tty.ndjson\" /dev/null",
           input, dir, url, bin, dir);
  CHECK_INT(run_capture(args, out, sizeof(out)), 0);
  CHECK(strstr(out, "\r\033[K[") != NULL);
  CHECK(strstr(out, "lines/s  ETA ") != NULL);
  CHECK(strstr(out, "100.0%") != NULL);
}

/* export --space intents (NDJSON, then CSV) against the API. */
static void check_export(sd_server *srv) {
  char args[1024], out[16384], path[400];
  CHECK_INT(wait_model(srv, "intents", 60), 0);
  /* a re-cluster through the CLI, then a quiet server to compare with */
  CHECK_INT(cli("recluster --k 3 --poll-ms 100 intents 2>/dev/null", out,
                sizeof(out)), 0);
  json_t *model = json_loads(out, 0, NULL);
  CHECK_INT(json_path_int(model, "k", -1), 3);
  CHECK(json_path_int(model, "model_version", 0) >= 2);
  json_decref(model);
  double t0 = now_s();
  json_t *sp = NULL;
  while (now_s() - t0 < 60 && (sp = get_space(srv, "intents")) &&
         json_is_true(json_object_get(sp, "reassigning"))) {
    json_decref(sp);
    sp = NULL;
    sleep_ms(100);
  }
  json_decref(sp);
  snprintf(path, sizeof(path), "%s/intents.ndjson", dir);
  snprintf(args, sizeof(args), "export --space intents -o %s", path);
  CHECK_INT(cli(args, out, sizeof(out)), 0);
  long st;
  int badl = 0;
  json_t *api = get_assignments(srv, "intents", &st, NULL, 0, &badl);
  json_t *cl = http_json(srv, "GET", "/v1/spaces/intents/clusters", NULL, &st);
  FILE *f = fopen(path, "r");
  char line[4096];
  size_t n = 0;
  while (f && fgets(line, sizeof(line), f)) {
    json_t *r = json_loads(line, 0, NULL), *x = json_array_get(api, n++);
    CHECK_STR(json_string_value(json_object_get(r, "id")),
              json_string_value(json_object_get(x, "id")));
    CHECK(json_equal(json_object_get(r, "cluster"), json_object_get(x, "cluster")));
    CHECK(json_is_string(json_object_get(r, "user_id")));
    json_t *c, *label = NULL;
    size_t j;
    json_array_foreach(json_object_get(cl, "clusters"), j, c)
      if (json_equal(json_object_get(c, "id"), json_object_get(r, "cluster")))
        label = json_object_get(c, "label");
    CHECK(label && json_equal(label, json_object_get(r, "label")));
    json_decref(r);
  }
  if (f) fclose(f);
  CHECK_INT(n, json_array_size(api));
  snprintf(args, sizeof(args), "export --space intents --format csv -o %s/i.csv "
           "&& wc -l < %s/i.csv", dir, dir);
  CHECK_INT(cli(args, out, sizeof(out)), 0);
  CHECK_INT(atoll(out), (long long)n + 1); /* + header */
  json_decref(api);
  json_decref(cl);
}

static int user_version(const char *db) {
  sqlite3 *h;
  sqlite3_stmt *st;
  int v = -1;
  if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(h, "SELECT (SELECT user_version FROM pragma_user_version)"
                         " * (SELECT count(*) FROM sqlite_master WHERE name="
                         "'texts')", -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(h);
  return v;
}

static void check_migrate(sd_server *srv) {
  char args[1024], out[8192], db[400];
  snprintf(db, sizeof(db), "%s/fresh.db", dir);
  snprintf(args, sizeof(args), "migrate --dry-run --db %s", db);
  CHECK_INT(cli(args, out, sizeof(out)), 0);
  CHECK(strstr(out, "pending 0001_init.sql") != NULL);
  CHECK(access(db, F_OK) != 0); /* a dry run creates nothing */
  snprintf(args, sizeof(args), "migrate --db %s", db);
  CHECK_INT(cli(args, out, sizeof(out)), 0);
  CHECK(strstr(out, "applied 0001_init.sql") != NULL);
  CHECK(user_version(db) >= 11);
  snprintf(args, sizeof(args), "migrate --dry-run --db %s", db);
  CHECK_INT(cli(args, out, sizeof(out)), 0);
  CHECK(strstr(out, ", 0 pending") != NULL);
  snprintf(args, sizeof(args), "migrate --db %s", srv->db); /* server's lock */
  CHECK_INT(cli(args, out, sizeof(out)), 1);
  CHECK(strstr(out, "in use") != NULL);
}

static void check_misc(void) {
  static char out[262144];
  CHECK_INT(cli("version", out, sizeof(out)), 0);
  CHECK(strstr(out, sqlite3_libversion()) != NULL);
  CHECK(strstr(out, "libmicrohttpd") && strstr(out, "OpenBLAS"));
  CHECK_INT(cli("version --json", out, sizeof(out)), 0);
  json_t *v = json_loads(out, 0, NULL);
  CHECK_STR(json_string_value(json_object_get(v, "sqlite")), sqlite3_libversion());
  json_decref(v);
  static const char *const usage[] = {
      "frobnicate", "import", "import --db x.db f.ndjson", "import --kind x f",
      "export --format xml", "export --bogus", "recluster", "recluster nope",
      "migrate extra-arg", "import --batch 0 f", "version --json=1"};
  for (size_t i = 0; i < sizeof(usage) / sizeof(*usage); i++) {
    int rc = cli(usage[i], out, sizeof(out));
    if (rc != 2) fprintf(stderr, "`segmentd %s` exited %d\n", usage[i], rc);
    CHECK_INT(rc, 2);
  }
  static const char *const helps[] = {"--help", "import --help", "export --help",
                                      "migrate --help", "recluster --help",
                                      "version --help", "serve --help",
                                      "reembed --help"};
  for (size_t i = 0; i < sizeof(helps) / sizeof(*helps); i++) {
    CHECK_INT(cli(helps[i], out, sizeof(out)), 0);
    CHECK(i == 0 ? strstr(out, "recluster") != NULL
                 : strstr(out, "SYNOPSIS") && strstr(out, "EXIT STATUS") &&
                       strstr(out, "EXAMPLES"));
  }
}

/* An importer against a receiver that answers 503 "Retry-After: 1" for a
 * while: it waits as told, then succeeds, sending the key as a bearer. */
static void check_retry(void) {
  rcv *r = rcv_start();
  CHECK(r != NULL);
  if (!r) return;
  char path[400], rurl[128], args[1024], out[8192];
  snprintf(path, sizeof(path), "%s/small.ndjson", dir);
  FILE *f = fopen(path, "w");
  fputs("{\"event_id\":\"r1\",\"user_id\":\"u\",\"type\":\"view\"}\n", f);
  fclose(f);
  rcv_url(r, "", rurl, sizeof(rurl));
  rcv_set_unavailable(r, 1);
  snprintf(args, sizeof(args), "SEGMENTD_API_KEY=k-123 %s import --url %s "
           "--retries 10 %s 2>&1", bin, rurl, path);
  FILE *p = popen(args, "r");
  sleep_ms(2500);
  rcv_set_unavailable(r, 0);
  size_t n = p ? fread(out, 1, sizeof(out) - 1, p) : 0;
  out[n] = 0;
  CHECK(p && pclose(p) == 0);
  CHECK(strstr(out, "HTTP 503") && strstr(out, "retrying in 1.0 s"));
  rcv_req *q = NULL;
  long nq = rcv_copy(r, 0, &q);
  CHECK(nq >= 3);
  for (long i = 0; i < nq; i++) {
    CHECK_STR(q[i].path, "/v1/events");
    CHECK_STR(rcv_header(&q[i], "authorization"), "Bearer k-123");
    if (i > 0) /* Retry-After: 1 honoured */
      CHECK(q[i].t_mono - q[i - 1].t_mono > 0.9);
  }
  CHECK(nq > 0 && q[nq - 1].status == 200 && q[0].status == 503);
  rcv_copy_free(q, nq);
  rcv_stop(r);
}

int main(void) {
  bin = getenv("SD_BIN");
  if (!bin) return fprintf(stderr, "SD_BIN not set\n"), 1;
  sd_server *srv = srv_start(
      (const char *const[]){"--train-min", "300", "--recluster-interval", "0",
                            NULL});
  if (!srv) return 1;
  snprintf(dir, sizeof(dir), "%s", srv->dir);
  snprintf(input, sizeof(input), "%s/in.ndjson", dir);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv->port);
  long long bad[3];
  write_input(bad);
  check_misc();
  check_retry();
  check_import(srv, bad);
  check_tty_progress();
  check_export(srv);
  check_migrate(srv);
  json_decref(text_ids);
  http_thread_done();
  srv_free(srv);
  return check_done("test_cli");
}
