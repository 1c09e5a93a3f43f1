/* Optimizers, learning-rate schedules and weight EMA (see optim.h).
 *
 * The update rules are transcriptions of the reference implementations, operation by operation
 * and in float32 as they run on CPU tensors, so that results agree to rounding:
 *   RMSProp-TF  timm/optim/rmsprop_tf.py, _single_tensor_rmsprop_tf (decoupled_decay=False,
 *               lr_in_momentum=True, centered=False);
 *   SGD         torch/optim/sgd.py (1.13), _single_tensor_sgd (dampening 0, maximize False);
 *   AdamW       torch/optim/adamw.py (1.13), _single_tensor_adamw (amsgrad False).
 * Scalars that PyTorch computes in Python (double) and hands to a float kernel — 1 - alpha,
 * 1 - lr*wd, the bias corrections — are computed here in double and rounded to float once, as
 * the kernels do. The hyperparameters themselves are floats in en_optim_config, so e.g.
 * 1 - 0.9f is 0.100000024 where PyTorch has 0.1: a 2.4e-7 relative difference in a coefficient,
 * far below the tolerance the tests use (see tests/test_optim.c). */
#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"

/* Entries smaller than this are updated by the calling thread alone: an OpenMP fork/join costs
 * more than a few thousand multiply-adds, and an EfficientNet table is mostly small BN vectors. */
#define PAR_MIN 16384

en_optim_config en_optim_defaults(en_opt_kind kind) {
  en_optim_config c;
  memset(&c, 0, sizeof c);
  c.kind = kind;
  switch (kind) {
    case EN_OPT_RMSPROP_TF:
      /* EfficientNet paper / TF efficientnet main.py: RMSProp decay 0.9, momentum 0.9,
       * epsilon 1e-3, weight decay 1e-5 */
      c.momentum = 0.9f;
      c.rms_decay = 0.9f;
      c.eps = 1e-3f;
      c.weight_decay = 1e-5f;
      break;
    case EN_OPT_SGD:
      /* momentum 0.9 is the usual choice for ImageNet CNNs (torch's own default, 0, is plain
       * SGD); the paper's weight decay keeps the regularisation of the RMSProp recipe */
      c.momentum = 0.9f;
      c.nesterov = 0;
      c.weight_decay = 1e-5f;
      break;
    case EN_OPT_ADAMW:
      /* torch.optim.AdamW defaults */
      c.beta1 = 0.9f;
      c.beta2 = 0.999f;
      c.eps = 1e-8f;
      c.weight_decay = 1e-2f;
      break;
  }
  return c;
}

int en_optim_parse(const char *name, en_optim_config *out) {
  if (!name || !out) return 0;
  if (!strcasecmp(name, "rmsprop")) {
    *out = en_optim_defaults(EN_OPT_RMSPROP_TF);
  } else if (!strcasecmp(name, "sgd")) {
    *out = en_optim_defaults(EN_OPT_SGD);
  } else if (!strcasecmp(name, "nesterov")) {
    *out = en_optim_defaults(EN_OPT_SGD);
    out->nesterov = 1;
  } else if (!strcasecmp(name, "adamw")) {
    *out = en_optim_defaults(EN_OPT_ADAMW);
  } else {
    return 0;
  }
  return 1;
}

static float *alloc_state(int64_t total) {
  /* 64-byte aligned like the parameter block; aligned_alloc needs a multiple of the alignment */
  size_t bytes = ((size_t)total * sizeof(float) + 63) / 64 * 64;
  return aligned_alloc(64, bytes ? bytes : 64);
}

