/* Training kernels that evaluate an activation or its derivative: BN in training mode (forward
 * and backward), running statistics, activation backward and squeeze-excite.
 *
 * Determinism: a per-channel reduction over rows splits the rows into a number of blocks that
 * depends on the row count only (never on the thread count), accumulates each block in double
 * (runs of RUN rows in float first) and adds the blocks in block order. The result is therefore bitwise identical for any number
 * of threads. Everything else is elementwise or owned by one thread. No heap allocation: the
 * partials of one 64-channel chunk live on the caller's stack (32 KiB). */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "core/clones.h"
#include "kernels/vec16.h"
#include "train/tkernels.h"

/* ISO C mode (-std=c11) turns off multiply-add contraction: the exp polynomial and the
 * reciprocal's Newton steps want it */
#pragma GCC optimize("fp-contract=fast")

#define EN_INLINE static inline __attribute__((always_inline))

enum {
  RED_CH = 64,       /* channels per reduction chunk */
  RED_BLK = 32,      /* at most this many row blocks per reduction */
  RED_MIN_ROWS = 64, /* a block has at least this many rows (when there are that many) */
  BN_CH = 256,       /* channels whose per-channel coefficients a thread holds at once */
  RUN = 16           /* rows summed in float before a reduction adds them in double */
};

/* Call F with the activation as a compile-time constant, so each case gets its own vector loop
 * (a runtime `act` inside the loop would block vectorisation of the exp). */
#define ACT_SWITCH(act, F)                            \
  switch (act) {                                      \
    case EN_ACT_SWISH: F(EN_ACT_SWISH); break;        \
    case EN_ACT_RELU6: F(EN_ACT_RELU6); break;        \
    case EN_ACT_SIGMOID: F(EN_ACT_SIGMOID); break;    \
    default: F(EN_ACT_NONE); break;                   \
  }

EN_INLINE float act_fwd(float z, en_act act) {
  if (act == EN_ACT_SWISH) return en_vswish(z);
  if (act == EN_ACT_RELU6) return z < 0.0f ? 0.0f : (z > 6.0f ? 6.0f : z);
  if (act == EN_ACT_SIGMOID) return en_vsigmoid(z);
  return z;
}

/* d act / dz. swish: s + z s (1 - s) with s = sigmoid(z). relu6: 0 at exactly 0 and 6, as
 * PyTorch's hardtanh backward (it passes the gradient only where min < z < max). en_vsigmoid
 * is within ~3 ulp of libm, far below what a float gradient can resolve. */
EN_INLINE float act_grad(float z, en_act act) {
  if (act == EN_ACT_SWISH) {
    float s = en_vsigmoid(z);
    return s * (1.0f + z * (1.0f - s));
  }
  if (act == EN_ACT_RELU6) return z > 0.0f && z < 6.0f ? 1.0f : 0.0f;
  if (act == EN_ACT_SIGMOID) {
    float s = en_vsigmoid(z);
    return s * (1.0f - s);
  }
  return 1.0f;
}

/* ---- fixed-order per-channel reductions ---- */

/* Adds, over rows [r0, r1) and channels [c0, c0 + n), two sums into s0[0..n), s1[0..n). */
typedef void (*red_fn)(double *s0, double *s1, const void *ctx, int64_t r0, int64_t r1, int c0,
                       int n);

static int red_blocks(int64_t rows) {
  int64_t b = rows / RED_MIN_ROWS;
  return b < 1 ? 1 : (b > RED_BLK ? RED_BLK : (int)b);
}

/* s0, s1 (n <= RED_CH): the two sums of fn over all rows, blocks added in block order. */
static void reduce_chunk(double *s0, double *s1, red_fn fn, const void *ctx, int64_t rows,
                         int c0, int n) {
  double part[RED_BLK][2][RED_CH];
  int nblk = red_blocks(rows);
#pragma omp parallel for schedule(static)
  for (int b = 0; b < nblk; b++) {
    memset(part[b], 0, sizeof part[b]);
    fn(part[b][0], part[b][1], ctx, rows * b / nblk, rows * (b + 1) / nblk, c0, n);
  }
  for (int c = 0; c < n; c++) {
    double a = 0.0, q = 0.0;
    for (int b = 0; b < nblk; b++) a += part[b][0][c], q += part[b][1][c];
    s0[c] = a;
    s1[c] = q;
  }
}

