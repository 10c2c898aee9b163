/*
 * lsa_eval.c -- clustering quality of the LSA encoder on labelled texts
 * (BANKING77 by default), against the random-projection encoder. See
 * bench/README.md, "LSA encoder quality (lsa_eval)"; run by lsa_eval.sh,
 * which also runs the scikit-learn baseline in the same run.
 *
 * Pipeline, mirroring lexical_baseline.py's hash_lsa256_km: sd_features
 * (hashed char_wb 3-5 grams + word 1-2 grams, 2^SD_ENCODER_BITS buckets),
 * TF-IDF over all texts exactly as the encoder weights them (1 + ln tf,
 * idf ln((1+N)/(1+df)) + 1, L2), sd_lsa_fit (dim 256, oversample 10, 5
 * power iterations, the seed), projection, L2 normalisation, then
 * sd_kmeans_fit with k = number of labels, 10 restarts, 300 iterations,
 * tol 1e-4, both spherical and Euclidean. The random projection rows use
 * sd_encoder_observe on every text and sd_encoder_encode (seed = encoder
 * seed). NMI (arithmetic normalisation, as scikit-learn), ARI and accuracy
 * under the best one-to-one matching (Hungarian) are computed here so the
 * bench depends on nothing but the encoder and k-means.
 *
 * usage: lsa_eval [--seeds 0,1,2] [--dim 256] [--tol 1e-4] [--json OUT]
 *                 [--dump PREFIX] FILE.csv...
 * --dump writes, for the first seed, PREFIX.lsa.f32 (n x dim float32 rows,
 * L2-normalised) and PREFIX.labels.i32, so other k-means can be run on the
 * very same vectors.
 * CSV: RFC 4180 (quotes, doubled quotes, CRLF), header with "text" and
 * "category" columns.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "segmentd/cluster_kmeans.h"
#include "segmentd/embed.h"
#include "segmentd/embed_lsa.h"
#include "segmentd/err.h"
#include "segmentd/tokenize.h"

#define EV_MAX_SEEDS 16
#define EV_MAX_FILES 8

static double ev_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *ev_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fprintf(stderr, "lsa_eval: out of memory\n");
    exit(2);
  }
  return p;
}

/* ---- CSV (RFC 4180) ---- */

typedef struct {
  char **text, **label;
  size_t n, cap;
} ev_rows;

/*
 * The field at *p (buffer end e), unquoted and unescaped, as a new string;
 * *eol is set when it ended its record (LF, CRLF, CR or end of buffer).
 */
static char *csv_field(const char **p, const char *e, int *eol) {
  const char *s = *p;
  char *out = ev_xmalloc((size_t)(e - s) + 1);
  size_t n = 0;
  if (s < e && *s == '"') {
    for (s++; s < e; s++) {
      if (*s == '"') {
        if (s + 1 < e && s[1] == '"') {
          out[n++] = '"';
          s++;
          continue;
        }
        s++;
        break;
      }
      out[n++] = *s;
    }
    while (s < e && *s != ',' && *s != '\n' && *s != '\r') s++; /* lenient */
  } else {
    while (s < e && *s != ',' && *s != '\n' && *s != '\r') out[n++] = *s++;
  }
  out[n] = 0;
  *eol = 1;
  if (s < e && *s == ',') {
    s++;
    *eol = 0;
  } else {
    if (s < e && *s == '\r') s++;
    if (s < e && *s == '\n') s++;
  }
  *p = s;
  return out;
}

static char *ev_slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 20, n = 0;
  char *b = ev_xmalloc(cap);
  for (;;) {
    if (n == cap) {
      char *nb = realloc(b, cap *= 2);
      if (!nb) exit(2);
      b = nb;
    }
    size_t got = fread(b + n, 1, cap - n, f);
    if (got == 0) break;
    n += got;
  }
  fclose(f);
  *len = n;
  return b;
}

