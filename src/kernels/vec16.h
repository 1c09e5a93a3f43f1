/* 16-float vectors (GCC vector extensions) shared by the fast kernels: one AVX-512 register, two
 * AVX2 ones, four SSE or NEON ones, so one source serves every target clone. Partial loads and
 * stores serve channel counts below 16; en_vstore_from serves the shifted last block of a ragged
 * channel count (whole-vector loads, only the new lanes stored). The type only crosses
 * always-inline helpers, never a real call, so there is no ABI at stake (-Wpsabi off). */
#ifndef EN_VEC16_H
#define EN_VEC16_H

#include <string.h>

#include "kernels/kernels.h"
#include "kernels/vexp.h"

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

#endif
