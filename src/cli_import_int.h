/*
 * cli_import_int.h -- the resume point and the progress display of
 * `segmentd import` (cli_import_progress.c), shared with cli_import.c.
 *
 * The progress file is one JSON object, replaced atomically (written to
 * "<file>.tmp", then renamed) after every acknowledged batch: the byte
 * offset and line number up to which every line was acknowledged by the
 * server (stored or reported bad), the FNV-1a 64 hash of those bytes (so a
 * changed input is refused rather than resumed in the wrong place), the
 * server's URL (a resume against another server is refused), and the
 * running counts.
 */
#ifndef SEGMENTD_CLI_IMPORT_INT_H
#define SEGMENTD_CLI_IMPORT_INT_H

#include <stddef.h>
#include <stdint.h>

#define IMP_FNV_INIT 0xcbf29ce484222325ULL

typedef struct {
  /* persisted */
  long long offset, line;   /* acknowledged bytes and lines */
  uint64_t hash;            /* FNV-1a 64 of bytes [0, offset) */
  long long accepted, duplicates, bad;
  char url[1024];           /* the server the lines went to */
  /* display (this run) */
  int tty, quiet;
  long interval_s;          /* seconds between plain lines; 0 = none */
  long long total;          /* input size in bytes, -1 unknown */
  long long read_offset, read_line; /* what has been read so far */
  long long start_offset, start_line;
  double started, shown;
} imp_progress;

uint64_t imp_fnv(uint64_t h, const void *p, size_t n);

/* Loads path into p. 0 loaded, 1 no such file, -1 unreadable or not a
 * progress file (msg says why). */
int imp_progress_load(const char *path, imp_progress *p, char *msg,
                      size_t cap);

/* Writes p's persisted part for input `file`. 0 or -1 with msg. */
int imp_progress_save(const char *path, const char *file,
                      const imp_progress *p, char *msg, size_t cap);

/* Shows progress on stderr when due (a bar on a terminal, a plain line
 * every interval_s otherwise); final clears the bar. */
void imp_progress_show(imp_progress *p, int final);

#endif
