/*
 * label_terms.c -- vocabulary, per-cluster word counts and c-TF-IDF
 * ranking (see label_terms.h).
 *
 * Terms are words and adjacent word pairs ("card payment"), stop words
 * left out. Two open-addressing tables: terms -> term index, and
 * (cluster << 32 | term) -> count. Both grow by doubling at 50% load.
 */
#include "segmentd/label_terms.h"
#include "segmentd/err.h"
#include "segmentd/tokenize.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TERMS_MAX_VOCAB 500000

typedef struct {
  char *w;
  uint32_t len;
  int64_t total;
} term;

typedef struct {
  uint64_t key; /* (cluster + 1) << 32 | term; 0 = empty */
  int64_t count;
} pair;

struct sd_terms {
  term *terms;
  size_t n_terms, cap_terms;
  uint32_t *vocab; /* term index + 1, 0 = empty */
  size_t vocab_cap;
  pair *pairs;
  size_t n_pairs, pairs_cap;
};

static const char *const stop_words[] = {
    "a", "about", "above", "after", "again", "against", "all", "am", "an",
    "and", "any", "are", "as", "at", "be", "because", "been", "before",
    "being", "below", "between", "both", "but", "by", "can", "could", "did",
    "do", "does", "doing", "don", "down", "during", "each", "few", "for",
    "from", "further", "get", "got", "had", "has", "have", "having", "he",
    "her", "here", "hers", "herself", "him", "himself", "his", "how", "if",
    "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most",
    "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once",
    "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own",
    "same", "she", "should", "so", "some", "such", "than", "that", "the",
    "their", "theirs", "them", "themselves", "then", "there", "these",
    "they", "this", "those", "through", "to", "too", "under", "until", "up",
    "very", "was", "we", "were", "what", "when", "where", "which", "while",
    "who", "whom", "why", "will", "with", "would", "you", "your", "yours",
    "yourself", "yourselves", "im", "ive", "cant", "dont", "didnt", "isnt",
    "wont", "please", "still", "also", "yet", "need", "want", "one"};

int sd_is_stopword(const char *w, size_t len) {
  for (size_t i = 0; i < sizeof(stop_words) / sizeof(stop_words[0]); i++)
    if (strlen(stop_words[i]) == len && !memcmp(stop_words[i], w, len))
      return 1;
  return 0;
}

sd_terms *sd_terms_new(void) { return calloc(1, sizeof(sd_terms)); }

void sd_terms_free(sd_terms *t) {
  if (!t) return;
  for (size_t i = 0; i < t->n_terms; i++) free(t->terms[i].w);
  free(t->terms);
  free(t->vocab);
  free(t->pairs);
  free(t);
}

void sd_terms_reset(sd_terms *t) {
  if (t->pairs) memset(t->pairs, 0, t->pairs_cap * sizeof(pair));
  t->n_pairs = 0;
  for (size_t i = 0; i < t->n_terms; i++) t->terms[i].total = 0;
}

static int vocab_grow(sd_terms *t) {
  size_t nc = t->vocab_cap ? t->vocab_cap * 2 : 1024;
  uint32_t *nv = calloc(nc, sizeof(uint32_t));
  if (!nv) return SD_ENOMEM;
  for (size_t i = 0; i < t->n_terms; i++) {
    size_t h = sd_hash64(t->terms[i].w, t->terms[i].len, 7) & (nc - 1);
    while (nv[h]) h = (h + 1) & (nc - 1);
    nv[h] = (uint32_t)i + 1;
  }
  free(t->vocab);
  t->vocab = nv;
  t->vocab_cap = nc;
  return 0;
}

/* Index of word w, added if new; -1 when the vocabulary is full, or
 * SD_ENOMEM. */
static long vocab_find(sd_terms *t, const char *w, size_t len) {
  if ((t->n_terms + 1) * 2 > t->vocab_cap && vocab_grow(t) < 0)
    return SD_ENOMEM;
  size_t h = sd_hash64(w, len, 7) & (t->vocab_cap - 1);
  while (t->vocab[h]) {
    term *x = &t->terms[t->vocab[h] - 1];
    if (x->len == len && !memcmp(x->w, w, len)) return t->vocab[h] - 1;
    h = (h + 1) & (t->vocab_cap - 1);
  }
  if (t->n_terms >= TERMS_MAX_VOCAB) return -1;
  if (t->n_terms == t->cap_terms) {
    size_t nc = t->cap_terms ? t->cap_terms * 2 : 1024;
    term *nt = realloc(t->terms, nc * sizeof(term));
    if (!nt) return SD_ENOMEM;
    t->terms = nt;
    t->cap_terms = nc;
  }
  char *copy = malloc(len + 1);
  if (!copy) return SD_ENOMEM;
  memcpy(copy, w, len);
  copy[len] = 0;
  t->terms[t->n_terms] = (term){copy, (uint32_t)len, 0};
  t->vocab[h] = (uint32_t)++t->n_terms;
  return (long)t->n_terms - 1;
}

