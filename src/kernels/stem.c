/* The stem's dense convolution computed directly (no im2col buffer, no GEMM call per image):
 * for a strip of PIX output pixels the k x k x cin patch values are gathered once (zeros where
 * the window leaves the image), then every 16-channel panel of the packed weights (en_gemm_pack
 * layout of the OHWI weights: per tap, 16 output channels in one vector) is multiplied in with
 * PIX independent accumulators, bias and activation applied in registers; strips whose windows
 * lie inside the image read the input rows directly, without the gather. The stem has 27 taps
 * and 32-64 output channels: a GEMM with K = 27 spends more time packing and writing its
 * patch matrix than multiplying. Windows of more than EN_DENSE_TAPS taps go to im2col + GEMM.
 * Each output row is written by one thread in a fixed order: no dependence on the thread count. */
#include <string.h>

#include "kernels/vec16.h"

/* ISO C mode (-std=c11) turns off multiply-add contraction */
#pragma GCC optimize("fp-contract=fast")

#define PIX EN_DENSE_PIX

void en_dense_patches(float *patch, const float *img, const en_conv_desc *d, int oy, int ox0,
                      int np) {
  int k = d->kernel, cin = d->cin, taps = k * k * cin, iy0 = oy * d->stride - d->pad_top;
  for (int j = 0; j < np; j++) {
    float *dst = patch + (size_t)j * taps;
    int ix0 = (ox0 + j) * d->stride - d->pad_left;
    for (int ky = 0; ky < k; ky++) {
      int iy = iy0 + ky;
      for (int kx = 0; kx < k; kx++, dst += cin) {
        int ix = ix0 + kx;
        if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w) {
          for (int c = 0; c < cin; c++) dst[c] = 0.0f;
          continue;
        }
        const float *src = img + ((int64_t)iy * d->w + ix) * cin;
        for (int c = 0; c < cin; c++) dst[c] = src[c];
      }
    }
  }
  memset(patch + (size_t)np * taps, 0, (size_t)(PIX - np) * taps * sizeof *patch);
}

/* acc[v][j] (v < np panels from panel p, j < PIX pixels) += patch value t of pixel j times tap
 * t's weights of panel p + v, over all taps: from the gathered patch (pitch = taps per pixel)
 * or, for a strip whose windows lie inside the image, straight from the input rows (rows[ky]
 * at the strip's first window column, pitch = stride * cin between pixels). Two panels share
 * each broadcast input value. */
static inline __attribute__((always_inline)) void strip_panels(
    float *out, const float *packed, const float *bias, const float *const *rows,
    const float *patch, int pitch, const en_conv_desc *d, int p, int np, int pixels, int isa) {
  int k = d->kernel, kc = k * d->cin, taps = k * kc;
  en_vec acc[2][PIX];
  int lanes[2];
  for (int v = 0; v < np; v++) {
    int c0 = (p + v) * EN_LANES;
    lanes[v] = d->cout - c0 < EN_LANES ? d->cout - c0 : EN_LANES;
    en_vec b = bias ? en_vload(bias + c0, lanes[v]) : (en_vec){0};
    for (int j = 0; j < PIX; j++) acc[v][j] = b;
  }
  const float *w = packed + (size_t)p * taps * EN_LANES;
  for (int ky = 0, t = 0; ky < k; ky++)
    for (int q = 0; q < kc; q++, t++) {
      en_vec wv[2];
      for (int v = 0; v < np; v++) wv[v] = en_vload(w + ((size_t)v * taps + t) * EN_LANES, EN_LANES);
      const float *src = rows ? rows[ky] + q : patch + t;
      for (int j = 0; j < PIX; j++) {
        float x = src[j * pitch];
        for (int v = 0; v < np; v++) acc[v][j] += x * wv[v];
      }
    }
  for (int v = 0; v < np; v++) {
    for (int j = 0; j < PIX; j += 4) en_vact_n(acc[v] + j, 4, d->act, isa);
    for (int j = 0; j < pixels; j++)
      en_vstore_from_isa(out + (int64_t)j * d->cout + (p + v) * EN_LANES, acc[v][j], 0, lanes[v],
                         isa);
  }
}

