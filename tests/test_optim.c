/* Optimizers, schedules and EMA against tests/fixtures/optim/optim.safetensors, written by
 * tools/oracle/gen_optim_fixtures.py from timm's RMSpropTF and torch's SGD / AdamW (float32,
 * 5 steps, a new lr every step); plus: non-trainable entries and table padding untouched,
 * results independent of the thread count, configuration parsing and validation.
 * A missing or malformed fixture is a failure, not a skip. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "train/optim.h"
#include "testutil.h"

#define FIXTURE "tests/fixtures/optim/optim.safetensors"
#define STEPS 5
#define FLAT 160 /* floats of the fixture's parameter set, unpadded */

/* Tolerance on max|effnet - torch| / max|torch| per tensor and step. Both sides run the same
 * float32 operations in the same order; they differ where torch's vectorised kernels fuse a
 * multiply-add (one rounding instead of two) and in hyperparameters, which PyTorch keeps as
 * Python doubles (1 - 0.9 = 0.1) and en_optim_config as floats (1 - 0.9f = 0.100000024): a few
 * float32 ulps (1.2e-7 each) per step, compounded over 5 steps through the momentum buffers.
 * 2e-6 leaves room for that and is still 10x below what a wrong rule costs: the MUTANT checks
 * below show that dropping weight decay or moving RMSProp's eps misses by far more. */
#define TOL 2e-6
#define MUTANT_MIN 20 * TOL

static const char *LAYOUT =
    "conv.weight:4x3x3x3:1;bn.weight:4:1;bn.bias:4:1;bn.running_mean:4:0;fc.weight:5x7:1;"
    "fc.bias:5:1";

static st_file *fx;
static effnet_error err;

/* ---------------------------------------------------------------- fixture access */

/* The tensor as float32 (malloc'ed), or NULL after recording a failure. */
static float *tensor(const char *name, int64_t numel) {
  const st_tensor *t = st_find(fx, name);
  CHECK_MSG(t != NULL, "%s: tensor %s missing", FIXTURE, name);
  if (!t) return NULL;
  CHECK_MSG(t->numel == numel, "%s: %s has %lld elements, expected %lld", FIXTURE, name,
            (long long)t->numel, (long long)numel);
  if (t->numel != numel) return NULL;
  float *out = malloc((size_t)numel * sizeof(float));
  if (st_to_f32(t, out, &err) != EFFNET_OK) {
    CHECK_MSG(0, "%s", err.message);
    free(out);
    return NULL;
  }
  return out;
}

/* Metadata value as a double; records a failure when absent. */
static int meta_num(const char *key, double *out) {
  const char *v = st_metadata(fx, key);
  CHECK_MSG(v != NULL, "%s: metadata %s missing", FIXTURE, key);
  if (!v) return 0;
  char *end;
  *out = strtod(v, &end);
  CHECK_MSG(end != v && *end == 0, "%s: metadata %s = '%s' is not a number", FIXTURE, key, v);
  return end != v && *end == 0;
}

/* ---------------------------------------------------------------- parameter block */

/* A hand-made table in en_params_build's layout (64-byte aligned offsets, zero padding). */
static void build_params(en_params *p) {
  static const struct { en_role role; en_field field; int ndim, s0, s1, s2, s3, trainable; }
  L[] = {{EN_R_STEM_CONV, EN_F_WEIGHT, 4, 4, 3, 3, 3, 1}, {EN_R_STEM_BN, EN_F_WEIGHT, 1, 4, 0, 0, 0, 1},
         {EN_R_STEM_BN, EN_F_BIAS, 1, 4, 0, 0, 0, 1},     {EN_R_STEM_BN, EN_F_MEAN, 1, 4, 0, 0, 0, 0},
         {EN_R_FC, EN_F_WEIGHT, 2, 5, 7, 0, 0, 1},        {EN_R_FC, EN_F_BIAS, 1, 5, 0, 0, 0, 1}};
  memset(p, 0, sizeof *p);
  p->count = 6;
  p->table = calloc(6, sizeof *p->table);
  for (int i = 0; i < 6; i++) {
    en_param *e = &p->table[i];
    e->role = L[i].role;
    e->field = L[i].field;
    e->block = -1;
    e->ndim = L[i].ndim;
    int s[4] = {L[i].s0, L[i].s1, L[i].s2, L[i].s3};
    e->numel = 1;
    for (int d = 0; d < e->ndim; d++) e->numel *= (e->shape[d] = s[d]);
    e->offset = p->total;
    e->trainable = L[i].trainable;
    p->total += (e->numel + 15) / 16 * 16;
  }
  p->data = aligned_alloc(64, (size_t)p->total * sizeof(float));
  memset(p->data, 0, (size_t)p->total * sizeof(float));
}

