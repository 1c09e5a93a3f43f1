/* The depthwise row kernel's body (see depthwise.c), included after kernels/vec16.h by the
 * files that compile it: depthwise.c with 16-float vectors (AVX-512, portable), depthwise_avx2.c
 * with 8-float ones (EN_VEC_LANES 8). Everything here is static and takes the ISA as a
 * constant. */
#ifndef EN_DEPTHWISE_ROW_H
#define EN_DEPTHWISE_ROW_H

#include <string.h>

#include "kernels/vec16.h"

/* ISO C mode (-std=c11) turns off multiply-add contraction: the kernels need FMA */
#pragma GCC optimize("fp-contract=fast")

#define LANES EN_LANES

/* One output row of one channel block. rows[ky] points at pixel 0, channel c0 of the input row
 * read by tap ky (only ky in [ky0, ky1) are valid); w and bias point at channel c0. */
typedef struct dw_row {
  const float *const *rows;
  const float *w, *bias;
  float *out;
  const en_conv_desc *d;
  int ky0, ky1, skip, lo, hi; /* [lo, hi): interior output columns; skip: see store_from */
  int from_image;             /* rows are an input image's (memory), not a ring's (cache) */
} dw_row;

static inline __attribute__((always_inline)) en_vec border_pixel(const dw_row *r, int ox, en_vec acc,
                                                                 int lanes) {
  const en_conv_desc *d = r->d;
  int k = d->kernel, C = d->cin;
  int ix0 = ox * d->stride - d->pad_left;
  int kx0 = ix0 < 0 ? -ix0 : 0, kx1 = d->w - ix0 < k ? d->w - ix0 : k;
  for (int ky = r->ky0; ky < r->ky1; ky++) {
    const float *px = r->rows[ky] + (int64_t)ix0 * C;
    const float *wk = r->w + ky * k * C;
    for (int kx = kx0; kx < kx1; kx++)
      acc += en_vload(px + (int64_t)kx * C, lanes) * en_vload(wk + kx * C, lanes);
  }
  return acc;
}

/* Four interior output pixels ox .. ox + 3; kk and ss: the window and stride when constants
 * (3 or 5, 1 or 2: the taps unrolled, each input pixel loaded once for all four outputs that
 * read it), 0 for the descriptor's. */
static inline __attribute__((always_inline)) void interior4(const dw_row *r, int ox, en_vec b,
                                                            en_vec acc[4], int lanes, int kk,
                                                            int ss) {
  const en_conv_desc *d = r->d;
  int k = kk ? kk : d->kernel, C = d->cin, s = ss ? ss : d->stride;
  acc[0] = acc[1] = acc[2] = acc[3] = b;
  if (kk && ss) {
    for (int ky = r->ky0; ky < r->ky1; ky++) {
      const float *px = r->rows[ky] + (int64_t)(ox * s - d->pad_left) * C;
      const float *wk = r->w + ky * k * C;
      en_vec col[3 * 2 + 5];
#pragma GCC unroll 11
      for (int m = 0; m < 3 * s + k; m++) col[m] = en_vload(px + (int64_t)m * C, lanes);
#pragma GCC unroll 5
      for (int kx = 0; kx < k; kx++) {
        en_vec wv = en_vload(wk + kx * C, lanes);
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) acc[j] += col[j * s + kx] * wv;
      }
    }
    return;
  }
  int64_t step = (int64_t)s * C;
  for (int ky = r->ky0; ky < r->ky1; ky++) {
    const float *px = r->rows[ky] + (int64_t)(ox * s - d->pad_left) * C;
    for (int kx = 0; kx < k; kx++, px += C) {
      en_vec wv = en_vload(r->w + (ky * k + kx) * C, lanes);
      acc[0] += en_vload(px, lanes) * wv;
      acc[1] += en_vload(px + step, lanes) * wv;
      acc[2] += en_vload(px + 2 * step, lanes) * wv;
      acc[3] += en_vload(px + 3 * step, lanes) * wv;
    }
  }
}

