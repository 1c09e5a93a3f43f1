/* Which OpenBLAS kernels run, and which would suit this CPU. OpenBLAS 0.3.21 (Debian 12) does
 * not know CPUs newer than it (e.g. Sapphire Rapids) and falls back to its SSE3 "Prescott"
 * kernels: measured here, sgemm 1024^3 on one core runs at 14-28 GFLOP/s as Prescott and at
 * 86-96 GFLOP/s with OPENBLAS_CORETYPE=SkylakeX. The core is chosen when OpenBLAS loads, from
 * that variable only, so the library can report the better choice but not switch to it; the
 * CLI re-executes itself with the variable set (cli/main.c). */
#include <cblas.h>
#include <string.h>
#include <strings.h>

#include "effnet.h"

const char *effnet_blas_core(void) {
  const char *name = openblas_get_corename();
  return name ? name : "unknown";
}

/* OpenBLAS cores without AVX2: what a modern CPU gets when OpenBLAS does not recognise it. */
static int is_legacy_core(const char *name) {
  static const char *legacy[] = {"prescott", "core2", "penryn", "dunnington", "nehalem",
                                 "atom", "katmai", "coppermine", "northwood", "banias",
                                 "sandybridge", "unknown"};
  for (size_t i = 0; i < sizeof legacy / sizeof legacy[0]; i++)
    if (!strcasecmp(name, legacy[i])) return 1;
  return 0;
}

const char *effnet_blas_coretype_hint(void) {
#if defined(__x86_64__) && defined(__GNUC__)
  const char *core = effnet_blas_core();
  int skx = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
            __builtin_cpu_supports("avx512cd");
  int hsw = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (skx && (is_legacy_core(core) || !strcasecmp(core, "haswell"))) return "SkylakeX";
  if (hsw && is_legacy_core(core)) return "Haswell";
#endif
  return NULL;
}
