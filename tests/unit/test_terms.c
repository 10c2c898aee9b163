/* Unit tests of label_terms.c: stop words, counts, c-TF-IDF ranking. */
#include "check.h"
#include "segmentd/label_terms.h"

int main(void) {
  sd_terms *t = sd_terms_new();
  CHECK(t != NULL);
  CHECK(sd_is_stopword("the", 3));
  CHECK(!sd_is_stopword("refund", 6));
  const char *c0[] = {"refund my card payment", "I want a refund", "refund please"};
  const char *c1[] = {"card arrived late", "my card has not arrived", "card delivery arrived"};
  for (int i = 0; i < 3; i++) {
    CHECK_INT(sd_terms_add(t, 0, c0[i], strlen(c0[i]), 1), 0);
    CHECK_INT(sd_terms_add(t, 1, c1[i], strlen(c1[i]), 1), 0);
  }
  const char *top[2 * 3];
  CHECK_INT(sd_terms_top(t, 2, 3, top), 0);
  CHECK_STR(top[0], "refund");
  CHECK_STR(top[3], "arrived"); /* as frequent as "card" here, but "card" is
                                   also in the other cluster: ranks lower */
  for (int i = 0; i < 6; i++)
    CHECK(!top[i] || (strcmp(top[i], "my") && strcmp(top[i], "the")));
  /* adjacent non-stop words also count as a bigram term */
  sd_terms *b = sd_terms_new();
  for (int i = 0; i < 3; i++)
    CHECK_INT(sd_terms_add(b, 0, "card arrived late", 17, 1), 0);
  CHECK_INT(sd_terms_add(b, 1, "exchange rate", 13, 1), 0);
  const char *tb[2 * 6];
  CHECK_INT(sd_terms_top(b, 2, 6, tb), 0);
  int seen = 0;
  for (int i = 0; i < 6; i++) seen += tb[i] && !strcmp(tb[i], "card arrived");
  CHECK_INT(seen, 1);
  sd_terms_free(b);
  /* removing counts undoes them */
  for (int i = 0; i < 3; i++) CHECK_INT(sd_terms_add(t, 0, c0[i], strlen(c0[i]), -1), 0);
  CHECK_INT(sd_terms_top(t, 2, 3, top), 0);
  CHECK(top[0] == NULL);
  sd_terms_reset(t);
  CHECK_INT(sd_terms_top(t, 2, 3, top), 0);
  CHECK(top[3] == NULL);
  sd_terms_free(t);
  sd_terms_free(NULL);
  return check_done("test_terms");
}
