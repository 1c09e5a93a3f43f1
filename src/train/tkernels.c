/* Backward of the linear ops (stem conv, 1x1 conv / linear, depthwise), of the global pool, and
 * the softmax cross-entropy loss, and the training forward of 1x1 convs. Forward and input
 * gradient of 1x1 convs run on the packed GEMM of src/kernels/gemm.c, weight gradients on BLAS
 * (one pixel range per thread); depthwise (tkernels_dw.c) is vectorised over channels (NHWC).
 * Reductions are split into blocks whose number depends on the shape only, summed in block
 * order, so results do not depend on the thread count (1x1 weight gradients aside). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <omp.h>
#include <string.h>

#include "core/clones.h"
#include "kernels/vec16.h"
#include "train/tkernels.h"

/* ISO C mode (-std=c11) turns off multiply-add contraction */
#pragma GCC optimize("fp-contract=fast")

enum {
  COL_CH = 64, /* channels per task of a column sum */
  WG_BLK = 32, /* row blocks of the direct stem weight gradient */
  WG_MIN_ROWS = 1024, /* pixels per thread of a 1x1 weight gradient */
  XENT_BLK = 64
};

/* ---- stem conv ---- */

/* Up to EN_DENSE_TAPS taps the weight gradient is computed directly: per output row, the
 * patches of each strip of pixels (en_dense_patches) times dout, summed per (tap, 16 output
 * channels) in float over the row, rows added in double in WG_BLK blocks whose number depends
 * on the shape only, blocks added in order: independent of the thread count. Larger windows:
 * one GEMM per image over its im2col patches (BLAS). */
static int wgrad_blocks(const en_conv_desc *d) {
  int64_t units = (int64_t)d->n * d->oh;
  return units < WG_BLK ? (int)units : WG_BLK;
}

static size_t wgrad_tile(const en_conv_desc *d) { /* floats of one (taps, padded cout) tile */
  return (size_t)d->kernel * d->kernel * d->cin * ((d->cout + EN_LANES - 1) / EN_LANES) *
         EN_LANES;
}

size_t en_conv_backward_weight_scratch(const en_conv_desc *d) {
  if (d->kernel * d->kernel * d->cin > EN_DENSE_TAPS) return en_conv_scratch_floats(d);
  return (size_t)wgrad_blocks(d) * wgrad_tile(d) * 3; /* a double and a float tile per block */
}

/* acc[(p * taps + t) * LANES + l] += sum over the strip of patch[j][t] * dout[j][p * LANES + l] */
EN_CLONES static void wgrad_strip(float *acc, const float *patch, const float *g, int np,
                                  int taps, int cout) {
  for (int c0 = 0, p = 0; c0 < cout; c0 += EN_LANES, p++) {
    int lanes = cout - c0 < EN_LANES ? cout - c0 : EN_LANES;
    en_vec dv[EN_DENSE_PIX];
    for (int j = 0; j < EN_DENSE_PIX; j++)
      dv[j] = j < np ? en_vload(g + (int64_t)j * cout + c0, lanes) : (en_vec){0};
    float *ap = acc + (size_t)p * taps * EN_LANES;
    for (int t = 0; t < taps; t++) {
      en_vec a = en_vload(ap + (size_t)t * EN_LANES, EN_LANES);
      for (int j = 0; j < EN_DENSE_PIX; j++) a += patch[j * taps + t] * dv[j];
      en_vstore(ap + (size_t)t * EN_LANES, a, EN_LANES);
    }
  }
}

/* Output rows u in [u0, u1) (u = image * oh + oy) into the double tile part. */
static void wgrad_rows(double *part, float *acc, const float *dout, const float *in,
                       const en_conv_desc *d, int64_t u0, int64_t u1) {
  size_t tile = wgrad_tile(d);
  int taps = d->kernel * d->kernel * d->cin;
  float patch[EN_DENSE_PIX * EN_DENSE_TAPS];
  memset(part, 0, tile * sizeof *part);
  for (int64_t u = u0; u < u1; u++) {
    const float *img = in + (u / d->oh) * d->h * d->w * d->cin;
    const float *g = dout + u * d->ow * d->cout;
    memset(acc, 0, tile * sizeof *acc);
    for (int ox = 0; ox < d->ow; ox += EN_DENSE_PIX) {
      int np = d->ow - ox < EN_DENSE_PIX ? d->ow - ox : EN_DENSE_PIX;
      en_dense_patches(patch, img, d, (int)(u % d->oh), ox, np);
      wgrad_strip(acc, patch, g + (int64_t)ox * d->cout, np, taps, d->cout);
    }
    for (size_t i = 0; i < tile; i++) part[i] += acc[i];
  }
}

