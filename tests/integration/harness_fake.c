/*
 * harness_fake.c -- starts, drives and stops the fake embeddings server
 * (tests/fake_embedder) for integration tests.
 *
 * Owns the fake_* half of the harness: a temporary directory, fork/exec of
 * "$SD_FAKE_EMBEDDER" with PR_SET_PDEATHSIG and its log there, bounded
 * polling of the port file and GET /healthz, SIGTERM + reap, and small
 * libcurl requests (a fresh easy handle per call, so a dropped connection
 * never poisons a later request). The contract is in harness_fake.h.
 */
#define _XOPEN_SOURCE 700 /* nftw */

#include "harness_fake.h"

#include "fake_embedder/fake_vec.h"
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <curl/curl.h>

#define FAKE_START_TIMEOUT_S 10.0
#define FAKE_STOP_TIMEOUT_S 10.0
#define FAKE_HTTP_TIMEOUT_S 30L
#define FAKE_LOG_TAIL 4096
#define FAKE_MAX_ARGS 64

void fake_embedding(const char *text, size_t len, int dim, float *out) {
  fake_vec_embed(text, len, dim, out);
}

/* ---- HTTP ---- */

static pthread_once_t fake_curl_once = PTHREAD_ONCE_INIT;

static void fake_curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

typedef struct {
  char *p;
  size_t len, cap;
  char *retry_after;
  size_t ra_cap;
} fake_buf;

static size_t fake_on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  fake_buf *b = ud;
  size_t n = size * nmemb;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
      return 0;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, ptr, n);
  b->len += n;
  b->p[b->len] = '\0';
  return n;
}

static size_t fake_on_header(char *ptr, size_t size, size_t nmemb, void *ud) {
  fake_buf *b = ud;
  size_t n = size * nmemb, k = strlen("retry-after:");
  if (!b->retry_after || n <= k || strncasecmp(ptr, "retry-after:", k) != 0)
    return n;
  const char *v = ptr + k, *end = ptr + n;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
    end--;
  size_t m = (size_t)(end - v) < b->ra_cap - 1 ? (size_t)(end - v)
                                                : b->ra_cap - 1;
  memcpy(b->retry_after, v, m);
  b->retry_after[m] = '\0';
  return n;
}

/* Performs the request on h; the HTTP status, or 0 on a transport error. */
static long fake_perform(CURL *h, const char *url, const char *method,
                         const char *body, fake_buf *b) {
  struct curl_slist *hdrs = curl_slist_append(NULL, "Expect:");
  struct curl_slist *t = hdrs ? curl_slist_append(
                                    hdrs, "Content-Type: application/json")
                              : NULL;
  long status = 0;
  if (t) {
    hdrs = t;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_TIMEOUT, FAKE_HTTP_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fake_on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, fake_on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, b);
    if (body) {
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                       (curl_off_t)strlen(body));
    }
    if (strcmp(method, body ? "POST" : "GET") != 0)
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (curl_easy_perform(h) == CURLE_OK)
      curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  }
  curl_slist_free_all(hdrs);
  return status;
}

char *fake_http(fake_emb *f, const char *method, const char *path,
                const char *body, long *status, char *retry_after,
                size_t cap) {
  fake_buf b = {NULL, 0, 0, cap ? retry_after : NULL, cap};
  char url[2048];
  long st = 0;
  if (b.retry_after)
    b.retry_after[0] = '\0';
  pthread_once(&fake_curl_once, fake_curl_init);
  CURL *h = curl_easy_init();
  if (h && f) {
    snprintf(url, sizeof url, "%s%s", f->url, path);
    st = fake_perform(h, url, method, body, &b);
  }
  if (h)
    curl_easy_cleanup(h);
  if (status)
    *status = st;
  if (!b.p)
    b.p = calloc(1, 1);
  if (!b.p)
    abort(); /* out of memory in a test */
  return b.p;
}

int fake_faults(fake_emb *f, const char *json) {
  long st = 0;
  char *body = fake_http(f, "POST", "/_faults", json, &st, NULL, 0);
  if (st != 200)
    fprintf(stderr, "harness_fake: /_faults %s -> %ld %s\n", json, st, body);
  free(body);
  return st == 200 ? 0 : -1;
}

int fake_stats_reset(fake_emb *f) {
  long st = 0;
  free(fake_http(f, "POST", "/_stats/reset", "{}", &st, NULL, 0));
  return st == 200 ? 0 : -1;
}

json_t *fake_stats(fake_emb *f) {
  long st = 0;
  char *body = fake_http(f, "GET", "/_stats", NULL, &st, NULL, 0);
  json_t *j = st == 200 ? json_loads(body, 0, NULL) : NULL;
  if (!j)
    fprintf(stderr, "harness_fake: /_stats -> %ld %.200s\n", st, body);
  free(body);
  return j;
}

/* ---- process ---- */

void fake_dump_log(const fake_emb *f) {
  if (f)
    harness_dump_tail(f->log, FAKE_LOG_TAIL, "fake_embedder");
}


/* Reaps the child if it has exited; 1 when it is gone. */
static int fake_reaped(fake_emb *f, int *status) {
  int st = 0;
  pid_t r = waitpid(f->pid, &st, WNOHANG);
  if (r == 0 || (r < 0 && errno == EINTR))
    return 0;
  if (status)
    *status = st;
  f->pid = 0;
  return 1;
}

