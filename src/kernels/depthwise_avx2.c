/* The depthwise row kernel compiled for AVX2 with 8-float vectors (see kernels/vec16.h: with
 * 16-float ones GCC keeps the accumulators in memory there): the same source as depthwise.c's,
 * on blocks of 8 channels. */
#define EN_VEC_LANES 8
#include "kernels/depthwise_row.h"

#if EN_X86_TARGETS
/* i0, i1 count blocks of 16 channels, like en_fast_depthwise_row's: here blocks 2 i0 .. 2 i1 of
 * 8 (the last 16-channel block's channels are the last one or two 8-channel blocks'). */
EN_TARGET_AVX2 __attribute__((flatten)) void en_depthwise_row_avx2(
    float *out, const float *const *rows, const float *w, const float *bias,
    const en_conv_desc *d, int oy, float *pool, int i0, int i1, int from_image) {
  int blocks = (d->cin + LANES - 1) / LANES, j1 = 2 * i1 < blocks ? 2 * i1 : blocks;
  one_row(out, rows, w, bias, d, oy, pool, 2 * i0, j1, from_image, EN_ISA_AVX2);
}
#endif