/* ---- BN statistics ---- */

typedef struct stats_ctx {
  const float *x;
  int C;
  const double *shift; /* per channel of the chunk */
} stats_ctx;

/* Adds lanes [skip, lanes) of one run's float sums f0, f1 to the double sums s0, s1. */
EN_INLINE void flush_run(double *s0, double *s1, en_vec f0, en_vec f1, int skip, int lanes) {
  float a[EN_LANES], b[EN_LANES];
  memcpy(a, &f0, sizeof a);
  memcpy(b, &f1, sizeof b);
  for (int l = skip; l < lanes; l++) s0[l] += a[l], s1[l] += b[l];
}

/* Sums of d and d^2 with d = x - shift. Shifting by a sample of the channel keeps
 * E[d^2] - E[d]^2 free of cancellation when |mean| >> std, in one pass over x. Runs of RUN rows
 * are summed in float (a relative error of a few 1e-7, the sums in registers, one 16-channel
 * vector at a time), the runs in double, so the variance stays far more exact than the float it
 * is stored in. */
EN_CLONES static void stats_fn(double *s0, double *s1, const void *vctx, int64_t r0, int64_t r1,
                               int c0, int n) {
  const stats_ctx *t = vctx;
  float shift[RED_CH];
  for (int c = 0; c < n; c++) shift[c] = (float)t->shift[c];
  for (int64_t r = r0; r < r1; r += RUN) {
    int64_t end = r + RUN < r1 ? r + RUN : r1;
    for (int i = 0; i * EN_LANES < n; i++) {
      int o, lanes, skip;
      en_vspan(n, i, &o, &lanes, &skip);
      en_vec sh = en_vload(shift + o, lanes), f0 = {0}, f1 = {0};
      for (int64_t q = r; q < end; q++) {
        en_vec d = en_vload(t->x + q * t->C + c0 + o, lanes) - sh;
        f0 += d;
        f1 += d * d;
      }
      flush_run(s0 + o, s1 + o, f0, f1, skip, lanes);
    }
  }
}

static void bn_stats(float *mean, float *var, const float *x, int64_t rows, int C) {
  for (int c0 = 0; c0 < C; c0 += RED_CH) {
    int n = C - c0 < RED_CH ? C - c0 : RED_CH;
    double shift[RED_CH], s0[RED_CH], s1[RED_CH];
    for (int c = 0; c < n; c++) shift[c] = x[c0 + c];
    stats_ctx t = {x, C, shift};
    reduce_chunk(s0, s1, stats_fn, &t, rows, c0, n);
    for (int c = 0; c < n; c++) {
      double m = s0[c] / (double)rows, v = s1[c] / (double)rows - m * m;
      mean[c0 + c] = (float)(shift[c] + m);
      var[c0 + c] = (float)(v > 0.0 ? v : 0.0);
    }
  }
}

/* ---- BN forward / backward ---- */

/* Per-channel coefficients of channels [c0, c0 + n): z = (x - mean) * za + beta with
 * za = gamma * invstd; backward adds dx = p * dz + q + r * xhat. Forward and backward fill
 * them with the same code, so both see the same float z. (x - mean) first, not x * za + b:
 * that would cancel catastrophically when |mean| >> std. */
typedef struct bn_coef {
  float mean[BN_CH], is[BN_CH], za[BN_CH], beta[BN_CH], p[BN_CH], q[BN_CH], r[BN_CH];
} bn_coef;

static void bn_coef_fill(bn_coef *cf, const float *mean, const float *var, const float *gamma,
                         const float *beta, float eps, int c0, int n) {
  for (int c = 0; c < n; c++) {
    cf->mean[c] = mean[c0 + c];
    cf->is[c] = 1.0f / sqrtf(var[c0 + c] + eps);
    cf->za[c] = gamma[c0 + c] * cf->is[c];
    cf->beta[c] = beta[c0 + c];
  }
}

EN_INLINE void bn_fwd_loop(float *y, const float *x, const bn_coef *cf, int n, en_act act) {
  for (int c = 0; c < n; c++) y[c] = act_fwd((x[c] - cf->mean[c]) * cf->za[c] + cf->beta[c], act);
}

