/*
 * test_webhooks_http.c -- webhook delivery end to end (include/segmentd/
 * notify.h): drift alerts to --webhook-url and segment membership to
 * --segments-webhook-url, received by an in-process receiver
 * (harness_receiver.h) on 127.0.0.1, signed with the secret from
 * SEGMENTD_WEBHOOK_SECRET (inherited by the server process).
 *
 *  A. 2202 planted texts of 1101 topic-pure users: both first models; the
 *     receiver refuses the first 3 requests (500, 429 + Retry-After: 1,
 *     closed); the segments stream opens with a snapshot in parts.
 *  B. users move between segments, new users arrive, one user is erased:
 *     segments.diff events; more planted texts complete the drift
 *     baselines (--drift-sample and --drift-baseline 50), which a first check confirms.
 *  C. two new topics at once (crypto, baking), the receiver refuses the
 *     next 3 requests, GET /v1/drift?refresh=true: alerts, among them an
 *     emerging_cluster. Every alert of GET /v1/alerts (all pages) arrives as
 *     alert.opened with its id.
 *  D. the receiver answers 503 to everything; planted texts, two more new
 *     topics and a second check (escalations, clears, new alerts) leave
 *     alert and segment events pending;
 *     kill -9; the receiver accepts again; restart: every outbox row stored
 *     before the kill (read from the database while the server is down)
 *     arrives with the same event and data.
 *  Throughout: signatures verify with the secret (not with a wrong one),
 *  timestamps are current, each stream arrives in non-decreasing id order,
 *  every delivery id has one body, refused deliveries are retried (after
 *  Retry-After for 429/503), and replaying snapshot + diffs gives exactly
 *  the users' segments of POST /v1/segments/lookup. At the end /metrics
 *  shows deliveries and nothing pending, and every outbox row is delivered.
 */
#include "check.h"
#include "harness.h"
#include "harness_receiver.h"

#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "whsec-segmentd-integration-0123456789"
#define ALERTS_PATH "/hooks/alerts"
#define SEGMENTS_PATH "/hooks/segments"
#define USERS 1101 /* 1101 % 3 == 0: user j's two texts share topic j % 3 */
#define MOVERS 30  /* users u0.. that get texts of another topic */
#define NEW_USERS 30
#define TOPIC_TEXTS 150
#define TOPIC_USERS 50
#define ERASED "u1000"
#define TIME_LIMIT_S 60.0

static const char *const NEW_TOPICS[4][8] = {
    {"crypto", "bitcoin", "wallet", "blockchain", "token", "mining", "ledger",
     "exchange"},
    {"recipe", "oven", "bake", "flour", "sugar", "butter", "dough", "cake"},
    {"travel", "flight", "hotel", "airport", "luggage", "passport", "visa",
     "beach"},
    {"garden", "tomato", "seeds", "soil", "compost", "shovel", "harvest",
     "greenhouse"}};

/* ---- small helpers ---- */

/* The string member key of o, or "" (never NULL). */
static const char *str_of(const json_t *o, const char *key) {
  const char *v = json_string_value(json_object_get(o, key));
  return v ? v : "";
}

/* 6-word texts of new topic t (words picked like planted_text). */
static json_t *topic_texts(int t, const char *prefix, int n,
                           const char *user_prefix, int users) {
  json_t *items = json_array();
  for (int i = 0; items && i < n; i++) {
    char id[64], user[64], text[160];
    unsigned s = (unsigned)i * 2654435761u + 7u * (unsigned)t;
    size_t used = 0;
    text[0] = '\0';
    for (int w = 0; w < 6; w++) {
      s = s * 1103515245u + 12345u;
      used += (size_t)snprintf(text + used, sizeof text - used, "%s%s",
                               w ? " " : "", NEW_TOPICS[t][(s >> 16) % 8]);
    }
    snprintf(id, sizeof id, "%s%d", prefix, i);
    snprintf(user, sizeof user, "%s%d", user_prefix, i % users);
    json_array_append_new(items, json_pack("{s:s,s:s,s:s}", "text_id", id,
                                           "user_id", user, "text", text));
  }
  return items;
}

/* POSTs texts (stolen) and checks the 200. */
static void ingest_texts(sd_server *srv, json_t *items) {
  long long acc = -1;
  CHECK_INT(ingest(srv, "texts", items, &acc, NULL), 200);
  CHECK_INT(acc, (long long)json_array_size(items));
  json_decref(items);
}