/* interior4 with the family's windows and strides as constants. */
static inline __attribute__((always_inline)) void interior4_any(const dw_row *r, int ox,
                                                                en_vec b, en_vec acc[4],
                                                                int lanes) {
  int k = r->d->kernel, s = r->d->stride;
  if (k == 3 && s == 1) interior4(r, ox, b, acc, lanes, 3, 1);
  else if (k == 3 && s == 2) interior4(r, ox, b, acc, lanes, 3, 2);
  else if (k == 5 && s == 1) interior4(r, ox, b, acc, lanes, 5, 1);
  else if (k == 5 && s == 2) interior4(r, ox, b, acc, lanes, 5, 2);
  else interior4(r, ox, b, acc, lanes, 0, 0);
}

/* Activates, stores and sums the `count` pending pixels (from ox0) four at a time: a single
 * swish is a ~65-cycle dependency chain, and up to six border pixels a row (k = 5, narrow late
 * stages) would wait for theirs one by one. */
static inline __attribute__((always_inline)) void flush(const dw_row *r, en_vec pend[4],
                                                        const int at[4], int count, en_vec *sum,
                                                        int lanes, int skip, int isa) {
  en_vact_n(pend, 4, r->d->act, isa);
  for (int j = 0; j < count; j++) {
    en_vstore_from_isa(r->out + (int64_t)at[j] * r->d->cin, pend[j], skip, lanes, isa);
    *sum += pend[j];
  }
}

/* Parts of a row: the left border pixels, the interior pixels in groups of four, and the rest
 * (the last 1-3 interior pixels and the right border). */
enum { ROW_LEFT = 1, ROW_GROUPS = 2, ROW_RIGHT = 4, ROW_ALL = 7 };

/* The `parts` of the row; `lanes`, `skip` (r->skip, or 0 when known to be) and `parts` are
 * constants after inlining, so full blocks carry no checks. Adds the outputs to *sum in pixel
 * order. */
static inline __attribute__((always_inline)) void row_body(const dw_row *r, int lanes, int skip,
                                                           int isa, int parts, en_vec *sum_io) {
  const en_conv_desc *d = r->d;
  en_vec bias = r->bias ? en_vload(r->bias, lanes) : (en_vec){0};
  en_vec sum = *sum_io, pend[4] = {{0}};
  int at[4], count = 0, ox = 0;
  if (parts & ROW_LEFT) {
    for (; ox < r->lo; ox++) { /* left border: at most k / 2 pixels */
      pend[count] = border_pixel(r, ox, bias, lanes);
      at[count++] = ox;
      if (count == 4) flush(r, pend, at, count, &sum, lanes, skip, isa), count = 0;
    }
    if (count) flush(r, pend, at, count, &sum, lanes, skip, isa), count = 0;
  }
  ox = r->lo;
  if (!(parts & ROW_GROUPS)) ox = r->hi; /* every interior pixel done by groups_outer */
  /* interior pixels in their own array, indexed by constants only (pend is indexed by the
   * pending count, which keeps it in memory): AVX2 in-process A/B 0.96-0.98 */
  for (; (parts & ROW_GROUPS) && ox + 4 <= r->hi; ox += 4) {
    en_vec q[4];
    interior4_any(r, ox, bias, q, lanes);
    en_vact_n(q, 4, d->act, isa);
    float *o = r->out + (int64_t)ox * d->cin;
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
      en_vstore_from_isa(o + (int64_t)j * d->cin, q[j], skip, lanes, isa);
      sum += q[j];
    }
  }
  if (!(parts & ROW_RIGHT)) {
    *sum_io = sum;
    return;
  }
  if (ox < r->hi && r->hi == d->ow && r->hi - 4 >= r->lo) {
    /* the last 1-3 pixels, all interior (rows padded on both sides, as the fused path's ring
     * rows are): the row's last four interior pixels again, those already done stored a second
     * time with the same values and not summed again (the border path, one multiply-add chain
     * per pixel, took 15 % of the depthwise time of a 19-pixel k = 5 row with 3 left over) */
    int done = 4 - (r->hi - ox);
    en_vec q[4];
    interior4_any(r, r->hi - 4, bias, q, lanes);
    en_vact_n(q, 4, d->act, isa);
    float *o = r->out + (int64_t)(r->hi - 4) * d->cin;
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
      en_vstore_from_isa(o + (int64_t)j * d->cin, q[j], skip, lanes, isa);
      if (j >= done) sum += q[j];
    }
    ox = r->hi;
  }
  for (; ox < d->ow; ox++) { /* interior leftovers and the right border */
    pend[count] = border_pixel(r, ox, bias, lanes);
    at[count++] = ox;
    if (count == 4) flush(r, pend, at, count, &sum, lanes, skip, isa), count = 0;
  }
  if (count) flush(r, pend, at, count, &sum, lanes, skip, isa);
  *sum_io = sum;
}

