/* Images: decoding against PIL, preprocessing against torchvision / timm / a NumPy
 * transcription of the TF reference, preset tables, EXIF orientation, every rejection.
 * The cases (and their tolerances, with the reasons) come from tests/fixtures/images/cases.txt,
 * written by tools/oracle/gen_image_fixtures.py. Photo checks run when Debian's
 * python3-skimage sample images are installed (and are the files the CRCs were made from).
 *   test_image [--fixtures DIR] [--photos DIR]
 *     --fixtures  cases and files written by the script elsewhere (default tests/fixtures/images)
 *     --photos    the script's --photo-npy output: full photo tensors, reporting max
 *                 differences instead of comparing CRCs. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "effnet.h"
#include "image/image.h"
#include "io/npy.h"
#include "testutil.h"

#define MAX_TOKENS 24

static const char *fixtures_dir = "tests/fixtures/images";
static const char *photo_npy_dir;

/* Largest difference seen per kind of check, reported at the end. */
typedef struct tally {
  const char *what;
  int cases;
  double max_diff;
} tally;

static tally t_decode = {"decode vs PIL (levels)", 0, 0};
static tally t_pil = {"torchvision/timm preprocessing", 0, 0};
static tally t_tf = {"TF preprocessing vs NumPy transcription", 0, 0};
static tally t_photo_pre = {"photo preprocessing (full tensors)", 0, 0};
static int photo_decodes, photo_pres, photo_skipped;

/* ------------------------------------------------------------------ helpers */

static uint32_t crc32_bytes(const void *data, size_t n) {
  static uint32_t table[256];
  if (!table[1])
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
  uint32_t c = 0xFFFFFFFFu;
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

static const char *fixture(const char *name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", fixtures_dir, name);
  return buf[k];
}

static effnet_interp interp_of(const char *s) {
  if (strcmp(s, "bilinear") == 0) return EFFNET_INTERP_BILINEAR;
  if (strcmp(s, "tf_bicubic") == 0) return EFFNET_INTERP_TF_BICUBIC;
  return EFFNET_INTERP_BICUBIC;
}

/* max |a - b| over n floats; NaN anywhere counts as infinite. */
static double max_abs_diff(const float *a, const float *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (d != d) return INFINITY;
    if (d > m) m = d;
  }
  return m;
}

static void record(tally *t, double diff) {
  t->cases++;
  if (diff > t->max_diff) t->max_diff = diff;
}

/* Compare a preprocessed tensor with a (3, H, W) npy. */
static void check_tensor(const char *label, const float *got, int h, int w, const char *npy,
                         double tol, tally *t) {
  npy_array want;
  effnet_error err = {{0}};
  effnet_status st = npy_read(&want, npy, &err);
  CHECK_MSG(st == EFFNET_OK, "%s: %s", label, err.message);
  if (st != EFFNET_OK) return;
  int shape_ok = want.ndim == 3 && want.shape[0] == 3 && want.shape[1] == h && want.shape[2] == w;
  CHECK_MSG(shape_ok, "%s: expected shape differs from %dx%d", label, h, w);
  if (shape_ok) {
    double d = max_abs_diff(got, want.data, (size_t)want.numel);
    record(t, d);
    CHECK_MSG(d <= tol, "%s: max |diff| %.3g > %.3g", label, d, tol);
  }
  npy_free(&want);
}

/* ------------------------------------------------------------------ case kinds */

static void case_decode(char **tok, int n) {
  if (n != 4) return;
  effnet_image im;
  effnet_error err = {{0}};
  effnet_status st = effnet_image_load(&im, fixture(tok[1]), &err);
  CHECK_MSG(st == EFFNET_OK, "%s: %s", tok[1], err.message);
  if (st != EFFNET_OK) return;
  npy_array want;
  st = npy_read(&want, fixture(tok[2]), &err);
  CHECK_MSG(st == EFFNET_OK, "%s", err.message);
  if (st == EFFNET_OK) {
    int shape_ok = want.ndim == 3 && want.shape[0] == im.height && want.shape[1] == im.width &&
                   want.shape[2] == 3;
    CHECK_MSG(shape_ok, "%s: decoded %dx%d, PIL %lldx%lld", tok[1], im.width, im.height,
              (long long)(want.ndim == 3 ? want.shape[1] : -1),
              (long long)(want.ndim == 3 ? want.shape[0] : -1));
    if (shape_ok) {
      double d = 0;
      for (int64_t i = 0; i < want.numel; i++) d = fmax(d, fabs(im.rgb[i] - want.data[i]));
      record(&t_decode, d);
      CHECK_MSG(d <= atof(tok[3]), "%s: max |diff| %g levels", tok[1], d);
    }
    npy_free(&want);
  }
  effnet_image_free(&im);
}