/* flat (unpadded, table order) -> padded block; padding is set to `pad` */
static void scatter(const en_params *p, float *dst, const float *flat, float pad) {
  for (int64_t i = 0; i < p->total; i++) dst[i] = pad;
  int64_t off = 0;
  for (int k = 0; k < p->count; k++) {
    memcpy(dst + p->table[k].offset, flat + off, (size_t)p->table[k].numel * sizeof(float));
    off += p->table[k].numel;
  }
}

static int padding_is_zero(const en_params *p) {
  int64_t next = 0;
  for (int k = 0; k <= p->count; k++) {
    int64_t end = k < p->count ? p->table[k].offset : p->total;
    for (int64_t i = next; i < end; i++) {
      uint32_t bits;
      memcpy(&bits, &p->data[i], 4);
      if (bits != 0) return 0;
    }
    if (k < p->count) next = p->table[k].offset + p->table[k].numel;
  }
  return 1;
}

/* ---------------------------------------------------------------- optimizer runs */

static int config_from_meta(const char *run, en_optim_config *cfg) {
  char key[128];
  snprintf(key, sizeof key, "run.%s.kind", run);
  const char *kind = st_metadata(fx, key);
  CHECK_MSG(kind != NULL, "%s: metadata %s missing", FIXTURE, key);
  if (!kind) return 0;
  CHECK_MSG(en_optim_parse(kind, cfg), "%s: unknown kind %s", key, kind);
  static const char *fields[] = {"momentum", "nesterov", "weight_decay", "rms_decay", "eps",
                                 "beta1", "beta2"};
  for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
    snprintf(key, sizeof key, "run.%s.%s", run, fields[i]);
    const char *v = st_metadata(fx, key);
    if (!v) continue; /* a field the kind does not use */
    double x;
    if (!meta_num(key, &x)) return 0;
    switch (i) {
      case 0: cfg->momentum = (float)x; break;
      case 1: cfg->nesterov = (int)x; break;
      case 2: cfg->weight_decay = (float)x; break;
      case 3: cfg->rms_decay = (float)x; break;
      case 4: cfg->eps = (float)x; break;
      case 5: cfg->beta1 = (float)x; break;
      default: cfg->beta2 = (float)x; break;
    }
  }
  return 1;
}

/* Runs cfg over the fixture's 5 steps; returns the worst per-tensor relative error against
 * `expect` (STEPS x FLAT) and checks the untouched parts (non-trainable entry, padding). */
static double run_steps(const en_optim_config *cfg, const float *init, const float *grads,
                        const float *lrs, const float *expect, const char *label) {
  en_params p;
  build_params(&p);
  scatter(&p, p.data, init, 0.0f);
  float *g = aligned_alloc(64, (size_t)p.total * sizeof(float));
  float *want = malloc((size_t)p.total * sizeof(float));
  float *init_padded = malloc((size_t)p.total * sizeof(float));
  scatter(&p, init_padded, init, 0.0f);
  en_optim opt;
  effnet_status st = en_optim_init(&opt, cfg, p.total, &err);
  CHECK_MSG(st == EFFNET_OK, "%s: %s", label, err.message);
  double worst = 0;
  if (st == EFFNET_OK) {
    for (int s = 0; s < STEPS; s++) {
      /* NaN in the padding: a step that strays outside the entries poisons the result */
      scatter(&p, g, grads + (size_t)s * FLAT, NAN);
      en_optim_step(&opt, &p, g, lrs[s]);
      scatter(&p, want, expect + (size_t)s * FLAT, 0.0f);
      for (int k = 0; k < p.count; k++) {
        const en_param *e = &p.table[k];
        const float *a = p.data + e->offset, *b = want + e->offset;
        if (!e->trainable) {
          CHECK_MSG(!memcmp(a, init_padded + e->offset, (size_t)e->numel * sizeof(float)),
                    "%s step %d: non-trainable entry %d changed", label, s + 1, k);
          continue;
        }
        double num = 0, den = 0;
        for (int64_t i = 0; i < e->numel; i++) {
          double d = fabs((double)a[i] - (double)b[i]);
          if (!(d <= num)) num = d; /* NaN propagates */
          if (fabs((double)b[i]) > den) den = fabs((double)b[i]);
        }
        double rel = num / (den > 0 ? den : 1);
        if (!(rel <= worst)) worst = rel;
      }
      CHECK_MSG(padding_is_zero(&p), "%s step %d: padding written", label, s + 1);
    }
    CHECK_EQ_INT(opt.steps, STEPS);
  }
  en_optim_free(&opt);
  free(init_padded);
  free(want);
  free(g);
  en_params_free(&p);
  return worst;
}

