/* safetensors: write/read round trip, conversions from hand-made bytes, every rejection, and
 * the atomic writer. Files live in a mkdtemp directory that is removed at the end. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
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

static long file_size(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

/* An image: u64 little-endian header length, header text, data. */
static unsigned char *image(const char *header, const void *data, size_t dlen, size_t *len) {
  size_t h = strlen(header);
  unsigned char *b = malloc(8 + h + dlen + 1);
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)h >> (8 * i));
  memcpy(b + 8, header, h);
  if (dlen) memcpy(b + 8 + h, data, dlen);
  *len = 8 + h + dlen;
  return b;
}

static void test_round_trip(void) {
  const float w[6] = {1, -2, 3.5f, 0, 1e-30f, -1e30f}, b[3] = {0.25f, 0.5f, 0.75f};
  const int64_t n = -1234567890123LL;
  st_write_tensor ts[] = {
    {"features.0.weight", ST_F32, 2, {2, 3}, w},
    {"we\"ird\\name\n", ST_F32, 1, {3}, b},
    {"bn.num_batches_tracked", ST_I64, 0, {0}, &n},
    {"empty", ST_F32, 2, {0, 4}, NULL},
  };
  const char *meta[] = {"format", "pt", "note", "quote \" backslash \\ newline \n"};
  const char *path = tmp_path("rt.safetensors");
  CHECK_EQ_INT(st_write(path, ts, 4, meta, 2, &err), EFFNET_OK);

  FILE *fp = fopen(path, "rb");
  unsigned char head[9] = {0};
  CHECK(fp && fread(head, 1, 9, fp) == 9);
  if (fp) fclose(fp);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | head[i];
  CHECK((8 + hlen) % 8 == 0); /* data section 8-aligned */
  CHECK(head[8] == '{');
  CHECK_EQ_INT(file_size(path), (long)(8 + hlen + sizeof w + sizeof b + sizeof n));

  st_file *f = NULL;
  CHECK_EQ_INT(st_open(&f, path, &err), EFFNET_OK);
  if (!f) return;
  CHECK_EQ_INT(st_count(f), 4);
  for (size_t i = 0; i < 4; i++)
    CHECK(st_tensor_at(f, i) && strcmp(st_tensor_at(f, i)->name, ts[i].name) == 0);
  CHECK(st_tensor_at(f, 4) == NULL);
  const st_tensor *t = st_find(f, "features.0.weight");
  CHECK(t && t->dtype == ST_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 &&
        t->numel == 6 && t->nbytes == 24 && strcmp(t->dtype_name, "F32") == 0);
  float out[6] = {0};
  CHECK_EQ_INT(st_to_f32(t, out, &err), EFFNET_OK);
  CHECK(memcmp(out, w, sizeof w) == 0);
  t = st_find(f, "we\"ird\\name\n");
  CHECK(t && t->numel == 3);
  if (t) CHECK(st_to_f32(t, out, &err) == EFFNET_OK && memcmp(out, b, sizeof b) == 0);
  t = st_find(f, "bn.num_batches_tracked");
  CHECK(t && t->dtype == ST_I64 && t->ndim == 0 && t->numel == 1 && t->nbytes == 8);
  int64_t got = 0;
  if (t) memcpy(&got, t->data, 8);
  CHECK(got == n); /* the test host is little-endian, like the file */
  t = st_find(f, "empty");
  CHECK(t && t->numel == 0 && t->nbytes == 0 && t->shape[1] == 4);
  if (t) CHECK_EQ_INT(st_to_f32(t, NULL, &err), EFFNET_OK);
  CHECK(st_find(f, "missing") == NULL);
  CHECK(st_find(f, "features.0") == NULL);
  CHECK(strcmp(st_metadata(f, "format"), "pt") == 0);
  CHECK(strcmp(st_metadata(f, "note"), meta[3]) == 0);
  CHECK(st_metadata(f, "absent") == NULL);
  st_close(f);
  st_close(NULL);
  unlink(path);

  /* no tensors, no metadata: "{}" padded */
  CHECK_EQ_INT(st_write(path, NULL, 0, NULL, 0, &err), EFFNET_OK);
  CHECK_EQ_INT(file_size(path), 16);
  CHECK_EQ_INT(st_open(&f, path, &err), EFFNET_OK);
  CHECK(f && st_count(f) == 0 && st_metadata(f, "format") == NULL);
  st_close(f);
  unlink(path);
}