/* Every alert of GET /v1/alerts, following next_cursor (new reference). */
static json_t *all_alerts(sd_server *srv) {
  json_t *all = json_array();
  char path[128] = "/v1/alerts?limit=7";
  for (int page = 0; page < 1000; page++) {
    long st = 0;
    json_t *r = http_json(srv, "GET", path, NULL, &st);
    CHECK_INT(st, 200);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(r, "alerts"), i, a) {
      /* newest first, no alert twice across pages */
      long long id = json_path_int(a, "id", -1);
      CHECK(id > 0 && (json_array_size(all) == 0 ||
                       id < json_path_int(json_array_get(all, json_array_size(all) - 1),
                                          "id", -1)));
      json_array_append(all, a);
    }
    const char *next = json_string_value(json_object_get(r, "next_cursor"));
    if (next)
      snprintf(path, sizeof path, "/v1/alerts?limit=7&cursor=%s", next);
    json_decref(r);
    if (!next || st != 200)
      break;
  }
  return all;
}

/* Waits until the outbox is empty (metrics) and the receiver has had no
 * request for quiet_s (the notifier counts new rows at least every second,
 * so an idle 1.2 s with nothing pending means everything went out). */
static int wait_drained(sd_server *srv, rcv *r, double quiet_s,
                        double timeout_s) {
  double t0 = now_s(), changed = now_s();
  rcv_counts c;
  rcv_get_counts(r, &c);
  long last = c.requests;
  while (now_s() - t0 < timeout_s) {
    sleep_ms(100);
    rcv_get_counts(r, &c);
    if (c.requests != last) {
      last = c.requests;
      changed = now_s();
    }
    if (now_s() - changed >= quiet_s &&
        http_metric(srv, "segmentd_webhook_outbox_pending") == 0)
      return 0;
  }
  fprintf(stderr, "wait_drained: still pending after %.0f s (%.0f)\n",
          timeout_s, http_metric(srv, "segmentd_webhook_outbox_pending"));
  return -1;
}

/* Epoch ms of "YYYY-MM-DDTHH:MM:SS[.mmm]Z", or -1. */
static long long rfc3339_ms(const char *s) {
  int y, mo, d, h, mi, sec, n = 0;
  if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec,
                   &n) != 6)
    return -1;
  long long ms = 0;
  if (s[n] == '.') {
    int digits = 0;
    for (n++; s[n] >= '0' && s[n] <= '9'; n++, digits++)
      if (digits < 3)
        ms = ms * 10 + (s[n] - '0');
    for (; digits < 3; digits++)
      ms *= 10;
  }
  if (s[n] != 'Z')
    return -1;
  y -= mo <= 2; /* days from civil (H. Hinnant) */
  long long era = (y >= 0 ? y : y - 399) / 400;
  long long yoe = y - era * 400;
  long long doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  long long days = era * 146097 + doe - 719468;
  return ((days * 24 + h) * 60 + mi) * 60000LL + sec * 1000LL + ms;
}

/* ---- the received requests ---- */

typedef struct {
  rcv_req *q;
  long n;
  json_t **env; /* parsed bodies (NULL when not JSON) */
} recs;

static void recs_load(rcv *r, recs *R) {
  memset(R, 0, sizeof *R);
  R->n = rcv_copy(r, 0, &R->q);
  CHECK(R->n >= 0);
  if (R->n <= 0) {
    R->n = 0;
    return;
  }
  R->env = calloc((size_t)R->n, sizeof *R->env);
  for (long i = 0; R->env && i < R->n; i++)
    R->env[i] = json_loadb(R->q[i].body, R->q[i].len, 0, NULL);
}

static void recs_free(recs *R) {
  for (long i = 0; R->env && i < R->n; i++)
    json_decref(R->env[i]);
  free(R->env);
  rcv_copy_free(R->q, R->n);
  memset(R, 0, sizeof *R);
}

static long long rec_id(const rcv_req *q) {
  const char *v = rcv_header(q, "X-Segmentd-Delivery");
  return v ? atoll(v) : -1;
}

/* The envelope of the first 200 record of delivery id, or NULL. */
static json_t *delivered(const recs *R, long long id) {
  for (long i = 0; i < R->n; i++)
    if (R->q[i].status == 200 && rec_id(&R->q[i]) == id)
      return R->env[i];
  return NULL;
}

/* The envelope of a delivered alert event about alert id, or NULL. */
static json_t *alert_event(const recs *R, const char *event, long long id) {
  for (long i = 0; i < R->n; i++) {
    json_t *e = R->env[i];
    if (R->q[i].status == 200 && !strcmp(R->q[i].path, ALERTS_PATH) && e &&
        !strcmp(str_of(e, "event"), event) &&
        json_path_int(e, "data.id", -1) == id)
      return e;
  }
  return NULL;
}

static long count_path(const recs *R, const char *path, int status) {
  long n = 0;
  for (long i = 0; i < R->n; i++)
    n += !strcmp(R->q[i].path, path) && (status < 0 || R->q[i].status == status);
  return n;
}

