/* Unit tests of recluster_fit.c and recluster_match.c: K choice on planted
 * data, each family through rc_fit_model, stability, and stable ids. */
#include "check.h"
#include "recluster_int.h"
#include "segmentd/err.h"
#include "segmentd/snapshot.h"

#include <math.h>
#include <stdlib.h>

enum { DIM = 16, PER = 120 };

static uint64_t rng = 42;
static double unif(void) {
  rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
  return (double)(rng >> 11) / 9007199254740992.0;
}
static double gauss(void) {
  double u = unif() + 1e-12, v = unif();
  return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* k unit directions with spread noise: points on the sphere around them. */
static void planted(rc_points *p, int k, double noise, int32_t *truth) {
  float dirs[16][DIM];
  for (int c = 0; c < k; c++)
    for (int d = 0; d < DIM; d++) dirs[c][d] = (float)gauss();
  p->n = (size_t)k * PER;
  p->dim = DIM;
  p->x = malloc(sizeof(float) * p->n * DIM);
  p->rowid = malloc(sizeof(int64_t) * p->n);
  p->old_id = malloc(sizeof(int64_t) * p->n);
  for (size_t i = 0; i < p->n; i++) {
    int c = (int)(i % (size_t)k);
    double len = 0;
    for (int d = 0; d < DIM; d++) {
      float v = dirs[c][d] + (float)(noise * gauss());
      p->x[i * DIM + d] = v;
      len += (double)v * v;
    }
    for (int d = 0; d < DIM; d++) p->x[i * DIM + d] /= (float)sqrt(len);
    p->rowid[i] = (int64_t)i + 1;
    p->old_id[i] = -1;
    truth[i] = c;
  }
}

/* Fraction of point pairs (sampled) on which two labelings agree. */
static double pair_agreement(const int32_t *a, const int32_t *b, size_t n) {
  size_t agree = 0, total = 0;
  for (size_t i = 0; i < n; i += 3)
    for (size_t j = i + 1; j < n; j += 7, total++)
      agree += (a[i] == a[j]) == (b[i] == b[j]);
  return (double)agree / (double)total;
}

static sd_config conf(void) {
  sd_config c;
  sd_config_defaults(&c);
  c.k_min = 2;
  c.k_max = 12;
  c.stability_runs = 2;
  c.silhouette_sample = 500;
  c.restarts = 3;
  return c;
}

static void test_families(void) {
  sd_config cfg = conf();
  rc_points p = {0};
  int32_t truth[6 * PER];
  planted(&p, 6, 0.25, truth);
  for (int a = 0; a < 3; a++) {
    sd_recluster_req req = {SD_SPACE_INTENTS, (sd_algo)a, a == SD_ALGO_DENSITY ? 0 : 6, 0, 7, 0};
    rc_fit f = {0};
    json_t *q = json_object();
    CHECK_INT(rc_fit_model(&cfg, &req, NULL, &p, &f, q), 0);
    CHECK_INT(f.k, 6);
    size_t labelled = 0;
    for (size_t i = 0; i < p.n; i++) labelled += f.labels[i] >= 0;
    CHECK(labelled >= p.n * 9 / 10); /* density may call a few points noise */
    CHECK(pair_agreement(f.labels, truth, p.n) > 0.97);
    double stab[6] = {0};
    CHECK_INT(rc_quality(&cfg, &req, &p, &f, q, stab), 0);
    for (int c = 0; c < f.k; c++) CHECK(stab[c] > 0.8); /* planted = stable */
    CHECK(json_real_value(json_object_get(q, "silhouette")) > 0.3);
    json_decref(q);
    rc_fit_free(&f);
  }
  rc_points_free(&p);
}

static void test_choose_k(void) {
  sd_config cfg = conf();
  for (int k = 3; k <= 8; k += 5) {
    rc_points p = {0};
    int32_t truth[8 * PER];
    planted(&p, k, 0.2, truth);
    for (int a = 0; a < 2; a++) { /* kmeans, hierarchical */
      sd_recluster_req req = {SD_SPACE_INTENTS, (sd_algo)a, 0, 0, 11, 0};
      rc_fit f = {0};
      json_t *q = json_object();
      CHECK_INT(rc_fit_model(&cfg, &req, NULL, &p, &f, q), 0);
      CHECK_INT(f.k, k);
      json_t *sel = json_object_get(q, "k_selection");
      CHECK_INT(json_integer_value(json_object_get(sel, "chosen")), k);
      CHECK(json_array_size(json_object_get(sel, "scores")) >= 5);
      json_decref(q);
      rc_fit_free(&f);
    }
    rc_points_free(&p);
  }
}

static int count_events(const sd_proposal *o, const char *kind) {
  int n = 0;
  for (int i = 0; i < o->n_events; i++) n += !strcmp(o->events[i].kind, kind);
  return n;
}

static void test_match(void) {
  sd_config cfg = conf();
  rc_points p = {0};
  int32_t truth[6 * PER];
  planted(&p, 6, 0.25, truth);
  sd_recluster_req req = {SD_SPACE_INTENTS, SD_ALGO_KMEANS, 6, 0, 3, 0};
  rc_fit f = {0};
  json_t *q = json_object();
  CHECK_INT(rc_fit_model(&cfg, &req, NULL, &p, &f, q), 0);
  /* live clusters 100..105 hold the planted groups, 300 holds nothing;
     the planted groups 4 and 5 are one live cluster (104): it splits. */
  int32_t live_ids[] = {100, 101, 102, 103, 104, 300};
  for (size_t i = 0; i < p.n; i++) p.old_id[i] = truth[i] == 5 ? 104 : 100 + truth[i];
  sd_live_model live = {1, 6, 4, live_ids, 301, NULL, 0, NULL};
  sd_proposal out = {0};
  out.quality = q;
  CHECK_INT(rc_match(&cfg, &live, &p, &f, &out), 0);
  int seen[6] = {0}, born = 0;
  for (int j = 0; j < 6; j++) {
    if (out.ids[j] >= 301) born++;
    for (int c = 0; c < 5; c++) seen[c] += out.ids[j] == 100 + c;
  }
  for (int c = 0; c < 5; c++) CHECK_INT(seen[c], 1); /* each live id kept once */
  CHECK_INT(born, 1);           /* the other half of 104 is new */
  CHECK_INT(out.next_id, 302);
  CHECK_INT(count_events(&out, "born"), 1);
  CHECK_INT(count_events(&out, "retired"), 1); /* 300: no members */
  CHECK_INT(count_events(&out, "split"), 1);   /* 104 -> two clusters */
  CHECK(out.kept_share > 0.82 && out.kept_share < 0.85); /* 5 of 6 groups */
  /* every member of an unsplit group keeps its id */
  for (size_t i = 0; i < p.n; i++)
    if (truth[i] < 4) CHECK_INT(out.ids[f.labels[i]], 100 + truth[i]);
  sd_proposal_free(&out);
  rc_fit_free(&f);
  rc_points_free(&p);
}

static void test_first_model(void) {
  sd_config cfg = conf();
  rc_points p = {0};
  int32_t truth[3 * PER];
  planted(&p, 3, 0.25, truth);
  sd_recluster_req req = {SD_SPACE_SEGMENTS, SD_ALGO_KMEANS, 3, 0, 5, 0};
  rc_fit f = {0};
  sd_proposal out = {0};
  out.quality = json_object();
  CHECK_INT(rc_fit_model(&cfg, &req, NULL, &p, &f, out.quality), 0);
  sd_live_model none = {0, 0, 0, NULL, 0, NULL, 0, NULL};
  CHECK_INT(rc_match(&cfg, &none, &p, &f, &out), 0);
  for (int j = 0; j < 3; j++) CHECK_INT(out.ids[j], j);
  CHECK_INT(count_events(&out, "born"), 3);
  sd_proposal_free(&out);
  rc_fit_free(&f);
  rc_points_free(&p);
}

/* Re-fitting with the live model's K starts warm from the live clusters
 * and keeps their partition (different seed, same data). */
static void test_warm_start(void) {
  sd_config cfg = conf();
  rc_points p = {0};
  int32_t truth[8 * PER];
  planted(&p, 8, 0.45, truth); /* overlapping: fresh fits differ */
  sd_recluster_req req = {SD_SPACE_INTENTS, SD_ALGO_KMEANS, 8, 0, 1, 0};
  rc_fit f = {0};
  json_t *q = json_object();
  CHECK_INT(rc_fit_model(&cfg, &req, NULL, &p, &f, q), 0);
  int32_t ids[8] = {10, 11, 12, 13, 14, 15, 16, 17};
  for (size_t i = 0; i < p.n; i++) p.old_id[i] = ids[f.labels[i]];
  sd_live_model live = {1, 8, 1, ids, 18, NULL, 0, NULL};
  sd_recluster_req again = {SD_SPACE_INTENTS, SD_ALGO_KMEANS, 8, 0, 99, 0};
  rc_fit g = {0};
  json_t *q2 = json_object();
  CHECK_INT(rc_fit_model(&cfg, &again, &live, &p, &g, q2), 0);
  CHECK_STR(json_string_value(json_object_get(json_object_get(q2, "start"), "kept")),
            "warm");
  CHECK(pair_agreement(f.labels, g.labels, p.n) > 0.99);
  json_decref(q), json_decref(q2);
  rc_fit_free(&f), rc_fit_free(&g);
  rc_points_free(&p);
}

int main(void) {
  test_warm_start();
  test_families();
  test_choose_k();
  test_match();
  test_first_model();
  return check_done("test_recluster");
}
