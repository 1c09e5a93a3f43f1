/* Gradient checks of the training kernels (src/train/tkernels.h).
 *
 * Each kernel is checked against central finite differences of a double-precision forward of
 * the same op written here, with the loss L = sum(r .* out) for a random r (so dL/dout = r is
 * the dy given to the backward kernel). Shapes are random: odd channel counts 1..37, batch
 * 1..3, non-square h x w, stride 1 and 2, kernels 3 and 5 (and 1, 7), symmetric and TF-SAME
 * padding, every activation. Outputs are pre-filled with NaN, so an element a kernel fails to
 * write fails the check. Every aliasing the header allows is exercised.
 *
 * FD step H = 1e-5 on O(1) values: truncation H^2 f'''/6 ~ 1e-11 and double rounding
 * ~1e-16 |L| / H ~ 1e-10 are both far below the float32 error of the kernels (~1e-6 of the
 * gradient scale), so the FD value stands in for the exact gradient. The ops are separable,
 * so an FD evaluates only the part of L the perturbed value reaches (one channel, one row, one
 * image); that keeps an exhaustive check of every element affordable.
 *
 * Tolerance (per tensor): max |got - fd| <= TOL * max |fd| + ABS_TOL. The kernels sum in float
 * over short runs and in double over long ones, so their error is a few float ulps of the
 * largest terms, ~1e-6 of the gradient scale; TOL = 1e-4 leaves a wide margin yet fails any
 * wrong or missing term (which is O(1) of the scale). ABS_TOL = 1e-6 covers tensors whose
 * gradient is ~0 throughout (relu6 saturated everywhere). The worst error seen per kernel,
 * relative to max |fd|, is printed at the end. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "train/tkernels.h"
#include "testutil.h"

#define H 1e-5
#define TOL 1e-4
#define ABS_TOL 1e-6

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static double urand(void) { /* uniform in [-1, 1) */
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(rng >> 11) / (double)(1ull << 52) - 1.0;
}
static int irand(int lo, int hi) { return lo + (int)((urand() + 1.0) * 0.5 * (hi - lo + 1)); }
static int odd_rand(void) { return 2 * irand(0, 18) + 1; } /* 1..37 */

static float *fvec(size_t n, double scale) {
  float *v = malloc((n ? n : 1) * sizeof *v);
  for (size_t i = 0; i < n; i++) v[i] = (float)(scale * urand());
  return v;
}
static float *fnan(size_t n) {
  float *v = malloc((n ? n : 1) * sizeof *v);
  for (size_t i = 0; i < n; i++) v[i] = NAN;
  return v;
}
static double *dvec(const float *f, size_t n) {
  double *v = malloc((n ? n : 1) * sizeof *v);
  for (size_t i = 0; i < n; i++) v[i] = f[i];
  return v;
}
static double *dzeros(size_t n) { return calloc(n ? n : 1, sizeof(double)); }

static double act_d(double z, en_act act) {
  switch (act) {
    case EN_ACT_SWISH: return z / (1.0 + exp(-z));
    case EN_ACT_RELU6: return z < 0.0 ? 0.0 : (z > 6.0 ? 6.0 : z);
    case EN_ACT_SIGMOID: return 1.0 / (1.0 + exp(-z));
    default: return z;
  }
}
/* relu6 FD is only valid away from the kinks (the FD step moves z by << 1e-3). */
static int near_kink(double z, en_act act) {
  return act == EN_ACT_RELU6 && (fabs(z) < 1e-3 || fabs(z - 6.0) < 1e-3);
}
static const char *act_name(en_act a) {
  static const char *names[] = {"none", "swish", "relu6", "sigmoid"};
  return names[a];
}

/* ---- comparison and report ---- */

typedef struct report {
  const char *kernel;
  double worst, used; /* worst max|got - ref| / max|ref|; worst share of the allowance used */
} report;
static report reports[16];
static int n_reports;

static void record(const char *kernel, double err, double used) {
  for (int i = 0; i < n_reports; i++)
    if (strcmp(reports[i].kernel, kernel) == 0) {
      if (err > reports[i].worst) reports[i].worst = err;
      if (used > reports[i].used) reports[i].used = used;
      return;
    }
  reports[n_reports++] = (report){kernel, err, used};
}

/* got (float kernel) vs ref: max |got - ref| <= tol * max |ref| + abs_tol. */
static void check_close(const char *kernel, const char *what, const float *got,
                        const double *ref, size_t n, double tol, double abs_tol) {
  double scale = 0.0, err = 0.0;
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    double e = fabs((double)got[i] - ref[i]);
    if (!(e <= err)) err = isnan(e) ? INFINITY : e, at = i;
    if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
  }
  double allowed = tol * scale + abs_tol;
  CHECK_MSG(err <= allowed, "%s %s: max err %g at %zu (got %g, want %g), scale %g", kernel,
            what, err, at, n ? got[at] : 0.0, n ? ref[at] : 0.0, scale);
  record(kernel, scale > 0.0 ? err / scale : err, allowed > 0.0 ? err / allowed : err);
}

/* g[i] = dL/dp[i] by central differences; f(ctx, i) evaluates the part of L that p[i] reaches
 * (p is read through ctx, so it is perturbed in place). */
typedef double (*loss_fn)(const void *ctx, size_t i);
static void fd_grad(double *g, double *p, size_t n, loss_fn f, const void *ctx) {
  for (size_t i = 0; i < n; i++) {
    double save = p[i];
    p[i] = save + H;
    double lp = f(ctx, i);
    p[i] = save - H;
    double lm = f(ctx, i);
    p[i] = save;
    g[i] = (lp - lm) / (2.0 * H);
  }
}

/* ---- activation backward ---- */

