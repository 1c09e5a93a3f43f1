/* 16-float vectors (GCC vector extensions) shared by the fast kernels: one AVX-512 register, two
 * AVX2 ones, four SSE or NEON ones, so one source serves every target clone. Partial loads and
 * stores serve channel counts below 16; en_vstore_from serves the shifted last block of a ragged
 * channel count (whole-vector loads, only the new lanes stored). The type only crosses
 * always-inline helpers, never a real call, so there is no ABI at stake (-Wpsabi off). */
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

#define EN_LANES 16
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
/* swish(x) = x / (1 + exp(-x)) with the ISA's own instructions, about 18 vector operations
 * where the portable en_vswish takes ~31 (the activation costs as much as the multiply-adds
 * where the expand GEMM has few input channels): exp(-x) as vexp.h computes it, but 2^n put in
 * by vscalefps (AVX-512) or by adding to the bits the rounding trick leaves n in (AVX2), and
 * 1 / d from the hardware estimate refined by Newton steps (vrcp14ps: 2^-14, one step; vrcpps:
 * 1.5 x 2^-12, two, the first leaving 1 / 1 an ulp short), so swish(x) is exactly x once exp(-x)
 * vanishes (tests/test_kernels.c bounds both against double). -x is clamped to [-87, 87]:
 * exp stays normal, 1 + exp(-x) and its reciprocal finite (x NaN: the clamp yields a number
 * and the final x * r stays NaN). Not always_inline: they can only be inlined into functions
 * compiled for their ISA (EN_TARGET_*), which is where en_vact's constant isa leaves them. */
static inline EN_TARGET_AVX512 __m512 en_swish_avx512(__m512 x) {
  __m512 one = _mm512_set1_ps(1.0f);
  __m512 y = _mm512_sub_ps(_mm512_setzero_ps(), x);
  y = _mm512_min_ps(_mm512_max_ps(y, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(87.0f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(y, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), y);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.0f / 720.0f), r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, one);
  p = _mm512_fmadd_ps(p, r, one);
  __m512 d = _mm512_add_ps(_mm512_scalef_ps(p, n), one);
  __m512 q = _mm512_rcp14_ps(d);
  q = _mm512_fmadd_ps(q, _mm512_fnmadd_ps(d, q, one), q);
  return _mm512_mul_ps(x, q);
}

static inline EN_TARGET_AVX2 __m256 en_swish_avx2(__m256 x) {
  __m256 one = _mm256_set1_ps(1.0f), shifter = _mm256_set1_ps(12582912.0f); /* 1.5 x 2^23 */
  __m256 y = _mm256_sub_ps(_mm256_setzero_ps(), x);
  y = _mm256_min_ps(_mm256_max_ps(y, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(87.0f));
  __m256 t = _mm256_fmadd_ps(y, _mm256_set1_ps(1.44269504088896341f), shifter);
  __m256 n = _mm256_sub_ps(t, shifter); /* round(y / ln 2); t's low mantissa bits hold n */
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), y);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(1.0f / 720.0f), r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, one);
  p = _mm256_fmadd_ps(p, r, one);
  /* 2^n = (bits(t) + 127) << 23: the shift drops all but n's low 9 bits, and n + 127 is in
   * [1, 253] after the clamp */
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(127)), 23);
  __m256 d = _mm256_fmadd_ps(p, _mm256_castsi256_ps(e), one);
  __m256 q = _mm256_rcp_ps(d);
  q = _mm256_fmadd_ps(q, _mm256_fnmadd_ps(d, q, one), q);
  q = _mm256_fmadd_ps(q, _mm256_fnmadd_ps(d, q, one), q); /* a second: 1 / 1 exactly 1 */
  return _mm256_mul_ps(x, q);
}

/* In place, not by value: if one of these ever stayed a call from code compiled for another
 * ISA, a 16-float vector would be passed differently on each side (an AVX-512 register or
 * memory). */
static inline EN_TARGET_AVX512 void en_vswish_avx512(en_vec *v) {
  *v = (en_vec)en_swish_avx512((__m512)*v);
}

static inline EN_TARGET_AVX2 void en_vswish_avx2(en_vec *v) {
  __m256 h[2];
  memcpy(h, v, sizeof h);
  h[0] = en_swish_avx2(h[0]);
  h[1] = en_swish_avx2(h[1]);
  memcpy(v, h, sizeof h);
}
#endif

/* en_vactivate for code compiled once per ISA (isa.h): isa is a constant after inlining. */
static inline __attribute__((always_inline)) en_vec en_vact(en_vec v, en_act act, int isa) {
#if EN_X86_TARGETS
  if (act == EN_ACT_SWISH && isa == EN_ISA_AVX512) {
    en_vswish_avx512(&v);
    return v;
  }
  if (act == EN_ACT_SWISH && isa == EN_ISA_AVX2) {
    en_vswish_avx2(&v);
    return v;
  }
#endif
  return en_vactivate(v, act);
}

#endif