static uint16_t u16s[] = {
  0x3C00, 0xC000, 0x7BFF, 0x0001, 0x0400, 0x03FF, 0x7C00, 0xFC00, 0x8000, 0x3555,
};
static const float f16_want[] = {
  1.0f, -2.0f, 65504.0f, 5.9604644775390625e-08f, 6.103515625e-05f, 6.097555160522461e-05f,
  INFINITY, -INFINITY, -0.0f, 0.333251953125f,
};

static void test_conversions(void) {
  /* A U8 tensor first, so the float tensors start at odd offsets: reads must not assume
   * alignment. */
  unsigned char data[1 + 20 + 8 + 40 + 8 + 1];
  size_t at = 0;
  data[at++] = 7;
  for (int i = 0; i < 10; i++, at += 2) data[at] = u16s[i] & 0xFF, data[at + 1] = u16s[i] >> 8;
  const uint16_t bf[4] = {0x3F80, 0xC040, 0x4049, 0x7F80};
  for (int i = 0; i < 4; i++, at += 2) data[at] = bf[i] & 0xFF, data[at + 1] = bf[i] >> 8;
  const double d[5] = {3.25, 1e300, -1e300, 1e-320, 0.1};
  memcpy(data + at, d, sizeof d);
  at += sizeof d;
  const int64_t i64 = 5;
  memcpy(data + at, &i64, 8);
  at += 8;
  data[at++] = 0x38;
  const char *hdr =
      "{\"u8\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
      "\"h\":{\"dtype\":\"F16\",\"shape\":[10],\"data_offsets\":[1,21]},"
      "\"bf\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[21,29]},"
      "\"d\":{\"dtype\":\"F64\",\"shape\":[5],\"data_offsets\":[29,69]},"
      "\"i\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[69,77]},"
      "\"f8\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[77,78]}}";
  size_t len;
  unsigned char *img = image(hdr, data, at, &len);
  st_file *f = NULL;
  CHECK_EQ_INT(st_parse(&f, img, len, "conv.safetensors", &err), EFFNET_OK);
  if (!f) {
    fprintf(stderr, "%s\n", err.message);
    free(img);
    return;
  }
  float out[10];
  CHECK_EQ_INT(st_to_f32(st_find(f, "h"), out, &err), EFFNET_OK);
  for (int i = 0; i < 10; i++)
    CHECK_MSG(memcmp(&out[i], &f16_want[i], 4) == 0, "f16 %d: %g != %g", i, out[i], f16_want[i]);
  CHECK_EQ_INT(st_to_f32(st_find(f, "bf"), out, &err), EFFNET_OK);
  CHECK(out[0] == 1.0f && out[1] == -3.0f && out[2] == 3.140625f && isinf(out[3]));
  CHECK_EQ_INT(st_to_f32(st_find(f, "d"), out, &err), EFFNET_OK);
  CHECK(out[0] == 3.25f && out[1] == INFINITY && out[2] == -INFINITY && out[3] == 0.0f &&
        out[4] == 0.1f);
  const char *nonfloat[] = {"i", "u8", "f8"};
  for (int i = 0; i < 3; i++) {
    const st_tensor *t = st_find(f, nonfloat[i]);
    CHECK_EQ_INT(st_to_f32(t, out, &err), EFFNET_E_SHAPE);
    CHECK_MSG(strstr(err.message, nonfloat[i]) != NULL, "%s", err.message);
  }
  CHECK(st_find(f, "f8")->dtype == ST_OTHER && st_dtype_size(ST_OTHER) == 0);
  CHECK(st_dtype_size(ST_BF16) == 2 && st_dtype_size(ST_U64) == 8 && st_dtype_size(ST_BOOL) == 1);
  st_close(f);
  free(img);
}

