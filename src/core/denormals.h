/* Subnormal floats cost a microcode assist (~100 cycles) per operation on x86: an SE gate of
 * sigmoid(-87) = 1e-38 folded into a projection's weights makes them all subnormal, and with a
 * randomly initialised torchvision B0 the projections and depthwise convs ran 1.6x slower for
 * it (9.3 vs 5.7 ms on one thread). So the inference forward pass runs with FTZ and
 * DAZ set in MXCSR (subnormal results and inputs read as zero), as TensorFlow does on its
 * threads, on every thread of the OpenMP team, and gives each its own setting back after.
 * Every value flushed is below 1.2e-38 in magnitude (and the weights it meets are O(1)). */
#ifndef EN_DENORMALS_H
#define EN_DENORMALS_H

#include <omp.h>

enum { EN_FP_SAVED = 256 };

typedef struct en_fp_mode {
  unsigned saved[EN_FP_SAVED];
  int team;
} en_fp_mode;

#if defined(__x86_64__) || defined(__SSE2__)
#include <xmmintrin.h>
#define EN_FTZ_DAZ 0x8040u /* MXCSR bit 15 (flush to zero), bit 6 (denormals are zero) */

/* Call from outside any parallel region: sets FTZ + DAZ on the team of omp_get_max_threads()
 * threads (the calling thread is thread 0), saving each thread's MXCSR. */
static inline void en_denormals_off(en_fp_mode *m) {
  m->team = omp_get_max_threads();
#pragma omp parallel num_threads(m->team)
  {
    int t = omp_get_thread_num();
    if (t < EN_FP_SAVED) m->saved[t] = _mm_getcsr();
    _mm_setcsr(_mm_getcsr() | EN_FTZ_DAZ);
  }
}

static inline void en_denormals_back(const en_fp_mode *m) {
#pragma omp parallel num_threads(m->team)
  {
    int t = omp_get_thread_num();
    _mm_setcsr(t < EN_FP_SAVED ? m->saved[t] : _mm_getcsr() & ~EN_FTZ_DAZ);
  }
}
#else
static inline void en_denormals_off(en_fp_mode *m) { m->team = 0; }
static inline void en_denormals_back(const en_fp_mode *m) { (void)m; }
#endif

#endif
