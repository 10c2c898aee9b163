/*
 * harness.h -- black-box integration harness of segmentd.
 *
 * Starts the real server binary ($SD_BIN) on an ephemeral loopback port with
 * a fresh temporary database, talks HTTP to it through libcurl, and parses
 * JSON answers with jansson. Each test program owns its servers: start,
 * kill -9, restart on the same database, stop gracefully, free.
 *
 * Ownership: srv_start() returns a server that srv_free() releases (it kills
 * a still-running process and removes the temporary directory). Every
 * http_resp must be released with http_resp_free(); every json_t returned
 * is a new reference for the caller to json_decref(). Each thread that
 * makes requests calls http_thread_done() before it exits.
 *
 * Servers must be started, restarted and stopped from the main thread: the
 * child gets PR_SET_PDEATHSIG, which fires when the forking *thread* exits.
 */
#ifndef SD_TEST_HARNESS_H
#define SD_TEST_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

/* A running (or killed) segmentd child process and its temporary directory. */
typedef struct sd_server {
  char dir[256];       /* temporary directory, removed by srv_free() */
  char db[300];        /* <dir>/segmentd.db */
  char port_file[300]; /* <dir>/port */
  char log[300];       /* <dir>/server.log (stderr and stdout of the child) */
  char **argv;         /* NULL-terminated argv used for every (re)start */
  pid_t pid;           /* 0 when not running */
  int port;            /* port read from the port file */
  char bearer[600];    /* when set: "Authorization: Bearer <bearer>" on
                          every http_req() and the helpers built on it */
} sd_server;

/* One HTTP answer. status is 0 when the transfer failed (error in errbuf).
 * body is always a NUL-terminated malloc'd string (empty on failure). */
typedef struct http_resp {
  long status;
  char *body;
  size_t len;
  char content_type[128];
  char allow[128];
  char retry_after[32];
  char connection[32];
  char request_id[256]; /* X-Request-Id */
  char server_timing[64]; /* Server-Timing */
  char errbuf[256];
  char www_authenticate[256];
} http_resp;

/* Starts $SD_BIN serve with the standard arguments plus extra_args (a
 * NULL-terminated list, or NULL) and waits up to 30 s (times
 * harness_timeout_scale()) until GET /readyz is 200. Under SD_VALGRIND the
 * server runs under valgrind memcheck (harness_memcheck.c). Returns NULL
 * (after printing the server log) on any failure. */
sd_server *srv_start(const char *const *extra_args);

/* Starts the server again with the same arguments and database. It must
 * not be running (call srv_kill9() or srv_stop() first). 0 on success. */
int srv_restart(sd_server *srv);

/* Replaces the extra arguments of the next (re)starts; the server must
 * be stopped. 0 on success. */
int srv_set_args(sd_server *srv, const char *const *extra_args);

/* SIGKILL and reap. No-op when not running. */
void srv_kill9(sd_server *srv);

/* SIGTERM, then waits up to 30 s (times harness_timeout_scale()) for the
 * exit; under valgrind, memcheck errors give MEMCHECK_ERROR_EXIT and fail
 * the test program (memcheck_check_exit()). Returns the exit status
 * (0 on a graceful exit), 128+signal if killed by a signal, -1 on timeout
 * (the process is then SIGKILLed) or when it was not running. */
int srv_stop(sd_server *srv);

/* Kills a still-running child (under valgrind: stops it with srv_stop(),
 * so that memcheck reports), removes the temporary directory (kept when
 * SD_KEEP_TMP is set in the environment) and frees srv. NULL is a no-op. */
void srv_free(sd_server *srv);

/* The child side of a fork that runs a helper process: dies with its
 * parent thread (PR_SET_PDEATHSIG), stdout and stderr appended to log,
 * stdin from /dev/null, then execv(argv[0], argv); never returns. Only
 * async-signal-safe calls. */
void harness_exec_child(const char *log, char *const *argv);

/* Prints the last `tail` bytes of the file at path to stderr, between a
 * header and an "end of <what> log" line. */
void harness_dump_tail(const char *path, long tail, const char *what);

/* ---- valgrind memcheck (harness_memcheck.c) ---- */

/* Exit status of a server that memcheck found errors in. */
#define MEMCHECK_ERROR_EXIT 97

