/*
 * cli_import.c -- `segmentd import FILE.ndjson`: events and texts from an
 * NDJSON file, batched over HTTP to a running server.
 *
 * HTTP is the one ingest path: validation, embedding, assignment and the
 * group commit all live in the server, so the importer is a client of
 * POST /v1/events and POST /v1/texts and never opens the database (--db
 * is refused with a message saying so).
 *
 * Flow: lines are read into a chunk (at most --batch items of each kind);
 * a line that is not a JSON object, or whose kind cannot be told, is
 * reported with its line number and skipped. A full chunk is sent as one
 * events batch and one texts batch; a 422 names the bad items (reported by
 * line, dropped, the rest sent again), a 413 splits the batch in halves.
 * Once both batches are answered 200 (durable on the server), the progress
 * file records the offset after the chunk. A re-run resumes there.
 *
 * What resuming guarantees: every line before the recorded offset was
 * committed or reported; lines after it are sent again. A chunk that was
 * committed but not yet recorded (a kill between the two) is sent again,
 * and the server stores each event_id / text_id once (ids are required;
 * repeats count as "duplicates"), so every line is stored exactly once.
 */
#include "cli_import_int.h"
#include "segmentd/cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CMD "import"
#define STOPPED (-2) /* more bad lines than --max-errors */

typedef struct {
  sd_cli_http_opts http;
  const char *kind;
  long batch, max_errors, interval_s;
  const char *progress_file, *db;
  int restart, quiet;
} import_opts;

static const sd_cli_opt import_rows[] = {
    SD_CLI_HTTP_ROWS(import_opts),
    {"kind", 'k', NULL, SD_CLI_STR, offsetof(import_opts, kind), "auto", 0, 0,
     "KIND", "auto | events | texts. auto tells each line by its fields:\n"
     "\"event_id\" or \"type\" make an event, \"text_id\" or \"text\" a text"},
    {"batch", 'b', "SEGMENTD_IMPORT_BATCH", SD_CLI_LONG,
     offsetof(import_opts, batch), "1000", 1, 1000000, "N",
     "items per request (the server's --max-batch is the ceiling; a batch\n"
     "the server finds too large is split)"},
    {"max-errors", 'e', NULL, SD_CLI_LONG, offsetof(import_opts, max_errors),
     "0", 0, 1000000000L, "N",
     "bad lines tolerated (reported and skipped); one more stops the\n"
     "import with exit status 1 before the chunk holding it is sent"},
    {"progress-file", 'p', NULL, SD_CLI_STR,
     offsetof(import_opts, progress_file), NULL, 0, 0, "FILE",
     "where the resume point is kept (default: the input's name with\n"
     "\".progress\" appended)"},
    {"restart", 0, NULL, SD_CLI_BOOL, offsetof(import_opts, restart), NULL, 0,
     0, "", "ignore a progress file and import from the first line"},
    {"progress-interval", 0, NULL, SD_CLI_LONG,
     offsetof(import_opts, interval_s), "10", 0, 86400, "SECONDS",
     "when stderr is not a terminal: a progress line this often (0 = none)"},
    {"quiet", 'q', NULL, SD_CLI_BOOL, offsetof(import_opts, quiet), NULL, 0, 0,
     "", "no progress display (bad lines and the summary are still shown)"},
    {"db", 0, NULL, SD_CLI_STR, offsetof(import_opts, db), NULL, 0, 0, "FILE",
     "not supported: refused with exit status 2 (see DESCRIPTION)"},
};

