/*
 * assets.h -- the dashboard's static files (the web folder), compiled into the
 * binary by cmake/embed_assets.cmake so the page works offline and with
 * no files beside the executable.
 *
 * Owns nothing at run time: the table and its bytes are constants of the
 * generated dashboard_assets.c. Served by handlers_dashboard.c.
 */
#ifndef SEGMENTD_ASSETS_H
#define SEGMENTD_ASSETS_H

#include <stddef.h>

typedef struct {
  const char *name;         /* file name, e.g. "app.js" */
  const char *content_type; /* e.g. "text/javascript; charset=utf-8" */
  const char *etag;         /* quoted strong ETag (content hash) */
  const unsigned char *data;
  size_t len;
} sd_asset;

extern const sd_asset sd_assets[];
extern const int sd_assets_count;

/* The asset of that file name, or NULL. */
const sd_asset *sd_asset_find(const char *name);

#endif
