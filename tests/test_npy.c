/* .npy: round trip, header variants (versions, key order, quotes, trailing commas), '<f8'
 * conversion, every rejection with its status and message, the element cap, atomic writes. */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/npy.h"
#include "testutil.h"

static char dir[64];
static effnet_error err;

static const char *tmp_path(const char *name) {
  static char buf[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *fp = fopen(path, "wb");
  CHECK(fp != NULL);
  if (!fp) return;
  CHECK(fwrite(data, 1, n, fp) == n);
  fclose(fp);
}

/* A .npy image of the given version: header text padded to 64 with spaces and '\n'. */
static unsigned char *npy_image(int major, const char *dict, const void *data, size_t dlen,
                                size_t *len) {
  size_t pre = major == 1 ? 10 : 12, h = strlen(dict);
  size_t hlen = (pre + h + 1 + 63) / 64 * 64 - pre;
  unsigned char *b = malloc(pre + hlen + dlen + 1);
  memcpy(b, "\x93NUMPY", 6);
  b[6] = (unsigned char)major;
  b[7] = 0;
  for (size_t i = 0; i < pre - 8; i++) b[8 + i] = (unsigned char)(hlen >> (8 * i));
  memcpy(b + pre, dict, h);
  memset(b + pre + h, ' ', hlen - h - 1);
  b[pre + hlen - 1] = '\n';
  if (dlen) memcpy(b + pre + hlen, data, dlen);
  *len = pre + hlen + dlen;
  return b;
}

static effnet_status parse_dict(int major, const char *dict, const void *data, size_t dlen,
                                npy_array *a) {
  size_t len;
  unsigned char *img = npy_image(major, dict, data, dlen, &len);
  effnet_status st = npy_parse(a, img, len, "x.npy", &err);
  free(img);
  return st;
}

static const float six[6] = {1, -2, 3.5f, 0, 1e-30f, -1e30f};

static void test_round_trip(void) {
  const char *path = tmp_path("rt.npy");
  const int64_t shape[2] = {2, 3};
  CHECK_EQ_INT(npy_write(path, six, 2, shape, &err), EFFNET_OK);
  unsigned char head[128] = {0};
  FILE *fp = fopen(path, "rb");
  size_t got = fp ? fread(head, 1, sizeof head, fp) : 0;
  if (fp) fclose(fp);
  CHECK(got == 128 && memcmp(head, "\x93NUMPY\x01\x00", 8) == 0);
  size_t hlen = head[8] | (size_t)head[9] << 8;
  CHECK((10 + hlen) % 64 == 0 && hlen == 118 && head[10 + hlen - 1] == '\n');
  const char *want = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  CHECK(memcmp(head + 10, want, strlen(want)) == 0);
  npy_array a;
  CHECK_EQ_INT(npy_read(&a, path, &err), EFFNET_OK);
  CHECK(a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3 && a.numel == 6);
  CHECK(a.data && memcmp(a.data, six, sizeof six) == 0);
  npy_free(&a);
  CHECK(a.data == NULL && a.numel == 0);
  npy_free(&a);
  npy_free(NULL);

  /* 0-d and 1-d shapes print as numpy does: () and (5,) */
  float x = 42;
  CHECK_EQ_INT(npy_write(path, &x, 0, NULL, &err), EFFNET_OK);
  CHECK_EQ_INT(npy_read(&a, path, &err), EFFNET_OK);
  CHECK(a.ndim == 0 && a.numel == 1 && a.data && a.data[0] == 42);
  npy_free(&a);
  const int64_t five = 5;
  CHECK_EQ_INT(npy_write(path, six, 1, &five, &err), EFFNET_OK);
  fp = fopen(path, "rb");
  got = fp ? fread(head, 1, sizeof head, fp) : 0;
  if (fp) fclose(fp);
  CHECK(got > 70 && strstr((const char *)head + 10, "'shape': (5,), }") != NULL);
  CHECK_EQ_INT(npy_read(&a, path, &err), EFFNET_OK);
  CHECK(a.ndim == 1 && a.numel == 5 && memcmp(a.data, six, 5 * sizeof(float)) == 0);
  npy_free(&a);
  const int64_t empty[2] = {0, 3};
  CHECK_EQ_INT(npy_write(path, NULL, 2, empty, &err), EFFNET_OK);
  CHECK_EQ_INT(npy_read(&a, path, &err), EFFNET_OK);
  CHECK(a.ndim == 2 && a.numel == 0 && a.shape[1] == 3 && a.data != NULL);
  npy_free(&a);
  unlink(path);
}

static void test_header_variants(void) {
  npy_array a;
  const char *std = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  for (int major = 1; major <= 3; major++) {
    CHECK_EQ_INT(parse_dict(major, std, six, sizeof six, &a), EFFNET_OK);
    CHECK(a.numel == 6 && a.data && memcmp(a.data, six, sizeof six) == 0);
    npy_free(&a);
  }
  const char *ok[] = {
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3,), }",
    "{\"shape\":(2,3),\"fortran_order\":False,\"descr\":\"<f4\"}",
    "{ 'fortran_order' : False , 'shape' : ( 2 , 3 ) , 'descr' : '<f4' }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }",
    "{'descr': '<f4',\n 'fortran_order': False,\n 'shape': (2, 3)}",
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    CHECK_MSG(parse_dict(1, ok[i], six, sizeof six, &a) == EFFNET_OK, "%s: %s", ok[i],
              err.message);
    CHECK(a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3);
    npy_free(&a);
  }
  /* extra bytes after the data are ignored, as np.load does */
  CHECK_EQ_INT(parse_dict(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", six,
                          sizeof six, &a), EFFNET_OK);
  CHECK(a.numel == 2 && a.data[1] == -2);
  npy_free(&a);

  const double d[5] = {1.5, -2.25, 1e300, 0.1, -1e-320};
  CHECK_EQ_INT(parse_dict(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }", d,
                          sizeof d, &a), EFFNET_OK);
  CHECK(a.numel == 5 && a.data[0] == 1.5f && a.data[1] == -2.25f && a.data[2] == INFINITY &&
        a.data[3] == 0.1f && a.data[4] == 0.0f);
  npy_free(&a);

  /* the data need not be aligned: a header padded to an odd length */
  unsigned char img[10 + 61 + 12];
  const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}";
  size_t h = strlen(dict);
  memcpy(img, "\x93NUMPY\x01\x00", 8);
  img[8] = 61;
  img[9] = 0;
  memcpy(img + 10, dict, h);
  memset(img + 10 + h, ' ', 61 - h - 1);
  img[10 + 60] = '\n';
  memcpy(img + 71, six, 12);
  CHECK_EQ_INT(npy_parse(&a, img, sizeof img, "odd.npy", &err), EFFNET_OK);
  CHECK(a.numel == 3 && a.data[2] == 3.5f);
  npy_free(&a);
}

