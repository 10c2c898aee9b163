/*
 * harness_memcheck.c -- running the server under valgrind memcheck.
 *
 * When SD_VALGRIND names the valgrind executable (tests/CMakeLists.txt sets
 * it for the `valgrind` ctest label of a -DSD_VALGRIND=ON build), every
 * server the harness starts runs as
 *   valgrind --tool=memcheck --error-exitcode=97 --leak-check=full
 *            --errors-for-leak-kinds=definite ... $SD_BIN serve ...
 * with its report in <server dir>/memcheck.<pid>.log and the suppressions
 * of SD_VALGRIND_SUPP (if set). A server that exits with status 97 had
 * memcheck errors: the harness prints the report and the test program
 * then exits 1 whatever its own result (an atexit handler), so every
 * memcheck error fails the test. Extra valgrind options can be given in
 * VALGRIND_OPTS (read by valgrind itself).
 *
 * Owns no heap memory: the prefix lives in the caller's memcheck_prefix.
 * The contract is in harness.h.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MEMCHECK_SCALE 30.0 /* timeouts under valgrind (the model fits
                               * run up to ~100x slower) */
#define MEMCHECK_LOG_TAIL 65536

static int g_memcheck_failures; /* server runs that ended with errors */

const char *memcheck_valgrind(void) {
  const char *vg = getenv("SD_VALGRIND");
  return vg && *vg ? vg : NULL;
}

double harness_timeout_scale(void) {
  const char *s = getenv("SD_TIMEOUT_SCALE");
  double v = s && *s ? strtod(s, NULL) : 0.0;
  if (v >= 1.0)
    return v;
  return memcheck_valgrind() ? MEMCHECK_SCALE : 1.0;
}

int memcheck_prefix_init(memcheck_prefix *p, const char *dir) {
  p->n = 0;
  const char *vg = memcheck_valgrind();
  if (!vg)
    return 0;
  if (access(vg, X_OK) != 0) {
    fprintf(stderr, "harness: SD_VALGRIND (%s) is not an executable\n", vg);
    return -1;
  }
  snprintf(p->exit_opt, sizeof p->exit_opt, "--error-exitcode=%d",
           MEMCHECK_ERROR_EXIT);
  snprintf(p->log_opt, sizeof p->log_opt, "--log-file=%s/memcheck.%%p.log",
           dir);
  const char *fixed[] = {vg,
                         "--tool=memcheck",
                         p->exit_opt,
                         "--leak-check=full",
                         "--errors-for-leak-kinds=definite",
                         "--show-leak-kinds=definite",
                         "--num-callers=30",
                         p->log_opt};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
    p->argv[p->n++] = fixed[i];
  const char *supp = getenv("SD_VALGRIND_SUPP");
  if (supp && *supp) {
    snprintf(p->supp_opt, sizeof p->supp_opt, "--suppressions=%s", supp);
    p->argv[p->n++] = p->supp_opt;
  }
  return 0;
}

/* Fails the test program after all when a server had memcheck errors. */
static void memcheck_atexit(void) {
  if (g_memcheck_failures == 0)
    return;
  fprintf(stderr, "harness: FAIL: %d server run(s) with memcheck errors\n",
          g_memcheck_failures);
  fflush(NULL);
  _exit(1);
}

int memcheck_check_exit(const sd_server *srv, pid_t pid, int rc) {
  if (!memcheck_valgrind() || rc == 0)
    return 0;
  char path[400];
  snprintf(path, sizeof path, "%s/memcheck.%ld.log", srv->dir, (long)pid);
  if (rc == MEMCHECK_ERROR_EXIT)
    fprintf(stderr, "harness: memcheck found errors in server pid %ld\n",
            (long)pid);
  harness_dump_tail(path, MEMCHECK_LOG_TAIL, "memcheck");
  if (rc != MEMCHECK_ERROR_EXIT)
    return 0;
  if (g_memcheck_failures++ == 0)
    atexit(memcheck_atexit);
  return 1;
}
