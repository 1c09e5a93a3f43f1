/* effnet search's CLI modules: results.csv (round trip, atomic append, strict reading with
 * line numbers, torn last lines) and PNG plots (read back with libpng). Set
 * TEST_SEARCH_KEEP=1 to keep the temporary folder with the rendered plots. */
#include <dirent.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cli/search.h"
#include "testutil.h"

static char dir[256];

static const char *in_dir(const char *name) {
  static char buf[8][512];
  static int next;
  char *p = buf[next++ % 8];
  snprintf(p, sizeof buf[0], "%s/%s", dir, name);
  return p;
}

static void write_file(const char *path, const char *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return;
  fwrite(data, 1, n, f);
  fclose(f);
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = calloc(1, 1 << 16);
  if (buf && fread(buf, 1, (1 << 16) - 1, f) == 0) buf[0] = '\0';
  fclose(f);
  return buf;
}

/* Files whose name contains ".tmp." left in the folder by an atomic write. */
static int temp_files(void) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
  if (d) closedir(d);
  return n;
}

static search_row sample(int i) {
  search_row r;
  memset(&r, 0, sizeof r);
  snprintf(r.mode, sizeof r.mode, "%s", i == 0 ? "compound" : i == 1 ? "width@d1.2r1.3" : "base");
  r.alpha = 1.2 + i * 0.1;           /* 1.3 is not 1.2 + 0.1 in binary: must still round trip */
  r.beta = nextafter(1.1, 2); /* needs all 17 digits */
  r.gamma = 1.15;
  r.width = 1.0 / 3.0 + i;
  r.depth = 2.5;
  r.resolution = 224 + 32 * i;
  r.params = i == 2 ? INT64_MAX : 5288548;
  r.macs = 385000000LL * (i + 1);
  r.seed = i == 2 ? UINT64_MAX : (uint64_t)i;
  r.accuracy = i == 1 ? 0 : 0.8765432109876543;
  r.seconds = 123.4567 * i;
  return r;
}

static int rows_equal(const search_row *a, const search_row *b) {
  return !strcmp(a->mode, b->mode) && a->alpha == b->alpha && a->beta == b->beta &&
         a->gamma == b->gamma && a->width == b->width && a->depth == b->depth &&
         a->resolution == b->resolution && a->params == b->params && a->macs == b->macs &&
         a->seed == b->seed && a->accuracy == b->accuracy && fabs(a->seconds - b->seconds) < 6e-4;
}

/* ------------------------------------------------------------------ results.csv */

static void test_round_trip(void) {
  const char *path = in_dir("results.csv");
  search_row want[3] = {sample(0), sample(1), sample(2)};
  effnet_error err = {{0}};
  for (size_t i = 0; i < 3; i++) {
    CHECK_EQ_INT(search_csv_append(path, want, i, &want[i], &err), EFFNET_OK);
    search_row *rows = NULL;
    size_t count = 0;
    int torn = -1;
    CHECK_EQ_INT(search_csv_read(path, &rows, &count, &torn, &err), EFFNET_OK);
    CHECK_EQ_INT(count, i + 1); /* complete after every append */
    CHECK_EQ_INT(torn, 0);
    for (size_t j = 0; j < count && j <= i; j++)
      CHECK_MSG(rows_equal(&rows[j], &want[j]), "row %zu", j);
    free(rows);
    CHECK_EQ_INT(temp_files(), 0);
  }
  char *text = read_text(path);
  CHECK(text && !strncmp(text, SEARCH_CSV_HEADER "\n", strlen(SEARCH_CSV_HEADER) + 1));
  CHECK(text && strstr(text, "\nbase,1.4,1.1000000000000003,1.15,"));
  CHECK(text && strstr(text, ",18446744073709551615,0.8765432109876543,246.913\n"));
  free(text);
}

static void test_missing(void) {
  search_row *rows = (search_row *)1;
  size_t count = 7;
  int torn = 5;
  effnet_error err = {{0}};
  CHECK_EQ_INT(search_csv_read(in_dir("absent.csv"), &rows, &count, &torn, &err), EFFNET_OK);
  CHECK(rows == NULL && count == 0 && torn == 0);
  CHECK_EQ_INT(search_csv_read(in_dir("absent.csv"), &rows, &count, NULL, &err), EFFNET_OK);
}

static const char good[] = "compound,1.2,1.1,1.15,1.1,1.2,260,7000000,700000000,0,0.75,12.500\n";

