/* Fast kernels: 1x1 convs, the stem (im2col) and the classifier on BLAS sgemm; depthwise
 * vectorised over channels (NHWC) with a per-row accumulator. Each is tested against the
 * reference kernel on random shapes (tests/test_kernels.c). */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/vexp.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define EN_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define EN_CLONES
#endif

/* Activation over one row; always inlined so each target clone gets its own vector code. */
static inline __attribute__((always_inline)) void act_row(float *o, int n, en_act act) {
  if (act == EN_ACT_SWISH)
    for (int c = 0; c < n; c++) o[c] = en_vswish(o[c]);
  else if (act == EN_ACT_RELU6)
    for (int c = 0; c < n; c++) o[c] = o[c] < 0.0f ? 0.0f : (o[c] > 6.0f ? 6.0f : o[c]);
  else if (act != EN_ACT_NONE)
    for (int c = 0; c < n; c++) o[c] = en_activate(o[c], act);
}

EN_CLONES static void bias_act_rows(float *out, const float *bias, int64_t rows, int cols,
                                    en_act act) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    float *o = out + r * cols;
    if (bias)
      for (int c = 0; c < cols; c++) o[c] += bias[c];
    act_row(o, cols, act);
  }
}

static void fast_pointwise(float *out, const float *in, const float *w, const float *bias,
                           int64_t rows, int cin, int cout, en_act act) {
  if (rows <= 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, cout, cin, 1.0f, in, cin, w,
              cin, 0.0f, out, cout);
  bias_act_rows(out, bias, rows, cout, act);
}

/* Patches of one image: row (oy, ox), columns (ky, kx, ci) matching OHWI weights. Shared with
 * the stem's weight gradient (src/train/tkernels.c). */
void en_im2col(float *cols, const float *in, const en_conv_desc *d) {
  int k = d->kernel;
  int64_t row_len = (int64_t)k * k * d->cin;
#pragma omp parallel for schedule(static)
  for (int oy = 0; oy < d->oh; oy++)
    for (int ox = 0; ox < d->ow; ox++) {
      float *dst = cols + ((int64_t)oy * d->ow + ox) * row_len;
      for (int ky = 0; ky < k; ky++) {
        int iy = oy * d->stride - d->pad_top + ky;
        for (int kx = 0; kx < k; kx++, dst += d->cin) {
          int ix = ox * d->stride - d->pad_left + kx;
          if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w)
            memset(dst, 0, (size_t)d->cin * sizeof *dst);
          else
            memcpy(dst, in + ((int64_t)iy * d->w + ix) * d->cin, (size_t)d->cin * sizeof *dst);
        }
      }
    }
}

static void fast_conv(float *out, const float *in, const float *w, const float *bias,
                      const en_conv_desc *d, float *scratch) {
  int64_t k2c = (int64_t)d->kernel * d->kernel * d->cin;
  int64_t opix = (int64_t)d->oh * d->ow;
  if (en_conv_scratch_floats(d) == 0) {
    fast_pointwise(out, in, w, bias, (int64_t)d->n * opix, d->cin, d->cout, d->act);
    return;
  }
  for (int b = 0; b < d->n; b++) {
    const float *src = in + (int64_t)b * d->h * d->w * d->cin;
    float *dst = out + (int64_t)b * opix * d->cout;
    en_im2col(scratch, src, d);
    fast_pointwise(dst, scratch, w, bias, opix, (int)k2c, d->cout, d->act);
  }
}

EN_CLONES static void dw_row(float *o, const float *in, const float *w, const float *bias,
                             const en_conv_desc *d, int b, int oy) {
  int k = d->kernel, C = d->cout;
  for (int ox = 0; ox < d->ow; ox++, o += C) {
    for (int c = 0; c < C; c++) o[c] = bias ? bias[c] : 0.0f;
    for (int ky = 0; ky < k; ky++) {
      int iy = oy * d->stride - d->pad_top + ky;
      if (iy < 0 || iy >= d->h) continue;
      for (int kx = 0; kx < k; kx++) {
        int ix = ox * d->stride - d->pad_left + kx;
        if (ix < 0 || ix >= d->w) continue;
        const float *px = in + (((int64_t)b * d->h + iy) * d->w + ix) * C;
        const float *wk = w + (ky * k + kx) * C;
        for (int c = 0; c < C; c++) o[c] += px[c] * wk[c];
      }
    }
    act_row(o, C, d->act);
  }
}

/* Channel sums per image: threads over channel chunks so no reduction is shared. */
EN_CLONES static void channel_sums(float *sums, const float *x, int n, int64_t hw, int C) {
  for (int b = 0; b < n; b++) {
    const float *xb = x + (int64_t)b * hw * C;
#pragma omp parallel for schedule(static)
    for (int c0 = 0; c0 < C; c0 += 64) {
      int c1 = c0 + 64 < C ? c0 + 64 : C;
      float acc[64] = {0};
      for (int64_t p = 0; p < hw; p++)
        for (int c = c0; c < c1; c++) acc[c - c0] += xb[p * C + c];
      for (int c = c0; c < c1; c++) sums[(int64_t)b * C + c] = acc[c - c0];
    }
  }
}

static void fast_depthwise(float *out, const float *in, const float *w, const float *bias,
                           const en_conv_desc *d, float *pool) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < d->n; b++)
    for (int oy = 0; oy < d->oh; oy++)
      dw_row(out + (((int64_t)b * d->oh + oy) * d->ow) * d->cout, in, w, bias, d, b, oy);
  if (pool) channel_sums(pool, out, d->n, (int64_t)d->oh * d->ow, d->cout);
}

static void fast_pool(float *out, const float *in, int n, int64_t hw, int C) {
  channel_sums(out, in, n, hw, C);
  for (int64_t i = 0; i < (int64_t)n * C; i++) out[i] /= (float)hw;
}

EN_CLONES static void scale_channels(float *x, const float *gate, int64_t hw, int C) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < hw; p++)
    for (int c = 0; c < C; c++) x[p * C + c] *= gate[c];
}

static void fast_se(float *x, const float *pool, const float *w1, const float *b1,
                    const float *w2, const float *b2, int n, int64_t hw, int C, int se,
                    en_act act, float *scratch) {
  for (int b = 0; b < n; b++) {
    float *hidden = scratch, *gate = scratch + se;
    const float *sums = pool + (int64_t)b * C;
    for (int j = 0; j < se; j++) {
      float acc = 0.0f;
      const float *wj = w1 + (int64_t)j * C;
      for (int c = 0; c < C; c++) acc += wj[c] * sums[c];
      hidden[j] = en_activate(b1[j] + acc / (float)hw, act);
    }
    for (int c = 0; c < C; c++) {
      float acc = b2[c];
      const float *wc = w2 + (int64_t)c * se;
      for (int j = 0; j < se; j++) acc += wc[j] * hidden[j];
      gate[c] = en_vsigmoid(acc);
    }
    scale_channels(x + (int64_t)b * hw * C, gate, hw, C);
  }
}

static void fast_linear(float *out, const float *in, const float *w, const float *bias, int n,
                        int cin, int cout) {
  fast_pointwise(out, in, w, bias, n, cin, cout, EN_ACT_NONE);
}

EN_CLONES static void fast_add(float *out, const float *in, int64_t count) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; i++) out[i] += in[i];
}

const en_kernels en_kernels_fast = {
    "fast", fast_conv, fast_pointwise, fast_depthwise, fast_se, fast_pool, fast_linear, fast_add,
};
