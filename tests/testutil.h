/* Minimal test harness: CHECK records a failure and continues; test programs end with
 * TEST_SUMMARY(), which prints "N passed, N failed" and returns non-zero on any failure. */
#ifndef EN_TESTUTIL_H
#define EN_TESTUTIL_H

#include <math.h>
#include <stdio.h>

static int tu_passed, tu_failed;

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (cond) {                                                                      \
      tu_passed++;                                                                   \
    } else {                                                                         \
      tu_failed++;                                                                   \
      fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                \
    }                                                                                \
  } while (0)

#define CHECK_MSG(cond, ...)                                                         \
  do {                                                                               \
    if (cond) {                                                                      \
      tu_passed++;                                                                   \
    } else {                                                                         \
      tu_failed++;                                                                   \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                \
      fprintf(stderr, __VA_ARGS__);                                                  \
      fputc('\n', stderr);                                                           \
    }                                                                                \
  } while (0)

#define CHECK_EQ_INT(a, b) CHECK_MSG((long long)(a) == (long long)(b), "%lld != %lld", \
                                     (long long)(a), (long long)(b))

#define TEST_SUMMARY()                                                               \
  (printf("%d passed, %d failed\n", tu_passed, tu_failed), tu_failed != 0)

#endif