/* A header that must be refused with status st and a message holding "x.npy" and want. */
static void reject_dict(int major, const char *dict, const void *data, size_t dlen,
                        effnet_status st, const char *want) {
  npy_array a;
  a.data = (float *)1;
  err.message[0] = '\0';
  CHECK_MSG(parse_dict(major, dict, data, dlen, &a) == st, "%s: %s", dict, err.message);
  CHECK(a.data == NULL);
  CHECK_MSG(strstr(err.message, "x.npy") && strstr(err.message, want), "want '%s' in: %s", want,
            err.message);
}

#define HDR(descr, fortran, shape) \
  "{'descr': '" descr "', 'fortran_order': " fortran ", 'shape': " shape ", }"

static void test_rejects(void) {
  const unsigned char zeros[64] = {0};
  reject_dict(1, HDR(">f4", "False", "(2, 3)"), zeros, 24, EFFNET_E_UNSUPPORTED,
              "x.npy: dtype '>f4' not supported: need little-endian float32 ('<f4')");
  reject_dict(1, HDR("<i4", "False", "(2, 3)"), zeros, 24, EFFNET_E_UNSUPPORTED, "'<i4'");
  reject_dict(1, HDR("<i8", "False", "(2, 3)"), zeros, 48, EFFNET_E_UNSUPPORTED, "'<i8'");
  reject_dict(1, HDR("|O", "False", "(2, 3)"), zeros, 48, EFFNET_E_UNSUPPORTED, "'|O'");
  reject_dict(1, HDR("<f2", "False", "(2, 3)"), zeros, 12, EFFNET_E_UNSUPPORTED, "'<f2'");
  reject_dict(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", zeros, 8,
              EFFNET_E_UNSUPPORTED, "structured dtype");
  reject_dict(1, HDR("<f4", "True", "(2, 3)"), zeros, 24, EFFNET_E_UNSUPPORTED,
              "fortran_order True");
  reject_dict(1, HDR("<f4", "False", "(2, 3)"), six, 20, EFFNET_E_FORMAT,
              "data truncated: shape (2, 3) of '<f4' needs 24 bytes, file has 20");
  reject_dict(1, HDR("<f8", "False", "(3,)"), six, 20, EFFNET_E_FORMAT,
              "shape (3,) of '<f8' needs 24 bytes");
  reject_dict(1, HDR("<f4", "False", "(1099511627776, 1099511627776)"), zeros, 0,
              EFFNET_E_FORMAT, "overflows");
  reject_dict(1, HDR("<f4", "False", "(4611686018427387904,)"), zeros, 0, EFFNET_E_FORMAT,
              "truncated");
  reject_dict(1, HDR("<f4", "False", "(2147483648,)"), zeros, 4, EFFNET_E_FORMAT,
              "needs 8589934592 bytes, file has 4");
  reject_dict(1, HDR("<f4", "False", "(99999999999999999999,)"), zeros, 0, EFFNET_E_FORMAT,
              "64 bits");
  reject_dict(1, HDR("<f4", "False", "(-1,)"), zeros, 0, EFFNET_E_FORMAT, "non-negative");
  reject_dict(1, HDR("<f4", "False", "(5)"), zeros, 20, EFFNET_E_FORMAT, "not a tuple");
  reject_dict(1, HDR("<f4", "False", "[2, 3]"), zeros, 24, EFFNET_E_FORMAT, "not a tuple");
  reject_dict(1, HDR("<f4", "False", "(2 3)"), zeros, 24, EFFNET_E_FORMAT, "expected ','");
  reject_dict(1, HDR("<f4", "False", "(1, 1, 1, 1, 1, 1, 1, 1, 1)"), zeros, 4,
              EFFNET_E_UNSUPPORTED, "more than 8 dimensions");
  reject_dict(1, HDR("<f4", "0", "(2, 3)"), zeros, 24, EFFNET_E_FORMAT, "True or False");
  reject_dict(1, "{'descr': '<f4', 'shape': (2, 3), }", zeros, 24, EFFNET_E_FORMAT, "lacks");
  reject_dict(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", zeros, 24,
              EFFNET_E_FORMAT, "unexpected key");
  reject_dict(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",
              zeros, 8, EFFNET_E_FORMAT, "repeated key");
  reject_dict(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", zeros, 24,
              EFFNET_E_FORMAT, "expected ',' or '}'");
  reject_dict(1, HDR("<f4", "False", "(2, 3)") " x", zeros, 24, EFFNET_E_FORMAT,
              "after the dict");
  reject_dict(1, "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2,)}", zeros, 8,
              EFFNET_E_FORMAT, "escapes");
  reject_dict(1, "['descr', '<f4']", zeros, 8, EFFNET_E_FORMAT, "not a dict");
  reject_dict(1, "{'descr: '<f4'}", zeros, 8, EFFNET_E_FORMAT, "malformed .npy header at byte");

  /* the preamble */
  npy_array a;
  size_t len;
  unsigned char *img = npy_image(1, HDR("<f4", "False", "(2, 3)"), six, sizeof six, &len);
  img[5] = 'X';
  CHECK_EQ_INT(npy_parse(&a, img, len, "x.npy", &err), EFFNET_E_FORMAT);
  CHECK(strstr(err.message, "x.npy: not a .npy file (bad magic)") != NULL);
  img[5] = 'Y';
  CHECK_EQ_INT(npy_parse(&a, img, 9, "x.npy", &err), EFFNET_E_FORMAT);
  CHECK(strstr(err.message, "preamble") != NULL);
  CHECK_EQ_INT(npy_parse(&a, img, 40, "x.npy", &err), EFFNET_E_FORMAT);
  CHECK_MSG(strstr(err.message, "header length 118 exceeds the 30 bytes"), "%s", err.message);
  CHECK_EQ_INT(npy_parse(&a, img, 0, "x.npy", &err), EFFNET_E_FORMAT);
  img[6] = 4;
  CHECK_EQ_INT(npy_parse(&a, img, len, "x.npy", &err), EFFNET_E_UNSUPPORTED);
  CHECK(strstr(err.message, "version 4.0") != NULL);
  img[6] = 1;
  img[7] = 1;
  CHECK_EQ_INT(npy_parse(&a, img, len, "x.npy", &err), EFFNET_E_UNSUPPORTED);
  free(img);
  unsigned char v2[14] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0xF0, 0xFF, 0xFF, 0xFF, '{', '}'};
  CHECK_EQ_INT(npy_parse(&a, v2, sizeof v2, "x.npy", &err), EFFNET_E_FORMAT);
  CHECK(strstr(err.message, "header length 4294967280 exceeds") != NULL);
  CHECK(a.data == NULL);

  /* files */
  CHECK_EQ_INT(npy_read(&a, tmp_path("missing.npy"), &err), EFFNET_E_IO);
  CHECK(strstr(err.message, "missing.npy") != NULL);
  const char *path = tmp_path("big_endian.npy");
  img = npy_image(1, HDR(">f4", "False", "(2, 3)"), six, sizeof six, &len);
  write_bytes(path, img, len);
  free(img);
  CHECK_EQ_INT(npy_read(&a, path, &err), EFFNET_E_UNSUPPORTED);
  char want[300];
  snprintf(want, sizeof want, "%s: dtype '>f4' not supported: need little-endian float32 "
           "('<f4')", path);
  CHECK_MSG(strcmp(err.message, want) == 0, "%s", err.message);
  unlink(path);
}

