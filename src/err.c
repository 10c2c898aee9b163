/* err.c -- tables behind err.h: wire codes, HTTP statuses, messages. */
#include "segmentd/err.h"

typedef struct {
  int err;
  const char *code;
  int status;
  const char *msg;
} err_row;

static const err_row err_rows[] = {
#define SD_ERR_ROW(name, code, status, msg) {name, code, status, msg},
    SD_ERR_MAP(SD_ERR_ROW)
#undef SD_ERR_ROW
};

static const err_row *err_find(int err) {
  for (unsigned i = 0; i < sizeof(err_rows) / sizeof(err_rows[0]); i++)
    if (err_rows[i].err == err) return &err_rows[i];
  return 0;
}

const char *sd_err_code(int err) {
  const err_row *r = err_find(err);
  return r ? r->code : "internal";
}

int sd_err_status(int err) {
  const err_row *r = err_find(err);
  return r ? r->status : 500;
}

const char *sd_err_message(int err) {
  const err_row *r = err_find(err);
  return r ? r->msg : "internal error";
}
