/* The small-image depthwise kernel's body (see depthwise_small.c), included after
 * kernels/vec16.h by the files that compile it: depthwise_small.c with 16-float vectors
 * (AVX-512), depthwise_small_avx2.c with 8-float ones (EN_VEC_LANES 8). Everything here is
 * static and takes the ISA as a constant. */
#ifndef EN_DEPTHWISE_SMALL_H
#define EN_DEPTHWISE_SMALL_H

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

/* tile[py][px] = input pixel (py - pad_top, px - pad_left) of block c0, zero outside: whole
 * rows of zeros, then per image row its zero margins and a straight copy (a per-pixel bounds
 * test cost as much as the block's multiply-adds at 10 x 10, k 5). */
static inline __attribute__((always_inline)) void fill(en_vec *tile, tile_shape t,
                                                       const float *img, const en_conv_desc *d,
                                                       int c0, int lanes) {
  int left = d->pad_left < t.cols ? d->pad_left : t.cols;
  int right = t.cols - d->pad_left - d->w; /* zero columns after the image's */
  int inside = t.cols - left - (right > 0 ? right : 0);
  for (int py = 0; py < t.rows; py++) {
    int iy = py - d->pad_top;
    en_vec *row = tile + (int64_t)py * t.cols;
    if (iy < 0 || iy >= d->h) {
      for (int px = 0; px < t.cols; px++) row[px] = (en_vec){0};
      continue;
    }
    const float *src = img + (int64_t)iy * d->w * d->cin + c0;
    for (int px = 0; px < left; px++) row[px] = (en_vec){0};
    for (int px = 0; px < inside; px++)
      row[left + px] = en_vload(src + (int64_t)px * d->cin, lanes);
    for (int px = left + inside; px < t.cols; px++) row[px] = (en_vec){0};
  }
}

/* G output pixels (a constant, at most 4) of one row from `row` (their first window's top-left
 * in the tile): accumulated over the K x K taps, activated together, stored; returns their sum
 * for the SE pooling. */
static inline __attribute__((always_inline)) en_vec pixel_group(
    float *o, const en_vec *row, int64_t cols, const en_vec *wv, en_vec bias,
    const en_conv_desc *d, int skip, int lanes, int K, int S, int PS, int G, int isa,
    en_act act) {
  en_vec acc[4] = {bias, bias, bias, bias};
  for (int ky = 0; ky < K; ky++)
    for (int kx = 0; kx < K; kx++)
      for (int j = 0; j < G; j++) acc[j] += row[ky * cols + (j * S + kx) * PS] * wv[ky * K + kx];
  en_vact_n(acc, G, act, isa);
  for (int j = 0; j < G; j++) en_vstore_from_isa(o + (int64_t)j * d->cin, acc[j], skip, lanes, isa);
  en_vec s = acc[0];
  if (G == 4) s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  else if (G == 3) s = (acc[0] + acc[1]) + acc[2];
  else if (G == 2) s = acc[0] + acc[1];
  return s;
}

/* pixel_group for G = 5..8 pixels (AVX2, k5: see block_kernel), the swish two registers at a
 * time (en_act_avx2) */
static inline __attribute__((always_inline)) en_vec pixel_group8(
    float *o, const en_vec *row, int64_t cols, const en_vec *wv, en_vec bias,
    const en_conv_desc *d, int skip, int lanes, int K, int S, int PS, int G, int isa,
    en_act act) {
  en_vec acc[8];
  for (int j = 0; j < G; j++) acc[j] = bias;
  for (int ky = 0; ky < K; ky++)
    for (int kx = 0; kx < K; kx++)
      for (int j = 0; j < G; j++) acc[j] += row[ky * cols + (j * S + kx) * PS] * wv[ky * K + kx];
  for (int j = 0; j < G; j += 2) en_vact_n(acc + j, G - j < 2 ? G - j : 2, act, isa);
  for (int j = 0; j < G; j++) en_vstore_from_isa(o + (int64_t)j * d->cin, acc[j], skip, lanes, isa);
  en_vec s = (acc[0] + acc[1]) + (acc[2] + acc[3]), t = acc[4];
  if (G == 8) t = (acc[4] + acc[5]) + (acc[6] + acc[7]);
  if (G == 7) t = (acc[4] + acc[5]) + acc[6];
  if (G == 6) t = acc[4] + acc[5];
  return s + t;
}