static void test_act_backward(void) {
  for (int t = 0; t < 60; t++) {
    int64_t n = irand(1, 300);
    en_act act = (en_act)(t % 4);
    float *z = fvec(n, 8.0), *dy = fvec(n, 1.0), *dz = fnan(n);
    for (int64_t i = 0; i < n; i++)
      while (near_kink(z[i], act)) z[i] = (float)(8.0 * urand());
    double *ref = dzeros(n);
    for (int64_t i = 0; i < n; i++)
      ref[i] = dy[i] * (act_d(z[i] + H, act) - act_d(z[i] - H, act)) / (2.0 * H);
    if (t & 1) { /* dz aliases dy */
      memcpy(dz, dy, n * sizeof *dz);
      en_act_backward(dz, dz, z, n, act);
    } else {
      en_act_backward(dz, dy, z, n, act);
    }
    check_close("act_backward", act_name(act), dz, ref, n, TOL, ABS_TOL);
    free(z), free(dy), free(dz), free(ref);
  }
  /* relu6 at its kinks: PyTorch's hardtanh backward passes the gradient only strictly inside */
  float z[5] = {0.0f, 6.0f, 3.0f, -1.0f, 7.0f}, dy[5] = {1, 1, 1, 1, 1}, dz[5];
  en_act_backward(dz, dy, z, 5, EN_ACT_RELU6);
  CHECK(dz[0] == 0.0f && dz[1] == 0.0f && dz[2] == 1.0f && dz[3] == 0.0f && dz[4] == 0.0f);
  en_act_backward(dz, dy, z, 1, EN_ACT_SWISH);
  CHECK(fabsf(dz[0] - 0.5f) < 1e-6f);
  float big[2] = {-200.0f, 200.0f};
  en_act_backward(dz, dy, big, 2, EN_ACT_SWISH);
  CHECK(fabsf(dz[0]) < 1e-30f && dz[1] == 1.0f);
}

/* ---- batch norm ---- */

typedef struct bn_case {
  double *x, *gamma, *beta, *r;
  int64_t rows;
  int C;
  double eps;
  en_act act;
} bn_case;

/* Channel c's share of L = sum r .* act(gamma (x - mean) / sqrt(var + eps) + beta); the batch
 * mean and biased variance are two-pass in double. mean, var, y may be NULL. */
static double bn_channel(const bn_case *k, int c, double *mean, double *var, double *y) {
  double m = 0.0, v = 0.0, L = 0.0;
  for (int64_t i = 0; i < k->rows; i++) m += k->x[i * k->C + c];
  m /= (double)k->rows;
  for (int64_t i = 0; i < k->rows; i++) v += pow(k->x[i * k->C + c] - m, 2.0);
  v /= (double)k->rows;
  for (int64_t i = 0; i < k->rows; i++) {
    double z = k->gamma[c] * (k->x[i * k->C + c] - m) / sqrt(v + k->eps) + k->beta[c];
    double o = act_d(z, k->act);
    L += k->r[i * k->C + c] * o;
    if (y) y[i * k->C + c] = o;
  }
  if (mean) *mean = m, *var = v;
  return L;
}
static double bn_loss_x(const void *k, size_t i) { return bn_channel(k, (int)(i % ((const bn_case *)k)->C), 0, 0, 0); }
static double bn_loss_c(const void *k, size_t i) { return bn_channel(k, (int)i, 0, 0, 0); }

/* Channel c of x: offset and spread random; resampled until the spread is not tiny (FD of
 * 1/sqrt(var) needs var >> H) and, for relu6, no z lies within 1e-3 of a kink. */
static void bn_fill_channel(float *x, bn_case *k, int c) {
  for (int tries = 0; tries < 10000; tries++) {
    double off = 3.0 * urand(), sc = 0.5 + 1.5 * fabs(urand()), m, v;
    for (int64_t i = 0; i < k->rows; i++)
      k->x[i * k->C + c] = x[i * k->C + c] = (float)(off + sc * urand());
    bn_channel(k, c, &m, &v, NULL);
    int ok = k->rows < 2 || v > 0.05 * sc * sc;
    for (int64_t i = 0; ok && i < k->rows; i++)
      ok = !near_kink(k->gamma[c] * (k->x[i * k->C + c] - m) / sqrt(v + k->eps) + k->beta[c], k->act);
    if (ok) return;
  }
}

static void bn_check_forward(const bn_case *k, const float *y, const float *mean,
                             const float *var) {
  size_t n = (size_t)k->rows * k->C;
  double *ym = dzeros(n), *md = dzeros(k->C), *vd = dzeros(k->C);
  for (int c = 0; c < k->C; c++) bn_channel(k, c, &md[c], &vd[c], ym);
  /* mean, var: double sums, one float rounding of the result */
  check_close("bn_forward", "mean", mean, md, k->C, 1e-6, 1e-7);
  check_close("bn_forward", "var", var, vd, k->C, 1e-6, 1e-7);
  /* y: float z = (x - mean) * gamma * invstd + beta, a few ulps of |z| <= ~20 */
  check_close("bn_forward", "y", y, ym, n, 1e-5, 1e-6);
  free(ym), free(md), free(vd);
}

static void bn_check_backward(bn_case *k, const float *dx, const float *dgamma,
                              const float *dbeta) {
  size_t n = (size_t)k->rows * k->C;
  double *gx = dzeros(n), *gg = dzeros(k->C), *gb = dzeros(k->C);
  fd_grad(gx, k->x, n, bn_loss_x, k);
  fd_grad(gg, k->gamma, k->C, bn_loss_c, k);
  fd_grad(gb, k->beta, k->C, bn_loss_c, k);
  check_close("bn_backward", "dx", dx, gx, n, TOL, ABS_TOL);
  check_close("bn_backward", "dgamma", dgamma, gg, k->C, TOL, ABS_TOL);
  check_close("bn_backward", "dbeta", dbeta, gb, k->C, TOL, ABS_TOL);
  free(gx), free(gg), free(gb);
}

