/* Parity runner: for each row of DIR/manifest.tsv (written by tools/oracle/gen_parity.py),
 * load the weights through the public API, run the input, and compare the logits and every
 * stage activation with PyTorch's float64 answer. The error measure is
 * max|effnet - torch| / max|torch| per tensor; the tolerance is the manifest's (with the
 * reason in its note). The logits are checked twice: with the stage hook, and without it, on
 * the path every user's forward takes (a hook turns off the image lanes, the batch split and
 * the stem's fusion with the first depthwise conv). Usage: parity DIR [--reference] [--cases
 * a,b]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "effnet.h"

#define MAX_FIELDS 12

typedef struct row {
  char *field[MAX_FIELDS];
  int count;
} row;

typedef struct stage_check {
  const char *dir; /* the case's stages folder */
  double tol;
  double worst;
  char worst_name[32];
  int failures;
  int compared;
} stage_check;

static double rel_err(const float *got, const float *want, size_t n) {
  double diff = 0.0, scale = 1e-12;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - want[i]);
    if (!(d <= diff)) diff = d; /* NaN propagates */
    if (fabs(want[i]) > scale) scale = fabs(want[i]);
  }
  return diff / scale;
}

static void compare_stage(void *user, const char *name, const float *nhwc, int n, int h, int w,
                          int c) {
  stage_check *s = user;
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.npy", s->dir, name);
  effnet_tensor want = {0};
  effnet_error err;
  if (effnet_npy_read(path, &want, &err) != EFFNET_OK) return; /* stage not recorded */
  s->compared++;
  if (want.ndim != 4 || want.shape[0] != n || want.shape[1] != c || want.shape[2] != h ||
      want.shape[3] != w) {
    printf("    %s: shape mismatch\n", name);
    s->failures++;
    effnet_tensor_free(&want);
    return;
  }
  size_t hw = (size_t)h * w, count = (size_t)n * c * hw;
  float *got = malloc(count * sizeof *got);
  for (int b = 0; b < n; b++)
    for (size_t p = 0; p < hw; p++)
      for (int k = 0; k < c; k++) got[((size_t)b * c + k) * hw + p] = nhwc[((size_t)b * hw + p) * c + k];
  double e = rel_err(got, want.data, count);
  if (!(e <= s->tol)) {
    printf("    %s: rel err %.3g > tol %.3g\n", name, e, s->tol);
    s->failures++;
  }
  if (!(e <= s->worst)) {
    s->worst = e;
    snprintf(s->worst_name, sizeof s->worst_name, "%s", name);
  }
  free(got);
  effnet_tensor_free(&want);
}

static int split(char *line, row *r) {
  r->count = 0;
  for (char *tok = line; tok && r->count < MAX_FIELDS;) {
    r->field[r->count++] = tok;
    char *tab = strchr(tok, '\t');
    if (tab) *tab++ = 0;
    tok = tab;
  }
  return r->count;
}