EN_CLONES static void bn_fwd_row(float *y, const float *x, const bn_coef *cf, int n, en_act act) {
#define F(a) bn_fwd_loop(y, x, cf, n, a)
  ACT_SWITCH(act, F)
#undef F
}

void en_bn_act_forward_train(float *y, float *mean, float *var, const float *x,
                             const float *gamma, const float *beta, int64_t rows, int C,
                             float eps, en_act act) {
  if (rows <= 0) {
    memset(mean, 0, (size_t)C * sizeof *mean);
    memset(var, 0, (size_t)C * sizeof *var);
    return;
  }
  bn_stats(mean, var, x, rows, C);
#pragma omp parallel
  {
    bn_coef cf;
    for (int c0 = 0; c0 < C; c0 += BN_CH) {
      int n = C - c0 < BN_CH ? C - c0 : BN_CH;
      bn_coef_fill(&cf, mean, var, gamma, beta, eps, c0, n);
#pragma omp for schedule(static) nowait
      for (int64_t r = 0; r < rows; r++) bn_fwd_row(y + r * C + c0, x + r * C + c0, &cf, n, act);
    }
  }
}

typedef struct bn_bwd_ctx {
  const float *dy, *x;
  float *dz; /* NULL, or receives dy * act'(z) so the dx pass need not evaluate act' again */
  int C;
  en_act act;
  const bn_coef *cf; /* of the reduction chunk */
  const en_bn_gate *gate; /* NULL, or dy is read as dy * gate + add per image */
} bn_bwd_ctx;

EN_INLINE en_vec vact_grad(en_vec z, en_act act) {
  float t[EN_LANES];
  memcpy(t, &z, sizeof t);
  for (int l = 0; l < EN_LANES; l++) t[l] = act_grad(t[l], act);
  memcpy(&z, t, sizeof t);
  return z;
}

/* One run of rows [r, end), one vector of channels (o, lanes, skip as en_vspan): dz = dy *
 * act'(z), stored (it may overwrite dy: read first; the lanes below skip, which the vector
 * before already turned into dz, give garbage that is neither stored nor summed), and the sums
 * of dz (dbeta) and dz * xhat (dgamma) kept in registers over the run, added in double. */
EN_INLINE void bn_sum_vec(double *s0, double *s1, const bn_bwd_ctx *t, int64_t r, int64_t end,
                          int c0, int o, int lanes, int skip, en_act act) {
  const bn_coef *cf = t->cf;
  en_vec mean = en_vload(cf->mean + o, lanes), za = en_vload(cf->za + o, lanes);
  en_vec beta = en_vload(cf->beta + o, lanes), is = en_vload(cf->is + o, lanes);
  en_vec f0 = {0}, f1 = {0};
  const en_bn_gate *g = t->gate;
  int64_t img = g ? r / g->hw : 0, next = g ? (img + 1) * g->hw : 0;
  for (int64_t q = r; q < end; q++) {
    int64_t at = q * t->C + c0 + o;
    en_vec xc = en_vload(t->x + at, lanes) - mean, dy = en_vload(t->dy + at, lanes);
    if (g) {
      if (q == next) img++, next += g->hw;
      int64_t gi = img * t->C + c0 + o;
      dy = dy * en_vload(g->gate + gi, lanes) + en_vload(g->add + gi, lanes);
    }
    en_vec dz = dy * vact_grad(xc * za + beta, act);
    if (t->dz) en_vstore_from(t->dz + at, dz, skip, lanes);
    f0 += dz;
    f1 += dz * (xc * is);
  }
  flush_run(s0 + o, s1 + o, f0, f1, skip, lanes);
}

EN_CLONES static void bn_sum_fn(double *s0, double *s1, const void *vctx, int64_t r0,
                                int64_t r1, int c0, int n) {
  const bn_bwd_ctx *t = vctx;
  for (int64_t r = r0; r < r1; r += RUN) {
    int64_t end = r + RUN < r1 ? r + RUN : r1;
    for (int i = 0; i * EN_LANES < n; i++) {
      int o, lanes, skip;
      en_vspan(n, i, &o, &lanes, &skip);
#define F(a) bn_sum_vec(s0, s1, t, r, end, c0, o, lanes, skip, a)
      ACT_SWITCH(t->act, F)
#undef F
    }
  }
}