static void test_bn_case(int64_t rows, int C, en_act act, float eps, int alias) {
  size_t n = (size_t)rows * C;
  float *x = fnan(n), *gamma = fnan(C), *beta = fnan(C), *r = fvec(n, 1.0);
  bn_case k = {dzeros(n), dzeros(C), dzeros(C), dvec(r, n), rows, C, eps, act};
  for (int c = 0; c < C; c++) {
    k.gamma[c] = gamma[c] = (float)((0.5 + 1.5 * fabs(urand())) * (urand() < 0 ? -1 : 1));
    /* relu6: beta spread over [-1, 7] so both kinks and the linear part are hit */
    k.beta[c] = beta[c] = (float)(act == EN_ACT_RELU6 ? 3.0 + 4.0 * urand() : 2.0 * urand());
    bn_fill_channel(x, &k, c);
  }
  float *y = fnan(n), *mean = fnan(C), *var = fnan(C);
  en_bn_act_forward_train(y, mean, var, x, gamma, beta, rows, C, eps, act);
  bn_check_forward(&k, y, mean, var);
  float *dx = fnan(n), *dgamma = fnan(C), *dbeta = fnan(C);
  if (alias) memcpy(dx, r, n * sizeof *dx);
  en_bn_act_backward(dx, dgamma, dbeta, alias ? dx : r, x, mean, var, gamma, beta, rows, C, eps,
                     act);
  bn_check_backward(&k, dx, dgamma, dbeta);
  free(x), free(gamma), free(beta), free(r), free(y), free(mean), free(var), free(dx);
  free(dgamma), free(dbeta), free(k.x), free(k.gamma), free(k.beta), free(k.r);
}

/* 32768 rows (128 x 16 x 16) with |mean| / std ~ 900: a float or unshifted one-pass variance
 * would be off by orders of magnitude; the kernel must match two-pass double to float
 * rounding. Also: bitwise the same with 1 thread and with all of them. */
static void test_bn_large(void) {
  int64_t rows = 32768;
  int C = 5;
  size_t n = (size_t)rows * C;
  float *x = fvec(n, 0.1), *gamma = fvec(C, 1.0), *beta = fvec(C, 1.0);
  for (size_t i = 0; i < n; i++) x[i] += 50.0f;
  float *y1 = fnan(n), *y2 = fnan(n), *m1 = fnan(C), *v1 = fnan(C), *m2 = fnan(C), *v2 = fnan(C);
  en_bn_act_forward_train(y1, m1, v1, x, gamma, beta, rows, C, 1e-3f, EN_ACT_SWISH);
  for (int c = 0; c < C; c++) {
    double m = 0.0, v = 0.0;
    for (int64_t i = 0; i < rows; i++) m += x[i * C + c];
    m /= (double)rows;
    for (int64_t i = 0; i < rows; i++) v += pow(x[i * C + c] - m, 2.0);
    v /= (double)rows;
    CHECK_MSG(fabs(m1[c] - m) <= 1e-7 * fabs(m), "bn large mean %g vs %g", m1[c], m);
    CHECK_MSG(fabs(v1[c] - v) <= 1e-6 * v, "bn large var %.9g vs %.9g", v1[c], v);
  }
  float *dx1 = fnan(n), *dx2 = fnan(n), *dg1 = fnan(C), *dg2 = fnan(C), *db1 = fnan(C), *db2 = fnan(C);
  en_bn_act_backward(dx1, dg1, db1, y1, x, m1, v1, gamma, beta, rows, C, 1e-3f, EN_ACT_SWISH);
  int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  en_bn_act_forward_train(y2, m2, v2, x, gamma, beta, rows, C, 1e-3f, EN_ACT_SWISH);
  en_bn_act_backward(dx2, dg2, db2, y2, x, m2, v2, gamma, beta, rows, C, 1e-3f, EN_ACT_SWISH);
  omp_set_num_threads(threads);
  CHECK(memcmp(m1, m2, C * sizeof *m1) == 0 && memcmp(v1, v2, C * sizeof *v1) == 0);
  CHECK(memcmp(y1, y2, n * sizeof *y1) == 0 && memcmp(dx1, dx2, n * sizeof *dx1) == 0);
  CHECK(memcmp(dg1, dg2, C * sizeof *dg1) == 0 && memcmp(db1, db2, C * sizeof *db1) == 0);
  free(x), free(gamma), free(beta), free(y1), free(y2), free(m1), free(v1), free(m2), free(v2);
  free(dx1), free(dx2), free(dg1), free(dg2), free(db1), free(db2);
}

/* One row: xhat = 0 for every x, so y = act(beta) and dx = 0, dbeta = dy act'(beta). */
static void test_bn_one_row(void) {
  float x[3] = {1.0f, -2.0f, 5.0f}, g[3] = {1.0f, 2.0f, -1.0f}, b[3] = {0.5f, -1.0f, 2.0f};
  float y[3], m[3], v[3], dy[3] = {1.0f, -1.0f, 2.0f}, dx[3], dg[3], db[3];
  en_bn_act_forward_train(y, m, v, x, g, b, 1, 3, 1e-5f, EN_ACT_RELU6);
  CHECK(y[0] == 0.5f && y[1] == 0.0f && y[2] == 2.0f && v[0] == 0.0f && m[2] == 5.0f);
  en_bn_act_backward(dx, dg, db, dy, x, m, v, g, b, 1, 3, 1e-5f, EN_ACT_RELU6);
  CHECK(fabsf(dx[0]) < 1e-6f && fabsf(dx[1]) < 1e-6f && fabsf(dx[2]) < 1e-6f);
  CHECK(db[0] == 1.0f && db[1] == 0.0f && db[2] == 2.0f && dg[0] == 0.0f);
}

