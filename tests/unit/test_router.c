/* Unit tests of http_router.c: matching, parameters, 404 and 405. */
#include "check.h"
#include "segmentd/auth.h"
#include "segmentd/err.h"
#include "segmentd/http.h"

static sd_handler route(const char *method, const char *path, sd_req *req,
                        sd_reply *rep) {
  memset(req, 0, sizeof(*req));
  memset(rep, 0, sizeof(*rep));
  req->method = method;
  req->path = path;
  return sd_route(req, rep);
}

int main(void) {
  sd_req req;
  sd_reply rep;
  CHECK(route("GET", "/healthz", &req, &rep) != NULL);
  CHECK(route("GET", "/v1/users/u-1/segment", &req, &rep) != NULL);
  CHECK_INT(req.n_params, 1);
  CHECK_STR(req.params[0], "u-1");
  sd_handler user = route("GET", "/v1/users/abc", &req, &rep);
  CHECK(user != NULL);
  CHECK(user != route("GET", "/v1/users/abc/segment", &req, &rep));
  CHECK(route("GET", "/v1/spaces/intents/clusters/7", &req, &rep) != NULL);
  CHECK_INT(req.n_params, 2);
  CHECK_STR(req.params[0], "intents");
  CHECK_STR(req.params[1], "7");
  CHECK(route("HEAD", "/healthz", &req, &rep) == route("GET", "/healthz", &req, &rep));
  CHECK(route("HEAD", "/healthz", &req, &rep) != NULL);
  CHECK(route("POST", "/healthz", &req, &rep) == NULL);
  CHECK_STR(rep.allow, "GET, HEAD");
  sd_reply_free(&rep);
  CHECK(route("DELETE", "/v1/events", &req, &rep) == NULL);
  CHECK_INT(rep.status, 405);
  CHECK_STR(rep.allow, "POST");
  sd_reply_free(&rep);
  /* experiments: the literal outcomes route and two-parameter paths */
  CHECK(route("GET", "/v1/spaces/segments/outcomes", &req, &rep) != NULL);
  CHECK(route("GET", "/v1/experiments/promo/assignment/u-1", &req, &rep) != NULL);
  CHECK_INT(req.n_params, 2);
  CHECK_STR(req.params[1], "u-1");
  CHECK(route("PUT", "/v1/experiments/promo", &req, &rep) == NULL);
  CHECK_STR(rep.allow, "GET, HEAD, DELETE");
  sd_reply_free(&rep);
  CHECK(route("GET", "/v1/nope", &req, &rep) == NULL);
  CHECK_INT(rep.status, 404);
  CHECK_STR(json_string_value(json_object_get(
                json_object_get(rep.body, "error"), "code")), "not_found");
  sd_reply_free(&rep);
  CHECK(route("GET", "/v1/users//segment", &req, &rep) == NULL); /* empty id */
  CHECK_INT(rep.status, 404);
  sd_reply_free(&rep);
  CHECK(route("GET", "/healthz/", &req, &rep) == NULL);
  sd_reply_free(&rep);
  CHECK(route("GET", "", &req, &rep) == NULL);
  sd_reply_free(&rep);
  /* the dashboard: "/" itself, and one asset name per path */
  sd_handler page = route("GET", "/", &req, &rep);
  CHECK(page != NULL);
  CHECK_INT(req.n_params, 0);
  sd_handler asset = route("GET", "/assets/app.js", &req, &rep);
  CHECK(asset != NULL && asset != page);
  CHECK_INT(req.n_params, 1);
  CHECK_STR(req.params[0], "app.js");
  CHECK(route("GET", "/assets/", &req, &rep) == NULL);
  CHECK_INT(rep.status, 404);
  sd_reply_free(&rep);
  CHECK(route("GET", "//", &req, &rep) == NULL);
  sd_reply_free(&rep);
  CHECK(route("POST", "/", &req, &rep) == NULL);
  CHECK_STR(rep.allow, "GET, HEAD");
  sd_reply_free(&rep);
  char deep[200] = "";
  for (int i = 0; i < 30; i++) strcat(deep, "/a");
  CHECK(route("GET", deep, &req, &rep) == NULL);
  sd_reply_free(&rep);
  /* every row chose what it needs; hits and misses carry it */
  const char *m, *pat;
  int access;
  size_t n = (size_t)sd_route_count();
  CHECK(n >= 20);
  for (size_t i = 0; sd_route_get(i, &m, &pat, &access) == 0; i++)
    CHECK(access >= SD_ACCESS_PROBE && access <= SD_ACCESS_ADMIN);
  CHECK(sd_route_get(n, &m, &pat, &access) < 0);
  CHECK(route("GET", "/healthz", &req, &rep) != NULL);
  CHECK_INT(req.access, SD_ACCESS_PROBE);
  CHECK(route("POST", "/v1/events", &req, &rep) != NULL);
  CHECK_INT(req.access, SD_ACCESS_INGEST);
  CHECK(route("DELETE", "/v1/users/u", &req, &rep) != NULL);
  CHECK_INT(req.access, SD_ACCESS_ADMIN);
  CHECK(route("GET", "/v1/nope", &req, &rep) == NULL);
  CHECK_INT(req.access, SD_ACCESS_ANY_KEY);
  sd_reply_free(&rep);
  CHECK(route("GET", "/nope", &req, &rep) == NULL);
  CHECK_INT(req.access, SD_ACCESS_OPEN);
  sd_reply_free(&rep);
  CHECK_INT(sd_access_scope(0), SD_SCOPE_ADMIN); /* a row without: closed */
  return check_done("test_router");
}
