/*
 * http_server.c -- libmicrohttpd glue (see http.h).
 *
 * One request's life: the first callback only allocates its state (so the
 * response is always queued on a later callback, which keeps HTTP/1.1
 * connections alive under libmicrohttpd 0.9.75); upload callbacks append
 * the body up to --max-body; the final callback routes and runs the
 * handler. An ingest handler returns a job instead of a reply: the
 * connection is suspended, the job queued to the writer, and the writer
 * resumes the connection once the batch is committed. Between routing and
 * the handler every request passes the gate (http_guard.c: key, scope,
 * rate), and every connection has a deadline for sending a whole request
 * (http_deadline.c). Every request also has an access record
 * (http_access.c): its id, echoed in X-Request-Id, and its timing, status
 * and bytes, logged and counted once libmicrohttpd reports it completed.
 */
#include "handlers.h"
#include "http_int.h"
#include "http_access.h"
#include "segmentd/err.h"
#include "segmentd/json_out.h"
#include "segmentd/log.h"
#include "segmentd/timeutil.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct sd_http {
  struct MHD_Daemon *d;
  const sd_config *cfg;
  sd_services svc;
  sd_guard *guard;
  sd_deadlines *dl;
  int port;
  atomic_int draining; /* set by sd_http_quiesce */
};

typedef enum { RS_BODY, RS_WAITING, RS_ASYNC, RS_REPLY } rstate;

typedef struct {
  rstate state;
  char *body;
  size_t len, cap;
  int too_large;
  sd_reply rep;
  sd_async async;
  struct MHD_Connection *conn;
  http_access access; /* request id, timing, status, bytes */
} conn_req;

void sd_async_resume(sd_async *a) {
  MHD_resume_connection((struct MHD_Connection *)a->conn);
}

/* Suspends the connection and starts the handler's deferred work. */
static enum MHD_Result start_async(conn_req *r, struct MHD_Connection *conn) {
  r->async = (sd_async){&r->rep, r->rep.async_arg, conn};
  int (*fn)(sd_async *) = r->rep.async;
  r->rep.async = NULL;
  r->state = RS_ASYNC;
  MHD_suspend_connection(conn);
  int rc = fn(&r->async);
  if (rc < 0) { /* the deferred work did not start: answer now */
    if (!r->rep.body) sd_reply_error(&r->rep, rc, NULL, NULL);
    MHD_resume_connection(conn);
  }
  return MHD_YES;
}

static atomic_int http_ready;

void sd_http_set_ready(int ready) { atomic_store(&http_ready, ready); }
int sd_http_ready(void) { return atomic_load(&http_ready); }

const char *sd_req_query(const sd_req *req, const char *key) {
  return MHD_lookup_connection_value((struct MHD_Connection *)req->conn,
                                     MHD_GET_ARGUMENT_KIND, key);
}

/* Server-Timing: app;dur=<ms from the request's start to its reply>
 * (W3C Server Timing), so clients can tell server time from network. */
static void server_timing(struct MHD_Response *resp, const http_access *a) {
  char v[64] = "app;dur=";
  sd_fmt_fixed(v + 8, (double)(sd_mono_ns() - a->start_ns) / 1e6, 3, 0);
  MHD_add_response_header(resp, "Server-Timing", v);
}

