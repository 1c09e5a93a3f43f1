/* Training parity against PyTorch autograd (fixtures of tools/oracle/gen_train_parity.py): one
 * step's loss, logits, every parameter gradient and the BN running statistics, with effnet's
 * dropout and stochastic-depth masks applied on both sides; then three steps of each optimizer
 * (losses and final weights). Tolerances come from each case's case.json, with the reason.
 *
 *   test_train [FIXTURE_DIR...]   default tests/fixtures/train (every subfolder with case.json) */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "io/iofile.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "testutil.h"
#include "train/graph.h"
#include "train/optim.h"

typedef struct tcase {
  char dir[1024];
  json_doc *doc;
  const json_value *root;
  st_file *expected;
} tcase;

static double num(const json_value *obj, const char *key) {
  const json_value *v = json_get(obj, key);
  return v && v->type == JSON_NUMBER ? v->number : 0.0;
}

/* max |a - b| / max(max |b|, floor): relative to the tensor's own scale, as the parity tests
 * do. The floor matters for gradients that are zero in exact arithmetic: the bias of a BN
 * whose output feeds a conv and another training-mode BN (a per-channel shift that the next
 * BN's mean subtraction removes); their float values are rounding noise of the other terms. */
static double rel_err_floor(const float *a, const float *b, int64_t n, double floor) {
  double diff = 0.0, scale = floor > 1e-12 ? floor : 1e-12;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]);
    if (d > diff || d != d) diff = d != d ? INFINITY : d;
    if (fabs(b[i]) > scale) scale = fabs(b[i]);
  }
  return diff / scale;
}

static double rel_err(const float *a, const float *b, int64_t n) {
  return rel_err_floor(a, b, n, 0.0);
}

static float *tensor(const tcase *c, const char *name, int64_t expect_numel) {
  const st_tensor *t = st_find(c->expected, name);
  CHECK_MSG(t != NULL, "%s: tensor %s missing", c->dir, name);
  if (!t) return NULL;
  CHECK_MSG(expect_numel < 0 || t->numel == expect_numel, "%s: %s has %lld values, want %lld",
            c->dir, name, (long long)t->numel, (long long)expect_numel);
  float *v = malloc((size_t)t->numel * sizeof *v);
  effnet_error err;
  if (st_to_f32(t, v, &err) != EFFNET_OK) {
    free(v);
    return NULL;
  }
  return v;
}

static int open_case(tcase *c, const char *dir) {
  memset(c, 0, sizeof *c);
  snprintf(c->dir, sizeof c->dir, "%.1000s", dir);
  char path[1200];
  effnet_error err;
  snprintf(path, sizeof path, "%.1000s/case.json", dir);
  io_map m;
  if (io_map_file(&m, path, &err) != EFFNET_OK) {
    CHECK_MSG(0, "%s", err.message);
    return 0;
  }
  effnet_status st = json_parse(&c->doc, m.data, m.len, NULL, path, &err);
  io_unmap(&m);
  CHECK_MSG(st == EFFNET_OK, "%s", err.message);
  if (st != EFFNET_OK) return 0;
  c->root = json_root(c->doc);
  snprintf(path, sizeof path, "%.1000s/expected.safetensors", dir);
  st = st_open(&c->expected, path, &err);
  CHECK_MSG(st == EFFNET_OK, "%s", err.message);
  return st == EFFNET_OK;
}

static void close_case(tcase *c) {
  json_free(c->doc);
  st_close(c->expected);
}

static effnet_model *load_model(const tcase *c) {
  char path[1200];
  snprintf(path, sizeof path, "%s/weights.safetensors", c->dir);
  effnet_load_options o = {0};
  const json_value *pad = json_get(c->root, "padding");
  o.padding = pad && pad->type == JSON_STRING && strcmp(pad->str, "same") == 0
                  ? EFFNET_PAD_TF_SAME : EFFNET_PAD_SYMMETRIC;
  o.bn_eps = (float)num(c->root, "eps");
  effnet_model *m = NULL;
  effnet_error err;
  effnet_status st = effnet_model_load(&m, path, &o, &err);
  CHECK_MSG(st == EFFNET_OK, "%s", err.message);
  return m;
}

typedef struct batch {
  float *images;
  int *labels;
  int n, h, w;
} batch;

static int load_batch(const tcase *c, batch *b) {
  b->n = (int)num(c->root, "n");
  b->h = (int)num(c->root, "h");
  b->w = (int)num(c->root, "w");
  b->images = tensor(c, "input", (int64_t)b->n * b->h * b->w * 3);
  float *lab = tensor(c, "labels", b->n);
  b->labels = malloc((size_t)b->n * sizeof *b->labels);
  if (!b->images || !lab) {
    free(lab);
    return 0;
  }
  for (int i = 0; i < b->n; i++) b->labels[i] = (int)lab[i];
  free(lab);
  return 1;
}