/* Distinct delivered alert events of this name. */
static long count_event(const recs *R, const char *event) {
  json_t *seen = json_object();
  for (long i = 0; i < R->n; i++)
    if (R->q[i].status == 200 && !strcmp(R->q[i].path, ALERTS_PATH) &&
        !strcmp(str_of(R->env[i], "event"), event)) {
      char key[32];
      snprintf(key, sizeof key, "%lld", rec_id(&R->q[i]));
      json_object_set_new(seen, key, json_true());
    }
  long n = (long)json_object_size(seen);
  json_decref(seen);
  return n;
}

/* Properties every request must have (notify.h, "Request"). */
static void check_requests(const recs *R, long kill_seq) {
  json_t *bodies = json_object(); /* delivery id -> body */
  long long last[2] = {0, 0};
  long bad_sig = 0, bad_ts = 0, wrong_ok = 0, bad_env = 0, bad_order = 0,
       bad_body = 0, bad_retry = 0;
  for (long i = 0; i < R->n; i++) {
    const rcv_req *q = &R->q[i];
    json_t *e = R->env[i];
    int is_alerts = !strcmp(q->path, ALERTS_PATH);
    CHECK(is_alerts || !strcmp(q->path, SEGMENTS_PATH));
    CHECK_STR(q->method, "POST");
    const char *ct = rcv_header(q, "Content-Type");
    CHECK(ct && !strncmp(ct, "application/json", 16));
    const char *ua = rcv_header(q, "User-Agent");
    CHECK(ua && !strncmp(ua, "segmentd/", 9));
    long long id = rec_id(q);
    const char *ev = rcv_header(q, "X-Segmentd-Event");
    /* the envelope agrees with the headers and the path */
    int env_ok = e && id > 0 && ev && json_path_int(e, "id", -2) == id &&
                 !strcmp(str_of(e, "stream"),
                         is_alerts ? "alerts" : "segments") &&
                 !strcmp(str_of(e, "event"),
                         ev) &&
                 rfc3339_ms(json_string_value(json_object_get(e, "created_at"))) > 0 &&
                 json_object_get(e, "data") && json_object_size(e) == 5 &&
                 !strncmp(ev, is_alerts ? "alert." : "segments.",
                          is_alerts ? 6 : 9);
    if (!env_ok && bad_env++ < 3)
      fprintf(stderr, "bad envelope (request %ld): %.300s\n", q->seq, q->body);
    /* signed with the secret over "<ts>.<body>", and only with it */
    if (!rcv_signature_ok(q, SECRET) && bad_sig++ < 3)
      fprintf(stderr, "bad signature (request %ld, delivery %lld): %s\n",
              q->seq, id, rcv_header(q, "X-Segmentd-Signature") ? rcv_header(q, "X-Segmentd-Signature") : "(none)");
    wrong_ok += rcv_signature_ok(q, SECRET "x") + rcv_signature_ok(q, "wrong");
    /* the timestamp is this attempt's: now, and not before created_at */
    const char *ts = rcv_header(q, "X-Segmentd-Timestamp");
    long long ts_ms = ts ? atoll(ts) * 1000 : -1;
    long long created = e ? rfc3339_ms(json_string_value(json_object_get(e, "created_at"))) : -1;
    if ((ts_ms < 0 || llabs(ts_ms - q->t_wall_ms) > 10000 ||
         created > ts_ms + 1000) && bad_ts++ < 3)
      fprintf(stderr, "bad timestamp (delivery %lld): ts %s, received at %lld "
              "ms, created %lld ms\n", id, ts ? ts : "(none)",
              (long long)q->t_wall_ms, created);
    /* per stream: non-decreasing ids (one delivery at a time, id order) */
    if (id < last[is_alerts] && bad_order++ < 3)
      fprintf(stderr, "out of order on %s: delivery %lld after %lld\n", q->path,
              id, last[is_alerts]);
    if (id > last[is_alerts])
      last[is_alerts] = id;
    /* at-least-once: a delivery id always carries the same body */
    char key[32];
    snprintf(key, sizeof key, "%lld", id);
    json_t *b = json_object_get(bodies, key);
    if (!b)
      json_object_set_new(bodies, key, json_stringn(q->body, q->len));
    else if ((json_string_length(b) != q->len ||
              memcmp(json_string_value(b), q->body, q->len)) && bad_body++ < 3)
      fprintf(stderr, "delivery %lld sent with two bodies\n", id);
    /* a refusal is retried, after Retry-After (1 s) for 429 and 503 */
    if (q->status != 200) {
      long j = i + 1;
      while (j < R->n && rec_id(&R->q[j]) != id)
        j++;
      int ok = j < R->n; /* a later attempt exists */
      /* (a kill -9 may come before the refusal was recorded) */
      if (ok && (q->status == 429 || q->status == 503) &&
          !(q->seq < kill_seq && R->q[j].seq >= kill_seq))
        ok = R->q[j].t_mono - q->t_mono >= 0.9;
      if (!ok && bad_retry++ < 3)
        fprintf(stderr, "delivery %lld answered %d: %s\n", id, q->status,
                j < R->n ? "retried before Retry-After" : "never retried");
    }
  }
  CHECK_INT(bad_env, 0);
  CHECK_INT(bad_sig, 0);
  CHECK_INT(wrong_ok, 0);
  CHECK_INT(bad_ts, 0);
  CHECK_INT(bad_order, 0);
  CHECK_INT(bad_body, 0);
  CHECK_INT(bad_retry, 0);
  /* a tampered body does not verify */
  for (long i = 0; i < R->n && i < 1; i++) {
    rcv_req t = R->q[i];
    char *b = malloc(t.len + 1);
    memcpy(b, t.body, t.len + 1);
    b[t.len / 2] ^= 1;
    t.body = b;
    CHECK(!rcv_signature_ok(&t, SECRET));
    free(b);
  }
  json_decref(bodies);
}