const char *sd_req_header(const sd_req *req, const char *name) {
  return MHD_lookup_connection_value((struct MHD_Connection *)req->conn,
                                     MHD_HEADER_KIND, name);
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, conn_req *r) {
  sd_reply *rep = &r->rep;
  struct MHD_Response *resp;
  if (rep->stream) {
    http_access_reply(&r->access, rep, 0);
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024,
                                             rep->stream, rep->stream_cls,
                                             rep->stream_free);
    if (resp) rep->stream_free = NULL, rep->stream_cls = NULL;
  } else if (rep->text) {
    http_access_reply(&r->access, rep, rep->text_len);
    resp = MHD_create_response_from_buffer(rep->text_len, rep->text,
                                           MHD_RESPMEM_MUST_FREE);
    if (resp) rep->text = NULL;
  } else {
    char *s = rep->body ? json_dumps(rep->body, JSON_COMPACT) : strdup("");
    size_t n = s ? strlen(s) : 0;
    char *t = s ? realloc(s, n + 2) : NULL;
    if (!t) {
      free(s);
      return MHD_NO;
    }
    if (rep->body) t[n++] = '\n', t[n] = 0;
    http_access_reply(&r->access, rep, n);
    resp = MHD_create_response_from_buffer(n, t, MHD_RESPMEM_MUST_FREE);
    if (!resp) free(t);
  }
  if (!resp) return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                          rep->content_type ? rep->content_type
                                            : "application/json");
  MHD_add_response_header(resp, "X-Request-Id", r->access.id);
  server_timing(resp, &r->access);
  if (rep->allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, rep->allow);
  if (rep->www_auth)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, rep->www_auth);
  for (int i = 0; i < rep->n_headers; i++)
    MHD_add_response_header(resp, rep->headers[2 * i], rep->headers[2 * i + 1]);
  if (rep->retry_after > 0) {
    char ra[16];
    snprintf(ra, sizeof(ra), "%d", rep->retry_after);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
  }
  enum MHD_Result ret = MHD_queue_response(conn, (unsigned)rep->status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static void on_job_done(sd_job *job, void *ud) {
  conn_req *r = ud;
  (void)job;
  MHD_resume_connection(r->conn);
}

static int is_json(const char *ct) {
  if (!ct) return 0;
  size_t n = strlen("application/json");
  return strncasecmp(ct, "application/json", n) == 0 &&
         (ct[n] == 0 || ct[n] == ';' || ct[n] == ' ');
}

/* Routes and runs the handler; leaves a reply or a job in r->rep. */
static void dispatch(sd_http *h, conn_req *r, struct MHD_Connection *conn,
                     const char *url, const char *method) {
  sd_req req = {.method = method, .path = url, .body = r->body,
                .body_len = r->len, .core = h->svc.core, .cfg = h->cfg,
                .conn = conn};
  sd_handler fn = sd_route(&req, &r->rep);
  r->access.route = req.route; /* for the metrics and the access line */
  if (r->too_large) {
    r->rep.allow = NULL;
    sd_reply_error(&r->rep, SD_ETOOLARGE, "request body exceeds the limit",
                   NULL);
    return;
  }
  req.auth = sd_guard_auth(h->guard);
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const char *authz = MHD_lookup_connection_value(
      conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  int key;
  if (sd_guard_check(h->guard, &req, &r->rep, authz,
                     ci ? ci->client_addr : NULL, &key) < 0)
    return;
  req.key_name = sd_auth_key_name(req.auth, key);
  if (!fn) return;
  if (atomic_load(&h->draining) && fn != h_healthz) {
    sd_reply_error(&r->rep, SD_ESHUTDOWN, NULL, NULL);
    sd_reply_header(&r->rep, MHD_HTTP_HEADER_CONNECTION, "close");
    return;
  }
  if (!sd_http_ready() && fn != h_healthz && fn != h_readyz) {
    sd_reply_error(&r->rep, SD_ENOTREADY, "starting up", NULL);
    return;
  }
  req.core = h->svc.core; /* set before the ready flag */
  req.maint = h->svc.maint;
  req.embedq = h->svc.embedq;
  req.watch = h->svc.watch;
  req.notify = h->svc.notify;
  const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                               MHD_HTTP_HEADER_CONTENT_TYPE);
  if (r->len > 0 && !is_json(ct)) {
    sd_reply_error(&r->rep, SD_EMEDIA, "Content-Type must be application/json",
                   NULL);
    return;
  }
  if (!req.body) req.body = "";
  fn(&req, &r->rep);
}

/* Appends an upload chunk, or drops the body once it passes the limit. */
static void take_upload(sd_http *h, conn_req *r, const char *data, size_t n) {
  if (r->too_large || r->len + n > (size_t)h->cfg->max_body) {
    r->too_large = 1;
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
    return;
  }
  if (r->len + n + 1 > r->cap) {
    size_t nc = r->cap ? r->cap : 4096;
    while (nc < r->len + n + 1) nc *= 2;
    char *nb = realloc(r->body, nc);
    if (!nb) {
      r->too_large = 1; /* cannot hold it: answer 413 rather than crash */
      return;
    }
    r->body = nb;
    r->cap = nc;
  }
  memcpy(r->body + r->len, data, n);
  r->len += n;
  r->body[r->len] = 0;
}

static enum MHD_Result start_job(sd_http *h, conn_req *r,
                                 struct MHD_Connection *conn) {
  sd_job *job = r->rep.job;
  job->done = on_job_done;
  job->ud = r;
  r->state = RS_WAITING;
  MHD_suspend_connection(conn);
  int rc = sd_core_submit(h->svc.core, job);
  if (rc < 0) {
    job->rc = rc;
    h_ingest_done(job, &r->rep); /* the error reply; frees the batch */
    r->state = RS_REPLY;
    MHD_resume_connection(conn);
  }
  return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  sd_http *h = cls;
  conn_req *r = *con_cls;
  (void)version;
  if (!r) {
    if (!(r = calloc(1, sizeof(*r)))) return MHD_NO;
    r->conn = conn;
    r->rep.status = 500;
    *con_cls = r;
    http_access_begin(&r->access, method, url,
                      MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                  "X-Request-Id"));
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > (unsigned long long)h->cfg->max_body)
      r->too_large = 1;
    return MHD_YES;
  }
  if (*upload_size) {
    take_upload(h, r, upload, *upload_size);
    *upload_size = 0;
    return MHD_YES;
  }
  if (r->state == RS_WAITING) { /* resumed by the writer */
    h_ingest_done(r->rep.job, &r->rep);
    r->state = RS_REPLY;
  } else if (r->state == RS_ASYNC) { /* resumed by the deferred work */
    r->state = RS_REPLY;
  } else if (r->state == RS_BODY) {
    sd_deadlines_busy(h->dl, conn, 1); /* the whole request is in */
    sd_log_set_request_id(r->access.id); /* on the lines the handler logs */
    dispatch(h, r, conn, url, method);
    sd_log_set_request_id(NULL);
    if (r->rep.job) return start_job(h, r, conn);
    if (r->rep.async) return start_async(r, conn);
    r->state = RS_REPLY;
  }
  return send_reply(conn, r);
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode why) {
  conn_req *r = *con_cls;
  sd_http *h = cls;
  sd_deadlines_busy(h->dl, conn, 0); /* the next request's clock starts */
  if (!r) return;
  http_access_end(&r->access, why != MHD_REQUEST_TERMINATED_COMPLETED_OK);
  if (r->rep.job) {
    sd_batch_free(&r->rep.job->batch);
    free(r->rep.job);
  }
  if (r->rep.async_free) r->rep.async_free(r->rep.async_arg);
  sd_reply_free(&r->rep);
  free(r->body);
  free(r);
  *con_cls = NULL;
}

