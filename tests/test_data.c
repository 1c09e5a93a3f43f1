/* Training data: IDX reader (good and broken files, gzipped and plain), the Fashion-MNIST
 * package, image folders (layouts, holdout, undecodable files) and the augmentations
 * (determinism, flips, padding, value ranges). Files live in a mkdtemp directory that is
 * removed at the end. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <ftw.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "testutil.h"
#include "train/data.h"

static char tmpdir[] = "/tmp/effnet_test_data_XXXXXX";
static const char *fmnist = "/usr/share/datasets/fashion-mnist";

static const char *tmp(const char *fmt, const char *a) {
  static char buf[8][1024];
  static int next;
  char rel[512];
  char *out = buf[next++ % 8];
  snprintf(rel, sizeof rel, fmt, a);
  snprintf(out, 1024, "%s/%s", tmpdir, rel);
  return out;
}

static void mkdirs(const char *path) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      mkdir(buf, 0755);
      *p = '/';
    }
  mkdir(buf, 0755);
}

static void write_file(const char *path, const void *data, size_t n, int gz) {
  if (gz) {
    gzFile f = gzopen(path, "wb");
    if (!f) return;
    if (n) gzwrite(f, data, (unsigned)n);
    gzclose(f);
    return;
  }
  FILE *f = fopen(path, "wb");
  if (!f) return;
  if (n) fwrite(data, 1, n, f);
  fclose(f);
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static uint8_t pixel_of(int i, int y, int x) {
  return (uint8_t)(i * 31 + y * 7 + x * 3 + (x * y) % 5);
}

/* An IDX image file of n rows x cols images (pixel_of) with `extra` bytes cut (< 0) or
 * appended (> 0). Returns its byte count; *out is malloc'ed. */
static size_t idx_images_bytes(uint8_t **out, uint32_t magic, int n, int rows, int cols,
                               int extra) {
  size_t len = 16 + (size_t)n * rows * cols;
  uint8_t *b = calloc(len + (extra > 0 ? extra : 0), 1);
  put_be32(b, magic);
  put_be32(b + 4, (uint32_t)n);
  put_be32(b + 8, (uint32_t)rows);
  put_be32(b + 12, (uint32_t)cols);
  for (int i = 0; i < n; i++)
    for (int y = 0; y < rows; y++)
      for (int x = 0; x < cols; x++) b[16 + ((size_t)i * rows + y) * cols + x] = pixel_of(i, y, x);
  *out = b;
  return len + extra;
}

static size_t idx_labels_bytes(uint8_t **out, int n, int bad_label, int extra) {
  size_t len = 8 + (size_t)n;
  uint8_t *b = calloc(len + (extra > 0 ? extra : 0), 1);
  put_be32(b, 0x801);
  put_be32(b + 4, (uint32_t)n);
  for (int i = 0; i < n; i++) b[8 + i] = (uint8_t)(i % 10);
  if (bad_label && n > 3) b[8 + 3] = 10;
  *out = b;
  return len + extra;
}

typedef struct idx_case {
  const char *name;
  int gz_images, gz_labels;
  uint32_t magic;
  int count, rows, labels_count, bad_label, images_extra, labels_extra;
  const char *expect; /* file named in the error, NULL: opens */
} idx_case;

static void write_idx_case(const char *dir, const idx_case *c, const char *prefix) {
  uint8_t *b;
  char path[1024];
  size_t n = idx_images_bytes(&b, c->magic, c->count, c->rows, 7, c->images_extra);
  snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte%s", dir, prefix, c->gz_images ? ".gz" : "");
  write_file(path, b, n, c->gz_images);
  free(b);
  n = idx_labels_bytes(&b, c->labels_count, c->bad_label, c->labels_extra);
  snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte%s", dir, prefix, c->gz_labels ? ".gz" : "");
  write_file(path, b, n, c->gz_labels);
  free(b);
}

static const en_augment plain = {EN_AUG_NONE, 0.08f, 0, 0, 1.0f, {0.1f, 0.2f, 0.3f},
                                 {0.5f, 0.25f, 2.0f}};