/* One output row: strips of PIX pixels, panels two at a time. */
static inline __attribute__((always_inline)) void dense_row(float *out, const float *img,
                                                            const float *packed,
                                                            const float *bias,
                                                            const en_conv_desc *d, int oy,
                                                            int isa) {
  int k = d->kernel, taps = k * k * d->cin, panels = (d->cout + EN_LANES - 1) / EN_LANES;
  int iy0 = oy * d->stride - d->pad_top, rows_inside = iy0 >= 0 && iy0 + k <= d->h;
  const float *rows[EN_DENSE_TAPS];
  float patch[PIX * EN_DENSE_TAPS];
  for (int ox = 0; ox < d->ow; ox += PIX) {
    int np = d->ow - ox < PIX ? d->ow - ox : PIX, ix0 = ox * d->stride - d->pad_left;
    int inside = rows_inside && np == PIX && ix0 >= 0 && ix0 + (PIX - 1) * d->stride + k <= d->w;
    if (inside)
      for (int ky = 0; ky < k; ky++) rows[ky] = img + ((int64_t)(iy0 + ky) * d->w + ix0) * d->cin;
    else
      en_dense_patches(patch, img, d, oy, ox, np);
    float *o = out + (int64_t)ox * d->cout;
    for (int p = 0; p < panels; p += 2) {
      int pitch = d->stride * d->cin;
      int two = p + 2 <= panels;
      if (two && inside) strip_panels(o, packed, bias, rows, NULL, pitch, d, p, 2, np, isa);
      else if (two) strip_panels(o, packed, bias, NULL, patch, taps, d, p, 2, np, isa);
      else if (inside) strip_panels(o, packed, bias, rows, NULL, pitch, d, p, 1, np, isa);
      else strip_panels(o, packed, bias, NULL, patch, taps, d, p, 1, np, isa);
    }
  }
}

/* dense_row compiled once per ISA (isa.h), `target` the ISA's attribute. */
#define DENSE_VARIANT(target, suffix, isa)                                                     \
  target __attribute__((flatten)) static void dense_row_##suffix(                              \
      float *out, const float *img, const float *packed, const float *bias,                    \
      const en_conv_desc *d, int oy) {                                                         \
    dense_row(out, img, packed, bias, d, oy, isa);                                             \
  }
#if EN_X86_TARGETS
DENSE_VARIANT(EN_TARGET_AVX512, avx512, EN_ISA_AVX512)
#endif

en_dense_row_fn en_fast_dense_row(const en_conv_desc *d) {
  /* the generic direct kernel's 16-float accumulators stay in registers only on AVX-512 (see
   * gemm.c's AVX2 kernel); AVX2 has its own (stem_avx2.c), portable code patches + GEMM */
  if (d->kernel * d->kernel * d->cin > EN_DENSE_TAPS) return NULL;
#if EN_X86_TARGETS
  int isa = en_dense_isa();
  if (isa == EN_ISA_AVX512) return dense_row_avx512;
  if (isa == EN_ISA_AVX2) return en_dense_row_avx2; /* stem_avx2.c */
#endif
  return NULL;
}

void en_fast_dense(float *out, const float *in, const float *packed, const float *bias,
                   const en_conv_desc *d, float *scratch) {
  int taps = d->kernel * d->kernel * d->cin;
  int64_t opix = (int64_t)d->oh * d->ow;
  en_dense_row_fn row = en_fast_dense_row(d);
  if (!row) {
    for (int b = 0; b < d->n; b++) {
      const float *cols = in + (int64_t)b * d->h * d->w * d->cin;
      if (en_conv_scratch_floats(d)) { /* else the input is its own patch matrix */
        en_im2col(scratch, cols, d);
        cols = scratch;
      }
      en_fast_gemm(out + b * opix * d->cout, cols, packed, bias, NULL, opix, taps, d->cout,
                   d->act);
    }
    return;
  }
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int b = 0; b < d->n; b++)
    for (int oy = 0; oy < d->oh; oy++)
      row(out + (b * opix + (int64_t)oy * d->ow) * d->cout,
          in + (int64_t)b * d->h * d->w * d->cin, packed, bias, d, oy);
}