/* BN backward reading dy through a per-image gate and add (squeeze-excite's input gradient)
 * == the same BN backward of the explicitly gated dy; images of hw rows cross the kernel's
 * runs of 16 rows and its row blocks; every activation (act none still gated). */
static void test_bn_gated(void) {
  for (int t = 0; t < 16; t++) {
    int n = irand(1, 5), C = t % 3 ? odd_rand() : irand(60, 140);
    int64_t hw = irand(1, 90), rows = n * hw;
    en_act act = (en_act)(t % 4);
    size_t e = (size_t)rows * C;
    float *x = fvec(e, 1.0), *dy = fvec(e, 1.0), *gate = fvec((size_t)n * C, 1.0);
    float *add = fvec((size_t)n * C, 0.1), *gamma = fvec(C, 1.0), *beta = fvec(C, 1.0);
    float *mean = fnan(C), *var = fnan(C), *y = fnan(e), *dx1 = fnan(e), *dx2 = fnan(e);
    float *dg1 = fnan(C), *db1 = fnan(C), *dg2 = fnan(C), *db2 = fnan(C);
    en_bn_act_forward_train(y, mean, var, x, gamma, beta, rows, C, 1e-3f, act);
    for (size_t i = 0; i < e; i++) {
      size_t g = (size_t)(i / C / hw) * C + i % C;
      dx2[i] = dy[i] * gate[g] + add[g];
    }
    en_bn_act_backward(dx2, dg2, db2, dx2, x, mean, var, gamma, beta, rows, C, 1e-3f, act);
    en_bn_gate gt = {gate, add, hw};
    memcpy(dx1, dy, e * sizeof *dx1);
    en_bn_act_backward_gated(dx1, dg1, db1, dx1, &gt, x, mean, var, gamma, beta, rows, C, 1e-3f,
                             act);
    double scale = 1e-6, worst = 0.0;
    for (size_t i = 0; i < e; i++) scale = fmax(scale, fabs(dx2[i]));
    for (size_t i = 0; i < e; i++) worst = fmax(worst, fabs(dx1[i] - dx2[i]) / scale);
    for (int c = 0; c < C; c++)
      worst = fmax(worst, fmax(fabs(dg1[c] - dg2[c]), fabs(db1[c] - db2[c])) /
                              fmax(1e-6, fmax(fabs(dg2[c]), fabs(db2[c]))));
    CHECK_MSG(worst < 1e-5, "bn gated n%d hw%lld C%d act%d: %g", n, (long long)hw, C, act, worst);
    free(x), free(dy), free(gate), free(add), free(gamma), free(beta), free(mean), free(var);
    free(y), free(dx1), free(dx2), free(dg1), free(db1), free(dg2), free(db2);
  }
}

static void test_bn(void) {
  for (int t = 0; t < 40; t++)
    test_bn_case(irand(2, 160), odd_rand(), (en_act)(t % 4), t & 4 ? 1e-5f : 1e-3f, t & 1);
  /* wider than one channel chunk of the kernel (64 for sums, 256 for coefficients) */
  test_bn_case(9, 301, EN_ACT_SWISH, 1e-3f, 1);
  test_bn_case(70, 131, EN_ACT_RELU6, 1e-5f, 0);
  test_bn_large();
  test_bn_one_row();
  test_bn_gated();
}

static void test_bn_running(void) {
  float rm[3] = {1.0f, 2.0f, 3.0f}, rv[3] = {1.0f, 1.0f, 2.0f};
  float m[3] = {0.5f, -1.0f, 4.0f}, v[3] = {2.0f, 0.5f, 0.0f};
  en_bn_update_running(rm, rv, m, v, 3, 10, 0.1f);
  for (int c = 0; c < 3; c++) {
    double em = 0.9 * (c + 1.0) + 0.1 * m[c], ev = 0.9 * (c == 2 ? 2.0 : 1.0) + 0.1 * v[c] * 10 / 9;
    CHECK_MSG(fabs(rm[c] - em) < 1e-6 && fabs(rv[c] - ev) < 1e-6, "running %d: %g %g", c, rm[c],
              rv[c]);
  }
  float rm0 = rm[1], rv0 = rv[1];
  en_bn_update_running(rm, rv, m, v, 3, 1, 0.5f); /* count 1: variance left alone */
  CHECK(rv[1] == rv0 && fabsf(rm[1] - (0.5f * rm0 + 0.5f * m[1])) < 1e-6f);
}

/* ---- pointwise / linear ---- */

typedef struct pw_case {
  double *in, *w, *b, *r;
  int64_t rows;
  int cin, cout;
} pw_case;

/* L over rows [r0, r1) and output channels [c0, c1) of out = in . w^T + b. */
static double pw_loss(const pw_case *k, int64_t r0, int64_t r1, int c0, int c1) {
  double L = 0.0;
  for (int64_t i = r0; i < r1; i++)
    for (int co = c0; co < c1; co++) {
      double o = k->b[co];
      for (int ci = 0; ci < k->cin; ci++) o += k->in[i * k->cin + ci] * k->w[co * k->cin + ci];
      L += k->r[i * k->cout + co] * o;
    }
  return L;
}
static double pw_loss_in(const void *v, size_t i) {
  const pw_case *k = v;
  return pw_loss(k, i / k->cin, i / k->cin + 1, 0, k->cout);
}
static double pw_loss_w(const void *v, size_t i) {
  const pw_case *k = v;
  return pw_loss(k, 0, k->rows, (int)(i / k->cin), (int)(i / k->cin) + 1);
}
static double pw_loss_b(const void *v, size_t i) {
  const pw_case *k = v;
  return pw_loss(k, 0, k->rows, (int)i, (int)i + 1);
}

