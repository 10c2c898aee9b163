/*
 * harness_gen.c -- planted-segment users (see harness_gen.h).
 *
 * Every user has its own splitmix64 streams derived from (seed, user,
 * stream): 0 decides noise, 1 the user's context, 2 its events, 3 its
 * texts; so events and texts can be generated separately and agree.
 */
#include "harness_gen.h"

#include <stdint.h>
#include <stdio.h>

enum { N_TYPES = 12, N_TOPICS = 8, N_WORDS = 8, N_OPENERS = 8, DAYS = 4 };
enum { S_NOISE, S_CONTEXT, S_EVENTS, S_TEXTS };

static const char *const TYPES[N_TYPES] = {
    "page_view", "search",       "add_to_cart", "checkout",
    "wishlist",  "share",        "review",      "support_chat",
    "video_play", "download",    "invite",      "settings"};
static const char *const TOPICS[N_TOPICS][N_WORDS] = {
    {"refund", "invoice", "charge", "payment", "card", "fee", "receipt", "billing"},
    {"delivery", "package", "courier", "tracking", "parcel", "shipment", "address", "arrival"},
    {"password", "login", "email", "username", "profile", "verification", "reset", "security"},
    {"size", "colour", "material", "quality", "warranty", "model", "specs", "fabric"},
    {"return", "exchange", "damaged", "broken", "replace", "defect", "wrong", "label"},
    {"plan", "upgrade", "cancel", "renewal", "trial", "monthly", "annual", "tier"},
    {"crash", "update", "install", "notification", "screen", "bug", "version", "sync"},
    {"coupon", "discount", "voucher", "sale", "code", "offer", "deal", "points"}};
static const char *const OPENERS[N_OPENERS] = {
    "how do i", "i need help with", "question about", "please check my",
    "why is my", "can you explain", "problem with", "what about"};
static const char *const DEVICES[4] = {"ios", "android", "web", "desktop"};
static const char *const COUNTRIES[12] = {"US", "DE", "FR", "GB", "JP", "BR",
                                          "IN", "ES", "IT", "CA", "MX", "KR"};
static const char *const PLANS[4] = {"free", "plus", "pro", "team"};
static const long long BASE_MS = 1794787200000LL; /* 2026-11-16T00:00Z, Mon */
static const double P_TYPE = 0.75, P_HOUR = 0.85, P_CTX = 0.85, P_TOPIC = 0.85;

typedef struct {
  uint64_t s;
} rng;