static void check_idx_pixels(const en_dataset *d, int count) {
  float out[7 * 7 * 3];
  effnet_error err = {{0}};
  int exact = 1;
  for (int i = 0; i < count; i++) {
    CHECK(en_dataset_sample(d, i, out, 7, &plain, 1, &err) == EFFNET_OK);
    for (int y = 0; y < 7; y++)
      for (int x = 0; x < 7; x++)
        for (int c = 0; c < 3; c++) {
          float want = ((float)pixel_of(i, y, x) / 255.0f - plain.mean[c]) / plain.std[c];
          exact &= out[(y * 7 + x) * 3 + c] == want;
        }
  }
  CHECK(exact);
}

static void test_idx_good(void) {
  const idx_case good[] = {
      {"gz", 1, 1, 0x803, 12, 7, 12, 0, 0, 0, NULL},
      {"plain", 0, 0, 0x803, 12, 7, 12, 0, 0, 0, NULL},
      {"mixed", 1, 0, 0x803, 12, 7, 12, 0, 0, 0, NULL},
  };
  for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
    const char *dir = tmp("idx_%s", good[k].name);
    mkdirs(dir);
    write_idx_case(dir, &good[k], k == 2 ? "t10k" : "train");
    en_dataset *d = NULL;
    effnet_error err = {{0}};
    effnet_status st = en_dataset_open_idx(&d, dir, k == 2 ? 0 : 1, &err);
    CHECK_MSG(st == EFFNET_OK, "%s: %s", good[k].name, err.message);
    if (st != EFFNET_OK) continue;
    CHECK_EQ_INT(en_dataset_size(d), 12);
    CHECK_EQ_INT(en_dataset_classes(d), 10);
    CHECK(!strcmp(en_dataset_class_name(d, 0), "T-shirt/top"));
    CHECK(!strcmp(en_dataset_class_name(d, 9), "Ankle boot"));
    CHECK(en_dataset_class_name(d, 10) == NULL && en_dataset_class_name(d, -1) == NULL);
    CHECK_EQ_INT(en_dataset_label(d, 11), 1);
    CHECK_EQ_INT(en_dataset_label(d, 12), -1);
    check_idx_pixels(d, 12);
    en_dataset_free(d);
  }
  /* the test split is absent from the "gz" folder */
  en_dataset *d = (en_dataset *)1;
  effnet_error err = {{0}};
  CHECK(en_dataset_open_idx(&d, tmp("idx_%s", "gz"), 0, &err) == EFFNET_E_IO && d == NULL);
  CHECK(strstr(err.message, "t10k-images-idx3-ubyte") != NULL);
}

/* A gzip stream cut in the middle (zlib reports the missing end) or with bytes flipped
 * (bad data or checksum). */
static void damage_gz(const char *dir, int cut) {
  char path[1024];
  struct stat sb;
  snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
  if (stat(path, &sb) != 0) return;
  if (cut) {
    CHECK(truncate(path, sb.st_size / 2) == 0);
    return;
  }
  FILE *f = fopen(path, "r+b");
  if (!f) return;
  fseek(f, sb.st_size / 2, SEEK_SET);
  fwrite("\xff\x00\xff\x00\xff\x00", 1, 6, f);
  fclose(f);
}