/* G interior output pixels ox .. ox + G - 1 of whole block c0: accumulated, activated and
 * stored, and added to *sum in pixel order. Each input pixel is loaded once and multiplied
 * into every output that reads it, tap by tap in the order border_pixel takes them. kk, ss:
 * window and stride (constants); [ky0, ky1): the row's valid taps (constants when full). */
static inline __attribute__((always_inline)) void pixels_at(
    const en_conv_desc *d, const float *const *rows, const float *w, en_vec b, float *o,
    en_vec *sum_io, int64_t in_at, int c0, int ky0, int ky1, int isa, int G, int kk, int ss,
    int64_t ostride, int from, en_act act) {
  int C = d->cin;
  en_vec acc[8];
#pragma GCC unroll 8
  for (int j = 0; j < G; j++) acc[j] = b;
#pragma GCC unroll 5
  for (int ky = ky0; ky < ky1; ky++) {
    const float *px = rows[ky] + in_at + c0, *wk = w + ky * kk * C + c0;
    en_vec wv[5];
#pragma GCC unroll 5
    for (int kx = 0; kx < kk; kx++) wv[kx] = *(const en_vec *)(wk + kx * C);
#pragma GCC unroll 19
    for (int m = 0; m < (G - 1) * ss + kk; m++) {
      en_vec x = *(const en_vec *)(px + (int64_t)m * C);
#pragma GCC unroll 5
      for (int kx = 0; kx < kk; kx++) {
        int j = (m - kx) / ss;
        if (m >= kx && (m - kx) % ss == 0 && j < G) acc[j] += x * wv[kx];
      }
    }
  }
  /* swish two registers at a time (en_act_avx2), AVX-512 four */
  int step = isa == EN_ISA_AVX512 ? 4 : 2;
#pragma GCC unroll 8
  for (int j = 0; j < G; j += step) en_vact_n(acc + j, G - j < step ? G - j : step, act, isa);
  en_vec sum = *sum_io;
#pragma GCC unroll 8
  for (int j = 0; j < G; j++) {
    *(en_vec *)(o + (int64_t)j * ostride) = acc[j];
    if (j >= from) sum += acc[j];
  }
  *sum_io = sum;
}

