/* The small-image depthwise kernel compiled for AVX2 with 8-float vectors (see kernels/vec16.h:
 * with 16-float ones GCC keeps them in memory there): blocks of 8 channels. */
#define EN_VEC_LANES 8
#include "kernels/depthwise_small.h"

#if EN_X86_TARGETS
EN_TARGET_AVX2 __attribute__((flatten)) void en_small_task_avx2(float *out, const float *img,
                                                                const float *w,
                                                                const float *bias,
                                                                const en_conv_desc *d, int i,
                                                                float *pool, const float *next,
                                                                const float *given, int stride) {
  small_task(out, img, w, bias, d, i, pool, EN_ISA_AVX2, next, (const en_vec *)given, stride);
}
#endif