/* The valgrind command line put before $SD_BIN (n == 0: none). */
typedef struct memcheck_prefix {
  const char *argv[12]; /* borrowed, or pointing into the buffers below */
  size_t n;
  char exit_opt[32];
  char log_opt[320];
  char supp_opt[1100];
} memcheck_prefix;

/* $SD_VALGRIND (the valgrind executable) when servers run under memcheck,
 * else NULL. */
const char *memcheck_valgrind(void);

/* Factor for the harness's timeouts: $SD_TIMEOUT_SCALE when >= 1, else 30
 * under valgrind, else 1. */
double harness_timeout_scale(void);

/* Fills p with the valgrind prefix for a server whose temporary directory
 * is dir (p->n = 0 when SD_VALGRIND is unset). -1 when SD_VALGRIND is not
 * an executable. */
int memcheck_prefix_init(memcheck_prefix *p, const char *dir);

/* Given the exit status rc of server process pid: under valgrind and when
 * rc != 0, prints memcheck's report; when rc is MEMCHECK_ERROR_EXIT, also
 * makes the test program exit 1 at its end and returns 1; else 0. */
int memcheck_check_exit(const sd_server *srv, pid_t pid, int rc);

/* Prints the last ~4 KiB of the server log to stderr, with a header. */
void srv_dump_log(const sd_server *srv);

/* One request. method is "GET", "POST", "DELETE", ...; path starts with
 * '/'. content_type may be NULL (then no Content-Type header is sent);
 * body may be NULL (len ignored). Timeout 30 s, keep-alive per thread. */
http_resp http_req(sd_server *srv, const char *method, const char *path,
                   const char *content_type, const char *body, size_t len);

/* http_req() with extra request header lines ("Name: value", a
 * NULL-terminated list) instead of srv->bearer's Authorization. */
http_resp http_req_hdrs(sd_server *srv, const char *method, const char *path,
                        const char *content_type, const char *body, size_t len,
                        const char *const *headers);
/* http_req() (with srv->bearer's Authorization) and one extra request
 * header line ("Name: value"; NULL: none). */
http_resp http_req_hdr(sd_server *srv, const char *method, const char *path,
                       const char *content_type, const char *body, size_t len,
                       const char *header);

/* http_req() with a NUL-terminated body sent as application/json (or NULL
 * for none); stores the status in *status and returns the parsed
 * body, or NULL when the body is not JSON. */
json_t *http_json(sd_server *srv, const char *method, const char *path,
                  const char *body, long *status);

/* Like http_json() with a json_t body (not stolen; may be NULL). */
json_t *http_json_obj(sd_server *srv, const char *method, const char *path,
                      const json_t *body, long *status);

/* quiet != 0: the calling thread's http_json() (and the helpers built on
 * it) no longer print failed transfers (status 0), which a crash test
 * expects by the thousand; other non-JSON answers are still printed. */
void http_set_quiet(int quiet);

/* Releases the body of r. Accepts NULL. */
void http_resp_free(http_resp *r);

/* Releases the calling thread's CURL handle. */
void http_thread_done(void);

/* 1 when body is {"error": {"code": code, "message": "...", "details": [...]}}
 * with a non-empty message and well-formed details (each an object with a
 * string field and problem, and an integer index when present); details may
 * be absent (item-level problems are checked with error_has_detail()).
 * Prints the reason to stderr and returns 0 otherwise. */
int check_error_body(const json_t *body, const char *code);

/* 1 when the error body has a detail with this index (-1: any) whose field
 * equals field (NULL: any). */
int error_has_detail(const json_t *body, long long index, const char *field);

/* The integer at a dotted path ("a.b.c") of obj, or dflt when missing or
 * not an integer. */
long long json_path_int(const json_t *obj, const char *path, long long dflt);

/* The value at a dotted path of obj (borrowed), or NULL. */
json_t *json_path(const json_t *obj, const char *path);

/* Runs a shell command (stderr included only if cmd redirects it), keeps
 * up to cap-1 bytes of its output in out; returns its exit status, 128+sig
 * when killed, -1 when it could not run. */
int run_capture(const char *cmd, char *out, size_t cap);

/* Monotonic seconds. */
double now_s(void);

/* Sleeps ms milliseconds. */
void sleep_ms(long ms);

/* ---- segmentd-specific helpers (harness_sd.c) ---- */

