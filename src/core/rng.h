/* Counter-based random numbers: every draw is a pure function of (seed, stream, counter), so
 * a sample's augmentation, a step's dropout mask or an epoch's data order does not depend on
 * what ran before it. That makes training reproducible across thread counts and makes resume
 * exact: nothing but the step number has to be restored. SplitMix64 finaliser (Steele et al.,
 * "Fast splittable pseudorandom number generators", 2014). */
#ifndef EN_RNG_H
#define EN_RNG_H

#include <stdint.h>

static inline uint64_t en_mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* 64 random bits for (seed, stream, counter). */
static inline uint64_t en_rng_bits(uint64_t seed, uint64_t stream, uint64_t counter) {
  return en_mix64(en_mix64(en_mix64(seed) ^ stream) ^ counter);
}

/* Uniform in [0, 1) with 24 random bits (exactly representable as float). */
static inline float en_rng_uniform(uint64_t seed, uint64_t stream, uint64_t counter) {
  return (float)(en_rng_bits(seed, stream, counter) >> 40) * (1.0f / 16777216.0f);
}

/* A sequential generator for code that draws many numbers (an augmentation, a shuffle). */
typedef struct en_rng { uint64_t state; } en_rng;

static inline en_rng en_rng_make(uint64_t seed, uint64_t stream, uint64_t counter) {
  en_rng r = {en_rng_bits(seed, stream, counter)};
  return r;
}

static inline uint64_t en_rng_next(en_rng *r) {
  r->state += 0x9E3779B97F4A7C15ull;
  uint64_t z = r->state;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static inline float en_rng_next_uniform(en_rng *r) {
  return (float)(en_rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

/* Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; bias < n / 2^64). */
static inline uint64_t en_rng_below(en_rng *r, uint64_t n) {
  return (uint64_t)(((unsigned __int128)en_rng_next(r) * n) >> 64);
}

/* Streams: one per consumer so their numbers never collide. */
enum { EN_STREAM_INIT = 1, EN_STREAM_ORDER, EN_STREAM_AUGMENT, EN_STREAM_DROPOUT,
       EN_STREAM_DROP_PATH, EN_STREAM_SPLIT };

#endif