/* The block: K x K taps, stride S (constants), pixels PS vectors apart in the tile (a constant:
 * 1, or 2 for AVX2 reading 16-channel planes), each row's output pixels in groups of four and
 * a last group of 1-3 (a 10-pixel row used to compute 12). With the sums in a tree and the
 * swish's copies fixed (vec16.h), one thread, builds alternated: AVX2 0.84-0.92 of the time
 * at 7x7 to 19x19, AVX-512 0.95-1.02. AVX2, k5: groups of eight, and a last 5-7 as one group
 * (more independent chains between a group's 25 multiply-adds and its swish): builds
 * alternated, one thread, 14 x 14 x 480 0.89-0.92, 19 x 19 x 816 0.95, 7 x 7 x 1152 0.88-0.91;
 * k3 and AVX-512 gained nothing that way (0.96-1.07). */
static inline __attribute__((always_inline)) en_vec block_kernel(
    float *out, const en_vec *tile, tile_shape t, const float *w, en_vec bias,
    const en_conv_desc *d, int c0, int skip, int lanes, int K, int S, int PS, int isa,
    const float *next, en_act act) {
  en_vec wv[7 * 7], sum = {0};
  int wide = isa == EN_ISA_AVX2 && K == 5;
  int64_t hw = (int64_t)d->h * d->w;
  for (int q = 0; q < K * K; q++) wv[q] = en_vload(w + (int64_t)q * d->cin + c0, lanes);
  for (int oy = 0; oy < d->oh; oy++) {
    if (next) /* the next task's input lines, a share per output row */
      for (int64_t px = hw * oy / d->oh; px < hw * (oy + 1) / d->oh; px++)
        __builtin_prefetch(next + px * d->cin, 0, 2);
    for (int ox = 0; ox < d->ow; ox += 4) {
      const en_vec *row = tile + ((int64_t)oy * S * t.cols + ox * S) * PS;
      float *o = out + ((int64_t)oy * d->ow + ox) * d->cin + c0;
      int g = d->ow - ox;
#define EN_GROUP8(n) \
  pixel_group8(o, row, t.cols * PS, wv, bias, d, skip, lanes, K, S, PS, n, isa, act)
#define EN_GROUP(n) pixel_group(o, row, t.cols * PS, wv, bias, d, skip, lanes, K, S, PS, n, isa, act)
      if (wide && g > 4) {
        int G = g < 8 ? g : 8;
        if (G == 8) sum += EN_GROUP8(8);
        else if (G == 7) sum += EN_GROUP8(7);
        else if (G == 6) sum += EN_GROUP8(6);
        else sum += EN_GROUP8(5);
        ox += G - 4;
      } else if (g >= 4) sum += EN_GROUP(4);
      else if (g == 3) sum += EN_GROUP(3);
      else if (g == 2) sum += EN_GROUP(2);
      else sum += EN_GROUP(1);
#undef EN_GROUP8
#undef EN_GROUP
    }
  }
  return sum;
}

