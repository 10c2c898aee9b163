/*
 * cli_version.c -- `segmentd version`: the build (version, git describe,
 * commit, build type) and the versions of the libraries the binary runs
 * with, as text or JSON.
 *
 * Library versions are asked of the loaded libraries at run time (not
 * taken from headers), so they show what this process really uses.
 */
#include "segmentd/cli.h"

#include <cblas.h>
#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#ifndef SD_GIT_DESCRIBE
#define SD_GIT_DESCRIBE SD_GIT_COMMIT
#endif

typedef struct {
  int json;
} version_opts;

static const sd_cli_opt version_rows[] = {
    {"json", 'j', NULL, SD_CLI_BOOL, offsetof(version_opts, json), NULL, 0, 0,
     "", "print one JSON object instead of text"},
};

static const sd_cli_cmd version_cmd = {
    "version", "print the version of segmentd and of its libraries", "[--json]",
    "Prints the segmentd version, the `git describe` of the source it was\n"
    "built from (taken when the build was configured; \"unknown\" outside a\n"
    "git checkout), its commit and build type, then the versions of the\n"
    "libraries loaded at run time: libmicrohttpd, jansson, SQLite, OpenBLAS\n"
    "(its build configuration, the CPU kernel chosen, threading model),\n"
    "libcurl (with its TLS library) and OpenSSL's libcrypto.\n"
    "`segmentd --version` prints one line: the version and the commit.",
    version_rows, sizeof(version_rows) / sizeof(version_rows[0]), NULL,
    "segmentd version\n"
    "segmentd version --json | jq -r .sqlite",
    0, 0};

static const char *blas_parallel(void) {
  switch (openblas_get_parallel()) {
  case 0: return "sequential";
  case 1: return "pthreads";
  case 2: return "OpenMP";
  default: return "unknown";
  }
}

/* Every line as (key, label, value). */
static json_t *versions(void) {
  const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
  char blas[512], curl[256];
  snprintf(blas, sizeof(blas), "%s (core %s, %s)", openblas_get_config(),
           openblas_get_corename(), blas_parallel());
  snprintf(curl, sizeof(curl), "%s (%s)", cv->version,
           cv->ssl_version ? cv->ssl_version : "no TLS");
  return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "version",
                   SD_VERSION, "git_describe", SD_GIT_DESCRIBE, "git_commit",
                   SD_GIT_COMMIT, "build_type", SD_BUILD_TYPE, "libmicrohttpd",
                   MHD_get_version(), "jansson", jansson_version_str(),
                   "sqlite", sqlite3_libversion(), "openblas", blas,
                   "libcurl", curl, "openssl", OpenSSL_version(OPENSSL_VERSION));
}

int sd_cli_version(int argc, char **argv) {
  version_opts o = {0};
  int np, rc = sd_cli_parse(&version_cmd, &o, argc, argv, NULL, 0, &np);
  if (rc) return rc == SD_CLI_HELP ? SD_EXIT_OK : SD_EXIT_USAGE;
  json_t *v = versions();
  if (!v) return sd_cli_err("version", "out of memory"), SD_EXIT_FAIL;
  if (o.json) {
    json_dumpf(v, stdout, JSON_INDENT(2));
    putchar('\n');
  } else {
    static const char *const rows[][2] = {
        {"git_describe", "git"}, {"git_commit", "commit"},
        {"build_type", "build"}, {"libmicrohttpd", "libmicrohttpd"},
        {"jansson", "jansson"}, {"sqlite", "SQLite"},
        {"openblas", "OpenBLAS"}, {"libcurl", "libcurl"},
        {"openssl", "OpenSSL"}};
    printf("segmentd %s\n", SD_VERSION);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
      printf("  %-14s %s\n", rows[i][1],
             json_string_value(json_object_get(v, rows[i][0])));
  }
  json_decref(v);
  return fflush(stdout) == 0 ? SD_EXIT_OK : SD_EXIT_FAIL;
}
