/* 16-float vectors (GCC vector extensions) shared by the fast kernels: one AVX-512 register, two
 * AVX2 ones, four SSE or NEON ones, so one source serves every target clone. Partial loads and
 * stores serve channel counts below 16; en_vstore_from serves the shifted last block of a ragged
 * channel count (whole-vector loads, only the new lanes stored). The type only crosses
 * always-inline helpers, never a real call, so there is no ABI at stake (-Wpsabi off).
 *
 * GCC keeps a 16-float vector in a register only where it is one (AVX-512); compiled for AVX2 it
 * moves such vectors through the stack and general registers, which made the AVX2 kernels run
 * at a tenth of their speed. A file whose code is compiled for AVX2 only therefore defines
 * EN_VEC_LANES 8 before including this header: en_vec is then one AVX2 register and the same
 * kernel source works on blocks of 8 channels (src/kernels/depthwise_avx2.c). */
#ifndef EN_VEC16_H
#define EN_VEC16_H

#include <string.h>

#include "kernels/isa.h"
#include "kernels/kernels.h"
#include "kernels/vexp.h"

#if EN_X86_TARGETS
#include <immintrin.h>
#endif

#pragma GCC diagnostic ignored "-Wpsabi"

#ifdef EN_VEC_LANES
#define EN_LANES EN_VEC_LANES
#else
#define EN_LANES 16
#endif
typedef float en_vec __attribute__((vector_size(EN_LANES * 4), aligned(4), may_alias));

/* Channel block i of C: full vectors whenever C >= EN_LANES (the ragged last block is shifted
 * back to end at C, loads whole vectors and stores only the lanes from `skip` on, which the
 * block before covered); a partial vector only when C < EN_LANES. */
static inline void en_vspan(int C, int i, int *c0, int *lanes, int *skip) {
  *c0 = i * EN_LANES, *lanes = EN_LANES, *skip = 0;
  if (*c0 + EN_LANES <= C) return;
  if (C >= EN_LANES) *skip = *c0 + EN_LANES - C, *c0 = C - EN_LANES;
  else *lanes = C - *c0;
}

/* Loads `lanes` floats (EN_LANES, or fewer, the rest zero). */
static inline __attribute__((always_inline)) en_vec en_vload(const float *p, int lanes) {
  en_vec v = {0};
  if (lanes == EN_LANES) return *(const en_vec *)p;
  memcpy(&v, p, (size_t)lanes * sizeof(float));
  return v;
}

static inline __attribute__((always_inline)) void en_vstore(float *p, en_vec v, int lanes) {
  if (lanes == EN_LANES) *(en_vec *)p = v;
  else memcpy(p, &v, (size_t)lanes * sizeof(float));
}

/* Stores lanes [skip, lanes) only. */
static inline __attribute__((always_inline)) void en_vstore_from(float *p, en_vec v, int skip,
                                                                 int lanes) {
  if (skip == 0) {
    en_vstore(p, v, lanes);
    return;
  }
  float t[EN_LANES];
  memcpy(t, &v, sizeof t);
  for (int l = skip; l < lanes; l++) p[l] = t[l];
}

static inline __attribute__((always_inline)) en_vec en_vactivate(en_vec v, en_act act) {
  if (act == EN_ACT_NONE) return v;
  float t[EN_LANES];
  memcpy(t, &v, sizeof t);
  if (act == EN_ACT_SWISH)
    for (int i = 0; i < EN_LANES; i++) t[i] = en_vswish(t[i]);
  else if (act == EN_ACT_RELU6)
    for (int i = 0; i < EN_LANES; i++) t[i] = t[i] < 0.0f ? 0.0f : (t[i] > 6.0f ? 6.0f : t[i]);
  else
    for (int i = 0; i < EN_LANES; i++) t[i] = en_activate(t[i], act);
  memcpy(&v, t, sizeof t);
  return v;
}