static void test_pointwise(void) {
  for (int t = 0; t < 50; t++) {
    int64_t rows = irand(1, 60);
    int cin = t & 1 ? odd_rand() : irand(1, 37), cout = t & 2 ? odd_rand() : irand(1, 37);
    if (t == 49) rows = 5, cout = 150; /* db over more than one 64-channel chunk */
    int want_din = t % 5 != 4, want_db = t % 3 != 2;
    float *in = fvec(rows * cin, 1.0), *w = fvec((size_t)cout * cin, 1.0), *r = fvec(rows * cout, 1.0);
    float *din = fnan(rows * cin), *dw = fnan((size_t)cout * cin), *db = fnan(cout);
    size_t sf = en_pointwise_scratch_floats(cin, cout) + (size_t)(t % 4) * cin * cout;
    float *scratch = fnan(sf);
    en_pointwise_backward(want_din ? din : NULL, dw, want_db ? db : NULL, r, in, w, rows, cin,
                          cout, scratch, sf);
    pw_case k = {dvec(in, rows * cin), dvec(w, (size_t)cout * cin), dzeros(cout),
                 dvec(r, rows * cout), rows, cin, cout};
    double *gin = dzeros(rows * cin), *gw = dzeros((size_t)cout * cin), *gb = dzeros(cout);
    fd_grad(gin, k.in, rows * cin, pw_loss_in, &k);
    fd_grad(gw, k.w, (size_t)cout * cin, pw_loss_w, &k);
    fd_grad(gb, k.b, cout, pw_loss_b, &k);
    if (want_din) check_close("pointwise_backward", "din", din, gin, rows * cin, TOL, ABS_TOL);
    check_close("pointwise_backward", "dw", dw, gw, (size_t)cout * cin, TOL, ABS_TOL);
    if (want_db) check_close("pointwise_backward", "db", db, gb, cout, TOL, ABS_TOL);
    free(in), free(w), free(r), free(din), free(dw), free(db), free(k.in), free(k.w), free(k.b);
    free(k.r), free(gin), free(gw), free(gb), free(scratch);
  }
  /* enough pixels for the weight gradient to be split over threads: the sum of the parts
   * against a double-precision dout^T . in */
  for (int t = 0; t < 3; t++) {
    int64_t rows = 3000 + 977 * t;
    int cin = 13 + 8 * t, cout = 21 - 5 * t;
    size_t sf = (size_t)4 * cin * cout + en_pointwise_scratch_floats(cin, cout);
    float *in = fvec(rows * cin, 1.0), *r = fvec(rows * cout, 1.0), *w = fvec((size_t)cin * cout, 1.0);
    float *dw = fnan((size_t)cin * cout), *scratch = fnan(sf);
    double *want = dzeros((size_t)cin * cout);
    en_pointwise_backward(NULL, dw, NULL, r, in, w, rows, cin, cout, scratch, sf);
    for (int64_t q = 0; q < rows; q++)
      for (int co = 0; co < cout; co++)
        for (int ci = 0; ci < cin; ci++) want[co * cin + ci] += (double)r[q * cout + co] * in[q * cin + ci];
    check_close("pointwise_backward", "dw (split)", dw, want, (size_t)cin * cout, TOL, ABS_TOL);
    free(in), free(r), free(w), free(dw), free(scratch), free(want);
  }
  float dw[6] = {NAN, NAN, NAN, NAN, NAN, NAN}, db[2] = {NAN, NAN}, one = 1.0f;
  en_pointwise_backward(NULL, dw, db, &one, &one, dw, 0, 3, 2, NULL, 0); /* no rows: zeros */
  CHECK(dw[0] == 0.0f && dw[5] == 0.0f && db[0] == 0.0f && db[1] == 0.0f);
}

/* ---- convolutions ---- */

static en_conv_desc random_desc(int depthwise) {
  static const int dw_kernels[] = {3, 5, 3, 5, 1, 7}, stem_kernels[] = {3, 5, 3, 1};
  en_conv_desc d;
  d.n = irand(1, depthwise ? 3 : 2);
  d.h = irand(1, depthwise ? 12 : 9);
  d.w = irand(1, depthwise ? 13 : 9);
  d.cin = depthwise ? odd_rand() : irand(1, 4);
  d.cout = depthwise ? d.cin : irand(1, 9);
  d.kernel = depthwise ? dw_kernels[irand(0, 5)] : stem_kernels[irand(0, 3)];
  d.stride = irand(1, 2);
  int pb, pr;
  effnet_padding pad = irand(0, 1) ? EFFNET_PAD_TF_SAME : EFFNET_PAD_SYMMETRIC;
  en_padding(pad, d.h, d.kernel, d.stride, &d.pad_top, &pb);
  en_padding(pad, d.w, d.kernel, d.stride, &d.pad_left, &pr);
  d.oh = en_conv_out(d.h, d.stride);
  d.ow = en_conv_out(d.w, d.stride);
  d.act = EN_ACT_SWISH; /* ignored by the backward kernels */
  return d;
}

typedef struct conv_case {
  double *in, *w, *r;
  en_conv_desc d;
} conv_case;

/* L restricted to output channel co of a dense (OHWI) or depthwise (HWC) conv, no bias. */
static double conv_channel_loss(const conv_case *k, int co, int depthwise) {
  const en_conv_desc *d = &k->d;
  int K = d->kernel, cin = depthwise ? 1 : d->cin;
  double L = 0.0;
  for (int b = 0; b < d->n; b++)
    for (int oy = 0; oy < d->oh; oy++)
      for (int ox = 0; ox < d->ow; ox++) {
        double o = 0.0;
        for (int ky = 0; ky < K; ky++)
          for (int kx = 0; kx < K; kx++) {
            int iy = oy * d->stride - d->pad_top + ky, ix = ox * d->stride - d->pad_left + kx;
            if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w) continue;
            const double *px = k->in + (((int64_t)b * d->h + iy) * d->w + ix) * d->cin;
            for (int ci = 0; ci < cin; ci++)
              o += depthwise ? px[co] * k->w[(ky * K + kx) * d->cout + co]
                             : px[ci] * k->w[(((int64_t)co * K + ky) * K + kx) * d->cin + ci];
          }
        L += k->r[(((int64_t)b * d->oh + oy) * d->ow + ox) * d->cout + co] * o;
      }
  return L;
}
static double conv_loss_w(const void *v, size_t i) {
  const conv_case *k = v;
  int k2c = k->d.kernel * k->d.kernel * k->d.cin;
  return conv_channel_loss(k, (int)(i / k2c), 0);
}
static double dw_loss(const void *v, size_t i) {
  const conv_case *k = v;
  return conv_channel_loss(k, (int)(i % k->d.cout), 1);
}