static const sd_cli_cmd import_cmd = {
    CMD, "load events and texts from an NDJSON file into a running server",
    "[OPTIONS] FILE.ndjson",
    "Reads FILE (\"-\" = standard input) line by line. Each line is one event\n"
    "(as in POST /v1/events: event_id, user_id, type, ts, properties) or one\n"
    "text (as in POST /v1/texts: text_id, user_id, text, ts, embedding).\n"
    "Lines are sent in batches to the server at --url; a batch answered 200\n"
    "is committed. Blank lines are skipped.\n"
    "\n"
    "Bad lines (not JSON, not an object, neither event nor text, or refused\n"
    "by the server's validation) are reported on stderr as \"line N: ...\"\n"
    "and skipped, up to --max-errors of them.\n"
    "\n"
    "Resuming: after every acknowledged batch the byte offset up to which\n"
    "all lines were committed or reported is written to the progress file.\n"
    "Running the same command again continues after it (a file whose first\n"
    "bytes changed, or a resume against another --url, is refused;\n"
    "--restart starts over). Lines sent again after an interruption are\n"
    "not stored twice: the server keeps one copy per event_id / text_id and\n"
    "counts repeats as duplicates. Standard input cannot be resumed.\n"
    "\n"
    "Busy or restarting servers: 429 and 503 answers and lost connections\n"
    "are retried (--retries), waiting as Retry-After says.\n"
    "\n"
    "Progress: a bar with rate and ETA when stderr is a terminal, else a\n"
    "line every --progress-interval seconds. The summary goes to stdout.\n"
    "\n"
    "There is no --db mode: ingest has one path, the server's, which\n"
    "validates, embeds, assigns and commits in groups. Start\n"
    "`segmentd serve --db FILE` and import through it.",
    import_rows, sizeof(import_rows) / sizeof(import_rows[0]),
    "1   also when more lines were bad than --max-errors allows; the\n"
    "    progress file then points at the chunk holding the last one.",
    "segmentd import events.ndjson\n"
    "SEGMENTD_API_KEY=... segmentd import --url http://segmentd:8080 \\\n"
    "    --max-errors 100 texts.ndjson\n"
    "zcat big.ndjson.gz | segmentd import --kind events -",
    1, 1};

/* ---- one kind's pending items ---- */

typedef struct {
  long long line;
  size_t off, len; /* in part.text */
} item;

typedef struct {
  const char *kind; /* "events" | "texts" */
  char *text;
  size_t len, cap;
  item *items;
  size_t n, items_cap;
} part;

typedef struct {
  const import_opts *o;
  sd_cli_client *cl;
  imp_progress pg;
  part parts[2];
} importer;

static int part_add(part *p, long long line, const char *s, size_t n) {
  if (p->n == p->items_cap) {
    size_t nc = p->items_cap ? 2 * p->items_cap : 256;
    item *ni = realloc(p->items, nc * sizeof(*ni));
    if (!ni) return -1;
    p->items = ni;
    p->items_cap = nc;
  }
  p->items[p->n] = (item){line, p->len, n};
  if (sd_cli_buf_add(&p->text, &p->len, &p->cap, s, n) < 0) return -1;
  p->n++;
  return 0;
}

static void part_free(part *p) {
  free(p->text);
  free(p->items);
}

/* A bad line: reported, counted; STOPPED once over --max-errors. */
static int bad_line(importer *im, long long line, const char *fmt,
                    const char *what) {
  if (im->pg.tty && !im->pg.quiet) fputs("\r\033[K", stderr);
  fprintf(stderr, "segmentd import: line %lld: ", line);
  fprintf(stderr, fmt, what);
  fputc('\n', stderr);
  im->pg.bad++;
  if (im->pg.bad <= im->o->max_errors) return 0;
  sd_cli_err(CMD, "more than %ld bad line%s (--max-errors): stopping; the "
             "next run resumes at line %lld", im->o->max_errors,
             im->o->max_errors == 1 ? "" : "s", im->pg.line + 1);
  return STOPPED;
}

/* ---- sending ---- */

static int send_items(importer *im, part *p, item **it, size_t n);

/* Drops the items a 422 names (reported by line). Returns how many went,
 * or STOPPED. */
