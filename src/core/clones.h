/* EN_CLONES: compile a function for AVX-512 (x86-64-v4), AVX2+FMA (x86-64-v3) and baseline
 * x86-64, the loader picking the best the CPU runs (gcc's target_clones). Off under
 * AddressSanitizer (its instrumentation and ifunc resolvers do not mix) and on other compilers
 * or architectures, where the portable code is all there is. */
#ifndef EN_CLONES_H
#define EN_CLONES_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define EN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define EN_CLONES
#endif

#endif