#if EN_X86_TARGETS
/* swish(x) = x / (1 + exp(-x)) with the ISA's own instructions, where the portable en_vswish
 * takes ~31 operations (the activation costs as much as the multiply-adds where the expand GEMM
 * has few input channels). AVX2, 13 operations: exp(-x) as vexp.h computes it, but 2^k put in
 * by shifting the bits the rounding trick leaves k + 127 in, and x / d by a divide. AVX-512, 18
 * operations of which 10 multiply-adds or multiplies: 2^(k / 16) from a 16-entry table, e^-r on
 * a range 16 times narrower (degree 3), 1 / d from the hardware estimate refined by a Newton
 * step (vrcp14ps: 2^-14), or x / d by a divide where en_swish_divides (Zen 4). Both leave
 * swish(x) exactly x once exp(-x) vanishes (tests/test_kernels.c bounds both against double).
 * AVX2: x <= 87, and 2^k saturating to infinity below about -88 (there: 13 operations where two
 * clamps and a split ln 2 took 14; Zen 3, one thread: 0.85 of the time alone in a loop, B0's fused
 * expand + depthwise at K = 16 0.83-1.04 (median 0.9) in separate builds alternated, whole B0 per
 * op kind 0.95 (fused) and 0.94 (stem + depthwise) while the untouched kinds drifted 1.01-1.06, B3
 * neutral). Not always_inline: they can only be inlined into functions compiled for their ISA
 * (EN_TARGET_*), which is where en_vact's constant isa leaves them.
 *
 * Written for n independent vectors at once, each step over all of them: one swish is a chain of
 * ~16 dependent operations (~65 cycles), and one at a time the out-of-order window holds too few to
 * keep both vector units busy. n is a constant after inlining (at most 4 here). */
