/* Our own GEMM for the 1x1 convolutions, the stem (im2col) and the classifier: out (rows, cout) =
 * act(in (rows, cin) . W^T + bias) [+ residual] with W packed once at load time into panels of 16
 * output channels (kernels.h), so no packing happens per call and the bias, activation and residual
 * add are applied while the tile is in registers, or (AVX2's swish) in L1 as a pass over each
 * panel just written (OpenBLAS needs a second pass over the whole output for them and reaches
 * only 40-80 GFLOP/s on EfficientNet's skinny shapes: few input or output channels, many
 * pixels).
 *
 * Micro-kernel: MR rows x NV panels of accumulators; per input channel k it broadcasts MR input
 * values and loads NV weight vectors. Blocking: rows in blocks whose slice of the input (rows by
 * KC) stays in L2 while every panel group runs over it (row_block_count), input channels in equal
 * blocks of at most KC. The tile shape is chosen per instruction set at run time: AVX-512 6 x 4
 * panels, or 8 x 3, 12 x 2, 24 x 1 where fewer panels remain (about 24 accumulators of 32
 * registers, so narrow outputs such as 24 or 40 channels still keep both FMA units busy);
 * AVX2+FMA 6 x 1 (a 16-float panel is two registers: 12 of 16, written with intrinsics;
 * remainders in tiles of 2-5 rows; a last panel of at most 8 channels as 12 x one register);
 * portable 2 x 1 (4-float vectors). Tasks are row blocks and, when rows are few (late stages,
 * batch 1), equal runs of panels as well, handed to threads in order (static); every output
 * element is computed by one thread in a fixed order, so results do not depend on the thread
 * count or on which thread ran which task. */
#include <omp.h>
#include <string.h>
#include <unistd.h>

#include "kernels/vec16.h"

/* ISO C mode (-std=c11) turns off multiply-add contraction: the kernels need FMA */
#pragma GCC optimize("fp-contract=fast")

#define P EN_GEMM_PANEL
_Static_assert(EN_GEMM_PANEL == EN_LANES, "a packed panel is one vector");

#define MC 96
#define KC 384
#define MR_MAX 24
#define NV_MAX 4

/* Input-channel blocks of at most KC, of equal size (K = 384 was 256 + 128, its output tile
 * written, read back and written again; in-process A/B, one thread: 361 x 384 -> 2304
 * 0.83 (AVX-512) and 0.90 (AVX2) of the time, 100 x 2304 -> 384 0.96-0.97; blocks of up
 * to 512 no better) */
static inline int k_block_count(int cin) { return cin > 0 ? (cin + KC - 1) / KC : 0; }

typedef struct gemm_job {
  float *out;
  const float *in, *packed, *bias, *residual;
  int64_t rows;
  int cin, cout, panels;
  en_act act;
  int prefetch; /* weights too big to stay in L2 between calls: prefetch the next panel's */
  int stream;   /* the input comes from memory: the first panel prefetches its rows (AVX2) */
  int far;      /* the input lives in memory: the next row block's is prefetched (AVX2) */
  int store;    /* the output goes to memory: tiles prefetch their output rows ahead (AVX2) */
  const en_planes *planes; /* the output in planes (kernels.h), out unused; or NULL */
} gemm_job;

_Static_assert(EN_PLANE_LANES == P, "a plane holds one panel");

/* Where output row `row`'s panel p is: in the output rows, or in the planes; the next panels
 * follow at a distance of step(g) floats. The tiles take it once per row (an address per store,
 * a multiply each, made the products into planes 1.04-1.06 times as slow alone). */
static inline __attribute__((always_inline)) float *out_at(const gemm_job *g, int64_t row,
                                                           int p) {
  const en_planes *q = g->planes;
  return q ? q->data + p * q->block + q->at[row] : g->out + row * g->cout + p * P;
}

static inline __attribute__((always_inline)) int64_t step(const gemm_job *g) {
  return g->planes ? g->planes->block : P;
}

/* Lines of the next panel to prefetch per tile: `lines` over the tiles of `rows` rows, mr rows
 * a tile, one spare so that the last tiles never fall behind. */
static inline int prefetch_share(int64_t lines, int64_t rows, int mr) {
  return rows > 0 ? (int)((lines * mr + rows - 1) / rows) + 1 : 0;
}

static inline __attribute__((always_inline)) en_vec epilogue(const gemm_job *g, en_vec v,
                                                             int64_t row, int col, int lanes,
                                                             int isa) {
  if (g->bias) v += en_vload(g->bias + col, lanes);
  v = en_vact(v, g->act, isa);
  if (g->residual) v += en_vload(g->residual + row * g->cout + col, lanes);
  return v;
}

/* Lanes [0, n) of the vector at p, the others zero: AVX-512's masked load, where en_vload
 * copies a partial vector through memory (stores: en_vstore_from_isa, vec16.h). */
#if EN_X86_TARGETS
static inline EN_TARGET_AVX512 en_vec vload_masked(const float *p, int n) {
  return (en_vec)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
}
#endif

static inline __attribute__((always_inline)) en_vec vload_n(const float *p, int n, int isa) {
#if EN_X86_TARGETS
  if (isa == EN_ISA_AVX512 && n < P) return vload_masked(p, n);
#endif
  return n < P ? en_vload(p, n) : *(const en_vec *)p;
}

/* The last step of a tile, act a constant: straight-line code, the accumulators staying in
 * registers (the generic epilogue's per-vector lane counts and activation switch cost as much
 * as the multiply-adds at K = 16-40). The last panel has `tail` columns (P: full; fewer, a
 * ragged cout, only where the ISA has masked moves). */
static inline __attribute__((always_inline)) void store_full(const gemm_job *g,
                                                             en_vec acc[MR_MAX][NV_MAX],
                                                             int64_t i, int mr, int p, int nv,
                                                             int tail, en_act act, int isa) {
  en_vec bias[NV_MAX];
#pragma GCC unroll 4
  for (int v = 0; v < nv; v++)
    bias[v] = g->bias ? vload_n(g->bias + (p + v) * P, v == nv - 1 ? tail : P, isa) : (en_vec){0};
  const float *res = g->residual ? g->residual + i * g->cout + p * P : NULL;
  float *out[MR_MAX];
  int64_t next = step(g);
  for (int r = 0; r < mr; r++) out[r] = out_at(g, i + r, p);
  en_vec o[MR_MAX * NV_MAX];
#pragma GCC unroll 24
  for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) o[r * nv + v] = acc[r][v] + bias[v];
#pragma GCC unroll 6
  for (int t = 0; t < mr * nv; t += 4)
    en_vact_n(o + t, mr * nv - t < 4 ? mr * nv - t : 4, act, isa);
#pragma GCC unroll 24
  for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) {
      int n = v == nv - 1 ? tail : P;
      if (res) o[r * nv + v] += vload_n(res + r * g->cout + v * P, n, isa);
      en_vstore_from_isa(out[r] + v * next, o[r * nv + v], 0, n, isa);
    }
}

/* One MR x NV tile: rows [i, i + mr), panels [p, p + nv), input channels [k0, k0 + kc).
 * mr and nv are constants after inlining, so the accumulators live in registers. */