/* A file with the header, one good line and `bad` as line 3; returns the read status. */
static effnet_status read_with(const char *bad, size_t n, effnet_error *err) {
  const char *path = in_dir("bad.csv");
  char buf[1024];
  int k = snprintf(buf, sizeof buf, "%s\n%s", SEARCH_CSV_HEADER, good);
  memcpy(buf + k, bad, n);
  write_file(path, buf, (size_t)k + n);
  search_row *rows = NULL;
  size_t count = 0;
  effnet_status st = search_csv_read(path, &rows, &count, NULL, err);
  if (st != EFFNET_OK) CHECK(rows == NULL && count == 0);
  free(rows);
  return st;
}

static void test_malformed(void) {
  static const char *const bad[] = {
      "compound,1.2,1.1,1.15,1.1,1.2,260,7000000,700000000,0,0.75\n",         /* 11 fields */
      "compound,1.2,1.1,1.15,1.1,1.2,260,7000000,700000000,0,0.75,1,2\n",     /* 13 fields */
      "compound,abc,1.1,1.15,1.1,1.2,260,7000000,700000000,0,0.75,1\n",       /* not a number */
      "compound,1.2x,1.1,1.15,1.1,1.2,260,7000000,700000000,0,0.75,1\n",      /* trailing junk */
      "compound, 1.2,1.1,1.15,1.1,1.2,260,7000000,700000000,0,0.75,1\n",      /* blank */
      "compound,,1.1,1.15,1.1,1.2,260,7000000,700000000,0,0.75,1\n",          /* empty field */
      "compound,inf,1.1,1.15,1.1,1.2,260,7000000,700000000,0,0.75,1\n",       /* infinite */
      "compound,nan,1.1,1.15,1.1,1.2,260,7000000,700000000,0,0.75,1\n",       /* NaN */
      "compound,0x1p0,1.1,1.15,1.1,1.2,260,7000000,700000000,0,0.75,1\n",     /* hex */
      "compound,1e999,1.1,1.15,1.1,1.2,260,7000000,700000000,0,0.75,1\n",     /* overflow */
      "compound,0.5,1.1,1.15,1.1,1.2,260,7000000,700000000,0,0.75,1\n",       /* alpha < 1 */
      "compound,1.2,11,1.15,1.1,1.2,260,7000000,700000000,0,0.75,1\n",        /* beta > 10 */
      "compound,1.2,1.1,0.9,1.1,1.2,260,7000000,700000000,0,0.75,1\n",        /* gamma < 1 */
      "compound,1.2,1.1,1.15,0,1.2,260,7000000,700000000,0,0.75,1\n",         /* width 0 */
      "compound,1.2,1.1,1.15,1.1,100.5,260,7000000,700000000,0,0.75,1\n",     /* depth > 100 */
      "compound,1.2,1.1,1.15,1.1,1.2,0,7000000,700000000,0,0.75,1\n",         /* resolution 0 */
      "compound,1.2,1.1,1.15,1.1,1.2,8193,7000000,700000000,0,0.75,1\n",      /* resolution */
      "compound,1.2,1.1,1.15,1.1,1.2,260.5,7000000,700000000,0,0.75,1\n",     /* resolution */
      "compound,1.2,1.1,1.15,1.1,1.2,260,-1,700000000,0,0.75,1\n",            /* params < 0 */
      "compound,1.2,1.1,1.15,1.1,1.2,260,7000000,9223372036854775808,0,0.75,1\n", /* macs */
      "compound,1.2,1.1,1.15,1.1,1.2,260,7000000,700000000,-1,0.75,1\n",      /* seed < 0 */
      "compound,1.2,1.1,1.15,1.1,1.2,260,7000000,700000000,18446744073709551616,0.75,1\n",
      "compound,1.2,1.1,1.15,1.1,1.2,260,7000000,700000000,0,1.5,1\n",        /* accuracy */
      "compound,1.2,1.1,1.15,1.1,1.2,260,7000000,700000000,0,-0.1,1\n",       /* accuracy */
      "compound,1.2,1.1,1.15,1.1,1.2,260,7000000,700000000,0,0.75,-1\n",      /* seconds */
      "com pound,1.2,1.1,1.15,1.1,1.2,260,7000000,700000000,0,0.75,1\n",      /* mode */
      ",1.2,1.1,1.15,1.1,1.2,260,7000000,700000000,0,0.75,1\n",               /* empty mode */
      "abcdefghijabcdefghijabcdefghij12,1.2,1.1,1.15,1.1,1.2,260,7,7,0,0.75,1\n", /* 32 chars */
      "\n",                                                                     /* empty line */
      "compound,1.2,1.1,1.15,1.1,1.2,260,7000000,700000000,0,0.75,1\r\n",     /* CRLF */
  };
  char want[600];
  snprintf(want, sizeof want, "%s:3: ", in_dir("bad.csv"));
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    effnet_error err = {{0}};
    effnet_status st = read_with(bad[i], strlen(bad[i]), &err);
    CHECK_MSG(st == EFFNET_E_FORMAT, "case %zu: status %d", i, (int)st);
    CHECK_MSG(strstr(err.message, want) != NULL, "case %zu: '%s'", i, err.message);
  }
  effnet_error err = {{0}};
  static const char nul[] = "compound,1.2,1.1,1.15,1.1,1.2,260,7\0,700000000,0,0.75,1\n";
  CHECK_EQ_INT(read_with(nul, sizeof nul - 1, &err), EFFNET_E_FORMAT);
  CHECK(strstr(err.message, want) != NULL);
  /* the good line alone reads (so each failure above was the bad line's) */
  CHECK_EQ_INT(read_with("", 0, &err), EFFNET_OK);
}