static int drop_invalid(importer *im, item **it, size_t *n, json_t *details) {
  size_t i, dropped = 0;
  json_t *d;
  json_array_foreach(details, i, d) {
    json_t *ix = json_object_get(d, "index");
    if (!json_is_integer(ix) || json_integer_value(ix) < 0 ||
        (size_t)json_integer_value(ix) >= *n || !it[json_integer_value(ix)])
      continue;
    char what[600];
    const char *f = json_string_value(json_object_get(d, "field"));
    const char *pb = json_string_value(json_object_get(d, "problem"));
    snprintf(what, sizeof(what), "%s: %s", f ? f : "item", pb ? pb : "invalid");
    int rc = bad_line(im, it[json_integer_value(ix)]->line,
                      "refused by the server: %s", what);
    it[json_integer_value(ix)] = NULL;
    dropped++;
    if (rc == STOPPED) return STOPPED;
  }
  size_t k = 0;
  for (i = 0; i < *n; i++)
    if (it[i]) it[k++] = it[i];
  *n = k;
  return (int)dropped;
}

/* The outcome of one answer: 0 done, 1 send again, -1 failed. */
static int answer(importer *im, part *p, item **it, size_t *n, sd_cli_resp *r) {
  json_t *b = json_loads(r->body, 0, NULL);
  int rc = -1;
  if (r->status == 200) {
    im->pg.accepted += json_integer_value(json_object_get(b, "accepted"));
    im->pg.duplicates += json_integer_value(json_object_get(b, "duplicates"));
    rc = 0;
  } else if (r->status == 422) {
    json_t *det = json_object_get(json_object_get(b, "error"), "details");
    int d = drop_invalid(im, it, n, det);
    rc = d == STOPPED ? STOPPED : d > 0 ? 1 : -1;
  } else if (r->status == 413 && *n > 1) {
    size_t half = *n / 2;
    rc = send_items(im, p, it, half);
    if (rc == 0) rc = send_items(im, p, it + half, *n - half);
    if (rc == 0) *n = 0;
  } else if (r->status == 413) {
    rc = bad_line(im, it[0]->line, "%s", "too large for the server (HTTP 413)");
    *n = 0;
  }
  if (rc == -1 && r->status != 413) {
    char why[600];
    sd_cli_describe(r, why, sizeof(why));
    sd_cli_err(CMD, "POST /v1/%s (lines %lld-%lld) failed: %s", p->kind,
               it[0]->line, it[*n - 1]->line, why);
  }
  json_decref(b);
  return rc;
}

/* {"<kind>": [items...]} */
static char *batch_body(const part *p, item **it, size_t n, size_t *len) {
  char *buf = NULL;
  size_t cap = 0;
  *len = 0;
  char head[32];
  int ok = sd_cli_buf_add(&buf, len, &cap, head,
                          (size_t)snprintf(head, sizeof(head), "{\"%s\":[",
                                           p->kind)) == 0;
  for (size_t i = 0; i < n && ok; i++)
    ok = (i == 0 || sd_cli_buf_add(&buf, len, &cap, ",", 1) == 0) &&
         sd_cli_buf_add(&buf, len, &cap, p->text + it[i]->off, it[i]->len) == 0;
  if (ok) ok = sd_cli_buf_add(&buf, len, &cap, "]}", 2) == 0;
  if (!ok) free(buf);
  return ok ? buf : NULL;
}

static int send_items(importer *im, part *p, item **it, size_t n) {
  int rc = 1;
  while (rc == 1 && n > 0) {
    size_t len;
    char *body = batch_body(p, it, n, &len);
    if (!body) return sd_cli_err(CMD, "out of memory"), -1;
    char path[32];
    snprintf(path, sizeof(path), "/v1/%s", p->kind);
    sd_cli_resp r;
    if (sd_cli_call(im->cl, "POST", path, body, len, 1, &r) < 0) {
      sd_cli_err(CMD, "POST %s failed: %s", path, r.error);
      rc = -1;
    } else {
      rc = answer(im, p, it, &n, &r);
    }
    sd_cli_resp_free(&r);
    free(body);
  }
  return rc == 1 ? 0 : rc;
}

static int send_part(importer *im, part *p) {
  if (!p->n) return 0;
  item **it = malloc(p->n * sizeof(*it));
  if (!it) return sd_cli_err(CMD, "out of memory"), -1;
  for (size_t i = 0; i < p->n; i++) it[i] = &p->items[i];
  int rc = send_items(im, p, it, p->n);
  free(it);
  p->n = p->len = 0;
  return rc;
}