static uint64_t rng_next(rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static int rng_int(rng *r, int n) { return (int)(rng_next(r) % (uint64_t)n); }

static double rng_unit(rng *r) { return (double)(rng_next(r) >> 11) * 0x1p-53; }

static rng user_rng(const gen_conf *c, int user, int stream) {
  rng r = {c->seed * 0xd1b54a32d192ed03ULL ^ (uint64_t)(user + 1) * 0x8cb92ba72f3d8dd7ULL ^
           (uint64_t)(stream + 1) * 0xabc98388fb8fac03ULL};
  rng_next(&r);
  return r;
}

static void user_id(const gen_conf *c, int user, char *out, size_t cap) {
  snprintf(out, cap, "%s%06d", c->prefix ? c->prefix : "u", user);
}

int gen_segment(const gen_conf *c, int user) {
  rng r = user_rng(c, user, S_NOISE);
  return rng_unit(&r) < c->noise_share ? -1 : user % c->n_segments;
}

/* The segment whose mix one draw follows: -1 (uniform) for a noise user,
 * a random segment when the view's signal is removed. */
static int pick(rng *r, const gen_conf *c, int seg, int drop) {
  return seg < 0 ? -1 : drop ? rng_int(r, c->n_segments) : seg;
}

const char *gen_planted_type(int seg, int j) {
  static const int offset[3] = {0, 4, 9};
  return TYPES[(seg + offset[j % 3]) % N_TYPES];
}

static const char *draw_type(rng *r, int seg) {
  if (seg >= 0 && rng_unit(r) < P_TYPE) return gen_planted_type(seg, rng_int(r, 3));
  return TYPES[rng_int(r, N_TYPES)];
}

static long long draw_ts(rng *r, const gen_conf *c, int seg) {
  int hour = rng_int(r, 24);
  if (seg >= 0 && rng_unit(r) < P_HOUR)
    hour = (seg * 24 / c->n_segments + rng_int(r, 5) - 2 + 24) % 24;
  long long sec = ((long long)rng_int(r, DAYS) * 24 + hour) * 3600 + rng_int(r, 3600);
  return BASE_MS + sec * 1000 + rng_int(r, 1000);
}

/* One categorical value: the segment's (index want) or a uniform one. */
static const char *draw_cat(rng *r, const char *const *vals, int n, int seg, int want) {
  return seg >= 0 && rng_unit(r) < P_CTX ? vals[want % n] : vals[rng_int(r, n)];
}

/* {"device","country","plan"} of a user (new reference). */
static json_t *user_context(const gen_conf *c, int user) {
  rng r = user_rng(c, user, S_CONTEXT);
  int seg = gen_segment(c, user), d = c->no_context_signal;
  int s1 = pick(&r, c, seg, d), s2 = pick(&r, c, seg, d), s3 = pick(&r, c, seg, d);
  return json_pack("{s:s,s:s,s:s}", "device", draw_cat(&r, DEVICES, 4, s1, s1),
                   "country", draw_cat(&r, COUNTRIES, 12, s2, s2), "plan",
                   draw_cat(&r, PLANS, 4, s3, s3 / 2));
}

static void user_events(const gen_conf *c, int user, json_t *out) {
  rng r = user_rng(c, user, S_EVENTS);
  int seg = gen_segment(c, user);
  json_t *ctx = user_context(c, user);
  char uid[64], eid[96];
  user_id(c, user, uid, sizeof(uid));
  for (int j = 0; j < c->events_per_user; j++) {
    json_t *props = json_deep_copy(ctx);
    json_object_set_new(props, "promo", json_boolean(rng_unit(&r) < 0.3));
    json_object_set_new(props, "price", json_real(1 + rng_int(&r, 19900) / 100.0));
    const char *type = draw_type(&r, pick(&r, c, seg, c->no_behaviour_signal));
    long long ts = draw_ts(&r, c, pick(&r, c, seg, c->no_time_signal));
    snprintf(eid, sizeof(eid), "%s-e%d", uid, j);
    json_array_append_new(out, json_pack("{s:s,s:s,s:s,s:I,s:o}", "event_id", eid,
                                         "user_id", uid, "type", type, "ts",
                                         (json_int_t)ts, "properties", props));
  }
  json_decref(ctx);
}

static void draw_text(rng *r, int seg, char *out, size_t cap) {
  int t = seg >= 0 && rng_unit(r) < P_TOPIC ? seg % N_TOPICS : rng_int(r, N_TOPICS);
  size_t used = (size_t)snprintf(out, cap, "%s", OPENERS[rng_int(r, N_OPENERS)]);
  for (int w = 0; w < 4 && used < cap; w++)
    used += (size_t)snprintf(out + used, cap - used, " %s", TOPICS[t][rng_int(r, N_WORDS)]);
}

static void user_texts(const gen_conf *c, int user, json_t *out) {
  rng r = user_rng(c, user, S_TEXTS);
  int seg = gen_segment(c, user);
  char uid[64], tid[96], text[192];
  user_id(c, user, uid, sizeof(uid));
  for (int j = 0; j < c->texts_per_user; j++) {
    draw_text(&r, pick(&r, c, seg, c->no_text_signal), text, sizeof(text));
    long long ts = draw_ts(&r, c, pick(&r, c, seg, c->no_time_signal));
    snprintf(tid, sizeof(tid), "%s-t%d", uid, j);
    json_array_append_new(out, json_pack("{s:s,s:s,s:s,s:I}", "text_id", tid, "user_id",
                                         uid, "text", text, "ts", (json_int_t)ts));
  }
}

json_t *gen_events(const gen_conf *c, int from, int to) {
  json_t *a = json_array();
  for (int u = from; u < to; u++) user_events(c, u, a);
  return a;
}

json_t *gen_texts(const gen_conf *c, int from, int to) {
  json_t *a = json_array();
  for (int u = from; u < to; u++) user_texts(c, u, a);
  return a;
}

int gen_batch_users(const gen_conf *c) {
  int e = c->events_per_user > 0 ? GEN_BATCH_MAX / c->events_per_user : GEN_BATCH_MAX;
  int t = c->texts_per_user > 0 ? GEN_BATCH_MAX / c->texts_per_user : GEN_BATCH_MAX;
  int n = e < t ? e : t;
  return n > 0 ? n : 1;
}

json_t *gen_labels(const gen_conf *c) {
  json_t *o = json_object();
  char uid[64], lab[24];
  for (int u = 0; u < c->n_users; u++) {
    int s = gen_segment(c, u);
    if (s < 0) continue;
    user_id(c, u, uid, sizeof(uid));
    snprintf(lab, sizeof(lab), "seg-%d", s);
    json_object_set_new(o, uid, json_string(lab));
  }
  return o;
}

/* Ingests one non-empty array (stolen); 200 for an empty one. */
static long ingest_kind(sd_server *srv, const char *kind, json_t *items) {
  long st = json_array_size(items) ? ingest(srv, kind, items, NULL, NULL) : 200;
  json_decref(items);
  return st;
}

long gen_ingest(sd_server *srv, const gen_conf *c) {
  int step = gen_batch_users(c);
  for (int u = 0; u < c->n_users; u += step) {
    int to = u + step < c->n_users ? u + step : c->n_users;
    long st = ingest_kind(srv, "events", gen_events(c, u, to));
    if (st == 200) st = ingest_kind(srv, "texts", gen_texts(c, u, to));
    if (st != 200) return st;
  }
  return 200;
}