/* The lines that the next output row writes at pixels [ox, ox + G), blocks [i0, i1),
 * prefetched for writing. Where the output outgrows the caches (EN_DW_STORE_AHEAD bytes: B3's
 * stages 1-2, B7's stages 1-5; no B0 layer at batch 1) its lines otherwise come in from
 * memory one miss at a time as each group stores them, all blocks of a pixel (C floats) at
 * once. One thread, Zen 3, fused expand + depthwise, separate builds alternated 12 times: 75 x
 * 75 x 32 -> 192 k3 0.82 of the time (0.59-1.05), 150 x 150 x 48 -> 288 k3 0.89 (0.73-1.17),
 * while a 56 x 56 block below the threshold (the same code) drifted 1.04 (0.74-1.71). In the
 * network (per-op trace, one thread, processes alternated): B3's two 75 x 75 x 192 blocks
 * 0.85-0.88 of their time (untouched 1x1 convs 0.99), B7's fused blocks 0.94 and its stem +
 * depthwise 0.85 (1x1 convs 0.99); two threads within drift. 2 MB rather than the first 4:
 * B3's stem + depthwise (150 x 150 x 40 out) 0.85 and its stage-1 depthwise (150 x 150 x 24,
 * with load_ahead) 0.73, against 0.88-0.95 for the untouched 1x1 convs (6 process pairs, one
 * thread). Addresses past the output are only prefetched, never formed as pointers. */
#define EN_DW_STORE_AHEAD ((int64_t)2 << 20)
/* Whole blocks go group-outer (groups_outer) in runs of at most this many, their sums on the
 * stack. */
#define EN_DW_RUN 32

/* Whether the output goes to memory with non-temporal stores: where one image's is over
 * EN_MEMORY_L2S L2 caches (en_dw_stream_least bytes where set), too big for the projection
 * GEMM that reads it next to find much of it in the caches. A plain store first reads its line
 * from memory (the write-allocate), so an output written to memory costs twice its bytes (26 MB:
 * 2.9-3.4 ms with plain stores, 1.5-1.8 non-temporal, one thread, Zen 3). The stores go through
 * a buffer (group_run) so that each line is written whole and at once: stored straight from the
 * group's registers, block by block, eight half-written lines at a time, the kernel ran slower
 * than with plain stores (150 x 150 x 48 -> 288 k3 fused: 1.2x the depthwise time).
 * Measured in one process, runs with and without alternated (en_dw_stream_least switched
 * between them; separate builds drifted 5-15 % per layer on this shared Zen 3), median of the
 * paired ratios, Zen 3 (512 KiB L2): 4 MiB: B7 600 two threads 0.92 of the time (expand +
 * depthwise 0.84), one 0.96 (0.91); B3 300 two threads 0.97 (expand + depthwise 0.91). 8 MiB:
 * B7 0.95 / 0.99; 2 MiB: B3 1.03 / 1.00 (its 150 x 150 stage-1 outputs, read back from memory,
 * lost); 3 MiB against 4: B3 0.98 / 1.01. On Zen 4 (1 MiB L2) 4 MiB was too few: B3's 75 x 75
 * x 192 outputs (4.3 MB), read back from memory, held their projections to 67 GFLOP/s (106 from
 * the caches). 8 MiB against 4 there, process pairs alternated: B3 one thread 0.972-0.987 of
 * the time, two 0.966-1.024 (median 0.99); B7 0.98-1.005 and 1.00. Eight L2s keep Zen 3's 4
 * MiB. B0 has no output over 4 MiB an image. The SIMD ISAs only (the aligned vector is the
 * store's unit): whole 8- or 16-float blocks (C a multiple of LANES), aligned output. */
static inline __attribute__((always_inline)) int output_in_memory(const en_conv_desc *d) {
  int64_t bytes = (int64_t)d->oh * d->ow * d->cin * (int64_t)sizeof(float); /* one image */
  int64_t least = en_dw_stream_least ? en_dw_stream_least : EN_MEMORY_L2S * en_l2_bytes();
  return bytes > least;
}

static inline __attribute__((always_inline)) int stream_output(const en_conv_desc *d,
                                                               const float *out, int isa) {
  return (isa == EN_ISA_AVX2 || isa == EN_ISA_AVX512) && d->cin % LANES == 0 &&
         (uintptr_t)out % (LANES * sizeof(float)) == 0 && output_in_memory(d);
}