/* Every stored alert arrived as alert.opened with its id and fields; a
 * cleared one also as alert.cleared; one stored above its opening
 * severity also as alert.escalated. Every alert event names a stored
 * alert. Returns the number of alerts. */
static size_t check_alerts(const recs *R, const json_t *alerts) {
  static const char *const sev[] = {"info", "warning", "critical"};
  size_t i;
  json_t *a;
  long missing = 0;
  json_array_foreach(alerts, i, a) {
    long long id = json_path_int(a, "id", -1);
    json_t *op = alert_event(R, "alert.opened", id);
    if (!op) {
      if (missing++ < 5)
        fprintf(stderr, "alert %lld (%s) never arrived as alert.opened\n", id,
                json_string_value(json_object_get(a, "kind")));
      continue;
    }
    json_t *d = json_object_get(op, "data");
    const char *keys[] = {"space", "kind", "method", "cluster", "created_at",
                          "model_version"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
      if (!json_equal(json_object_get(d, keys[k]), json_object_get(a, keys[k]))) {
        fprintf(stderr, "alert %lld: %s differs in alert.opened\n", id, keys[k]);
        CHECK(0);
      }
    if (!json_is_null(json_object_get(a, "cleared_at")))
      CHECK(alert_event(R, "alert.cleared", id) != NULL);
    int so = -1, sn = -1;
    for (int k = 0; k < 3; k++) {
      if (!strcmp(str_of(d, "severity"), sev[k]))
        so = k;
      if (!strcmp(str_of(a, "severity"), sev[k]))
        sn = k;
    }
    CHECK(so >= 0 && sn >= 0);
    if (sn > so)
      CHECK(alert_event(R, "alert.escalated", id) != NULL);
  }
  CHECK_INT(missing, 0);
  /* and nothing about alerts that do not exist */
  for (long k = 0; k < R->n; k++) {
    if (strcmp(R->q[k].path, ALERTS_PATH) || !R->env[k])
      continue;
    long long id = json_path_int(R->env[k], "data.id", -1), found = 0;
    json_array_foreach(alerts, i, a) found += json_path_int(a, "id", -2) == id;
    CHECK_INT(found, 1);
  }
  return json_array_size(alerts);
}

static size_t count_kind(const json_t *alerts, const char *kind) {
  size_t i, n = 0;
  json_t *a;
  json_array_foreach(alerts, i, a)
    n += !strcmp(str_of(a, "kind"), kind);
  return n;
}

/* ---- the segments stream ---- */

static int cmp_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return x < y ? -1 : x > y;
}

/* Replays the delivered segments events (each id once, in id order):
 * snapshot parts reset and fill the membership, diffs must leave from the
 * segment the replay holds. Returns user -> segment (new reference). */
