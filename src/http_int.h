/*
 * http_int.h -- internals of the HTTP front shared by http_server.c and
 * its helpers: the request gate (http_guard.c: API key, scope, rate
 * limit) and the connection deadlines (http_deadline.c: slow clients).
 * All of it runs on libmicrohttpd's threads, except the deadline sweeper.
 */
#ifndef SEGMENTD_HTTP_INT_H
#define SEGMENTD_HTTP_INT_H

#include <microhttpd.h>
#include <stdint.h>

#include "segmentd/auth.h"
#include "segmentd/http.h"

/* ---- http_guard.c ---- */

typedef struct sd_guard sd_guard;

/* The API keys (cfg->api_keys, cfg->api_keys_file), --metrics-scope and
 * the rate-limit tables. 0, or an sd_err with msg set (a bad key names its
 * entry or line, never the key). Free with sd_guard_free (NULL-safe). */
int sd_guard_new(const sd_config *cfg, sd_guard **out, char *msg,
                 size_t msglen);
void sd_guard_free(sd_guard *g);
const sd_auth *sd_guard_auth(const sd_guard *g);

/* Lets a routed (or missed: req->access set by sd_route) request pass:
 * 0, or 401 (no, malformed or unknown key, with WWW-Authenticate), 403
 * (the key lacks the route's scope) or 429 (rate limit, with Retry-After)
 * filled into rep and returned as its sd_err. authz is the Authorization
 * header (or NULL); client the peer's address (or NULL). *key gets the
 * index of the key that passed (auth.h), -1 when none was needed. */
int sd_guard_check(sd_guard *g, const sd_req *req, sd_reply *rep,
                   const char *authz, const struct sockaddr *client,
                   int *key);

/* ---- http_deadline.c ---- */

typedef struct sd_deadlines sd_deadlines;

/* Starts the sweeper: a connection that has not sent a whole request
 * within timeout_s of its start (or of its previous answer) is shut
 * down. 0 or SD_ENOMEM / SD_EINTERNAL. */
int sd_deadlines_start(long timeout_s, sd_deadlines **out);
/* Joins the sweeper and frees; call after the daemon stopped. NULL-safe. */
void sd_deadlines_stop(sd_deadlines *d);
/* MHD_OPTION_NOTIFY_CONNECTION callback (cls = the sd_deadlines). */
void sd_deadlines_notify(void *cls, struct MHD_Connection *conn,
                         void **socket_context,
                         enum MHD_ConnectionNotificationCode code);
/* The request on conn is complete and handled (busy = 1: no deadline),
 * or answered (busy = 0: the clock starts again for the next one). */
void sd_deadlines_busy(sd_deadlines *d, struct MHD_Connection *conn, int busy);
/* Connections closed for missing their deadline so far. */
uint64_t sd_deadlines_dropped(const sd_deadlines *d);

#endif
