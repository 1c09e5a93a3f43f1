/* The instruction set the fast kernels run with, detected once per process: AVX-512 (F, VL, DQ,
 * BW), AVX2 + FMA, or portable C. EFFNET_ISA=avx2|portable forces a narrower one, so the tests
 * exercise every path on any machine (tests/test_isa.sh).
 *
 * A kernel that wants ISA-specific code is written once as always-inline helpers taking the ISA
 * as a constant, and compiled into one function per ISA with EN_TARGET_AVX512 / EN_TARGET_AVX2
 * (gcc's per-function target attribute); a dispatcher picks by en_isa(). Unlike target_clones,
 * the helpers then know which ISA they are compiled for, so they can use its own instructions
 * (vec16.h: the swish of en_vact). */
#ifndef EN_ISA_H
#define EN_ISA_H

#include <stdint.h>

enum { EN_ISA_PORTABLE = 0, EN_ISA_AVX2 = 256, EN_ISA_AVX512 = 512 };

int en_isa(void);
/* The instruction set of the dense kernels (the GEMM micro-kernel and the stem): en_isa(), but
 * AVX2 where the CPU splits 512-bit instructions in two (AMD Zen 4), whose AVX2 tiles run
 * faster there; EFFNET_DENSE_ISA=avx512|avx2|portable forces one (never wider than en_isa()). */
int en_dense_isa(void);
/* The GEMM's for a product of `rows` rows without an activation (gemm.c): en_dense_isa()'s,
 * but AVX-512's for fewer than EN_GEMM_FEW_ROWS on the CPUs where the dense kernels default to
 * AVX2 (not when forced). */
#define EN_GEMM_FEW_ROWS 64
int en_gemm_isa(int64_t rows);
/* Whether the AVX-512 swish ends with a true divide rather than vrcp14ps and a Newton step
 * (vec16.h): set with the ISA (en_isa(), before any kernel runs), on the CPUs that split 512-bit
 * instructions in two (AMD Zen 4); EFFNET_SWISH=divide|estimate forces it. Read in the
 * kernels' inner loops, hence a variable. */
extern int en_swish_divides;
/* whether this CPU runs the kernels of `isa` (whatever EFFNET_ISA says) */
int en_cpu_runs(int isa);

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define EN_X86_TARGETS 1
#define EN_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
#define EN_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define EN_X86_TARGETS 0
#endif

#endif