/* Appends the (text, label) rows of one CSV file. 0, or -1 with a message. */
static int csv_read(const char *path, const char *tcol, const char *lcol,
                    ev_rows *rows) {
  size_t len;
  char *buf = ev_slurp(path, &len);
  if (!buf) {
    fprintf(stderr, "lsa_eval: cannot read %s\n", path);
    return -1;
  }
  const char *p = buf, *e = buf + len;
  if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) p += 3; /* BOM */
  int ti = -1, li = -1, header = 1;
  while (p < e) {
    char *fields[64];
    int nf = 0, eol = 0;
    while (!eol) {
      char *f = csv_field(&p, e, &eol);
      if (nf < 64)
        fields[nf++] = f;
      else
        free(f);
    }
    if (nf == 1 && fields[0][0] == 0) { /* blank line */
      free(fields[0]);
      continue;
    }
    if (header) {
      for (int i = 0; i < nf; i++) {
        if (strcmp(fields[i], tcol) == 0) ti = i;
        if (strcmp(fields[i], lcol) == 0) li = i;
      }
      header = 0;
      if (ti < 0 || li < 0) {
        fprintf(stderr, "lsa_eval: %s lacks %s/%s columns\n", path, tcol, lcol);
        for (int i = 0; i < nf; i++) free(fields[i]);
        free(buf);
        return -1;
      }
    } else if (ti < nf && li < nf) {
      if (rows->n == rows->cap) {
        rows->cap = rows->cap ? rows->cap * 2 : 1024;
        rows->text = realloc(rows->text, rows->cap * sizeof(char *));
        rows->label = realloc(rows->label, rows->cap * sizeof(char *));
        if (!rows->text || !rows->label) exit(2);
      }
      rows->text[rows->n] = fields[ti];
      rows->label[rows->n++] = fields[li];
      fields[ti] = fields[li] = NULL;
    }
    for (int i = 0; i < nf; i++) free(fields[i]);
  }
  free(buf);
  return 0;
}

static int ev_cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Label ids in sorted-name order; returns the number of labels. */
static int ev_label_ids(const ev_rows *r, int32_t *y) {
  char **names = ev_xmalloc(r->n * sizeof(char *));
  memcpy(names, r->label, r->n * sizeof(char *));
  qsort(names, r->n, sizeof(char *), ev_cmp_str);
  size_t k = 0;
  for (size_t i = 0; i < r->n; i++)
    if (k == 0 || strcmp(names[i], names[k - 1]) != 0) names[k++] = names[i];
  for (size_t i = 0; i < r->n; i++) {
    char **hit = bsearch(&r->label[i], names, k, sizeof(char *), ev_cmp_str);
    y[i] = (int32_t)(hit - names);
  }
  free(names);
  return (int)k;
}

/* ---- agreement measures ---- */

/* Hungarian algorithm (shortest augmenting paths with potentials) on a
 * square n x n cost matrix, minimising; col_of[i] = column of row i. */
static void ev_hungarian(const double *cost, int n, int *col_of) {
  double *u = calloc((size_t)n + 1, sizeof(double));
  double *v = calloc((size_t)n + 1, sizeof(double));
  double *minv = ev_xmalloc(((size_t)n + 1) * sizeof(double));
  int *p = calloc((size_t)n + 1, sizeof(int));
  int *way = calloc((size_t)n + 1, sizeof(int));
  char *used = ev_xmalloc((size_t)n + 1);
  if (!u || !v || !p || !way) exit(2);
  for (int i = 1; i <= n; i++) {
    p[0] = i;
    int j0 = 0;
    for (int j = 0; j <= n; j++) minv[j] = INFINITY, used[j] = 0;
    do {
      used[j0] = 1;
      int i0 = p[j0], j1 = 0;
      double delta = INFINITY;
      for (int j = 1; j <= n; j++) {
        if (used[j]) continue;
        double cur = cost[(size_t)(i0 - 1) * n + (j - 1)] - u[i0] - v[j];
        if (cur < minv[j]) minv[j] = cur, way[j] = j0;
        if (minv[j] < delta) delta = minv[j], j1 = j;
      }
      for (int j = 0; j <= n; j++) {
        if (used[j])
          u[p[j]] += delta, v[j] -= delta;
        else
          minv[j] -= delta;
      }
      j0 = j1;
    } while (p[j0] != 0);
    do {
      int j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0);
  }
  for (int j = 1; j <= n; j++) col_of[p[j] - 1] = j - 1;
  free(u);
  free(v);
  free(minv);
  free(p);
  free(way);
  free(used);
}

typedef struct {
  double nmi, ari, acc;
} ev_score;

static double ev_comb2(double x) { return x * (x - 1) / 2; }