static effnet_status status_of_name(const char *name) {
  for (int s = EFFNET_OK; s <= EFFNET_E_NUMERIC; s++)
    if (strcmp(effnet_status_name((effnet_status)s), name) == 0) return (effnet_status)s;
  return (effnet_status)-1;
}

static void case_reject(char **tok, int n) {
  if (n != 3) return;
  effnet_image im = {7, 7, (unsigned char *)&im};
  effnet_error err = {{0}};
  const char *path = fixture(tok[1]);
  effnet_status st = effnet_image_load(&im, path, &err);
  CHECK_MSG(st == status_of_name(tok[2]), "%s: status %s, expected %s (%s)", tok[1],
            effnet_status_name(st), tok[2], err.message);
  CHECK_MSG(strstr(err.message, path) != NULL, "%s: message lacks the file name: %s", tok[1],
            err.message);
  CHECK_MSG(im.rgb == NULL && im.width == 0 && im.height == 0, "%s: output not emptied", tok[1]);
  effnet_image_free(&im);
}

static void run_preprocess(const char *label, const char *image, const effnet_preprocess *p,
                           const char *npy, double tol, tally *t) {
  effnet_image im;
  effnet_error err = {{0}};
  effnet_status st = effnet_image_load(&im, fixture(image), &err);
  CHECK_MSG(st == EFFNET_OK, "%s: %s", label, err.message);
  if (st != EFFNET_OK) return;
  float *out = malloc((size_t)3 * p->crop_h * p->crop_w * sizeof *out);
  st = effnet_preprocess_image(&im, p, out, &err);
  CHECK_MSG(st == EFFNET_OK, "%s: %s", label, err.message);
  if (st == EFFNET_OK) check_tensor(label, out, p->crop_h, p->crop_w, fixture(npy), tol, t);
  free(out);
  effnet_image_free(&im);
}

/* custom IMAGE CROP_FIRST RESIZE FRACTION CROP_H CROP_W INTERP M0 M1 M2 S0 S1 S2 NPY TOL */
static void case_custom(char **tok, int n) {
  if (n != 16) return;
  effnet_preprocess p;
  memset(&p, 0, sizeof p);
  snprintf(p.name, sizeof p.name, "custom");
  p.crop_first = atoi(tok[2]);
  p.resize_shorter = atoi(tok[3]);
  p.crop_fraction = strtod(tok[4], NULL);
  p.crop_h = atoi(tok[5]);
  p.crop_w = atoi(tok[6]);
  p.interp = interp_of(tok[7]);
  for (int c = 0; c < 3; c++) {
    p.mean[c] = (float)strtod(tok[8 + c], NULL);
    p.std[c] = (float)strtod(tok[11 + c], NULL);
  }
  run_preprocess(tok[14], tok[1], &p, tok[14], strtod(tok[15], NULL),
                 p.interp == EFFNET_INTERP_TF_BICUBIC ? &t_tf : &t_pil);
}

/* preset IMAGE PRESET RES NPY TOL */
static void case_preset(char **tok, int n) {
  if (n != 6) return;
  effnet_spec spec;
  effnet_preprocess p;
  effnet_error err = {{0}};
  CHECK(effnet_spec_custom(&spec, EFFNET_FAMILY_B, 1.0, 1.0, atoi(tok[3]), &err) == EFFNET_OK);
  effnet_status st = effnet_preprocess_preset(&p, tok[2], &spec, &err);
  CHECK_MSG(st == EFFNET_OK, "%s: %s", tok[4], err.message);
  if (st != EFFNET_OK) return;
  run_preprocess(tok[4], tok[1], &p, tok[4], strtod(tok[5], NULL),
                 p.interp == EFFNET_INTERP_TF_BICUBIC ? &t_tf : &t_pil);
}

