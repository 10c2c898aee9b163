/*
 * http_deadline.c -- connection deadlines against slow clients
 * (http_int.h).
 *
 * libmicrohttpd's own --conn-timeout is an idle timeout: a client that
 * sends one byte every few seconds (slow-loris) keeps it from ever firing
 * and holds a connection, up to --max-conns of them. So every connection
 * gets a record (MHD_OPTION_NOTIFY_CONNECTION) with the time its current
 * request began: its start, then the previous answer. Once a request's
 * headers and body are in, the handler runs and the record is busy (no
 * deadline: a suspended ingest or a long NDJSON stream is not the
 * client's fault). A sweeper thread looks every SWEEP_MS and shuts down
 * (shutdown(2), not close) the socket of every idle-or-receiving record
 * older than --request-timeout; libmicrohttpd then sees the end of the
 * stream and closes the connection itself.
 *
 * The records live in one list under one mutex. libmicrohttpd notifies
 * CLOSED before it closes the socket, and the record leaves the list
 * under the mutex then, so the sweeper never touches a descriptor that
 * was closed and reused.
 */
#include "http_int.h"

#include "segmentd/err.h"
#include "segmentd/timeutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#define SWEEP_MS 200

typedef struct conn_rec {
  int fd;
  int busy, dropped;
  int64_t since_ns; /* the current request began */
  struct conn_rec *prev, *next;
} conn_rec;

struct sd_deadlines {
  int64_t timeout_ns;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  conn_rec *head;
  int stop;
  pthread_t thread;
  _Atomic uint64_t dropped;
};

static void sweep(sd_deadlines *d, int64_t now) {
  for (conn_rec *r = d->head; r; r = r->next) {
    if (r->busy || r->dropped || now - r->since_ns < d->timeout_ns) continue;
    r->dropped = 1;
    shutdown(r->fd, SHUT_RDWR);
    atomic_fetch_add(&d->dropped, 1);
  }
}

static void *sweeper(void *arg) {
  sd_deadlines *d = arg;
  pthread_mutex_lock(&d->mu);
  while (!d->stop) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += SWEEP_MS * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_cond_timedwait(&d->cv, &d->mu, &ts);
    if (!d->stop) sweep(d, sd_mono_ns());
  }
  pthread_mutex_unlock(&d->mu);
  return NULL;
}

int sd_deadlines_start(long timeout_s, sd_deadlines **out) {
  *out = NULL;
  sd_deadlines *d = calloc(1, sizeof(*d));
  if (!d) return SD_ENOMEM;
  d->timeout_ns = (int64_t)timeout_s * 1000000000LL;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_mutex_init(&d->mu, NULL);
  pthread_cond_init(&d->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (pthread_create(&d->thread, NULL, sweeper, d) != 0) {
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
    return SD_EINTERNAL;
  }
  *out = d;
  return 0;
}

void sd_deadlines_stop(sd_deadlines *d) {
  if (!d) return;
  pthread_mutex_lock(&d->mu);
  d->stop = 1;
  pthread_cond_signal(&d->cv);
  pthread_mutex_unlock(&d->mu);
  pthread_join(d->thread, NULL);
  for (conn_rec *r = d->head, *n; r; r = n) n = r->next, free(r);
  pthread_cond_destroy(&d->cv);
  pthread_mutex_destroy(&d->mu);
  free(d);
}

static void rec_unlink(sd_deadlines *d, conn_rec *r) {
  if (r->prev) r->prev->next = r->next;
  else d->head = r->next;
  if (r->next) r->next->prev = r->prev;
}

void sd_deadlines_notify(void *cls, struct MHD_Connection *conn,
                         void **socket_context,
                         enum MHD_ConnectionNotificationCode code) {
  sd_deadlines *d = cls;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    conn_rec *r = ci ? calloc(1, sizeof(*r)) : NULL;
    *socket_context = r;
    if (!r) return; /* no deadline for this one: only the idle timeout */
    r->fd = ci->connect_fd;
    r->since_ns = sd_mono_ns();
    pthread_mutex_lock(&d->mu);
    r->next = d->head;
    if (d->head) d->head->prev = r;
    d->head = r;
    pthread_mutex_unlock(&d->mu);
  } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
    conn_rec *r = *socket_context;
    pthread_mutex_lock(&d->mu);
    rec_unlink(d, r);
    pthread_mutex_unlock(&d->mu);
    free(r);
    *socket_context = NULL;
  }
}

void sd_deadlines_busy(sd_deadlines *d, struct MHD_Connection *conn, int busy) {
  if (!d) return;
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  conn_rec *r = ci ? ci->socket_context : NULL;
  if (!r) return;
  pthread_mutex_lock(&d->mu);
  r->busy = busy;
  if (!busy) r->since_ns = sd_mono_ns();
  pthread_mutex_unlock(&d->mu);
}

uint64_t sd_deadlines_dropped(const sd_deadlines *d) {
  return d ? atomic_load(&d->dropped) : 0;
}