static ev_score ev_agreement(const int32_t *pred, int kp, const int32_t *y,
                             int ky, size_t n) {
  int m = kp > ky ? kp : ky;
  double *t = calloc((size_t)m * m, sizeof(double));
  double *a = calloc((size_t)m, sizeof(double));
  double *b = calloc((size_t)m, sizeof(double));
  if (!t || !a || !b) exit(2);
  for (size_t i = 0; i < n; i++) {
    t[(size_t)pred[i] * m + y[i]] += 1;
    a[pred[i]] += 1;
    b[y[i]] += 1;
  }
  double N = (double)n, mi = 0, ha = 0, hb = 0, sij = 0, sa = 0, sb = 0;
  for (int i = 0; i < m; i++) {
    if (a[i] > 0) ha -= a[i] / N * log(a[i] / N);
    if (b[i] > 0) hb -= b[i] / N * log(b[i] / N);
    sa += ev_comb2(a[i]);
    sb += ev_comb2(b[i]);
    for (int j = 0; j < m; j++) {
      double c = t[(size_t)i * m + j];
      if (c > 0) mi += c / N * log(N * c / (a[i] * b[j]));
      sij += ev_comb2(c);
    }
  }
  ev_score s;
  s.nmi = ha + hb > 0 ? mi / ((ha + hb) / 2) : 1.0;
  double expect = sa * sb / ev_comb2(N), top = (sa + sb) / 2;
  s.ari = top > expect ? (sij - expect) / (top - expect) : 1.0;
  int *col = ev_xmalloc((size_t)m * sizeof(int));
  double *cost = ev_xmalloc((size_t)m * m * sizeof(double));
  for (size_t e = 0; e < (size_t)m * m; e++) cost[e] = -t[e];
  ev_hungarian(cost, m, col);
  double hit = 0;
  for (int i = 0; i < m; i++) hit += t[(size_t)i * m + col[i]];
  s.acc = hit / N;
  free(col);
  free(cost);
  free(t);
  free(a);
  free(b);
  return s;
}

/* ---- the pipelines ---- */

typedef struct {
  const char *name;
  int seed;
  ev_score s;
  double embed_s, km_s;
} ev_run;

static void ev_normalise(float *x, size_t n, int dim) {
  for (size_t i = 0; i < n; i++) {
    float *r = x + i * (size_t)dim;
    double nn = 0;
    for (int j = 0; j < dim; j++) nn += (double)r[j] * r[j];
    if (nn > 0)
      for (int j = 0; j < dim; j++) r[j] = (float)(r[j] / sqrt(nn));
  }
}

static float ev_tol = 1e-4f; /* --tol */

/* k-means (spherical or not) on z, scored against y. */
static ev_run ev_cluster(const char *name, int seed, const float *z, size_t n,
                         int dim, const int32_t *y, int k, int spherical,
                         double embed_s) {
  sd_kmeans_opts o = sd_kmeans_defaults(k);
  o.max_iter = 300;
  o.restarts = 10;
  o.tol = ev_tol;
  o.seed = (uint64_t)seed;
  o.spherical = spherical;
  sd_kmeans_result r;
  double t0 = ev_now();
  int rc = sd_kmeans_fit(z, n, dim, &o, &r);
  if (rc) {
    fprintf(stderr, "lsa_eval: sd_kmeans_fit: %s\n", sd_err_message(rc));
    exit(2);
  }
  ev_run run = {name, seed, ev_agreement(r.assign, k, y, k, n), embed_s,
                ev_now() - t0};
  sd_kmeans_result_free(&r);
  fprintf(stderr, "  %-22s seed %d  NMI %.4f ARI %.4f ACC %.4f  (%.1f s)\n",
          name, seed, run.s.nmi, run.s.ari, run.s.acc, run.km_s);
  return run;
}

/* TF-IDF rows as the encoder weights them, over the texts' own df. */
static void ev_tfidf(const sd_sparse *f, size_t n, unsigned bits, sd_csr *m) {
  uint32_t *df = calloc((size_t)1 << bits, sizeof(uint32_t));
  if (!df) exit(2);
  size_t maxn = 0;
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < f[i].n; j++) df[f[i].idx[j]]++;
    maxn = f[i].n > maxn ? f[i].n : maxn;
  }
  float *w = ev_xmalloc((maxn ? maxn : 1) * sizeof(float));
  for (size_t i = 0; i < n; i++) {
    double nn = 0;
    for (size_t j = 0; j < f[i].n; j++) {
      double idf = log((1.0 + (double)n) / (1.0 + df[f[i].idx[j]])) + 1.0;
      w[j] = (float)((1.0 + log(f[i].val[j])) * idf);
      nn += (double)w[j] * w[j];
    }
    for (size_t j = 0; j < f[i].n; j++) w[j] = (float)(w[j] / sqrt(nn));
    if (sd_csr_push(m, f[i].idx, w, f[i].n)) exit(2);
  }
  free(w);
  free(df);
}