static json_t *replay_segments(const recs *R, int *diffs_moved,
                               int *diffs_new, int *erased_seen) {
  long long *ids = calloc((size_t)R->n + 1, sizeof *ids);
  long n = 0;
  for (long i = 0; ids && i < R->n; i++)
    if (R->q[i].status == 200 && !strcmp(R->q[i].path, SEGMENTS_PATH))
      ids[n++] = rec_id(&R->q[i]);
  qsort(ids, (size_t)n, sizeof *ids, cmp_ll);
  json_t *m = json_object();
  long long prev = -1, version = -1;
  int next_part = 0, snapshots = 0, bad_exit = 0, members = 0;
  *diffs_moved = *diffs_new = *erased_seen = 0;
  for (long k = 0; k < n; k++) {
    if (ids[k] == prev)
      continue;
    prev = ids[k];
    json_t *e = delivered(R, ids[k]), *d = json_object_get(e, "data");
    const char *ev = str_of(e, "event");
    if (!strcmp(ev, "segments.snapshot")) {
      long long part = json_path_int(d, "part", -1);
      if (part == 0) {
        json_object_clear(m);
        version = json_path_int(d, "model_version", -1);
        next_part = 0;
        members = 0;
      }
      CHECK_INT(part, next_part);
      CHECK_INT(json_path_int(d, "model_version", -1), version);
      next_part++;
      size_t i;
      json_t *u;
      json_array_foreach(json_object_get(d, "members"), i, u) {
        json_object_set(m, json_string_value(json_object_get(u, "user_id")),
                        json_object_get(u, "segment"));
        members++;
      }
      if (json_is_true(json_object_get(d, "last"))) {
        snapshots++;
        fprintf(stderr, "  segments snapshot of model v%lld: %d parts, %d "
                "members\n", version, next_part, members);
        CHECK_INT(members, json_object_size(m));
        next_part = -1000; /* a later part 0 starts the next snapshot */
      } else {
        CHECK_INT(json_array_size(json_object_get(d, "members")), 1000);
      }
      continue;
    }
    CHECK_STR(ev, "segments.diff");
    CHECK(snapshots > 0); /* diffs follow the first snapshot */
    size_t i;
    json_t *u, *ex = json_object_get(d, "exit"), *en = json_object_get(d, "enter");
    CHECK(json_array_size(ex) + json_array_size(en) > 0);
    json_array_foreach(ex, i, u) {
      const char *uid = json_string_value(json_object_get(u, "user_id"));
      json_t *have = uid ? json_object_get(m, uid) : NULL;
      if (!json_equal(have, json_object_get(u, "segment")) && bad_exit++ < 3)
        fprintf(stderr, "diff %lld: %s leaves segment %lld, replay has %lld\n",
                ids[k], uid ? uid : "?", json_path_int(u, "segment", -1),
                have ? (long long)json_integer_value(have) : -1LL);
      if (uid)
        json_object_del(m, uid);
    }
    const char *reason = json_string_value(json_object_get(d, "reason"));
    if (reason && !strcmp(reason, "erased")) {
      CHECK_INT(json_array_size(en), 0);
      *erased_seen += json_array_size(ex) == 1 &&
                      !strcmp(str_of(json_array_get(ex, 0), "user_id"), ERASED);
    }
    *diffs_moved += json_array_size(ex) > 0 && json_array_size(en) > 0;
    json_array_foreach(en, i, u) {
      const char *uid = json_string_value(json_object_get(u, "user_id"));
      CHECK(uid && json_is_integer(json_object_get(u, "segment")));
      if (uid && !json_object_get(m, uid))
        *diffs_new += 1;
      if (uid)
        json_object_set(m, uid, json_object_get(u, "segment"));
    }
  }
  CHECK_INT(bad_exit, 0);
  CHECK(snapshots >= 1);
  free(ids);
  return m;
}

/* Every user this test made: in the replay exactly when the API gives a
 * segment, and with that segment (POST /v1/segments/lookup), plus GET
 * /v1/users/{id}/segment for a few. */
static void check_membership(sd_server *srv, const json_t *m) {
  json_t *ids = json_array();
  char uid[32];
  for (int i = 0; i < USERS; i++) {
    snprintf(uid, sizeof uid, "u%d", i);
    json_array_append_new(ids, json_string(uid));
  }
  for (int i = 0; i < NEW_USERS; i++) {
    snprintf(uid, sizeof uid, "nu%d", i);
    json_array_append_new(ids, json_string(uid));
  }
  const char *tp[4] = {"cu", "ru", "tu", "gu"};
  for (int t = 0; t < 4; t++)
    for (int i = 0; i < TOPIC_USERS; i++) {
      snprintf(uid, sizeof uid, "%s%d", tp[t], i);
      json_array_append_new(ids, json_string(uid));
    }
  long mismatch = 0, with_segment = 0;
  for (size_t from = 0; from < json_array_size(ids); from += 1000) {
    json_t *chunk = json_array();
    for (size_t i = from; i < from + 1000 && i < json_array_size(ids); i++)
      json_array_append(chunk, json_array_get(ids, i));
    json_t *body = json_pack("{s:o}", "user_ids", chunk);
    long st = 0;
    json_t *r = http_json_obj(srv, "POST", "/v1/segments/lookup", body, &st);
    CHECK_INT(st, 200);
    size_t i;
    json_t *res;
    json_array_foreach(json_object_get(r, "results"), i, res) {
      const char *u = json_string_value(json_object_get(res, "user_id"));
      json_t *seg = json_path(res, "segment.id");
      json_t *have = u ? json_object_get(m, u) : NULL;
      with_segment += seg != NULL;
      if (!json_equal(seg, have) && !(!seg && !have) && mismatch++ < 5)
        fprintf(stderr, "user %s: API segment %lld, webhook replay %lld\n",
                u ? u : "?", seg ? (long long)json_integer_value(seg) : -1LL,
                have ? (long long)json_integer_value(have) : -1LL);
    }
    json_decref(r);
    json_decref(body);
  }
  fprintf(stderr, "  membership: %ld users with a segment, replay holds %zu\n",
          with_segment, json_object_size(m));
  CHECK_INT(mismatch, 0);
  CHECK_INT(with_segment, json_object_size(m));
  /* the single-user route agrees too */
  const char *some[] = {"u0", "u7", "nu3", "cu1", "ru2", "gu4"};
  for (size_t k = 0; k < sizeof some / sizeof *some; k++) {
    char path[64];
    long st = 0;
    snprintf(path, sizeof path, "/v1/users/%s/segment", some[k]);
    json_t *r = http_json(srv, "GET", path, NULL, &st);
    CHECK_INT(st, 200);
    CHECK(json_equal(json_path(r, "segment.id"), json_object_get(m, some[k])));
    json_decref(r);
  }
  long st = 0;
  json_decref(http_json(srv, "GET", "/v1/users/" ERASED "/segment", NULL, &st));
  CHECK_INT(st, 404);
  CHECK(json_object_get(m, ERASED) == NULL);
  json_decref(ids);
}