static void test_conv_weight(void) {
  for (int t = 0; t < 40; t++) {
    en_conv_desc d = random_desc(0);
    if (t % 8 == 0) { /* the stem's window with several, ragged 16-channel panels */
      int pb, pr;
      d.cin = 3, d.kernel = 3, d.cout = irand(17, 40);
      en_padding(EFFNET_PAD_TF_SAME, d.h, 3, d.stride, &d.pad_top, &pb);
      en_padding(EFFNET_PAD_TF_SAME, d.w, 3, d.stride, &d.pad_left, &pr);
    }
    size_t in_n = (size_t)d.n * d.h * d.w * d.cin, out_n = (size_t)d.n * d.oh * d.ow * d.cout;
    size_t w_n = (size_t)d.cout * d.kernel * d.kernel * d.cin;
    size_t sn = en_conv_backward_weight_scratch(&d);
    float *in = fvec(in_n, 1.0), *r = fvec(out_n, 1.0), *dw = fnan(w_n);
    float *scratch = sn ? fnan(sn) : NULL;
    en_conv_backward_weight(dw, r, in, &d, scratch);
    conv_case k = {dvec(in, in_n), dzeros(w_n), dvec(r, out_n), d};
    double *gw = dzeros(w_n);
    fd_grad(gw, k.w, w_n, conv_loss_w, &k);
    check_close("conv_backward_weight", "dw", dw, gw, w_n, TOL, ABS_TOL);
    free(in), free(r), free(dw), free(scratch), free(k.in), free(k.w), free(k.r), free(gw);
  }
}

static void test_depthwise(void) {
  for (int t = 0; t < 60 + 32; t++) {
    en_conv_desc d = random_desc(1);
    if (t >= 60) { /* narrow rows: windows wider than the row, TF-SAME's pad 0 before (k3 s2) */
      int u = t - 60, pb, pr;
      d.w = 1 + u % 4, d.kernel = (u / 4) % 2 ? 5 : 3, d.stride = 1 + (u / 8) % 2;
      d.h = 1 + u % 3, d.n = 1, d.cin = d.cout = u % 3 ? 16 : 21;
      effnet_padding pad = u / 16 ? EFFNET_PAD_SYMMETRIC : EFFNET_PAD_TF_SAME;
      en_padding(pad, d.h, d.kernel, d.stride, &d.pad_top, &pb);
      en_padding(pad, d.w, d.kernel, d.stride, &d.pad_left, &pr);
      d.oh = en_conv_out(d.h, d.stride), d.ow = en_conv_out(d.w, d.stride);
    }
    int want_din = t % 4 != 3;
    size_t in_n = (size_t)d.n * d.h * d.w * d.cin, out_n = (size_t)d.n * d.oh * d.ow * d.cout;
    size_t w_n = (size_t)d.kernel * d.kernel * d.cin;
    float *in = fvec(in_n, 1.0), *w = fvec(w_n, 1.0), *r = fvec(out_n, 1.0);
    float *din = fnan(in_n), *dw = fnan(w_n);
    en_depthwise_backward(want_din ? din : NULL, dw, r, in, w, &d);
    conv_case k = {dvec(in, in_n), dvec(w, w_n), dvec(r, out_n), d};
    double *gin = dzeros(in_n), *gw = dzeros(w_n);
    fd_grad(gin, k.in, in_n, dw_loss, &k);
    fd_grad(gw, k.w, w_n, dw_loss, &k);
    if (want_din) check_close("depthwise_backward", "din", din, gin, in_n, TOL, ABS_TOL);
    check_close("depthwise_backward", "dw", dw, gw, w_n, TOL, ABS_TOL);
    if (t == 0) { /* the weight reduction does not depend on the thread count */
      float *dw1 = fnan(w_n);
      int threads = omp_get_max_threads();
      omp_set_num_threads(1);
      en_depthwise_backward(NULL, dw1, r, in, w, &d);
      omp_set_num_threads(threads);
      CHECK(memcmp(dw, dw1, w_n * sizeof *dw) == 0);
      free(dw1);
    }
    free(in), free(w), free(r), free(din), free(dw), free(k.in), free(k.w), free(k.r);
    free(gin), free(gw);
  }
}

/* ---- squeeze-excite ---- */

typedef struct se_case {
  double *x, *w1, *b1, *w2, *b2, *r;
  int n, C, se;
  int64_t hw;
  en_act act;
} se_case;

enum { SE_MAX_C = 160, SE_MAX_SE = 9 };

/* Image b: pool = mean x, h = w1 pool + b1, gate = sigmoid(w2 act(h) + b2), y = x gate;
 * returns its share of L = sum r .* y. Outputs (per image) may be NULL. */