/* Largest magnitude over the fixture tensors named prefix + timm name of the model's entries. */
static double fixture_scale(const tcase *c, const effnet_model *m, const char *prefix) {
  double scale = 0.0;
  for (int i = 0; i < m->params.count; i++) {
    char name[256], key[300];
    en_param_name(&m->arch, &m->params.table[i], EN_NAMING_TIMM, name, sizeof name);
    snprintf(key, sizeof key, "%s%s", prefix, name);
    const st_tensor *t = st_find(c->expected, key);
    float *v = t ? tensor(c, key, -1) : NULL;
    for (int64_t k = 0; v && k < t->numel; k++)
      if (fabs(v[k]) > scale) scale = fabs(v[k]);
    free(v);
  }
  return scale;
}

/* Compare every table entry with a fixture tensor named prefix + timm name; errors are
 * relative to each tensor's scale, floored at floor_frac of the largest over all of them. */
static int listed(const json_value *list, const char *name) {
  for (const json_value *v = list->child; v; v = v->next)
    if (v->type == JSON_STRING && !strcmp(v->str, name)) return 1;
  return 0;
}

static double compare_params(const tcase *c, const effnet_model *m, const float *block,
                             const char *prefix, int trainable, double tol, double floor_frac,
                             const json_value *skip) {
  double worst = 0.0, floor = floor_frac > 0 ? floor_frac * fixture_scale(c, m, prefix) : 0.0;
  for (int i = 0; i < m->params.count; i++) {
    const en_param *e = &m->params.table[i];
    if (e->trainable != trainable) continue;
    char name[256], key[300];
    en_param_name(&m->arch, e, EN_NAMING_TIMM, name, sizeof name);
    if (skip && listed(skip, name)) continue;
    snprintf(key, sizeof key, "%s%s", prefix, name);
    float *want = tensor(c, key, e->numel);
    if (!want) continue;
    double r = rel_err_floor(block + e->offset, want, e->numel, floor);
    CHECK_MSG(r <= tol, "%s: %s relative error %.3g > %.3g", c->dir, key, r, tol);
    if (r > worst) worst = r;
    free(want);
  }
  return worst;
}

static en_train_flags case_flags(const tcase *c) {
  en_train_flags f;
  f.dropout = (float)num(c->root, "dropout");
  f.drop_path = (float)num(c->root, "drop_path");
  f.bn_momentum = (float)num(c->root, "bn_momentum");
  f.label_smoothing = (float)num(c->root, "label_smoothing");
  return f;
}

static void check_step(const tcase *c, const json_value *tol) {
  effnet_model *m = load_model(c);
  batch b = {0};
  if (!m || !load_batch(c, &b)) goto done;
  en_tgraph g;
  effnet_error err;
  CHECK_MSG(en_tgraph_init(&g, &m->arch, &m->params, b.n, b.h, b.w, (size_t)1 << 32, &err) ==
                EFFNET_OK, "%s", err.message);
  en_train_flags f = case_flags(c);
  double loss = en_tgraph_step(&g, &m->params, b.images, b.labels, b.n, &f,
                               (uint64_t)num(c->root, "seed"), (int64_t)num(c->root, "step"));
  float *want_loss = tensor(c, "loss", 1), *want_logits = tensor(c, "logits", -1);
  if (want_loss) {
    double r = fabs(loss - want_loss[0]) / fabs(want_loss[0]);
    CHECK_MSG(r <= num(tol, "loss"), "%s: loss %.8g vs %.8g", c->dir, loss, want_loss[0]);
    printf("%s: loss %.7f (torch %.7f, rel %.2g)\n", c->dir, loss, want_loss[0], r);
  }
  if (want_logits) {
    double r = rel_err(g.logits, want_logits, (int64_t)b.n * m->arch.num_classes);
    CHECK_MSG(r <= num(tol, "logits"), "%s: logits rel %.3g", c->dir, r);
  }
  double f32 = num(c->root, "torch_f32_grad_err");
  double bound = 10 * f32 > num(tol, "grad") ? 10 * f32 : num(tol, "grad");
  double gw = compare_params(c, m, g.grad, "grad.", 1, bound,
                             num(tol, "grad_floor"), NULL);
  double rw = compare_params(c, m, m->params.data, "running.", 0, num(tol, "running"), 0.0, NULL);
  printf("%s: worst gradient rel error %.3g (bound %.3g; torch float32 %.3g), running "
         "statistics %.3g\n", c->dir, gw, bound, f32, rw);
  free(want_loss);
  free(want_logits);
  en_tgraph_free(&g);
done:
  free(b.images);
  free(b.labels);
  effnet_model_free(m);
}