static inline __attribute__((always_inline)) void store_ahead(const en_conv_desc *d,
                                                              const float *out, int64_t out_at,
                                                              int i0, int i1, int G) {
  int64_t C = d->cin;
  uintptr_t first = (uintptr_t)(out + out_at + (int64_t)i0 * LANES) + (uintptr_t)(d->ow * C * 4);
  for (int j = 0; j < G; j++) {
    uintptr_t a = first + (uintptr_t)(j * C * 4), end = a + (uintptr_t)(i1 - i0) * LANES * 4;
    for (a &= ~(uintptr_t)63; a < end; a += 64) __builtin_prefetch((const void *)a, 1, 3);
  }
}

/* The lines of the rows that are new to this output row (the last ss of its taps: the next
 * output row's taps overlap the rest) at the next group's pixels, blocks [i0, i1), prefetched.
 * Where the input outgrows the caches (EN_DW_STORE_AHEAD bytes: the stage-1 blocks of B3, 150 x
 * 150 x 24, and B7, 300 x 300 x 32) those rows come from memory: B7's took 7.5-9.4 ms on one
 * thread where a plain 3-row streaming sum over the same tensors takes 2. One thread, Zen 3,
 * separate builds alternated: 300 x 300 x 32 k3 0.66-0.78 of the time (two threads 0.77), 150 x
 * 150 x 96 0.82; in the network (per-op trace, 6 process pairs) B7's three stage-1 convs
 * 0.60-0.71 (about 8 of 1560 ms). One group ahead beat two (0.71) and four (0.77). Not in the
 * fused path (from_image 0), whose rows come from the ring, in cache. Addresses are only
 * prefetched, never formed as pointers. */
static inline __attribute__((always_inline)) void load_ahead(const en_conv_desc *d,
                                                             const float *const *rows, int ky0,
                                                             int ky1, int ox, int i0, int i1,
                                                             int G, int ss) {
  int64_t C = d->cin;
  int p0 = (ox + G) * ss - d->pad_left, p1 = p0 + G * ss < d->w ? p0 + G * ss : d->w;
  for (int ky = ky1 - ss > ky0 ? ky1 - ss : ky0; ky < ky1; ky++) {
    uintptr_t base = (uintptr_t)rows[ky] + (uintptr_t)(i0 * LANES * 4);
    for (int p = p0; p < p1; p++) {
      uintptr_t a = base + (uintptr_t)(p * C * 4), end = a + (uintptr_t)(i1 - i0) * LANES * 4;
      for (a &= ~(uintptr_t)63; a < end; a += 64) __builtin_prefetch((const void *)a, 0, 3);
    }
  }
}

/* Interior pixels from ox in groups of G while whole groups remain, every block of [i0, i1)
 * for one group before the next group; returns the first pixel left. */