/* POSTs {"<kind>": items} to /v1/<kind> (kind "events" or "texts"; items is
 * borrowed). Returns the HTTP status; on 200 stores the counts (when the
 * pointers are not NULL), otherwise sets them to -1. */
long ingest(sd_server *srv, const char *kind, const json_t *items,
            long long *accepted, long long *duplicates);

/* The stored count of `kind` ("events" or "texts") in a GET /v1/users/{id}
 * answer: "counts.<kind>", "<kind>" (an integer), "<kind>_count",
 * "<singular>_count" or "n_<kind>"; -1 when none is present. */
long long user_count(const json_t *user, const char *kind);

/* The counts of one user: 0 on 200 (counts set, -1 when absent), else the
 * HTTP status (404 for an unknown user). */
long get_user_counts(sd_server *srv, const char *user_id, long long *events,
                     long long *texts);

/* The entry of GET /v1/spaces named `space` (new reference) or NULL. */
json_t *get_space(sd_server *srv, const char *space);

/* The value of one series ("name", or "name{labels}" as printed) in a
 * /metrics text: -1 when absent or unparsable. */
double metrics_series(const char *text, const char *series);

/* GET /metrics and the value of one series in it: -1 when absent or the
 * scrape failed. */
double http_metric(sd_server *srv, const char *series);

/* The "points" of space in GET /v1/spaces, or -1. */
long long space_points(sd_server *srv, const char *space);

/* 1 when a "model_version" value names a model: an integer >= 1 or a
 * non-empty string (0 or null mean "no model yet", api/openapi.yaml). */
int model_present(const json_t *model_version);

/* Polls GET /v1/spaces/<space>/clusters until it is 200 with a non-empty
 * "clusters" array and model_present(model_version); 0 then, -1 on
 * timeout (timeout_s times harness_timeout_scale()). */
int wait_model(sd_server *srv, const char *space, double timeout_s);
/* wait_model, then until the space is not re-assigning its entities (the
 * same timeout again); 0 or -1. */
int wait_space_settled(sd_server *srv, const char *space, double timeout_s);

/* GET /v1/spaces/<space>/assignments as a JSON array with one element per
 * NDJSON line (JSON null for a line that does not parse; *bad_lines counts
 * them). *status gets the HTTP status, ctype (cap bytes) the Content-Type.
 * Returns NULL when the request failed. */
json_t *get_assignments(sd_server *srv, const char *space, long *status,
                        char *ctype, size_t cap, int *bad_lines);

/* The lines of get_assignments() counted per "id" ({id: count}, a new
 * reference), or NULL when the request failed. *status as there; *bad
 * counts the lines that do not parse or have no string "id". */
json_t *assigned_id_counts(sd_server *srv, const char *space, long *status,
                           int *bad);

/* ---- crash-test items (harness_sd.c) ---- */

/* A texts item {"text_id": id, "user_id": uid, "text"} about topic i % 3
 * (refunds, weather, football), varied by i. A new reference. */
json_t *crash_text(const char *id, const char *uid, int i);

/* An events item {"event_id": id, "user_id": uid, "type": "view"|"buy",
 * "ts"} (one minute apart by i from 2025-11-27). A new reference. */
json_t *crash_event(const char *id, const char *uid, int i);

/* ---- planted topics (harness_sd.c) ---- */

/* Three well separated topics of 8 words each (money, weather, football). */
#define PLANTED_TOPICS 3
extern const char *const planted_words[PLANTED_TOPICS][8];

/* A 6-word text about topic t, varied deterministically by seed. */
void planted_text(int t, unsigned seed, char *out, size_t cap);

/* Items for POST /v1/texts: text ids "<prefix><i>" for i in [from,
 * from + n), topic i % 3; with a user_prefix, user "<user_prefix><i %
 * users>" (users 0 = one user per text). A new reference. */
json_t *planted_texts(const char *prefix, int from, int n,
                      const char *user_prefix, int users);

/* n users "<prefix><i>", each with one planted text (text id
 * "<prefix><i>") and one event "e<i>" of type types[i % n_types], sent as
 * one texts batch and one events batch. The status of the first batch that
 * was not 200, or 200. */
long ingest_planted_users(sd_server *srv, const char *prefix, int n,
                          const char *const *types, int n_types);

/* A new JSON string of `n` bytes: prefix followed by 'x' padding. */
json_t *json_padded(const char *prefix, size_t n);

#endif
