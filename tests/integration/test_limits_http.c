/*
 * test_limits_http.c -- the connection and rate limits (README "Limits"):
 *
 * - --rate-limit / --rate-burst: per API key (another key is not held
 *   back), per client address without keys; 429 with Retry-After and the
 *   JSON error, refilled after the wait; /healthz never limited;
 * - --request-timeout: a raw socket that sends its headers a few bytes at a
 *   time, each gap far below the idle timeout, is cut off once the
 *   deadline passes, while a request that is slow but in time is served;
 * - --conn-timeout: a connection that sends nothing is closed;
 * - --max-conns: past the limit a new connection waits unanswered (not
 *   accepted), and is served once a slot is free.
 * - --queue-max: concurrent batches past a writer queue of one get 429
 *   queue_full with Retry-After, and store nothing; the others are stored.
 * (Body, batch, text, properties, depth and id limits: test_bad_input.c.)
 */
#include "check.h"
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define KEY_A "rate-key-a-0123456789abcdef"
#define KEY_B "rate-key-b-0123456789abcdef"

static long status_with(sd_server *srv, const char *path, const char *key,
                        char *retry_after, size_t cap) {
  char line[128];
  const char *h[] = {line, NULL};
  snprintf(line, sizeof line, "Authorization: Bearer %s", key ? key : "");
  http_resp r = http_req_hdrs(srv, "GET", path, NULL, NULL, 0, key ? h : NULL);
  long s = r.status;
  if (s == 429) {
    json_t *j = json_loads(r.body, 0, NULL);
    CHECK(check_error_body(j, "rate_limited"));
    json_decref(j);
  }
  if (retry_after) snprintf(retry_after, cap, "%s", r.retry_after);
  http_resp_free(&r);
  return s;
}

static void test_rate_per_key(const char *dir) {
  char keys[300];
  snprintf(keys, sizeof keys, "%s/keys", dir);
  FILE *f = fopen(keys, "w");
  CHECK(f != NULL);
  if (!f) return;
  fprintf(f, KEY_A ":read\n" KEY_B ":read\n");
  fclose(f);
  const char *args[] = {"--api-keys-file", keys, "--rate-limit", "2",
                        "--rate-burst", "4", NULL};
  sd_server *srv = srv_start(args);
  CHECK(srv != NULL);
  if (!srv) return;
  char ra[32] = "";
  for (int i = 0; i < 4; i++) CHECK_INT(status_with(srv, "/v1/spaces", KEY_A, NULL, 0), 200);
  CHECK_INT(status_with(srv, "/v1/spaces", KEY_A, ra, sizeof ra), 429);
  CHECK(atoi(ra) >= 1 && atoi(ra) <= 2);
  CHECK_INT(status_with(srv, "/v1/spaces", KEY_B, NULL, 0), 200);
  for (int i = 0; i < 20; i++) CHECK_INT(status_with(srv, "/healthz", NULL, NULL, 0), 200);
  CHECK_INT(status_with(srv, "/v1/spaces", NULL, NULL, 0), 401); /* no key: 401 first */
  sleep_ms(1000L * atoi(ra) + 100);
  CHECK_INT(status_with(srv, "/v1/spaces", KEY_A, NULL, 0), 200);
  long st;
  snprintf(srv->bearer, sizeof srv->bearer, "%s", KEY_B);
  json_t *info = http_json(srv, "GET", "/v1/info", NULL, &st);
  CHECK_INT(st, 200);
  CHECK(json_real_value(json_path(info, "config.rate_limit")) == 2.0);
  json_decref(info);
  CHECK_INT(srv_stop(srv), 0);
  srv_free(srv);
  unlink(keys);
}

static void test_rate_per_address(void) {
  const char *args[] = {"--rate-limit", "1", "--rate-burst", "3", NULL};
  sd_server *srv = srv_start(args);
  CHECK(srv != NULL);
  if (!srv) return;
  for (int i = 0; i < 3; i++) CHECK_INT(status_with(srv, "/v1/spaces", NULL, NULL, 0), 200);
  char ra[32] = "";
  CHECK_INT(status_with(srv, "/v1/info", NULL, ra, sizeof ra), 429);
  CHECK_INT(atoi(ra), 1);
  CHECK_INT(status_with(srv, "/readyz", NULL, NULL, 0), 200);
  CHECK_INT(srv_stop(srv), 0);
  srv_free(srv);
}