effnet_status en_optim_init(en_optim *opt, const en_optim_config *cfg, int64_t total,
                            effnet_error *err) {
  if (!opt) return en_fail(err, EFFNET_E_ARGUMENT, "optimizer: NULL handle");
  memset(opt, 0, sizeof *opt);
  if (!cfg) return en_fail(err, EFFNET_E_ARGUMENT, "optimizer: NULL configuration");
  if (total < 0 || (uint64_t)total > SIZE_MAX / sizeof(float) / 2)
    return en_fail(err, EFFNET_E_ARGUMENT, "optimizer: bad parameter count %lld",
                   (long long)total);
  /* written as !(x >= 0) so NaN is rejected too */
  if (!(cfg->weight_decay >= 0) || !(cfg->momentum >= 0))
    return en_fail(err, EFFNET_E_ARGUMENT, "optimizer: weight decay and momentum must be >= 0");
  switch (cfg->kind) {
    case EN_OPT_RMSPROP_TF:
      if (!(cfg->rms_decay >= 0 && cfg->rms_decay <= 1) || !(cfg->eps > 0))
        return en_fail(err, EFFNET_E_ARGUMENT,
                       "rmsprop: decay must be in [0, 1] and epsilon > 0");
      break;
    case EN_OPT_SGD:
      /* torch.optim.SGD refuses Nesterov without momentum */
      if (cfg->nesterov && !(cfg->momentum > 0))
        return en_fail(err, EFFNET_E_ARGUMENT, "sgd: Nesterov momentum requires momentum > 0");
      break;
    case EN_OPT_ADAMW:
      if (!(cfg->beta1 >= 0 && cfg->beta1 < 1) || !(cfg->beta2 >= 0 && cfg->beta2 < 1) ||
          !(cfg->eps > 0))
        return en_fail(err, EFFNET_E_ARGUMENT, "adamw: betas must be in [0, 1) and eps > 0");
      break;
    default:
      return en_fail(err, EFFNET_E_ARGUMENT, "optimizer: unknown kind %d", (int)cfg->kind);
  }
  opt->cfg = *cfg;
  opt->total = total;
  opt->state1 = alloc_state(total);
  if (cfg->kind != EN_OPT_SGD) opt->state2 = alloc_state(total);
  if (!opt->state1 || (cfg->kind != EN_OPT_SGD && !opt->state2)) {
    en_optim_free(opt);
    return en_fail(err, EFFNET_E_NOMEM, "out of memory (optimizer state, %lld parameters)",
                   (long long)total);
  }
  if (cfg->kind == EN_OPT_RMSPROP_TF) {
    /* TF (and timm's RMSpropTF) start the mean square at 1, not 0 as torch.optim.RMSprop:
     * the first steps are then ~lr * g instead of ~lr * g / |g| * sqrt(1 / (1 - alpha)) */
    for (int64_t i = 0; i < total; i++) opt->state1[i] = 1.0f;
  } else {
    memset(opt->state1, 0, (size_t)total * sizeof(float));
  }
  if (opt->state2) memset(opt->state2, 0, (size_t)total * sizeof(float));
  return EFFNET_OK;
}

void en_optim_free(en_optim *opt) {
  if (!opt) return;
  free(opt->state1);
  free(opt->state2);
  memset(opt, 0, sizeof *opt);
}

/* ---------------------------------------------------------------- update rules
 * Each line mirrors one tensor op of the reference, rounded to float where the op rounds, so the
 * expression order matters: e.g. torch's add(x, alpha=a) is x_self + a * x, addcdiv(t1, t2,
 * value=v) is self + v * (t1 / t2), addcmul(t1, t2, value=v) is self + v * t1 * t2. */

static void rmsprop_tf(float *restrict w, const float *restrict g, float *restrict ms,
                       float *restrict mom, int64_t n, float wd, float one_minus_alpha,
                       float eps, float momentum, float lr) {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i];
    if (wd != 0.0f) gi = gi + wd * w[i];             /* grad.add(param, alpha=wd) */
    float sq = ms[i];
    sq = sq + one_minus_alpha * (gi * gi - sq);      /* TF order of ops */
    ms[i] = sq;
    float avg = sqrtf(sq + eps);                     /* eps inside the sqrt */
    if (momentum > 0.0f) {
      float b = mom[i] * momentum;
      b = b + lr * (gi / avg);                       /* lr accumulated in the buffer */
      mom[i] = b;
      w[i] = w[i] - b;
    } else {
      w[i] = w[i] + -lr * (gi / avg);
    }
  }
}

static void sgd(float *restrict w, const float *restrict g, float *restrict buf, int64_t n,
                float wd, float momentum, int nesterov, int first, float lr) {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    float d = g[i];
    if (wd != 0.0f) d = d + wd * w[i];
    if (momentum != 0.0f) {
      /* torch creates the buffer as a copy of the first (decayed) gradient, no dampening */
      float b = first ? d : buf[i] * momentum + d;
      buf[i] = b;
      d = nesterov ? d + momentum * b : b;
    }
    w[i] = w[i] + -lr * d;
  }
}

static void adamw(float *restrict w, const float *restrict g, float *restrict m,
                  float *restrict v, int64_t n, float decay_mul, float beta1,
                  float one_minus_beta1, float beta2, float one_minus_beta2, float bc2_sqrt,
                  float eps, float neg_step_size) {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    float wi = w[i];
    if (decay_mul != 1.0f) wi = wi * decay_mul;      /* decoupled: w *= 1 - lr * wd */
    float gi = g[i];
    float mi = m[i] * beta1 + one_minus_beta1 * gi;
    float vi = v[i] * beta2 + one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float denom = sqrtf(vi) / bc2_sqrt + eps;
    w[i] = wi + neg_step_size * (mi / denom);
  }
}