static void test_header(void) {
  static const char *const files[] = {"", "mode,alpha\n", "Mode,alpha,beta,gamma\n",
                                      SEARCH_CSV_HEADER ",extra\n", "\n" SEARCH_CSV_HEADER "\n",
                                      SEARCH_CSV_HEADER "\r\n"};
  const char *path = in_dir("header.csv");
  char want[600];
  snprintf(want, sizeof want, "%s:1: ", path);
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    write_file(path, files[i], strlen(files[i]));
    search_row *rows = NULL;
    size_t count = 0;
    effnet_error err = {{0}};
    CHECK_EQ_INT(search_csv_read(path, &rows, &count, NULL, &err), EFFNET_E_FORMAT);
    CHECK_MSG(strstr(err.message, want) != NULL, "'%s'", err.message);
  }
  /* the header alone, with or without its line end: no rows */
  for (int nl = 0; nl < 2; nl++) {
    write_file(path, SEARCH_CSV_HEADER "\n", strlen(SEARCH_CSV_HEADER) + (size_t)nl);
    search_row *rows = NULL;
    size_t count = 9;
    effnet_error err = {{0}};
    CHECK_EQ_INT(search_csv_read(path, &rows, &count, NULL, &err), EFFNET_OK);
    CHECK_EQ_INT(count, 0);
    free(rows);
  }
  search_row *rows = NULL;
  size_t count = 0;
  effnet_error err = {{0}};
  CHECK_EQ_INT(search_csv_read(dir, &rows, &count, NULL, &err), EFFNET_E_IO); /* a folder */
}

static void test_torn(void) {
  const char *path = in_dir("torn.csv");
  char buf[512];
  int n = snprintf(buf, sizeof buf, "%s\n%scompound,1.3,1.1,1.", SEARCH_CSV_HEADER, good);
  write_file(path, buf, (size_t)n);
  search_row *rows = NULL;
  size_t count = 0;
  int torn = 0;
  effnet_error err = {{0}};
  CHECK_EQ_INT(search_csv_read(path, &rows, &count, &torn, &err), EFFNET_OK);
  CHECK_EQ_INT(count, 1);
  CHECK_EQ_INT(torn, 1);
  CHECK(count == 1 && rows[0].resolution == 260 && rows[0].seconds == 12.5);
  /* appending rewrites the file without the torn line */
  search_row r = sample(0);
  CHECK_EQ_INT(search_csv_append(path, rows, count, &r, &err), EFFNET_OK);
  free(rows);
  rows = NULL;
  CHECK_EQ_INT(search_csv_read(path, &rows, &count, &torn, &err), EFFNET_OK);
  CHECK_EQ_INT(count, 2);
  CHECK_EQ_INT(torn, 0);
  CHECK(count == 2 && rows_equal(&rows[1], &r));
  free(rows);
}