/* dx = p dz + q + r xhat, dz read from dx where the sums pass stored it (dy == NULL), else
 * dz = dy * act'(z) evaluated again. */
EN_INLINE void bn_dx_loop(float *dx, const float *dy, const float *x, const bn_coef *cf, int n,
                          en_act act) {
  for (int c = 0; c < n; c++) {
    float xc = x[c] - cf->mean[c];
    float dz = dy ? dy[c] * act_grad(xc * cf->za[c] + cf->beta[c], act) : dx[c];
    dx[c] = cf->p[c] * dz + cf->q[c] + cf->r[c] * (xc * cf->is[c]);
  }
}

EN_CLONES static void bn_dx_row(float *dx, const float *dy, const float *x, const bn_coef *cf,
                                int n, en_act act) {
  if (!dy) {
    bn_dx_loop(dx, NULL, x, cf, n, EN_ACT_NONE);
    return;
  }
#define F(a) bn_dx_loop(dx, dy, x, cf, n, a)
  ACT_SWITCH(act, F)
#undef F
}

static void bn_grad_sums(float *dz, float *dgamma, float *dbeta, const float *dy,
                         const en_bn_gate *gate, const float *x, const float *mean,
                         const float *var, const float *gamma, const float *beta, int64_t rows,
                         int C, float eps, en_act act) {
  bn_coef cf;
  for (int c0 = 0; c0 < C; c0 += RED_CH) {
    int n = C - c0 < RED_CH ? C - c0 : RED_CH;
    double s0[RED_CH], s1[RED_CH];
    bn_coef_fill(&cf, mean, var, gamma, beta, eps, c0, n);
    bn_bwd_ctx t = {dy, x, dz, C, act, &cf, gate};
    reduce_chunk(s0, s1, bn_sum_fn, &t, rows, c0, n);
    for (int c = 0; c < n; c++) dbeta[c0 + c] = (float)s0[c], dgamma[c0 + c] = (float)s1[c];
  }
}

/* With xhat = (x - mean) * invstd, z = gamma * xhat + beta, N = rows:
 *   dxhat = gamma * dz;  dvar-path and dmean-path collapse to the classic
 *   dx = gamma * invstd / N * (N dz - sum dz - xhat * sum dz xhat)
 * i.e. dx = p dz + q + r xhat with p = gamma invstd, q = -p dbeta / N, r = -p dgamma / N. */
void en_bn_act_backward_gated(float *dx, float *dgamma, float *dbeta, const float *dy,
                              const en_bn_gate *gate, const float *x, const float *mean,
                              const float *var, const float *gamma, const float *beta,
                              int64_t rows, int C, float eps, en_act act) {
  /* storing dz = dy * act'(z) beats evaluating act' again in the dx pass (measured on swish:
   * ~5 % of a B0 training step); without an activation dz is dy and nothing is stored, unless
   * dy is gated (the dx pass reads only dz or the plain dy) */
  int store = act != EN_ACT_NONE || gate;
  bn_grad_sums(store ? dx : NULL, dgamma, dbeta, dy, gate, x, mean, var, gamma, beta, rows, C,
               eps, act);
  if (rows <= 0) return;
  float inv_n = (float)(1.0 / (double)rows);
#pragma omp parallel
  {
    bn_coef cf;
    for (int c0 = 0; c0 < C; c0 += BN_CH) {
      int n = C - c0 < BN_CH ? C - c0 : BN_CH;
      bn_coef_fill(&cf, mean, var, gamma, beta, eps, c0, n);
      for (int c = 0; c < n; c++) {
        cf.p[c] = cf.za[c];
        cf.q[c] = -cf.za[c] * dbeta[c0 + c] * inv_n;
        cf.r[c] = -cf.za[c] * dgamma[c0 + c] * inv_n;
      }
#pragma omp for schedule(static) nowait
      for (int64_t r = 0; r < rows; r++)
        bn_dx_row(dx + r * C + c0, store ? NULL : dy + r * C + c0, x + r * C + c0, &cf, n,
                  act);
    }
  }
}