/* ---- raw sockets ---- */

static int raw_connect(const sd_server *srv) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv->port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    fd = -1;
  }
  return fd;
}

/* 1 when the server closed fd (end of stream or reset), reading and
 * discarding what it sent; waits up to ms. *got counts the bytes read. */
static int raw_closed(int fd, int ms, size_t *got) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  char buf[4096];
  double end = now_s() + ms / 1000.0;
  do {
    int left = (int)((end - now_s()) * 1000);
    if (poll(&p, 1, left > 0 ? left : 0) <= 0) return 0;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return 1;
    *got += (size_t)n;
  } while (now_s() < end);
  return 0;
}

/* Sends a request's headers a few bytes every gap_ms; the seconds until
 * the server closed the socket, or -1 if it answered or kept it open for
 * limit_s. */
static double slow_headers(const sd_server *srv, int gap_ms, double limit_s) {
  int fd = raw_connect(srv);
  CHECK(fd >= 0);
  if (fd < 0) return -1;
  double t0 = now_s();
  const char *first = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  size_t got = 0;
  double closed = -1;
  if (send(fd, first, strlen(first), MSG_NOSIGNAL) < 0) closed = 0;
  for (int i = 0; closed < 0 && now_s() - t0 < limit_s; i++) {
    if (raw_closed(fd, gap_ms, &got)) closed = now_s() - t0;
    else if (send(fd, "X-Slow: a\r\n", 11, MSG_NOSIGNAL) < 0) closed = now_s() - t0;
  }
  close(fd);
  CHECK_INT(got, 0); /* cut off, not answered */
  return closed;
}

/* Headers sent in three pieces over about a second, within the deadline. */
static void slow_in_time(const sd_server *srv) {
  int fd = raw_connect(srv);
  CHECK(fd >= 0);
  if (fd < 0) return;
  const char *parts[] = {"GET /healthz HTTP/1.1\r\n", "Host: 127.0.0.1\r\n",
                         "Connection: close\r\n\r\n"};
  for (int i = 0; i < 3; i++) {
    CHECK(send(fd, parts[i], strlen(parts[i]), MSG_NOSIGNAL) > 0);
    if (i < 2) sleep_ms(500);
  }
  char buf[512] = "";
  ssize_t n = 0, k;
  while ((k = recv(fd, buf + n, sizeof buf - 1 - (size_t)n, 0)) > 0) n += k;
  buf[n > 0 ? n : 0] = 0;
  CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
  close(fd);
}

static void test_deadlines(void) {
  const char *args[] = {"--request-timeout", "3", "--conn-timeout", "1", NULL};
  sd_server *srv = srv_start(args);
  CHECK(srv != NULL);
  if (!srv) return;
  /* a byte every 0.3 s keeps the 1 s idle timeout from firing: only the
     3 s deadline can close it */
  double t = slow_headers(srv, 300, 10);
  fprintf(stderr, "slow-loris connection closed after %.2f s\n", t);
  CHECK(t >= 2.5 && t <= 5.0);
  slow_in_time(srv);
  int fd = raw_connect(srv); /* says nothing: the idle timeout */
  size_t got = 0;
  double t0 = now_s();
  CHECK(fd >= 0 && raw_closed(fd, 4000, &got));
  CHECK(now_s() - t0 < 2.9); /* before the deadline: the idle timeout did it */
  close(fd);
  CHECK_INT(status_with(srv, "/healthz", NULL, NULL, 0), 200);
  CHECK_INT(srv_stop(srv), 0);
  srv_free(srv);
}

