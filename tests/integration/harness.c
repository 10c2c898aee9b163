/*
 * harness.c -- the server-process half of the integration harness.
 *
 * Makes a temporary directory, fork/execs "$SD_BIN serve" on 127.0.0.1:0
 * with its database and port file there, waits (bounded) for the port file
 * and for GET /readyz == 200, and kills, restarts, stops and cleans up.
 * Under SD_VALGRIND the server runs under memcheck (harness_memcheck.c):
 * its timeouts grow by harness_timeout_scale() and srv_free() stops it
 * gracefully so that memcheck's exit status is checked.
 * The HTTP half lives in harness_http.c; the contract is in harness.h.
 */
#define _XOPEN_SOURCE 700 /* nftw */

#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define SRV_START_TIMEOUT_S 30.0
#define SRV_STOP_TIMEOUT_S 30.0
#define SRV_LOG_TAIL 4096

double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

void harness_dump_tail(const char *path, long tail, const char *what) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "harness: cannot open %s: %s\n", path, strerror(errno));
    return;
  }
  long size = 0;
  if (fseek(f, 0, SEEK_END) == 0)
    size = ftell(f);
  if (fseek(f, size > tail ? size - tail : 0, SEEK_SET) != 0)
    rewind(f);
  fprintf(stderr, "---- tail of %s ----\n", path);
  char buf[1024];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0)
    fwrite(buf, 1, n, stderr);
  fprintf(stderr, "\n---- end of %s log ----\n", what);
  fclose(f);
}

void srv_dump_log(const sd_server *srv) {
  if (srv)
    harness_dump_tail(srv->log, SRV_LOG_TAIL, "server");
}

/* The exit status of wait status st; 128+signal when killed by one. */
static int wait_rc(int st) {
  return WIFEXITED(st) ? WEXITSTATUS(st)
                       : (WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1);
}

/* Reaps the child if it has exited; returns 1 when it is gone. */
static int srv_reaped(sd_server *srv, int *status) {
  int st = 0;
  pid_t r = waitpid(srv->pid, &st, WNOHANG);
  if (r == 0)
    return 0;
  if (r < 0 && errno == EINTR)
    return 0;
  if (status)
    *status = st;
  srv->pid = 0;
  return 1;
}

void harness_exec_child(const char *log, char *const *argv) {
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
  int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) {
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
  }
  int nul = open("/dev/null", O_RDONLY);
  if (nul >= 0) {
    dup2(nul, STDIN_FILENO);
    close(nul);
  }
  execv(argv[0], argv);
  _exit(127);
}

/* Appends a marker line to the log so restarts are told apart. */
static void srv_log_marker(const sd_server *srv, const char *what) {
  FILE *f = fopen(srv->log, "a");
  if (!f)
    return;
  fprintf(f, "==== harness: %s ====\n", what);
  fclose(f);
}

static int srv_spawn(sd_server *srv) {
  if (unlink(srv->port_file) != 0 && errno != ENOENT) {
    fprintf(stderr, "harness: unlink %s: %s\n", srv->port_file,
            strerror(errno));
    return -1;
  }
  srv_log_marker(srv, "start");
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "harness: fork: %s\n", strerror(errno));
    return -1;
  }
  if (pid == 0)
    harness_exec_child(srv->log, srv->argv);
  srv->pid = pid;
  srv->port = 0;
  return 0;
}

/* Reads a valid port from the port file; 0 when not there (yet). */
static int srv_read_port(const sd_server *srv) {
  FILE *f = fopen(srv->port_file, "r");
  if (!f)
    return 0;
  int port = 0;
  if (fscanf(f, "%d", &port) != 1 || port <= 0 || port > 65535)
    port = 0;
  fclose(f);
  return port;
}

static int srv_wait_port(sd_server *srv, double deadline) {
  while (now_s() < deadline) {
    int status = 0;
    pid_t pid = srv->pid;
    if (srv_reaped(srv, &status)) {
      fprintf(stderr, "harness: server exited early (wait status %d)\n",
              status);
      memcheck_check_exit(srv, pid, wait_rc(status));
      return -1;
    }
    srv->port = srv_read_port(srv);
    if (srv->port > 0)
      return 0;
    sleep_ms(20);
  }
  fprintf(stderr, "harness: no port file %s in time\n", srv->port_file);
  return -1;
}

static int srv_wait_ready(sd_server *srv, double deadline) {
  long last = 0;
  while (now_s() < deadline) {
    if (srv_reaped(srv, NULL)) {
      fprintf(stderr, "harness: server exited before ready\n");
      return -1;
    }
    http_resp r = http_req(srv, "GET", "/readyz", NULL, NULL, 0);
    last = r.status;
    http_resp_free(&r);
    if (last == 200)
      return 0;
    sleep_ms(50);
  }
  fprintf(stderr, "harness: /readyz not 200 in time (last %ld)\n", last);
  return -1;
}

/* Spawns and waits until ready; on failure kills and dumps the log. */
static int srv_launch(sd_server *srv) {
  double deadline = now_s() + SRV_START_TIMEOUT_S * harness_timeout_scale();
  if (srv_spawn(srv) != 0)
    return -1;
  if (srv_wait_port(srv, deadline) == 0 && srv_wait_ready(srv, deadline) == 0)
    return 0;
  srv_kill9(srv);
  srv_dump_log(srv);
  return -1;
}

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p)
    memcpy(p, s, n);
  return p;
}

/* Builds the NULL-terminated argv; -1 on allocation failure. */
static void srv_argv_free(sd_server *srv) {
  for (size_t i = 0; srv->argv && srv->argv[i]; i++)
    free(srv->argv[i]);
  free(srv->argv);
  srv->argv = NULL;
}

