/* Run-time choice of the fast kernels' instruction set (isa.h). */
#include "kernels/isa.h"

#include "effnet.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static int chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

int en_cpu_runs(int isa) {
#if EN_X86_TARGETS
  if (isa == EN_ISA_AVX512)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
  if (isa == EN_ISA_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return isa == EN_ISA_PORTABLE;
}

static void choose(void) {
  const char *force = getenv("EFFNET_ISA");
  int limit = !force                       ? EN_ISA_AVX512
              : !strcmp(force, "avx2")     ? EN_ISA_AVX2
              : !strcmp(force, "portable") ? EN_ISA_PORTABLE
                                           : EN_ISA_AVX512;
  chosen = limit >= EN_ISA_AVX512 && en_cpu_runs(EN_ISA_AVX512) ? EN_ISA_AVX512
           : limit >= EN_ISA_AVX2 && en_cpu_runs(EN_ISA_AVX2)   ? EN_ISA_AVX2
                                                                : EN_ISA_PORTABLE;
}

int en_isa(void) {
  pthread_once(&chosen_once, choose);
  return chosen;
}

const char *effnet_kernel_isa(void) {
  int isa = en_isa();
  return isa == EN_ISA_AVX512 ? "avx512" : isa == EN_ISA_AVX2 ? "avx2" : "portable";
}
