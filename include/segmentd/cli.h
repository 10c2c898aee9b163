/*
 * cli.h -- the client subcommands of the segmentd command (`version`,
 * `import`, `export`, `migrate`, `recluster`) and what they share.
 *
 * Owns: each subcommand's entry point (cli_version.c, cli_import.c,
 * cli_export.c, cli_admin.c), their option tables, man-page style --help
 * (cli_common.c), and the HTTP client they talk to a running server with
 * (cli_http.c: libcurl, bearer key, retries on 429/503 honouring
 * Retry-After).
 *
 * Exit status of every subcommand: 0 success, 1 runtime failure (server
 * unreachable, a refused request, a file that cannot be read or written),
 * 2 usage error (unknown flag, bad value, missing argument).
 *
 * Memory: option structs hold pointers into argv, the environment or
 * static defaults (never freed). Every sd_cli_resp body is malloc'd and
 * released by sd_cli_resp_free(); sd_cli_client_free() accepts NULL.
 */
#ifndef SEGMENTD_CLI_H
#define SEGMENTD_CLI_H

#include <stddef.h>
#include <stdio.h>

enum { SD_EXIT_OK = 0, SD_EXIT_FAIL = 1, SD_EXIT_USAGE = 2 };

/* ---- subcommands: argv[0] is the subcommand's name ---- */
int sd_cli_version(int argc, char **argv);
int sd_cli_import(int argc, char **argv);
int sd_cli_export(int argc, char **argv);
int sd_cli_migrate(int argc, char **argv);
int sd_cli_recluster(int argc, char **argv);

/* ---- option tables (cli_common.c) ---- */

typedef enum { SD_CLI_STR, SD_CLI_LONG, SD_CLI_BOOL } sd_cli_type;

typedef struct {
  const char *flag;  /* long name, without "--" */
  char short_name;   /* e.g. 'o' for -o; 0 = none */
  const char *env;   /* SEGMENTD_* variable, or NULL */
  sd_cli_type type;  /* BOOL takes no value: present = 1 */
  size_t off;        /* offset in the subcommand's option struct */
  const char *def;   /* default; NULL = unset (strings) or 0 */
  long min, max;     /* bounds of a LONG */
  const char *arg;   /* value name in --help, e.g. "URL" */
  const char *help;
} sd_cli_opt;

typedef struct {
  const char *name;        /* "import" */
  const char *summary;     /* one line: the NAME section and `segmentd --help` */
  const char *synopsis;    /* arguments after `segmentd <name>` */
  const char *description; /* paragraphs, wrapped by the author */
  const sd_cli_opt *opts;
  size_t n_opts;
  const char *exit_status; /* extra lines after the common three, or NULL */
  const char *examples;
  int min_args, max_args;  /* positional arguments */
} sd_cli_cmd;

/* The client's connection options, embedded in each HTTP subcommand's
 * option struct as member `http` (SD_CLI_HTTP_ROWS adds their rows). */
typedef struct {
  const char *url;          /* server base URL */
  const char *api_key;      /* bearer key; NULL = none */
  const char *api_key_file; /* first line is the key */
  long timeout_s;           /* one request */
  long retries;             /* attempts after a 429, 503 or lost connection */
} sd_cli_http_opts;