void en_optim_step(en_optim *opt, en_params *params, const float *grad, float lr) {
  const en_optim_config *c = &opt->cfg;
  int first = opt->steps == 0;
  int64_t t = ++opt->steps;
  /* per-step scalars, as PyTorch computes them (Python doubles rounded to float by the kernel) */
  float one_minus_alpha = (float)(1.0 - (double)c->rms_decay);
  float one_minus_beta1 = (float)(1.0 - (double)c->beta1);
  float one_minus_beta2 = (float)(1.0 - (double)c->beta2);
  double bc1 = 1.0 - pow((double)c->beta1, (double)t);
  double bc2 = 1.0 - pow((double)c->beta2, (double)t);
  float neg_step_size = (float)-((double)lr / bc1);
  float bc2_sqrt = (float)sqrt(bc2);

  for (int k = 0; k < params->count; k++) {
    const en_param *e = &params->table[k];
    if (!e->trainable) continue;
    /* L2 / decoupled decay on conv and linear weights only (TF efficientnet excludes BN
     * variables; timm's param_groups_weight_decay excludes ndim <= 1) */
    float wd = e->ndim > 1 ? c->weight_decay : 0.0f;
    float *w = params->data + e->offset;
    const float *g = grad + e->offset;
    float *s1 = opt->state1 + e->offset;
    float *s2 = opt->state2 ? opt->state2 + e->offset : NULL;
    switch (c->kind) {
      case EN_OPT_RMSPROP_TF:
        rmsprop_tf(w, g, s1, s2, e->numel, wd, one_minus_alpha, c->eps, c->momentum, lr);
        break;
      case EN_OPT_SGD:
        sgd(w, g, s1, e->numel, wd, c->momentum, c->nesterov, first, lr);
        break;
      case EN_OPT_ADAMW: {
        /* torch multiplies even when wd == 0 (by exactly 1); skipping it is the same */
        float decay_mul = (float)(1.0 - (double)lr * (double)wd);
        adamw(w, g, s1, s2, e->numel, decay_mul, c->beta1, one_minus_beta1, c->beta2,
              one_minus_beta2, bc2_sqrt, c->eps, neg_step_size);
        break;
      }
    }
  }
}

/* ---------------------------------------------------------------- schedules */

double en_schedule_lr(const en_schedule *s, double epoch) {
  if (epoch < 0) epoch = 0;
  /* warm-up overrides the decayed value while it lasts, as tf.cond(global_step <
   * warmup_steps, ...) in TF efficientnet utils.build_learning_rate (there from 0; here from
   * warmup_lr, like timm's warmup_lr_init) */
  if (s->warmup_epochs > 0 && epoch < s->warmup_epochs)
    return s->warmup_lr + (s->base_lr - s->warmup_lr) * (epoch / s->warmup_epochs);
  switch (s->kind) {
    case EN_SCHED_EXP:
      /* tf.train.exponential_decay(lr, global_step, steps_per_epoch * decay_epochs, rate,
       * staircase=True): the decay counts from step 0, warm-up included, so the first
       * post-warm-up lr is already base * rate^floor(warmup / decay_epochs) (0.97^2 for the
       * paper's 5 and 2.4): the paper's recipe is TF's code, and this reproduces it */
      if (!(s->decay_epochs > 0)) return s->base_lr;
      return s->base_lr * pow(s->decay_rate, floor(epoch / s->decay_epochs));
    case EN_SCHED_COSINE: {
      /* timm CosineLRScheduler(t_initial = total - warmup, warmup_prefix=True, cycle_limit=1):
       * the cosine spans the epochs after warm-up and stays at min_lr past the end (TF's
       * cosine instead runs from step 0 to 0 and has no floor) */
      double span = s->total_epochs - s->warmup_epochs;
      double x = span > 0 ? (epoch - s->warmup_epochs) / span : 1.0;
      if (x >= 1.0) return s->min_lr;
      return s->min_lr + 0.5 * (s->base_lr - s->min_lr) * (1.0 + cos(M_PI * x));
    }
    case EN_SCHED_CONSTANT:
      break;
  }
  return s->base_lr;
}

/* ---------------------------------------------------------------- EMA */

void en_ema_update(float *ema, const float *w, int64_t count, double decay, int64_t t) {
  double d = (1.0 + (double)t) / (10.0 + (double)t);
  if (decay < d) d = decay;
  /* TF's assign_moving_average form, shadow -= (1 - d) * (shadow - value): equal to
   * d * shadow + (1 - d) * value, and a shadow equal to the value stays exactly equal */
  float one_minus = (float)(1.0 - d);
#pragma omp parallel for schedule(static) if (count >= PAR_MIN)
  for (int64_t i = 0; i < count; i++) ema[i] = ema[i] - one_minus * (ema[i] - w[i]);
}