/* presetcfg PRESET MODEL CROP_FIRST RESIZE FRACTION CROP_H CROP_W INTERP M0 M1 M2 S0 S1 S2 */
static void case_presetcfg(char **tok, int n) {
  if (n != 15) return;
  effnet_spec spec;
  effnet_preprocess p;
  effnet_error err = {{0}};
  effnet_status st = effnet_spec_from_name(&spec, tok[2], &err);
  if (st == EFFNET_OK) st = effnet_preprocess_preset(&p, tok[1], &spec, &err);
  CHECK_MSG(st == EFFNET_OK, "%s %s: %s", tok[1], tok[2], err.message);
  if (st != EFFNET_OK) return;
  int ok = p.crop_first == atoi(tok[3]) && p.crop_h == atoi(tok[6]) && p.crop_w == atoi(tok[7]) &&
           p.interp == interp_of(tok[8]) && strcmp(p.name, tok[1]) == 0;
  if (!p.crop_first) ok = ok && p.resize_shorter == atoi(tok[4]);
  else ok = ok && p.crop_fraction == strtod(tok[5], NULL);
  for (int c = 0; c < 3; c++)
    ok = ok && p.mean[c] == (float)strtod(tok[9 + c], NULL) &&
         p.std[c] == (float)strtod(tok[12 + c], NULL);
  CHECK_MSG(ok, "preset %s for %s: got resize %d fraction %.17g crop %dx%d interp %d, "
            "expected resize %s fraction %s crop %sx%s %s", tok[1], tok[2], p.resize_shorter,
            p.crop_fraction, p.crop_w, p.crop_h, (int)p.interp, tok[4], tok[5], tok[7], tok[6],
            tok[8]);
}

/* The photo of the last photo_decode line, kept for its photo_pre lines. */
static effnet_image photo;
static char photo_path[512];

/* photo_decode PATH FILE_BYTES FILE_CRC W H RGB_CRC */
static void case_photo_decode(char **tok, int n) {
  if (n != 7) return;
  effnet_image_free(&photo);
  photo_path[0] = 0;
  FILE *fp = fopen(tok[1], "rb");
  if (!fp) {
    photo_skipped++;
    return;
  }
  long size = atol(tok[2]);
  unsigned char *raw = malloc(size > 0 ? (size_t)size : 1);
  size_t got = raw ? fread(raw, 1, (size_t)size, fp) : 0;
  int same = raw && got == (size_t)size && fgetc(fp) == EOF &&
             crc32_bytes(raw, got) == (uint32_t)strtoul(tok[3], NULL, 10);
  fclose(fp);
  free(raw);
  if (!same) { /* another version of the sample image: the CRCs do not apply */
    photo_skipped++;
    return;
  }
  effnet_error err = {{0}};
  effnet_status st = effnet_image_load(&photo, tok[1], &err);
  CHECK_MSG(st == EFFNET_OK, "%s", err.message);
  if (st != EFFNET_OK) return;
  photo_decodes++;
  CHECK_MSG(photo.width == atoi(tok[4]) && photo.height == atoi(tok[5]), "%s: %dx%d", tok[1],
            photo.width, photo.height);
  uint32_t crc = crc32_bytes(photo.rgb, (size_t)photo.width * photo.height * 3);
  CHECK_MSG(crc == (uint32_t)strtoul(tok[6], NULL, 10), "%s: decoded pixels differ from PIL",
            tok[1]);
  snprintf(photo_path, sizeof photo_path, "%s", tok[1]);
}

