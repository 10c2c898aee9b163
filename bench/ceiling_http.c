/*
 * ceiling_http.c -- the HTTP ceiling of the benchmark suite (issue 7): a
 * minimal libmicrohttpd server with the options segmentd's http_server.c
 * uses (internal polling thread + epoll, suspend/resume allowed, a thread
 * pool, connection limit and timeout, a completion callback), answering
 * every request with a JSON body of about the size of a real
 * `GET /v1/users/{id}/segment` answer, built with jansson per request
 * (json_pack + json_dumps), the way segmentd builds its replies.
 *
 * Like segmentd, the first callback of a request only allocates its state
 * and the reply is queued on the next one; no storage, no model: what is
 * left is the cost of libmicrohttpd + jansson on this machine.
 *
 * usage: ceiling_http [--listen-port N] [--port-file PATH] [--threads N]
 *                     [--max-conns N] [--conn-timeout S] [--body-bytes N]
 * Defaults are segmentd's: threads 4, max-conns 1024, conn-timeout 30,
 * port 0 (any free port, written to --port-file). Runs until SIGTERM/SIGINT.
 */
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static size_t body_bytes = 600; /* target size of one answer, newline incl. */
static size_t pad_len;           /* filler added to reach body_bytes */
static char *pad;                /* pad_len + PAD_SLACK bytes of filler */
#define PAD_SLACK 32             /* ids up to this much longer than REF_ID */
#define REF_ID "u12345"

typedef struct {
  int seen;
} req_state;

/* An answer shaped like segmentd's segment answer (API.md): user id,
 * model version, two timestamps, the segment with its confidence, three
 * alternatives, intents and the views present. */
static json_t *answer(const char *url) {
  static const char *labels[] = {"card payments", "transfers and top-ups",
                                 "refunds", "exchange rates"};
  const char *uid = url;
  const char *p = strstr(url, "/users/");
  if (p) uid = p + 7;
  char id[300];
  size_t n = strcspn(uid, "/?");
  if (n >= sizeof(id)) n = sizeof(id) - 1;
  memcpy(id, uid, n);
  id[n] = 0;
  /* the filler shrinks as the id grows: every answer has body_bytes */
  size_t ref = strlen(REF_ID), skip = PAD_SLACK + n - ref;
  if (n < ref) skip = PAD_SLACK - (ref - n < PAD_SLACK ? ref - n : PAD_SLACK);
  if (skip > pad_len + PAD_SLACK) skip = pad_len + PAD_SLACK;
  const char *padding = pad + skip;
  unsigned h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)id[i]) * 16777619u;
  json_t *alts = json_array();
  for (int j = 1; j <= 3; j++)
    json_array_append_new(alts, json_pack("{s:i,s:s,s:f}", "id",
                                          (int)((h + (unsigned)j) % 64),
                                          "label", labels[j], "similarity",
                                          0.5 - 0.1 * j));
  return json_pack(
      "{s:s,s:i,s:s,s:s,s:{s:i,s:s,s:f,s:f},s:o,s:[{s:i,s:s?,s:f}],"
      "s:{s:b,s:b,s:b,s:b},s:s}",
      "user_id", id, "model_version", 3, "updated_at",
      "2026-11-27T10:00:00.000Z", "computed_at", "2026-11-27T10:00:01.000Z",
      "segment", "id", (int)(h % 64), "label", labels[0], "similarity", 0.81,
      "confidence", 0.67, "alternatives", alts, "intents", "id", 12, "label",
      labels[2], "share", 1.0, "views", "text", 1, "behaviour", 1, "time", 1,
      "context", 1, "pad", padding);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  (void)cls, (void)method, (void)version, (void)upload;
  req_state *r = *con_cls;
  if (!r) { /* first callback: state only, as segmentd does */
    if (!(r = calloc(1, sizeof(*r)))) return MHD_NO;
    *con_cls = r;
    return MHD_YES;
  }
  if (*upload_size) { /* bodies are read and dropped */
    *upload_size = 0;
    return MHD_YES;
  }
  json_t *o = answer(url);
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!s) return MHD_NO;
  size_t n = strlen(s);
  char *t = realloc(s, n + 2);
  if (!t) {
    free(s);
    return MHD_NO;
  }
  t[n++] = '\n', t[n] = 0;
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(n, t, MHD_RESPMEM_MUST_FREE);
  if (!resp) {
    free(t);
    return MHD_NO;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                          "application/json");
  enum MHD_Result ret = MHD_queue_response(conn, 200, resp);
  MHD_destroy_response(resp);
  return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode why) {
  (void)cls, (void)conn, (void)why;
  free(*con_cls);
  *con_cls = NULL;
}

/* Sizes the filler so an answer has body_bytes (newline included). */
static int size_pad(void) {
  pad_len = 0;
  if (!(pad = calloc(PAD_SLACK + 1, 1))) return -1;
  memset(pad, 'x', PAD_SLACK);
  json_t *o = answer("/v1/users/" REF_ID "/segment");
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!s) return -1;
  size_t base = strlen(s) + 1;
  free(s);
  pad_len = body_bytes > base ? body_bytes - base : 0;
  free(pad);
  if (!(pad = malloc(pad_len + PAD_SLACK + 1))) return -1;
  memset(pad, 'x', pad_len + PAD_SLACK);
  pad[pad_len + PAD_SLACK] = 0;
  return 0;
}

int main(int argc, char **argv) {
  unsigned port = 0, threads = 4, max_conns = 1024, timeout = 30;
  const char *port_file = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--listen-port")) port = (unsigned)atoi(v);
    else if (!strcmp(k, "--port-file")) port_file = v;
    else if (!strcmp(k, "--threads")) threads = (unsigned)atoi(v);
    else if (!strcmp(k, "--max-conns")) max_conns = (unsigned)atoi(v);
    else if (!strcmp(k, "--conn-timeout")) timeout = (unsigned)atoi(v);
    else if (!strcmp(k, "--body-bytes")) body_bytes = (size_t)atol(v);
    else {
      fprintf(stderr, "ceiling_http: unknown option %s\n", k);
      return 2;
    }
  }
  if (size_pad() < 0) return 1;
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                   MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  struct MHD_Daemon *d = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
      (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE, threads,
      MHD_OPTION_CONNECTION_LIMIT, max_conns, MHD_OPTION_CONNECTION_TIMEOUT,
      timeout, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
      MHD_OPTION_END);
  if (!d) {
    fprintf(stderr, "ceiling_http: cannot start the daemon\n");
    return 1;
  }
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  if (port_file) {
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%u\n", info ? info->port : 0) < 0 || fclose(f) ||
        rename(tmp, port_file)) {
      fprintf(stderr, "ceiling_http: cannot write %s\n", port_file);
      MHD_stop_daemon(d);
      return 1;
    }
  }
  fprintf(stderr, "ceiling_http: port %u, %u threads, body %zu bytes\n",
          info ? info->port : 0, threads, body_bytes);
  int sig = 0;
  sigwait(&sigs, &sig);
  MHD_stop_daemon(d);
  free(pad);
  return 0;
}
