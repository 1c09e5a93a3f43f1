/* Naive reference kernels: every case supported, written for obviousness. They are the oracle
 * that the fast kernels are tested against. */
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"

float en_activate(float x, en_act act) {
  switch (act) {
    case EN_ACT_SWISH: return x / (1.0f + expf(-x));
    case EN_ACT_RELU6: return x < 0.0f ? 0.0f : (x > 6.0f ? 6.0f : x);
    case EN_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    default: return x;
  }
}

void en_activate_array(float *x, int64_t count, en_act act) {
  if (act == EN_ACT_NONE) return;
  for (int64_t i = 0; i < count; i++) x[i] = en_activate(x[i], act);
}

size_t en_conv_scratch_floats(const en_conv_desc *d) {
  if (d->kernel == 1 && d->stride == 1 && d->pad_top == 0 && d->pad_left == 0) return 0;
  return (size_t)d->oh * d->ow * d->kernel * d->kernel * d->cin;
}

static void ref_conv(float *out, const float *in, const float *w, const float *bias,
                     const en_conv_desc *d, float *scratch) {
  (void)scratch;
  int k = d->kernel;
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < d->n; b++)
    for (int oy = 0; oy < d->oh; oy++)
      for (int ox = 0; ox < d->ow; ox++)
        for (int co = 0; co < d->cout; co++) {
          float acc = bias ? bias[co] : 0.0f;
          for (int ky = 0; ky < k; ky++) {
            int iy = oy * d->stride - d->pad_top + ky;
            if (iy < 0 || iy >= d->h) continue;
            for (int kx = 0; kx < k; kx++) {
              int ix = ox * d->stride - d->pad_left + kx;
              if (ix < 0 || ix >= d->w) continue;
              const float *px = in + (((int64_t)b * d->h + iy) * d->w + ix) * d->cin;
              const float *wk = w + (((int64_t)co * k + ky) * k + kx) * d->cin;
              for (int ci = 0; ci < d->cin; ci++) acc += px[ci] * wk[ci];
            }
          }
          out[(((int64_t)b * d->oh + oy) * d->ow + ox) * d->cout + co] = en_activate(acc, d->act);
        }
}

static void ref_pointwise(float *out, const float *in, const float *w, const float *bias,
                          int64_t rows, int cin, int cout, en_act act) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++)
    for (int co = 0; co < cout; co++) {
      float acc = bias ? bias[co] : 0.0f;
      for (int ci = 0; ci < cin; ci++) acc += in[r * cin + ci] * w[(int64_t)co * cin + ci];
      out[r * cout + co] = en_activate(acc, act);
    }
}

static void ref_pool(float *out, const float *in, int n, int64_t hw, int channels) {
  for (int b = 0; b < n; b++)
    for (int c = 0; c < channels; c++) {
      double acc = 0.0;
      for (int64_t p = 0; p < hw; p++) acc += in[((int64_t)b * hw + p) * channels + c];
      out[(int64_t)b * channels + c] = (float)(acc / (double)hw);
    }
}

/* Channel c of depthwise output pixel (oy, ox) before its activation, input pixel (iy, ix) at
 * at[(iy + top) * row + (ix + left) * pixel]; taps outside the image skipped. */
static float ref_dw_pixel(const float *at, int64_t row, int64_t pixel, int top, int left,
                          const float *w, const float *bias, const en_conv_desc *d, int oy, int ox,
                          int c) {
  int k = d->kernel, C = d->cout;
  float acc = bias ? bias[c] : 0.0f;
  for (int ky = 0; ky < k; ky++) {
    int iy = oy * d->stride - d->pad_top + ky;
    if (iy < 0 || iy >= d->h) continue;
    for (int kx = 0; kx < k; kx++) {
      int ix = ox * d->stride - d->pad_left + kx;
      if (ix < 0 || ix >= d->w) continue;
      acc += at[(iy + top) * row + (ix + left) * pixel] * w[(ky * k + kx) * C + c];
    }
  }
  return acc;
}