/* photo_pre PATH PRESET MODEL CRC NPY_NAME */
static void case_photo_pre(char **tok, int n) {
  if (n != 6) return;
  if (strcmp(photo_path, tok[1]) != 0) {
    photo_skipped++;
    return;
  }
  effnet_spec spec;
  effnet_preprocess p;
  effnet_error err = {{0}};
  effnet_status st = effnet_spec_from_name(&spec, tok[3], &err);
  if (st == EFFNET_OK) st = effnet_preprocess_preset(&p, tok[2], &spec, &err);
  CHECK_MSG(st == EFFNET_OK, "%s", err.message);
  if (st != EFFNET_OK) return;
  size_t count = (size_t)3 * p.crop_h * p.crop_w;
  float *out = malloc(count * sizeof *out);
  st = effnet_preprocess_image(&photo, &p, out, &err);
  CHECK_MSG(st == EFFNET_OK, "%s", err.message);
  if (st == EFFNET_OK) {
    photo_pres++;
    char label[600];
    snprintf(label, sizeof label, "%s %s %s", tok[1], tok[2], tok[3]);
    char npy[1024];
    snprintf(npy, sizeof npy, "%s/%s", photo_npy_dir ? photo_npy_dir : "", tok[5]);
    FILE *probe = photo_npy_dir ? fopen(npy, "rb") : NULL;
    if (probe) {
      fclose(probe);
      check_tensor(label, out, p.crop_h, p.crop_w, npy, 0.0, &t_photo_pre);
    } else {
      CHECK_MSG(crc32_bytes(out, count * sizeof *out) == (uint32_t)strtoul(tok[4], NULL, 10),
                "%s: tensor differs from the reference (CRC)", label);
    }
  }
  free(out);
}

static void run_cases(void) {
  FILE *fp = fopen(fixture("cases.txt"), "r");
  CHECK_MSG(fp != NULL, "%s: %s", fixture("cases.txt"), strerror(errno));
  if (!fp) return;
  char line[4096];
  int lines = 0;
  while (fgets(line, sizeof line, fp)) {
    char *tok[MAX_TOKENS];
    int n = 0;
    for (char *s = strtok(line, " \t\r\n"); s && n < MAX_TOKENS; s = strtok(NULL, " \t\r\n"))
      tok[n++] = s;
    if (n == 0 || tok[0][0] == '#') continue;
    lines++;
    if (strcmp(tok[0], "decode") == 0) case_decode(tok, n);
    else if (strcmp(tok[0], "reject") == 0) case_reject(tok, n);
    else if (strcmp(tok[0], "custom") == 0) case_custom(tok, n);
    else if (strcmp(tok[0], "preset") == 0) case_preset(tok, n);
    else if (strcmp(tok[0], "presetcfg") == 0) case_presetcfg(tok, n);
    else if (strcmp(tok[0], "photo_decode") == 0) case_photo_decode(tok, n);
    else if (strcmp(tok[0], "photo_pre") == 0) case_photo_pre(tok, n);
    else CHECK_MSG(0, "cases.txt: unknown kind %s", tok[0]);
  }
  fclose(fp);
  effnet_image_free(&photo);
  CHECK_MSG(lines > 100, "cases.txt: only %d cases", lines);
}

/* ------------------------------------------------------------------ direct checks */

static void test_unreadable(void) {
  effnet_image im;
  effnet_error err = {{0}};
  const char *missing = fixture("no_such_file.jpg");
  CHECK_EQ_INT(effnet_image_load(&im, missing, &err), EFFNET_E_IO);
  CHECK(strstr(err.message, missing) != NULL);
  CHECK(im.rgb == NULL);
  CHECK_EQ_INT(effnet_image_load(&im, fixtures_dir, &err), EFFNET_E_IO); /* a directory */
  CHECK(strstr(err.message, fixtures_dir) != NULL);
  CHECK_EQ_INT(effnet_image_load(NULL, missing, &err), EFFNET_E_ARGUMENT);
  CHECK_EQ_INT(effnet_image_load(&im, NULL, &err), EFFNET_E_ARGUMENT);
  CHECK_EQ_INT(effnet_image_decode(&im, NULL, 0, "mem.png", &err), EFFNET_E_FORMAT);
  CHECK(strstr(err.message, "mem.png") != NULL);
  CHECK_EQ_INT(effnet_image_decode(&im, "\xff\xd8", 2, NULL, &err), EFFNET_E_FORMAT);
  effnet_image_free(NULL);
  effnet_image_free(&im);
  effnet_image_free(&im);
}