static void ev_print(const ev_run *r, size_t nr, const char *const *names,
                     int nnames, int nseeds) {
  printf("%-20s %5s %7s %7s %7s %9s %9s\n", "pipeline", "seed", "NMI", "ARI",
         "ACC", "embed_s", "kmeans_s");
  for (int p = 0; p < nnames; p++) {
    ev_score m = {0, 0, 0};
    double es = 0, ks = 0;
    for (size_t i = 0; i < nr; i++) {
      if (strcmp(r[i].name, names[p]) != 0) continue;
      printf("%-20s %5d %7.4f %7.4f %7.4f %9.2f %9.2f\n", r[i].name,
             r[i].seed, r[i].s.nmi, r[i].s.ari, r[i].s.acc, r[i].embed_s,
             r[i].km_s);
      m.nmi += r[i].s.nmi / nseeds;
      m.ari += r[i].s.ari / nseeds;
      m.acc += r[i].s.acc / nseeds;
      es += r[i].embed_s / nseeds;
      ks += r[i].km_s / nseeds;
    }
    printf("%-20s %5s %7.4f %7.4f %7.4f %9.2f %9.2f\n", names[p], "mean",
           m.nmi, m.ari, m.acc, es, ks);
  }
}

static void ev_dump(const char *prefix, const char *what, const void *p,
                    size_t bytes) {
  char path[4096];
  snprintf(path, sizeof(path), "%s.%s", prefix, what);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, bytes, f) != bytes) {
    fprintf(stderr, "lsa_eval: cannot write %s\n", path);
    exit(2);
  }
  fclose(f);
}

static void ev_json(const char *path, const ev_run *r, size_t nr, size_t n,
                    int k, double feat_s, double tfidf_s) {
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "lsa_eval: cannot write %s\n", path);
    exit(2);
  }
  fprintf(f, "{\"n\": %zu, \"k\": %d, \"features_s\": %.3f, "
             "\"tfidf_s\": %.3f, \"runs\": [\n", n, k, feat_s, tfidf_s);
  for (size_t i = 0; i < nr; i++)
    fprintf(f, " {\"pipeline\": \"%s\", \"seed\": %d, \"nmi\": %.6f, "
               "\"ari\": %.6f, \"acc\": %.6f, \"embed_s\": %.3f, "
               "\"kmeans_s\": %.3f}%s\n", r[i].name, r[i].seed, r[i].s.nmi,
            r[i].s.ari, r[i].s.acc, r[i].embed_s, r[i].km_s,
            i + 1 < nr ? "," : "");
  fprintf(f, "]}\n");
  fclose(f);
}