/* One malformed image: st_open must refuse it with E_FORMAT, a NULL handle and a message
 * naming the file and containing want. */
static void reject(const char *header, const void *data, size_t dlen, const char *want) {
  size_t len;
  unsigned char *img = image(header, data, dlen, &len);
  const char *path = tmp_path("bad.safetensors");
  write_bytes(path, img, len);
  st_file *f = (st_file *)1;
  err.message[0] = '\0';
  CHECK_EQ_INT(st_open(&f, path, &err), EFFNET_E_FORMAT);
  CHECK(f == NULL);
  CHECK_MSG(strstr(err.message, path) && strstr(err.message, want), "want '%s' in: %s", want,
            err.message);
  unlink(path);
  free(img);
}

static const float four[4] = {1, 2, 3, 4};
#define E(name, dt, shape, offs) "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":" shape \
                                 ",\"data_offsets\":" offs "}"

static void test_rejects(void) {
  reject("{\"w\":}", NULL, 0, "invalid JSON at byte 13");
  reject("[]", NULL, 0, "does not start with '{'");
  reject(" {}", NULL, 0, "does not start with '{'");
  reject("", NULL, 0, "does not start with '{'");
  reject("{} x", NULL, 0, "invalid JSON");
  reject("{" E("w", "F32", "[2]", "[0,8]") "}", four, 4, "tensor 'w'");
  reject("{" E("w", "F32", "[2]", "[0,8]") "}", four, 4, "beyond the 4-byte data section");
  reject("{" E("a", "F32", "[2]", "[0,8]") "," E("b", "F32", "[2]", "[4,12]") "}", four, 12,
         "tensor 'b' (data_offsets [4, 12)) overlaps tensor 'a'");
  reject("{" E("a", "F32", "[1]", "[0,4]") "," E("b", "F32", "[1]", "[8,12]") "}", four, 12,
         "gap of 4 bytes in the data section before tensor 'b'");
  reject("{" E("a", "F32", "[1]", "[0,4]") "}", four, 8, "cover only 4");
  reject("{" E("w", "F32", "[2,2]", "[0,12]") "}", four, 12, "need 16");
  reject("{" E("w", "F32", "[2,2]", "[0,12]") "}", four, 12, "tensor 'w'");
  reject("{" E("w", "F32", "[-1]", "[0,4]") "}", four, 4, "non-negative integer");
  reject("{" E("w", "F32", "[1.5]", "[0,4]") "}", four, 4, "non-negative integer");
  reject("{" E("w", "F32", "[\"1\"]", "[0,4]") "}", four, 4, "non-negative integer");
  reject("{" E("w", "F32", "[1,1,1,1,1,1,1,1,1]", "[0,4]") "}", four, 4, "more than 8");
  reject("{" E("w", "F32", "[4611686018427387904,4]", "[0,4]") "}", four, 4, "overflows");
  reject("{" E("w", "F32", "1", "[0,4]") "}", four, 4, "'shape' is not an array");
  reject("{" E("w", "F12", "[1]", "[0,4]") "}", four, 4, "tensor 'w': unknown dtype 'F12'");
  reject("{" E("w", "f32", "[1]", "[0,4]") "}", four, 4, "unknown dtype 'f32'");
  reject("{" E("w", "F4", "[3]", "[0,1]") "}", four, 1, "whole number of bytes");
  reject("{" E("w", "F32", "[1]", "[4,0]") "}", four, 4, "run backwards");
  reject("{" E("w", "F32", "[1]", "[0,4,4]") "}", four, 4, "pair of non-negative integers");
  reject("{" E("w", "F32", "[1]", "[-4,0]") "}", four, 4, "pair of non-negative integers");
  reject("{" E("w", "F32", "[1]", "[0,4]") "," E("w", "F32", "[1]", "[4,8]") "}", four, 8,
         "duplicate tensor name 'w'");
  reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", four, 4, "tensor 'w': needs");
  reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", four, 4,
         "tensor 'w': unexpected key 'x'");
  reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"shape\":[1]}}", four,
         4, "tensor 'w': repeats a key");
  reject("{\"w\":{\"dtype\":1,\"shape\":[1],\"data_offsets\":[0,4]}}", four, 4, "not a string");
  reject("{\"w\":[]}", NULL, 0, "tensor 'w': entry is not an object");
  reject("{\"__metadata__\":{\"format\":1}}", NULL, 0, "value of 'format' is a number");
  reject("{\"__metadata__\":{\"a\":{}}}", NULL, 0, "not a string");
  reject("{\"__metadata__\":[]}", NULL, 0, "__metadata__ is not an object");
  reject("{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", NULL, 0, "repeats key 'a'");
  reject("{\"__metadata__\":{\"a\":\"x\\u0000y\"}}", NULL, 0, "NUL");
  reject("{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", four, 4,
         "NUL");
  reject("{\"\xc3\x28\":{}}", NULL, 0, "invalid UTF-8");
  /* a control character in a name is shown as '?', keeping the message on one line */
  reject("{\"a\\nb\":{\"dtype\":\"F12\",\"shape\":[1],\"data_offsets\":[0,4]}}", four, 4,
         "tensor 'a?b'");

  /* the length prefix */
  const char *path = tmp_path("short.safetensors");
  const unsigned char seven[7] = {2, 0, 0, 0, 0, 0, 0};
  st_file *f = NULL;
  write_bytes(path, seven, 0);
  CHECK_EQ_INT(st_open(&f, path, &err), EFFNET_E_FORMAT);
  CHECK(strstr(err.message, path) && strstr(err.message, "0 bytes"));
  write_bytes(path, seven, 7);
  CHECK_EQ_INT(st_open(&f, path, &err), EFFNET_E_FORMAT);
  CHECK(strstr(err.message, path) && strstr(err.message, "7 bytes"));
  unsigned char lie[10] = {0xE8, 0x03, 0, 0, 0, 0, 0, 0, '{', '}'};
  write_bytes(path, lie, sizeof lie);
  CHECK_EQ_INT(st_open(&f, path, &err), EFFNET_E_FORMAT);
  CHECK_MSG(strstr(err.message, "header length 1000 exceeds the 2 bytes"), "%s", err.message);
  unsigned char huge[10] = {0x01, 0xE1, 0xF5, 0x05, 0, 0, 0, 0, '{', '}'}; /* 100000001 */
  write_bytes(path, huge, sizeof huge);
  CHECK_EQ_INT(st_open(&f, path, &err), EFFNET_E_FORMAT);
  CHECK_MSG(strstr(err.message, "exceeds the limit of 100000000"), "%s", err.message);
  unsigned char max[10] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, '{', '}'};
  write_bytes(path, max, sizeof max);
  CHECK_EQ_INT(st_open(&f, path, &err), EFFNET_E_FORMAT);
  CHECK(f == NULL);
  unlink(path);

  /* truncated data section: a valid file cut short */
  path = tmp_path("cut.safetensors");
  st_write_tensor t = {"w", ST_F32, 1, {4}, four};
  CHECK_EQ_INT(st_write(path, &t, 1, NULL, 0, &err), EFFNET_OK);
  CHECK(truncate(path, file_size(path) - 3) == 0);
  CHECK_EQ_INT(st_open(&f, path, &err), EFFNET_E_FORMAT);
  CHECK(strstr(err.message, path) && strstr(err.message, "tensor 'w'") &&
        strstr(err.message, "truncated"));
  unlink(path);

  CHECK_EQ_INT(st_open(&f, tmp_path("missing.safetensors"), &err), EFFNET_E_IO);
  CHECK(f == NULL && strstr(err.message, "missing.safetensors"));
  CHECK_EQ_INT(st_open(&f, dir, &err), EFFNET_E_IO);
  CHECK(strstr(err.message, "not a regular file"));
  CHECK_EQ_INT(st_parse(&f, NULL, 0, "mem", &err), EFFNET_E_FORMAT);
  CHECK(strstr(err.message, "mem:") == err.message);
}

