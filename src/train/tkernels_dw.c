/* Backward of the depthwise convolution (NHWC), vectorised over blocks of 16 channels with the
 * sums held in registers (one store per result instead of a read-modify-write per tap); a
 * ragged last block of 16 or more channels is shifted back to whole vectors (store_from).
 *
 * din by gather: input (iy, ix) meets output (oy, ox) through tap (ky, kx) when
 * oy * stride - pad_top + ky == iy; the taps that meet a row (and a column) are listed once, so
 * the inner loop has no checks. Each input row is written by one thread.
 *
 * dw: each output row's products dout * in are summed per tap in float (ow terms, the k * k tap
 * sums of a channel block in registers), rows are added in double in blocks whose number depends
 * on the shape only: the result does not depend on the thread count and the float error stays
 * that of a short sum. */
#include <stdlib.h>
#include <string.h>

#include "core/clones.h"
#include "kernels/vec16.h"
#include "train/tkernels.h"

/* ISO C mode (-std=c11) turns off multiply-add contraction */
#pragma GCC optimize("fp-contract=fast")

#define LANES EN_LANES
#define DW_BLK 32 /* row blocks of the weight gradient */

/* Taps t in [0, k) with (i + pad - t) a multiple of s whose quotient lies in [0, out): lists
 * the taps and the output index each meets; returns their count. */
static inline int meeting_taps(int i, int pad, int k, int s, int out, int *tap, int *at) {
  int n = 0;
  for (int t = 0; t < k; t++) {
    int q = i + pad - t, o;
    if (q < 0) continue;
    if (s == 1) o = q; /* the family's strides without a division: this runs per pixel */
    else if (s == 2) o = q & 1 ? -1 : q >> 1;
    else o = q % s ? -1 : q / s;
    if (o < 0 || o >= out) continue;
    tap[n] = t;
    at[n++] = o;
  }
  return n;
}

/* ---- din ---- */

typedef struct din_taps {
  int ny, nx, ky[EN_MAX_KERNEL], oy[EN_MAX_KERNEL], kx[EN_MAX_KERNEL], ox[EN_MAX_KERNEL];
} din_taps;

static inline __attribute__((always_inline)) void din_pixel(float *o, const float *dout_img,
                                                            const float *w, const din_taps *t,
                                                            const en_conv_desc *d, int c0,
                                                            int lanes, int skip) {
  int C = d->cout, k = d->kernel;
  en_vec acc = {0};
  for (int a = 0; a < t->ny; a++) {
    const float *g = dout_img + (int64_t)t->oy[a] * d->ow * C + c0;
    const float *wr = w + t->ky[a] * k * C + c0;
    for (int q = 0; q < t->nx; q++)
      acc += en_vload(g + (int64_t)t->ox[q] * C, lanes) * en_vload(wr + t->kx[q] * C, lanes);
  }
  if (skip) en_vstore_from(o + c0, acc, skip, LANES);
  else en_vstore(o + c0, acc, lanes);
}

EN_CLONES static void din_row(float *o, const float *dout, const float *w, const en_conv_desc *d,
                              int b, int iy) {
  int C = d->cout;
  din_taps t;
  t.ny = meeting_taps(iy, d->pad_top, d->kernel, d->stride, d->oh, t.ky, t.oy);
  const float *dout_img = dout + (int64_t)b * d->oh * d->ow * C;
  for (int ix = 0; ix < d->w; ix++, o += C) {
    t.nx = meeting_taps(ix, d->pad_left, d->kernel, d->stride, d->ow, t.kx, t.ox);
    int c0 = 0;
    for (; c0 + LANES <= C; c0 += LANES) din_pixel(o, dout_img, w, &t, d, c0, LANES, 0);
    if (c0 < C && C >= LANES) din_pixel(o, dout_img, w, &t, d, C - LANES, LANES, c0 + LANES - C);
    else if (c0 < C) din_pixel(o, dout_img, w, &t, d, c0, C - c0, 0);
  }
}

/* ---- dw ---- */

/* racc (k, k, C) = this output row's products dout * in summed over its pixels, for channels
 * [c0, c0 + lanes); K is the kernel as a constant (3 or 5), so the K * K sums stay in registers. */
static inline __attribute__((always_inline)) void dw_row_block(float *racc, const float *g,
                                                               const float *in_img,
                                                               const en_conv_desc *d, int oy,
                                                               int c0, int lanes, int skip,
                                                               int K) {
  int C = d->cout, s = d->stride;
  en_vec acc[EN_MAX_KERNEL * EN_MAX_KERNEL];
  for (int t = 0; t < K * K; t++) acc[t] = (en_vec){0};
  int iy0 = oy * s - d->pad_top;
  /* output columns [lo, hi) have their whole window inside the row: no column checks there */
  int room = d->w - K + d->pad_left; /* the last window start inside; may be negative */
  int lo = (d->pad_left + s - 1) / s, hi = room < 0 ? 0 : room / s + 1;
  if (hi > d->ow) hi = d->ow;
  if (lo > hi) lo = hi;
  for (int ox = 0; ox < d->ow; ox++) {
    en_vec gv = en_vload(g + (int64_t)ox * C + c0, lanes);
    int ix0 = ox * s - d->pad_left, inside = ox >= lo && ox < hi;
    for (int ky = 0; ky < K; ky++) {
      int iy = iy0 + ky;
      if (iy < 0 || iy >= d->h) continue;
      const float *row = in_img + (int64_t)iy * d->w * C + c0;
      if (inside && lanes == LANES) {
        const float *px = row + (int64_t)ix0 * C;
        for (int kx = 0; kx < K; kx++) acc[ky * K + kx] += gv * *(const en_vec *)(px + kx * C);
        continue;
      }
      for (int kx = 0; kx < K; kx++) {
        int ix = ix0 + kx;
        if (ix < 0 || ix >= d->w) continue;
        acc[ky * K + kx] += gv * en_vload(row + (int64_t)ix * C, lanes);
      }
    }
  }
  for (int t = 0; t < K * K; t++) {
    if (skip) en_vstore_from(racc + (int64_t)t * C + c0, acc[t], skip, LANES);
    else en_vstore(racc + (int64_t)t * C + c0, acc[t], lanes);
  }
}

