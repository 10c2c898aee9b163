/*
 * label_terms.h -- class-based TF-IDF top terms of text clusters.
 *
 * Owns: a vocabulary of terms (words and adjacent word pairs, stop words
 * dropped), each term's count per
 * cluster and in total, and the c-TF-IDF ranking
 *   score(t, c) = tf(t, c) * ln(1 + A / tf(t)),  A = mean words per cluster
 * (Grootendorst 2022). Clusters are indexes 0..k-1 of the live model.
 *
 * Threads: writer-only (no locking). Memory: sd_terms_new allocates,
 * sd_terms_free releases (NULL-safe). Strings returned by sd_terms_top
 * point into the vocabulary, which never shrinks: they stay valid until
 * sd_terms_free.
 */
#ifndef SEGMENTD_LABEL_TERMS_H
#define SEGMENTD_LABEL_TERMS_H

#include <stddef.h>
#include <stdint.h>

typedef struct sd_terms sd_terms;

sd_terms *sd_terms_new(void);
void sd_terms_free(sd_terms *t);

/* Forgets every per-cluster count (a new model); the vocabulary stays. */
void sd_terms_reset(sd_terms *t);

/* Counts the words of text in cluster c (delta +1 to add, -1 to remove).
 * 0 or SD_ENOMEM (the vocabulary is capped: words past the cap are
 * ignored, not an error). */
int sd_terms_add(sd_terms *t, int c, const char *text, size_t len, int delta);

/* Top n terms of each of the k clusters: out[c * n + j] is the j-th term of
 * cluster c or NULL. out has k * n entries. 0 or SD_ENOMEM. */
int sd_terms_top(const sd_terms *t, int k, int n, const char **out);

/* Is this lower-case word an English stop word? */
int sd_is_stopword(const char *w, size_t len);

#endif