/* A TIFF block with one IFD0 entry, written by hand. */
static size_t tiff(unsigned char *b, int big, unsigned tag, unsigned type, uint32_t count,
                   uint32_t value) {
  memcpy(b, big ? "MM" : "II", 2);
  uint32_t fields[] = {42, 8, 1, tag, type, count, value, 0};
  int sizes[] = {2, 4, 2, 2, 2, 4, 0, 4};
  size_t at = 2;
  for (int i = 0; i < 8; i++) {
    int sz = sizes[i];
    if (i == 6) { /* value field: a SHORT is left-justified in its 4 bytes */
      sz = 4;
      if (type == 3) {
        unsigned char v[4] = {0};
        if (big) { v[0] = (unsigned char)(value >> 8); v[1] = (unsigned char)value; }
        else { v[0] = (unsigned char)value; v[1] = (unsigned char)(value >> 8); }
        memcpy(b + at, v, 4);
        at += 4;
        continue;
      }
    }
    for (int k = 0; k < sz; k++)
      b[at + k] = (unsigned char)(fields[i] >> (8 * (big ? sz - 1 - k : k)));
    at += (size_t)sz;
  }
  return at;
}

static void test_exif_parser(void) {
  unsigned char b[64];
  for (int big = 0; big < 2; big++)
    for (unsigned o = 1; o <= 8; o++) {
      size_t n = tiff(b, big, 0x0112, 3, 1, o);
      CHECK_EQ_INT(img_exif_orientation(b, n), (int)o);
      CHECK_EQ_INT(img_exif_orientation(b, n - 5), 1); /* entry cut short */
    }
  size_t n = tiff(b, 0, 0x0112, 4, 1, 6);
  CHECK_EQ_INT(img_exif_orientation(b, n), 6); /* LONG */
  n = tiff(b, 0, 0x0112, 4, 1, 65542);
  CHECK_EQ_INT(img_exif_orientation(b, n), 1); /* not 6 after truncation to 16 bits */
  n = tiff(b, 0, 0x0112, 3, 2, 6);
  CHECK_EQ_INT(img_exif_orientation(b, n), 1); /* two values */
  n = tiff(b, 0, 0x0112, 3, 1, 0);
  CHECK_EQ_INT(img_exif_orientation(b, n), 1);
  n = tiff(b, 1, 0x0113, 3, 1, 6);
  CHECK_EQ_INT(img_exif_orientation(b, n), 1); /* another tag */
  n = tiff(b, 0, 0x0112, 3, 1, 3);
  b[4] = 0xF0; /* IFD offset past the end */
  CHECK_EQ_INT(img_exif_orientation(b, n), 1);
  b[4] = (unsigned char)(n - 1); /* IFD offset with one byte left */
  CHECK_EQ_INT(img_exif_orientation(b, n), 1);
  n = tiff(b, 0, 0x0112, 3, 1, 3);
  b[2] = 43; /* not TIFF */
  CHECK_EQ_INT(img_exif_orientation(b, n), 1);
  CHECK_EQ_INT(img_exif_orientation(b, 7), 1);
  CHECK_EQ_INT(img_exif_orientation(NULL, 0), 1);
}

/* Orientation 1..8 on a 3x2 image whose pixels are numbered: the expected layouts are
 * Pillow's Image.transpose results, written out. */
static void test_orientations(void) {
  static const char *want[9] = {
      NULL,     "012345", "210543", "543210", "345012",
      "031425", "304152", "524130", "251403"};
  static const int wide[9] = {0, 3, 3, 3, 3, 2, 2, 2, 2};
  for (int o = 1; o <= 8; o++) {
    effnet_image im = {3, 2, malloc(18)};
    for (int i = 0; i < 18; i++) im.rgb[i] = (unsigned char)('0' + i / 3);
    effnet_error err = {{0}};
    CHECK(img_apply_orientation(&im, o, "t", &err) == EFFNET_OK);
    char got[7] = {0};
    for (int i = 0; i < 6; i++) got[i] = (char)im.rgb[i * 3];
    CHECK_MSG(strcmp(got, want[o]) == 0 && im.width == wide[o], "orientation %d: %s (%dx%d)",
              o, got, im.width, im.height);
    effnet_image_free(&im);
  }
}