/* block_kernel with K and S constants, and lanes, skip and the activation too where they can
 * be. skip 0 as a constant where it is: no partial-store path in the loop, whose memcpy calls
 * kept the running sum in memory (a store-to-load chain through every pixel). The swish as a
 * constant for AVX2's k3 whole blocks: with the activation read from the descriptor, the four
 * accumulators went through the stack around its run-time switch, ~58 instructions per output
 * vector where the multiply-adds are 9 (19 x 19 x 192 k3, callgrind). Separate builds, one
 * thread, Zen 3, three runs each: 19 x 19 x 192 k3 0.78-1.03 of the time, 14 x 14 x 480 0.73-1.0,
 * 7 x 7 x 1152 0.64-0.89, 10 x 10 x 2304 0.61-0.89; B0's k3 convs in the network 0.68-0.79
 * (per-op trace, four processes each alternated); for k5 (eight pixels a group) the same
 * constant made it 1.3-1.6 times slower (14 x 14 x 672, 7 x 7 x 1152, 19 x 19 x 816). AVX-512
 * takes the constant for k3 and k5: with the descriptor's, its accumulators went through the
 * stack too (Zen 4, one thread, planes in L1/L2, cycles per 16 outputs: 14 x 14 x 480 k3 28 ->
 * 25, 7 x 7 x 1152 k3 31 -> 27, k5 72 -> 61, 14 x 14 x 672 k5 60 -> 48, k5 stride 2 78 -> 70;
 * B0's small depthwise convs in the network 0.74 -> 0.68 ms). Same bits either way. */
static inline __attribute__((always_inline)) en_vec block_any(
    float *out, const en_vec *tile, tile_shape t, const float *w, en_vec b,
    const en_conv_desc *d, int c0, int skip, int lanes, int K, int S, int PS, int isa,
    const float *next) {
  int constant = isa == EN_ISA_AVX512 || (isa == EN_ISA_AVX2 && K == 3);
  if (lanes == LANES && skip == 0 && constant && d->act == EN_ACT_SWISH)
    return block_kernel(out, tile, t, w, b, d, c0, 0, LANES, K, S, PS, isa, next, EN_ACT_SWISH);
  if (lanes == LANES && skip == 0)
    return block_kernel(out, tile, t, w, b, d, c0, 0, LANES, K, S, PS, isa, next, d->act);
  if (lanes == LANES)
    return block_kernel(out, tile, t, w, b, d, c0, skip, LANES, K, S, PS, isa, next, d->act);
  return block_kernel(out, tile, t, w, b, d, c0, skip, lanes, K, S, PS, isa, next, d->act);
}

/* One (image, block) task; pool: the image's (C) sums; next: where the next task's input
 * lines start (prefetched into L2 meanwhile), or NULL; given: the block's tile itself (in its
 * plane, en_planes: a whole block of LANES channels, rows `stride` pixels apart; on AVX2 one
 * half of each 16-float pixel), or NULL to fill one from img. */
static inline __attribute__((always_inline)) void small_task(float *out, const float *img,
                                                             const float *w, const float *bias,
                                                             const en_conv_desc *d, int i,
                                                             float *pool, int isa,
                                                             const float *next,
                                                             const en_vec *given, int stride) {
  en_vec tile[EN_DW_TILE];
  tile_shape t = shape_of(d);
  int c0, lanes, skip;
  en_vspan(d->cin, i, &c0, &lanes, &skip);
  en_vec b = bias ? en_vload(bias + c0, lanes) : (en_vec){0}, sum;
  const en_vec *tp = given ? given : tile;
  if (given) t.cols = stride;
  if (!given && lanes == LANES) fill(tile, t, img, d, c0, LANES);
  else if (!given) fill(tile, t, img, d, c0, lanes);
#define CASE(K, S, PS)                                                                      \
  if (d->kernel == K && d->stride == S)                                                     \
    sum = block_any(out, tp, t, w, b, d, c0, skip, lanes, K, S, PS, isa, next);             \
  else
  if (given && isa == EN_ISA_AVX2) { /* 16-float pixels: every other 8-float vector */
    CASE(3, 1, 2) CASE(3, 2, 2) CASE(5, 1, 2) CASE(5, 2, 2) return;
  } else {
    CASE(3, 1, 1) CASE(3, 2, 1) CASE(5, 1, 1) CASE(5, 2, 1) return;
  }
#undef CASE
  if (pool) {
    float s[LANES];
    memcpy(s, &sum, sizeof s);
    for (int l = skip; l < lanes; l++) pool[c0 + l] = s[l];
  }
}

#endif