/* the pooled sums of out (n, oh, ow, C) for SE, where pool is not NULL */
static void ref_dw_pool(float *pool, const float *out, const en_conv_desc *d) {
  if (!pool) return;
  int64_t hw = (int64_t)d->oh * d->ow;
  ref_pool(pool, out, d->n, hw, d->cout);
  for (int64_t i = 0; i < (int64_t)d->n * d->cout; i++) pool[i] *= (float)hw;
}

static void ref_depthwise(float *out, const float *in, const float *w, const float *bias,
                          const en_conv_desc *d, float *pool) {
  int C = d->cout;
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < d->n; b++)
    for (int oy = 0; oy < d->oh; oy++)
      for (int ox = 0; ox < d->ow; ox++)
        for (int c = 0; c < C; c++) {
          const float *image = in + (int64_t)b * d->h * d->w * C + c;
          float acc = ref_dw_pixel(image, (int64_t)d->w * C, C, 0, 0, w, bias, d, oy, ox, c);
          out[(((int64_t)b * d->oh + oy) * d->ow + ox) * C + c] = en_activate(acc, d->act);
        }
  ref_dw_pool(pool, out, d);
}

static void ref_se_gate(float *gate, const float *pool, const float *w1, const float *b1,
                        const float *w2t, const float *b2, int n, int64_t hw, int C, int se,
                        en_act act, float *scratch) {
  for (int b = 0; b < n; b++) {
    float *hidden = scratch, *g = gate + (int64_t)b * C;
    const float *sums = pool + (int64_t)b * C;
    for (int j = 0; j < se; j++) {
      float acc = b1[j];
      for (int c = 0; c < C; c++) acc += w1[(int64_t)j * C + c] * (sums[c] / (float)hw);
      hidden[j] = en_activate(acc, act);
    }
    for (int c = 0; c < C; c++) {
      float acc = b2[c];
      for (int j = 0; j < se; j++) acc += w2t[(int64_t)j * C + c] * hidden[j];
      g[c] = en_activate(acc, EN_ACT_SIGMOID);
    }
  }
}

static void ref_se(float *x, const float *pool, const float *w1, const float *b1,
                   const float *w2t, const float *b2, int n, int64_t hw, int C, int se,
                   en_act act, float *scratch) {
  for (int b = 0; b < n; b++) {
    float *gate = scratch + se;
    ref_se_gate(gate, pool + (int64_t)b * C, w1, b1, w2t, b2, 1, hw, C, se, act, scratch);
    float *xb = x + (int64_t)b * hw * C;
    for (int64_t p = 0; p < hw; p++)
      for (int c = 0; c < C; c++) xb[p * C + c] *= gate[c];
  }
}

static void ref_linear(float *out, const float *in, const float *w, const float *bias, int n,
                       int cin, int cout) {
  ref_pointwise(out, in, w, bias, n, cin, cout, EN_ACT_NONE);
}

static void ref_add(float *out, const float *in, int64_t count) {
  for (int64_t i = 0; i < count; i++) out[i] += in[i];
}

/* Output channel co of a GEMM input row (cin floats) with packed weights: act(row . W[co] +
 * bias[co]). */
static float ref_gemm_one(const float *row, const float *packed, const float *bias, int cin,
                          int co, en_act act) {
  const int P = EN_GEMM_PANEL;
  float acc = bias ? bias[co] : 0.0f;
  const float *wp = packed + (int64_t)(co / P) * cin * P + co % P;
  for (int ci = 0; ci < cin; ci++) acc += row[ci] * wp[(int64_t)ci * P];
  return en_activate(acc, act);
}

static void ref_gemm(float *out, const float *in, const float *packed, const float *bias,
                     const float *residual, int64_t rows, int cin, int cout, en_act act) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++)
    for (int co = 0; co < cout; co++) {
      float v = ref_gemm_one(in + r * cin, packed, bias, cin, co, act);
      out[r * cout + co] = residual ? v + residual[r * cout + co] : v;
    }
}