/* ---- the outbox, read while the server is down ---- */

/* Every outbox row: [{"id","stream","event","data","pending"}]. */
static json_t *read_outbox(const char *db) {
  sqlite3 *h = NULL;
  json_t *rows = json_array();
  if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
    fprintf(stderr, "cannot open %s\n", db);
    sqlite3_close(h);
    CHECK(0);
    return rows;
  }
  sqlite3_stmt *st = NULL;
  CHECK_INT(sqlite3_prepare_v2(h, "SELECT id,stream,event,payload,"
                               "delivered_at IS NULL AND gave_up_at IS NULL "
                               "FROM outbox ORDER BY id", -1, &st, NULL),
            SQLITE_OK);
  while (st && sqlite3_step(st) == SQLITE_ROW) {
    json_t *data = json_loads((const char *)sqlite3_column_text(st, 3), 0, NULL);
    CHECK(data != NULL);
    json_array_append_new(
        rows, json_pack("{s:I,s:s,s:s,s:o,s:b}", "id",
                        (json_int_t)sqlite3_column_int64(st, 0), "stream",
                        (const char *)sqlite3_column_text(st, 1), "event",
                        (const char *)sqlite3_column_text(st, 2), "data",
                        data ? data : json_null(), "pending",
                        sqlite3_column_int(st, 4)));
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return rows;
}

/* Each row arrived (a 200) with its stream, event and data. */
static void check_outbox_delivered(const recs *R, const json_t *rows) {
  size_t i;
  json_t *row;
  long lost = 0;
  json_array_foreach(rows, i, row) {
    long long id = json_path_int(row, "id", -1);
    json_t *e = delivered(R, id);
    const char *stream = json_string_value(json_object_get(row, "stream"));
    int ok = e && json_equal(json_object_get(e, "data"), json_object_get(row, "data")) &&
             json_equal(json_object_get(e, "event"), json_object_get(row, "event")) &&
             json_equal(json_object_get(e, "stream"), json_object_get(row, "stream"));
    if (!ok && lost++ < 5)
      fprintf(stderr, "outbox row %lld (%s %s) %s\n", id, stream ? stream : "?",
              json_string_value(json_object_get(row, "event")),
              e ? "arrived with other contents" : "never arrived");
  }
  CHECK_INT(lost, 0);
}

static size_t count_pending(const json_t *rows, const char *stream) {
  size_t i, n = 0;
  json_t *row;
  json_array_foreach(rows, i, row)
    n += json_is_true(json_object_get(row, "pending")) &&
         !strcmp(str_of(row, "stream"), stream);
  return n;
}

/* GET /v1/drift?refresh=true: no check of either space is still
 * collecting its baseline. */
static void check_baselines(sd_server *srv) {
  long st = 0;
  json_t *d = http_json(srv, "GET", "/v1/drift?refresh=true", NULL, &st);
  CHECK_INT(st, 200);
  size_t i, j;
  json_t *sp, *c;
  int collecting = 0;
  json_array_foreach(json_object_get(d, "spaces"), i, sp)
    json_array_foreach(json_object_get(sp, "checks"), j, c)
      if (strstr(str_of(c, "message"), "collecting the baseline")) {
        fprintf(stderr, "%s: %s\n", str_of(sp, "space"), str_of(c, "message"));
        collecting++;
      }
  CHECK_INT(collecting, 0);
  CHECK_INT(json_array_size(json_object_get(d, "spaces")), 2);
  json_decref(d);
}

/* ---- the test ---- */

