/*
 * tokenize.c -- words, n-gram features and hashing (see tokenize.h).
 *
 * The feature set follows the strongest lexical pipeline we measured for
 * short intent texts: character 3-5 grams inside each whitespace token padded
 * with one space each side (so "card?" gives " ca", "car", ..., "d? "), plus
 * word unigrams and bigrams in a separate hash namespace.
 */
#include "segmentd/tokenize.h"
#include "segmentd/err.h"

#include <stdlib.h>
#include <string.h>

void sd_sparse_free(sd_sparse *s) {
  if (!s) return;
  free(s->idx);
  free(s->val);
  memset(s, 0, sizeof(*s));
}

void sd_words_free(sd_words *w) {
  if (!w) return;
  free(w->buf);
  free(w->off);
  free(w->len);
  memset(w, 0, sizeof(*w));
}

uint64_t sd_hash64(const void *data, size_t len, uint64_t seed) {
  const unsigned char *p = data;
  uint64_t h = 1469598103934665603ULL ^ seed;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

static int tok_is_word(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c >= 0x80;
}

static int tok_is_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
         c == '\v';
}

static char *tok_lower(const char *text, size_t len) {
  char *b = malloc(len + 1);
  if (!b) return NULL;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)text[i];
    b[i] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
  }
  b[len] = 0;
  return b;
}

int sd_words_split(const char *text, size_t len, sd_words *out) {
  memset(out, 0, sizeof(*out));
  if (len > UINT32_MAX / 2) return SD_EINVAL;
  size_t cap = len / 2 + 1;
  out->buf = tok_lower(text, len);
  out->off = malloc(cap * sizeof(uint32_t));
  out->len = malloc(cap * sizeof(uint32_t));
  if (!out->buf || !out->off || !out->len) {
    sd_words_free(out);
    return SD_ENOMEM;
  }
  size_t i = 0;
  while (i < len) {
    while (i < len && !tok_is_word((unsigned char)out->buf[i])) i++;
    size_t s = i;
    while (i < len && tok_is_word((unsigned char)out->buf[i])) i++;
    if (i - s >= 2) {
      out->off[out->n] = (uint32_t)s;
      out->len[out->n] = (uint32_t)(i - s);
      out->n++;
    }
  }
  return 0;
}

/* A growable list of bucket hashes, sorted and counted at the end. */
typedef struct {
  uint32_t *h;
  size_t n, cap;
  uint32_t mask;
  int oom;
} tok_bag;

static void bag_add(tok_bag *b, const void *p, size_t len, uint64_t ns) {
  if (b->oom) return;
  if (b->n == b->cap) {
    size_t nc = b->cap ? b->cap * 2 : 256;
    uint32_t *nh = realloc(b->h, nc * sizeof(uint32_t));
    if (!nh) {
      b->oom = 1;
      return;
    }
    b->h = nh;
    b->cap = nc;
  }
  b->h[b->n++] = (uint32_t)sd_hash64(p, len, ns) & b->mask;
}

/* Character 3-5 grams of " token " for each whitespace-separated token. */
static void bag_char_grams(tok_bag *b, const char *s, size_t len) {
  char pad[64 + 2];
  size_t i = 0;
  while (i < len) {
    while (i < len && tok_is_space((unsigned char)s[i])) i++;
    size_t st = i;
    while (i < len && !tok_is_space((unsigned char)s[i])) i++;
    size_t tl = i - st;
    if (!tl) continue;
    if (tl > 64) tl = 64; /* very long tokens: first 64 bytes carry the signal */
    pad[0] = ' ';
    memcpy(pad + 1, s + st, tl);
    pad[tl + 1] = ' ';
    size_t pl = tl + 2;
    for (size_t n = 3; n <= 5; n++) {
      for (size_t p = 0; p + n <= pl; p++) bag_add(b, pad + p, n, 0);
      if (pl <= n) break; /* the whole padded token was the n-gram */
    }
  }
}

static void bag_word_grams(tok_bag *b, const sd_words *w) {
  char pair[2 * 256 + 1];
  for (size_t i = 0; i < w->n; i++) {
    bag_add(b, w->buf + w->off[i], w->len[i], 0x5751);
    if (i + 1 < w->n && w->len[i] <= 256 && w->len[i + 1] <= 256) {
      memcpy(pair, w->buf + w->off[i], w->len[i]);
      pair[w->len[i]] = ' ';
      memcpy(pair + w->len[i] + 1, w->buf + w->off[i + 1], w->len[i + 1]);
      bag_add(b, pair, w->len[i] + 1 + w->len[i + 1], 0x5751);
    }
  }
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

static int bag_to_sparse(tok_bag *b, sd_sparse *out) {
  if (b->n) qsort(b->h, b->n, sizeof(uint32_t), cmp_u32);
  size_t uniq = 0;
  for (size_t i = 0; i < b->n; i++)
    if (i == 0 || b->h[i] != b->h[i - 1]) uniq++;
  out->idx = malloc((uniq ? uniq : 1) * sizeof(uint32_t));
  out->val = malloc((uniq ? uniq : 1) * sizeof(float));
  if (!out->idx || !out->val) {
    sd_sparse_free(out);
    return SD_ENOMEM;
  }
  out->cap = uniq;
  for (size_t i = 0; i < b->n; i++) {
    if (i == 0 || b->h[i] != b->h[i - 1]) {
      out->idx[out->n] = b->h[i];
      out->val[out->n++] = 1.0f;
    } else {
      out->val[out->n - 1] += 1.0f;
    }
  }
  return 0;
}

int sd_features(const char *text, size_t len, unsigned bits, sd_sparse *out) {
  memset(out, 0, sizeof(*out));
  if (bits < 4 || bits > 30) return SD_EINVAL;
  sd_words w;
  int rc = sd_words_split(text, len, &w);
  if (rc < 0) return rc;
  tok_bag b = {.mask = (uint32_t)((1u << bits) - 1)};
  bag_char_grams(&b, w.buf, len);
  bag_word_grams(&b, &w);
  rc = b.oom ? SD_ENOMEM : bag_to_sparse(&b, out);
  free(b.h);
  sd_words_free(&w);
  return rc;
}