static int pairs_grow(sd_terms *t) {
  size_t nc = t->pairs_cap ? t->pairs_cap * 2 : 4096;
  pair *np = calloc(nc, sizeof(pair));
  if (!np) return SD_ENOMEM;
  for (size_t i = 0; i < t->pairs_cap; i++) {
    if (!t->pairs[i].key) continue;
    size_t h = sd_hash64(&t->pairs[i].key, 8, 9) & (nc - 1);
    while (np[h].key) h = (h + 1) & (nc - 1);
    np[h] = t->pairs[i];
  }
  free(t->pairs);
  t->pairs = np;
  t->pairs_cap = nc;
  return 0;
}

static int pair_add(sd_terms *t, int c, long term_idx, int delta) {
  if ((t->n_pairs + 1) * 2 > t->pairs_cap && pairs_grow(t) < 0)
    return SD_ENOMEM;
  uint64_t key = ((uint64_t)(c + 1) << 32) | (uint64_t)term_idx;
  size_t h = sd_hash64(&key, 8, 9) & (t->pairs_cap - 1);
  while (t->pairs[h].key && t->pairs[h].key != key)
    h = (h + 1) & (t->pairs_cap - 1);
  if (!t->pairs[h].key) {
    t->pairs[h].key = key;
    t->n_pairs++;
  }
  t->pairs[h].count += delta;
  t->terms[term_idx].total += delta;
  return 0;
}

/* Counts one term (a word or "w1 w2") in cluster c. */
static int term_add(sd_terms *t, int c, const char *s, size_t n, int delta) {
  long idx = vocab_find(t, s, n);
  if (idx == SD_ENOMEM) return SD_ENOMEM;
  return idx >= 0 ? pair_add(t, c, idx, delta) : 0;
}

static int word_ok(const sd_words *w, size_t i) {
  return w->len[i] <= 64 && !sd_is_stopword(w->buf + w->off[i], w->len[i]);
}

int sd_terms_add(sd_terms *t, int c, const char *text, size_t len, int delta) {
  sd_words w;
  char bigram[2 * 64 + 2];
  int rc = sd_words_split(text, len, &w);
  if (rc < 0) return rc;
  for (size_t i = 0; i < w.n && rc == 0; i++) {
    if (!word_ok(&w, i)) continue;
    rc = term_add(t, c, w.buf + w.off[i], w.len[i], delta);
    if (rc == 0 && i + 1 < w.n && word_ok(&w, i + 1)) { /* adjacent bigram */
      int n = snprintf(bigram, sizeof(bigram), "%.*s %.*s", (int)w.len[i],
                       w.buf + w.off[i], (int)w.len[i + 1], w.buf + w.off[i + 1]);
      rc = term_add(t, c, bigram, (size_t)n, delta);
    }
  }
  sd_words_free(&w);
  return rc;
}

/* Inserts (score, term) into a descending top-n list. */
static void top_insert(double *sc, const char **out, int n, double s,
                       const char *w) {
  if (out[n - 1] && s <= sc[n - 1]) return;
  int j = n - 1;
  while (j > 0 && (!out[j - 1] || s > sc[j - 1])) {
    sc[j] = sc[j - 1];
    out[j] = out[j - 1];
    j--;
  }
  sc[j] = s;
  out[j] = w;
}

int sd_terms_top(const sd_terms *t, int k, int n, const char **out) {
  double *sc = calloc((size_t)k * n, sizeof(double));
  if (!sc) return SD_ENOMEM;
  memset(out, 0, sizeof(char *) * (size_t)k * n);
  double words = 0;
  for (size_t i = 0; i < t->pairs_cap; i++)
    if (t->pairs[i].key && t->pairs[i].count > 0) words += t->pairs[i].count;
  double avg = k > 0 ? words / k : 0;
  for (size_t i = 0; i < t->pairs_cap; i++) {
    const pair *p = &t->pairs[i];
    if (!p->key || p->count <= 0) continue;
    int c = (int)(p->key >> 32) - 1;
    const term *x = &t->terms[p->key & 0xffffffffu];
    if (c < 0 || c >= k || x->total <= 0) continue;
    double s = (double)p->count * log(1.0 + avg / (double)x->total);
    top_insert(sc + (size_t)c * n, out + (size_t)c * n, n, s, x->w);
  }
  free(sc);
  return 0;
}