static inline __attribute__((always_inline)) int group_run(const dw_row *r,
                                                           const float *const *rows,
                                                           const float *w, const float *bias,
                                                           float *out, int i0, int i1,
                                                           en_vec *sums, int ox, int G, int ky0,
                                                           int ky1, int isa, int kk, int ss,
                                                           int from, en_act act) {
  const en_conv_desc *d = r->d;
  int C = d->cin;
  int stream = stream_output(d, out, isa);
  int ahead = !stream && (int64_t)d->oh * d->ow * C * (int64_t)sizeof(float) > EN_DW_STORE_AHEAD;
  en_vec buf[8 * EN_DW_RUN]; /* stream: the group's outputs, pixel by pixel, blocks [i0, i1) */
  int load = r->from_image &&
             (int64_t)d->h * d->w * C * (int64_t)sizeof(float) > EN_DW_STORE_AHEAD;
  for (; ox + G <= r->hi; ox += G) {
    int64_t in_at = (int64_t)(ox * ss - d->pad_left) * C, out_at = (int64_t)ox * C;
    for (int i = i0; i < i1; i++) {
      int c0 = i * LANES;
      en_vec b = bias ? *(const en_vec *)(bias + c0) : (en_vec){0};
      if (stream)
        pixels_at(d, rows, w, b, (float *)(buf + (i - i0)), &sums[i - i0], in_at, c0, ky0, ky1,
                  isa, G, kk, ss, (int64_t)(i1 - i0) * LANES, from, act);
      else
        pixels_at(d, rows, w, b, out + out_at + c0, &sums[i - i0], in_at, c0, ky0, ky1, isa, G,
                  kk, ss, C, from, act);
    }
    if (stream) /* each pixel's lines in order, every one written whole */
      for (int j = 0; j < G; j++)
        for (int v = 0; v < i1 - i0; v++)
          en_vstream(out + out_at + (int64_t)j * C + (int64_t)(i0 + v) * LANES,
                     buf[j * (i1 - i0) + v], isa);
    if (ahead) store_ahead(d, out, out_at, i0, i1, G);
    if (load) load_ahead(d, rows, ky0, ky1, ox, i0, i1, G, ss);
  }
  return ox;
}

/* The interior pixels of whole blocks [i0, i1) (no ragged one), from lo in groups of 8, then
 * of 4 while any remain, then the last 1-3 (hi - lo >= 4: one_row), group by group with every
 * block of a group before the next group: each load then follows the last along the input
 * pixel's channels, where block by block (each block's whole row before the next block) it
 * jumped a whole pixel (C floats) each time and the next block came back for the other half of
 * the same lines. full: the row has all its taps (ky0 = 0, ky1 = kk: the tap loop unrolled).
 * rows: unshifted row pointers (channel 0); sums[i - i0] gets block i's outputs in pixel order.
 *
 * Against block by block in groups of four (outputs and sums the same bits), separate builds
 * alternated, one thread: B0-B7 shapes on their own (112 x 112 x 32 k3, 56 x 56 x 144 k3, 112
 * x 112 x 96 k3 s2, 75 x 75 x 192 k5 s2) AVX2 0.78-0.93 of the time; fused with the expand
 * (B0's blocks 1-4) AVX2 0.93-0.95, AVX-512 0.92-0.96; whole B0, AVX2, batch 1 0.99, batch 8
 * 0.97, B3 0.98. Four pixels at a time pixel-outer gained about half as much as eight (beside
 * a run-time switch): a group's multiply-add chains (k x k long) and its swish (~65 cycles)
 * leave too little independent work in flight with four accumulators. */
static inline __attribute__((always_inline)) void groups_outer(const dw_row *r,
                                                               const float *const *rows,
                                                               const float *w, const float *bias,
                                                               float *out, int i0, int i1,
                                                               en_vec *sums, int isa, int kk,
                                                               int ss, int full, en_act act) {
  int ky0 = full ? 0 : r->ky0, ky1 = full ? kk : r->ky1;
  int ox = group_run(r, rows, w, bias, out, i0, i1, sums, r->lo, 8, ky0, ky1, isa, kk, ss, 0, act);
  ox = group_run(r, rows, w, bias, out, i0, i1, sums, ox, 4, ky0, ky1, isa, kk, ss, 0, act);
  /* the last 1-3 interior pixels: the last four again, group-outer like the rest, the first 4 -
   * (hi - ox) stored again with the same values and not summed again (row_body did them block
   * by block, four swishes at once; separate builds alternated, one thread, Zen 3: ring-style
   * rows 38 x 288 k3 0.65-0.78 of the time, 19 x 576 0.81-0.95, 38 x 96 0.83-0.86; in B3,
   * six process pairs, the fused blocks' time over the 1x1 convs' 0.96, B0 (no leftovers) 1.00) */
  if (ox < r->hi)
    group_run(r, rows, w, bias, out, i0, i1, sums, r->hi - 4, 4, ky0, ky1, isa, kk, ss,
              4 - (r->hi - ox), act);
}