static void test_runs(const float *init, const float *grads, const float *lrs) {
  static const char *runs[] = {"rmsprop_paper", "rmsprop", "sgd", "nesterov", "adamw"};
  for (size_t r = 0; r < sizeof runs / sizeof *runs; r++) {
    char name[64];
    snprintf(name, sizeof name, "run.%s", runs[r]);
    float *expect = tensor(name, (int64_t)STEPS * FLAT);
    en_optim_config cfg;
    if (!expect || !config_from_meta(runs[r], &cfg)) {
      free(expect);
      continue;
    }
    double e = run_steps(&cfg, init, grads, lrs, expect, runs[r]);
    printf("%-14s max rel error %.3g (tol %.0e)\n", runs[r], e, TOL);
    CHECK_MSG(e <= TOL, "%s: max rel error %.3g > %.0e", runs[r], e, TOL);

    /* the paper's run uses exactly the library's "rmsprop" defaults */
    if (!strcmp(runs[r], "rmsprop_paper")) {
      en_optim_config d;
      CHECK(en_optim_parse("rmsprop", &d));
      CHECK(d.kind == cfg.kind && d.momentum == cfg.momentum && d.rms_decay == cfg.rms_decay &&
            d.eps == cfg.eps && d.weight_decay == cfg.weight_decay);
    }

    /* Mutants: the fixture must tell a wrong rule from rounding. */
    en_optim_config m = cfg;
    const char *what;
    if (cfg.kind == EN_OPT_RMSPROP_TF && cfg.weight_decay < 1e-3f) {
      m.eps = cfg.eps * 10; /* eps enters inside the sqrt: its value must matter */
      what = "eps x10";
    } else if (cfg.kind == EN_OPT_SGD && cfg.nesterov) {
      m.nesterov = 0;
      what = "nesterov off";
    } else {
      m.weight_decay = 0;
      what = "no weight decay";
    }
    double em = run_steps(&m, init, grads, lrs, expect, runs[r]);
    printf("%-14s mutant (%s) error %.3g\n", runs[r], what, em);
    CHECK_MSG(em > MUTANT_MIN, "%s: mutant (%s) error %.3g not > %.0e", runs[r], what, em,
              MUTANT_MIN);
    free(expect);
  }
}

/* Same results with 1 and 3 threads, on an entry large enough to be split. */
static void test_threads(void) {
  en_params p;
  memset(&p, 0, sizeof p);
  p.count = 2;
  p.table = calloc(2, sizeof *p.table);
  p.table[0] = (en_param){EN_R_FC, EN_F_WEIGHT, -1, 2, {301, 333, 0, 0}, 301 * 333, 0, 1};
  p.table[1] = (en_param){EN_R_FC, EN_F_BIAS, -1, 1, {40001, 0, 0, 0}, 40001, 100240, 1};
  p.total = 100240 + 40016;
  size_t bytes = (size_t)p.total * sizeof(float);
  float *w0 = malloc(bytes), *g = malloc(bytes), *res[2];
  uint64_t x = 88172645463325252ull;
  for (int64_t i = 0; i < p.total; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    w0[i] = (float)((double)(x >> 11) / 9007199254740992.0 - 0.5);
    g[i] = (float)((double)((x * 2654435761u) >> 40) / 16777216.0 - 0.5);
  }
  static const char *names[] = {"rmsprop", "nesterov", "adamw"};
  int saved = omp_get_max_threads();
  for (int n = 0; n < 3; n++) {
    en_optim_config cfg;
    CHECK(en_optim_parse(names[n], &cfg));
    for (int t = 0; t < 2; t++) {
      omp_set_num_threads(t ? 3 : 1);
      p.data = aligned_alloc(64, bytes);
      memcpy(p.data, w0, bytes);
      en_optim opt;
      CHECK(en_optim_init(&opt, &cfg, p.total, &err) == EFFNET_OK);
      for (int s = 0; s < 3; s++) en_optim_step(&opt, &p, g, 0.01f * (float)(s + 1));
      en_optim_free(&opt);
      res[t] = p.data;
    }
    CHECK_MSG(!memcmp(res[0], res[1], bytes), "%s: 1 and 3 threads differ", names[n]);
    CHECK_MSG(memcmp(res[0], w0, bytes) != 0, "%s: nothing changed", names[n]);
    free(res[0]);
    free(res[1]);
  }
  omp_set_num_threads(saved);
  p.data = NULL;
  en_params_free(&p);
  free(w0);
  free(g);
}