/* A real file over NPY_MAX_ELEMENTS (sparse, so it costs no disk): refused with E_LIMIT
 * before the 4 GiB allocation. */
static void test_element_cap(void) {
  const char *path = tmp_path("huge.npy");
  size_t len;
  unsigned char *img = npy_image(1, HDR("<f4", "False", "(1073741825,)"), NULL, 0, &len);
  write_bytes(path, img, len);
  free(img);
  CHECK(truncate(path, (off_t)len + 4 * ((off_t)NPY_MAX_ELEMENTS + 1)) == 0);
  npy_array a;
  CHECK_EQ_INT(npy_read(&a, path, &err), EFFNET_E_LIMIT);
  CHECK(a.data == NULL && strstr(err.message, path) && strstr(err.message, "cap"));
  unlink(path);
}

static int dir_entries(void) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) n += e->d_name[0] != '.';
  if (d) closedir(d);
  return n;
}

static void test_write(void) {
  const int64_t shape[2] = {2, 3};
  char nodir[128];
  snprintf(nodir, sizeof nodir, "%s/no/such/x.npy", dir);
  CHECK_EQ_INT(npy_write(nodir, six, 2, shape, &err), EFFNET_E_IO);
  CHECK(strstr(err.message, nodir) != NULL);
  CHECK_EQ_INT(dir_entries(), 0);

  const char *path = tmp_path("w.npy");
  float *big = calloc(10000, sizeof *big);
  const int64_t bigshape = 10000;
  CHECK_EQ_INT(npy_write(path, big, 1, &bigshape, &err), EFFNET_OK);
  CHECK_EQ_INT(npy_write(path, six, 2, shape, &err), EFFNET_OK);
  struct stat sb;
  CHECK(stat(path, &sb) == 0 && sb.st_size == 128 + 24);
  npy_array a;
  CHECK_EQ_INT(npy_read(&a, path, &err), EFFNET_OK);
  CHECK(a.numel == 6 && memcmp(a.data, six, sizeof six) == 0);
  npy_free(&a);
  CHECK_EQ_INT(dir_entries(), 1);

  const int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, neg = -1, cap = NPY_MAX_ELEMENTS + 1;
  CHECK_EQ_INT(npy_write(path, six, 9, nine, &err), EFFNET_E_ARGUMENT);
  CHECK_EQ_INT(npy_write(path, six, 1, &neg, &err), EFFNET_E_ARGUMENT);
  CHECK_EQ_INT(npy_write(path, NULL, 2, shape, &err), EFFNET_E_ARGUMENT);
  CHECK_EQ_INT(npy_write(path, six, 1, &cap, &err), EFFNET_E_LIMIT);
  CHECK(stat(path, &sb) == 0 && sb.st_size == 128 + 24); /* untouched */
  unlink(path);
  free(big);
}

static void remove_dir(void) {
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') unlink(tmp_path(e->d_name));
  if (d) closedir(d);
  rmdir(dir);
}

int main(void) {
  strcpy(dir, "/tmp/effnet_npy_XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_round_trip();
  test_header_variants();
  test_rejects();
  test_element_cap();
  test_write();
  remove_dir();
  return TEST_SUMMARY();
}