static void ref_expand_depthwise(float *out, float *pool, const float *x, int cin,
                                 const float *ew, const float *eb, const float *dw,
                                 const float *db, const en_conv_desc *d, float *expanded,
                                 float *scratch) {
  (void)scratch;
  ref_gemm(expanded, x, ew, eb, NULL, (int64_t)d->n * d->h * d->w, cin, d->cin, d->act);
  ref_depthwise(out, expanded, dw, db, d, pool);
}

static void ref_dense(float *out, const float *in, const float *packed, const float *bias,
                      const en_conv_desc *d, float *scratch) {
  int64_t opix = (int64_t)d->oh * d->ow, taps = (int64_t)d->kernel * d->kernel * d->cin;
  for (int b = 0; b < d->n; b++) {
    const float *cols = in + (int64_t)b * d->h * d->w * d->cin;
    if (en_conv_scratch_floats(d)) { /* else the patches are the input itself (1x1, stride 1) */
      en_im2col(scratch, cols, d);
      cols = scratch;
    }
    ref_gemm(out + b * opix * d->cout, cols, packed, bias, NULL, opix, (int)taps, d->cout,
             d->act);
  }
}

static void ref_stem_depthwise(float *out, float *pool, const float *img, const float *sw,
                               const float *sb, const en_conv_desc *sd, const float *dw,
                               const float *db, const en_conv_desc *d, float *stem_out,
                               float *scratch) {
  ref_dense(stem_out, img, sw, sb, sd, scratch);
  ref_depthwise(out, stem_out, dw, db, d, pool);
}

/* The planes ops (kernels.h): the reference path itself never takes them. */
static int ref_planes_pay(const en_conv_desc *d) {
  (void)d;
  return 0;
}

void en_ref_gemm_planes(const en_planes *out, const float *in, const float *packed,
                        const float *bias, int64_t rows, int cin, int cout, en_act act) {
  const int L = EN_PLANE_LANES;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++)
    for (int co = 0; co < cout; co++)
      out->data[co / L * out->block + out->at[r] + co % L] =
          ref_gemm_one(in + r * cin, packed, bias, cin, co, act);
}

/* ref_depthwise reading pixel (b, iy, ix) from the planes: their row iy + pad_top, column ix +
 * pad_left of image b's plane (the at[] layout, the planes' padding); taps outside the image
 * are skipped, as there, so the margins' zeros are not assumed. */
void en_ref_depthwise_planes(float *out, const en_planes *in, const float *w, const float *bias,
                             const en_conv_desc *d, float *pool) {
  int C = d->cout, L = EN_PLANE_LANES;
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < d->n; b++)
    for (int oy = 0; oy < d->oh; oy++)
      for (int ox = 0; ox < d->ow; ox++)
        for (int c = 0; c < C; c++) {
          const float *plane =
              in->data + c / L * in->block + (int64_t)b * in->rows * in->cols * L + c % L;
          float acc = ref_dw_pixel(plane, (int64_t)in->cols * L, L, in->pad_top, in->pad_left, w,
                                   bias, d, oy, ox, c);
          out[(((int64_t)b * d->oh + oy) * d->ow + ox) * C + c] = en_activate(acc, d->act);
        }
  ref_dw_pool(pool, out, d);
}

const en_kernels en_kernels_ref = {
    "reference", ref_conv,  ref_pointwise, ref_depthwise, ref_se,      ref_pool,
    ref_linear,  ref_add,   ref_gemm,      ref_se_gate,   ref_expand_depthwise,
    ref_dense,   ref_stem_depthwise, ref_planes_pay, en_ref_gemm_planes,
    en_ref_depthwise_planes,
};

_Static_assert(sizeof(en_kernels) == sizeof(const char *) + EN_KERNEL_OPS * sizeof(void (*)(void)),
               "en_kernels fields and EN_KERNEL_OPS disagree: add the op everywhere");