void en_bn_act_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                        const float *x, const float *mean, const float *var,
                        const float *gamma, const float *beta, int64_t rows, int C, float eps,
                        en_act act) {
  en_bn_act_backward_gated(dx, dgamma, dbeta, dy, NULL, x, mean, var, gamma, beta, rows, C, eps,
                           act);
}

/* count < 2: the unbiased variance is undefined (PyTorch refuses to train BN on one value per
 * channel); the running variance is then left unchanged, the mean still updated. */
void en_bn_update_running(float *running_mean, float *running_var, const float *mean,
                          const float *var, int C, int64_t count, float momentum) {
  double m = momentum, unbias = count > 1 ? (double)count / (double)(count - 1) : 0.0;
  for (int c = 0; c < C; c++) {
    running_mean[c] = (float)((1.0 - m) * running_mean[c] + m * mean[c]);
    if (count > 1) running_var[c] = (float)((1.0 - m) * running_var[c] + m * var[c] * unbias);
  }
}

/* ---- activation backward ---- */

EN_INLINE void act_bwd_loop(float *dz, const float *dy, const float *z, int64_t n, en_act act) {
  for (int64_t i = 0; i < n; i++) dz[i] = dy[i] * act_grad(z[i], act);
}

EN_CLONES static void act_bwd_block(float *dz, const float *dy, const float *z, int64_t n,
                                    en_act act) {
#define F(a) act_bwd_loop(dz, dy, z, n, a)
  ACT_SWITCH(act, F)
#undef F
}

void en_act_backward(float *dz, const float *dy, const float *z, int64_t count, en_act act) {
  const int64_t blk = 4096;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; i += blk)
    act_bwd_block(dz + i, dy + i, z + i, count - i < blk ? count - i : blk, act);
}

/* ---- squeeze-excite ---- */

/* out[b, c] = sum over p of a[b, p, c] * (b2 ? b2[b, p, c] : 1), in double; one task per
 * (image, 64-channel chunk), so each sum is owned by one thread. */
EN_CLONES static void image_channel_dot(float *out, const float *a, const float *b2, int n,
                                        int64_t hw, int C, double scale) {
  int nch = (C + RED_CH - 1) / RED_CH;
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < n; b++)
    for (int k = 0; k < nch; k++) {
      int c0 = k * RED_CH, m = C - c0 < RED_CH ? C - c0 : RED_CH;
      double acc[RED_CH] = {0};
      const float *ab = a + (int64_t)b * hw * C + c0, *bb = b2 ? b2 + (int64_t)b * hw * C + c0 : 0;
      for (int64_t p = 0; p < hw; p++)
        if (bb)
          for (int c = 0; c < m; c++) acc[c] += (double)ab[p * C + c] * bb[p * C + c];
        else
          for (int c = 0; c < m; c++) acc[c] += ab[p * C + c];
      for (int c = 0; c < m; c++) out[(int64_t)b * C + c0 + c] = (float)(acc[c] * scale);
    }
}

EN_CLONES static void act_vec(float *out, const float *z, int64_t n, en_act act) {
#define F(a) for (int64_t i = 0; i < n; i++) out[i] = act_fwd(z[i], a)
  ACT_SWITCH(act, F)
#undef F
}

/* gate (n, C) = sigmoid(acth . w2^T + b2). */
static void se_gate(float *gate, const float *acth, const float *w2, const float *b2, int n,
                    int C, int se) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, C, se, 1.0f, acth, se, w2, se, 0.0f,
              gate, C);
  for (int64_t i = 0; i < (int64_t)n * C; i++) gate[i] = en_vsigmoid(gate[i] + b2[i % C]);
}

/* The same without a buffer for act(hidden): re-evaluates it per (image, channel). Only taken
 * when y is smaller than act(hidden) (hw * C < se), i.e. for degenerate tiny shapes. */
static void se_gate_small(float *gate, const float *hidden, const float *w2, const float *b2,
                          int n, int C, int se, en_act act) {
  for (int b = 0; b < n; b++)
    for (int c = 0; c < C; c++) {
      float acc = 0.0f;
      for (int j = 0; j < se; j++) {
        float h = hidden[(int64_t)b * se + j], a;
        act_vec(&a, &h, 1, act);
        acc += w2[(int64_t)c * se + j] * a;
      }
      gate[(int64_t)b * C + c] = en_vsigmoid(acc + b2[c]);
    }
}