static inline EN_TARGET_AVX512 void en_swish_avx512(__m512 *x, int n) {
  /* exp(-u) = 2^(k / 16) e^-r with k = round(-16 u / ln 2) and r = u + k ln 2 / 16, |r| <=
   * ln 2 / 32: k by the 1.5 x 2^23 rounding trick (t's low mantissa bits hold it), ln 2 / 16
   * split in two (one part exact: r exact to float precision), the odd coefficients negated so
   * that -u is never formed; u = min(x, 87) (x NaN: 87, and the final product stays NaN).
   *
   * It replaced vexp.h's degree-6 polynomial with 2^k put in by vscalefps (and k rounded by
   * vroundscaleps): 12 multiply-adds or multiplies where this takes 10, alone in a loop on Zen 4
   * 5.9-6.1 core cycles per 8 values against 6.6-6.9; in the network (one thread, builds
   * alternated) the depthwise convs 0.94-0.97 of their time and B0 0.97-1.00 (B3 neutral), with
   * the AVX-512 GEMM forced (its epilogues swish too: Intel's configuration) B0 0.97-0.99 and B3
   * 0.94-0.99. Max error over every float with 1e-3 <= |x| <= 100: 2.4e-7 relative (the old
   * one 3.4e-7). The same table for AVX2 (2^(j / 8), 5.8 against 6.4 cycles alone) was
   * neutral in the network with EFFNET_ISA=avx2.
   *
   * x / d by a divide instead of the estimate, three multiply-adds fewer, where 512-bit
   * instructions run as two halves (en_swish_divides, isa.h): on Zen 4, alone in a loop, 5.1-5.2
   * core cycles per 8 values (AVX2's swish 6.4); max error over every float with 1e-3 <= |x| <=
   * 100: 2.2e-7. With the AVX2 GEMM's and stem's swish passes on it too (en_swish_rows_avx512),
   * separate builds alternated, one thread: B0 0.96-0.98 of the time (fused expand + depthwise
   * 0.93-0.94), B0 batch 8 0.97-0.98, B3 0.98-1.00, B7 0.99; two threads B0 0.96-1.00. Not on
   * CPUs with full-width 512-bit units: there the multiply-adds take half the time and the
   * 512-bit divide is the slow part (Intel: about one per 10 cycles). */
  __m512 one = _mm512_set1_ps(1.0f), shifter = _mm512_set1_ps(12582912.0f);
  __m512 table = _mm512_setr_ps(1.0f, 1.044273734f, 1.090507746f, 1.138788581f, 1.189207077f,
                                1.241857767f, 1.296839595f, 1.354255557f, 1.414213538f,
                                1.476826191f, 1.542210817f, 1.610490322f, 1.681792855f,
                                1.756252170f, 1.834008098f, 1.915206552f); /* 2^(j / 16) */
  __m512 u[4], t[4], k[4], p[4];
  for (int j = 0; j < n; j++) u[j] = _mm512_min_ps(x[j], _mm512_set1_ps(87.0f));
  for (int j = 0; j < n; j++)
    t[j] = _mm512_fmadd_ps(u[j], _mm512_set1_ps(-23.0831206542234f), shifter);
  for (int j = 0; j < n; j++) k[j] = _mm512_sub_ps(t[j], shifter);
  for (int j = 0; j < n; j++) u[j] = _mm512_fmadd_ps(k[j], _mm512_set1_ps(0.693359375f / 16), u[j]);
  for (int j = 0; j < n; j++)
    u[j] = _mm512_fmadd_ps(k[j], _mm512_set1_ps(-2.12194440e-4f / 16), u[j]);
  /* e^-r: minimax for relative error on |r| <= ln 2 / 32, 1.2e-9 (6e-8 evaluated in float;
   * the two low coefficients round to -1 and 1) */
  for (int j = 0; j < n; j++)
    p[j] = _mm512_fmadd_ps(_mm512_set1_ps(-1.666627566e-1f), u[j], _mm512_set1_ps(5.000195492e-1f));
  for (int j = 0; j < n; j++) p[j] = _mm512_fmadd_ps(p[j], u[j], _mm512_set1_ps(-1.0f));
  for (int j = 0; j < n; j++) p[j] = _mm512_fmadd_ps(p[j], u[j], one);
  /* 2^(k / 16): the entry for k's low 4 bits (vpermps reads only those), its exponent raised by
   * floor(k / 16), which t's bits shifted by 19 hold in the exponent field (k's bits 4-12; the
   * entry's 127 brings the field into [1, 254] for k < 2047) */
  __m512i last = _mm512_set1_epi32(0x4B400000 + 2047), field = _mm512_set1_epi32((int)0xFF800000u);
  __mmask16 live[4];
  for (int j = 0; j < n; j++) {
    __m512i bits = _mm512_castps_si512(t[j]);
    live[j] = _mm512_cmplt_epi32_mask(bits, last);
    __m512i e = _mm512_and_si512(_mm512_slli_epi32(bits, 19), field);
    __m512 s = _mm512_permutexvar_ps(bits, table);
    s = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(s), e));
    p[j] = _mm512_fmadd_ps(p[j], s, one); /* d */
  }
  /* x / d; 0 where k >= 2047 (u below about -88.6, where swish is under 1e-36, -inf included;
   * the lanes' d may be anything there, even NaN) */
  if (en_swish_divides) { /* isa.h: CPUs that split 512-bit instructions (Zen 4) */
    for (int j = 0; j < n; j++) x[j] = _mm512_maskz_div_ps(live[j], x[j], p[j]);
    return;
  }
  for (int j = 0; j < n; j++) u[j] = _mm512_rcp14_ps(p[j]);
  for (int j = 0; j < n; j++) u[j] = _mm512_fmadd_ps(u[j], _mm512_fnmadd_ps(p[j], u[j], one), u[j]);
  for (int j = 0; j < n; j++) x[j] = _mm512_maskz_mul_ps(live[j], x[j], u[j]);
}

/* Swish over `rows` rows of `lanes` floats (at most 16) at a stride of ld floats, in place, four
 * rows at a time: the AVX-512 swish as a pass for kernels whose tiles are AVX2's (the GEMM's
 * panels and the stem's rows on Zen 4, gemm.c and stem_avx2.c), which then swish as the
 * depthwise kernels do. */
static inline EN_TARGET_AVX512 void en_swish_rows_avx512(float *o, int64_t rows, int64_t ld,
                                                        int lanes) {
  __mmask16 m = (__mmask16)((1u << lanes) - 1);
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4, o += 4 * ld) {
    __m512 v[4];
    for (int j = 0; j < 4; j++) v[j] = _mm512_maskz_loadu_ps(m, o + j * ld);
    en_swish_avx512(v, 4);
    for (int j = 0; j < 4; j++) _mm512_mask_storeu_ps(o + j * ld, m, v[j]);
  }
  for (; r < rows; r++, o += ld) {
    __m512 v[1] = {_mm512_maskz_loadu_ps(m, o)};
    en_swish_avx512(v, 1);
    _mm512_mask_storeu_ps(o, m, v[0]);
  }
}