static inline __attribute__((always_inline)) void tile(const gemm_job *g, int64_t i, int mr,
                                                       int p, int nv, int k0, int kc, int isa) {
  en_vec acc[MR_MAX][NV_MAX];
  int K = g->cin, first = k0 == 0, last = k0 + kc == K;
  float *out[MR_MAX];
  int64_t next = step(g);
  for (int r = 0; r < mr; r++) out[r] = out_at(g, i + r, p);
  int lanes[NV_MAX];
  for (int v = 0; v < nv; v++) {
    int left = g->cout - (p + v) * P;
    lanes[v] = left < P ? left : P;
  }
  for (int r = 0; r < mr; r++)
    for (int v = 0; v < nv; v++)
      acc[r][v] = first ? (en_vec){0} : vload_n(out[r] + v * next, lanes[v], isa);
  const float *a = g->in + i * K + k0;
  const float *b = g->packed + ((int64_t)p * K + k0) * P;
  int64_t panel = (int64_t)K * P;
  for (int k = 0; k < kc; k++, a++, b += P) {
    en_vec w[NV_MAX];
    for (int v = 0; v < nv; v++) w[v] = *(const en_vec *)(b + v * panel);
    for (int r = 0; r < mr; r++) {
      float s = a[(int64_t)r * K];
      en_vec x = {s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s}; /* a broadcast, not an add */
      for (int v = 0; v < nv; v++) acc[r][v] += x * w[v];
    }
  }
  if (last && (g->act == EN_ACT_SWISH || g->act == EN_ACT_NONE)) {
    if ((p + nv) * P <= g->cout) {
      if (g->act == EN_ACT_SWISH) store_full(g, acc, i, mr, p, nv, P, EN_ACT_SWISH, isa);
      else store_full(g, acc, i, mr, p, nv, P, EN_ACT_NONE, isa);
      return;
    }
    if (isa == EN_ISA_AVX512) { /* a ragged last panel, by masked moves */
      int tail = lanes[nv - 1];
      if (g->act == EN_ACT_SWISH) store_full(g, acc, i, mr, p, nv, tail, EN_ACT_SWISH, isa);
      else store_full(g, acc, i, mr, p, nv, tail, EN_ACT_NONE, isa);
      return;
    }
  }
  for (int r = 0; r < mr; r++)
    for (int v = 0; v < nv; v++) {
      int col = (p + v) * P;
      en_vec o = last ? epilogue(g, acc[r][v], i + r, col, lanes[v], isa) : acc[r][v];
      en_vstore_from_isa(out[r] + v * next, o, 0, lanes[v], isa);
    }
}

/* Rows [r0, r1) of panels [p, p + nv): tiles of the largest listed height that fits. */
#define TRY(M, NVV)                              \
  if (r1 - i >= (M)) {                           \
    tile(g, i, (M), p, (NVV), k0, kc, isa);      \
    i += (M);                                    \
    continue;                                    \
  }

/* AVX-512 (the generic 16-float vectors are its registers; the AVX2 and portable kernels
 * below have their own tiles): 32 vector registers, about 24 accumulators whatever the panel
 * count. */
static inline __attribute__((always_inline)) void panel_rows(const gemm_job *g, int64_t r0,
                                                             int64_t r1, int p, int nv, int k0,
                                                             int kc, int isa) {
  for (int64_t i = r0; i < r1;) {
    if (nv == 4) { TRY(6, 4) TRY(3, 4) TRY(2, 4) TRY(1, 4) }
    else if (nv == 3) { TRY(8, 3) TRY(4, 3) TRY(2, 3) TRY(1, 3) }
    else if (nv == 2) { TRY(12, 2) TRY(6, 2) TRY(3, 2) TRY(1, 2) }
    else { TRY(24, 1) TRY(12, 1) TRY(6, 1) TRY(3, 1) TRY(1, 1) }
  }
}
#undef TRY

/* Rows [r0, r1) x panels [p0, p1) of the output, all input channels. */
static inline __attribute__((always_inline)) void block(const gemm_job *g, int64_t r0,
                                                        int64_t r1, int p0, int p1, int isa) {
  const int NV = 4;
  int nk = k_block_count(g->cin);
  for (int kb = 0; kb < nk; kb++) {
    int k0 = (int)((int64_t)g->cin * kb / nk), kc = (int)((int64_t)g->cin * (kb + 1) / nk) - k0;
    for (int p = p0; p < p1; p += NV) {
      int nv = p1 - p < NV ? p1 - p : NV;
      panel_rows(g, r0, r1, p, nv, k0, kc, isa);
    }
  }
}

#if EN_X86_TARGETS
/* flatten: the ISA's swish is too big for the inliner's taste and cannot be always_inline.
 * Output rows and planes each have a function of their own, in which out_at's test is folded
 * (with the test left in the tiles, B0 224 took 1.05 times as long on one thread, every product
 * slower, on AVX2's tiles, whose functions are split alike below). */
EN_TARGET_AVX512 __attribute__((flatten, noinline)) static void block_avx512_rows(
    const gemm_job *g, int64_t r0, int64_t r1, int p0, int p1) {
  gemm_job h = *g;
  h.planes = NULL;
  block(&h, r0, r1, p0, p1, EN_ISA_AVX512);
}

EN_TARGET_AVX512 __attribute__((flatten, noinline)) static void block_avx512_planes(
    const gemm_job *g, int64_t r0, int64_t r1, int p0, int p1) {
  gemm_job h = *g;
  if (!h.planes) __builtin_unreachable();
  block(&h, r0, r1, p0, p1, EN_ISA_AVX512);
}

static void block_avx512(const gemm_job *g, int64_t r0, int64_t r1, int p0, int p1) {
  if (g->planes) block_avx512_planes(g, r0, r1, p0, p1);
  else block_avx512_rows(g, r0, r1, p0, p1);
}

/* AVX2 + FMA: written with intrinsics, a panel row being two 8-float registers. GCC keeps the
 * generic 16-float vectors of tile() in registers only where they are one (AVX-512): compiled
 * for AVX2 it moves every accumulator through the stack and general registers each step, and
 * that kernel ran at 4-5 GFLOP/s. Same blocking and per-element order as tile(). */
/* c[0..nh) += a[0..kc) . b (kc rows of a packed panel) for a tile of one row (a batch-1
 * classifier), input channels in order into one sum per register, as the many-row tiles add
 * them: an image's logits are then the same bits whatever the batch (image lanes, en_split_block
 * and the batch path agree; four partial sums per register, 0.87 of the time before the
 * prefetches below, gave batch 1 a different rounding). Each weight is read once, so the panel
 * streams from L3 or memory: the line ONE_ROW_AHEAD lines on is prefetched at every step,
 * running on into the next panel's lines (`next`, or NULL) for the last ones. The hardware
 * prefetcher alone, restarting at every panel (they lie K lines apart), got 9-12 GB/s of the
 * 15-20 one core reads (1 x 1280 -> 1000 from 16 copies of the weights in turn: 0.68-0.74 of
 * the time with 64 lines, 48 and 192 less good, the whole next panel at the start of the tile as
 * the many-row tiles do no better than nothing; from memory 0.84). So streamed, the one chain
 * per register costs nothing against four (1.00-1.03, weights from L3 or memory). */
#define ONE_ROW_AHEAD 64
static inline EN_TARGET_AVX2 __attribute__((always_inline)) void one_row_avx2(
    __m256 *c, const float *a, const float *b, int kc, int nh, const float *next) {
  int k = 0;
  for (; k + 4 <= kc; k += 4) {
    for (int u = 0; u < 4; u++) {
      int64_t ahead = k + u + ONE_ROW_AHEAD;
      const float *line = ahead < kc                 ? b + ahead * P
                          : next && ahead < 2 * kc ? next + (ahead - kc) * P
                                                   : NULL;
      if (line) __builtin_prefetch(line, 0, 3);
    }
    for (int u = 0; u < 4; u++) {
      __m256 x = _mm256_broadcast_ss(a + k + u);
      c[0] = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + (int64_t)(k + u) * P), c[0]);
      if (nh == 2) c[1] = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + (int64_t)(k + u) * P + 8), c[1]);
    }
  }
  for (; k < kc; k++) {
    __m256 x = _mm256_broadcast_ss(a + k);
    c[0] = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + (int64_t)k * P), c[0]);
    if (nh == 2) c[1] = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + (int64_t)k * P + 8), c[1]);
  }
}

