/*
 * cli_export.c -- `segmentd export`: assignments and cluster summaries of
 * a running server as NDJSON or CSV.
 *
 * Source: the HTTP API, not the database file. Labels are made by the
 * server (automatic c-TF-IDF and feature labels live in its published
 * model; the database keeps only manual ones), the API is the contract
 * while the schema is internal, it works against a server in a container
 * or on another host, and it goes through the same keys as every client.
 * Assignments come from the streamed GET /v1/spaces/{space}/assignments
 * (read by the server in keyset chunks of 1,000 rows, so memory stays
 * bounded on both sides), labels from GET /v1/spaces/{space}/clusters
 * fetched just before.
 *
 * Output goes to a temporary file renamed over -o FILE once complete, so
 * a failed export never leaves a truncated file behind.
 */
#include "segmentd/cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "export"

typedef struct {
  sd_cli_http_opts http;
  const char *what, *format, *space, *out;
} export_opts;

static const sd_cli_opt export_rows[] = {
    SD_CLI_HTTP_ROWS(export_opts),
    {"what", 'w', NULL, SD_CLI_STR, offsetof(export_opts, what), "assignments",
     0, 0, "WHAT", "assignments | clusters"},
    {"format", 'f', NULL, SD_CLI_STR, offsetof(export_opts, format), "ndjson",
     0, 0, "FORMAT", "ndjson | csv (RFC 4180, with a header row)"},
    {"space", 's', NULL, SD_CLI_STR, offsetof(export_opts, space), "all", 0, 0,
     "SPACE", "intents | segments | all"},
    {"output", 'o', NULL, SD_CLI_STR, offsetof(export_opts, out), "-", 0, 0,
     "FILE", "write to FILE (replaced only once the export is complete);\n"
     "\"-\" = standard output"},
};

static const sd_cli_cmd export_cmd = {
    CMD, "write assignments or cluster summaries of a running server",
    "[OPTIONS]",
    "Reads from the server at --url through the JSON API.\n"
    "\n"
    "--what assignments: one row per entity (texts in the intents space,\n"
    "users in the segments space) with the columns\n"
    "  space, id, user_id, cluster, label, similarity, confidence\n"
    "id is the text id (intents) or the user id (segments); user_id is the\n"
    "text's user (intents) or the user (segments). cluster, label,\n"
    "similarity and confidence are empty (CSV) or null (NDJSON) for an\n"
    "entity not assigned yet. Labels are the ones live when the export\n"
    "started (manual ones where set); rows stream in storage order.\n"
    "\n"
    "--what clusters: one row per live cluster. NDJSON rows are the objects\n"
    "of GET /v1/spaces/{space}/clusters with \"space\" and \"model_version\"\n"
    "added; CSV has the columns space, model_version, id, label,\n"
    "label_source, description, size, share, cohesion, stability,\n"
    "actionable, top_terms, top_features, representatives, created_at\n"
    "(lists joined with \"; \", representatives by id).\n"
    "\n"
    "Why HTTP and not the database file: automatic labels exist only in\n"
    "the server's live model, and the API is the stable contract.",
    export_rows, sizeof(export_rows) / sizeof(export_rows[0]), NULL,
    "segmentd export > assignments.ndjson\n"
    "segmentd export --space intents --format csv -o intents.csv\n"
    "segmentd export --what clusters --format csv -o clusters.csv",
    0, 0};

static const char *const ASSIGN_COLS[] = {"space", "id", "user_id", "cluster",
                                          "label", "similarity", "confidence",
                                          NULL};
static const char *const CLUSTER_COLS[] = {
    "space", "model_version", "id", "label", "label_source", "description",
    "size", "share", "cohesion", "stability", "actionable", "top_terms",
    "top_features", "representatives", "created_at", NULL};

typedef struct {
  const export_opts *o;
  sd_cli_client *cl;
  FILE *out;
  int csv;
  const char *space;
  json_t *labels; /* "<cluster id>" -> label */
  char *pend;     /* partial NDJSON line */
  size_t plen, pcap;
  long long rows;
} exporter;

/* ---- CSV ---- */