/* Columns: case model padding eps weights input logits stages tol torch_f32_err note */
static int run_case(const char *dir, row *r, int reference) {
  char weights[4096], input[4096], logits[4096], stages[4096];
  if (r->field[4][0] == '/') snprintf(weights, sizeof weights, "%s", r->field[4]);
  else snprintf(weights, sizeof weights, "%s/%s", dir, r->field[4]);
  snprintf(input, sizeof input, "%s/%s", dir, r->field[5]);
  snprintf(logits, sizeof logits, "%s/%s", dir, r->field[6]);
  snprintf(stages, sizeof stages, "%s/%s", dir, r->field[7]);
  effnet_load_options opt = {0};
  if (strcmp(r->field[1], "-")) opt.model = r->field[1];
  if (!strcmp(r->field[2], "same")) opt.padding = EFFNET_PAD_TF_SAME;
  if (!strcmp(r->field[2], "symmetric")) opt.padding = EFFNET_PAD_SYMMETRIC;
  opt.bn_eps = (float)atof(r->field[3]);
  double tol = atof(r->field[8]);
  effnet_error err = {{0}};
  effnet_model *m = NULL;
  effnet_tensor x = {0}, want = {0};
  int ok = 0;
  if (effnet_model_load(&m, weights, &opt, &err) != EFFNET_OK ||
      effnet_npy_read(input, &x, &err) != EFFNET_OK ||
      effnet_npy_read(logits, &want, &err) != EFFNET_OK) {
    printf("FAIL %s: %s\n", r->field[0], err.message);
    goto done;
  }
  int n = (int)x.shape[0], h = (int)x.shape[2], w = (int)x.shape[3];
  size_t count = (size_t)want.shape[0] * want.shape[1];
  float *got = malloc(count * sizeof *got);
  stage_check sc = {stages, tol, 0.0, "-", 0, 0};
  effnet_model_use_reference(m, reference);
  effnet_model_set_feature_hook(m, compare_stage, &sc);
  if (x.ndim != 4 || want.ndim != 2 || want.shape[0] != n ||
      want.shape[1] != effnet_model_spec(m)->num_classes) {
    printf("FAIL %s: fixture shapes do not fit the model\n", r->field[0]);
  } else if (effnet_model_forward(m, x.data, n, h, w, got) != EFFNET_OK) {
    printf("FAIL %s: %s\n", r->field[0], effnet_model_error(m));
  } else {
    double e = rel_err(got, want.data, count), plain = NAN;
    effnet_model_set_feature_hook(m, NULL, NULL);
    if (effnet_model_forward(m, x.data, n, h, w, got) == EFFNET_OK)
      plain = rel_err(got, want.data, count);
    ok = e <= tol && plain <= tol && sc.failures == 0 && sc.compared > 0;
    printf("%s %s [%s, %s kernels]: logits rel err %.2e, no hook %.2e (tol %.0e; torch float32 "
           "%s), %d stages, worst %s %.2e\n", ok ? "ok  " : "FAIL", r->field[0],
           effnet_model_spec(m)->name, reference ? "reference" : "fast", e, plain, tol,
           r->field[9], sc.compared, sc.worst_name, sc.worst);
  }
  free(got);
done:
  effnet_model_free(m);
  effnet_tensor_free(&x);
  effnet_tensor_free(&want);
  return ok;
}

static int selected(const char *cases, const char *name) {
  if (!cases) return 1;
  size_t n = strlen(name);
  for (const char *p = cases; (p = strstr(p, name)); p += n)
    if ((p == cases || p[-1] == ',') && (p[n] == ',' || p[n] == 0)) return 1;
  return 0;
}

/* parity --compare GOT.npy WANT.npy TOL: exit 0 when the relative error is within TOL. */
static int compare_files(const char *got_path, const char *want_path, double tol) {
  effnet_tensor got = {0}, want = {0};
  effnet_error err;
  int ok = 0;
  if (effnet_npy_read(got_path, &got, &err) != EFFNET_OK ||
      effnet_npy_read(want_path, &want, &err) != EFFNET_OK) {
    fprintf(stderr, "compare: %s\n", err.message);
  } else {
    size_t n = 1, m = 1;
    for (int i = 0; i < got.ndim; i++) n *= (size_t)got.shape[i];
    for (int i = 0; i < want.ndim; i++) m *= (size_t)want.shape[i];
    double e = n == m && got.ndim == want.ndim ? rel_err(got.data, want.data, n) : INFINITY;
    printf("compare %s vs %s: rel err %.3g (tol %.3g)\n", got_path, want_path, e, tol);
    ok = e <= tol;
  }
  effnet_tensor_free(&got);
  effnet_tensor_free(&want);
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc == 5 && !strcmp(argv[1], "--compare")) return compare_files(argv[2], argv[3], atof(argv[4]));
  if (argc < 2) {
    fprintf(stderr, "usage: parity DIR [--reference] [--cases a,b]\n");
    return 2;
  }
  const char *dir = argv[1], *cases = NULL;
  int reference = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--reference")) reference = 1;
    else if (!strcmp(argv[i], "--cases") && i + 1 < argc) cases = argv[++i];
  }
  char path[4096], line[8192];
  snprintf(path, sizeof path, "%s/manifest.tsv", dir);
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "parity: cannot open %s\n", path);
    return 2;
  }
  int passed = 0, failed = 0, first = 1;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = 0;
    row r;
    if (first || !*line || line[0] == '#') {
      first = 0;
      continue;
    }
    if (split(line, &r) < 10) {
      printf("FAIL malformed manifest line: %s\n", line);
      failed++;
      continue;
    }
    if (!selected(cases, r.field[0])) continue;
    if (run_case(dir, &r, reference)) passed++;
    else failed++;
  }
  fclose(f);
  printf("%d passed, %d failed\n", passed, failed);
  return failed || !passed;
}
