/* Depthwise convolution of small images (late stages: 7 x 7 to 40 x 40) one 16-channel block at
 * a time, from a zero-padded copy of the block.
 *
 * The row kernel (depthwise.c) treats the pixels whose window leaves the image one tap at a
 * time with run-time bounds; in a 7 x 7 image with a 5 x 5 window that is every pixel, and its
 * per-row bookkeeping is paid every 7 pixels. Here the block's input is first copied into a
 * tile with zeros around it (at most EN_DW_TILE pixels of 16 floats, on the stack), so every
 * window is whole: the taps are unrolled for k = 3 and 5 and strides 1 and 2 (constants after
 * inlining), four output pixels at a time sharing each weight vector, then activated together
 * (four swishes interleaved), stored, and summed for the SE pooling. A task is one (image,
 * block) pair: no halo is recomputed and each pooled sum has one writer. */
#include <omp.h>
#include <string.h>

#include "kernels/vec16.h"

/* ISO C mode (-std=c11) turns off multiply-add contraction: the kernels need FMA */
#pragma GCC optimize("fp-contract=fast")

#define LANES EN_LANES
#define EN_DW_TILE 1600 /* padded pixels: 40 x 40 (100 KB of stack) */

typedef struct tile_shape {
  int rows, cols; /* padded tile, cols a multiple of 4 output pixels' reach */
} tile_shape;

static inline tile_shape shape_of(const en_conv_desc *d) {
  int groups = (d->ow + 3) / 4;
  tile_shape t = {(d->oh - 1) * d->stride + d->kernel, (groups * 4 - 1) * d->stride + d->kernel};
  return t;
}

/* tile[py][px] = input pixel (py - pad_top, px - pad_left) of block c0, zero outside. */
static inline __attribute__((always_inline)) void fill(en_vec *tile, tile_shape t,
                                                       const float *img, const en_conv_desc *d,
                                                       int c0, int lanes) {
  for (int py = 0; py < t.rows; py++) {
    int iy = py - d->pad_top;
    en_vec *row = tile + (int64_t)py * t.cols;
    for (int px = 0; px < t.cols; px++) {
      int ix = px - d->pad_left;
      row[px] = iy >= 0 && iy < d->h && ix >= 0 && ix < d->w
                    ? en_vload(img + ((int64_t)iy * d->w + ix) * d->cin + c0, lanes)
                    : (en_vec){0};
    }
  }
}

/* The block: K x K taps, stride S (constants), every output pixel four at a time. */
static inline __attribute__((always_inline)) en_vec block_kernel(
    float *out, const en_vec *tile, tile_shape t, const float *w, en_vec bias,
    const en_conv_desc *d, int c0, int skip, int lanes, int K, int S, int isa) {
  en_vec wv[7 * 7], sum = {0};
  for (int q = 0; q < K * K; q++) wv[q] = en_vload(w + (int64_t)q * d->cin + c0, lanes);
  for (int oy = 0; oy < d->oh; oy++)
    for (int ox = 0; ox < d->ow; ox += 4) {
      en_vec acc[4] = {bias, bias, bias, bias};
      for (int ky = 0; ky < K; ky++) {
        const en_vec *src = tile + (int64_t)(oy * S + ky) * t.cols + ox * S;
        for (int kx = 0; kx < K; kx++)
          for (int j = 0; j < 4; j++) acc[j] += src[j * S + kx] * wv[ky * K + kx];
      }
      en_vact_n(acc, 4, d->act, isa);
      int n = d->ow - ox < 4 ? d->ow - ox : 4;
      for (int j = 0; j < n; j++) {
        en_vstore_from(out + ((int64_t)oy * d->ow + ox + j) * d->cin + c0, acc[j], skip, lanes);
        sum += acc[j];
      }
    }
  return sum;
}

/* One (image, block) task; pool: the image's (C) sums. */
static inline __attribute__((always_inline)) void small_task(float *out, const float *img,
                                                             const float *w, const float *bias,
                                                             const en_conv_desc *d, int i,
                                                             float *pool, int isa) {
  en_vec tile[EN_DW_TILE];
  tile_shape t = shape_of(d);
  int c0, lanes, skip;
  en_vspan(d->cin, i, &c0, &lanes, &skip);
  en_vec b = bias ? en_vload(bias + c0, lanes) : (en_vec){0}, sum;
  if (lanes == LANES) fill(tile, t, img, d, c0, LANES);
  else fill(tile, t, img, d, c0, lanes);
#define CASE(K, S)                                                                          \
  if (d->kernel == K && d->stride == S)                                                     \
    sum = lanes == LANES ? block_kernel(out, tile, t, w, b, d, c0, skip, LANES, K, S, isa)  \
                         : block_kernel(out, tile, t, w, b, d, c0, skip, lanes, K, S, isa); \
  else
  CASE(3, 1) CASE(3, 2) CASE(5, 1) CASE(5, 2) return;
#undef CASE
  if (pool) {
    float s[LANES];
    memcpy(s, &sum, sizeof s);
    for (int l = skip; l < lanes; l++) pool[c0 + l] = s[l];
  }
}

#if EN_X86_TARGETS
EN_TARGET_AVX512 __attribute__((flatten)) static void small_task_avx512(
    float *out, const float *img, const float *w, const float *bias, const en_conv_desc *d,
    int i, float *pool) {
  small_task(out, img, w, bias, d, i, pool, EN_ISA_AVX512);
}
#endif

/* AVX-512 only: elsewhere a 16-float vector is not one register (see vec16.h) and the row
 * kernel compiled with narrower vectors was faster (AVX2 19x19x816 k5: 1.28 vs 1.82 ms). */
int en_fast_depthwise_small(float *out, const float *in, const float *w, const float *bias,
                            const en_conv_desc *d, float *pool) {
#if EN_X86_TARGETS
  tile_shape t = shape_of(d);
  /* stride 2 copies about four input pixels per output pixel: worth it only where the row
   * kernel's rows are mostly border (B0's 14 -> 7: 57 vs 83 us; B3's 19 -> 10: 230 vs 190) */
  if (en_isa() != EN_ISA_AVX512 || (d->kernel != 3 && d->kernel != 5) ||
      (d->stride != 1 && (d->stride != 2 || d->ow > 8)) || (int64_t)t.rows * t.cols > EN_DW_TILE)
    return 0;
  int blocks = (d->cin + LANES - 1) / LANES;
  int64_t tasks = (int64_t)d->n * blocks;
#pragma omp parallel for schedule(dynamic) if (tasks > 1)
  for (int64_t task = 0; task < tasks; task++) {
    int b = (int)(task / blocks), i = (int)(task % blocks);
    int64_t image = (int64_t)b * d->h * d->w * d->cin, outs = (int64_t)b * d->oh * d->ow * d->cin;
    small_task_avx512(out + outs, in + image, w, bias, d, i,
                      pool ? pool + (int64_t)b * d->cin : NULL);
  }
  return 1;
#else
  (void)out, (void)in, (void)w, (void)bias, (void)d, (void)pool;
  return 0;
#endif
}