static void csv_text(FILE *f, const char *s) {
  if (!strpbrk(s, ",\"\r\n")) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

/* One cell: strings as text, numbers as JSON, lists joined by "; " (an
 * object in a list by its "id"), null empty. */
static void csv_cell(FILE *f, json_t *v) {
  if (json_is_string(v)) {
    csv_text(f, json_string_value(v));
  } else if (json_is_array(v)) {
    char *buf = NULL;
    size_t len = 0, cap = 0, i;
    json_t *e;
    json_array_foreach(v, i, e) {
      json_t *x = json_is_object(e) ? json_object_get(e, "id") : e;
      char *s = json_is_string(x) ? NULL : json_dumps(x, JSON_ENCODE_ANY);
      const char *t = s ? s : json_string_value(x);
      if (i) sd_cli_buf_add(&buf, &len, &cap, "; ", 2);
      if (t) sd_cli_buf_add(&buf, &len, &cap, t, strlen(t));
      free(s);
    }
    csv_text(f, buf ? buf : "");
    free(buf);
  } else if (v && !json_is_null(v)) {
    char *s = json_dumps(v, JSON_ENCODE_ANY);
    if (s) fputs(s, f);
    free(s);
  }
}

/* Writes row (an object) as CSV over cols, or as one NDJSON line. */
static int emit(exporter *ex, json_t *row, const char *const *cols) {
  if (ex->csv) {
    for (int i = 0; cols[i]; i++) {
      if (i) fputc(',', ex->out);
      csv_cell(ex->out, json_object_get(row, cols[i]));
    }
    fputs("\r\n", ex->out);
  } else if (json_dumpf(row, ex->out, JSON_COMPACT) < 0 ||
             fputc('\n', ex->out) == EOF) {
    return -1;
  }
  ex->rows++;
  return ferror(ex->out) ? -1 : 0;
}

static void csv_header(exporter *ex, const char *const *cols) {
  if (!ex->csv) return;
  for (int i = 0; cols[i]; i++) fprintf(ex->out, "%s%s", i ? "," : "", cols[i]);
  fputs("\r\n", ex->out);
}

/* ---- reading the API ---- */

/* GET path as JSON (a new reference), or NULL after an error message. */
static json_t *get_json(exporter *ex, const char *path) {
  sd_cli_resp r;
  json_t *v = NULL;
  if (sd_cli_call(ex->cl, "GET", path, NULL, 0, 1, &r) == 0 && r.status == 200)
    v = json_loads(r.body, 0, NULL);
  if (!v) {
    char why[600];
    sd_cli_describe(&r, why, sizeof(why));
    sd_cli_err(CMD, "GET %s failed: %s", path, why);
  }
  sd_cli_resp_free(&r);
  return v;
}

static json_t *get_clusters(exporter *ex) {
  char path[128];
  snprintf(path, sizeof(path), "/v1/spaces/%s/clusters", ex->space);
  json_t *v = get_json(ex, path);
  if (v && !json_is_array(json_object_get(v, "clusters"))) {
    sd_cli_err(CMD, "GET %s: no \"clusters\" array in the answer", path);
    json_decref(v);
    v = NULL;
  }
  return v;
}

static int export_clusters(exporter *ex) {
  json_t *v = get_clusters(ex), *c;
  if (!v) return -1;
  size_t i;
  int rc = 0;
  json_array_foreach(json_object_get(v, "clusters"), i, c) {
    json_t *row = json_pack("{s:s,s:O}", "space", ex->space, "model_version",
                            json_object_get(v, "model_version"));
    json_object_update(row, c);
    if (rc == 0) rc = emit(ex, row, CLUSTER_COLS);
    json_decref(row);
  }
  json_decref(v);
  return rc;
}

/* One assignment line of the stream -> one row. */
static int assignment_row(exporter *ex, const char *s, size_t n) {
  json_t *a = json_loadb(s, n, 0, NULL);
  if (!json_is_object(a)) {
    json_decref(a);
    sd_cli_err(CMD, "the assignments stream sent a line that is not a JSON "
               "object");
    return -1;
  }
  json_t *cl = json_object_get(a, "cluster"), *label = NULL;
  if (json_is_integer(cl)) {
    char key[32];
    snprintf(key, sizeof(key), "%lld", (long long)json_integer_value(cl));
    label = json_object_get(ex->labels, key);
  }
  int seg = !strcmp(ex->space, "segments");
  json_t *row = json_pack("{s:s,s:O}", "space", ex->space, "id",
                          json_object_get(a, "id"));
  const char *const from[] = {seg ? "id" : "user_id", "cluster", NULL,
                              "similarity", "confidence"};
  for (int i = 0; i < 5 && row; i++) {
    json_t *v = i == 2 ? label : json_object_get(a, from[i]);
    json_object_set(row, ASSIGN_COLS[i + 2], v ? v : json_null());
  }
  int rc = row ? emit(ex, row, ASSIGN_COLS) : -1;
  json_decref(row);
  json_decref(a);
  return rc;
}

/* Stream callback: splits the body into lines. Non-zero aborts. */
static int on_data(const char *data, size_t n, void *ud) {
  exporter *ex = ud;
  if (sd_cli_buf_add(&ex->pend, &ex->plen, &ex->pcap, data, n) < 0) return 1;
  size_t start = 0;
  for (size_t i = 0; i < ex->plen; i++) {
    if (ex->pend[i] != '\n') continue;
    if (i > start && assignment_row(ex, ex->pend + start, i - start) < 0)
      return 1;
    start = i + 1;
  }
  memmove(ex->pend, ex->pend + start, ex->plen - start);
  ex->plen -= start;
  return 0;
}

/* The labels of the live clusters: "<id>" -> label. */
static int load_labels(exporter *ex) {
  json_t *v = get_clusters(ex), *c;
  if (!v) return -1;
  size_t i;
  json_array_foreach(json_object_get(v, "clusters"), i, c) {
    char key[32];
    snprintf(key, sizeof(key), "%lld",
             (long long)json_integer_value(json_object_get(c, "id")));
    json_object_set(ex->labels, key, json_object_get(c, "label"));
  }
  json_decref(v);
  return 0;
}

static int export_assignments(exporter *ex) {
  json_object_clear(ex->labels);
  if (load_labels(ex) < 0) return -1;
  char path[128];
  snprintf(path, sizeof(path), "/v1/spaces/%s/assignments", ex->space);
  sd_cli_resp r;
  ex->plen = 0;
  int rc = sd_cli_stream(ex->cl, path, on_data, ex, &r);
  if (rc == 0 && ex->plen > 0)
    rc = assignment_row(ex, ex->pend, ex->plen); /* no final newline */
  if (rc < 0 && (r.status != 200 || r.error[0])) {
    char why[600];
    sd_cli_describe(&r, why, sizeof(why));
    sd_cli_err(CMD, "GET %s failed: %s", path, why);
  }
  sd_cli_resp_free(&r);
  return rc;
}

/* ---- output ---- */

static int export_space(exporter *ex) {
  return strcmp(ex->o->what, "clusters") ? export_assignments(ex)
                                         : export_clusters(ex);
}

static int export_all(exporter *ex) {
  static const char *const spaces[] = {"intents", "segments"};
  csv_header(ex, strcmp(ex->o->what, "clusters") ? ASSIGN_COLS : CLUSTER_COLS);
  int rc = 0;
  for (int i = 0; i < 2 && rc == 0; i++) {
    if (strcmp(ex->o->space, "all") && strcmp(ex->o->space, spaces[i]))
      continue;
    ex->space = spaces[i];
    rc = export_space(ex);
  }
  if (rc == 0 && fflush(ex->out) != 0) rc = -1;
  return rc;
}

static int check_opts(const export_opts *o) {
  const char *bad = strcmp(o->what, "assignments") && strcmp(o->what, "clusters")
                        ? "--what must be assignments or clusters"
                    : strcmp(o->format, "ndjson") && strcmp(o->format, "csv")
                        ? "--format must be ndjson or csv"
                    : strcmp(o->space, "intents") && strcmp(o->space, "segments") &&
                              strcmp(o->space, "all")
                        ? "--space must be intents, segments or all"
                        : NULL;
  if (bad) sd_cli_err(CMD, "%s", bad);
  return bad ? -1 : 0;
}

/* Runs the export into ex->out (stdout, or a temporary file renamed to
 * -o once complete). */
static int export_run(exporter *ex) {
  const char *path = ex->o->out;
  if (!strcmp(path, "-")) {
    ex->out = stdout;
    return export_all(ex);
  }
  char tmp[4200];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  if (!(ex->out = fopen(tmp, "w")))
    return sd_cli_err(CMD, "cannot write %s: %s", tmp, strerror(errno)), -1;
  int rc = export_all(ex);
  if (fclose(ex->out) != 0 && rc == 0)
    rc = -1, sd_cli_err(CMD, "writing %s: %s", tmp, strerror(errno));
  if (rc == 0 && rename(tmp, path) != 0)
    rc = -1, sd_cli_err(CMD, "cannot rename %s to %s: %s", tmp, path,
                        strerror(errno));
  if (rc < 0) remove(tmp);
  return rc;
}

int sd_cli_export(int argc, char **argv) {
  export_opts o;
  memset(&o, 0, sizeof(o));
  int np, rc = sd_cli_parse(&export_cmd, &o, argc, argv, NULL, 0, &np);
  if (rc) return rc == SD_CLI_HELP ? SD_EXIT_OK : SD_EXIT_USAGE;
  if (check_opts(&o) < 0) return SD_EXIT_USAGE;
  exporter ex = {.o = &o, .csv = !strcmp(o.format, "csv"),
                 .labels = json_object()};
  char msg[600];
  if ((rc = sd_cli_client_new(&o.http, CMD, &ex.cl, msg, sizeof(msg)))) {
    sd_cli_err(CMD, "%s", msg);
    json_decref(ex.labels);
    return rc;
  }
  rc = export_run(&ex);
  if (rc == 0 && strcmp(o.out, "-"))
    fprintf(stderr, "segmentd export: %lld rows written to %s\n", ex.rows,
            o.out);
  sd_cli_client_free(ex.cl);
  json_decref(ex.labels);
  free(ex.pend);
  return rc == 0 ? SD_EXIT_OK : SD_EXIT_FAIL;
}