static int srv_build_argv(sd_server *srv, const char *bin,
                          const char *const *extra) {
  size_t n_extra = 0;
  while (extra && extra[n_extra])
    n_extra++;
  memcheck_prefix pre;
  if (memcheck_prefix_init(&pre, srv->dir) != 0)
    return -1;
  const char *base[] = {bin,    "serve", "--listen",    "127.0.0.1:0",
                        "--db", srv->db, "--port-file", srv->port_file};
  size_t n_base = sizeof base / sizeof base[0];
  size_t n = pre.n + n_base + n_extra;
  srv->argv = calloc(n + 1, sizeof *srv->argv);
  if (!srv->argv)
    return -1;
  for (size_t i = 0; i < n; i++) {
    size_t j = i - pre.n; /* index past the valgrind prefix */
    const char *s = i < pre.n    ? pre.argv[i]
                    : j < n_base ? base[j]
                                 : extra[j - n_base];
    srv->argv[i] = xstrdup(s);
    if (!srv->argv[i])
      return -1;
  }
  return 0;
}

/* Makes the temporary directory and the paths inside it. */
static int srv_make_dir(sd_server *srv) {
  const char *tmp = getenv("TMPDIR");
  if (!tmp || !*tmp)
    tmp = "/tmp";
  int n = snprintf(srv->dir, sizeof srv->dir, "%s/sd-it-XXXXXX", tmp);
  if (n < 0 || (size_t)n >= sizeof srv->dir)
    return -1;
  if (!mkdtemp(srv->dir)) {
    fprintf(stderr, "harness: mkdtemp %s: %s\n", srv->dir, strerror(errno));
    srv->dir[0] = '\0';
    return -1;
  }
  snprintf(srv->db, sizeof srv->db, "%s/segmentd.db", srv->dir);
  snprintf(srv->port_file, sizeof srv->port_file, "%s/port", srv->dir);
  snprintf(srv->log, sizeof srv->log, "%s/server.log", srv->dir);
  return 0;
}

sd_server *srv_start(const char *const *extra_args) {
  const char *bin = getenv("SD_BIN");
  if (!bin || access(bin, X_OK) != 0) {
    fprintf(stderr, "harness: SD_BIN (%s) is not an executable\n",
            bin ? bin : "unset");
    return NULL;
  }
  sd_server *srv = calloc(1, sizeof *srv);
  if (!srv)
    return NULL;
  if (srv_make_dir(srv) != 0 || srv_build_argv(srv, bin, extra_args) != 0 ||
      srv_launch(srv) != 0) {
    srv_free(srv);
    return NULL;
  }
  return srv;
}

int srv_set_args(sd_server *srv, const char *const *extra_args) {
  const char *bin = getenv("SD_BIN");
  if (!srv || srv->pid > 0 || !bin)
    return -1;
  srv_argv_free(srv);
  return srv_build_argv(srv, bin, extra_args);
}

int srv_restart(sd_server *srv) {
  if (!srv)
    return -1;
  if (srv->pid > 0) {
    fprintf(stderr, "harness: srv_restart on a running server\n");
    return -1;
  }
  return srv_launch(srv);
}

void srv_kill9(sd_server *srv) {
  if (!srv || srv->pid <= 0)
    return;
  if (kill(srv->pid, SIGKILL) != 0 && errno != ESRCH)
    fprintf(stderr, "harness: kill: %s\n", strerror(errno));
  int st;
  while (waitpid(srv->pid, &st, 0) < 0 && errno == EINTR) {
  }
  srv->pid = 0;
}

int srv_stop(sd_server *srv) {
  if (!srv || srv->pid <= 0)
    return -1;
  if (kill(srv->pid, SIGTERM) != 0) {
    fprintf(stderr, "harness: kill(SIGTERM): %s\n", strerror(errno));
    return -1;
  }
  double limit = SRV_STOP_TIMEOUT_S * harness_timeout_scale();
  double deadline = now_s() + limit;
  pid_t pid = srv->pid;
  int st = 0;
  while (!srv_reaped(srv, &st)) {
    if (now_s() > deadline) {
      fprintf(stderr, "harness: server ignored SIGTERM for %.0f s\n", limit);
      srv_kill9(srv);
      srv_dump_log(srv);
      return -1;
    }
    sleep_ms(20);
  }
  int rc = wait_rc(st);
  if (rc != 0 && !memcheck_check_exit(srv, pid, rc)) {
    fprintf(stderr, "harness: server exit status %d after SIGTERM\n", rc);
    srv_dump_log(srv);
  }
  return rc;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  if (remove(path) != 0)
    fprintf(stderr, "harness: remove %s: %s\n", path, strerror(errno));
  return 0;
}

/* rm -rf of our own temporary directory only (name made by mkdtemp). */
static void srv_remove_dir(const sd_server *srv) {
  if (!srv->dir[0] || !strstr(srv->dir, "/sd-it-"))
    return;
  if (getenv("SD_KEEP_TMP")) {
    fprintf(stderr, "harness: keeping %s\n", srv->dir);
    return;
  }
  if (nftw(srv->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS) != 0)
    fprintf(stderr, "harness: nftw %s: %s\n", srv->dir, strerror(errno));
}

void srv_free(sd_server *srv) {
  if (!srv)
    return;
  if (memcheck_valgrind() && srv->pid > 0)
    srv_stop(srv);
  srv_kill9(srv);
  srv_remove_dir(srv);
  srv_argv_free(srv);
  free(srv);
}

int run_capture(const char *cmd, char *out, size_t cap) {
  FILE *p = popen(cmd, "r");
  size_t n = p && cap > 1 ? fread(out, 1, cap - 1, p) : 0;
  if (cap) out[n] = 0;
  if (!p) return -1;
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}