/* c[nh r + h] += a[r K + k] . b[k P + 8 h] over the kc input channels, mr rows. Unrolled:
 * the loop's pointer updates and branch compete with the multiply-adds for ports; in-process
 * A/B 0.88-0.98 of the time on B0-B3 shapes (8 no better; AVX-512's tile() is 1.5-20 % slower
 * unrolled). */
static inline EN_TARGET_AVX2 __attribute__((always_inline)) void rows_k_avx2(
    __m256 *c, const float *a, const float *b, int kc, int K, int mr, int nh) {
  int64_t next = (int64_t)K * P; /* nh == 3: the third half is the next panel's first */
#pragma GCC unroll 4
  for (int k = 0; k < kc; k++, a++, b += P) {
    __m256 w0 = _mm256_loadu_ps(b), w1 = nh >= 2 ? _mm256_loadu_ps(b + 8) : w0;
    __m256 w2 = nh == 3 ? _mm256_loadu_ps(b + next) : w0;
    for (int r = 0; r < mr; r++) {
      __m256 x = _mm256_broadcast_ss(a + (int64_t)r * K);
      c[nh * r] = _mm256_fmadd_ps(x, w0, c[nh * r]);
      if (nh >= 2) c[nh * r + 1] = _mm256_fmadd_ps(x, w1, c[nh * r + 1]);
      if (nh == 3) c[3 * r + 2] = _mm256_fmadd_ps(x, w2, c[3 * r + 2]);
    }
  }
}

/* MR rows (a constant after inlining) of panel p, input channels [k0, k0 + kc); nh (a
 * constant) 8-float halves: 2 (the panel), 1 for a last panel of at most 8 channels, 3 for a
 * full panel and a last one of at most 8 channels after it (4 rows: twelve accumulators). */
static inline EN_TARGET_AVX2 __attribute__((always_inline)) void tile_avx2(const gemm_job *g,
                                                                           int64_t i, int mr,
                                                                           int p, int k0, int kc,
                                                                           int nh) {
  int K = g->cin, col = p * P, n[3];
  __m256i m[3];
  for (int h = 0; h < 3; h++) { /* lanes in each half */
    int left = g->cout - col - 8 * h;
    n[h] = left < 0 ? 0 : left < 8 ? left : 8;
    m[h] = en_lane_mask8(n[h]);
  }
  __m256 c[12], acc[12]; /* c never has its address taken: it stays in registers */
  float *o[12]; /* row r's panel p; a third half is the next panel's first */
  int64_t half[3] = {0, 8, step(g)};
  for (int r = 0; r < mr; r++) o[r] = out_at(g, i + r, p);
  for (int r = 0; r < mr; r++)
    for (int h = 0; h < nh; h++)
      c[nh * r + h] = k0 ? en_load8(o[r] + half[h], n[h], m[h]) : _mm256_setzero_ps();
  const float *a = g->in + i * K + k0, *b = g->packed + ((int64_t)p * K + k0) * P;
  if (mr == 1 && nh < 3) /* one row (a batch-1 classifier) */
    one_row_avx2(c, a, b, kc, nh, p + 1 < g->panels ? b + (int64_t)K * P : NULL);
  else
    rows_k_avx2(c, a, b, kc, K, mr, nh);
  for (int j = 0; j < nh * mr; j++) acc[j] = c[j];
  if (k0 + kc == K) { /* the last input channels: bias, activation, residual */
    if (g->bias)
      for (int h = 0; h < nh; h++) {
        __m256 bh = en_load8(g->bias + col + 8 * h, n[h], m[h]);
        for (int r = 0; r < mr; r++) acc[nh * r + h] = _mm256_add_ps(acc[nh * r + h], bh);
      }
    en_act_avx2(acc, nh * mr, g->act);
    if (g->residual) {
      const float *res = g->residual + i * g->cout + col;
      for (int r = 0; r < mr; r++)
        for (int h = 0; h < nh; h++)
          acc[nh * r + h] = _mm256_add_ps(acc[nh * r + h],
                                          en_load8(res + r * g->cout + 8 * h, n[h], m[h]));
    }
  }
  for (int r = 0; r < mr; r++)
    for (int h = 0; h < nh; h++) en_store8(o[r] + half[h], acc[nh * r + h], n[h], m[h]);
}

/* The next tile's height for `left` rows: 6 where that leaves none or at least 4; otherwise
 * the rest in two near-equal tiles (7 = 4 + 3, 8 = 4 + 4, 9 = 5 + 4). A tile of r rows has 2r
 * independent multiply-add chains, and with a 4-cycle FMA latency on two units fewer than 8
 * leave the units idle: a one-row tile runs at a sixth of the rate. The per-row expand GEMMs
 * of the fused blocks (56 or 28 pixels, split 6 x 9 + 2 or 6 x 4 + 4 before) spent 9 % of
 * their time in such tiles; B0 224 1T in-process A/B: 0.94-0.97 of the time. */
static inline int next_rows_avx2(int64_t left) {
  return left >= 10 || left == 6 ? 6 : left > 6 ? (int)(left + 1) / 2 : (int)left;
}

/* A tile of mr rows (12 and 8 only with one register a row), dispatched to constant heights
 * so that each tile's accumulators stay in registers. */
static inline EN_TARGET_AVX2 __attribute__((always_inline)) void tile_rows_avx2(
    const gemm_job *g, int64_t i, int mr, int p, int k0, int kc, int nh) {
  if (nh == 3) { /* at most 4 rows */
    switch (mr) {
    case 4: tile_avx2(g, i, 4, p, k0, kc, 3); break;
    case 3: tile_avx2(g, i, 3, p, k0, kc, 3); break;
    case 2: tile_avx2(g, i, 2, p, k0, kc, 3); break;
    default: tile_avx2(g, i, 1, p, k0, kc, 3); break;
    }
    return;
  }
  switch (mr) {
  case 12: tile_avx2(g, i, 12, p, k0, kc, 1); break;
  case 8: tile_avx2(g, i, 8, p, k0, kc, 1); break;
  case 6: tile_avx2(g, i, 6, p, k0, kc, nh); break;
  case 5: tile_avx2(g, i, 5, p, k0, kc, nh); break;
  case 4: tile_avx2(g, i, 4, p, k0, kc, nh); break;
  case 3: tile_avx2(g, i, 3, p, k0, kc, nh); break;
  case 2: tile_avx2(g, i, 2, p, k0, kc, nh); break;
  default: tile_avx2(g, i, 1, p, k0, kc, nh); break;
  }
}

/* The input rows a tile A_AHEAD rows on will read (input channels [k0, k0 + kc) of rows [i, i +
 * mr), those that exist), one prefetch per cache line. The first panel of a row block reads its
 * input from L3 or memory, six or twelve rows at a time, a few bytes of each per step: a
 * pattern the hardware prefetcher of a Zen 3 core follows badly (22500 x 144 -> 16, 13 MB of
 * input, was read at 3 GB/s of the 11 one core streams). Separate builds, one thread, Zen 3
 * (512 KiB L2): 22500 x 144 -> 16 0.35-0.47 of the time; B3 300's 75 x 75 projections (3-4 MB
 * of input, just written) in the network 0.74-0.83, four processes of each alternated. */
#define A_AHEAD 12
static inline __attribute__((always_inline)) void prefetch_input(const gemm_job *g, int64_t i,
                                                                 int mr, int k0, int kc) {
  int64_t end = i + mr < g->rows ? i + mr : g->rows;
  for (int64_t r = i; r < end; r++) {
    const float *row = g->in + r * g->cin + k0;
    uintptr_t line = (uintptr_t)row & ~(uintptr_t)63, last = (uintptr_t)(row + kc - 1);
    for (; line <= last; line += 64) __builtin_prefetch((const void *)line, 0, 3);
  }
}

