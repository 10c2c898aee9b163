/*
 * ingest.c -- validation of ingest batches (see ingest.h).
 *
 * Every item is checked and every problem reported (up to a cap) so a
 * client can fix a whole batch in one round trip.
 */
#include "segmentd/ingest.h"
#include "segmentd/err.h"
#include "segmentd/timeutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DETAILS 100

typedef struct {
  json_t *details;
  size_t count;
} problems;

static void problem(problems *p, long index, const char *field,
                    const char *what) {
  p->count++;
  if (json_array_size(p->details) >= MAX_DETAILS) return;
  json_t *d = index < 0
                  ? json_pack("{s:s,s:s}", "field", field, "problem", what)
                  : json_pack("{s:I,s:s,s:s}", "index", (json_int_t)index,
                              "field", field, "problem", what);
  if (d) json_array_append_new(p->details, d);
}

size_t sd_json_depth(const json_t *v, size_t limit) {
  size_t best = 0;
  if (limit == 0) return 1;
  if (json_is_object(v)) {
    const char *k;
    json_t *c;
    json_object_foreach((json_t *)v, k, c) {
      size_t d = sd_json_depth(c, limit - 1);
      if (d > best) best = d;
      if (best >= limit) break;
    }
  } else if (json_is_array(v)) {
    for (size_t i = 0; i < json_array_size(v) && best < limit; i++) {
      size_t d = sd_json_depth(json_array_get(v, i), limit - 1);
      if (d > best) best = d;
    }
  }
  return best + 1;
}

int sd_parse_ts(const json_t *v, int64_t *ms) {
  if (json_is_string(v))
    return sd_time_parse(json_string_value(v), json_string_length(v), ms) < 0
               ? SD_EINVALID : 0;
  if (json_is_integer(v)) {
    json_int_t x = json_integer_value(v);
    if (x < 0 || x > SD_TIME_MAX_MS) return SD_EINVALID;
    *ms = x;
    return 0;
  }
  return SD_EINVALID;
}

int sd_parse_vector(const json_t *a, int dim, float *out,
                    const char **problem_out) {
  if (!json_is_array(a)) {
    *problem_out = "must be an array of numbers";
    return SD_EINVALID;
  }
  if (json_array_size(a) != (size_t)dim) {
    *problem_out = "wrong dimension";
    return SD_EINVALID;
  }
  for (int i = 0; i < dim; i++) {
    const json_t *x = json_array_get(a, (size_t)i);
    if (!json_is_number(x)) {
      *problem_out = "must be an array of numbers";
      return SD_EINVALID;
    }
    double d = json_number_value(x);
    float f = (float)d;
    if (!isfinite(d) || !isfinite(f)) {
      *problem_out = "values must be finite float32 numbers";
      return SD_EINVALID;
    }
    out[i] = f;
  }
  return 0;
}

/* A required or optional id-like string field; returns it or NULL. */
static const char *field_id(json_t *item, const char *name, int required,
                            size_t max, long index, problems *p) {
  json_t *v = json_object_get(item, name);
  if (!v || json_is_null(v)) {
    if (required) problem(p, index, name, "missing");
    return NULL;
  }
  if (!json_is_string(v)) {
    problem(p, index, name, "must be a string");
    return NULL;
  }
  size_t n = json_string_length(v);
  if (n == 0) problem(p, index, name, "must not be empty");
  else if (n > max)
    problem(p, index, name, max == SD_MAX_ID ? "longer than 256 bytes"
                                             : "longer than the id limit");
  else if (memchr(json_string_value(v), 0, n))
    problem(p, index, name, "must not contain NUL");
  else return json_string_value(v);
  return NULL;
}

static void field_ts(json_t *item, long index, int64_t now, int64_t *ts,
                     problems *p) {
  json_t *v = json_object_get(item, "ts");
  *ts = now;
  if (!v || json_is_null(v)) return;
  if (sd_parse_ts(v, ts) < 0)
    problem(p, index, "ts", "must be an RFC 3339 string or integer epoch "
                            "milliseconds (1970..9999)");
}

static void check_event(json_t *item, long i, const sd_limits *lim,
                        int64_t now, sd_event *e, problems *p) {
  size_t max = lim->max_id ? lim->max_id : SD_MAX_ID;
  e->event_id = field_id(item, "event_id", 1, max, i, p);
  e->user_id = field_id(item, "user_id", 1, max, i, p);
  e->type = field_id(item, "type", 1, SD_MAX_ID, i, p);
  field_ts(item, i, now, &e->ts, p);
  json_t *props = json_object_get(item, "properties");
  if (props && !json_is_null(props)) {
    if (!json_is_object(props))
      problem(p, i, "properties", "must be an object");
    else if (json_object_size(props) > lim->max_props)
      problem(p, i, "properties", "too many properties");
    else
      e->props = props;
  }
}