static void test_append_refusals(void) {
  const char *path = in_dir("refuse.csv");
  search_row ok = sample(0), bad = sample(1);
  effnet_error err = {{0}};
  CHECK_EQ_INT(search_csv_append(path, NULL, 0, &ok, &err), EFFNET_OK);
  char *before = read_text(path);
  bad.accuracy = NAN;
  CHECK_EQ_INT(search_csv_append(path, &ok, 1, &bad, &err), EFFNET_E_ARGUMENT);
  CHECK(strstr(err.message, "accuracy") != NULL);
  bad = sample(1);
  snprintf(bad.mode, sizeof bad.mode, "a,b");
  CHECK_EQ_INT(search_csv_append(path, &ok, 1, &bad, &err), EFFNET_E_ARGUMENT);
  char *after = read_text(path);
  CHECK(before && after && !strcmp(before, after)); /* a refused append changes nothing */
  free(before);
  free(after);
  /* a path under a regular file cannot be created, even by root */
  const char *blocked = in_dir("refuse.csv/results.csv");
  CHECK_EQ_INT(search_csv_append(blocked, NULL, 0, &ok, &err), EFFNET_E_IO);
  CHECK(strstr(err.message, blocked) != NULL);
  CHECK_EQ_INT(temp_files(), 0);
}

static void test_same_run(void) {
  search_row a = sample(0), b = a;
  CHECK(search_row_same_run(&a, &b));
  b.accuracy = 0.1, b.seconds = 99, b.params = 1, b.macs = 2; /* results, not identity */
  CHECK(search_row_same_run(&a, &b));
  b.alpha += 1e-12;
  CHECK(search_row_same_run(&a, &b));
  b = a, b.alpha += 1e-6;
  CHECK(!search_row_same_run(&a, &b));
  b = a, b.width += 1e-6;
  CHECK(!search_row_same_run(&a, &b));
  b = a, b.seed = 1;
  CHECK(!search_row_same_run(&a, &b));
  b = a, b.resolution++;
  CHECK(!search_row_same_run(&a, &b));
  b = a, snprintf(b.mode, sizeof b.mode, "width");
  CHECK(!search_row_same_run(&a, &b));
}

/* ------------------------------------------------------------------ plots */

static unsigned char *read_png(const char *path, int *w, int *h) {
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&img, path)) return NULL;
  CHECK_EQ_INT(img.format, PNG_FORMAT_RGB); /* 8-bit RGB as written, no alpha */
  img.format = PNG_FORMAT_RGB;
  unsigned char *buf = malloc(PNG_IMAGE_SIZE(img));
  if (!buf || !png_image_finish_read(&img, NULL, buf, 0, NULL)) {
    png_image_free(&img);
    free(buf);
    return NULL;
  }
  *w = (int)img.width;
  *h = (int)img.height;
  return buf;
}

static int count_pixels(const unsigned char *p, int w, int x0, int y0, int x1, int y1,
                        int dark) {
  int n = 0;
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++) {
      const unsigned char *q = p + ((size_t)y * w + x) * 3;
      n += dark ? q[0] < 100 && q[1] < 100 && q[2] < 100 : q[0] < 255 || q[1] < 255 || q[2] < 255;
    }
  return n;
}

static const double fx[3][5] = {{390, 700, 1000, 1800, 4000}, {390, 800, 1600, 3000, 0},
                                 {390, 450, 1100, 2300, 5000}};
static const double fy[3][5] = {{77.1, 78.9, 80.2, 81.0, 81.6}, {77.1, 78.5, 79.4, 80.1, 0},
                                 {77.1, 77.8, 79.6, 80.4, 81.3}};
static const double fe[5] = {0.3, 0.25, 0.4, 0.2, 0.35};

static plot_spec figure(plot_series *s, int marked) {
  s[0] = (plot_series){"width", fx[0], fy[0], fe, 5, 1};
  s[1] = (plot_series){"depth", fx[1], fy[1], NULL, 4, 1};
  s[2] = (plot_series){"compound", fx[2], fy[2], fe, 5, 0};
  plot_spec spec = {"Scaling up EfficientNet-B0: accuracy vs FLOPs",
                    "real multiply-adds (millions, log scale)", "top-1 accuracy (%)",
                    1, s, 3, marked ? 2 : -1, marked ? 2 : -1, 0, 0};
  return spec;
}