int main(int argc, char **argv) {
  int seeds[EV_MAX_SEEDS] = {0, 1, 2}, nseeds = 3, dim = 256;
  const char *files[EV_MAX_FILES], *json = NULL, *dump = NULL;
  int nfiles = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc) {
      nseeds = 0;
      for (char *s = argv[++i]; *s && nseeds < EV_MAX_SEEDS;) {
        seeds[nseeds++] = (int)strtol(s, &s, 10);
        if (*s == ',') s++;
      }
    } else if (strcmp(argv[i], "--dim") == 0 && i + 1 < argc) {
      dim = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
      json = argv[++i];
    } else if (strcmp(argv[i], "--dump") == 0 && i + 1 < argc) {
      dump = argv[++i];
    } else if (strcmp(argv[i], "--tol") == 0 && i + 1 < argc) {
      ev_tol = strtof(argv[++i], NULL);
    } else if (argv[i][0] != '-' && nfiles < EV_MAX_FILES) {
      files[nfiles++] = argv[i];
    } else {
      fprintf(stderr, "usage: lsa_eval [--seeds 0,1,2] [--dim 256] "
                      "[--tol 1e-4] [--json OUT] [--dump PREFIX] "
                      "FILE.csv...\n");
      return 2;
    }
  }
  if (nfiles == 0 || nseeds == 0 || dim < 1) {
    fprintf(stderr, "lsa_eval: need CSV files, seeds and dim >= 1\n");
    return 2;
  }
  ev_rows rows = {0};
  for (int i = 0; i < nfiles; i++)
    if (csv_read(files[i], "text", "category", &rows)) return 2;
  size_t n = rows.n;
  int32_t *y = ev_xmalloc(n * sizeof(int32_t));
  int k = ev_label_ids(&rows, y);
  fprintf(stderr, "lsa_eval: %zu texts, %d labels\n", n, k);

  double t0 = ev_now();
  sd_sparse *f = ev_xmalloc(n * sizeof(sd_sparse));
  for (size_t i = 0; i < n; i++)
    if (sd_features(rows.text[i], strlen(rows.text[i]), SD_ENCODER_BITS,
                    &f[i]))
      return 2;
  double feat_s = ev_now() - t0;
  t0 = ev_now();
  sd_csr m = {0};
  ev_tfidf(f, n, SD_ENCODER_BITS, &m);
  double tfidf_s = ev_now() - t0;
  fprintf(stderr, "lsa_eval: features %.2f s, tf-idf %.2f s, %zu nonzeros\n",
          feat_s, tfidf_s, m.nnz);

  ev_run runs[4 * EV_MAX_SEEDS];
  size_t nr = 0;
  float *z = ev_xmalloc(n * (size_t)dim * sizeof(float));
  for (int si = 0; si < nseeds; si++) {
    int seed = seeds[si];
    sd_lsa_opts o = sd_lsa_defaults(dim);
    o.seed = (uint64_t)seed;
    sd_lsa *l = NULL;
    t0 = ev_now();
    int rc = sd_lsa_fit(&m, &o, &l);
    if (rc) {
      fprintf(stderr, "lsa_eval: sd_lsa_fit: %s\n", sd_err_message(rc));
      return 2;
    }
    double fit_s = ev_now() - t0;
    t0 = ev_now();
    for (size_t i = 0; i < n; i++) {
      size_t a = m.ptr[i];
      sd_lsa_project(l, m.col + a, m.val + a, m.ptr[i + 1] - a,
                     z + i * (size_t)dim);
    }
    ev_normalise(z, n, dim);
    double proj_s = ev_now() - t0;
    const float *sv = sd_lsa_singular_values(l);
    fprintf(stderr, "lsa_eval: seed %d: LSA fit %.2f s (%zu buckets, "
            "table %.1f MB), project %.3f s; sigma %.3f %.3f .. %.3f\n",
            seed, fit_s, sd_lsa_buckets(l),
            4.0 * (double)sd_lsa_buckets(l) * dim / 1e6, proj_s, sv[0], sv[1],
            sv[dim - 1]);
    sd_lsa_free(l);
    if (dump && si == 0) {
      ev_dump(dump, "lsa.f32", z, n * (size_t)dim * sizeof(float));
      ev_dump(dump, "labels.i32", y, n * sizeof(int32_t));
    }
    runs[nr++] = ev_cluster("lsa_spherical", seed, z, n, dim, y, k, 1,
                            fit_s + proj_s);
    runs[nr++] = ev_cluster("lsa_euclidean", seed, z, n, dim, y, k, 0,
                            fit_s + proj_s);

    sd_encoder *e = NULL;
    if (sd_encoder_new(dim, SD_ENCODER_BITS, (uint64_t)seed, &e)) return 2;
    t0 = ev_now();
    for (size_t i = 0; i < n; i++) sd_encoder_observe(e, &f[i]);
    for (size_t i = 0; i < n; i++)
      if (sd_encoder_encode(e, &f[i], z + i * (size_t)dim)) return 2;
    double rp_s = ev_now() - t0;
    sd_encoder_free(e);
    runs[nr++] = ev_cluster("rp_spherical", seed, z, n, dim, y, k, 1, rp_s);
    runs[nr++] = ev_cluster("rp_euclidean", seed, z, n, dim, y, k, 0, rp_s);
  }
  static const char *const names[] = {"lsa_spherical", "lsa_euclidean",
                                      "rp_spherical", "rp_euclidean"};
  printf("segmentd on %zu texts, k=%d, dim %d, k-means 10 restarts, 300 "
         "iterations, tol %g; features %.2f s, tf-idf %.2f s\n(embed_s: LSA "
         "fit + projection, or random-projection encoding)\n", n, k, dim,
         (double)ev_tol, feat_s, tfidf_s);
  ev_print(runs, nr, names, 4, nseeds);
  if (json) ev_json(json, runs, nr, n, k, feat_s, tfidf_s);

  free(z);
  for (size_t i = 0; i < n; i++) {
    sd_sparse_free(&f[i]);
    free(rows.text[i]);
    free(rows.label[i]);
  }
  free(f);
  free(rows.text);
  free(rows.label);
  free(y);
  sd_csr_free(&m);
  return 0;
}