static int text_blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
      return 0;
  return 1;
}

static void check_text(json_t *item, long i, const sd_limits *lim,
                       int64_t now, sd_text *t, float *vec, problems *p) {
  size_t max = lim->max_id ? lim->max_id : SD_MAX_ID;
  t->text_id = field_id(item, "text_id", 1, max, i, p);
  t->user_id = field_id(item, "user_id", 0, max, i, p);
  field_ts(item, i, now, &t->ts, p);
  json_t *v = json_object_get(item, "text");
  if (!v || json_is_null(v)) problem(p, i, "text", "missing");
  else if (!json_is_string(v)) problem(p, i, "text", "must be a string");
  else if (json_string_length(v) > lim->max_text)
    problem(p, i, "text", "longer than the text limit");
  else if (text_blank(json_string_value(v), json_string_length(v)))
    problem(p, i, "text", "must not be empty or blank");
  else {
    t->text = json_string_value(v);
    t->text_len = json_string_length(v);
  }
  json_t *emb = json_object_get(item, "embedding");
  const char *what = NULL;
  if (emb && !json_is_null(emb)) {
    if (sd_parse_vector(emb, lim->dim, vec, &what) < 0)
      problem(p, i, "embedding", what);
    else
      t->embedding = vec;
  }
}

static int batch_items(sd_batch *b, json_t *arr, const sd_limits *lim,
                       int64_t now, problems *p) {
  b->n = json_array_size(arr);
  if (b->kind == SD_BATCH_EVENTS) {
    b->events = calloc(b->n, sizeof(sd_event));
    if (!b->events) return SD_ENOMEM;
  } else {
    b->texts = calloc(b->n, sizeof(sd_text));
    b->vectors = malloc(b->n * (size_t)lim->dim * sizeof(float));
    if (!b->texts || !b->vectors) return SD_ENOMEM;
  }
  for (size_t i = 0; i < b->n; i++) {
    json_t *item = json_array_get(arr, i);
    if (!json_is_object(item)) {
      problem(p, (long)i, "", "item must be an object");
      continue;
    }
    if (b->kind == SD_BATCH_EVENTS)
      check_event(item, (long)i, lim, now, &b->events[i], p);
    else
      check_text(item, (long)i, lim, now, &b->texts[i],
                 b->vectors + i * (size_t)lim->dim, p);
  }
  return 0;
}

int sd_batch_parse(sd_batch_kind kind, const char *body, size_t len,
                   const sd_limits *lim, int64_t now_ms, sd_batch *out,
                   json_t **details, char *msg, size_t msglen) {
  json_error_t jerr;
  const char *key = kind == SD_BATCH_EVENTS ? "events" : "texts";
  memset(out, 0, sizeof(*out));
  *details = NULL;
  out->kind = kind;
  out->root =
      json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
  if (!out->root) {
    snprintf(msg, msglen, "malformed JSON at line %d column %d: %s",
             jerr.line, jerr.column, jerr.text);
    return SD_EJSON;
  }
  if (sd_json_depth(out->root, lim->max_depth + 1) > lim->max_depth) {
    snprintf(msg, msglen, "JSON nested deeper than %zu levels", lim->max_depth);
    return SD_EINVAL;
  }
  json_t *arr = json_object_get(out->root, key);
  problems p = {json_array(), 0};
  if (!p.details) return SD_ENOMEM;
  if (!json_is_object(out->root) || !json_is_array(arr)) {
    problem(&p, -1, key, "must be an array of items in a JSON object");
  } else if (json_array_size(arr) == 0) {
    problem(&p, -1, key, "the batch is empty");
  } else if (json_array_size(arr) > lim->max_batch) {
    snprintf(msg, msglen, "batch of %zu items exceeds the limit of %zu",
             json_array_size(arr), lim->max_batch);
    json_decref(p.details);
    return SD_ETOOLARGE;
  } else if (batch_items(out, arr, lim, now_ms, &p) < 0) {
    json_decref(p.details);
    return SD_ENOMEM;
  }
  if (p.count) {
    snprintf(msg, msglen, "%zu problem%s in the batch; nothing was stored",
             p.count, p.count == 1 ? "" : "s");
    *details = p.details;
    return SD_EINVALID;
  }
  json_decref(p.details);
  return 0;
}

void sd_batch_free(sd_batch *b) {
  if (!b) return;
  json_decref(b->root);
  free(b->events);
  free(b->texts);
  free(b->vectors);
  memset(b, 0, sizeof(*b));
}