static void wgrad_direct(float *dw, const float *dout, const float *in, const en_conv_desc *d,
                         float *scratch) {
  int nblk = wgrad_blocks(d), taps = d->kernel * d->kernel * d->cin;
  size_t tile = wgrad_tile(d);
  double *part = (double *)scratch;
  float *acc = scratch + 2 * tile * nblk;
  int64_t units = (int64_t)d->n * d->oh;
#pragma omp parallel for schedule(static)
  for (int b = 0; b < nblk; b++)
    wgrad_rows(part + tile * b, acc + tile * b, dout, in, d, units * b / nblk,
               units * (b + 1) / nblk);
  for (int co = 0; co < d->cout; co++)
    for (int t = 0; t < taps; t++) {
      size_t at = ((size_t)(co / EN_LANES) * taps + t) * EN_LANES + co % EN_LANES;
      double sum = 0.0;
      for (int b = 0; b < nblk; b++) sum += part[tile * b + at];
      dw[(size_t)co * taps + t] = (float)sum;
    }
}

/* out_img = cols . w^T per image, so dw = sum over images of dout_img^T . cols. */
void en_conv_backward_weight(float *dw, const float *dout, const float *in,
                             const en_conv_desc *d, float *scratch) {
  int64_t k2c = (int64_t)d->kernel * d->kernel * d->cin, opix = (int64_t)d->oh * d->ow;
  if (d->n <= 0 || opix <= 0) {
    memset(dw, 0, (size_t)(d->cout * k2c) * sizeof *dw);
    return;
  }
  if (k2c <= EN_DENSE_TAPS) {
    wgrad_direct(dw, dout, in, d, scratch);
    return;
  }
  for (int b = 0; b < d->n; b++) {
    const float *cols = in + (int64_t)b * d->h * d->w * d->cin;
    if (en_conv_scratch_floats(d) != 0) {
      en_im2col(scratch, cols, d);
      cols = scratch;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d->cout, (int)k2c, (int)opix, 1.0f,
                dout + (int64_t)b * opix * d->cout, d->cout, cols, (int)k2c, b ? 1.0f : 0.0f,
                dw, (int)k2c);
  }
}

/* ---- pointwise / linear ---- */

/* out[c] = sum over rows of a[r, c], in double; one task per 64-channel chunk. */
EN_CLONES static void column_sums(float *out, const float *a, int64_t rows, int C) {
  int nch = (C + COL_CH - 1) / COL_CH;
#pragma omp parallel for schedule(static)
  for (int k = 0; k < nch; k++) {
    int c0 = k * COL_CH, m = C - c0 < COL_CH ? C - c0 : COL_CH;
    double acc[COL_CH] = {0};
    for (int64_t r = 0; r < rows; r++)
      for (int c = 0; c < m; c++) acc[c] += a[r * C + c0 + c];
    for (int c = 0; c < m; c++) out[c0 + c] = (float)acc[c];
  }
}

size_t en_pointwise_scratch_floats(int cin, int cout) {
  size_t a = en_gemm_packed_floats(cin, cout), b = en_gemm_packed_floats(cout, cin);
  return a > b ? a : b;
}

/* The weights change every step, so they are packed every step: a copy of cin x cout floats
 * against rows x cin x cout multiply-adds, and the packed GEMM beats BLAS plus its separate
 * zeroing pass on these skinny shapes (README, Speed). */
void en_pointwise_forward_train(float *out, const float *in, const float *w, int64_t rows,
                                int cin, int cout, float *scratch) {
  if (rows <= 0) return;
  en_gemm_pack(scratch, w, cin, cout);
  en_fast_gemm(out, in, scratch, NULL, NULL, rows, cin, cout, EN_ACT_NONE);
}

