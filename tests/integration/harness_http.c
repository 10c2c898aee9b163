/*
 * harness_http.c -- the HTTP and JSON half of the integration harness.
 *
 * One reusable libcurl easy handle per thread (keep-alive across requests),
 * a 30 s timeout (times harness_timeout_scale()) and CURLOPT_NOSIGNAL on every request, captured response
 * headers, and helpers that check segmentd's JSON error shape
 * (docs/API.md, "Every error is JSON"). The contract is in harness.h.
 */
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#define HTTP_TIMEOUT_S 30L
#define HTTP_CONNECT_TIMEOUT_S 5L
#define HTTP_MAX_BODY ((size_t)512 << 20)

static _Thread_local CURL *tl_curl;
static _Thread_local char tl_errbuf[CURL_ERROR_SIZE];
static _Thread_local int tl_quiet; /* http_set_quiet() */
static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static int g_curl_init_rc;

static void http_global_init(void) {
  g_curl_init_rc = (int)curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* The calling thread's handle, created on first use; NULL on failure. */
static CURL *http_handle(void) {
  pthread_once(&g_curl_once, http_global_init);
  if (g_curl_init_rc != 0)
    return NULL;
  if (!tl_curl)
    tl_curl = curl_easy_init();
  return tl_curl;
}

void http_thread_done(void) {
  if (tl_curl)
    curl_easy_cleanup(tl_curl);
  tl_curl = NULL;
}

typedef struct {
  char *p;
  size_t len, cap;
} http_buf;

static size_t http_on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  http_buf *b = ud;
  size_t n = size * nmemb;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
      cap *= 2;
    if (cap > HTTP_MAX_BODY)
      return 0; /* aborts the transfer */
    char *p = realloc(b->p, cap);
    if (!p)
      return 0;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, ptr, n);
  b->len += n;
  b->p[b->len] = '\0';
  return n;
}

/* Copies the value of header `name` from one header line into dst (joined
 * with ", " when the header repeats). */
static void http_copy_header(const char *line, size_t n, const char *name,
                             char *dst, size_t cap) {
  size_t k = strlen(name);
  if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
    return;
  const char *v = line + k + 1, *end = line + n;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
    end--;
  size_t used = strlen(dst);
  if (used && used + 2 < cap) {
    memcpy(dst + used, ", ", 2);
    used += 2;
  }
  size_t m = (size_t)(end - v);
  if (m > cap - 1 - used)
    m = cap - 1 - used;
  memcpy(dst + used, v, m);
  dst[used + m] = '\0';
}

static size_t http_on_header(char *ptr, size_t size, size_t nmemb, void *ud) {
  http_resp *r = ud;
  size_t n = size * nmemb;
  if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) { /* new response (100, 200) */
    r->content_type[0] = r->allow[0] = '\0';
    r->retry_after[0] = r->connection[0] = r->www_authenticate[0] = '\0';
    r->request_id[0] = r->server_timing[0] = '\0';
    return n;
  }
  http_copy_header(ptr, n, "www-authenticate", r->www_authenticate,
                   sizeof r->www_authenticate);
  http_copy_header(ptr, n, "content-type", r->content_type,
                   sizeof r->content_type);
  http_copy_header(ptr, n, "allow", r->allow, sizeof r->allow);
  http_copy_header(ptr, n, "retry-after", r->retry_after,
                   sizeof r->retry_after);
  http_copy_header(ptr, n, "connection", r->connection, sizeof r->connection);
  http_copy_header(ptr, n, "x-request-id", r->request_id,
                   sizeof r->request_id);
  http_copy_header(ptr, n, "server-timing", r->server_timing,
                   sizeof r->server_timing);
  return n;
}

/* Request headers: no "Expect: 100-continue", the extra lines, and the
 * Content-Type. */
static struct curl_slist *http_headers(const char *content_type, int has_body,
                                       const char *const *extra) {
  char line[256];
  struct curl_slist *h = curl_slist_append(NULL, "Expect:");
  for (size_t i = 0; h && extra && extra[i]; i++) {
    struct curl_slist *t = curl_slist_append(h, extra[i]);
    if (!t) {
      curl_slist_free_all(h);
      return NULL;
    }
    h = t;
  }
  if (!h)
    return NULL;
  if (content_type)
    snprintf(line, sizeof line, "Content-Type: %s", content_type);
  else
    snprintf(line, sizeof line, "Content-Type:"); /* curl: remove it */
  if (content_type || has_body) {
    struct curl_slist *t = curl_slist_append(h, line);
    if (!t) {
      curl_slist_free_all(h);
      return NULL;
    }
    h = t;
  }
  return h;
}

static void http_set_method(CURL *h, const char *method, const char *body,
                            size_t len) {
  if (strcmp(method, "GET") == 0 && !body) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    return;
  }
  if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    return;
  }
  if (body || strcmp(method, "POST") == 0) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)(body ? len : 0));
  }
  if (strcmp(method, "POST") != 0)
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
}

static void http_set_common(CURL *h, const char *url, http_buf *b, http_resp *r,
                            struct curl_slist *hdrs) {
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  double scale = harness_timeout_scale(); /* > 1 under valgrind */
  curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)(HTTP_TIMEOUT_S * scale));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT,
                   (long)(HTTP_CONNECT_TIMEOUT_S * scale));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, http_on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, tl_errbuf);
}

http_resp http_req(sd_server *srv, const char *method, const char *path,
                   const char *content_type, const char *body, size_t len) {
  char line[640];
  const char *extra[] = {line, NULL};
  snprintf(line, sizeof line, "Authorization: Bearer %s", srv->bearer);
  return http_req_hdrs(srv, method, path, content_type, body, len,
                       srv->bearer[0] ? extra : NULL);
}