static void fake_kill9(fake_emb *f) {
  if (f->pid <= 0)
    return;
  kill(f->pid, SIGKILL);
  int st;
  while (waitpid(f->pid, &st, 0) < 0 && errno == EINTR) {
  }
  f->pid = 0;
}

static int fake_read_port(const fake_emb *f) {
  FILE *fp = fopen(f->port_file, "r");
  int port = 0;
  if (!fp)
    return 0;
  if (fscanf(fp, "%d", &port) != 1 || port <= 0 || port > 65535)
    port = 0;
  fclose(fp);
  return port;
}

/* Waits for the port file, then for GET /healthz == 200. */
static int fake_wait_ready(fake_emb *f) {
  double deadline = now_s() + FAKE_START_TIMEOUT_S;
  while (now_s() < deadline) {
    int st = 0;
    if (fake_reaped(f, &st)) {
      fprintf(stderr, "harness_fake: fake exited early (status %d)\n", st);
      return -1;
    }
    if (!f->port && (f->port = fake_read_port(f)) > 0)
      snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", f->port);
    long status = 0;
    if (f->port)
      free(fake_http(f, "GET", "/healthz", NULL, &status, NULL, 0));
    if (status == 200)
      return 0;
    sleep_ms(20);
  }
  fprintf(stderr, "harness_fake: fake not ready in %.0f s\n",
          FAKE_START_TIMEOUT_S);
  return -1;
}

/* Builds argv in argv[0..FAKE_MAX_ARGS) (strings borrowed); -1 if too long. */
static int fake_argv(const fake_emb *f, const char *bin, const char *dim,
                     const char *const *extra, const char **argv) {
  const char *base[] = {bin, "--port-file", f->port_file, "--listen",
                        "127.0.0.1:0", "--dim", dim};
  size_t n = 0, nb = sizeof base / sizeof base[0];
  for (size_t i = 0; i < nb; i++)
    argv[n++] = base[i];
  for (size_t i = 0; extra && extra[i]; i++) {
    if (n + 1 >= FAKE_MAX_ARGS)
      return -1;
    argv[n++] = extra[i];
  }
  argv[n] = NULL;
  return 0;
}

static int fake_make_dir(fake_emb *f) {
  const char *tmp = getenv("TMPDIR");
  if (!tmp || !*tmp)
    tmp = "/tmp";
  int n = snprintf(f->dir, sizeof f->dir, "%s/sd-fake-XXXXXX", tmp);
  if (n < 0 || (size_t)n >= sizeof f->dir || !mkdtemp(f->dir)) {
    fprintf(stderr, "harness_fake: mkdtemp %s: %s\n", f->dir, strerror(errno));
    f->dir[0] = '\0';
    return -1;
  }
  snprintf(f->port_file, sizeof f->port_file, "%s/port", f->dir);
  snprintf(f->log, sizeof f->log, "%s/fake.log", f->dir);
  return 0;
}

static int fake_rm_entry(const char *path, const struct stat *sb, int flag,
                         struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  if (remove(path) != 0)
    fprintf(stderr, "harness_fake: remove %s: %s\n", path, strerror(errno));
  return 0;
}

/* Kills a running child, removes our own directory, frees f. */
static void fake_free(fake_emb *f) {
  fake_kill9(f);
  if (f->dir[0] && strstr(f->dir, "/sd-fake-")) {
    if (getenv("SD_KEEP_TMP"))
      fprintf(stderr, "harness_fake: keeping %s\n", f->dir);
    else
      nftw(f->dir, fake_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
  }
  free(f);
}

fake_emb *fake_start(int dim, const char *const *extra_args) {
  const char *bin = getenv("SD_FAKE_EMBEDDER");
  const char *argv[FAKE_MAX_ARGS];
  char dims[16];
  if (!bin || access(bin, X_OK) != 0) {
    fprintf(stderr, "harness_fake: SD_FAKE_EMBEDDER (%s) is not executable\n",
            bin ? bin : "unset");
    return NULL;
  }
  fake_emb *f = calloc(1, sizeof *f);
  snprintf(dims, sizeof dims, "%d", dim);
  if (!f || fake_make_dir(f) != 0 ||
      fake_argv(f, bin, dims, extra_args, argv) != 0) {
    if (f)
      fake_free(f);
    return NULL;
  }
  fflush(NULL);
  f->pid = fork();
  if (f->pid == 0)
    harness_exec_child(f->log, (char *const *)argv);
  if (f->pid < 0 || fake_wait_ready(f) != 0) {
    f->pid = f->pid < 0 ? 0 : f->pid;
    fake_kill9(f);
    fake_dump_log(f);
    fake_free(f);
    return NULL;
  }
  return f;
}

int fake_stop(fake_emb *f) {
  if (!f)
    return -1;
  int rc = -1, st = 0;
  if (f->pid > 0 && kill(f->pid, SIGTERM) == 0) {
    double deadline = now_s() + FAKE_STOP_TIMEOUT_S;
    while (!fake_reaped(f, &st) && now_s() < deadline)
      sleep_ms(10);
    if (f->pid == 0)
      rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  if (rc != 0) {
    fprintf(stderr, "harness_fake: fake_embedder stop status %d\n", rc);
    fake_dump_log(f);
  }
  fake_free(f);
  return rc;
}