/* Resolves "host:port" or "[v6]:port" into a socket address. */
static int parse_listen(const char *listen, struct addrinfo **ai, char *msg,
                        size_t msglen) {
  char host[256];
  const char *colon = strrchr(listen, ':');
  size_t hl = colon ? (size_t)(colon - listen) : 0;
  if (!colon || hl == 0 || hl >= sizeof(host) || !colon[1]) {
    snprintf(msg, msglen, "--listen \"%s\": expected host:port", listen);
    return SD_EINVAL;
  }
  if (listen[0] == '[' && listen[hl - 1] == ']') {
    memcpy(host, listen + 1, hl - 2);
    host[hl - 2] = 0;
  } else {
    memcpy(host, listen, hl);
    host[hl] = 0;
  }
  struct addrinfo hints = {.ai_flags = AI_PASSIVE, .ai_socktype = SOCK_STREAM};
  int rc = getaddrinfo(host, colon + 1, &hints, ai);
  if (rc != 0) {
    snprintf(msg, msglen, "--listen \"%s\": %s", listen, gai_strerror(rc));
    return SD_EINVAL;
  }
  return 0;
}

static int write_port_file(const char *path, int port) {
  char tmp[4096];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return SD_EINTERNAL;
  int ok = fprintf(f, "%d\n", port) > 0;
  ok &= fclose(f) == 0;
  return ok && rename(tmp, path) == 0 ? 0 : SD_EINTERNAL;
}