/* The next row block's input (as many rows as this block's, the input channels of its first K
 * block), prefetched into L2 a share per tile over this block's last K block, where the input
 * lives in memory (gemm_job.far). prefetch_input alone, a few rows ahead in the first panel,
 * left the memory reads to that panel: about a third of the block's time where cout is 48 (B7
 * 600's 150 x 150 stage, 22500 x 288 -> 48 + residual: 26 MB of input, written by the depthwise
 * conv with non-temporal stores); spread over every panel they overlap all of it. One thread,
 * Zen 4, in the network: that shape 7.8-8.3 -> 6.0-6.4 ms, 22500 x 192 -> 48 5.5-5.6 -> 3.9-4.1;
 * B7 stage 2's projections 51-55 -> 44-47 ms, stage 3's 29-30 -> 27.5. Whole B7, process pairs
 * alternated: one thread 0.956-1.006 of the time (median 0.968), two 0.976-1.004 (0.989). */
typedef struct next_block {
  const float *row; /* the row being prefetched, NULL: none */
  int64_t rows;     /* rows to go, this one included */
  uintptr_t line;   /* its next line */
  int kc, share;    /* floats per row, lines per tile */
} next_block;

static inline __attribute__((always_inline)) void prefetch_next(const gemm_job *g,
                                                                next_block *nb) {
  for (int j = 0; j < nb->share && nb->row; j++) {
    __builtin_prefetch((const void *)nb->line, 0, 2);
    nb->line += 64;
    if (nb->line < (uintptr_t)(nb->row + nb->kc)) continue;
    nb->row = --nb->rows > 0 ? nb->row + g->cin : NULL; /* the next row's first line */
    nb->line = nb->row ? (uintptr_t)nb->row & ~(uintptr_t)63 : 0;
  }
}

/* The next_block cursor of row block [r0, r1) x panels [p0, p1) (kc0: the channels of the first
 * K block): no row where the input is not far, where no rows follow, or for all but the last
 * part of the panels (the parts of one row block all precede the next block). Tiles of 6 rows
 * are assumed for the share (some are 4 or 12: the last lines may then come unprefetched). */
static next_block next_block_of(const gemm_job *g, int64_t r0, int64_t r1, int p0, int p1,
                                int kc0) {
  next_block nb = {NULL, 0, 0, kc0, 0};
  int64_t n1 = r1 + (r1 - r0) < g->rows ? r1 + (r1 - r0) : g->rows;
  if (!g->far || n1 <= r1 || p1 != g->panels || kc0 <= 0) return nb; /* the last part */
  nb.row = g->in + r1 * g->cin;
  nb.rows = n1 - r1;
  nb.line = (uintptr_t)nb.row & ~(uintptr_t)63;
  int64_t lines = nb.rows * ((kc0 * (int64_t)sizeof(float) + 63) / 64 + 1); /* at most */
  nb.share = (int)(lines / ((int64_t)(p1 - p0) * ((r1 - r0 + 5) / 6))) + 1;
  return nb;
}

/* The output lines (for writing) and residual lines a tile OUT_AHEAD rows on will touch in
 * panel p (rows [i, i + mr), those that exist). Where the output outgrows the caches (B7's 300
 * x 300 stage: 90000 x 32 -> 32 + residual, 11.5 MB each) the tiles wrote and read it at half
 * the rate of a plain stream: the panel's half lines of each row, two memory streams the
 * hardware prefetcher follows badly. One thread, Zen 3, caches flushed: 90000 x 32 -> 32 +
 * residual 0.55-0.85 of the time, 12544 x 16 -> 96 0.75-0.80, 22500 x 192 -> 48 0.88-0.94; B7
 * in the network (`--profile`, two processes each): stage 1's projections 0.60, stage 2's
 * 0.83-0.90 on one thread, 0.75-0.90 and within noise on two. Distances of 12 to 96 rows were
 * alike. */
#define OUT_AHEAD 24
static inline __attribute__((always_inline)) void prefetch_output(const gemm_job *g, int64_t i,
                                                                  int mr, int p) {
  int64_t end = i + mr < g->rows ? i + mr : g->rows;
  for (int64_t r = i; r < end; r++) {
    int64_t at = r * g->cout + (int64_t)p * P;
    if (g->residual) __builtin_prefetch(g->residual + at, 0, 3);
    __builtin_prefetch(g->out + at, 1, 3);
  }
}

/* Rows [r0, r1) of panel p: two registers a row, or one for a last panel of at most 8
 * channels, 12 rows a tile (the two-register tile wasted half its multiply-adds there: 3136 x
 * 96 -> 24 ran at 57 GFLOP/s, 69 this way; 784 x 144 -> 40 62 -> 76), or (nh 3) panel p and a
 * last panel of at most 8 channels after it, three registers a row, 4 rows a tile; `stream`:
 * prefetch the input rows ahead (prefetch_input). */
static inline EN_TARGET_AVX2 __attribute__((always_inline)) void rows_avx2(
    const gemm_job *g, int64_t r0, int64_t r1, int p, int k0, int kc, int nh, int stream,
    next_block *nb) {
  /* the next panel's weights for these input channels (one line each), a share per tile (a
   * single row streams them itself: one_row_avx2) */
  const float *next = g->prefetch && p + 1 < g->panels && r1 - r0 > 1 && nh != 3
                          ? g->packed + ((int64_t)(p + 1) * g->cin + k0) * P
                          : NULL;
  int share = prefetch_share(kc, r1 - r0, 6), done = 0;
  for (int64_t i = r0; i < r1;) {
    int64_t left = r1 - i;
    int mr = nh == 2                 ? next_rows_avx2(left)
             : nh == 3               ? (left >= 4 ? 4 : (int)left)
             : left >= 12            ? 12
             : left >= 8             ? 8
             : left >= 6             ? 6
             : left >= 4             ? 4
                                     : (int)left;
    if (next)
      for (int j = 0; j < share && done < kc; j++, done++)
        __builtin_prefetch(next + (int64_t)done * P, 0, 3);
    if (stream) prefetch_input(g, i + A_AHEAD, mr, k0, kc);
    if (nb && nb->row) prefetch_next(g, nb);
    if (g->store && k0 + kc == g->cin) prefetch_output(g, i + OUT_AHEAD, mr, p);
    tile_rows_avx2(g, i, mr, p, k0, kc, nh);
    i += mr;
  }
}

/* Swish over rows [r0, r1) of panel p of the output, four registers at a time (the tiles stored
 * their sums with the bias only; see block_avx2). A function of its own (noinline): inlined
 * into the flattened block it shared the block's register allocation, its constants and inputs
 * went through the stack and the masked loads' branches around them, ~11-12 cycles a vector
 * where the same swish streams at ~7; full panels (the rule) take a loop without masks. */