static int dir_entries(void) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) n += e->d_name[0] != '.';
  if (d) closedir(d);
  return n;
}

static void test_atomic_write(void) {
  st_write_tensor t = {"w", ST_F32, 1, {4}, four};
  char nodir[128];
  snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.safetensors", dir);
  CHECK_EQ_INT(st_write(nodir, &t, 1, NULL, 0, &err), EFFNET_E_IO);
  CHECK(strstr(err.message, nodir) != NULL);
  CHECK_EQ_INT(dir_entries(), 0);

  /* a big file replaced by a small one: nothing of the old one may survive */
  const char *path = tmp_path("replace.safetensors");
  float *big = calloc(4096, sizeof *big);
  st_write_tensor tb[2] = {{"a", ST_F32, 1, {4096}, big}, {"b", ST_F32, 1, {4}, four}};
  CHECK_EQ_INT(st_write(path, tb, 2, NULL, 0, &err), EFFNET_OK);
  long big_size = file_size(path);
  CHECK_EQ_INT(st_write(path, &t, 1, NULL, 0, &err), EFFNET_OK);
  CHECK(file_size(path) < big_size && file_size(path) > 16);
  st_file *f = NULL;
  CHECK_EQ_INT(st_open(&f, path, &err), EFFNET_OK);
  CHECK(f && st_count(f) == 1 && st_find(f, "a") == NULL && st_find(f, "w") != NULL);
  st_close(f);
  CHECK_EQ_INT(dir_entries(), 1); /* no temp file left behind */

  /* refused arguments leave the old file as it was */
  st_write_tensor dup[2] = {t, t};
  CHECK_EQ_INT(st_write(path, dup, 2, NULL, 0, &err), EFFNET_E_ARGUMENT);
  CHECK(strstr(err.message, "duplicate tensor name 'w'"));
  st_write_tensor bad = {"x", ST_F16, 1, {4}, four};
  CHECK_EQ_INT(st_write(path, &bad, 1, NULL, 0, &err), EFFNET_E_ARGUMENT);
  bad = (st_write_tensor){"__metadata__", ST_F32, 1, {4}, four};
  CHECK_EQ_INT(st_write(path, &bad, 1, NULL, 0, &err), EFFNET_E_ARGUMENT);
  bad = (st_write_tensor){"x", ST_F32, 1, {-1}, four};
  CHECK_EQ_INT(st_write(path, &bad, 1, NULL, 0, &err), EFFNET_E_ARGUMENT);
  bad = (st_write_tensor){"\xff", ST_F32, 1, {4}, four};
  CHECK_EQ_INT(st_write(path, &bad, 1, NULL, 0, &err), EFFNET_E_ARGUMENT);
  const char *meta[] = {"k", "v", "k", "w"};
  CHECK_EQ_INT(st_write(path, &t, 1, meta, 2, &err), EFFNET_E_ARGUMENT);
  CHECK(strstr(err.message, "duplicate metadata key 'k'"));
  CHECK_EQ_INT(st_open(&f, path, &err), EFFNET_OK);
  CHECK(f && st_count(f) == 1 && st_find(f, "w") != NULL);
  st_close(f);
  CHECK_EQ_INT(dir_entries(), 1);
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
  strcpy(dir, "/tmp/effnet_st_XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_round_trip();
  test_conversions();
  test_rejects();
  test_atomic_write();
  remove_dir();
  return TEST_SUMMARY();
}