static void test_plot(void) {
  plot_series s[3];
  plot_spec spec = figure(s, 1);
  effnet_error err = {{0}};
  const char *path = in_dir("figure.png"), *plain = in_dir("plain.png");
  CHECK_EQ_INT(plot_png(path, &spec, &err), EFFNET_OK);
  spec = figure(s, 0);
  CHECK_EQ_INT(plot_png(plain, &spec, &err), EFFNET_OK);
  CHECK_EQ_INT(temp_files(), 0);
  int w = 0, h = 0, w2 = 0, h2 = 0;
  unsigned char *a = read_png(path, &w, &h), *b = read_png(plain, &w2, &h2);
  CHECK(a && b && w == 900 && h == 600 && w2 == 900 && h2 == 600);
  if (!a || !b || w != w2 || h != h2) {
    free(a);
    free(b);
    return;
  }
  CHECK(count_pixels(a, w, 0, 0, w, h, 0) > w * h / 50);      /* not all white */
  CHECK_EQ_INT(count_pixels(a, w, 0, 0, w, 8, 0), 0);        /* margin above the title */
  CHECK(count_pixels(a, w, w / 4, 10, 3 * w / 4, 32, 1) > 200); /* title text, dark */
  /* the marked point: the ring and "chosen" are the only difference, and it is compact */
  int x0 = w, y0 = h, x1 = -1, y1 = -1, dark = 0;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      size_t i = ((size_t)y * w + x) * 3;
      if (!memcmp(a + i, b + i, 3)) continue;
      x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1, y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
      dark += a[i] < 100 && a[i + 1] < 100 && a[i + 2] < 100;
    }
  CHECK(x1 >= 0 && x1 - x0 < 160 && y1 - y0 < 60);
  CHECK(dark > 50);
  CHECK(count_pixels(a, w, x0, y0, x1 + 1, y1 + 1, 0) > 100);
  free(a);
  free(b);
}

static void test_plot_edges(void) {
  effnet_error err = {{0}};
  plot_spec empty = {"empty", "x", "y", 0, NULL, 0, -1, -1, 0, 0};
  CHECK_EQ_INT(plot_png(in_dir("empty.png"), &empty, &err), EFFNET_OK);
  empty.log_x = 1;
  empty.title = NULL, empty.x_label = NULL, empty.y_label = NULL;
  CHECK_EQ_INT(plot_png(in_dir("empty_log.png"), &empty, &err), EFFNET_OK);
  int w = 0, h = 0;
  unsigned char *p = read_png(in_dir("empty.png"), &w, &h);
  CHECK(p && w == 900 && h == 600);
  if (p) CHECK(count_pixels(p, w, 0, 0, w, h, 1) > 100); /* axes, labels, "no data" */
  free(p);

  /* non-finite and non-positive x on a log axis are skipped; one point; a small image */
  double x[4] = {NAN, -5, 0, 300}, y[4] = {1, 2, INFINITY, 50}, e[4] = {NAN, -1, 1, INFINITY};
  plot_series s[9];
  for (int i = 0; i < 9; i++) s[i] = (plot_series){i % 2 ? "odd" : NULL, x, y, e, 4, i % 3 == 0};
  plot_spec odd = {"odd", "x", "y", 1, s, 9, 8, 3, 400, 300};
  CHECK_EQ_INT(plot_png(in_dir("odd.png"), &odd, &err), EFFNET_OK);
  p = read_png(in_dir("odd.png"), &w, &h);
  CHECK(p && w == 400 && h == 300);
  free(p);
  odd.log_x = 0, odd.width = 1600, odd.height = 1000;
  CHECK_EQ_INT(plot_png(in_dir("odd_linear.png"), &odd, &err), EFFNET_OK);

  odd.width = 50;
  CHECK_EQ_INT(plot_png(in_dir("small.png"), &odd, &err), EFFNET_E_ARGUMENT);
  odd.width = 0;
  s[1].x = NULL;
  CHECK_EQ_INT(plot_png(in_dir("null.png"), &odd, &err), EFFNET_E_ARGUMENT);

  plot_series sv[3];
  plot_spec spec = figure(sv, 1);
  const char *blocked = in_dir("figure.png/plot.png"); /* a regular file as the folder */
  CHECK_EQ_INT(plot_png(blocked, &spec, &err), EFFNET_E_IO);
  CHECK_MSG(strstr(err.message, blocked) != NULL, "'%s'", err.message);
  CHECK_EQ_INT(temp_files(), 0);
}

static void remove_dir(void) {
  DIR *d = opendir(dir);
  for (struct dirent *e; d && (e = readdir(d));)
    if (e->d_name[0] != '.') unlink(in_dir(e->d_name));
  if (d) closedir(d);
  rmdir(dir);
}

int main(void) {
  const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(dir, sizeof dir, "%s/effnet_search_XXXXXX", tmp);
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_round_trip();
  test_missing();
  test_malformed();
  test_header();
  test_torn();
  test_append_refusals();
  test_same_run();
  test_plot();
  test_plot_edges();
  if (getenv("TEST_SEARCH_KEEP")) printf("kept %s\n", dir);
  else remove_dir();
  return TEST_SUMMARY();
}
