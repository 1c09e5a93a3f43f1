/* Run-time choice of the fast kernels' instruction set (isa.h). */
#include "kernels/isa.h"

#include "effnet.h"

#if EN_X86_TARGETS
#include <cpuid.h>
#endif
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static int chosen, dense, few_rows;
int en_swish_divides;
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

/* Whether the CPU runs a 512-bit instruction as two 256-bit halves: AMD family 0x19 (Zen 3,
 * which has no AVX-512, and Zen 4). Zen 5 (0x1a) is not listed: not measured. */
static int split_512(void) {
#if EN_X86_TARGETS
  unsigned a, b, c, d;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return 0;
  int amd = b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163; /* "AuthenticAMD" */
  if (!amd || !__get_cpuid(1, &a, &b, &c, &d)) return 0;
  unsigned family = (a >> 8) & 0xf;
  if (family == 0xf) family += (a >> 20) & 0xff;
  return family == 0x19;
#else
  return 0;
#endif
}

/* "avx512", "avx2", "portable" -> the ISA; anything else (or NULL) -> `otherwise` */
static int parse(const char *name, int otherwise) {
  return !name                       ? otherwise
         : !strcmp(name, "avx512")   ? EN_ISA_AVX512
         : !strcmp(name, "avx2")     ? EN_ISA_AVX2
         : !strcmp(name, "portable") ? EN_ISA_PORTABLE
                                     : otherwise;
}

static void choose(void) {
  int limit = parse(getenv("EFFNET_ISA"), EN_ISA_AVX512);
  chosen = limit >= EN_ISA_AVX512 && en_cpu_runs(EN_ISA_AVX512) ? EN_ISA_AVX512
           : limit >= EN_ISA_AVX2 && en_cpu_runs(EN_ISA_AVX2)   ? EN_ISA_AVX2
                                                                : EN_ISA_PORTABLE;
  /* The dense kernels on Zen 4: AVX2's 6 x 16 GEMM tile and stem against the AVX-512 ones,
   * one thread, min of 20 (build/tools/bench_kernels): B0's 1x1 shapes 4.25 vs 4.98 ms in all,
   * 3136 x 96 -> 24 96 vs 46 GFLOP/s, 12544 x 32 -> 16 78 vs 58, the 49-row late shapes 2-3 %
   * slower; whole networks (three runs each) B0 0.95 (one thread) and 0.91 (two) of the time,
   * B3 0.93-0.94; the stem + first depthwise conv B3 0.89, B7 0.94-0.98, B0 the same. The
   * depthwise kernels stay AVX-512 there (AVX2's B0 1.75 vs 1.48 ms). */
  int forced = parse(getenv("EFFNET_DENSE_ISA"), -1), split = split_512();
  int want = forced >= 0 ? forced : split ? EN_ISA_AVX2 : chosen;
  dense = want < chosen ? want : chosen;
  if (dense == EN_ISA_AVX2 && !en_cpu_runs(EN_ISA_AVX2)) dense = EN_ISA_PORTABLE;
  /* GEMMs of few rows (batch-1 classifiers, B0's 7 x 7 stages) read their weights from L3 or
   * memory rather than multiply-add them: there AVX-512's tiles, four panels a step, keep the
   * lead (Zen 4, weights out of L2, min of 20: 1 x 1280 -> 1000 0.67 of AVX2's time on one
   * thread and 0.61 on two, 8 x 1280 -> 1000 0.82, 49 x 1152 -> 192 and 49 x 320 -> 1280
   * 0.96-0.97; from 64 rows even, then AVX2 ahead) */
  few_rows = split && forced < 0 && chosen == EN_ISA_AVX512 ? EN_ISA_AVX512 : dense;
  /* The AVX-512 swish's 1 / d: Zen 4 divides 16 floats in fewer cycles than it takes for the
   * estimate's three extra multiply-adds, each split in two (alone in a loop, core cycles per 8
   * values: 5.2 against 6.1); a CPU with full-width 512-bit units does the multiply-adds in half
   * the time and its 512-bit divide is slower (Intel: one per 10 cycles or so). */
  const char *swish = getenv("EFFNET_SWISH");
  en_swish_divides = swish && !strcmp(swish, "divide")     ? 1
                     : swish && !strcmp(swish, "estimate") ? 0
                                                           : split;
}

int en_isa(void) {
  pthread_once(&chosen_once, choose);
  return chosen;
}

int en_dense_isa(void) {
  pthread_once(&chosen_once, choose);
  return dense;
}

int en_gemm_isa(int64_t rows) {
  pthread_once(&chosen_once, choose);
  return rows < EN_GEMM_FEW_ROWS ? few_rows : dense;
}

static const char *name_of(int isa) {
  return isa == EN_ISA_AVX512 ? "avx512" : isa == EN_ISA_AVX2 ? "avx2" : "portable";
}

const char *effnet_kernel_isa(void) { return name_of(en_isa()); }

const char *effnet_dense_kernel_isa(void) { return name_of(en_dense_isa()); }