static double se_image(const se_case *k, int b, double *pool, double *hid, double *gate,
                       double *y) {
  int C = k->C, se = k->se;
  double p[SE_MAX_C], h[SE_MAX_SE], a[SE_MAX_SE], g[SE_MAX_C], L = 0.0;
  const double *xb = k->x + (int64_t)b * k->hw * C, *rb = k->r + (int64_t)b * k->hw * C;
  for (int c = 0; c < C; c++) {
    p[c] = 0.0;
    for (int64_t i = 0; i < k->hw; i++) p[c] += xb[i * C + c];
    p[c] /= (double)k->hw;
  }
  for (int j = 0; j < se; j++) {
    h[j] = k->b1[j];
    for (int c = 0; c < C; c++) h[j] += k->w1[j * C + c] * p[c];
    a[j] = act_d(h[j], k->act);
  }
  for (int c = 0; c < C; c++) {
    double l = k->b2[c];
    for (int j = 0; j < se; j++) l += k->w2[c * se + j] * a[j];
    g[c] = 1.0 / (1.0 + exp(-l));
  }
  for (int64_t i = 0; i < k->hw * C; i++) {
    L += rb[i] * xb[i] * g[i % C];
    if (y) y[(int64_t)b * k->hw * C + i] = xb[i] * g[i % C];
  }
  if (pool) memcpy(pool + b * C, p, C * sizeof *p), memcpy(gate + b * C, g, C * sizeof *g);
  if (hid) memcpy(hid + b * se, h, se * sizeof *h);
  return L;
}
static double se_loss_x(const void *v, size_t i) {
  const se_case *k = v;
  return se_image(k, (int)(i / (k->hw * k->C)), 0, 0, 0, 0);
}
static double se_loss(const void *v, size_t i) {
  const se_case *k = v;
  double L = 0.0;
  for (int b = 0; b < k->n; b++) L += se_image(k, b, 0, 0, 0, 0);
  return L;
}

typedef struct se_bufs {
  float *x, *w1, *b1, *w2, *b2, *r;
} se_bufs;

/* Random weights; for relu6 b1 spans [-2, 8] (both kinds of saturation) and is resampled
 * until no hidden unit lies within 1e-3 of a kink. */
static void se_fill(se_case *k, se_bufs *f) {
  size_t xn = (size_t)k->n * k->hw * k->C;
  f->x = fvec(xn, 2.0), f->r = fvec(xn, 1.0), f->w1 = fvec((size_t)k->se * k->C, 1.0);
  f->w2 = fvec((size_t)k->C * k->se, 1.0), f->b2 = fvec(k->C, 1.0), f->b1 = fvec(k->se, 1.0);
  k->x = dvec(f->x, xn), k->r = dvec(f->r, xn), k->w1 = dvec(f->w1, (size_t)k->se * k->C);
  k->w2 = dvec(f->w2, (size_t)k->C * k->se), k->b2 = dvec(f->b2, k->C), k->b1 = dzeros(k->se);
  double hid[3 * SE_MAX_SE];
  for (int ok = 0, tries = 0; !ok && tries < 10000; tries++) {
    for (int j = 0; j < k->se; j++)
      k->b1[j] = f->b1[j] = (float)(k->act == EN_ACT_RELU6 ? 3.0 + 5.0 * urand() : urand());
    ok = 1;
    for (int b = 0; b < k->n; b++) se_image(k, b, NULL, hid, NULL, NULL);
    for (int i = 0; i < k->n * k->se; i++) ok &= !near_kink(hid[i], k->act);
  }
}

static void se_check_forward(const se_case *k, const float *y, const float *pool,
                             const float *hid, const float *gate) {
  size_t xn = (size_t)k->n * k->hw * k->C;
  double *yd = dzeros(xn), *pd = dzeros(k->n * k->C), *hd = dzeros(k->n * k->se);
  double *gd = dzeros(k->n * k->C);
  for (int b = 0; b < k->n; b++) se_image(k, b, pd, hd, gd, yd);
  /* float dot products of <= 37 terms and one sigmoid: a few ulps of the scale */
  check_close("se_forward", "pool", pool, pd, k->n * k->C, 1e-5, 1e-6);
  check_close("se_forward", "hidden", hid, hd, k->n * k->se, 1e-5, 1e-6);
  check_close("se_forward", "gate", gate, gd, k->n * k->C, 1e-5, 1e-6);
  check_close("se_forward", "y", y, yd, xn, 1e-5, 1e-6);
  free(yd), free(pd), free(hd), free(gd);
}

static void se_check_backward(se_case *k, const float *dx, const float *dw1, const float *db1,
                              const float *dw2, const float *db2) {
  size_t xn = (size_t)k->n * k->hw * k->C, wn = (size_t)k->se * k->C;
  double *gx = dzeros(xn), *gw1 = dzeros(wn), *gb1 = dzeros(k->se), *gw2 = dzeros(wn);
  double *gb2 = dzeros(k->C);
  fd_grad(gx, k->x, xn, se_loss_x, k);
  fd_grad(gw1, k->w1, wn, se_loss, k);
  fd_grad(gb1, k->b1, k->se, se_loss, k);
  fd_grad(gw2, k->w2, wn, se_loss, k);
  fd_grad(gb2, k->b2, k->C, se_loss, k);
  check_close("se_backward", "dx", dx, gx, xn, TOL, ABS_TOL);
  check_close("se_backward", "dw1", dw1, gw1, wn, TOL, ABS_TOL);
  check_close("se_backward", "db1", db1, gb1, k->se, TOL, ABS_TOL);
  check_close("se_backward", "dw2", dw2, gw2, wn, TOL, ABS_TOL);
  check_close("se_backward", "db2", db2, gb2, k->C, TOL, ABS_TOL);
  free(gx), free(gw1), free(gb1), free(gw2), free(gb2);
}