http_resp http_req_hdr(sd_server *srv, const char *method, const char *path,
                       const char *content_type, const char *body, size_t len,
                       const char *header) {
  char line[640];
  const char *extra[3];
  size_t n = 0;
  if (srv->bearer[0]) {
    snprintf(line, sizeof line, "Authorization: Bearer %s", srv->bearer);
    extra[n++] = line;
  }
  if (header) extra[n++] = header;
  extra[n] = NULL;
  return http_req_hdrs(srv, method, path, content_type, body, len, extra);
}

http_resp http_req_hdrs(sd_server *srv, const char *method, const char *path,
                        const char *content_type, const char *body, size_t len,
                        const char *const *headers) {
  http_resp r;
  memset(&r, 0, sizeof r);
  http_buf b = {NULL, 0, 0};
  CURL *h = http_handle();
  struct curl_slist *hdrs = http_headers(content_type, body != NULL, headers);
  if (!h || !hdrs) {
    snprintf(r.errbuf, sizeof r.errbuf, "curl handle/headers unavailable");
  } else {
    char url[2048];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", srv->port, path);
    curl_easy_reset(h); /* keeps the connection cache */
    tl_errbuf[0] = '\0';
    http_set_common(h, url, &b, &r, hdrs);
    http_set_method(h, method, body, len);
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
      curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    else
      snprintf(r.errbuf, sizeof r.errbuf, "%s",
               tl_errbuf[0] ? tl_errbuf : curl_easy_strerror(rc));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
  }
  curl_slist_free_all(hdrs);
  r.body = b.p ? b.p : calloc(1, 1);
  r.len = b.p ? b.len : 0;
  if (!r.body)
    abort(); /* out of memory in a test: nothing sane to do */
  return r;
}

void http_resp_free(http_resp *r) {
  if (!r)
    return;
  free(r->body);
  r->body = NULL;
  r->len = 0;
}

void http_set_quiet(int quiet) { tl_quiet = quiet; }

json_t *http_json(sd_server *srv, const char *method, const char *path,
                  const char *body, long *status) {
  http_resp r = http_req(srv, method, path, body ? "application/json" : NULL,
                         body, body ? strlen(body) : 0);
  if (status)
    *status = r.status;
  json_error_t err;
  json_t *j = json_loadb(r.body, r.len, JSON_DECODE_ANY, &err);
  if (!j && !(tl_quiet && r.status == 0)) {
    fprintf(stderr, "harness: %s %s -> %ld, body not JSON (%s): %.200s%s\n",
            method, path, r.status, err.text, r.body, r.errbuf);
  }
  http_resp_free(&r);
  return j;
}

json_t *http_json_obj(sd_server *srv, const char *method, const char *path,
                      const json_t *body, long *status) {
  char *text = NULL;
  if (body) {
    text = json_dumps(body, JSON_COMPACT);
    if (!text) {
      if (status)
        *status = 0;
      return NULL;
    }
  }
  json_t *j = http_json(srv, method, path, text, status);
  free(text);
  return j;
}

/* 1 when one element of "details" is well-formed. */
static int check_detail(const json_t *d, size_t i) {
  const json_t *idx = json_object_get(d, "index");
  if (!json_is_object(d) || !json_is_string(json_object_get(d, "field")) ||
      !json_is_string(json_object_get(d, "problem")) ||
      (idx && !json_is_integer(idx))) {
    fprintf(stderr, "check_error_body: details[%zu] malformed\n", i);
    return 0;
  }
  return 1;
}

int check_error_body(const json_t *body, const char *code) {
  const json_t *e = json_object_get(body, "error");
  const json_t *c = json_object_get(e, "code");
  const json_t *m = json_object_get(e, "message");
  const json_t *d = json_object_get(e, "details");
  if (!json_is_object(e) || !json_is_string(c) || !json_is_string(m) ||
      json_string_length(m) == 0) {
    fprintf(stderr, "check_error_body: not {error:{code,message}}\n");
    return 0;
  }
  if (strcmp(json_string_value(c), code) != 0) {
    fprintf(stderr, "check_error_body: code \"%s\", expected \"%s\"\n",
            json_string_value(c), code);
    return 0;
  }
  if (d && !json_is_array(d)) {
    fprintf(stderr, "check_error_body: details is not an array\n");
    return 0;
  }
  for (size_t i = 0; i < json_array_size(d); i++)
    if (!check_detail(json_array_get(d, i), i))
      return 0;
  return 1;
}

int error_has_detail(const json_t *body, long long index, const char *field) {
  const json_t *d = json_path(body, "error.details");
  for (size_t i = 0; i < json_array_size(d); i++) {
    const json_t *x = json_array_get(d, i);
    const json_t *idx = json_object_get(x, "index");
    const char *f = json_string_value(json_object_get(x, "field"));
    if (index >= 0 &&
        (!json_is_integer(idx) || json_integer_value(idx) != (json_int_t)index))
      continue;
    if (field && (!f || strcmp(f, field) != 0))
      continue;
    return 1;
  }
  return 0;
}

json_t *json_path(const json_t *obj, const char *path) {
  char key[256];
  const json_t *cur = obj;
  while (cur && *path) {
    size_t n = strcspn(path, ".");
    if (n >= sizeof key)
      return NULL;
    memcpy(key, path, n);
    key[n] = '\0';
    cur = json_object_get(cur, key);
    path += n + (path[n] == '.');
  }
  return (json_t *)cur;
}

long long json_path_int(const json_t *obj, const char *path, long long dflt) {
  const json_t *v = json_path(obj, path);
  return json_is_integer(v) ? (long long)json_integer_value(v) : dflt;
}