static void check_optimizer(const tcase *c, const json_value *spec, const json_value *tol) {
  const json_value *kind = json_get(spec, "kind"), *lrs = json_get(spec, "lrs");
  en_optim_config cfg;
  if (!kind || !lrs || !en_optim_parse(kind->str, &cfg)) {
    CHECK_MSG(0, "%s: bad optimizer entry", c->dir);
    return;
  }
  if (json_get(spec, "momentum")) cfg.momentum = (float)num(spec, "momentum");
  if (json_get(spec, "rms_decay")) cfg.rms_decay = (float)num(spec, "rms_decay");
  if (json_get(spec, "eps")) cfg.eps = (float)num(spec, "eps");
  if (json_get(spec, "beta1")) cfg.beta1 = (float)num(spec, "beta1");
  if (json_get(spec, "beta2")) cfg.beta2 = (float)num(spec, "beta2");
  cfg.weight_decay = (float)num(spec, "weight_decay");
  effnet_model *m = load_model(c);
  batch b = {0};
  en_tgraph g;
  en_optim opt;
  effnet_error err;
  memset(&g, 0, sizeof g);
  memset(&opt, 0, sizeof opt);
  if (!m || !load_batch(c, &b) ||
      en_tgraph_init(&g, &m->arch, &m->params, b.n, b.h, b.w, (size_t)1 << 32, &err) ||
      en_optim_init(&opt, &cfg, m->params.total, &err)) {
    CHECK_MSG(0, "%s: optimizer setup failed", c->dir);
    goto done;
  }
  en_train_flags f = case_flags(c);
  f.dropout = f.drop_path = 0.0f;
  char key[128];
  snprintf(key, sizeof key, "%s.losses", kind->str);
  float *want = tensor(c, key, (int64_t)lrs->count);
  /* bounds: 10x torch's own float32 error on the same steps, at least the case's tolerance */
  double f32l = num(json_get(c->root, "torch_f32_loss_err"), kind->str);
  double loss_bound = 10 * f32l > num(tol, "steps_loss") ? 10 * f32l : num(tol, "steps_loss");
  for (size_t t = 0; want && t < lrs->count; t++) {
    double loss = en_tgraph_step(&g, &m->params, b.images, b.labels, b.n, &f, 0, (int64_t)t);
    en_optim_step(&opt, &m->params, g.grad, (float)json_at(lrs, t)->number);
    double r = fabs(loss - want[t]) / fabs(want[t]);
    CHECK_MSG(r <= loss_bound, "%s: %s step %zu loss %.8g vs %.8g (bound %.2g)", c->dir,
              kind->str, t, loss, want[t], loss_bound);
  }
  snprintf(key, sizeof key, "%s.final.", kind->str);
  double f32 = num(json_get(c->root, "torch_f32_final_err"), kind->str);
  double bound = 10 * f32 > num(tol, "final") ? 10 * f32 : num(tol, "final");
  double w = compare_params(c, m, m->params.data, key, 1, bound, 0.0,
                            json_get(c->root, "null_gradients"));
  printf("%s: %s, %zu steps: worst weight rel error %.3g (bound %.3g; torch float32 %.3g)\n",
         c->dir, kind->str, lrs->count, w, bound, f32);
  free(want);
done:
  en_optim_free(&opt);
  en_tgraph_free(&g);
  free(b.images);
  free(b.labels);
  effnet_model_free(m);
}

static void run_case(const char *dir) {
  tcase c;
  if (!open_case(&c, dir)) {
    close_case(&c);
    return;
  }
  const json_value *tol = json_get(c.root, "tolerance");
  check_step(&c, tol);
  const json_value *opts = json_get(c.root, "optimizers");
  for (size_t i = 0; opts && i < opts->count; i++) check_optimizer(&c, json_at(opts, i), tol);
  close_case(&c);
}

static int run_dir(const char *root) {
  DIR *d = opendir(root);
  CHECK_MSG(d != NULL, "cannot open fixture folder %s", root);
  if (!d) return 0;
  int cases = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    char path[1200];
    if (e->d_name[0] == '.') continue;
    if (strlen(root) + strlen(e->d_name) > 900) continue;
    snprintf(path, sizeof path, "%s/%s/case.json", root, e->d_name);
    if (access(path, R_OK) != 0) continue;
    snprintf(path, sizeof path, "%s/%s", root, e->d_name);
    run_case(path);
    cases++;
  }
  closedir(d);
  CHECK_MSG(cases > 0, "no training fixtures in %s", root);
  return cases;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    run_dir("tests/fixtures/train");
  } else {
    for (int i = 1; i < argc; i++) run_dir(argv[i]);
  }
  return TEST_SUMMARY();
}
