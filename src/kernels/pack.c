/* The packed layout of 1x1 weights shared by every kernel table (kernels.h). */
#include <stdint.h>
#include <string.h>

#include "core/clones.h"
#include "kernels/kernels.h"

#define P EN_GEMM_PANEL

size_t en_gemm_packed_floats(int cin, int cout) {
  return (size_t)(cout + P - 1) / P * P * (size_t)cin;
}

/* Parallel when there is enough to share: training packs every step (src/train/tkernels.c). */
void en_gemm_pack(float *packed, const float *w, int cin, int cout) {
  int panels = (cout + P - 1) / P;
#pragma omp parallel for schedule(static) if ((int64_t)panels * cin > 16384)
  for (int p = 0; p < panels; p++)
    for (int k = 0; k < cin; k++) {
      float *dst = packed + ((size_t)p * cin + k) * P;
      for (int j = 0; j < P; j++) {
        int co = p * P + j;
        dst[j] = co < cout ? w[(size_t)co * cin + k] : 0.0f;
      }
    }
}

void en_gemm_pack_transposed(float *packed, const float *w, int cin, int cout) {
  int panels = (cin + P - 1) / P;
#pragma omp parallel for schedule(static) if ((int64_t)panels * cout > 16384)
  for (int p = 0; p < panels; p++)
    for (int k = 0; k < cout; k++) {
      float *dst = packed + ((size_t)p * cout + k) * P;
      const float *src = w + (size_t)k * cin;
      for (int j = 0; j < P; j++) {
        int ci = p * P + j;
        dst[j] = ci < cin ? src[ci] : 0.0f;
      }
    }
}

/* one panel, in clones.h's clones: a 16-float row is one AVX-512 multiply */
EN_CLONES static void scale_panel(float *dst, const float *packed, const float *scale, int cin) {
  for (int k = 0; k < cin; k++)
    for (int j = 0; j < P; j++) dst[(size_t)k * P + j] = packed[(size_t)k * P + j] * scale[k];
}

void en_gemm_pack_scaled(float *dst, const float *packed, const float *scale, int cin,
                         int cout) {
  int panels = (cout + P - 1) / P;
#pragma omp parallel for schedule(static) if (panels > 4)
  for (int p = 0; p < panels; p++)
    scale_panel(dst + (size_t)p * cin * P, packed + (size_t)p * cin * P, scale, cin);
}