static inline __attribute__((always_inline)) void groups_outer_any(const dw_row *r,
                                                                   const float *const *rows,
                                                                   const float *w,
                                                                   const float *bias, float *out,
                                                                   int i0, int i1, en_vec *sums,
                                                                   int isa) {
  /* the swish as a constant for rows with all their taps (the rule): with the descriptor's
   * activation the groups kept a call for the other activations beside the swish, and their
   * registers around it. Ring-style rows, min of 7, builds alternated three times, one thread,
   * Zen 3: 75 x 192 k3 0.68-1.00 of the time, 56 x 144 k3 0.67-0.94, 19 x 288 k3 s2 0.90-0.92,
   * 112 x 96 k3 s2 0.92-0.95, 28 x 240 k5 0.97-0.99, 38 x 192 k5 s2 0.97-0.99; in the network,
   * six process pairs, the fused blocks' time over the 1x1 convs' B0 0.95, B3 0.97 */
  int k = r->d->kernel, s = r->d->stride, full = r->ky0 == 0 && r->ky1 == k;
  en_act act = r->d->act;
#define EN_GROUPS_CASE(K, S)                                                               \
  if (k == K && s == S) {                                                                  \
    if (full && act == EN_ACT_SWISH)                                                       \
      groups_outer(r, rows, w, bias, out, i0, i1, sums, isa, K, S, 1, EN_ACT_SWISH);       \
    else if (full) groups_outer(r, rows, w, bias, out, i0, i1, sums, isa, K, S, 1, act);   \
    else groups_outer(r, rows, w, bias, out, i0, i1, sums, isa, K, S, 0, act);             \
    return;                                                                                \
  }
  EN_GROUPS_CASE(3, 1)
  EN_GROUPS_CASE(3, 2)
  EN_GROUPS_CASE(5, 1)
  EN_GROUPS_CASE(5, 2)
#undef EN_GROUPS_CASE
}

/* Interior output columns [lo, hi): windows entirely inside the row. */
static inline void interior_range(const en_conv_desc *d, int *lo, int *hi) {
  int s = d->stride, k = d->kernel;
  *lo = (d->pad_left + s - 1) / s;
  int last = d->w - k + d->pad_left; /* ox * s <= last */
  *hi = last < 0 ? 0 : last / s + 1;
  if (*hi > d->ow) *hi = d->ow;
  if (*lo > *hi) *lo = *hi;
}

/* Taps of output row oy that fall inside the image: [ky0, ky1); returns the input row of ky 0. */
static inline int row_taps(const en_conv_desc *d, int oy, int *ky0, int *ky1) {
  int iy0 = oy * d->stride - d->pad_top;
  *ky0 = iy0 < 0 ? -iy0 : 0;
  *ky1 = d->h - iy0 < d->kernel ? d->h - iy0 : d->kernel;
  return iy0;
}

/* Points r (its row pointers in `shifted`) at block i's first channel; returns its lanes. */
static inline __attribute__((always_inline)) int point_at_block(dw_row *r, const float **shifted,
                                                                const float *const *rows,
                                                                const float *w,
                                                                const float *bias, float *out,
                                                                int i, int *c0) {
  int lanes;
  en_vspan(r->d->cin, i, c0, &lanes, &r->skip);
  for (int ky = r->ky0; ky < r->ky1; ky++) shifted[ky] = rows[ky] + *c0;
  r->w = w + *c0;
  r->bias = bias ? bias + *c0 : NULL;
  r->out = out + *c0;
  return lanes;
}

static inline void add_to_pool(float *pool, int c0, en_vec sum, int skip, int lanes) {
  float t[LANES];
  memcpy(t, &sum, sizeof t);
  for (int l = skip; l < lanes; l++) pool[c0 + l] += t[l];
}

