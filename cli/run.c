/* effnet run: logits for a float32 NCHW .npy tensor, for parity checks and Python users. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct stage_dump {
  const char *dir;
  int failed;
  effnet_error err;
} stage_dump;

/* Feature hook: write each stage as NCHW .npy, the layout PyTorch users compare with. */
static void dump_stage(void *user, const char *name, const float *nhwc, int n, int h, int w,
                       int c) {
  stage_dump *d = user;
  if (d->failed) return;
  size_t hw = (size_t)h * w, count = (size_t)n * hw * c;
  effnet_tensor t = {4, {n, c, h, w}, malloc(count * sizeof(float))};
  if (!t.data) {
    d->failed = 1;
    snprintf(d->err.message, sizeof d->err.message, "out of memory dumping %s", name);
    return;
  }
  for (int b = 0; b < n; b++)
    for (size_t p = 0; p < hw; p++)
      for (int k = 0; k < c; k++)
        t.data[((size_t)b * c + k) * hw + p] = nhwc[((size_t)b * hw + p) * c + k];
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.npy", d->dir, name);
  if (effnet_npy_write(path, &t, &d->err) != EFFNET_OK) d->failed = 1;
  effnet_tensor_free(&t);
}

typedef struct run_args {
  const char *model, *weights, *input, *output, *threads, *padding, *eps, *dump;
  int reference;
} run_args;

static int parse_run_args(int argc, char **argv, run_args *a) {
  struct { const char *name; const char **slot; } opts[] = {
      {"--model", &a->model},     {"--weights", &a->weights}, {"--input", &a->input},
      {"--output", &a->output},   {"--threads", &a->threads}, {"--padding", &a->padding},
      {"--bn-eps", &a->eps},      {"--dump-stages", &a->dump},
  };
  for (int i = 0; i < argc; i++) {
    int r = 0;
    for (size_t k = 0; k < sizeof opts / sizeof opts[0] && !r; k++)
      r = cli_value(argc, argv, &i, opts[k].name, opts[k].slot);
    if (r < 0) return 2;
    if (r) continue;
    if (cli_flag(argv[i], "--reference")) {
      a->reference = 1;
      continue;
    }
    fprintf(stderr, "effnet run: unknown argument '%s'\n", argv[i]);
    return 2;
  }
  if (!a->weights || !a->input || !a->output) {
    fprintf(stderr, "usage: effnet run --weights FILE --input X.npy --output Y.npy "
                    "[--model NAME] [--threads T] [--padding same|symmetric] [--bn-eps E] "
                    "[--dump-stages DIR] [--reference]\n");
    return 2;
  }
  return 0;
}

static int load_options(const run_args *a, effnet_load_options *o) {
  memset(o, 0, sizeof *o);
  o->model = a->model;
  if (a->padding) {
    if (!strcmp(a->padding, "same")) o->padding = EFFNET_PAD_TF_SAME;
    else if (!strcmp(a->padding, "symmetric")) o->padding = EFFNET_PAD_SYMMETRIC;
    else {
      fprintf(stderr, "effnet run: --padding must be 'same' or 'symmetric'\n");
      return 2;
    }
  }
  double eps;
  if (a->eps) {
    if (!cli_double(a->eps, 1e-12, 0.5, &eps)) {
      fprintf(stderr, "effnet run: invalid --bn-eps '%s'\n", a->eps);
      return 2;
    }
    o->bn_eps = (float)eps;
  }
  return 0;
}

/* Accepts (N, 3, H, W) or a single (3, H, W) image. */
static int input_dims(const effnet_tensor *x, const char *path, int *n, int *h, int *w) {
  int r4 = x->ndim == 4;
  if ((x->ndim != 3 && !r4) || x->shape[r4] != 3 || x->shape[r4 + 1] < 1 ||
      x->shape[r4 + 2] < 1 || x->shape[r4 + 1] > 16384 || x->shape[r4 + 2] > 16384 ||
      (r4 && (x->shape[0] < 1 || x->shape[0] > 65536))) {
    fprintf(stderr, "effnet run: %s: expected a float32 array of shape (N, 3, H, W), got rank %d"
                    " (", path, x->ndim);
    for (int i = 0; i < x->ndim; i++) fprintf(stderr, "%s%lld", i ? ", " : "", (long long)x->shape[i]);
    fprintf(stderr, ")\n");
    return 1;
  }
  *n = r4 ? (int)x->shape[0] : 1;
  *h = (int)x->shape[r4 + 1];
  *w = (int)x->shape[r4 + 2];
  return 0;
}

static int forward_and_write(effnet_model *m, const run_args *a, const effnet_tensor *x, int n,
                             int h, int w) {
  int classes = effnet_model_spec(m)->num_classes;
  effnet_tensor y = {2, {n, classes}, malloc((size_t)n * classes * sizeof(float))};
  stage_dump dump = {a->dump, 0, {{0}}};
  effnet_error err = {{0}};
  if (!y.data) {
    fprintf(stderr, "effnet run: out of memory\n");
    return 1;
  }
  if (a->dump) effnet_model_set_feature_hook(m, dump_stage, &dump);
  int rc = 0;
  if (effnet_model_forward(m, x->data, n, h, w, y.data) != EFFNET_OK) {
    fprintf(stderr, "effnet run: %s\n", effnet_model_error(m));
    rc = 1;
  } else if (dump.failed) {
    fprintf(stderr, "effnet run: %s\n", dump.err.message);
    rc = 1;
  } else if (effnet_npy_write(a->output, &y, &err) != EFFNET_OK) {
    fprintf(stderr, "effnet run: %s\n", err.message);
    rc = 1;
  }
  effnet_tensor_free(&y);
  return rc;
}

int cli_run(int argc, char **argv) {
  run_args a = {0};
  effnet_load_options opt;
  int rc = parse_run_args(argc, argv, &a);
  if (!rc) rc = load_options(&a, &opt);
  if (rc) return rc;
  long threads = 0;
  if (a.threads && !cli_int(a.threads, 1, 1024, &threads)) {
    fprintf(stderr, "effnet run: invalid --threads '%s'\n", a.threads);
    return 2;
  }
  effnet_error err = {{0}};
  effnet_tensor x = {0};
  if (effnet_npy_read(a.input, &x, &err) != EFFNET_OK) {
    fprintf(stderr, "effnet run: %s\n", err.message);
    return 1;
  }
  int n, h, w;
  if (input_dims(&x, a.input, &n, &h, &w)) {
    effnet_tensor_free(&x);
    return 1;
  }
  effnet_model *m = NULL;
  if (effnet_model_load(&m, a.weights, &opt, &err) != EFFNET_OK) {
    fprintf(stderr, "effnet run: %s\n", err.message);
    effnet_tensor_free(&x);
    return 1;
  }
  effnet_model_set_threads(m, (int)threads);
  effnet_model_use_reference(m, a.reference);
  rc = forward_and_write(m, &a, &x, n, h, w);
  effnet_model_free(m);
  effnet_tensor_free(&x);
  return rc;
}