static void test_preprocess_arguments(void) {
  effnet_spec spec;
  effnet_preprocess p;
  effnet_error err = {{0}};
  CHECK(effnet_spec_from_name(&spec, "b0", &err) == EFFNET_OK);
  CHECK_EQ_INT(effnet_preprocess_preset(&p, "keras", &spec, &err), EFFNET_E_ARGUMENT);
  CHECK(strstr(err.message, "keras") != NULL);
  CHECK_EQ_INT(effnet_preprocess_preset(NULL, "tf", &spec, &err), EFFNET_E_ARGUMENT);
  CHECK_EQ_INT(effnet_preprocess_preset(&p, "tf", NULL, &err), EFFNET_E_ARGUMENT);
  CHECK(effnet_preprocess_preset(&p, "torchvision", &spec, &err) == EFFNET_OK);
  unsigned char px[2 * 3 * 3] = {0};
  effnet_image im = {3, 2, px};
  float out[3 * 4 * 4];
  effnet_preprocess bad = p;
  bad.crop_h = 0;
  CHECK_EQ_INT(effnet_preprocess_image(&im, &bad, out, &err), EFFNET_E_ARGUMENT);
  bad = p;
  bad.std[1] = 0;
  CHECK_EQ_INT(effnet_preprocess_image(&im, &bad, out, &err), EFFNET_E_ARGUMENT);
  bad = p;
  bad.interp = (effnet_interp)9;
  CHECK_EQ_INT(effnet_preprocess_image(&im, &bad, out, &err), EFFNET_E_ARGUMENT);
  bad = p;
  bad.crop_first = 1;
  bad.crop_fraction = 1.5;
  CHECK_EQ_INT(effnet_preprocess_image(&im, &bad, out, &err), EFFNET_E_ARGUMENT);
  effnet_image empty = {0, 0, NULL};
  CHECK_EQ_INT(effnet_preprocess_image(&empty, &p, out, &err), EFFNET_E_ARGUMENT);
  /* a 1-pixel image still works: crop 4x4 from a resize to 4x8, TF crop side 1 */
  effnet_preprocess small = p;
  small.resize_shorter = 4;
  small.crop_h = small.crop_w = 4;
  effnet_image dot = {1, 2, px};
  CHECK(effnet_preprocess_image(&dot, &small, out, &err) == EFFNET_OK);
  small.crop_first = 1;
  small.crop_fraction = 0.5;
  small.interp = EFFNET_INTERP_TF_BICUBIC;
  CHECK(effnet_preprocess_image(&dot, &small, out, &err) == EFFNET_OK);
}

/* A 1 x 60000 strip resized to shorter side 256 is 256 x 15360000 virtually; only the
 * 224 x 224 crop is computed, so this is quick and small. */
static void test_extreme_aspect(void) {
  int h = 60000;
  effnet_image im = {1, h, malloc((size_t)h * 3)};
  for (int i = 0; i < h * 3; i++) im.rgb[i] = (unsigned char)(i * 7);
  effnet_spec spec;
  effnet_preprocess p;
  effnet_error err = {{0}};
  CHECK(effnet_spec_from_name(&spec, "b0", &err) == EFFNET_OK);
  CHECK(effnet_preprocess_preset(&p, "torchvision", &spec, &err) == EFFNET_OK);
  float *out = malloc((size_t)3 * 224 * 224 * sizeof *out);
  CHECK(effnet_preprocess_image(&im, &p, out, &err) == EFFNET_OK);
  free(out);
  effnet_image_free(&im);
}

int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--fixtures") == 0) fixtures_dir = argv[i + 1];
    else if (strcmp(argv[i], "--photos") == 0) photo_npy_dir = argv[i + 1];
  }
  if (argc % 2 == 0) {
    fprintf(stderr, "usage: %s [--fixtures DIR] [--photos DIR]\n", argv[0]);
    return 2;
  }
  test_unreadable();
  test_exif_parser();
  test_orientations();
  test_preprocess_arguments();
  test_extreme_aspect();
  run_cases();
  tally *tallies[] = {&t_decode, &t_pil, &t_tf, &t_photo_pre};
  for (int i = 0; i < 4; i++)
    if (tallies[i]->cases)
      printf("%s: %d cases, max |diff| %.3g\n", tallies[i]->what, tallies[i]->cases,
             tallies[i]->max_diff);
  printf("photos: %d decoded, %d preprocessed, %d checks skipped%s\n", photo_decodes, photo_pres,
         photo_skipped, photo_skipped ? " (skimage sample images absent or different)" : "");
  return TEST_SUMMARY();
}