/* Whole blocks [i0, i1) of the row, group-outer: per run of blocks, each block's left border,
 * then the interior groups, then each block's right border, so that every block's sum still
 * takes its pixels in order (the same bits as block by block); rows without border pixels
 * (the fused path's padded ring rows) go straight to the groups. */
static inline __attribute__((always_inline)) void whole_blocks(dw_row *r, const float **shifted,
                                                               float *out,
                                                               const float *const *rows,
                                                               const float *w, const float *bias,
                                                               float *pool, int i0, int i1,
                                                               int isa) {
  int c0, edges = r->lo > 0 || r->hi < r->d->ow; /* border pixels (none in ring rows) */
  for (int run = i0; run < i1; run += EN_DW_RUN) {
    int end = run + EN_DW_RUN < i1 ? run + EN_DW_RUN : i1;
    en_vec sums[EN_DW_RUN];
    for (int i = run; i < end; i++) {
      sums[i - run] = (en_vec){0};
      if (!edges) continue;
      point_at_block(r, shifted, rows, w, bias, out, i, &c0);
      row_body(r, LANES, 0, isa, ROW_LEFT, &sums[i - run]);
    }
    groups_outer_any(r, rows, w, bias, out, run, end, sums, isa);
    for (int i = run; i < end; i++) {
      c0 = i * LANES;
      if (edges) {
        point_at_block(r, shifted, rows, w, bias, out, i, &c0);
        row_body(r, LANES, 0, isa, ROW_RIGHT, &sums[i - run]);
      }
      if (pool) add_to_pool(pool, c0, sums[i - run], 0, LANES);
    }
  }
}

/* One output row, channel blocks [i0, i1) (see en_fast_depthwise_row); from_image: see
 * dw_row. */
static inline __attribute__((always_inline)) void one_row(float *out, const float *const *rows,
                                                          const float *w, const float *bias,
                                                          const en_conv_desc *d, int oy,
                                                          float *pool, int i0, int i1,
                                                          int from_image, int isa) {
  const float *shifted[EN_MAX_KERNEL];
  dw_row r = {shifted, NULL, NULL, NULL, d, 0, 0, 0, 0, 0, from_image};
  interior_range(d, &r.lo, &r.hi);
  row_taps(d, oy, &r.ky0, &r.ky1);
  int k = d->kernel, s = d->stride, c0;
  /* whole blocks (all but a ragged last one, when C is not a multiple of LANES) group-outer
   * where the row has a group of interior pixels */
  int whole = d->cin % LANES ? d->cin / LANES : i1;
  if (whole > i1) whole = i1;
  if (whole <= i0 || r.hi - r.lo < 4 || (k != 3 && k != 5) || (s != 1 && s != 2)) whole = i0;
  if (whole > i0) whole_blocks(&r, shifted, out, rows, w, bias, pool, i0, whole, isa);
  if (whole > i0 && stream_output(d, out, isa)) en_vstream_fence(); /* before others read */
  for (int i = whole; i < i1; i++) {
    int lanes = point_at_block(&r, shifted, rows, w, bias, out, i, &c0);
    /* a whole block (all but a ragged last one): no partial stores, so the pixels stay in
     * registers (the variable skip's byte-wise store path kept them in memory: standalone
     * depthwise, one thread, AVX2 112 x 112 x 32 k3 1040 -> 850 us, 56 x 56 x 144 k3
     * 1240 -> 950 us; AVX-512 570 -> 470, 720 -> 620) */
    en_vec sum = {0};
    if (lanes == LANES && !r.skip) row_body(&r, LANES, 0, isa, ROW_ALL, &sum);
    else if (lanes == LANES) row_body(&r, LANES, r.skip, isa, ROW_ALL, &sum);
    else row_body(&r, lanes, r.skip, isa, ROW_ALL, &sum);
    if (pool) add_to_pool(pool, c0, sum, r.skip, lanes);
  }
}

#endif
