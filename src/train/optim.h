/* Optimizers, learning-rate schedules and the weight EMA. Parameters, gradients and optimizer
 * state share the layout of the parameter block (model/params.h), so a step is a flat loop over
 * the table's trainable entries. Weight decay applies to conv and linear weights only (ndim > 1),
 * never to BN affine parameters or biases. */
#ifndef EN_OPTIM_H
#define EN_OPTIM_H

#include <stdint.h>

#include "effnet.h"
#include "model/params.h"

typedef enum en_opt_kind {
  EN_OPT_RMSPROP_TF, /* TF RMSProp, as timm.optim.RMSpropTF: ms starts at 1, eps inside the
                        sqrt, lr inside the momentum buffer; L2 decay added to the gradient */
  EN_OPT_SGD,        /* torch.optim.SGD: momentum (dampening 0), optional Nesterov, L2 decay */
  EN_OPT_ADAMW       /* torch.optim.AdamW: decoupled decay w *= 1 - lr * wd, bias-corrected */
} en_opt_kind;

typedef struct en_optim_config {
  en_opt_kind kind;
  float momentum;     /* RMSProp-TF, SGD (paper: 0.9) */
  int nesterov;       /* SGD */
  float weight_decay; /* paper: 1e-5 */
  float rms_decay;    /* RMSProp-TF alpha (paper: 0.9) */
  float eps;          /* RMSProp-TF (paper: 1e-3), AdamW (1e-8) */
  float beta1, beta2; /* AdamW (0.9, 0.999) */
} en_optim_config;

/* Defaults of each kind. RMSProp-TF: the paper's (momentum 0.9, decay 0.9, eps 1e-3, weight
 * decay 1e-5). SGD: momentum 0.9 (torch's default is 0, i.e. no momentum), no Nesterov, the
 * paper's weight decay 1e-5. AdamW: torch's (betas 0.9, 0.999, eps 1e-8, weight decay 0.01).
 * Fields a kind does not use are 0. */
en_optim_config en_optim_defaults(en_opt_kind kind);
/* "rmsprop" | "sgd" | "nesterov" | "adamw" (case-insensitive) -> that kind's defaults
 * ("nesterov": SGD with nesterov = 1); returns 1, or 0 for an unknown or NULL name, leaving
 * *out untouched. */
int en_optim_parse(const char *name, en_optim_config *out);

typedef struct en_optim {
  en_optim_config cfg;
  int64_t total;  /* floats, == en_params.total */
  int64_t steps;  /* steps taken */
  float *state1;  /* RMSProp-TF: mean square (starts at 1); SGD: momentum buffer (set to the
                     first gradient when steps == 0, as torch does: restore steps with it);
                     AdamW: first moment */
  float *state2;  /* RMSProp-TF: momentum buffer; AdamW: second moment; SGD: unused (NULL) */
} en_optim;

/* Allocates zeroed state (RMSProp-TF's mean square filled with 1) for `total` floats.
 * EFFNET_E_ARGUMENT for an unknown kind, NaN or negative hyperparameters, betas outside
 * [0, 1), Nesterov without momentum; *opt is then all zero. */
effnet_status en_optim_init(en_optim *opt, const en_optim_config *cfg, int64_t total,
                            effnet_error *err);
/* NULL is a no-op; *opt is zeroed. */
void en_optim_free(en_optim *opt);

/* One update of every trainable entry of `params` (table and data) from grad (same layout),
 * with learning rate lr. Non-trainable entries and the padding between entries are neither
 * read from grad nor written. Deterministic (bit-identical for any thread count); threads over
 * the elements of large entries. */
void en_optim_step(en_optim *opt, en_params *params, const float *grad, float lr);

typedef enum en_sched_kind { EN_SCHED_EXP, EN_SCHED_COSINE, EN_SCHED_CONSTANT } en_sched_kind;

typedef struct en_schedule {
  en_sched_kind kind;
  double base_lr;
  double warmup_epochs; /* linear from warmup_lr to base_lr */
  double warmup_lr;
  double decay_rate;    /* EXP: paper 0.97 */
  double decay_epochs;  /* EXP: paper 2.4, staircase as TF's exponential_decay */
  double total_epochs;  /* COSINE: length including warm-up */
  double min_lr;        /* COSINE floor */
} en_schedule;

/* Learning rate at fractional epoch e (step / steps_per_epoch), as TF efficientnet
 * utils.build_learning_rate: while e < warmup_epochs, warmup_lr + (base_lr - warmup_lr) *
 * e / warmup_epochs overrides the schedule. Otherwise
 *   EXP       base_lr * decay_rate^floor(e / decay_epochs): TF's exponential_decay on the
 *             global step, which counts from step 0, warm-up included (so with the paper's
 *             5 warm-up epochs and 2.4 the first lr after warm-up is base * 0.97^2);
 *   COSINE    min_lr + (base_lr - min_lr) * (1 + cos(pi * (e - warmup) / (total - warmup))) / 2,
 *             min_lr from total_epochs on (timm CosineLRScheduler with warmup_prefix);
 *   CONSTANT  base_lr. */
double en_schedule_lr(const en_schedule *s, double epoch);

/* Exponential moving average of all parameters and BN statistics (TF's
 * ExponentialMovingAverage with num_updates: decay_t = min(decay, (1 + t) / (10 + t))).
 * ema = decay_t * ema + (1 - decay_t) * w over `count` floats, computed as TF does,
 * ema -= (1 - decay_t) * (ema - w); t = steps so far, including the one just taken (TF passes
 * global_step after the train op incremented it, so t = 1 at the first update). */
void en_ema_update(float *ema, const float *w, int64_t count, double decay, int64_t t);

#endif
