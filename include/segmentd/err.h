/*
 * err.h -- the one error convention of segmentd.
 *
 * Every fallible function returns 0 on success or a negative sd_err. One
 * X-macro table gives each error its name, its wire code (the "code" field of
 * the JSON error body), its HTTP status and a default message, so the mapping
 * from internal errors to HTTP lives in exactly one place.
 */
#ifndef SEGMENTD_ERR_H
#define SEGMENTD_ERR_H

/*      name          wire code             status  default message */
#define SD_ERR_MAP(X)                                                        \
  X(SD_EINVAL,        "bad_request",        400, "malformed request")       \
  X(SD_EJSON,         "malformed_json",     400, "body is not valid JSON")  \
  X(SD_EUNAUTH,       "unauthorized",       401, "missing or unknown key")  \
  X(SD_EFORBIDDEN,    "forbidden",          403, "key lacks the scope")     \
  X(SD_ENOTFOUND,     "not_found",          404, "no such resource")        \
  X(SD_EMETHOD,       "method_not_allowed", 405, "method not allowed")      \
  X(SD_ETOOLARGE,     "too_large",          413, "request too large")       \
  X(SD_EMEDIA,        "unsupported_media_type", 415, "body must be JSON")   \
  X(SD_ECONFLICT,     "conflict",           409, "conflicts with the current state") \
  X(SD_EINVALID,      "invalid_field",      422, "invalid items")           \
  X(SD_EBUSY,         "queue_full",         429, "ingest queue is full")    \
  X(SD_ERATE,         "rate_limited",       429, "request rate limit exceeded") \
  X(SD_ENOMEM,        "internal",           500, "out of memory")           \
  X(SD_EDB,           "internal",           500, "storage error")           \
  X(SD_EINTERNAL,     "internal",           500, "internal error")          \
  X(SD_ENOTREADY,     "not_ready",          503, "service not ready")       \
  X(SD_ESHUTDOWN,     "shutting_down",      503, "service is shutting down")

typedef enum {
  SD_OK = 0,
#define SD_ERR_ENUM(name, code, status, msg) name,
  SD_ERR_FIRST_ = -1000,
  SD_ERR_MAP(SD_ERR_ENUM)
#undef SD_ERR_ENUM
  SD_ERR_LAST_
} sd_err;

/* The wire code ("invalid_field"), HTTP status and default message of an
 * error; unknown values map to "internal"/500. Strings are static. */
const char *sd_err_code(int err);
int sd_err_status(int err);
const char *sd_err_message(int err);

#endif
