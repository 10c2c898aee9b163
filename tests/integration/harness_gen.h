/*
 * harness_gen.h -- planted-segment users for the integration tests.
 *
 * A deterministic generator (seeded; every user has its own random
 * stream, so any range of users can be generated on its own, in any order)
 * of users that belong to one of n_segments planted segments, or, for a
 * noise_share of them, to none. A segment shows in every view of the
 * segments space:
 *   behaviour  3 preferred event types of 12 (75% of its events; two
 *              segments share at most one type);
 *   time       activity around a segment-specific peak hour (UTC) +- 2 h
 *              (85%), over 4 days from 2026-11-16 ("ts" in epoch ms);
 *   context    a device, country and plan per user, each the segment's with
 *              probability 0.85 (string properties of every event, with a
 *              boolean "promo" and a numeric "price" as noise);
 *   text       short texts about the segment's topic (85%), from 8 topic
 *              word lists (segments 8.. reuse topics 0..).
 * A no_*_signal switch removes one view's signal: every user then draws
 * that view from the same mix (the average of the segments' mixes). Noise
 * users draw every view uniformly and are LEFT OUT of gen_labels().
 * bench/gen_segments.py follows the same design (not bit-identical).
 *
 * Ids: user "<prefix><6 digits>", event "<user>-e<j>", text "<user>-t<j>".
 * Ownership: every json_t returned is a new reference for the caller.
 */
#ifndef SD_TEST_HARNESS_GEN_H
#define SD_TEST_HARNESS_GEN_H

#include "harness.h"

#include <jansson.h>

#define GEN_SEG_MAX 12
#define GEN_BATCH_MAX 2000 /* items per ingest batch (server default 10000) */

typedef struct {
  int n_users, n_segments; /* 1..GEN_SEG_MAX segments */
  int events_per_user, texts_per_user;
  double noise_share; /* share of users with no segment pattern */
  unsigned long long seed;
  int no_behaviour_signal, no_time_signal, no_context_signal, no_text_signal;
  const char *prefix; /* user id prefix; NULL = "u" */
} gen_conf;

/* The j-th (0..2) event type segment seg prefers. */
const char *gen_planted_type(int seg, int j);

/* The planted segment of user i (0-based), or -1 for a noise user. */
int gen_segment(const gen_conf *c, int user);

/* The events / texts of users [from, to) as a JSON array of ingest items. */
json_t *gen_events(const gen_conf *c, int from, int to);
json_t *gen_texts(const gen_conf *c, int from, int to);

/* How many users' events (and, separately, texts) fit one batch of
 * GEN_BATCH_MAX items: the smaller of the two, at least 1. */
int gen_batch_users(const gen_conf *c);

/* {"<user id>": "seg-<s>"} of every user with a segment (noise users are
 * left out, so an evaluation scores only planted users). */
json_t *gen_labels(const gen_conf *c);

/* Ingests the events and texts of every user, gen_batch_users() users per
 * request. Returns 200, or the first other HTTP status (then stops). */
long gen_ingest(sd_server *srv, const gen_conf *c);

#endif