static void test_max_conns(void) {
  const char *args[] = {"--threads", "1", "--max-conns", "3", NULL};
  sd_server *srv = srv_start(args);
  CHECK(srv != NULL);
  if (!srv) return;
  http_thread_done(); /* no keep-alive connection of ours is left */
  sleep_ms(200);
  int fds[3];
  for (int i = 0; i < 3; i++) {
    fds[i] = raw_connect(srv);
    CHECK(fds[i] >= 0 && send(fds[i], "GET /", 5, MSG_NOSIGNAL) == 5);
  }
  sleep_ms(200);
  /* a fourth waits unanswered (libmicrohttpd stops accepting at the
     limit: it stays in the listen backlog) ... */
  int extra = raw_connect(srv);
  const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  CHECK(extra >= 0 && send(extra, req, strlen(req), MSG_NOSIGNAL) > 0);
  size_t got = 0;
  CHECK(!raw_closed(extra, 1500, &got));
  CHECK_INT(got, 0);
  /* ... until a slot is free */
  close(fds[0]);
  char buf[256] = "";
  struct pollfd p = {.fd = extra, .events = POLLIN};
  CHECK(poll(&p, 1, 5000) == 1 && recv(extra, buf, sizeof buf - 1, 0) > 12);
  CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
  close(extra);
  for (int i = 1; i < 3; i++) close(fds[i]);
  CHECK_INT(srv_stop(srv), 0);
  srv_free(srv);
}

/* ---- the writer queue ---- */

#define Q_THREADS 6
#define Q_BATCHES 4
#define Q_TEXTS 300

typedef struct {
  sd_server *srv;
  int t;
  long status[Q_BATCHES];
  char retry_after[Q_BATCHES][32];
} q_ctx;

static void *q_worker(void *arg) {
  q_ctx *q = arg;
  char id[64], user[32], text[64];
  for (int b = 0; b < Q_BATCHES; b++) {
    snprintf(user, sizeof user, "q-%d-%d", q->t, b);
    json_t *items = json_array();
    for (int i = 0; i < Q_TEXTS; i++) {
      snprintf(id, sizeof id, "q-%d-%d-%d", q->t, b, i);
      snprintf(text, sizeof text, "card payment %d declined at shop %d", i, b);
      json_array_append_new(items, json_pack("{s:s,s:s,s:s}", "text_id", id,
                                             "user_id", user, "text", text));
    }
    json_t *body = json_pack("{s:o}", "texts", items);
    char *js = json_dumps(body, JSON_COMPACT);
    http_resp r = http_req(q->srv, "POST", "/v1/texts", "application/json", js,
                           strlen(js));
    q->status[b] = r.status;
    snprintf(q->retry_after[b], sizeof q->retry_after[b], "%s", r.retry_after);
    if (r.status == 429) {
      json_t *j = json_loads(r.body, 0, NULL);
      CHECK(check_error_body(j, "queue_full"));
      json_decref(j);
    }
    http_resp_free(&r);
    free(js);
    json_decref(body);
  }
  http_thread_done();
  return NULL;
}

static void test_queue_max(void) {
  /* no first model: its fit would only slow the stop down */
  const char *args[] = {"--queue-max", "1", "--train-min", "1000000", NULL};
  sd_server *srv = srv_start(args);
  CHECK(srv != NULL);
  if (!srv) return;
  q_ctx q[Q_THREADS];
  pthread_t th[Q_THREADS];
  for (int t = 0; t < Q_THREADS; t++) {
    q[t] = (q_ctx){.srv = srv, .t = t};
    CHECK(pthread_create(&th[t], NULL, q_worker, &q[t]) == 0);
  }
  int ok = 0, full = 0;
  for (int t = 0; t < Q_THREADS; t++) {
    pthread_join(th[t], NULL);
    for (int b = 0; b < Q_BATCHES; b++) {
      char user[32];
      long long e = -1, x = -1;
      snprintf(user, sizeof user, "q-%d-%d", t, b);
      long st = get_user_counts(srv, user, &e, &x);
      if (q[t].status[b] == 200) {
        ok++;
        CHECK(st == 0 && x == Q_TEXTS);
      } else {
        full++;
        CHECK_INT(q[t].status[b], 429);
        CHECK_INT(atoi(q[t].retry_after[b]), 1);
        CHECK_INT(st, 404); /* nothing of it stored */
      }
    }
  }
  fprintf(stderr, "queue-max 1: %d batches stored, %d refused\n", ok, full);
  CHECK(ok > 0 && full > 0);
  CHECK_INT(srv_stop(srv), 0);
  srv_free(srv);
}

int main(void) {
  char dir[] = "/tmp/sd-limits-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  test_rate_per_key(dir);
  test_rate_per_address();
  test_deadlines();
  test_max_conns();
  test_queue_max();
  rmdir(dir);
  http_thread_done();
  return check_done("test_limits_http");
}