static inline EN_TARGET_AVX2 void en_swish_avx2(__m256 *x, int n) {
  /* 1.5 x 2^23 + 127: adding it rounds to an integer, k + 127 in t's low mantissa bits */
  __m256 one = _mm256_set1_ps(1.0f), shifter = _mm256_set1_ps(12582912.0f + 127.0f);
  __m256 u[4], t[4], p[4];
  /* x <= 87 only (NaN: 87, the final x / d stays NaN); below about -88 the exponent field
   * saturates instead (below), where a second clamp at -87 made swish(-1e30) -1.6e-8 */
  for (int j = 0; j < n; j++) u[j] = _mm256_min_ps(x[j], _mm256_set1_ps(87.0f));
  /* k = round(-u / ln 2) by the 1.5 x 2^23 trick: t's low mantissa bits hold k + 127 */
  for (int j = 0; j < n; j++)
    t[j] = _mm256_fmadd_ps(u[j], _mm256_set1_ps(-1.44269504088896341f), shifter);
  /* u + k ln 2 with ln 2 rounded to float, one multiply-add where a split constant took two:
   * the error, k times 1.9e-9, is under half an ulp of e^-u for |k| < 16 (|x| < 11) and 2.4e-7
   * at k = 126, where swish is below 1e-36 (max error over [-100, 100] 5.5 ulp, was 3.7, all
   * of it in that tail; tests/test_kernels.c bounds it at 4e-7 relative) */
  for (int j = 0; j < n; j++)
    u[j] = _mm256_fmadd_ps(_mm256_sub_ps(t[j], shifter), _mm256_set1_ps(0.693147180559945f),
                           u[j]);
  /* e^-u, |u| <= ln2 / 2: degree-5 minimax (relative error 7.5e-8, 2.1e-7 in float: no worse
   * than the degree-6 Taylor polynomial of vexp.h), odd coefficients negated */
  for (int j = 0; j < n; j++)
    p[j] = _mm256_fmadd_ps(_mm256_set1_ps(-8.29764735e-3f), u[j], _mm256_set1_ps(4.19154316e-2f));
  for (int j = 0; j < n; j++) p[j] = _mm256_fmadd_ps(p[j], u[j], _mm256_set1_ps(-1.66675746e-1f));
  for (int j = 0; j < n; j++) p[j] = _mm256_fmadd_ps(p[j], u[j], _mm256_set1_ps(4.99988943e-1f));
  for (int j = 0; j < n; j++) p[j] = _mm256_fmadd_ps(p[j], u[j], _mm256_set1_ps(-9.99999702e-1f));
  for (int j = 0; j < n; j++) p[j] = _mm256_fmadd_ps(p[j], u[j], _mm256_set1_ps(1.00000012f));
  /* 2^k = bits(t) << 23 with k + 127 at most 255 (an integer min on t's bits, which order as
   * the floats do while positive): below about -88 2^k is infinite and swish(x) = x / inf = -0
   * (-inf: NaN, as -inf * sigmoid(-inf)); the shift drops all but the low 9 bits of k + 127,
   * at least 1 after the clamp to 87 */
  __m256i top = _mm256_set1_epi32(0x4B400000 + 255);
  for (int j = 0; j < n; j++) {
    __m256i e = _mm256_slli_epi32(_mm256_min_epi32(_mm256_castps_si256(t[j]), top), 23);
    p[j] = _mm256_fmadd_ps(p[j], _mm256_castsi256_ps(e), one); /* d */
  }
  /* a true divide: one operation where a reciprocal estimate and two Newton steps take six;
   * the 256-bit divider (throughput one per 3.5-5 cycles on Zen2/Intel) runs beside the ~12
   * other operations, which take longer on two vector ports. Measured, in-process A/B, B0 224
   * one thread, EFFNET_ISA=avx2: 0.90-0.94 of the time with the estimate (AVX-512's 512-bit
   * divide, one per 8-10 cycles, would be the bottleneck there: neutral, not used). */
  for (int j = 0; j < n; j++) x[j] = _mm256_div_ps(x[j], p[j]);
}