/* What the start log says about keys (counts and scopes, never a key). */
static void log_auth(const sd_http *h) {
  const sd_auth *a = sd_guard_auth(h->guard);
  if (sd_auth_count(a) == 0) {
    sd_log_warn("no API keys configured: the API is open to every client "
                "that can reach %s (set SEGMENTD_API_KEYS or "
                "--api-keys-file)", h->cfg->listen);
    return;
  }
  sd_log_info("auth on: %zu API keys (ingest %zu, read %zu, admin %zu); "
              "/metrics: %s", sd_auth_count(a),
              sd_auth_count_scope(a, SD_SCOPE_INGEST),
              sd_auth_count_scope(a, SD_SCOPE_READ),
              sd_auth_count_scope(a, SD_SCOPE_ADMIN), h->cfg->metrics_scope);
}

int sd_http_start(const sd_config *cfg, sd_core *core, sd_http **out,
                  char *msg, size_t msglen) {
  struct addrinfo *ai = NULL;
  *out = NULL;
  int rc = parse_listen(cfg->listen, &ai, msg, msglen);
  if (rc < 0) return rc;
  sd_http *h = calloc(1, sizeof(*h));
  if (!h) {
    freeaddrinfo(ai);
    return SD_ENOMEM;
  }
  atomic_init(&h->draining, 0);
  h->cfg = cfg;
  h->svc.core = core;
  http_access_init();
  rc = sd_guard_new(cfg, &h->guard, msg, msglen);
  if (rc == 0 && (rc = sd_deadlines_start(cfg->request_timeout, &h->dl)) < 0)
    snprintf(msg, msglen, "cannot start the connection deadlines");
  if (rc < 0) {
    freeaddrinfo(ai);
    sd_http_stop(h);
    return rc;
  }
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                   MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
  h->d = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
      MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_conns,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->conn_timeout,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
      MHD_OPTION_NOTIFY_CONNECTION, sd_deadlines_notify, h->dl, MHD_OPTION_END);
  freeaddrinfo(ai);
  if (!h->d) {
    snprintf(msg, msglen, "cannot listen on %s", cfg->listen);
    sd_http_stop(h);
    return SD_EINTERNAL;
  }
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
  h->port = info ? info->port : 0;
  if (cfg->port_file && write_port_file(cfg->port_file, h->port) < 0) {
    snprintf(msg, msglen, "cannot write --port-file %s", cfg->port_file);
    sd_http_stop(h);
    return SD_EINTERNAL;
  }
  log_auth(h);
  *out = h;
  return 0;
}

/*
 * Not MHD_quiesce_daemon: with MHD_USE_EPOLL and a thread pool it races the
 * workers to take the listen socket out of their epoll sets, and the loser
 * aborts the process (MHD_PANIC "Failed to remove listen FD from epoll
 * set", seen on a SIGTERM in the test suite). The socket stays open until
 * sd_http_stop; every request routed from now on is answered 503.
 */
void sd_http_quiesce(sd_http *h) {
  if (h) atomic_store(&h->draining, 1);
}

void sd_http_stop(sd_http *h) {
  if (!h) return;
  if (h->d) MHD_stop_daemon(h->d);
  if (sd_deadlines_dropped(h->dl) > 0)
    sd_log_info("closed %llu connections that sent no whole request within "
                "--request-timeout", (unsigned long long)sd_deadlines_dropped(h->dl));
  sd_deadlines_stop(h->dl); /* after the daemon: no more notifications */
  sd_guard_free(h->guard);
  free(h);
}

int sd_http_port(const sd_http *h) { return h->port; }

void sd_http_set_services(sd_http *h, const sd_services *svc) {
  h->svc = *svc;
}
