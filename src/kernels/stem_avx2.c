/* The stem's direct dense convolution for AVX2 + FMA (stem.c has the generic one, which keeps
 * its 16-float accumulators in registers only on AVX-512): strips of 6 output pixels times one
 * 16-channel panel of the packed weights, twelve 8-float accumulators, each tap's 16 weights in
 * two registers and one broadcast input value per pixel. Same input handling as stem.c: strips
 * whose windows lie inside the image read the input rows directly, the others a gathered patch
 * (en_dense_patches, zeros outside the image). Replaces patches + GEMM, which wrote and re-read
 * a 12544 x 27 patch matrix per B0 image. */
#include "kernels/vec16.h"

#if EN_X86_TARGETS
#include <immintrin.h>

/* ISO C mode (-std=c11) turns off multiply-add contraction */
#pragma GCC optimize("fp-contract=fast")

#define SPIX 6
_Static_assert(SPIX <= EN_DENSE_PIX, "en_dense_patches fills EN_DENSE_PIX pixels");

/* Pixels [0, np) of a strip, panel p: input value of pixel j, tap t at src_t[j * pitch], where
 * src_t is rows[ky] + q (t = ky * k * cin + q) or patch + t. */
static inline EN_TARGET_AVX2 __attribute__((always_inline)) void strip(
    float *out, const float *packed, const float *bias, const float *const *rows,
    const float *patch, int pitch, const en_conv_desc *d, int p, int np, en_act act, int half) {
  int k = d->kernel, kc = k * d->cin, taps = k * kc, col = p * EN_GEMM_PANEL;
  int left = d->cout - col, n0 = left < 8 ? left : 8, n1 = left - n0 < 8 ? left - n0 : 8;
  __m256i m0 = en_lane_mask8(n0), m1 = en_lane_mask8(n1);
  __m256 b0 = bias ? en_load8(bias + col, n0, m0) : _mm256_setzero_ps();
  __m256 b1 = bias ? en_load8(bias + col + 8, n1, m1) : _mm256_setzero_ps();
  __m256 c[2 * SPIX];
  for (int j = 0; j < SPIX; j++) c[2 * j] = b0, c[2 * j + 1] = b1;
  const float *w = packed + (size_t)p * taps * EN_GEMM_PANEL;
  for (int ky = 0, t = 0; ky < k; ky++) {
    const float *src = rows ? rows[ky] : patch + t;
    for (int q = 0; q < kc; q++, t++, src++, w += EN_GEMM_PANEL) {
      __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
      for (int j = 0; j < SPIX; j++) {
        __m256 x = _mm256_broadcast_ss(src + (int64_t)j * pitch);
        c[2 * j] = _mm256_fmadd_ps(x, w0, c[2 * j]);
        if (!half) c[2 * j + 1] = _mm256_fmadd_ps(x, w1, c[2 * j + 1]);
      }
    }
  }
  __m256 acc[2 * SPIX]; /* c's address is never taken, so the loop keeps it in registers */
  for (int j = 0; j < 2 * SPIX; j++) acc[j] = c[j];
  en_act_avx2(acc, 2 * SPIX, act);
  for (int j = 0; j < np; j++) {
    en_store8(out + (int64_t)j * d->cout + col, acc[2 * j], n0, m0);
    if (!half) en_store8(out + (int64_t)j * d->cout + col + 8, acc[2 * j + 1], n1, m1);
  }
}

/* Swish over n floats in place, four registers at a time: the strips store their sums with the
 * bias only and the row gets its swish here, as the GEMM's panels do (gemm.c), where the strip's
 * epilogue swished its twelve accumulators two at a time with its constants spilled, the divide
 * the hottest instruction of the stem. One thread, Zen 3, builds alternated three times, min of
 * 7: 300 x 300 -> 40 0.82-0.97 of the time, 224 -> 32 0.72-0.94, 600 -> 64 0.79-0.99; in the
 * network, six process pairs, stem + depthwise over the 1x1 convs' time B3 0.94 (0.89-0.97),
 * B0 0.96 (0.90-1.04). */
static EN_TARGET_AVX2 void swish_pass(float *o, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256 h[4] = {_mm256_loadu_ps(o + i), _mm256_loadu_ps(o + i + 8),
                   _mm256_loadu_ps(o + i + 16), _mm256_loadu_ps(o + i + 24)};
    en_swish_avx2(h, 4);
    for (int j = 0; j < 4; j++) _mm256_storeu_ps(o + i + 8 * j, h[j]);
  }
  for (; i < n; i += 8) {
    int left = n - i < 8 ? (int)(n - i) : 8;
    __m256i m = en_lane_mask8(left);
    __m256 h[1] = {en_load8(o + i, left, m)};
    en_swish_avx2(h, 1);
    en_store8(o + i, h[0], left, m);
  }
}

/* The same with AVX-512's swish where the CPU has it (Zen 4, whose stem is AVX2's: isa.h). */
static EN_TARGET_AVX512 void swish_pass_avx512(float *o, int64_t n) {
  en_swish_rows_avx512(o, n / 16, 16, 16);
  if (n % 16) en_swish_rows_avx512(o + n - n % 16, 1, 16, (int)(n % 16));
}

EN_TARGET_AVX2 void en_dense_row_avx2(float *out, const float *img, const float *packed,
                                      const float *bias, const en_conv_desc *d, int oy) {
  int k = d->kernel, taps = k * k * d->cin;
  int panels = (d->cout + EN_GEMM_PANEL - 1) / EN_GEMM_PANEL;
  int iy0 = oy * d->stride - d->pad_top, rows_inside = iy0 >= 0 && iy0 + k <= d->h;
  const float *rows[EN_DENSE_TAPS];
  int post = d->act == EN_ACT_SWISH; /* the swish as a pass over the finished row */
  en_act act = post ? EN_ACT_NONE : d->act;
  float patch[EN_DENSE_PIX * EN_DENSE_TAPS];
  for (int ox = 0; ox < d->ow; ox += SPIX) {
    int np = d->ow - ox < SPIX ? d->ow - ox : SPIX, ix0 = ox * d->stride - d->pad_left;
    int inside = rows_inside && np == SPIX && ix0 >= 0 &&
                 ix0 + (SPIX - 1) * d->stride + k <= d->w;
    if (inside)
      for (int ky = 0; ky < k; ky++) rows[ky] = img + ((int64_t)(iy0 + ky) * d->w + ix0) * d->cin;
    else
      en_dense_patches(patch, img, d, oy, ox, np);
    float *o = out + (int64_t)ox * d->cout;
    for (int p = 0; p < panels; p++) {
      /* a last panel of at most 8 channels (B3's 40: 16 + 16 + 8) on six accumulators, its
       * empty half no longer multiplied: B3's stem alone (300 x 300 -> 40, one thread, Zen 4)
       * 0.80 -> 0.76 ms */
      int half = d->cout - p * EN_GEMM_PANEL <= 8;
      if (inside && half) strip(o, packed, bias, rows, NULL, d->stride * d->cin, d, p, np, act, 1);
      else if (inside) strip(o, packed, bias, rows, NULL, d->stride * d->cin, d, p, np, act, 0);
      else if (half) strip(o, packed, bias, NULL, patch, taps, d, p, np, act, 1);
      else strip(o, packed, bias, NULL, patch, taps, d, p, np, act, 0);
    }
  }
  if (post && en_isa() == EN_ISA_AVX512) swish_pass_avx512(out, (int64_t)d->ow * d->cout);
  else if (post) swish_pass(out, (int64_t)d->ow * d->cout);
}
#endif
