/* Fast kernels: 1x1 convs, the stem (im2col) and the classifier on BLAS sgemm; depthwise
 * vectorised over channels (NHWC) with a per-row accumulator. Each is tested against the
 * reference kernel on random shapes (tests/test_kernels.c). */
#include <cblas.h>
#include <omp.h>
#include <math.h>
#include <string.h>

#include "core/clones.h"
#include "kernels/kernels.h"
#include "kernels/vexp.h"

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
          int inside = iy >= 0 && iy < d->h && ix >= 0 && ix < d->w;
          const float *src = inside ? in + ((int64_t)iy * d->w + ix) * d->cin : in;
          if (d->cin == 3) { /* the stem: RGB, a variable-size memcpy call per tap is slow */
            dst[0] = inside ? src[0] : 0.0f;
            dst[1] = inside ? src[1] : 0.0f;
            dst[2] = inside ? src[2] : 0.0f;
          } else if (inside) {
            memcpy(dst, src, (size_t)d->cin * sizeof *dst);
          } else {
            memset(dst, 0, (size_t)d->cin * sizeof *dst);
          }
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

static void fast_pool(float *out, const float *in, int n, int64_t hw, int C) {
  channel_sums(out, in, n, hw, C);
  for (int64_t i = 0; i < (int64_t)n * C; i++) out[i] /= (float)hw;
}

EN_CLONES static void scale_channels(float *x, const float *gate, int64_t hw, int C) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < hw; p++)
    for (int c = 0; c < C; c++) x[p * C + c] *= gate[c];
}

/* a . b with 16 independent partial sums: vectorised without reassociation flags. */
EN_CLONES static float dot(const float *a, const float *b, int n) {
  float part[16] = {0};
  int i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; l++) part[l] += a[i + l] * b[i + l];
  float acc = 0.0f;
  for (; i < n; i++) acc += a[i] * b[i];
  for (int l = 0; l < 16; l++) acc += part[l];
  return acc;
}

/* gate [c0, c1) = sigmoid(b2 + w2t^T . hidden) over those channels: rows of w2t (se, C) added
 * in over contiguous channels, in the reference kernel's order (b2 first, then j ascending),
 * four rows per pass (four memory streams: the weights come from beyond L2 and one stream is
 * latency-bound). */
EN_CLONES static void se_expand(float *g, const float *hidden, const float *w2t, const float *b2,
                                int C, int c0, int c1, int se) {
  for (int c = c0; c < c1; c++) g[c] = b2[c];
  int j = 0;
  for (; j + 4 <= se; j += 4) {
    const float h0 = hidden[j], h1 = hidden[j + 1], h2 = hidden[j + 2], h3 = hidden[j + 3];
    const float *w = w2t + (int64_t)j * C;
    for (int c = c0; c < c1; c++)
      g[c] = (((g[c] + h0 * w[c]) + h1 * w[C + c]) + h2 * w[2 * C + c]) + h3 * w[3 * C + c];
  }
  for (; j < se; j++) {
    const float h = hidden[j], *w = w2t + (int64_t)j * C;
    for (int c = c0; c < c1; c++) g[c] += h * w[c];
  }
  for (int c = c0; c < c1; c++) g[c] = en_vsigmoid(g[c]);
}

/* hidden[j] = w1[j] . sums for four rows at once (four memory streams, as above), each with
 * the 16 partial sums of dot(). */
EN_CLONES static void se_reduce4(float *hidden, const float *w1, const float *sums, int C) {
  float part[4][16] = {{0}};
  int i = 0;
  for (; i + 16 <= C; i += 16)
    for (int r = 0; r < 4; r++)
      for (int l = 0; l < 16; l++) part[r][l] += w1[(int64_t)r * C + i + l] * sums[i + l];
  for (int r = 0; r < 4; r++) {
    float acc = 0.0f;
    for (int k = i; k < C; k++) acc += w1[(int64_t)r * C + k] * sums[k];
    for (int l = 0; l < 16; l++) acc += part[r][l];
    hidden[r] = acc;
  }
}

/* Hidden units [4q, 4q + 4) of one image: products, bias, activation. */
static void se_hidden(float *hidden, const float *w1, const float *b1, const float *sums, int C,
                      int se, int64_t hw, en_act act, int q) {
  int j0 = 4 * q, j1 = j0 + 4 < se ? j0 + 4 : se;
  if (j1 - j0 == 4) se_reduce4(hidden + j0, w1 + (int64_t)j0 * C, sums, C);
  else
    for (int j = j0; j < j1; j++) hidden[j] = dot(w1 + (int64_t)j * C, sums, C);
  for (int j = j0; j < j1; j++) hidden[j] = en_activate(b1[j] + hidden[j] / (float)hw, act);
}

/* SE weights from which the two products are split over the team (both read weights that
 * usually come from beyond L2, so two cores fetch them twice as fast): B0's last stages (1152 x
 * 48) ran 100 us on one thread. Each gate value is computed the same way whatever the split. */
#define SE_PARALLEL (1 << 14)

static void fast_se_gate(float *gate, const float *pool, const float *w1, const float *b1,
                         const float *w2t, const float *b2, int n, int64_t hw, int C, int se,
                         en_act act, float *scratch) {
  int quads = (se + 3) / 4, blocks = (C + 15) / 16;
  if (omp_get_max_threads() == 1 || (int64_t)C * se < SE_PARALLEL) {
    for (int b = 0; b < n; b++) {
      for (int q = 0; q < quads; q++)
        se_hidden(scratch, w1, b1, pool + (int64_t)b * C, C, se, hw, act, q);
      se_expand(gate + (int64_t)b * C, scratch, w2t, b2, C, 0, C, se);
    }
    return;
  }
#pragma omp parallel
  {
    int parts = omp_get_num_threads();
    for (int b = 0; b < n; b++) {
      float *hidden = scratch, *g = gate + (int64_t)b * C;
#pragma omp for schedule(static)
      for (int q = 0; q < quads; q++)
        se_hidden(hidden, w1, b1, pool + (int64_t)b * C, C, se, hw, act, q);
#pragma omp for schedule(static)
      for (int part = 0; part < parts; part++) {
        int c0 = 16 * (blocks * part / parts), c1 = 16 * (blocks * (part + 1) / parts);
        se_expand(g, hidden, w2t, b2, C, c0, c1 < C ? c1 : C, se);
      }
    }
  }
}

static void fast_se(float *x, const float *pool, const float *w1, const float *b1,
                    const float *w2t, const float *b2, int n, int64_t hw, int C, int se,
                    en_act act, float *scratch) {
  for (int b = 0; b < n; b++) {
    float *gate = scratch + se;
    fast_se_gate(gate, pool + (int64_t)b * C, w1, b1, w2t, b2, 1, hw, C, se, act, scratch);
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
    "fast",      fast_conv, fast_pointwise, en_fast_depthwise, fast_se,      fast_pool,
    fast_linear, fast_add,  en_fast_gemm,   fast_se_gate,      en_fast_expand_depthwise,
    en_fast_dense,   en_fast_stem_depthwise, en_fast_planes_pay, en_fast_gemm_planes,
    en_fast_depthwise_planes,
};