/* dw = dout^T . in over pixel ranges, one per thread (BLAS single-threaded inside the region),
 * the partial products in scratch, added in range order. OpenBLAS splits only this product's
 * small output (cout x cin) and gains ~10 % from a second thread; each thread taking its own
 * pixels scales. The partition depends on the thread count (as BLAS's own does). */
static void weight_grad(float *dw, const float *dout, const float *in, int64_t rows, int cin,
                        int cout, float *scratch, size_t scratch_floats) {
  size_t wn = (size_t)cin * cout;
  int64_t parts = omp_get_max_threads();
  if (parts > 1 + (int64_t)(scratch_floats / wn)) parts = 1 + (int64_t)(scratch_floats / wn);
  if (parts > rows / WG_MIN_ROWS) parts = rows / WG_MIN_ROWS;
  if (parts < 2) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cout, cin, (int)rows, 1.0f, dout, cout,
                in, cin, 0.0f, dw, cin);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < parts; p++) {
    int64_t r0 = rows * p / parts, r1 = rows * (p + 1) / parts;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cout, cin, (int)(r1 - r0), 1.0f,
                dout + r0 * cout, cout, in + r0 * cin, cin, 0.0f,
                p ? scratch + (size_t)(p - 1) * wn : dw, cin);
  }
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < wn; i++)
    for (int64_t p = 1; p < parts; p++) dw[i] += scratch[(size_t)(p - 1) * wn + i];
}

void en_pointwise_backward(float *din, float *dw, float *db, const float *dout,
                           const float *in, const float *w, int64_t rows, int cin, int cout,
                           float *scratch, size_t scratch_floats) {
  if (rows <= 0) {
    memset(dw, 0, (size_t)cin * cout * sizeof *dw);
    if (db) memset(db, 0, (size_t)cout * sizeof *db);
    return;
  }
  if (din) {
    en_gemm_pack_transposed(scratch, w, cin, cout);
    en_fast_gemm(din, dout, scratch, NULL, NULL, rows, cout, cin, EN_ACT_NONE);
  }
  weight_grad(dw, dout, in, rows, cin, cout, scratch, scratch_floats);
  if (db) column_sums(db, dout, rows, cout);
}

/* ---- depthwise: tkernels_dw.c ---- */

/* ---- global pool, loss ---- */

void en_pool_backward(float *dx, const float *dout, int n, int64_t hw, int C) {
  float inv = 1.0f / (float)hw;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < (int64_t)n * hw; r++) {
    const float *g = dout + (r / hw) * C;
    for (int c = 0; c < C; c++) dx[r * C + c] = g[c] * inv;
  }
}

/* One sample. With lse = log sum_k exp(l_k) and p_k = exp(l_k - lse):
 *   loss = (1 - eps) (lse - l_y) + eps mean_k (lse - l_k) = lse - (1 - eps) l_y - eps mean(l);
 *   d loss / d l_k = p_k - t_k with t = (1 - eps) onehot(y) + eps / K.
 * Every read of l happens before the write of d at the same index, so d may alias l. */
static double xent_row(float *d, const float *l, int y, int K, double eps, double scale) {
  double mx = l[0], sum = 0.0, lsum = 0.0;
  for (int k = 1; k < K; k++) mx = l[k] > mx ? l[k] : mx;
  for (int k = 0; k < K; k++) sum += exp((double)l[k] - mx), lsum += l[k];
  double lse = mx + log(sum), loss = lse - (1.0 - eps) * l[y] - eps * lsum / K;
  if (d)
    for (int k = 0; k < K; k++)
      d[k] = (float)((exp((double)l[k] - lse) - eps / K - (k == y ? 1.0 - eps : 0.0)) * scale);
  return loss;
}

double en_softmax_xent(float *dlogits, const float *logits, const int *labels, int n, int K,
                       float smoothing) {
  if (n <= 0) return 0.0;
  double part[XENT_BLK] = {0}, total = 0.0;
  int nblk = n < XENT_BLK ? n : XENT_BLK;
#pragma omp parallel for schedule(static)
  for (int b = 0; b < nblk; b++)
    for (int64_t i = (int64_t)n * b / nblk; i < (int64_t)n * (b + 1) / nblk; i++)
      part[b] += xent_row(dlogits ? dlogits + i * K : NULL, logits + i * K, labels[i], K,
                          smoothing, 1.0 / n);
  for (int b = 0; b < nblk; b++) total += part[b];
  return total / n;
}
