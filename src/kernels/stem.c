/* The stem's dense convolution computed directly (no im2col buffer, no GEMM call per image):
 * for a strip of PIX output pixels the k x k x cin patch values are gathered once (zeros where
 * the window leaves the image), then every 16-channel panel of the packed weights (en_gemm_pack
 * layout of the OHWI weights: per tap, 16 output channels in one vector) is multiplied in with
 * PIX independent accumulators, bias and activation applied in registers. The stem has 27 taps
 * and 32-64 output channels: a GEMM with K = 27 spends more time packing and writing its
 * patch matrix than multiplying. Windows of more than EN_DENSE_TAPS taps go to im2col + GEMM.
 * Each output row is written by one thread in a fixed order: no dependence on the thread count. */
#include <string.h>

#include "core/clones.h"
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

/* One output row: strips of PIX pixels, every panel. */
EN_CLONES static void dense_row(float *out, const float *img, const float *packed,
                                const float *bias, const en_conv_desc *d, int oy) {
  int taps = d->kernel * d->kernel * d->cin, panels = (d->cout + EN_LANES - 1) / EN_LANES;
  float patch[PIX * EN_DENSE_TAPS];
  for (int ox = 0; ox < d->ow; ox += PIX) {
    int np = d->ow - ox < PIX ? d->ow - ox : PIX;
    en_dense_patches(patch, img, d, oy, ox, np);
    for (int p = 0; p < panels; p++) {
      int c0 = p * EN_LANES, lanes = d->cout - c0 < EN_LANES ? d->cout - c0 : EN_LANES;
      const float *w = packed + (size_t)p * taps * EN_LANES;
      en_vec b = bias ? en_vload(bias + c0, lanes) : (en_vec){0}, acc[PIX];
      for (int j = 0; j < PIX; j++) acc[j] = b;
      for (int t = 0; t < taps; t++) {
        en_vec wv = en_vload(w + (size_t)t * EN_LANES, EN_LANES);
        for (int j = 0; j < PIX; j++) acc[j] += patch[j * taps + t] * wv;
      }
      for (int j = 0; j < np; j++)
        en_vstore(out + (int64_t)(ox + j) * d->cout + c0, en_vactivate(acc[j], d->act), lanes);
    }
  }
}

void en_fast_dense(float *out, const float *in, const float *packed, const float *bias,
                   const en_conv_desc *d, float *scratch) {
  int taps = d->kernel * d->kernel * d->cin;
  int64_t opix = (int64_t)d->oh * d->ow;
  if (taps > EN_DENSE_TAPS) {
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
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < d->n; b++)
    for (int oy = 0; oy < d->oh; oy++)
      dense_row(out + (b * opix + (int64_t)oy * d->ow) * d->cout,
                in + (int64_t)b * d->h * d->w * d->cin, packed, bias, d, oy);
}
