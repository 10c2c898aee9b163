/* snapshot.c -- immutable read views and their publication (see snapshot.h). */
#include "segmentd/snapshot.h"
#include "segmentd/embed.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_MIN (64 * 1024)

struct sd_snap_chunk {
  sd_snap_chunk *next;
  size_t used, cap;
  max_align_t data[];
};

static pthread_mutex_t snap_mu = PTHREAD_MUTEX_INITIALIZER;
static sd_snapshot *snap_current;

sd_snapshot *sd_snapshot_new(void) {
  sd_snapshot *s = calloc(1, sizeof(*s));
  if (s) atomic_init(&s->refs, 1);
  return s;
}

void *sd_snapshot_alloc(sd_snapshot *s, size_t n) {
  n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
  sd_snap_chunk *c = s->arena;
  if (!c || c->cap - c->used < n) {
    size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;
    c = malloc(sizeof(*c) + cap);
    if (!c) return NULL;
    c->cap = cap;
    c->used = 0;
    c->next = s->arena;
    s->arena = c;
  }
  void *p = (char *)c->data + c->used;
  c->used += n;
  memset(p, 0, n);
  return p;
}

const char *sd_snapshot_strdup(sd_snapshot *s, const char *str) {
  if (!str) return NULL;
  size_t n = strlen(str) + 1;
  char *p = sd_snapshot_alloc(s, n);
  if (p) memcpy(p, str, n);
  return p;
}

static void snapshot_free(sd_snapshot *s) {
  sd_proj_unref(s->proj);
  while (s->arena) {
    sd_snap_chunk *n = s->arena->next;
    free(s->arena);
    s->arena = n;
  }
  free(s);
}

void sd_snapshot_release(sd_snapshot *s) {
  if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
    snapshot_free(s);
}

void sd_snapshot_publish(sd_snapshot *s) {
  pthread_mutex_lock(&snap_mu);
  sd_snapshot *old = snap_current;
  snap_current = s;
  pthread_mutex_unlock(&snap_mu);
  sd_snapshot_release(old);
}

sd_snapshot *sd_snapshot_acquire(void) {
  pthread_mutex_lock(&snap_mu);
  sd_snapshot *s = snap_current;
  if (s) atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
  pthread_mutex_unlock(&snap_mu);
  return s;
}

void sd_snapshot_clear(void) { sd_snapshot_publish(NULL); }

const sd_snap_space *sd_snapshot_space(const sd_snapshot *s,
                                       const char *name) {
  for (int i = 0; i < SD_SPACES; i++)
    if (s->spaces[i].name && !strcmp(s->spaces[i].name, name))
      return &s->spaces[i];
  return NULL;
}

int sd_snap_cluster_index(const sd_snap_space *sp, int64_t id) {
  for (int i = 0; i < sp->k; i++)
    if (sp->clusters[i].id == id) return i;
  return -1;
}