/* Sends the chunk; once both kinds are acknowledged, records the offset. */
static int flush(importer *im, const char *file, const char *progress) {
  int rc = send_part(im, &im->parts[0]);
  if (rc == 0) rc = send_part(im, &im->parts[1]);
  if (rc < 0) return rc;
  im->pg.offset = im->pg.read_offset;
  im->pg.line = im->pg.read_line;
  char msg[600];
  if (progress && imp_progress_save(progress, file, &im->pg, msg, sizeof(msg)) < 0)
    return sd_cli_err(CMD, "%s", msg), -1;
  return 0;
}

/* ---- reading ---- */

/* 0 events, 1 texts, -1 unknown (why set). */
static int line_kind(const import_opts *o, json_t *v, const char **why) {
  if (!strcmp(o->kind, "events")) return 0;
  if (!strcmp(o->kind, "texts")) return 1;
  int ev = json_object_get(v, "event_id") || json_object_get(v, "type");
  int tx = json_object_get(v, "text_id") || json_object_get(v, "text");
  *why = ev && tx ? "has fields of both an event and a text (use --kind)"
                  : "neither an event (event_id, type) nor a text (text_id, text)";
  return ev == tx ? -1 : tx;
}

/* Classifies one line into the chunk. 0, STOPPED or -1. */
static int take_line(importer *im, char *s, size_t n) {
  while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0;
  size_t sp = strspn(s, " \t");
  if (sp == n) return 0; /* blank */
  json_error_t je;
  json_t *v = json_loadb(s, n, 0, &je);
  const char *why = NULL;
  int k = -1, rc = 0;
  if (!v)
    rc = bad_line(im, im->pg.read_line, "not JSON: %s", je.text);
  else if (!json_is_object(v))
    rc = bad_line(im, im->pg.read_line, "%s", "not a JSON object");
  else if ((k = line_kind(im->o, v, &why)) < 0)
    rc = bad_line(im, im->pg.read_line, "%s", why);
  else if (part_add(&im->parts[k], im->pg.read_line, s, n) < 0)
    rc = -1, sd_cli_err(CMD, "out of memory");
  json_decref(v);
  return rc;
}

static int read_all(importer *im, FILE *in, const char *file,
                    const char *progress) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int rc = 0;
  while (rc == 0 && (n = getline(&line, &cap, in)) >= 0) {
    im->pg.hash = imp_fnv(im->pg.hash, line, (size_t)n);
    im->pg.read_offset += n;
    im->pg.read_line++;
    rc = take_line(im, line, (size_t)n);
    if (rc == 0 && (im->parts[0].n >= (size_t)im->o->batch ||
                    im->parts[1].n >= (size_t)im->o->batch))
      rc = flush(im, file, progress);
    imp_progress_show(&im->pg, 0);
  }
  if (rc == 0 && ferror(in))
    rc = -1, sd_cli_err(CMD, "reading %s: %s", file, strerror(errno));
  if (rc == 0) rc = flush(im, file, progress);
  free(line);
  return rc;
}

/* ---- resuming ---- */

/* Skips to the recorded offset after checking the bytes before it. */
static int resume(importer *im, FILE *in, const char *file,
                  const char *progress) {
  char msg[600];
  int rc = imp_progress_load(progress, &im->pg, msg, sizeof(msg));
  if (rc < 0) return sd_cli_err(CMD, "%s", msg), -1;
  if (rc == 1 || im->pg.offset == 0) return 0;
  if (strcmp(im->pg.url, im->o->http.url))
    return sd_cli_err(CMD, "the progress file %s is of an import into %s, not "
                      "%s: pass --restart (or another --progress-file) to "
                      "import into this server", progress, im->pg.url,
                      im->o->http.url), -1;
  uint64_t h = IMP_FNV_INIT;
  char buf[65536];
  long long left = im->pg.offset;
  while (left > 0) {
    size_t want = left < (long long)sizeof(buf) ? (size_t)left : sizeof(buf);
    size_t got = fread(buf, 1, want, in);
    if (!got) break;
    h = imp_fnv(h, buf, got);
    left -= (long long)got;
  }
  if (left > 0 || h != im->pg.hash)
    return sd_cli_err(CMD, "%s changed in its first %lld bytes since the "
                      "progress file %s was written: refusing to resume "
                      "(--restart imports it from the start)",
                      file, im->pg.offset, progress), -1;
  im->pg.read_offset = im->pg.offset;
  im->pg.read_line = im->pg.line;
  fprintf(stderr, "segmentd import: resuming %s at line %lld (byte %lld)\n",
          file, im->pg.line + 1, im->pg.offset);
  return 0;
}

