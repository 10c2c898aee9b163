/*
 * ingest.h -- parsing and validating ingest batches (POST /v1/events,
 * POST /v1/texts) into typed items, before anything is stored.
 *
 * Owns: the rules of a valid item (API.md) and the limits on bodies,
 * batches, ids, texts, properties and nesting. A batch is either wholly
 * valid or rejected with per-item details; nothing here touches storage.
 *
 * Memory: sd_batch owns the parsed JSON tree its strings point into, plus
 * its item arrays; sd_batch_free releases all of it (NULL-safe). The
 * details array returned on error is a new reference the caller decrefs.
 */
#ifndef SEGMENTD_INGEST_H
#define SEGMENTD_INGEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define SD_MAX_ID 256 /* bytes of an id or an event type */

typedef struct {
  size_t max_batch, max_text, max_props, max_depth;
  int dim;
  size_t max_id; /* bytes of an event, text or user id (--max-id); 0 =
                    SD_MAX_ID. Event types are held to SD_MAX_ID. */
} sd_limits;

typedef struct {
  const char *event_id, *user_id, *type; /* point into the batch's JSON */
  int64_t ts;                            /* epoch ms */
  json_t *props;                         /* borrowed object, or NULL */
} sd_event;

typedef struct {
  const char *text_id, *user_id, *text; /* user_id may be NULL */
  size_t text_len;
  int64_t ts;
  const float *embedding; /* dim floats inside the batch, or NULL */
} sd_text;

/* SD_BATCH_EMBED is not parsed from a request: the embedding queue
 * (embed_queue.h) builds it for stored texts that were waiting for their
 * embedding (texts[i].embedding NULL = embed it with the built-in
 * encoder). */
typedef enum { SD_BATCH_EVENTS, SD_BATCH_TEXTS, SD_BATCH_EMBED } sd_batch_kind;

typedef struct {
  sd_batch_kind kind;
  json_t *root;
  size_t n;
  sd_event *events; /* n entries when kind is EVENTS */
  sd_text *texts;   /* n entries when kind is TEXTS */
  float *vectors;   /* client embeddings, dim each */
  int64_t *rowids;  /* SD_BATCH_EMBED only: texts.id of each item */
  int64_t *seqs;    /* SD_BATCH_EMBED only: embed_queue.seq of each item */
} sd_batch;

/*
 * Parses body as a batch of the given kind. now_ms stands in for missing
 * timestamps. Returns 0, or a negative sd_err with msg set and, for
 * SD_EINVALID, *details = [{"index","field","problem"}, ...] (at most 100).
 */
int sd_batch_parse(sd_batch_kind kind, const char *body, size_t len,
                   const sd_limits *lim, int64_t now_ms, sd_batch *out,
                   json_t **details, char *msg, size_t msglen);
void sd_batch_free(sd_batch *b);

/* Depth of a JSON value (a scalar is 1), stopping once above limit. */
size_t sd_json_depth(const json_t *v, size_t limit);

/* Checks an embedding array: dim finite numbers into out. 0 or SD_EINVALID
 * with problem set to a static description. */
int sd_parse_vector(const json_t *a, int dim, float *out, const char **problem);

/* A timestamp value: RFC 3339 string or integer epoch ms. 0 or SD_EINVALID. */
int sd_parse_ts(const json_t *v, int64_t *ms);

#endif
