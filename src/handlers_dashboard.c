/*
 * handlers_dashboard.c -- GET / (the dashboard page) and GET /assets/{name}
 * (its script and style sheet), served from the table compiled into the
 * binary (assets.h). The page itself holds no data: it polls the JSON API.
 *
 * Every answer carries a strong ETag (the content hash) with
 * `Cache-Control: no-cache`, so browsers revalidate and get 304 when the
 * binary has not changed, and security headers: a Content-Security-Policy
 * that allows only this origin (no inline script or style, no framing),
 * nosniff and no referrer. The reply body is a copy the reply owns.
 */
#include "handlers.h"
#include "segmentd/assets.h"
#include "segmentd/err.h"

#include <stdlib.h>
#include <string.h>

static const char dash_csp[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

const sd_asset *sd_asset_find(const char *name) {
  for (int i = 0; i < sd_assets_count; i++)
    if (!strcmp(sd_assets[i].name, name)) return &sd_assets[i];
  return NULL;
}

/* Does an If-None-Match value list this ETag (or "*")? */
static int etag_matches(const char *inm, const char *etag) {
  if (!inm) return 0;
  if (!strcmp(inm, "*")) return 1;
  size_t n = strlen(etag);
  for (const char *p = strstr(inm, etag); p; p = strstr(p + 1, etag)) {
    char after = p[n];
    if (after == 0 || after == ',' || after == ' ') return 1;
  }
  return 0;
}

static int reply_asset(sd_req *req, sd_reply *rep, const sd_asset *a) {
  sd_reply_header(rep, "ETag", a->etag);
  sd_reply_header(rep, "Cache-Control", "no-cache");
  sd_reply_header(rep, "Content-Security-Policy", dash_csp);
  sd_reply_header(rep, "X-Content-Type-Options", "nosniff");
  sd_reply_header(rep, "Referrer-Policy", "no-referrer");
  sd_reply_header(rep, "X-Frame-Options", "DENY");
  if (etag_matches(sd_req_header(req, "If-None-Match"), a->etag))
    return sd_reply_text(rep, 304, a->content_type, NULL, 0);
  char *copy = malloc(a->len ? a->len : 1);
  if (!copy) return sd_reply_error(rep, SD_ENOMEM, NULL, NULL);
  memcpy(copy, a->data, a->len);
  return sd_reply_text(rep, 200, a->content_type, copy, a->len);
}

int h_dashboard(sd_req *req, sd_reply *rep) {
  const sd_asset *a = sd_asset_find("index.html");
  if (!a) return sd_reply_error(rep, SD_ENOTFOUND, "no dashboard in this build", NULL);
  return reply_asset(req, rep, a);
}

int h_asset(sd_req *req, sd_reply *rep) {
  const sd_asset *a = sd_asset_find(req->params[0]);
  if (!a) return sd_reply_error(rep, SD_ENOTFOUND, "no such asset", NULL);
  return reply_asset(req, rep, a);
}