EN_TARGET_AVX2 __attribute__((noinline, flatten)) static void swish_panel_avx2(const gemm_job *g,
                                                                              int64_t r0,
                                                                              int64_t r1, int p) {
  int col = p * P, left = g->cout - col, lanes = left < P ? left : P;
  int n0 = lanes < 8 ? lanes : 8, n1 = lanes - n0;
  __m256i m0 = en_lane_mask8(n0), m1 = en_lane_mask8(n1);
  int64_t ld = g->cout;
  float *o = g->out + r0 * ld + col;
  int64_t r = r0;
  if (lanes == P)
    for (; r + 2 <= r1; r += 2, o += 2 * ld) {
      __m256 h[4] = {_mm256_loadu_ps(o), _mm256_loadu_ps(o + 8), _mm256_loadu_ps(o + ld),
                     _mm256_loadu_ps(o + ld + 8)};
      en_swish_avx2(h, 4);
      _mm256_storeu_ps(o, h[0]);
      _mm256_storeu_ps(o + 8, h[1]);
      _mm256_storeu_ps(o + ld, h[2]);
      _mm256_storeu_ps(o + ld + 8, h[3]);
    }
  for (; r + 2 <= r1; r += 2, o += 2 * ld) {
    __m256 h[4] = {en_load8(o, n0, m0), en_load8(o + 8, n1, m1), en_load8(o + ld, n0, m0),
                   en_load8(o + ld + 8, n1, m1)};
    en_swish_avx2(h, 4);
    en_store8(o, h[0], n0, m0);
    en_store8(o + 8, h[1], n1, m1);
    en_store8(o + ld, h[2], n0, m0);
    en_store8(o + ld + 8, h[3], n1, m1);
  }
  if (r < r1) {
    __m256 h[2] = {en_load8(o, n0, m0), en_load8(o + 8, n1, m1)};
    en_swish_avx2(h, 2);
    en_store8(o, h[0], n0, m0);
    en_store8(o + 8, h[1], n1, m1);
  }
}

/* The same pass with AVX-512's swish where the CPU has it though the tiles are AVX2's (Zen 4,
 * isa.h), so that every swish of the network is that one (vec16.h; there with a divide). */
EN_TARGET_AVX512 __attribute__((noinline)) static void swish_panel_avx512(const gemm_job *g,
                                                                         int64_t r0, int64_t r1,
                                                                         int p) {
  int col = p * P, left = g->cout - col;
  en_swish_rows_avx512(g->out + r0 * g->cout + col, r1 - r0, g->cout, left < P ? left : P);
}

/* The same pass over panel p of planes (whole panels: en_fast_gemm_planes), four rows at a time
 * through their offsets. */
EN_TARGET_AVX512 __attribute__((noinline)) static void swish_planes_avx512(const gemm_job *g,
                                                                          int64_t r0, int64_t r1,
                                                                          int p) {
  float *base = g->planes->data + p * g->planes->block;
  const int64_t *at = g->planes->at;
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) {
    __m512 v[4];
    for (int j = 0; j < 4; j++) v[j] = _mm512_loadu_ps(base + at[r + j]);
    en_swish_avx512(v, 4);
    for (int j = 0; j < 4; j++) _mm512_storeu_ps(base + at[r + j], v[j]);
  }
  for (; r < r1; r++) {
    __m512 v[1] = {_mm512_loadu_ps(base + at[r])};
    en_swish_avx512(v, 1);
    _mm512_storeu_ps(base + at[r], v[0]);
  }
}

/* AVX2's, two rows (four registers) at a time as swish_panel_avx2's (the same bits) */
EN_TARGET_AVX2 __attribute__((noinline)) static void swish_planes_avx2(const gemm_job *g,
                                                                      int64_t r0, int64_t r1,
                                                                      int p) {
  float *base = g->planes->data + p * g->planes->block;
  const int64_t *at = g->planes->at;
  int64_t r = r0;
  for (; r + 2 <= r1; r += 2) {
    float *a = base + at[r], *b = base + at[r + 1];
    __m256 h[4] = {_mm256_loadu_ps(a), _mm256_loadu_ps(a + 8), _mm256_loadu_ps(b),
                   _mm256_loadu_ps(b + 8)};
    en_swish_avx2(h, 4);
    _mm256_storeu_ps(a, h[0]);
    _mm256_storeu_ps(a + 8, h[1]);
    _mm256_storeu_ps(b, h[2]);
    _mm256_storeu_ps(b + 8, h[3]);
  }
  if (r < r1) {
    float *a = base + at[r];
    __m256 h[2] = {_mm256_loadu_ps(a), _mm256_loadu_ps(a + 8)};
    en_swish_avx2(h, 2);
    _mm256_storeu_ps(a, h[0]);
    _mm256_storeu_ps(a + 8, h[1]);
  }
}

static void swish_panel(const gemm_job *g, int64_t r0, int64_t r1, int p) {
  if (g->planes && en_isa() == EN_ISA_AVX512) swish_planes_avx512(g, r0, r1, p);
  else if (g->planes) swish_planes_avx2(g, r0, r1, p);
  else if (en_isa() == EN_ISA_AVX512) swish_panel_avx512(g, r0, r1, p);
  else swish_panel_avx2(g, r0, r1, p);
}

/* Rows [r0, r1) x panels [p0, p1), all input channels; h: the job as the tiles see it (its
 * activation none where post: the swish then runs as a pass over each panel once its last K
 * block is in). */
static inline EN_TARGET_AVX2 __attribute__((always_inline)) void block_avx2_of(
    const gemm_job *g, const gemm_job *h, int post, int64_t r0, int64_t r1, int p0, int p1) {
  int nk = k_block_count(g->cin);
  next_block nb = next_block_of(h, r0, r1, p0, p1, nk ? g->cin / nk : 0);
  for (int kb = 0; kb < nk; kb++) {
    int k0 = (int)((int64_t)g->cin * kb / nk), kc = (int)((int64_t)g->cin * (kb + 1) / nk) - k0;
    next_block *ahead = nb.row && kb == nk - 1 ? &nb : NULL;
    for (int p = p0; p < p1; p++) {
      int stream = h->stream && p == p0;
      /* a full panel with a last one of at most 8 channels after it: both at once, 4 rows x
       * 24 channels a tile, where the last panel alone ran 12 x 8 tiles, a broadcast per
       * multiply-add (separate builds alternated, one thread, Zen 3: 3136 x 144 -> 24 0.83 of
       * the time, 2500 x 40 -> 24 0.87, 22500 x 24 -> 24 0.89, 784 x 240 -> 40 0.94, 361 x 816
       * -> 136 1.02); not for a single row, which streams its weights with prefetches */
      int pair = p + 2 == p1 && p1 == g->panels && g->cout - p * P > P &&
                 g->cout - p * P <= 3 * 8 && r1 - r0 >= 4;
      if (pair) rows_avx2(h, r0, r1, p, k0, kc, 3, stream, ahead);
      else if (g->cout - p * P <= 8) rows_avx2(h, r0, r1, p, k0, kc, 1, stream, ahead);
      else rows_avx2(h, r0, r1, p, k0, kc, 2, stream, ahead);
      if (post && kb == nk - 1) swish_panel(g, r0, r1, p);
      if (pair && post && kb == nk - 1) swish_panel(g, r0, r1, p + 1);
      p += pair;
    }
  }
}

/* The block as three functions, each flattened on its own (flatten: the epilogue's activation
 * inlined, where GCC left it a call and the tile's accumulators went through memory; in-process
 * A/B 0.97-1.0 of the time): no activation in the tiles and no residual (projections without
 * a skip, and every swish GEMM without a residual: its swish is a pass over each finished
 * panel, swish_panel_avx2), none with a residual (projections with a skip), and any other (an
 * activation in the tiles' epilogue: ReLU6, or a swish with a residual). In the first two GCC
 * folds the epilogue's tests and keeps no activation code beside the tiles; one flattened
 * function holding all three cases did not allocate registers that well (specialised in place:
 * 4-11 % slower). In one process, paired runs alternated (30-40): B0 224 one thread 0.971-0.988
 * of the time (fused expand + depthwise 0.94-0.96), two threads 0.978, batch 8 (one thread,
 * batch path) 0.977; B3 0.99-1.00.
 *
 * The swish as a pass rather than in the epilogue, for every K (it was for K <= 48 only, the
 * pass then inlined and ~11-12 cycles a vector, as the epilogue's is): in-process A/B, one
 * thread, Zen 3, against the epilogue's: 196 x 80 -> 480 0.93 of the time, 196 x 112 -> 672
 * 0.92, 361 x 136 -> 816 0.90, 784 x 80 -> 480 0.88, 100 x 232 -> 1392 0.97, 361 x 640 -> 3840
 * 0.96 (after the last of two K blocks), 49 x 1152 -> 1280 0.99; the K <= 48 rows of the fused
 * blocks (112 x 16 -> 96, 28 x 40 -> 240) 0.93-0.97 against the inlined pass. Same bits: the
 * same swish of the same sums. In the network, paired runs alternated: B0 224 0.988 (one
 * thread), 0.990 (two); B3 300 0.977 (pointwise 0.96, expand + depthwise 0.95). */
