/* exp for the activation epilogues, written so gcc vectorises it (libm's expf is a scalar call
 * and dominated the forward pass: swish runs on every expanded and depthwise element).
 * exp(x) = 2^n * e^r with n = round(x / ln 2), r = x - n ln 2 (ln 2 split in two so r is exact
 * to float precision), e^r by a degree-6 Taylor/minimax polynomial on |r| <= ln2/2, and 2^n put
 * straight into the exponent bits. Inputs are clamped to [-87.3, 88.7], where expf neither
 * overflows nor goes subnormal; below that the result is ~1e-38, which swish and sigmoid turn
 * into exactly the limits libm gives up to float rounding. Max relative error vs expf: see
 * tests/test_kernels.c (about 2 ulp). */
#ifndef EN_VEXP_H
#define EN_VEXP_H

#include <stdint.h>
#include <string.h>

static inline __attribute__((always_inline)) float en_vexpf(float x) {
  /* written so that NaN (weights gone to infinity) becomes -87.3 here and never reaches the
   * int conversion below; swish keeps it NaN through its numerator x, and an SE gate's NaN
   * input comes from activations that stay NaN through x * gate */
  x = x > -87.3f ? x : -87.3f;
  x = x < 88.7f ? x : 88.7f;
  /* round to nearest by the 1.5 * 2^23 trick: plain adds, so it vectorises on any SIMD */
  float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693359375f;   /* ln 2, high part (exact in float) */
  r = r - n * -2.12194440e-4f;      /* ln 2, low part */
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

/* 1 / d for d >= 1 (the denominators of sigmoid and swish) without a divide, whose vector
 * form costs 10+ cycles per register: a bit-trick first guess (12 % off) refined by three
 * Newton steps written r + r (1 - d r), each squaring the error, the last one rounding to
 * about 1 ulp (1 / 1 is exactly 1, so saturated swish is exactly x). Beyond 1e36 the result
 * is 0 (the true value is below 1e-36; the guess would leave the normal range). */
static inline __attribute__((always_inline)) float en_vrecip(float d) {
  float dd = d < 1e36f ? d : 1e36f;
  uint32_t bits;
  memcpy(&bits, &dd, sizeof bits);
  bits = 0x7EF311C3u - bits;
  float r;
  memcpy(&r, &bits, sizeof r);
  r = r + r * (1.0f - dd * r);
  r = r + r * (1.0f - dd * r);
  r = r + r * (1.0f - dd * r);
  return d < 1e36f ? r : 0.0f;
}

static inline __attribute__((always_inline)) float en_vswish(float x) {
  return x * en_vrecip(1.0f + en_vexpf(-x));
}

static inline __attribute__((always_inline)) float en_vsigmoid(float x) {
  return en_vrecip(1.0f + en_vexpf(-x));
}

#endif
