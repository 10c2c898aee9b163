/*
 * cli_common.c -- option tables and man-page style help of the client
 * subcommands (cli.h).
 *
 * One table row per option, as in config.c: parsing, the environment and
 * --help all walk the same rows, so they cannot disagree. Precedence: a
 * flag beats its SEGMENTD_* variable, which beats the default.
 */
#include "segmentd/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double sd_cli_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void sd_cli_err(const char *cmd, const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  fprintf(stderr, "segmentd %s: %s\n", cmd, msg);
}

int sd_cli_buf_add(char **buf, size_t *len, size_t *cap, const char *src,
                   size_t n) {
  if (*len + n + 1 > *cap) {
    size_t nc = *cap ? *cap : 4096;
    while (nc < *len + n + 1) nc *= 2;
    char *nb = realloc(*buf, nc);
    if (!nb) return -1;
    *buf = nb;
    *cap = nc;
  }
  memcpy(*buf + *len, src, n);
  *len += n;
  (*buf)[*len] = 0;
  return 0;
}

/* Stores value v of row o into opts; -1 after printing why. */
static int opt_set(const sd_cli_cmd *cmd, const sd_cli_opt *o, void *opts,
                   const char *v, const char *src) {
  void *p = (char *)opts + o->off;
  if (o->type == SD_CLI_STR) {
    *(const char **)p = v;
    return 0;
  }
  if (o->type == SD_CLI_BOOL) {
    *(int *)p = v && (!strcmp(v, "1") || !strcmp(v, "true"));
    return 0;
  }
  char *end = NULL;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (errno || end == v || *end || n < o->min || n > o->max) {
    sd_cli_err(cmd->name, "%s --%s=\"%s\": expected a whole number in "
               "[%ld, %ld]", src, o->flag, v, o->min, o->max);
    return -1;
  }
  *(long *)p = n;
  return 0;
}

static const sd_cli_opt *opt_find(const sd_cli_cmd *cmd, const char *name,
                                  size_t len, char short_name) {
  for (size_t i = 0; i < cmd->n_opts; i++) {
    const sd_cli_opt *o = &cmd->opts[i];
    if (short_name ? o->short_name == short_name
                   : strlen(o->flag) == len && !strncmp(o->flag, name, len))
      return o;
  }
  return NULL;
}

/* Defaults, then the environment. */
static int opts_init(const sd_cli_cmd *cmd, void *opts) {
  for (size_t i = 0; i < cmd->n_opts; i++) {
    const sd_cli_opt *o = &cmd->opts[i];
    if (o->def && opt_set(cmd, o, opts, o->def, "default") < 0) return -1;
  }
  for (size_t i = 0; i < cmd->n_opts; i++) {
    const sd_cli_opt *o = &cmd->opts[i];
    const char *v = o->env ? getenv(o->env) : NULL;
    if (v && *v && opt_set(cmd, o, opts, v, o->env) < 0) return -1;
  }
  return 0;
}

/* One flag at argv[*i] (long "--x[=v]" or short "-x [v]"). */
static int opt_flag(const sd_cli_cmd *cmd, void *opts, int argc, char **argv,
                    int *i) {
  const char *a = argv[*i];
  int is_long = a[1] == '-';
  const char *name = a + (is_long ? 2 : 1);
  const char *eq = is_long ? strchr(name, '=') : NULL;
  size_t len = eq ? (size_t)(eq - name) : strlen(name);
  const sd_cli_opt *o =
      is_long ? opt_find(cmd, name, len, 0)
              : (len == 1 ? opt_find(cmd, name, 0, name[0]) : NULL);
  if (!o) {
    sd_cli_err(cmd->name, "unknown option \"%s\" (see segmentd %s --help)", a,
               cmd->name);
    return -1;
  }
  if (o->type == SD_CLI_BOOL) {
    if (eq) {
      sd_cli_err(cmd->name, "--%s takes no value", o->flag);
      return -1;
    }
    *(int *)((char *)opts + o->off) = 1;
    return 0;
  }
  const char *v = eq ? eq + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
  if (!v) {
    sd_cli_err(cmd->name, "option --%s needs a value (%s)", o->flag, o->arg);
    return -1;
  }
  return opt_set(cmd, o, opts, v, "option");
}

int sd_cli_parse(const sd_cli_cmd *cmd, void *opts, int argc, char **argv,
                 char **pos, int cap, int *npos) {
  *npos = 0;
  if (opts_init(cmd, opts) < 0) return -1;
  int flags_done = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!flags_done && (!strcmp(a, "--help") || !strcmp(a, "-h"))) {
      sd_cli_help(cmd, stdout);
      return SD_CLI_HELP;
    }
    if (!flags_done && !strcmp(a, "--")) {
      flags_done = 1;
    } else if (!flags_done && a[0] == '-' && a[1]) {
      if (opt_flag(cmd, opts, argc, argv, &i) < 0) return -1;
    } else if (*npos < cap) {
      pos[(*npos)++] = argv[i];
    } else {
      sd_cli_err(cmd->name, "unexpected argument \"%s\" (see segmentd %s "
                 "--help)", a, cmd->name);
      return -1;
    }
  }
  if (*npos < cmd->min_args) {
    sd_cli_err(cmd->name, "missing argument: segmentd %s %s", cmd->name,
               cmd->synopsis);
    return -1;
  }
  return 0;
}

/* Prints text indented by `indent` spaces on every line. */
static void put_indented(FILE *out, const char *text, int indent) {
  const char *p = text;
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    if (n) fprintf(out, "%*s%.*s\n", indent, "", (int)n, p);
    else fputc('\n', out);
    p += n + (nl ? 1 : 0);
  }
}

static void help_option(FILE *out, const sd_cli_opt *o) {
  char head[128];
  int n = 0;
  if (o->short_name) n = snprintf(head, sizeof(head), "-%c, ", o->short_name);
  snprintf(head + n, sizeof(head) - (size_t)n, "--%s%s%s", o->flag,
           o->type == SD_CLI_BOOL ? "" : " ",
           o->type == SD_CLI_BOOL ? "" : o->arg);
  fprintf(out, "    %s\n", head);
  put_indented(out, o->help, 12);
  if (o->env || o->def)
    fprintf(out, "%12s%s%s%s%s%s\n", "", o->env ? "Environment: " : "",
            o->env ? o->env : "", o->env && o->def ? ". " : "",
            o->def ? "Default: " : "", o->def ? o->def : "");
}

void sd_cli_help(const sd_cli_cmd *cmd, FILE *out) {
  fprintf(out, "NAME\n    segmentd %s - %s\n\n", cmd->name, cmd->summary);
  fprintf(out, "SYNOPSIS\n    segmentd %s %s\n\n", cmd->name, cmd->synopsis);
  fprintf(out, "DESCRIPTION\n");
  put_indented(out, cmd->description, 4);
  fprintf(out, "\nOPTIONS\n");
  for (size_t i = 0; i < cmd->n_opts; i++) help_option(out, &cmd->opts[i]);
  fprintf(out, "    -h, --help\n%12sprint this help and exit\n\n", "");
  fprintf(out, "EXIT STATUS\n"
               "    0   success\n"
               "    1   runtime failure (see the message on stderr)\n"
               "    2   usage error: unknown option, bad value, missing "
               "argument\n");
  if (cmd->exit_status) put_indented(out, cmd->exit_status, 4);
  fprintf(out, "\nEXAMPLES\n");
  put_indented(out, cmd->examples, 4);
}