static void test_se_case(int n, int64_t hw, int C, int se, en_act act, int alias) {
  se_case k = {0};
  se_bufs f;
  k.n = n, k.hw = hw, k.C = C, k.se = se, k.act = act;
  se_fill(&k, &f);
  size_t xn = (size_t)n * hw * C;
  float *y = fnan(xn), *pool = fnan(n * C), *hid = fnan(n * se), *gate = fnan(n * C);
  en_se_forward_train(y, pool, hid, gate, f.x, f.w1, f.b1, f.w2, f.b2, n, hw, C, se, act);
  se_check_forward(&k, y, pool, hid, gate);
  float *dx = fnan(xn), *dw1 = fnan(se * C), *db1 = fnan(se), *dw2 = fnan(C * se), *db2 = fnan(C);
  float *scratch = fnan((size_t)n * (2 * C + 2 * se)); /* exactly the documented size */
  if (alias) memcpy(dx, f.r, xn * sizeof *dx);
  en_se_backward(dx, dw1, db1, dw2, db2, alias ? dx : f.r, f.x, pool, hid, gate, f.w1, f.w2, n,
                 hw, C, se, act, scratch);
  se_check_backward(&k, dx, dw1, db1, dw2, db2);
  free(y), free(pool), free(hid), free(gate), free(dx), free(dw1), free(db1), free(dw2);
  free(db2), free(scratch), free(f.x), free(f.w1), free(f.b1), free(f.w2), free(f.b2), free(f.r);
  free(k.x), free(k.w1), free(k.b1), free(k.w2), free(k.b2), free(k.r);
}

static void test_se(void) {
  for (int t = 0; t < 50; t++) {
    if (t % 10 == 9) /* hw * C < se: the kernel's path without a buffer for act(hidden) */
      test_se_case(irand(1, 3), 1, irand(1, 3), irand(4, 9), (en_act)(t % 4), t & 1);
    else
      test_se_case(irand(1, 3), irand(1, 20), odd_rand(), irand(1, 9), (en_act)(t % 4), t & 1);
  }
  test_se_case(2, 3, 157, 5, EN_ACT_SWISH, 1); /* more than one 64-channel chunk */
}

/* ---- pool, loss ---- */

static void test_pool_backward(void) {
  for (int t = 0; t < 20; t++) {
    int n = irand(1, 3), C = odd_rand();
    int64_t hw = irand(1, 50);
    float *dout = fvec((size_t)n * C, 1.0), *dx = fnan((size_t)n * hw * C);
    en_pool_backward(dx, dout, n, hw, C);
    /* L = sum r .* mean_hw x is linear: dL/dx[b, p, c] = r[b, c] / hw exactly */
    double *ref = dzeros((size_t)n * hw * C);
    for (int64_t i = 0; i < (int64_t)n * hw * C; i++)
      ref[i] = dout[(i / (hw * C)) * C + i % C] / (double)hw;
    check_close("pool_backward", "dx", dx, ref, (size_t)n * hw * C, 1e-6, 0.0);
    free(dout), free(dx), free(ref);
  }
}

typedef struct xent_case {
  double *l;
  const int *labels;
  int n, K;
  double eps;
} xent_case;

/* Mean over samples of torch's label-smoothed cross-entropy, straight from its definition:
 * (1 - eps) * (-log p_label) + eps * mean_k (-log p_k). */
static double xent_ref(const void *v, size_t unused) {
  const xent_case *k = v;
  double total = 0.0;
  for (int i = 0; i < k->n; i++) {
    const double *l = k->l + (int64_t)i * k->K;
    double mx = l[0], s = 0.0, smooth = 0.0;
    for (int j = 1; j < k->K; j++) mx = fmax(mx, l[j]);
    for (int j = 0; j < k->K; j++) s += exp(l[j] - mx);
    double lse = mx + log(s);
    for (int j = 0; j < k->K; j++) smooth += (lse - l[j]) / k->K;
    total += (1.0 - k->eps) * (lse - l[k->labels[i]]) + k->eps * smooth;
  }
  return total / k->n;
}

static void test_softmax_xent(void) {
  for (int t = 0; t < 60; t++) {
    int n = irand(1, 5), K = t % 7 == 6 ? 1 : irand(1, 37), mode = t % 3;
    float eps = t & 1 ? 0.1f : 0.0f;
    double scale = t % 4 == 0 ? 20.0 : (t % 4 == 1 ? 300.0 : 3.0);
    float *l = fvec((size_t)n * K, scale), *d = fnan((size_t)n * K);
    int labels[5];
    for (int i = 0; i < n; i++) labels[i] = irand(0, K - 1);
    xent_case k = {dvec(l, (size_t)n * K), labels, n, K, eps};
    double loss, ref = xent_ref(&k, 0);
    if (mode == 1) { /* dlogits aliases logits */
      memcpy(d, l, (size_t)n * K * sizeof *d);
      loss = en_softmax_xent(d, d, labels, n, K, eps);
    } else {
      loss = en_softmax_xent(mode == 2 ? NULL : d, l, labels, n, K, eps);
    }
    /* both in double from the same float logits: only summation order differs */
    CHECK_MSG(fabs(loss - ref) <= 1e-12 * (1.0 + fabs(ref)), "xent loss %.17g vs %.17g", loss,
              ref);
    if (mode != 2) {
      double *g = dzeros((size_t)n * K);
      fd_grad(g, k.l, (size_t)n * K, xent_ref, &k);
      /* one float rounding of p - t (|p - t| <= 1): 1e-6 of the scale is ample; the FD is
       * exact to ~1e-10 (curvature p (1 - p) <= 1/4 whatever the logit scale) */
      check_close("softmax_xent", "dlogits", d, g, (size_t)n * K, 1e-5, 1e-7);
      free(g);
    }
    free(l), free(d), free(k.l);
  }
}

int main(void) {
  test_act_backward();
  test_bn();
  test_bn_running();
  test_pointwise();
  test_conv_weight();
  test_depthwise();
  test_se();
  test_pool_backward();
  test_softmax_xent();
  printf("%-22s %16s %16s\n", "kernel", "err/max|ref|", "err/allowed");
  for (int i = 0; i < n_reports; i++)
    printf("%-22s %16.3g %16.3g\n", reports[i].kernel, reports[i].worst, reports[i].used);
  return TEST_SUMMARY();
}