int main(void) {
  double t0 = now_s();
  setenv("SEGMENTD_WEBHOOK_SECRET", SECRET, 1); /* the child inherits it */
  char mac[65]; /* the receiver's HMAC-SHA256 against RFC 4231, case 2 */
  rcv_hmac_sha256_hex("Jefe", "what do ya want for nothing?", 28, mac);
  CHECK_STR(mac, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  rcv *r = rcv_start();
  CHECK(r != NULL);
  if (!r)
    return check_done("test_webhooks_http");
  char alerts_url[96], segments_url[96];
  rcv_url(r, ALERTS_PATH, alerts_url, sizeof alerts_url);
  rcv_url(r, SEGMENTS_PATH, segments_url, sizeof segments_url);
  const char *args[] = {"--train-min", "300", "--drift-interval", "0",
                        "--emerging-min-size", "20", "--drift-persist", "2",
                        "--drift-sample", "50", "--drift-baseline", "50", "--drift-window", "200",
                        "--drift-min-points", "50",
                        "--recluster-interval", "0", "--stability-runs", "0", "--k", "3",
                        "--webhook-url", alerts_url,
                        "--segments-webhook-url", segments_url,
                        "--webhook-backoff-ms", "50",
                        "--webhook-backoff-max-ms", "500",
                        "--webhook-max-attempts", "1000", NULL};
  rcv_refuse_next(r, 3);
  sd_server *srv = srv_start(args);
  CHECK(srv != NULL);
  if (!srv) {
    rcv_stop(r);
    return check_done("test_webhooks_http");
  }

  /* A: first models; the segments stream opens with a snapshot */
  ingest_texts(srv, planted_texts("t", 0, 2 * USERS, "u", USERS));
  CHECK_INT(wait_model(srv, "intents", 30), 0);
  CHECK_INT(wait_model(srv, "segments", 30), 0);
  CHECK_INT(wait_drained(srv, r, 1.2, 20), 0);
  CHECK_INT(rcv_refusals_left(r), 0);
  fprintf(stderr, "A: models and snapshot after %.1f s\n", now_s() - t0);

  /* B: movers, new users, an erased user */
  json_t *mv = json_array();
  for (int j = 0; j < MOVERS; j++)
    for (int k = 0; k < 4; k++) {
      char id[32], uid[32], text[128];
      snprintf(id, sizeof id, "mv%d_%d", j, k);
      snprintf(uid, sizeof uid, "u%d", j);
      planted_text((j + 1) % PLANTED_TOPICS, (unsigned)(j * 4 + k), text,
                   sizeof text);
      json_array_append_new(mv, json_pack("{s:s,s:s,s:s}", "text_id", id,
                                          "user_id", uid, "text", text));
    }
  ingest_texts(srv, mv);
  ingest_texts(srv, planted_texts("n", 0, 2 * NEW_USERS, "nu", NEW_USERS));
  long st = 0;
  json_decref(http_json(srv, "DELETE", "/v1/users/" ERASED, NULL, &st));
  CHECK(st == 200 || st == 204);

  /* more texts of the planted topics from their own users: with B, the
   * drift baselines (the first --drift-sample points assigned once the
   * models are live) are complete; a first check says so */
  ingest_texts(srv, planted_texts("b", 0, 300, "u", USERS));
  check_baselines(srv);
  CHECK_INT(wait_drained(srv, r, 1.2, 20), 0);

  /* C: two new topics, refusals, the first alerts */
  ingest_texts(srv, topic_texts(0, "c", TOPIC_TEXTS, "cu", TOPIC_USERS));
  ingest_texts(srv, topic_texts(1, "r", TOPIC_TEXTS, "ru", TOPIC_USERS));
  CHECK_INT(wait_drained(srv, r, 1.2, 20), 0);
  rcv_refuse_next(r, 3);
  json_t *drift = http_json(srv, "GET", "/v1/drift?refresh=true", NULL, &st);
  CHECK_INT(st, 200);
  json_decref(drift);
  CHECK_INT(wait_drained(srv, r, 1.2, 20), 0);
  CHECK_INT(rcv_refusals_left(r), 0);
  json_t *alerts = all_alerts(srv);
  recs R;
  recs_load(r, &R);
  fprintf(stderr, "C: %zu alerts (%zu emerging), %ld alert requests after "
          "%.1f s\n", json_array_size(alerts), count_kind(alerts, "emerging_cluster"),
          count_path(&R, ALERTS_PATH, -1), now_s() - t0);
  CHECK(json_array_size(alerts) >= 2);
  CHECK(count_kind(alerts, "emerging_cluster") >= 1);
  check_alerts(&R, alerts);
  check_requests(&R, LONG_MAX);
  /* the second script's refusals fell on the alerts stream */
  long alert_refused = 0;
  for (long i = 0; i < R.n; i++)
    alert_refused += !strcmp(R.q[i].path, ALERTS_PATH) && R.q[i].status != 200;
  CHECK_INT(alert_refused, 3);
  recs_free(&R);
  json_decref(alerts);

  /* D: pending events survive kill -9 */
  rcv_set_unavailable(r, 1);
  rcv_counts c0, c1;
  rcv_get_counts(r, &c0);
  ingest_texts(srv, planted_texts("b", 300, 600, "u", USERS)); /* clears */
  ingest_texts(srv, topic_texts(2, "v", TOPIC_TEXTS, "tu", TOPIC_USERS));
  ingest_texts(srv, topic_texts(3, "g", TOPIC_TEXTS, "gu", TOPIC_USERS));
  ingest_texts(srv, topic_texts(0, "c2-", TOPIC_TEXTS / 2, "cu", TOPIC_USERS));
  drift = http_json(srv, "GET", "/v1/drift?refresh=true", NULL, &st);
  CHECK_INT(st, 200);
  json_decref(drift);
  for (double t1 = now_s(); now_s() - t1 < 10; sleep_ms(50)) {
    rcv_get_counts(r, &c1);
    if (c1.refused_503 > c0.refused_503)
      break;
  }
  rcv_get_counts(r, &c1);
  CHECK(c1.refused_503 > c0.refused_503);
  CHECK(http_metric(srv, "segmentd_webhook_outbox_pending") > 0);
  json_t *before_kill = all_alerts(srv);
  srv_kill9(srv);
  rcv_get_counts(r, &c1);
  long kill_seq = c1.requests; /* records from here on came after the kill */
  json_t *rows = read_outbox(srv->db);
  size_t pend_a = count_pending(rows, "alerts"), pend_s = count_pending(rows, "segments");
  fprintf(stderr, "D: killed with %zu alert and %zu segment events pending, "
          "%zu alerts stored (%.1f s)\n", pend_a, pend_s,
          json_array_size(before_kill), now_s() - t0);
  CHECK(pend_a > 0);
  CHECK(pend_s > 0);
  rcv_set_unavailable(r, 0);
  CHECK_INT(srv_restart(srv), 0);
  CHECK_INT(wait_drained(srv, r, 1.2, 30), 0);

  /* everything: stored before the kill, alerts now, the segments replay */
  recs_load(r, &R);
  check_outbox_delivered(&R, rows);
  alerts = all_alerts(srv);
  size_t i;
  json_t *a;
  json_array_foreach(before_kill, i, a) { /* no alert lost by the kill */
    size_t j, found = 0;
    json_t *b;
    json_array_foreach(alerts, j, b)
      found += json_equal(json_object_get(a, "id"), json_object_get(b, "id"));
    CHECK_INT(found, 1);
  }
  check_alerts(&R, alerts);
  check_requests(&R, kill_seq);
  int moved = 0, fresh = 0, erased = 0;
  json_t *m = replay_segments(&R, &moved, &fresh, &erased);
  fprintf(stderr, "  segments: %d diffs with moves, %d users entered, erased "
          "diff %d; %zu alerts, events: %ld opened, %ld escalated, %ld "
          "cleared\n", moved, fresh, erased, json_array_size(alerts),
          count_event(&R, "alert.opened"), count_event(&R, "alert.escalated"),
          count_event(&R, "alert.cleared"));
  CHECK(moved >= 1);
  CHECK(fresh >= NEW_USERS);
  CHECK_INT(erased, 1);
  CHECK(R.n > 0 && !strcmp(R.q[0].path, SEGMENTS_PATH) &&
        R.env[0] && !strcmp(str_of(R.env[0], "event"),
                            "segments.snapshot"));
  CHECK(count_path(&R, SEGMENTS_PATH, 200) > 0 && count_path(&R, ALERTS_PATH, 200) > 0);
  check_membership(srv, m);
  json_decref(m);
  rcv_counts cf;
  rcv_get_counts(r, &cf);
  fprintf(stderr, "  receiver: %ld requests, %ld accepted, refused 500 %ld, "
          "429 %ld, closed %ld, 503 %ld\n", cf.requests, cf.accepted,
          cf.refused_500, cf.refused_429, cf.refused_close, cf.refused_503);
  CHECK(cf.refused_500 >= 2 && cf.refused_429 >= 2 && cf.refused_close >= 2);

  /* metrics, then a graceful stop: every row of the outbox is delivered */
  CHECK(http_metric(srv, "segmentd_webhook_deliveries_total") > 0);
  CHECK(http_metric(srv, "segmentd_webhook_outbox_pending") == 0);
  CHECK(http_metric(srv, "segmentd_webhook_given_up_total") == 0);
  CHECK_INT(srv_stop(srv), 0);
  json_t *final_rows = read_outbox(srv->db);
  CHECK_INT(count_pending(final_rows, "alerts") + count_pending(final_rows, "segments"), 0);
  check_outbox_delivered(&R, final_rows);
  json_decref(final_rows);

  recs_free(&R);
  json_decref(alerts);
  json_decref(before_kill);
  json_decref(rows);
  double took = now_s() - t0;
  fprintf(stderr, "test_webhooks_http: %.1f s%s\n", took,
          took < TIME_LIMIT_S ? "" : " (over the 60 s target: a loaded machine?)");
  if (check_failures)
    srv_dump_log(srv);
  srv_free(srv);
  rcv_stop(r);
  http_thread_done();
  return check_done("test_webhooks_http");
}
