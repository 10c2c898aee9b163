/*
 * harness_drift.h -- drift helpers of the integration tests: a stream of
 * texts mixing the planted topics with a new topic, one check round, and
 * the alert history (harness_drift.c).
 *
 * Ownership: every json_t returned is a new reference for the caller.
 * Failures are returned (statuses), never asserted here: the test program
 * checks them with its own CHECK counters.
 */
#ifndef SD_TEST_HARNESS_DRIFT_H
#define SD_TEST_HARNESS_DRIFT_H

#include <jansson.h>

#include "harness.h"

/* The 8 words of the new topic (crypto, bitcoin, ...). */
#define DRIFT_NEW_WORDS 8
extern const char *const drift_new_words[DRIFT_NEW_WORDS];

/* 1 when w contains a word of the new topic. */
int drift_is_new_word(const char *w);

/* POSTs n texts (ids "dt-<i>", users "du-<i % 40>", i counting on across
 * calls of the process): in every 10, round(fresh * 10) about the new
 * topic (6 of its words), the rest planted texts (planted_text). The HTTP
 * status. */
long drift_ingest_mix(sd_server *srv, int n, double fresh);

/* One round of checks (GET /v1/drift?refresh=true): the drifted checks of
 * the space at `index` of "spaces" (0 intents, 1 segments), or NULL when
 * the answer is not 200 (*status says). With all, *all gets the whole
 * answer (else it is released). */
json_t *drift_check(sd_server *srv, int index, long *status, json_t **all);

/* The check of the space at `index` of a GET /v1/drift answer with this
 * kind and method (borrowed), or NULL. */
json_t *drift_check_of(const json_t *drift, int index, const char *kind,
                       const char *method);

/* 1 when checks (an array) has one of kind and (NULL: any) method. */
int drift_has_kind(const json_t *checks, const char *kind, const char *method);

/* The alerts of a kind (GET /v1/alerts?limit=1000), or NULL when the answer
 * is not 200 (*status says). */
json_t *drift_alerts_of(sd_server *srv, const char *kind, long *status);

/* Polls GET /v1/spaces/<space>/clusters until its model_version is at
 * least version: 0 then, -1 after timeout_s (times
 * harness_timeout_scale()). For a model installed after the first, such
 * as the segments re-cluster that follows the first intents model's
 * encoder refit. */
int drift_wait_version(sd_server *srv, const char *space, long long version,
                       double timeout_s);

#endif
