/* Unit tests of json_out.c: the hot-path JSON writer's text is what
 * jansson reads back, numbers without printf match printf's. */
#include "check.h"
#include "segmentd/json_out.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void numbers(void) {
  char b[40];
  sd_fmt_fixed(b, 0.741502, 6, 1);
  CHECK_STR(b, "0.741502");
  sd_fmt_fixed(b, 1.0, 6, 1);
  CHECK_STR(b, "1.0");
  sd_fmt_fixed(b, -0.5, 6, 1);
  CHECK_STR(b, "-0.5");
  sd_fmt_fixed(b, -0.0000001, 6, 1);
  CHECK_STR(b, "0.0"); /* rounds to zero: no "-0.0" */
  sd_fmt_fixed(b, 12.25, 3, 0);
  CHECK_STR(b, "12.250");
  sd_fmt_fixed(b, NAN, 6, 1);
  CHECK_STR(b, "null");
  sd_fmt_fixed(b, 2.5e13, 6, 1);
  CHECK_NEAR(strtod(b, NULL), 2.5e13, 1);
  sd_fmt_int(b, INT64_MIN);
  CHECK_STR(b, "-9223372036854775808");
  sd_fmt_int(b, 0);
  CHECK_STR(b, "0");
  /* against printf on pseudo-random values of every magnitude */
  uint64_t x = 0x2545f4914f6cdd1dULL;
  for (int i = 0; i < 100000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    double v = ((double)(x >> 11) / 9007199254740992.0 - 0.5) *
               pow(10, (double)(x % 14) - 4);
    char want[64];
    snprintf(want, sizeof(want), "%.3f", v);
    sd_fmt_fixed(b, v, 3, 0);
    if (strcmp(b, want) && strcmp(want, "-0.000")) {
      /* printf rounds the exact binary value, we round v * 10^3: they
         may differ by one unit in the last place, never more */
      CHECK_NEAR(strtod(b, NULL), strtod(want, NULL), 1.0001e-3);
    }
  }
}

static void strings_round_trip(void) {
  const char *in[] = {"plain", "quote \" and \\ back", "tab\tnl\ncr\r",
                      "ctl \x01\x1f del \x7f", "utf-8 caf\xc3\xa9 \xe2\x82\xac",
                      "bad \xff\xfe byte", "cut \xe2\x82", ""};
  const char *want[] = {"plain", "quote \" and \\ back", "tab\tnl\ncr\r",
                        "ctl \x01\x1f del \x7f", "utf-8 caf\xc3\xa9 \xe2\x82\xac",
                        "bad \xef\xbf\xbd\xef\xbf\xbd byte",
                        "cut \xef\xbf\xbd\xef\xbf\xbd", ""};
  for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
    sd_jout o = {0};
    sd_jout_lit(&o, "{");
    sd_jout_key(&o, "s");
    sd_jout_str(&o, in[i]);
    sd_jout_lit(&o, ",\"n\":");
    sd_jout_real(&o, 0.25);
    sd_jout_lit(&o, ",\"t\":");
    sd_jout_time(&o, 1795773600123LL);
    sd_jout_lit(&o, ",\"b\":");
    sd_jout_bool(&o, 1);
    sd_jout_lit(&o, ",\"z\":");
    sd_jout_str(&o, NULL);
    sd_jout_lit(&o, "}");
    size_t len;
    char *text = sd_jout_take(&o, &len);
    CHECK(text != NULL && strlen(text) == len);
    json_error_t e;
    json_t *v = text ? json_loads(text, 0, &e) : NULL;
    CHECK(v != NULL);
    CHECK_STR(json_string_value(json_object_get(v, "s")), want[i]);
    CHECK(json_real_value(json_object_get(v, "n")) == 0.25);
    CHECK_STR(json_string_value(json_object_get(v, "t")),
              "2026-11-27T10:00:00.123Z");
    CHECK(json_is_true(json_object_get(v, "b")));
    CHECK(json_is_null(json_object_get(v, "z")));
    json_decref(v);
    free(text);
  }
}

static void grows(void) {
  sd_jout o = {0};
  sd_jout_lit(&o, "[");
  for (int i = 0; i < 50000; i++) {
    if (i) sd_jout_lit(&o, ",");
    sd_jout_int(&o, i);
  }
  sd_jout_lit(&o, "]");
  size_t len;
  char *text = sd_jout_take(&o, &len);
  json_t *v = text ? json_loads(text, 0, NULL) : NULL;
  CHECK_INT(json_array_size(v), 50000);
  CHECK_INT(json_integer_value(json_array_get(v, 49999)), 49999);
  json_decref(v);
  free(text);
}

int main(void) {
  numbers();
  strings_round_trip();
  grows();
  return check_done("test_json_out");
}