static inline __attribute__((always_inline)) void dw_row_k(float *racc, const float *dout,
                                                           const float *in,
                                                           const en_conv_desc *d, int b, int oy,
                                                           int K) {
  int C = d->cout;
  const float *g = dout + ((int64_t)b * d->oh + oy) * d->ow * C;
  const float *in_img = in + (int64_t)b * d->h * d->w * C;
  int c0 = 0;
  for (; c0 + LANES <= C; c0 += LANES) dw_row_block(racc, g, in_img, d, oy, c0, LANES, 0, K);
  if (c0 < C && C >= LANES)
    dw_row_block(racc, g, in_img, d, oy, C - LANES, LANES, c0 + LANES - C, K);
  else if (c0 < C)
    dw_row_block(racc, g, in_img, d, oy, c0, C - c0, 0, K);
}

/* Any kernel size: sums in memory, tap by tap, added to racc. */
static void dw_row_add(float *racc, const float *dout, const float *in, const en_conv_desc *d,
                       int b, int oy) {
  int k = d->kernel, C = d->cout;
  const float *g = dout + ((int64_t)b * d->oh + oy) * d->ow * C;
  for (int ox = 0; ox < d->ow; ox++, g += C)
    for (int ky = 0; ky < k; ky++) {
      int iy = oy * d->stride - d->pad_top + ky;
      if (iy < 0 || iy >= d->h) continue;
      for (int kx = 0; kx < k; kx++) {
        int ix = ox * d->stride - d->pad_left + kx;
        if (ix < 0 || ix >= d->w) continue;
        const float *px = in + (((int64_t)b * d->h + iy) * d->w + ix) * C;
        float *a = racc + (ky * k + kx) * C;
        for (int c = 0; c < C; c++) a[c] += g[c] * px[c];
      }
    }
}

EN_CLONES static void dw_row(float *racc, const float *dout, const float *in,
                             const en_conv_desc *d, int b, int oy) {
  if (d->kernel == 3) dw_row_k(racc, dout, in, d, b, oy, 3);
  else if (d->kernel == 5) dw_row_k(racc, dout, in, d, b, oy, 5);
  else {
    memset(racc, 0, (size_t)d->kernel * d->kernel * d->cout * sizeof *racc);
    dw_row_add(racc, dout, in, d, b, oy);
  }
}

/* Output rows [r0, r1) (row = b * oh + oy) into part (double). */
static void dw_block(double *part, float *racc, const float *dout, const float *in,
                     const en_conv_desc *d, int64_t r0, int64_t r1) {
  int64_t kkc = (int64_t)d->kernel * d->kernel * d->cout;
  memset(part, 0, (size_t)kkc * sizeof *part);
  for (int64_t r = r0; r < r1; r++) {
    dw_row(racc, dout, in, d, (int)(r / d->oh), (int)(r % d->oh));
    for (int64_t i = 0; i < kkc; i++) part[i] += racc[i];
  }
}

/* The calling thread's partial-sum area, kept between calls: megabytes for the late stages of
 * a big model, which malloc would hand back to the kernel (and fault in, zeroed) every step. */
static _Thread_local void *scratch_area;
static _Thread_local size_t scratch_bytes;

static void *scratch(size_t bytes) {
  if (bytes > scratch_bytes) {
    free(scratch_area);
    scratch_area = malloc(bytes);
    scratch_bytes = scratch_area ? bytes : 0;
  }
  return scratch_area;
}

static void dw_weight(float *dw, const float *dout, const float *in, const en_conv_desc *d) {
  int64_t kkc = (int64_t)d->kernel * d->kernel * d->cout, rows = (int64_t)d->n * d->oh;
  int nblk = rows < DW_BLK ? (int)rows : DW_BLK;
  double *part = nblk > 0 ? scratch((size_t)(nblk * kkc) * (sizeof(double) + sizeof(float))) : NULL;
  float *racc = part ? (float *)(part + nblk * kkc) : NULL;
  memset(dw, 0, (size_t)kkc * sizeof *dw);
  if (!part) { /* no memory (or no rows): one serial float sum, same result to rounding */
    for (int64_t r = 0; r < rows; r++)
      dw_row_add(dw, dout, in, d, (int)(r / d->oh), (int)(r % d->oh));
    return;
  }
#pragma omp parallel for schedule(static)
  for (int b = 0; b < nblk; b++)
    dw_block(part + b * kkc, racc + b * kkc, dout, in, d, rows * b / nblk, rows * (b + 1) / nblk);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < kkc; i++) {
    double s = 0.0;
    for (int b = 0; b < nblk; b++) s += part[b * kkc + i];
    dw[i] = (float)s;
  }
}

void en_depthwise_backward(float *din, float *dw, const float *dout, const float *in,
                           const float *w, const en_conv_desc *d) {
  if (din) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < d->n; b++)
      for (int iy = 0; iy < d->h; iy++)
        din_row(din + ((int64_t)b * d->h + iy) * d->w * d->cout, dout, w, d, b, iy);
  }
  dw_weight(dw, dout, in, d);
}