/* y (n, hw, C) = x * gate[b] (+ add[b] when add is not NULL). y may alias x. */
EN_CLONES static void scale_rows(float *y, const float *x, const float *gate, const float *add,
                                 int n, int64_t hw, int C) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < (int64_t)n * hw; r++) {
    const float *g = gate + (r / hw) * C, *a = add ? add + (r / hw) * C : 0;
    float *yr = y + r * C;
    const float *xr = x + r * C;
    if (a)
      for (int c = 0; c < C; c++) yr[c] = xr[c] * g[c] + a[c];
    else
      for (int c = 0; c < C; c++) yr[c] = xr[c] * g[c];
  }
}

void en_se_forward_train(float *y, float *pool, float *hidden, float *gate, const float *x,
                         const float *w1, const float *b1, const float *w2, const float *b2,
                         int n, int64_t hw, int C, int se, en_act act) {
  image_channel_dot(pool, x, NULL, n, hw, C, 1.0 / (double)hw);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, se, C, 1.0f, pool, C, w1, C, 0.0f,
              hidden, se);
  for (int64_t i = 0; i < (int64_t)n * se; i++) hidden[i] += b1[i % se];
  /* y is not written yet and does not alias x: it holds act(hidden) for the gate GEMM */
  if (hw * C >= se) {
    act_vec(y, hidden, (int64_t)n * se, act);
    se_gate(gate, y, w2, b2, n, C, se);
  } else {
    se_gate_small(gate, hidden, w2, b2, n, C, se, act);
  }
  scale_rows(y, x, gate, NULL, n, hw, C);
}

/* out[j] = sum over images of a[b, j] (a bias gradient), in double. */
static void sum_images(float *out, const float *a, int n, int m) {
  for (int j = 0; j < m; j++) {
    double s = 0.0;
    for (int b = 0; b < n; b++) s += a[(int64_t)b * m + j];
    out[j] = (float)s;
  }
}

/* Chain rule through y = x * gate, gate = sigmoid(l2), l2 = w2 a + b2, a = act(h),
 * h = w1 pool + b1, pool = mean_hw x (per image):
 *   dgate = sum_hw dy x;  dl2 = dgate gate (1 - gate);  db2 = sum_n dl2;  dw2 = dl2^T a;
 *   dh = (dl2 w2) * act'(h);  db1 = sum_n dh;  dw1 = dh^T pool;  dpool = dh w1;
 *   dx = dy gate + dpool / hw  (the direct path plus the pooling path).
 * gate (1 - gate) from the stored float gate loses relative precision as the gate saturates
 * (1 - gate below ~1e-4), as in any float32 framework; the absolute error stays ~1e-7 |dgate|. */
void en_se_backward(float *dx, float *dw1, float *db1, float *dw2, float *db2, const float *dy,
                    const float *x, const float *pool, const float *hidden, const float *gate,
                    const float *w1, const float *w2, int n, int64_t hw, int C, int se,
                    en_act act, float *scratch) {
  float *dl2 = scratch, *dpool = en_se_pool_term(scratch, n, C), *acth = dpool + (int64_t)n * C;
  float *dh = acth + (int64_t)n * se;
  image_channel_dot(dl2, dy, x, n, hw, C, 1.0);
  for (int64_t i = 0; i < (int64_t)n * C; i++) dl2[i] *= gate[i] * (1.0f - gate[i]);
  act_vec(acth, hidden, (int64_t)n * se, act);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, se, n, 1.0f, dl2, C, acth, se, 0.0f,
              dw2, se);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, se, C, 1.0f, dl2, C, w2, se, 0.0f,
              dh, se);
#define F(a) for (int64_t i = 0; i < (int64_t)n * se; i++) dh[i] *= act_grad(hidden[i], a)
  ACT_SWITCH(act, F)
#undef F
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, se, C, n, 1.0f, dh, se, pool, C, 0.0f,
              dw1, C);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, C, se, 1.0f / (float)hw, dh, se, w1,
              C, 0.0f, dpool, C);
  sum_images(db2, dl2, n, C);
  sum_images(db1, dh, n, se);
  if (dx) scale_rows(dx, dy, gate, dpool, n, hw, C);
}