#define SD_CLI_HTTP_ROWS(T)                                                  \
  {"url", 0, "SEGMENTD_URL", SD_CLI_STR, offsetof(T, http.url),              \
   "http://127.0.0.1:8080", 0, 0, "URL", "base URL of the running server"},  \
  {"api-key", 0, "SEGMENTD_API_KEY", SD_CLI_STR, offsetof(T, http.api_key),  \
   NULL, 0, 0, "KEY", "API key sent as `Authorization: Bearer KEY`\n(prefer " \
   "the environment variable: flags show in ps)"},                           \
  {"api-key-file", 0, "SEGMENTD_API_KEY_FILE", SD_CLI_STR,                   \
   offsetof(T, http.api_key_file), NULL, 0, 0, "FILE",                       \
   "read the API key from the first line of FILE"},                          \
  {"timeout", 0, "SEGMENTD_CLIENT_TIMEOUT", SD_CLI_LONG,                     \
   offsetof(T, http.timeout_s), "300", 1, 86400, "SECONDS",                  \
   "give up on one request after this long (a streamed\n"     \
   "export: after this long without data)"},                                \
  {"retries", 0, "SEGMENTD_CLIENT_RETRIES", SD_CLI_LONG,                     \
   offsetof(T, http.retries), "5", 0, 1000, "N",                             \
   "retries of a request answered 429 or 503 (waiting as\n"   \
   "Retry-After says) or whose connection failed"}

/* Result of sd_cli_parse besides 0: help was printed (exit 0). */
#define SD_CLI_HELP 1

/* Fills opts with defaults, then the environment, then argv[1..] (argv[0]
 * is the subcommand). Positional arguments go to pos (cap entries), their
 * number to *npos. Returns 0, SD_CLI_HELP after printing --help to stdout,
 * or -1 after printing a usage error to stderr (exit 2). "--" ends flags. */
int sd_cli_parse(const sd_cli_cmd *cmd, void *opts, int argc, char **argv,
                 char **pos, int cap, int *npos);

/* The man-page style help: NAME, SYNOPSIS, DESCRIPTION, OPTIONS, EXIT
 * STATUS, EXAMPLES. */
void sd_cli_help(const sd_cli_cmd *cmd, FILE *out);

/* Prints "segmentd <cmd>: <message>\n" to stderr (printf format). */
void sd_cli_err(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Monotonic seconds. */
double sd_cli_now(void);

/* ---- HTTP client (cli_http.c) ---- */

typedef struct sd_cli_client sd_cli_client;

typedef struct {
  long status;       /* HTTP status; 0 when no answer came */
  char *body;        /* NUL-terminated, malloc'd (may be empty) */
  size_t len;
  char error[256];   /* transport error text when status is 0 */
} sd_cli_resp;

/* A client for o->url (the key read from o->api_key_file when set). cmd
 * names the subcommand in retry notes. 0, or with msg set the exit status
 * to end with: SD_EXIT_USAGE (not an http(s) URL), SD_EXIT_FAIL. */
int sd_cli_client_new(const sd_cli_http_opts *o, const char *cmd,
                      sd_cli_client **out, char *msg, size_t cap);
void sd_cli_client_free(sd_cli_client *c);

/* One JSON request (body NULL = none) with retries: 429 and 503 wait for
 * Retry-After (else a doubling backoff); a failed connection is retried
 * when `idempotent` or when nothing was sent. The last answer goes to *r
 * (released with sd_cli_resp_free). 0 when an HTTP answer came, -1 when
 * none did (r->error says why). */
int sd_cli_call(sd_cli_client *c, const char *method, const char *path,
                const char *body, size_t len, int idempotent, sd_cli_resp *r);
void sd_cli_resp_free(sd_cli_resp *r);

/* A streamed GET: on a 200, write(data, n, ud) gets the body as it comes
 * (returning non-zero aborts); otherwise the body is kept in r. Retries
 * only before the first byte. 0 when the whole 200 body was delivered; -1
 * otherwise with r->error or r->status/r->body telling why. */
int sd_cli_stream(sd_cli_client *c, const char *path,
                  int (*write)(const char *data, size_t n, void *ud), void *ud,
                  sd_cli_resp *r);

/* "HTTP 422 invalid_field: <message>" (or the transport error) of r. */
void sd_cli_describe(const sd_cli_resp *r, char *out, size_t cap);

/* Appends src to a malloc'd buffer (*buf, *len, *cap). 0, or -1 when out
 * of memory. */
int sd_cli_buf_add(char **buf, size_t *len, size_t *cap, const char *src,
                   size_t n);

#endif