static void test_idx_bad(void) {
  const idx_case bad[] = {
      {"magic", 1, 1, 0x802, 12, 7, 12, 0, 0, 0, "train-images-idx3-ubyte.gz"},
      {"magic_labels", 0, 0, 0x803, 12, 7, 12, 0, 0, 0, NULL /* set below */},
      {"short_images", 1, 1, 0x803, 12, 7, 12, 0, -5, 0, "train-images-idx3-ubyte.gz"},
      {"short_images_plain", 0, 0, 0x803, 12, 7, 12, 0, -1, 0, "train-images-idx3-ubyte"},
      {"short_header", 0, 0, 0x803, 12, 7, 12, 0, -(16 + 12 * 49 - 6), 0,
       "train-images-idx3-ubyte"},
      {"short_labels", 1, 1, 0x803, 12, 7, 12, 0, 0, -2, "train-labels-idx1-ubyte.gz"},
      {"count", 1, 0, 0x803, 12, 7, 11, 0, 0, 0, "train-labels-idx1-ubyte"},
      {"label10", 0, 1, 0x803, 12, 7, 12, 1, 0, 0, "train-labels-idx1-ubyte.gz"},
      {"trailing_images", 1, 1, 0x803, 12, 7, 12, 0, 3, 0, "train-images-idx3-ubyte.gz"},
      {"trailing_labels", 0, 0, 0x803, 12, 7, 12, 0, 0, 1, "train-labels-idx1-ubyte"},
      {"zero_rows", 0, 0, 0x803, 12, 0, 12, 0, 0, 0, "train-images-idx3-ubyte"},
      {"zero_count", 0, 0, 0x803, 0, 7, 0, 0, 0, 0, "train-images-idx3-ubyte"},
      {"gz_cut", 1, 1, 0x803, 12, 7, 12, 0, 0, 0, "train-images-idx3-ubyte.gz"},
      {"gz_corrupt", 1, 1, 0x803, 12, 7, 12, 0, 0, 0, "train-images-idx3-ubyte.gz"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    const char *dir = tmp("bad_%s", bad[k].name);
    mkdirs(dir);
    write_idx_case(dir, &bad[k], "train");
    const char *expect = bad[k].expect;
    if (k == 1) { /* labels with the images' magic */
      uint8_t *b;
      size_t n = idx_images_bytes(&b, 0x803, 12, 7, 7, 0);
      char path[1024];
      snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
      write_file(path, b, n, 0);
      free(b);
      expect = "train-labels-idx1-ubyte";
    }
    if (!strncmp(bad[k].name, "gz_", 3)) damage_gz(dir, !strcmp(bad[k].name, "gz_cut"));
    en_dataset *d = (en_dataset *)1;
    effnet_error err = {{0}};
    effnet_status st = en_dataset_open_idx(&d, dir, 1, &err);
    CHECK_MSG(st == EFFNET_E_FORMAT && d == NULL, "%s: status %d", bad[k].name, (int)st);
    CHECK_MSG(strstr(err.message, expect) && strstr(err.message, dir), "%s: '%s'", bad[k].name,
              err.message);
  }
  en_dataset *d = (en_dataset *)1;
  effnet_error err = {{0}};
  CHECK(en_dataset_open_idx(&d, tmp("%s", "absent"), 1, &err) == EFFNET_E_IO && d == NULL);
  CHECK(strstr(err.message, "absent/train-images-idx3-ubyte") != NULL);
  /* images present, labels missing */
  const char *dir = tmp("%s", "no_labels");
  mkdirs(dir);
  uint8_t *b;
  size_t n = idx_images_bytes(&b, 0x803, 3, 7, 7, 0);
  char path[1024];
  snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
  write_file(path, b, n, 0);
  free(b);
  CHECK(en_dataset_open_idx(&d, dir, 1, &err) == EFFNET_E_IO);
  CHECK(strstr(err.message, "train-labels-idx1-ubyte") != NULL);
  CHECK(en_dataset_open_idx(NULL, dir, 1, &err) == EFFNET_E_ARGUMENT);
  CHECK(en_dataset_open_idx(&d, NULL, 1, &err) == EFFNET_E_ARGUMENT);
}

/* ------------------------------------------------------------------ augmentation on IDX */

static int same(const float *a, const float *b, size_t n) {
  return memcmp(a, b, n * sizeof *a) == 0;
}

static int mirrored(const float *a, const float *b, int res) {
  for (int y = 0; y < res; y++)
    for (int x = 0; x < res; x++)
      for (int c = 0; c < 3; c++)
        if (a[(y * res + x) * 3 + c] != b[(y * res + res - 1 - x) * 3 + c]) return 0;
  return 1;
}

static int in_range(const float *v, size_t n, const en_augment *a) {
  for (size_t i = 0; i < n; i++) {
    int c = (int)(i % 3);
    float lo = (0.0f - a->mean[c]) / a->std[c], hi = (1.0f - a->mean[c]) / a->std[c];
    if (!(v[i] >= lo - 1e-5f && v[i] <= hi + 1e-5f)) return 0;
  }
  return 1;
}

#define RES 32
#define N (RES * RES * 3)

/* PAD_CROP with pad 0 crops the whole image: without flip it is NONE; with flip, NONE or
 * its mirror, and both happen. */
static void check_pad_zero(const en_dataset *d, int64_t index) {
  float none[N], a[N];
  effnet_error err = {{0}};
  en_augment aug = plain;
  CHECK(en_dataset_sample(d, index, none, RES, &aug, 0, &err) == EFFNET_OK);
  aug.kind = EN_AUG_PAD_CROP;
  aug.pad = 0;
  int ok = 1, flips = 0, keeps = 0;
  for (uint64_t seed = 0; seed < 32; seed++) {
    aug.flip = 0;
    ok &= en_dataset_sample(d, index, a, RES, &aug, seed, &err) == EFFNET_OK && same(a, none, N);
    aug.flip = 1;
    ok &= en_dataset_sample(d, index, a, RES, &aug, seed, &err) == EFFNET_OK;
    if (same(a, none, N)) keeps++;
    else if (mirrored(a, none, RES)) flips++;
    else ok = 0;
  }
  CHECK(ok);
  CHECK(flips > 4 && keeps > 4);
}

/* RRC with min_scale 1 on a square image always takes the whole image (no other w, h of
 * area W * H both round to fit), so it equals NONE. */
static void check_rrc_full(const en_dataset *d, int64_t index) {
  float none[N], a[N];
  effnet_error err = {{0}};
  en_augment aug = plain;
  CHECK(en_dataset_sample(d, index, none, RES, &aug, 0, &err) == EFFNET_OK);
  aug.kind = EN_AUG_RRC;
  aug.min_scale = 1.0f;
  int ok = 1;
  for (uint64_t seed = 0; seed < 32; seed++)
    ok &= en_dataset_sample(d, index, a, RES, &aug, seed, &err) == EFFNET_OK && same(a, none, N);
  CHECK(ok);
}

static void check_determinism(const en_dataset *d, en_aug_kind kind) {
  float a[N], b[N];
  effnet_error err = {{0}};
  en_augment aug = plain;
  aug.kind = kind;
  aug.min_scale = 0.25f;
  aug.pad = 4;
  aug.flip = 1;
  CHECK(en_dataset_sample(d, 5, a, RES, &aug, 42, &err) == EFFNET_OK);
  CHECK(en_dataset_sample(d, 5, b, RES, &aug, 42, &err) == EFFNET_OK);
  CHECK(same(a, b, N));
  CHECK(in_range(a, N, &aug));
  int differs = 0;
  for (uint64_t seed = 43; seed < 47; seed++) {
    CHECK(en_dataset_sample(d, 5, b, RES, &aug, seed, &err) == EFFNET_OK);
    differs += !same(a, b, N);
  }
  CHECK(differs >= 3);
  CHECK(en_dataset_sample(d, 6, b, RES, &aug, 42, &err) == EFFNET_OK);
  CHECK(!same(a, b, N));
}

/* Padding shows up as the normalised value of a 0 pixel along the border. */
static void check_pad_zeros(const en_dataset *d) {
  float a[28 * 28 * 3];
  effnet_error err = {{0}};
  en_augment aug = plain;
  aug.kind = EN_AUG_PAD_CROP;
  aug.pad = 4;
  float zero = (0.0f - aug.mean[0]) / aug.std[0];
  int shifted = 0;
  for (uint64_t seed = 0; seed < 16; seed++) {
    CHECK(en_dataset_sample(d, 0, a, 28, &aug, seed, &err) == EFFNET_OK);
    int row0 = 1, col0 = 1;
    for (int i = 0; i < 28; i++) {
      row0 &= a[i * 3] == zero;
      col0 &= a[i * 28 * 3] == zero;
    }
    shifted += row0 || col0;
  }
  CHECK(shifted > 0);
}

static void check_errors(const en_dataset *d) {
  float a[N];
  effnet_error err = {{0}};
  en_augment aug = plain;
  CHECK(en_dataset_sample(d, -1, a, RES, &aug, 0, &err) == EFFNET_E_ARGUMENT);
  CHECK(en_dataset_sample(d, en_dataset_size(d), a, RES, &aug, 0, &err) == EFFNET_E_ARGUMENT);
  CHECK(en_dataset_sample(d, 0, a, 0, &aug, 0, &err) == EFFNET_E_ARGUMENT);
  CHECK(en_dataset_sample(NULL, 0, a, RES, &aug, 0, &err) == EFFNET_E_ARGUMENT);
  aug.std[1] = 0.0f;
  CHECK(en_dataset_sample(d, 0, a, RES, &aug, 0, &err) == EFFNET_E_ARGUMENT);
  aug = plain;
  aug.kind = EN_AUG_RRC;
  aug.min_scale = 0.0f;
  CHECK(en_dataset_sample(d, 0, a, RES, &aug, 0, &err) == EFFNET_E_ARGUMENT);
  aug.kind = EN_AUG_PAD_CROP;
  aug.pad = -1;
  CHECK(en_dataset_sample(d, 0, a, RES, &aug, 0, &err) == EFFNET_E_ARGUMENT);
  CHECK(en_dataset_size(NULL) == 0 && en_dataset_classes(NULL) == 0);
  en_dataset_free(NULL);
}

static void check_histogram(const en_dataset *d, int per_class) {
  int hist[10] = {0}, other = 0;
  for (int64_t i = 0; i < en_dataset_size(d); i++) {
    int l = en_dataset_label(d, i);
    if (l >= 0 && l < 10) hist[l]++;
    else other++;
  }
  CHECK_EQ_INT(other, 0);
  for (int c = 0; c < 10; c++) CHECK_EQ_INT(hist[c], per_class);
}

static void test_fashion_mnist(void) {
  en_dataset *train = NULL, *test = NULL;
  effnet_error err = {{0}};
  effnet_status st = en_dataset_open_idx(&train, fmnist, 1, &err);
  CHECK_MSG(st == EFFNET_OK, "%s (install dataset-fashion-mnist)", err.message);
  st = en_dataset_open_idx(&test, fmnist, 0, &err);
  CHECK_MSG(st == EFFNET_OK, "%s", err.message);
  if (!train || !test) return;
  CHECK_EQ_INT(en_dataset_size(train), 60000);
  CHECK_EQ_INT(en_dataset_size(test), 10000);
  CHECK_EQ_INT(en_dataset_classes(train), 10);
  CHECK(!strcmp(en_dataset_class_name(train, 7), "Sneaker"));
  check_histogram(train, 6000);
  check_histogram(test, 1000);
  check_pad_zero(train, 123);
  check_rrc_full(train, 77);
  check_determinism(train, EN_AUG_RRC);
  check_determinism(train, EN_AUG_PAD_CROP);
  check_pad_zeros(train);
  check_errors(train);
  float a[N];
  en_augment aug = plain;
  aug.kind = EN_AUG_RRC;
  aug.min_scale = 0.08f;
  aug.flip = 1;
  int ok = 1;
  for (int64_t i = 0; i < 200; i++)
    ok &= en_dataset_sample(test, i * 37, a, RES, &aug, 9, &err) == EFFNET_OK &&
          in_range(a, N, &aug);
  CHECK(ok);
  en_dataset_free(train);
  en_dataset_free(test);
}

/* ------------------------------------------------------------------ image folders */

/* A w x h PNG of pseudo-random pixels: each (seed) a different, asymmetric picture. */
static void write_png(const char *path, int w, int h, uint32_t seed) {
  uint8_t *px = malloc((size_t)w * h * 3);
  uint32_t s = seed * 2654435761u + 12345u;
  for (int i = 0; i < w * h * 3; i++) {
    s = s * 1664525u + 1013904223u;
    px[i] = (uint8_t)(s >> 24);
  }
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = (png_uint_32)w;
  img.height = (png_uint_32)h;
  img.format = PNG_FORMAT_RGB;
  CHECK(png_image_write_to_file(&img, path, 0, px, 0, NULL) != 0);
  free(px);
}

static void copy_file(const char *from, const char *to) {
  FILE *f = fopen(from, "rb");
  CHECK_MSG(f != NULL, "%s (run from the repository root)", from);
  if (!f) return;
  FILE *g = fopen(to, "wb");
  char buf[65536];
  size_t n;
  while (g && (n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, g);
  fclose(f);
  if (g) fclose(g);
}

static void pngs(const char *dir, const char *prefix, int count, uint32_t seed) {
  char path[1024];
  mkdirs(dir);
  for (int i = 0; i < count; i++) {
    snprintf(path, sizeof path, "%s/%s%d.png", dir, prefix, i);
    write_png(path, 12, 9, seed + (uint32_t)i);
  }
}

/* flat/: ant 8 PNGs + rocket (upper-case extension) + an empty .png; bee 6 + one in a
 * subfolder + a text file named .jpg + a .txt; cat 5. 21 decodable, 2 not. */
static const char *make_flat(void) {
  static char root[1024];
  snprintf(root, sizeof root, "%s", tmp("%s", "flat"));
  pngs(tmp("%s", "flat/ant"), "a", 8, 100);
  pngs(tmp("%s", "flat/bee"), "b", 6, 200);
  pngs(tmp("%s", "flat/bee/sub"), "s", 1, 300);
  pngs(tmp("%s", "flat/cat"), "c", 5, 400);
  pngs(tmp("%s", "flat/.hidden"), "h", 2, 500);
  copy_file("samples/rocket.jpg", tmp("%s", "flat/ant/ROCKET.JPG"));
  write_file(tmp("%s", "flat/ant/zero.png"), "", 0, 0);
  write_file(tmp("%s", "flat/bee/notes.jpg"), "not a jpeg\n", 11, 0);
  write_file(tmp("%s", "flat/bee/readme.txt"), "ignored\n", 8, 0);
  write_png(tmp("%s", "flat/loose.png"), 4, 4, 1);
  return root;
}

/* NONE at 8x8 of every sample: distinct pictures give distinct vectors. */
static float *eval_all(const en_dataset *d) {
  int64_t n = en_dataset_size(d);
  float *v = malloc((size_t)n * 8 * 8 * 3 * sizeof *v);
  en_augment aug = plain;
  effnet_error err = {{0}};
  int ok = 1;
  for (int64_t i = 0; i < n; i++)
    ok &= en_dataset_sample(d, i, v + i * 192, 8, &aug, 0, &err) == EFFNET_OK;
  CHECK_MSG(ok, "%s", err.message);
  return v;
}

static int count_shared(const float *a, int64_t na, const float *b, int64_t nb) {
  int shared = 0;
  for (int64_t i = 0; i < na; i++)
    for (int64_t j = 0; j < nb; j++) shared += same(a + i * 192, b + j * 192, 192);
  return shared;
}

static void check_flat_split(const en_dataset *tr, const en_dataset *va, int skip_tr, int skip_va) {
  int64_t ntr = en_dataset_size(tr), nva = en_dataset_size(va);
  CHECK_EQ_INT(ntr + nva, 21);
  CHECK_EQ_INT(skip_tr + skip_va, 2);
  CHECK(nva >= 4); /* 3 + 2 + 1 held out, at most 2 of them undecodable */
  int seen[3] = {0}, sorted = 1;
  for (int64_t i = 0; i < ntr; i++) {
    int l = en_dataset_label(tr, i);
    if (l >= 0 && l < 3) seen[l] = 1;
    sorted &= i == 0 || en_dataset_label(tr, i - 1) <= l;
  }
  CHECK(seen[0] && seen[1] && seen[2] && sorted);
  float *a = eval_all(tr), *b = eval_all(va);
  CHECK_EQ_INT(count_shared(a, ntr, b, nva), 0);
  CHECK_EQ_INT(count_shared(a, ntr, a, ntr), ntr);
  free(a);
  free(b);
}

static void test_folder_flat(void) {
  const char *root = make_flat();
  en_dataset *tr = NULL, *va = NULL, *again = NULL;
  effnet_error err = {{0}};
  int skip_tr = -1, skip_va = -1, skip2 = -1;
  CHECK_MSG(en_dataset_open_folder(&tr, root, 1, 0.25, &skip_tr, &err) == EFFNET_OK, "%s",
            err.message);
  CHECK_MSG(en_dataset_open_folder(&va, root, 0, 0.25, &skip_va, &err) == EFFNET_OK, "%s",
            err.message);
  CHECK(en_dataset_open_folder(&again, root, 1, 0.25, &skip2, &err) == EFFNET_OK);
  if (!tr || !va || !again) return;
  CHECK_EQ_INT(en_dataset_classes(tr), 3);
  CHECK(!strcmp(en_dataset_class_name(tr, 0), "ant"));
  CHECK(!strcmp(en_dataset_class_name(va, 2), "cat"));
  check_flat_split(tr, va, skip_tr, skip_va);
  CHECK_EQ_INT(en_dataset_size(again), en_dataset_size(tr));
  CHECK_EQ_INT(skip2, skip_tr);
  float *a = eval_all(tr), *b = eval_all(again);
  CHECK(same(a, b, (size_t)en_dataset_size(tr) * 192));
  free(a);
  free(b);
  en_dataset_free(again);
  CHECK(en_dataset_open_folder(&again, root, 1, 0.0, &skip2, &err) == EFFNET_OK);
  CHECK_EQ_INT(en_dataset_size(again), 21);
  CHECK_EQ_INT(skip2, 2);
  en_dataset_free(again);
  again = (en_dataset *)1;
  CHECK(en_dataset_open_folder(&again, root, 0, 0.0, NULL, &err) == EFFNET_E_FORMAT && !again);
  CHECK(en_dataset_open_folder(&again, root, 1, 1.0, NULL, &err) == EFFNET_E_ARGUMENT);
  CHECK(en_dataset_open_folder(&again, root, 2, 0.1, NULL, &err) == EFFNET_E_ARGUMENT);
  en_dataset_free(tr);
  en_dataset_free(va);
}

static void test_folder_layout(void) {
  pngs(tmp("%s", "tv/train/x"), "x", 3, 600);
  pngs(tmp("%s", "tv/train/y"), "y", 3, 700);
  pngs(tmp("%s", "tv/validation/x"), "vx", 1, 800);
  pngs(tmp("%s", "tv/validation/y"), "vy", 1, 900);
  en_dataset *tr = NULL, *va = NULL;
  effnet_error err = {{0}};
  int skipped = -1;
  CHECK_MSG(en_dataset_open_folder(&tr, tmp("%s", "tv"), 1, 0.5, &skipped, &err) == EFFNET_OK,
            "%s", err.message);
  CHECK_MSG(en_dataset_open_folder(&va, tmp("%s", "tv"), 0, 0.5, &skipped, &err) == EFFNET_OK,
            "%s", err.message);
  if (tr && va) {
    CHECK_EQ_INT(en_dataset_size(tr), 6);
    CHECK_EQ_INT(en_dataset_size(va), 2);
    CHECK_EQ_INT(en_dataset_classes(va), 2);
    CHECK(!strcmp(en_dataset_class_name(va, 1), "y"));
    CHECK_EQ_INT(en_dataset_label(va, 0), 0);
    CHECK_EQ_INT(en_dataset_label(va, 1), 1);
    CHECK_EQ_INT(skipped, 0);
  }
  en_dataset_free(tr);
  en_dataset_free(va);
  /* a validation class the training folder lacks */
  pngs(tmp("%s", "tv2/train/x"), "x", 2, 1000);
  pngs(tmp("%s", "tv2/val/zebra"), "z", 1, 1100);
  va = (en_dataset *)1;
  CHECK(en_dataset_open_folder(&va, tmp("%s", "tv2"), 0, 0.1, NULL, &err) == EFFNET_E_FORMAT);
  CHECK(va == NULL && strstr(err.message, "zebra") != NULL);
  CHECK(en_dataset_open_folder(&tr, tmp("%s", "tv2"), 1, 0.1, NULL, &err) == EFFNET_OK);
  en_dataset_free(tr);
}

static void expect_folder_error(const char *dir, int split, const char *needle) {
  en_dataset *d = (en_dataset *)1;
  effnet_error err = {{0}};
  effnet_status st = en_dataset_open_folder(&d, dir, split, 0.2, NULL, &err);
  CHECK_MSG(st != EFFNET_OK && d == NULL, "%s: status %d", dir, (int)st);
  CHECK_MSG(strstr(err.message, needle) != NULL, "'%s' lacks '%s'", err.message, needle);
}

static void test_folder_errors(void) {
  pngs(tmp("%s", "empty/a"), "a", 2, 1200);
  mkdirs(tmp("%s", "empty/b"));
  expect_folder_error(tmp("%s", "empty"), 1, "empty/b");
  mkdirs(tmp("%s", "noclass"));
  write_png(tmp("%s", "noclass/x.png"), 4, 4, 1);
  expect_folder_error(tmp("%s", "noclass"), 1, "no class");
  pngs(tmp("%s", "corrupt/a"), "a", 2, 1300);
  mkdirs(tmp("%s", "corrupt/b"));
  write_file(tmp("%s", "corrupt/b/zero.png"), "", 0, 0);
  expect_folder_error(tmp("%s", "corrupt"), 1, "corrupt/b");
  expect_folder_error(tmp("%s", "missing"), 1, "missing");
}

/* Folder samples: NONE is effnet_preprocess_image's crop (transposed); RRC stays in range,
 * is deterministic, and its flip mirrors the unflipped crop of the same seed. */
static void test_folder_sample(void) {
  en_dataset *d = NULL;
  effnet_error err = {{0}};
  if (en_dataset_open_folder(&d, tmp("%s", "flat"), 1, 0.0, NULL, &err) != EFFNET_OK) return;
  const int64_t rocket = 0; /* strcmp order: "ROCKET.JPG" < "a0.png" */
  float a[N], b[N], ref[N];
  en_augment aug = plain;
  aug.crop_frac = 0.875f;
  CHECK(en_dataset_sample(d, rocket, a, RES, &aug, 0, &err) == EFFNET_OK);
  effnet_image im;
  CHECK(effnet_image_load(&im, "samples/rocket.jpg", &err) == EFFNET_OK);
  effnet_preprocess p;
  memset(&p, 0, sizeof p);
  p.resize_shorter = 36; /* floor(32 / 0.875) */
  p.crop_h = p.crop_w = RES;
  p.interp = EFFNET_INTERP_BICUBIC;
  memcpy(p.mean, aug.mean, sizeof p.mean);
  memcpy(p.std, aug.std, sizeof p.std);
  CHECK(effnet_preprocess_image(&im, &p, ref, &err) == EFFNET_OK);
  effnet_image_free(&im);
  int ok = 1;
  for (int i = 0; i < RES * RES; i++)
    for (int c = 0; c < 3; c++) ok &= a[i * 3 + c] == ref[c * RES * RES + i];
  CHECK(ok);
  aug.kind = EN_AUG_RRC;
  aug.min_scale = 0.08f;
  int flips = 0, keeps = 0;
  ok = 1;
  for (uint64_t seed = 0; seed < 16; seed++) {
    aug.flip = 0;
    ok &= en_dataset_sample(d, rocket, a, RES, &aug, seed, &err) == EFFNET_OK &&
          in_range(a, N, &aug);
    aug.flip = 1;
    ok &= en_dataset_sample(d, rocket, b, RES, &aug, seed, &err) == EFFNET_OK;
    ok &= en_dataset_sample(d, rocket, ref, RES, &aug, seed, &err) == EFFNET_OK && same(b, ref, N);
    if (same(a, b, N)) keeps++;
    else if (mirrored(a, b, RES)) flips++;
    else ok = 0;
  }
  CHECK(ok);
  CHECK(flips > 2 && keeps > 2);
  aug.kind = EN_AUG_PAD_CROP;
  aug.pad = 6;
  ok = 1;
  for (int64_t i = 0; i < en_dataset_size(d); i++)
    ok &= en_dataset_sample(d, i, a, 16, &aug, (uint64_t)i, &err) == EFFNET_OK &&
          in_range(a, 16 * 16 * 3, &aug);
  CHECK(ok);
  aug.kind = EN_AUG_NONE;
  aug.crop_frac = 0.0f;
  CHECK(en_dataset_sample(d, 0, a, RES, &aug, 0, &err) == EFFNET_E_ARGUMENT);
  en_dataset_free(d);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

int main(void) {
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  test_idx_good();
  test_idx_bad();
  test_fashion_mnist();
  test_folder_flat();
  test_folder_layout();
  test_folder_errors();
  test_folder_sample();
  nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  return TEST_SUMMARY();
}