EN_TARGET_AVX2 __attribute__((flatten, noinline)) static void block_avx2_any(
    const gemm_job *g, int64_t r0, int64_t r1, int p0, int p1) {
  gemm_job h = *g;
  h.planes = NULL;
  block_avx2_of(g, &h, 0, r0, r1, p0, p1);
}

EN_TARGET_AVX2 __attribute__((flatten, noinline)) static void block_avx2_plain(
    const gemm_job *g, int64_t r0, int64_t r1, int p0, int p1, int post) {
  gemm_job h = *g;
  h.act = EN_ACT_NONE;
  h.residual = NULL;
  h.planes = NULL;
  block_avx2_of(g, &h, post, r0, r1, p0, p1);
}

EN_TARGET_AVX2 __attribute__((flatten, noinline)) static void block_avx2_skip(
    const gemm_job *g, int64_t r0, int64_t r1, int p0, int p1) {
  gemm_job h = *g;
  h.act = EN_ACT_NONE;
  h.planes = NULL;
  block_avx2_of(g, &h, 0, r0, r1, p0, p1);
}

/* Into planes (never with a residual): no activation in the tiles (none, or a swish pass), or
 * another in their epilogue (ReLU6). */
EN_TARGET_AVX2 __attribute__((flatten, noinline)) static void block_avx2_planes(
    const gemm_job *g, int64_t r0, int64_t r1, int p0, int p1, int post) {
  gemm_job h = *g;
  if (!h.planes) __builtin_unreachable();
  h.act = EN_ACT_NONE;
  h.residual = NULL;
  block_avx2_of(g, &h, post, r0, r1, p0, p1);
}

EN_TARGET_AVX2 __attribute__((flatten, noinline)) static void block_avx2_planes_any(
    const gemm_job *g, int64_t r0, int64_t r1, int p0, int p1) {
  gemm_job h = *g;
  if (!h.planes) __builtin_unreachable();
  h.residual = NULL;
  block_avx2_of(g, &h, 0, r0, r1, p0, p1);
}

/* post: the swish as a pass over each panel after its tiles (swish_panel_avx2) */
static void block_avx2(const gemm_job *g, int64_t r0, int64_t r1, int p0, int p1) {
  int post = g->act == EN_ACT_SWISH && !g->residual;
  if (g->planes && (g->act == EN_ACT_NONE || post)) block_avx2_planes(g, r0, r1, p0, p1, post);
  else if (g->planes) block_avx2_planes_any(g, r0, r1, p0, p1);
  else if ((g->act == EN_ACT_NONE || post) && !g->residual)
    block_avx2_plain(g, r0, r1, p0, p1, post);
  else if (g->act == EN_ACT_NONE) block_avx2_skip(g, r0, r1, p0, p1);
  else block_avx2_any(g, r0, r1, p0, p1);
}
#endif
/* Portable (SSE2, NEON, ...): 4-float vectors, the width every SIMD target has, so they stay
 * in registers (16-float ones do not: see the AVX2 kernel above); a panel row is four of them,
 * tiles of two rows: 8 accumulators, 4 weight vectors and a broadcast in 16 registers. */
typedef float v4 __attribute__((vector_size(16), aligned(4), may_alias));

static inline __attribute__((always_inline)) void tile_v4(const gemm_job *g, int64_t i, int mr,
                                                          int p, int k0, int kc) {
  int K = g->cin, col = p * P, left = g->cout - col, lanes = left < P ? left : P;
  v4 c[2][4];
  float *o = g->out + i * g->cout + col;
  for (int r = 0; r < mr; r++)
    for (int q = 0; q < 4; q++) c[r][q] = (v4){0};
  if (k0) /* partial sums of earlier input channels, lanes beyond cout left 0 */
    for (int r = 0; r < mr; r++) {
      v4 t[4] = {{0}};
      memcpy(t, o + r * g->cout, (size_t)lanes * sizeof(float));
      for (int q = 0; q < 4; q++) c[r][q] = t[q];
    }
  const float *a = g->in + i * K + k0, *b = g->packed + ((int64_t)p * K + k0) * P;
  for (int k = 0; k < kc; k++, a++, b += P) {
    v4 w[4] = {*(const v4 *)b, *(const v4 *)(b + 4), *(const v4 *)(b + 8), *(const v4 *)(b + 12)};
    for (int r = 0; r < mr; r++) {
      float s = a[(int64_t)r * K];
      v4 x = {s, s, s, s};
      for (int q = 0; q < 4; q++) c[r][q] += x * w[q];
    }
  }
  for (int r = 0; r < mr; r++) {
    float *row = o + r * g->cout;
    v4 t[4]; /* c stays in registers: only t is indexed at run time */
    for (int q = 0; q < 4; q++) t[q] = c[r][q];
    memcpy(row, t, (size_t)lanes * sizeof(float));
    if (k0 + kc < K) continue;
    if (g->bias)
      for (int j = 0; j < lanes; j++) row[j] += g->bias[col + j];
    if (g->act == EN_ACT_SWISH) /* a loop vexp.h's swish vectorises in */
      for (int j = 0; j < lanes; j++) row[j] = en_vswish(row[j]);
    else if (g->act != EN_ACT_NONE)
      for (int j = 0; j < lanes; j++) row[j] = en_activate(row[j], g->act);
    if (g->residual)
      for (int j = 0; j < lanes; j++) row[j] += g->residual[(i + r) * g->cout + col + j];
  }
}

static void block_portable(const gemm_job *g, int64_t r0, int64_t r1, int p0, int p1) {
  int nk = k_block_count(g->cin);
  for (int kb = 0; kb < nk; kb++) {
    int k0 = (int)((int64_t)g->cin * kb / nk), kc = (int)((int64_t)g->cin * (kb + 1) / nk) - k0;
    for (int p = p0; p < p1; p++)
      for (int64_t i = r0; i < r1;) {
        if (r1 - i >= 2) tile_v4(g, i, 2, p, k0, kc), i += 2;
        else tile_v4(g, i, 1, p, k0, kc), i += 1;
      }
  }
}

typedef void (*block_fn)(const gemm_job *, int64_t, int64_t, int, int);

/* The micro-kernel of `isa` (en_gemm_isa or en_dense_isa, isa.h: AVX2's on Zen 4). */
static block_fn pick_block(int isa) {
#if EN_X86_TARGETS
  if (isa == EN_ISA_AVX512) return block_avx512;
  if (isa == EN_ISA_AVX2) return block_avx2;
#endif
  return block_portable;
}

/* No input channels: columns [c0, c1) of the output are the epilogue of zero. Returns whether
 * that was the case. */
static int empty_sum(const gemm_job *g, int c0, int c1) {
  if (g->cin > 0) return 0;
  for (int64_t r = 0; r < g->rows; r++)
    for (int c = c0; c < c1; c++) {
      float v = en_activate(g->bias ? g->bias[c] : 0.0f, g->act);
      out_at(g, r, c / P)[c % P] = v + (g->residual ? g->residual[r * g->cout + c] : 0.0f);
    }
  return 1;
}

