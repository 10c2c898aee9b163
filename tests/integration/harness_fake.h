/*
 * harness_fake.h -- the fake OpenAI embeddings server in integration tests.
 *
 * Owns the test-side contract of tests/fake_embedder/fake_embedder.c:
 * fake_start() fork/execs "$SD_FAKE_EMBEDDER" on an ephemeral loopback port
 * (port file in a fresh temporary directory, PR_SET_PDEATHSIG like
 * harness.c), waits for GET /healthz, and returns a handle whose url is the
 * base URL to give segmentd ("http://127.0.0.1:<port>"; the client appends
 * /v1/embeddings). fake_faults() arms fault injection, fake_stats() reads
 * the counters, fake_embedding() computes the exact vector the fake answers.
 *
 * Fault modes (POST /_faults {"mode": M, "count": N | "rate": p, "seed": s,
 * "retry_after": sec, "delay_ms": ms}; count defaults to -1 = until cleared,
 * {"mode":"ok"} clears; faults hit subsequent /v1/embeddings requests):
 *   ok              normal answers
 *   slow            sleeps delay_ms (default 3000), then answers correctly
 *   429, 503        that status, Retry-After: retry_after (default 1), an
 *                   OpenAI error body
 *   500             status 500, OpenAI error body
 *   malformed       200 with the correct body truncated to half its length
 *   wrong_dim       200, item 0 has dim-1 values
 *   nan             200, item 0's first value is 1e39 (not a finite float)
 *   count_mismatch  200 with the last item missing
 *   drop            the connection is closed without any response
 *   bad_request     400 invalid_request_error for the whole batch
 *   poison          400 when any input contains "POISON", else normal
 *
 * GET /_stats: {"requests", "ok" (correct 200s, slow included), "faulted"
 * (injected faults; poison only when it rejected), "bad" (genuinely invalid
 * requests, 401), "texts" (texts in correct 200s), "inflight",
 * "max_inflight", "fault" (armed mode), "per_text": {text: n} (only with
 * --track in extra_args)}.
 *
 * Like servers, fakes are started and stopped from the main thread.
 * Ownership: fake_stop() frees the handle; fake_stats() returns a new
 * reference.
 */
#ifndef SD_TEST_HARNESS_FAKE_H
#define SD_TEST_HARNESS_FAKE_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

typedef struct fake_emb {
  pid_t pid;           /* 0 when not running */
  int port;            /* read from the port file */
  char dir[256];       /* temporary directory, removed by fake_stop() */
  char port_file[300]; /* <dir>/port */
  char log[300];       /* <dir>/fake.log (stdout and stderr of the child) */
  char url[64];        /* "http://127.0.0.1:<port>" */
} fake_emb;

/* Starts $SD_FAKE_EMBEDDER --port-file <dir>/port --dim dim plus
 * extra_args (NULL-terminated, or NULL; e.g. "--track", "--delay-ms",
 * "20", "--api-key", "k") and waits up to 10 s until GET /healthz is 200.
 * NULL (after printing the log) on failure. */
fake_emb *fake_start(int dim, const char *const *extra_args);

/* SIGTERM, waits up to 10 s (then SIGKILL), removes the directory (kept
 * with SD_KEEP_TMP) and frees f. Returns the exit status (0 on a clean
 * exit), -1 when it had to be killed. NULL is a no-op returning -1. */
int fake_stop(fake_emb *f);

/* POSTs json to /_faults; 0 when answered 200, else -1. */
int fake_faults(fake_emb *f, const char *json);

/* POST /_stats/reset; 0 when answered 200. */
int fake_stats_reset(fake_emb *f);

/* GET /_stats as a new reference, or NULL. */
json_t *fake_stats(fake_emb *f);

/* One request to the fake (path starts with '/'; body sent as
 * application/json when not NULL). Fills *status (0 on a transport error),
 * and retry_after (the Retry-After header, cap bytes, "" when absent) when
 * not NULL. Returns the malloc'd NUL-terminated body ("" on failure). */
char *fake_http(fake_emb *f, const char *method, const char *path,
                const char *body, long *status, char *retry_after,
                size_t cap);

/* The fake's embedding of text[0..len) into out[0..dim) (fake_vec.h). */
void fake_embedding(const char *text, size_t len, int dim, float *out);

/* Prints the tail of the fake's log to stderr. */
void fake_dump_log(const fake_emb *f);

#endif