static int import_file(importer *im, const char *file, const char *progress) {
  int is_stdin = !strcmp(file, "-");
  FILE *in = is_stdin ? stdin : fopen(file, "r");
  if (!in) return sd_cli_err(CMD, "cannot open %s: %s", file, strerror(errno)), -1;
  struct stat st;
  im->pg.total = !is_stdin && fstat(fileno(in), &st) == 0 ? st.st_size : -1;
  im->pg.hash = IMP_FNV_INIT;
  int rc = progress && !im->o->restart ? resume(im, in, file, progress) : 0;
  snprintf(im->pg.url, sizeof(im->pg.url), "%s", im->o->http.url);
  im->pg.start_offset = im->pg.read_offset;
  im->pg.start_line = im->pg.read_line;
  im->pg.started = im->pg.shown = sd_cli_now();
  if (rc == 0) rc = read_all(im, in, file, progress);
  imp_progress_show(&im->pg, 1);
  if (!is_stdin) fclose(in);
  return rc;
}

static void summary(const importer *im, const char *file, int rc) {
  double el = sd_cli_now() - im->pg.started;
  long long lines = im->pg.line - im->pg.start_line;
  printf("%s %s: %lld lines in %.1f s (%.0f lines/s); in total %lld "
         "accepted, %lld duplicates, %lld bad lines skipped%s\n",
         rc == 0 ? "imported" : "stopped importing", file, lines, el,
         el > 0 ? lines / el : 0.0, im->pg.accepted, im->pg.duplicates,
         im->pg.bad, rc == 0 ? "" : " (run the same command to resume)");
}

int sd_cli_import(int argc, char **argv) {
  import_opts o;
  memset(&o, 0, sizeof(o));
  char *pos[1];
  int np, rc = sd_cli_parse(&import_cmd, &o, argc, argv, pos, 1, &np);
  if (rc) return rc == SD_CLI_HELP ? SD_EXIT_OK : SD_EXIT_USAGE;
  if (o.db) {
    sd_cli_err(CMD, "--db is not supported: ingest has one path, through a "
               "running server (start `segmentd serve --db %s` and import "
               "with --url)", o.db);
    return SD_EXIT_USAGE;
  }
  if (strcmp(o.kind, "auto") && strcmp(o.kind, "events") && strcmp(o.kind, "texts")) {
    sd_cli_err(CMD, "--kind must be auto, events or texts");
    return SD_EXIT_USAGE;
  }
  char progress[4096];
  const char *pf = NULL;
  if (strcmp(pos[0], "-")) {
    snprintf(progress, sizeof(progress), "%s",
             o.progress_file ? o.progress_file : pos[0]);
    if (!o.progress_file) strncat(progress, ".progress", sizeof(progress) - strlen(progress) - 1);
    pf = progress;
  }
  importer im = {.o = &o, .parts = {{.kind = "events"}, {.kind = "texts"}}};
  im.pg.tty = isatty(STDERR_FILENO);
  im.pg.quiet = o.quiet;
  im.pg.interval_s = o.interval_s;
  char msg[600];
  if ((rc = sd_cli_client_new(&o.http, CMD, &im.cl, msg, sizeof(msg)))) {
    sd_cli_err(CMD, "%s", msg);
    return rc;
  }
  rc = import_file(&im, pos[0], pf);
  summary(&im, pos[0], rc);
  sd_cli_client_free(im.cl);
  part_free(&im.parts[0]);
  part_free(&im.parts[1]);
  return rc == 0 ? SD_EXIT_OK : SD_EXIT_FAIL;
}