/* The per-core L2 cache in bytes (glibc reads it from CPUID), 512 KiB where unknown. */
int64_t en_l2_bytes(void) {
  static int64_t cached; /* 0: not yet read (a race only writes the same value twice) */
  int64_t v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
  if (v) return v;
#ifdef _SC_LEVEL2_CACHE_SIZE
  v = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
  if (v < (64 << 10)) v = 512 << 10;
  __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
  return v;
}

/* Whether the weights outgrow a quarter of the L2: then they come from L3 or memory at each
 * call (batch 1 streams every layer's once), and the AVX2 kernel prefetches the next panel's
 * while it runs a panel. In-process A/B, one thread, caches flushed between calls: 49 x 192 ->
 * 1152, 49 x 1152 -> 192, 49 x 320 -> 1280, 100 x 384 -> 2304 0.89-0.95 of the time; with the
 * weights in L2 the prefetches cost 2.5-4 % (hence the size test). AVX-512: neutral, not
 * used. */
static int big_weights(int cin, int cout) {
  return (int64_t)cin * cout * (int64_t)sizeof(float) > en_l2_bytes() / 4;
}

/* Whether the first panel of each row block should prefetch its input rows (prefetch_input):
 * where the input outgrows four L2s, about one core's share of the L3 (Zen 3: 32 MiB for 8
 * cores of 512 KiB L2), so it comes from memory, and rows have at least 64 input channels.
 * From L3 the prefetches only cost (784 x 240 -> 40 and 12544 x 32 -> 16 1.07-1.10 of the
 * time); rows of fewer channels are a few lines each, a tile's rows read almost in order,
 * which the hardware follows (B3's 22500 x 40 -> 24 1.01-1.12 with them). */
static int big_input(int64_t rows, int cin) {
  return cin >= 64 && rows * cin * (int64_t)sizeof(float) > 4 * en_l2_bytes();
}

/* Whether the input lives in memory (EN_MEMORY_L2S, kernels.h; the depthwise conv before wrote
 * it with non-temporal stores), so that each row block prefetches the next one's (next_block).
 * Not for inputs of four to eight L2s, in the L3 on Zen 4: B7 600's 38 x 38 projections (5.5
 * and 7.8 MB) ran as fast or faster without (stage 5 80-81 ms against 81-83.5). */
static int far_input(int64_t rows, int cin) {
  int64_t bytes = rows * cin * (int64_t)sizeof(float);
  return big_input(rows, cin) && bytes > EN_MEMORY_L2S * en_l2_bytes();
}

/* Whether the output (rows, cout) outgrows six L2s (3 MiB on Zen 3; B3 300's 22500 x 24, 2.2
 * MB, was within noise either way), so that tiles prefetch their output rows (prefetch_output). */
static int big_output(int64_t rows, int cout) {
  return rows * cout * (int64_t)sizeof(float) > 6 * en_l2_bytes();
}

/* Row blocks for `rows` rows. Every row block streams all the weights once: where a K block of
 * them outgrows a quarter of the L2 (late stages: 361 x 640 -> 3840 has 4.9 MB a K block, read
 * from L3 once per 90-row block), blocks are as few as keep their slice of A (rows x one K
 * block) within half the L2; elsewhere (the weights stay in L2) about MC rows, up to 1.5 MC,
 * many tasks for the threads. In-process A/B, one thread, 2 MiB L2 (blocks of up to 682 rows
 * against about MC): 361 x 640 -> 3840 0.79 (AVX-512) / 0.86 (AVX2) of the time, 361 x 3840
 * -> 640 0.93-0.96, 361 x 384 -> 2304 0.94-0.96; 100 rows as one block instead of two of 50:
 * 100 x 2304 -> 384 and 100 x 1392 -> 232 0.89-0.98. */
static int64_t row_block_count(int64_t rows, int cin, int cout) {
  int nk = k_block_count(cin);
  int64_t kc = nk > 0 ? (cin + nk - 1) / nk : 1, l2 = en_l2_bytes();
  int64_t per = MC + MC / 2;
  if (kc * cout * (int64_t)sizeof(float) > l2 / 4) {
    int64_t fit = l2 / 2 / (kc * (int64_t)sizeof(float));
    if (fit > per) per = fit;
  } else if (rows <= per) {
    return 1;
  } else {
    return (rows + MC / 2) / MC;
  }
  return rows > 0 ? (rows + per - 1) / per : 1;
}

/* A product split by rows alone: a multiple of `threads` row blocks, each thread taking an
 * equal run of them in order (static), so that thread t writes the t-th part of the output's
 * rows, as the GEMM before and after it and the depthwise conv's row bands do, in the same
 * part of their buffers (en_plan_place, infer.h): no line changes owner between them. Against
 * the guided schedule (a first run each, then whichever thread is free), B0 224 batch 1 on two
 * threads, 4-variant process loops tagged by the hand-off, Zen 4 (with the fused kernel's bands
 * and the centred tensors, mbconv.c): both vCPUs on one die 5.31 ms against 5.37, on two dies
 * 7.51 against 8.30 (stages 1-3's 1x1 convs 0.45 against 0.71 ms). */
static void rows_static(const gemm_job *g, block_fn run, int64_t row_blocks, int threads) {
  row_blocks = (row_blocks + threads - 1) / threads * threads;
  if (row_blocks > g->rows) row_blocks = g->rows;
#pragma omp parallel for schedule(static)
  for (int64_t rb = 0; rb < row_blocks; rb++)
    run(g, g->rows * rb / row_blocks, g->rows * (rb + 1) / row_blocks, 0, g->panels);
}

/* An activated product (an expand: the depthwise conv after it reads its output in channel
 * groups) of few row blocks, split by panels alone: thread t takes the t-th run of panels, the
 * runs sized as OpenMP's static schedule sizes the depthwise conv's channel groups (the first
 * panels % threads runs one longer; depthwise_small.c), over every row, so that each thread
 * reads the channels its own thread wrote. Split by rows before: every thread wrote every
 * channel of its rows, and the depthwise conv read half its input from the other thread. B0
 * 224 batch 1 on two threads, variant loops tagged by the hand-off, Zen 4: 5.310 against 5.319
 * ms with both vCPUs on one die (1005 processes each), 7.169 against 7.304 on two dies (230);
 * on two dies stages 4 and 5's 1x1 convs 0.555 and 1.117 against 0.628 and 1.168 ms. */
static void panels_by_thread(const gemm_job *g, block_fn run, int64_t row_blocks) {
#pragma omp parallel
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    int q = g->panels / nt, r = g->panels % nt;
    int p0 = t * q + (t < r ? t : r), p1 = p0 + q + (t < r);
    for (int64_t rb = 0; rb < row_blocks && p0 < p1; rb++)
      run(g, g->rows * rb / row_blocks, g->rows * (rb + 1) / row_blocks, p0, p1);
  }
}

/* A row of panel p's cost in 8-float halves: 2, or 1 for a last panel of at most 8 channels. */
static int64_t halves_of(const gemm_job *g, int p) { return g->cout - p * P > 8 ? 2 : 1; }

/* The point (panel, row) that `u` halves of work reach, panel by panel, each panel's rows in
 * order; (panels, 0) at the end. */
static void work_point(const gemm_job *g, int64_t u, int *p, int64_t *r) {
  int last = g->panels - 1;
  int64_t body = (int64_t)last * 2 * g->rows;
  if (u < body) {
    *p = (int)(u / (2 * g->rows)), *r = u % (2 * g->rows) / 2;
    return;
  }
  *p = last, *r = (u - body) / halves_of(g, last);
  if (*r >= g->rows) *p = g->panels, *r = 0;
}