/* ---------------------------------------------------------------- schedules, EMA */

static void test_schedules(void) {
  static const char *names[] = {"exp", "cosine", "constant"};
  static const en_sched_kind kinds[] = {EN_SCHED_EXP, EN_SCHED_COSINE, EN_SCHED_CONSTANT};
  for (int n = 0; n < 3; n++) {
    char key[96];
    en_schedule s = {.kind = kinds[n]};
    struct { const char *f; double *v; } F[] = {
        {"base_lr", &s.base_lr},           {"warmup_epochs", &s.warmup_epochs},
        {"warmup_lr", &s.warmup_lr},       {"decay_rate", &s.decay_rate},
        {"decay_epochs", &s.decay_epochs}, {"total_epochs", &s.total_epochs},
        {"min_lr", &s.min_lr}};
    int ok = 1;
    for (size_t i = 0; i < sizeof F / sizeof *F; i++) {
      snprintf(key, sizeof key, "sched.%s.%s", names[n], F[i].f);
      ok &= meta_num(key, F[i].v);
    }
    snprintf(key, sizeof key, "sched.%s.kind", names[n]);
    const char *kind = st_metadata(fx, key);
    CHECK_MSG(kind && !strcmp(kind, names[n]), "%s: %s", key, kind ? kind : "missing");
    snprintf(key, sizeof key, "sched.%s.epoch", names[n]);
    const st_tensor *t = st_find(fx, key);
    CHECK_MSG(t != NULL, "%s missing", key);
    if (!ok || !t) continue;
    float *ep = tensor(key, t->numel);
    snprintf(key, sizeof key, "sched.%s.lr", names[n]);
    float *lr = tensor(key, t->numel);
    double worst = 0;
    for (int64_t i = 0; ep && lr && i < t->numel; i++) {
      /* expected values are float32 in the file: 6e-8 relative rounding */
      double got = en_schedule_lr(&s, ep[i]);
      double rel = lr[i] != 0 ? fabs(got - lr[i]) / fabs((double)lr[i]) : fabs(got);
      CHECK_MSG(rel <= 1e-6, "%s epoch %g: %.9g, expected %.9g", names[n], ep[i], got, lr[i]);
      if (rel > worst) worst = rel;
    }
    printf("sched %-8s max rel error %.3g (tol 1e-06)\n", names[n], worst);
    free(ep);
    free(lr);
  }
  /* the paper's staircase counts from epoch 0: the first epoch after a 5-epoch warm-up is
   * already two decays (floor(5 / 2.4) = 2) below base */
  en_schedule e = {EN_SCHED_EXP, 0.016, 5, 0, 0.97, 2.4, 350, 0};
  CHECK(fabs(en_schedule_lr(&e, 5.0) - 0.016 * 0.97 * 0.97) < 1e-15);
  CHECK(fabs(en_schedule_lr(&e, 2.5) - 0.008) < 1e-15);
  CHECK(en_schedule_lr(&e, -1.0) == 0.0);
  e.warmup_epochs = 0; /* no warm-up: base at epoch 0 */
  CHECK(en_schedule_lr(&e, 0.0) == 0.016);
}

static void test_ema(void) {
  enum { T = 12, N = 37 };
  float *w = tensor("ema.w", T * N);
  static const char *names[] = {"slow", "fast"};
  for (int n = 0; n < 2 && w; n++) {
    char key[64];
    snprintf(key, sizeof key, "ema.%s", names[n]);
    float *want = tensor(key, T * N);
    double decay;
    snprintf(key, sizeof key, "ema.%s.decay", names[n]);
    if (!want || !meta_num(key, &decay)) {
      free(want);
      continue;
    }
    float shadow[N];
    memcpy(shadow, w, sizeof shadow);
    double worst = 0;
    for (int k = 0; k < T; k++) {
      en_ema_update(shadow, w + k * N, N, decay, k + 1);
      for (int i = 0; i < N; i++) {
        double d = fabs((double)shadow[i] - want[k * N + i]) / (fabs(want[k * N + i]) + 1e-30);
        if (d > worst) worst = d;
      }
    }
    printf("ema %-4s max rel error %.3g (tol 1e-06)\n", names[n], worst);
    CHECK_MSG(worst <= 1e-6, "ema %s: %.3g", names[n], worst);
    free(want);
  }
  free(w);
  /* decay_t = min(decay, (1 + t) / (10 + t)): at t = 0 the shadow moves 90% of the way */
  float s = 0, v = 1;
  en_ema_update(&s, &v, 1, 0.9999, 0);
  CHECK(fabsf(s - 0.9f) < 1e-7f);
}