/* 8-float AVX2 registers with n of their lanes used (lanes [0, n), n <= 8; en_load8 / en_store8
 * read and write only those). */
static inline EN_TARGET_AVX2 __m256i en_lane_mask8(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline EN_TARGET_AVX2 __m256 en_load8(const float *p, int n, __m256i mask) {
  return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
}

static inline EN_TARGET_AVX2 void en_store8(float *p, __m256 v, int n, __m256i mask) {
  if (n >= 8) _mm256_storeu_ps(p, v);
  else if (n > 0) _mm256_maskstore_ps(p, mask, v);
}

/* An epilogue's activation on n registers; swish two at a time: beside 12 live accumulators
 * (the AVX2 GEMM and stem tiles), four at once (three temporaries each) spill to the stack (B0
 * 224 1T, in-process A/B: pairs 0.93-0.95 of the time of fours, threes no better). */
static inline EN_TARGET_AVX2 void en_act_avx2(__m256 *v, int n, en_act act) {
  if (act == EN_ACT_SWISH) {
    for (int j = 0; j < n; j += 2) en_swish_avx2(v + j, n - j < 2 ? n - j : 2);
  } else if (act == EN_ACT_RELU6) {
    for (int j = 0; j < n; j++)
      v[j] = _mm256_min_ps(_mm256_max_ps(v[j], _mm256_setzero_ps()), _mm256_set1_ps(6.0f));
  } else if (act != EN_ACT_NONE) {
    for (int j = 0; j < n; j++) {
      float t[8];
      _mm256_storeu_ps(t, v[j]);
      for (int l = 0; l < 8; l++) t[l] = en_activate(t[l], act);
      v[j] = _mm256_loadu_ps(t);
    }
  }
}

/* n en_vec in place (not by value: if one of these ever stayed a call from code compiled for
 * another ISA, a 16-float vector would be passed differently on each side). */
static inline EN_TARGET_AVX512 void en_vswish_avx512(en_vec *v, int n) {
  __m512 x[4];
  memcpy(x, v, (size_t)n * sizeof *v);
  en_swish_avx512(x, n);
  memcpy(v, x, (size_t)n * sizeof *v);
}

/* AVX2: a 16-float vector is two registers, 16 in all: two vectors at a time (an 8-float one
 * is one register) */
static inline EN_TARGET_AVX2 void en_vswish_avx2(en_vec *v, int n) {
#if EN_LANES == 8
  /* vector casts, not memcpy: GCC copied the (4-byte aligned) vectors through general
   * registers, about 10 operations per vector after every swish */
  __m256 h[4];
  for (int j = 0; j < n; j++) h[j] = (__m256)v[j];
  en_swish_avx2(h, n);
  for (int j = 0; j < n; j++) v[j] = (en_vec)h[j];
#else
  for (int i = 0; i < n; i += 2) {
    int m = n - i < 2 ? n - i : 2;
    __m256 h[4];
    memcpy(h, v + i, (size_t)m * sizeof *v);
    en_swish_avx2(h, 2 * m);
    memcpy(v + i, h, (size_t)m * sizeof *v);
  }
#endif
}
#endif

/* ReLU6 of n en_vec in place as min(6, max(0, x)): the operand order keeps NaN NaN, as the
 * scalar form does (x86's min and max return their second operand when one is NaN). The
 * generic path's per-lane loop cost the depthwise kernels of EfficientNet-Lite (ReLU6 where
 * B0-B7 have the swish) half their time. */
static inline EN_TARGET_AVX512 void en_vrelu6_avx512(en_vec *v, int n) {
  for (int j = 0; j < n; j++) {
    __m512 x;
    memcpy(&x, v + j, sizeof x);
    x = _mm512_min_ps(_mm512_set1_ps(6.0f), _mm512_max_ps(_mm512_setzero_ps(), x));
    memcpy(v + j, &x, sizeof x);
  }
}

static inline EN_TARGET_AVX2 void en_vrelu6_avx2(en_vec *v, int n) {
  for (int j = 0; j < n; j++) {
    __m256 h[EN_LANES / 8];
    memcpy(h, v + j, sizeof h);
    for (int l = 0; l < EN_LANES / 8; l++)
      h[l] = _mm256_min_ps(_mm256_set1_ps(6.0f), _mm256_max_ps(_mm256_setzero_ps(), h[l]));
    memcpy(v + j, h, sizeof h);
  }
}

/* en_vstore_from for code compiled once per ISA: one masked store on AVX-512, where the generic
 * one extracts and stores lane by lane (the shifted last block of a ragged channel count, such
 * as B3's 24 and 40; AVX2's 8-lane blocks never need it at EfficientNet's channel counts). */
#if EN_X86_TARGETS
static inline EN_TARGET_AVX512 void en_vstore_from_avx512(float *p, en_vec v, int skip,
                                                          int lanes) {
#if EN_LANES == 16
  _mm512_mask_storeu_ps(p, (__mmask16)(((1u << lanes) - 1) & ~((1u << skip) - 1)), (__m512)v);
#else
  en_vstore_from(p, v, skip, lanes);
#endif
}
#endif

static inline __attribute__((always_inline)) void en_vstore_from_isa(float *p, en_vec v, int skip,
                                                                     int lanes, int isa) {
#if EN_X86_TARGETS
  if (isa == EN_ISA_AVX512 && EN_LANES == 16) {
    if (skip == 0 && lanes == EN_LANES) *(en_vec *)p = v;
    else en_vstore_from_avx512(p, v, skip, lanes);
    return;
  }
#endif
  (void)isa;
  en_vstore_from(p, v, skip, lanes);
}

/* en_vactivate of n vectors in place (n <= 4, a constant after inlining) for code compiled once
 * per ISA (isa.h): isa too is a constant there. */
static inline __attribute__((always_inline)) void en_vact_n(en_vec *v, int n, en_act act,
                                                            int isa) {
#if EN_X86_TARGETS
  int vector_act = act == EN_ACT_SWISH || act == EN_ACT_RELU6;
  if (vector_act && isa == EN_ISA_AVX512 && EN_LANES == 16) {
    act == EN_ACT_SWISH ? en_vswish_avx512(v, n) : en_vrelu6_avx512(v, n);
    return;
  }
  if (vector_act && isa == EN_ISA_AVX2) {
    act == EN_ACT_SWISH ? en_vswish_avx2(v, n) : en_vrelu6_avx2(v, n);
    return;
  }
#endif
  for (int j = 0; j < n; j++) v[j] = en_vactivate(v[j], act);
}

/* A non-temporal store of a whole vector at p (aligned to its size) for code compiled once per
 * ISA: written to memory without reading the line first and without filling the caches; a
 * plain store where the ISA has no such store here. Callers fence (en_vstream_fence) before
 * another thread may read what they stored. */
#if EN_X86_TARGETS
static inline EN_TARGET_AVX2 void en_vstream_avx2(float *p, en_vec v) {
#if EN_LANES == 8
  _mm256_stream_ps(p, (__m256)v);
#else
  *(en_vec *)p = v;
#endif
}

static inline EN_TARGET_AVX512 void en_vstream_avx512(float *p, en_vec v) {
#if EN_LANES == 16
  _mm512_stream_ps(p, (__m512)v);
#else
  *(en_vec *)p = v;
#endif
}
#endif

static inline __attribute__((always_inline)) void en_vstream(float *p, en_vec v, int isa) {
#if EN_X86_TARGETS
  if (isa == EN_ISA_AVX2 && EN_LANES == 8) {
    en_vstream_avx2(p, v);
    return;
  }
  if (isa == EN_ISA_AVX512 && EN_LANES == 16) {
    en_vstream_avx512(p, v);
    return;
  }
#endif
  *(en_vec *)p = v;
}

static inline void en_vstream_fence(void) {
#if EN_X86_TARGETS
  _mm_sfence();
#endif
}

/* en_vactivate of one vector for code compiled once per ISA (isa.h). */
static inline __attribute__((always_inline)) en_vec en_vact(en_vec v, en_act act, int isa) {
  en_vact_n(&v, 1, act, isa);
  return v;
}

#endif