/* One row block of many panels (a projection or classifier of few rows) in equal shares of
 * work, one per thread: thread t takes the t-th share of the panels in order, each panel's rows
 * in order, so a panel may be cut between two threads by rows, and each thread streams only its
 * share of the weights. Parts of whole panels before, as many as divided the panel count (5
 * parts of the 15 panels of B3's 100 x 1392 -> 232, dealt out statically: one thread took 9
 * panels, the other 6). B3 300 batch 1 on two threads, Zen 4, the two splits alternated by an
 * environment switch (102 processes each with both vCPUs on one die, 60 on two): stage 6's 1x1
 * convs 4.257 -> 3.846 ms and 4.487 -> 4.098, the network 22.63 -> 22.21 and 27.65 -> 27.24. */
static void work_shares(const gemm_job *g, block_fn run) {
#pragma omp parallel
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads(), pa, pb;
    int64_t total = (int64_t)(g->panels - 1) * 2 * g->rows + halves_of(g, g->panels - 1) * g->rows;
    int64_t ra, rb;
    work_point(g, total * t / nt, &pa, &ra);
    work_point(g, total * (t + 1) / nt, &pb, &rb);
    if (pa == pb) {
      if (ra < rb) run(g, ra, rb, pa, pa + 1);
    } else {
      if (ra > 0) run(g, ra, g->rows, pa, pa + 1), pa++;
      if (pa < pb) run(g, 0, g->rows, pa, pb);
      if (rb > 0) run(g, 0, rb, pb, pb + 1);
    }
  }
}

/* The whole product, split over the OpenMP team; planes: the output there (out unused), or
 * NULL. */
static void gemm(float *out, const en_planes *planes, const float *in, const float *packed,
                 const float *bias, const float *residual, int64_t rows, int cin, int cout,
                 en_act act) {
  if (rows <= 0 || cout <= 0) return;
  gemm_job g = {out, in, packed, bias, residual, rows, cin, cout, (cout + P - 1) / P, act,
                big_weights(cin, cout), big_input(rows, cin), far_input(rows, cin),
                !planes && big_output(rows, cout), planes};
  if (empty_sum(&g, 0, cout)) return;
  /* few rows: AVX-512 on Zen 4 (isa.h), but only without an activation: AVX2's and AVX-512's
   * swish round differently, and a swish chosen by row count would give an image other bits
   * in a batch than alone (tests/test_model.c); the sums themselves are the same bits */
  int isa = act == EN_ACT_NONE ? en_gemm_isa(rows) : en_dense_isa();
  block_fn run = pick_block(isa);
  int64_t row_blocks = row_block_count(rows, cin, cout);
  int threads = omp_get_max_threads();
  if (threads > 1 && act != EN_ACT_NONE && row_blocks <= 4 && g.panels >= 4 * threads) {
    panels_by_thread(&g, run, row_blocks); /* the 14 x 14 stages and smaller, batch 1 */
    return;
  }
  /* few blocks (late stages): a multiple of the thread count, of equal size, so no thread
   * waits for a last odd block (5 blocks on 2 threads idle one a sixth of the time); but one
   * block of many panels stays whole, split by panels, so each thread streams only its part of
   * the weights, once (two threads, in-process A/B: 100 x 2304 -> 384, 49 x 1152 -> 192 and
   * the like 0.93-0.98 of the time): in equal shares of work (work_shares), or on AVX-512,
   * whose tiles span up to four panels, in parts of whole panels (below) */
  int whole = row_blocks == 1 && g.panels >= 4 * threads;
  if (threads > 1 && whole && isa != EN_ISA_AVX512) {
    work_shares(&g, run);
    return;
  }
  if (threads > 1 && row_blocks < 4 * threads && !whole)
    row_blocks = (row_blocks + threads - 1) / threads * threads;
  /* split the panels too, in parts of equal panel counts, when row blocks alone cannot feed
   * every thread twice (two tasks each: with a schedule that handed tasks to whichever thread
   * was free, this let a core that ran a quarter slower for a while take fewer; the schedule
   * is now static, below) */
  int64_t want = 2 * (int64_t)threads;
  int splits = row_blocks >= want ? 1 : (int)((want + row_blocks - 1) / row_blocks);
  if (splits > g.panels) splits = g.panels;
  /* parts of equal panel counts where a few more of them make it so (5 panels in 2 parts of
   * 2 and 3 left one thread idle for a sixth of the product; two threads, builds alternated:
   * 196 x 672 -> 112 0.89 of the time, 196 x 480 -> 112 and -> 80 0.87; whole B0 and B3
   * within noise). Not on AVX-512, whose tiles span up to four panels: B0 1.05 there. */
  if (isa != EN_ISA_AVX512)
    for (int s = splits; s <= 4 * splits && s <= g.panels; s++)
      if (g.panels % s == 0) {
        splits = s;
        break;
      }
  if (threads > 1 && splits == 1 && row_blocks > 1) { /* rows alone: see rows_static */
    rows_static(&g, run, row_blocks, threads);
    return;
  }
  int64_t tasks = row_blocks * splits;
  if (threads == 1 || tasks == 1) { /* no parallel region for serial work */
    for (int64_t rb = 0; rb < row_blocks; rb++)
      run(&g, rows * rb / row_blocks, rows * (rb + 1) / row_blocks, 0, g.panels);
    return;
  }
  /* panels split too (few rows), static: each thread takes an equal run of tasks in order, so
   * that the depthwise conv after an expand (its channel groups, static too) reads what its own
   * thread wrote. Against a guided schedule (a first run each, the rest to whichever thread is
   * free), B0 224 batch 1 on two threads, Zen 4, process pairs tagged by the hand-off: 0.996 of
   * the time with both vCPUs on one die, 0.968 on two; B3 1.000 and 0.991. Guided had replaced
   * a dynamic one (tasks dealt out one by one): 0.986 on one die, 0.963 on two. */
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tasks; t++) {
    int64_t rb = t / splits;
    int part = (int)(t % splits);
    int p0 = (int)((int64_t)g.panels * part / splits);
    int p1 = (int)((int64_t)g.panels * (part + 1) / splits);
    run(&g, rows * rb / row_blocks, rows * (rb + 1) / row_blocks, p0, p1);
  }
}

void en_fast_gemm(float *out, const float *in, const float *packed, const float *bias,
                  const float *residual, int64_t rows, int cin, int cout, en_act act) {
  gemm(out, NULL, in, packed, bias, residual, rows, cin, cout, act);
}

/* The planes' writers are the AVX2 and AVX-512 tiles (elsewhere the reference). */
void en_fast_gemm_planes(const en_planes *out, const float *in, const float *packed,
                         const float *bias, int64_t rows, int cin, int cout, en_act act) {
  if (en_dense_isa() == EN_ISA_PORTABLE || cout % EN_PLANE_LANES) {
    en_ref_gemm_planes(out, in, packed, bias, rows, cin, cout, act);
    return;
  }
  gemm(NULL, out, in, packed, bias, NULL, rows, cin, cout, act);
}

void en_fast_gemm_panels(float *out, const float *in, const float *packed, const float *bias,
                         int64_t rows, int cin, int cout, en_act act, int p0, int p1) {
  gemm_job g = {out, in, packed, bias, NULL, rows, cin, cout, (cout + P - 1) / P, act,
                big_weights(cin, cout), big_input(rows, cin), far_input(rows, cin),
                big_output(rows, cout), NULL};
  int c1 = p1 * P < cout ? p1 * P : cout;
  if (rows <= 0 || p0 >= p1 || empty_sum(&g, p0 * P, c1)) return;
  block_fn run = pick_block(en_dense_isa()); /* rows of an image: AVX2 on Zen 4 at any count */
  int64_t blocks = row_block_count(rows, cin, cout);
  for (int64_t rb = 0; rb < blocks; rb++)
    run(&g, rows * rb / blocks, rows * (rb + 1) / blocks, p0, p1);
}