/* ---------------------------------------------------------------- configuration */

static void test_config(void) {
  en_optim_config c;
  CHECK(en_optim_parse("rmsprop", &c) && c.kind == EN_OPT_RMSPROP_TF && c.momentum == 0.9f &&
        c.rms_decay == 0.9f && c.eps == 1e-3f && c.weight_decay == 1e-5f);
  CHECK(en_optim_parse("sgd", &c) && c.kind == EN_OPT_SGD && c.momentum == 0.9f &&
        c.nesterov == 0);
  CHECK(en_optim_parse("nesterov", &c) && c.kind == EN_OPT_SGD && c.momentum == 0.9f &&
        c.nesterov == 1);
  CHECK(en_optim_parse("adamw", &c) && c.kind == EN_OPT_ADAMW && c.beta1 == 0.9f &&
        c.beta2 == 0.999f && c.eps == 1e-8f && c.weight_decay == 0.01f);
  CHECK(en_optim_parse("AdamW", &c) && c.kind == EN_OPT_ADAMW);
  static const char *bad[] = {"", "adam", "rmsprop_tf", "sgd ", "lamb", "rms"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    memset(&c, 0x5a, sizeof c);
    en_optim_config before = c;
    CHECK_MSG(!en_optim_parse(bad[i], &c), "'%s' accepted", bad[i]);
    CHECK_MSG(!memcmp(&c, &before, sizeof c), "'%s' wrote the output", bad[i]);
  }
  CHECK(!en_optim_parse(NULL, &c));

  en_optim opt;
  c = en_optim_defaults(EN_OPT_RMSPROP_TF);
  CHECK(en_optim_init(&opt, &c, 40, &err) == EFFNET_OK);
  int ones = opt.state1 && opt.state2;
  for (int i = 0; ones && i < 40; i++) ones = opt.state1[i] == 1.0f && opt.state2[i] == 0.0f;
  CHECK_MSG(ones, "RMSProp-TF state must start at ms = 1, momentum 0");
  en_optim_free(&opt);
  CHECK(opt.state1 == NULL && opt.state2 == NULL);
  c = en_optim_defaults(EN_OPT_SGD);
  CHECK(en_optim_init(&opt, &c, 40, &err) == EFFNET_OK && opt.state2 == NULL);
  en_optim_free(&opt);
  en_optim_free(NULL);

  CHECK(en_optim_init(&opt, NULL, 40, &err) == EFFNET_E_ARGUMENT);
  CHECK(en_optim_init(&opt, &c, -1, &err) == EFFNET_E_ARGUMENT);
  c.nesterov = 1;
  c.momentum = 0;
  CHECK(en_optim_init(&opt, &c, 40, &err) == EFFNET_E_ARGUMENT && strstr(err.message, "sgd"));
  c = en_optim_defaults(EN_OPT_ADAMW);
  c.beta2 = 1.0f;
  CHECK(en_optim_init(&opt, &c, 40, &err) == EFFNET_E_ARGUMENT && opt.state1 == NULL);
  c = en_optim_defaults(EN_OPT_RMSPROP_TF);
  c.eps = NAN;
  CHECK(en_optim_init(&opt, &c, 40, &err) == EFFNET_E_ARGUMENT);
  c.eps = 1e-3f;
  c.kind = (en_opt_kind)99;
  CHECK(en_optim_init(&opt, &c, 40, &err) == EFFNET_E_ARGUMENT);
}

int main(void) {
  test_config();
  effnet_status st = st_open(&fx, FIXTURE, &err);
  CHECK_MSG(st == EFFNET_OK, "%s (run from the repository root; regenerate with "
            "tools/oracle/gen_optim_fixtures.py)", err.message);
  if (st != EFFNET_OK) return TEST_SUMMARY();
  const char *layout = st_metadata(fx, "layout");
  CHECK_MSG(layout && !strcmp(layout, LAYOUT), "%s: layout %s", FIXTURE,
            layout ? layout : "missing");
  float *init = tensor("init", FLAT);
  float *grads = tensor("grads", (int64_t)STEPS * FLAT);
  float *lrs = tensor("lr", STEPS);
  if (init && grads && lrs) test_runs(init, grads, lrs);
  free(init);
  free(grads);
  free(lrs);
  test_threads();
  test_schedules();
  test_ema();
  st_close(fx);
  return TEST_SUMMARY();
}
