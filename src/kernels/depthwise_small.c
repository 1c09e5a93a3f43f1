/* Depthwise convolution of small images (late stages: 7 x 7 to 40 x 40) one channel block (16
 * channels on AVX-512, 8 on AVX2) at a time, from a zero-padded copy of the block.
 *
 * The row kernel (depthwise.c) treats the pixels whose window leaves the image one tap at a
 * time with run-time bounds; in a 7 x 7 image with a 5 x 5 window that is every pixel, and its
 * per-row bookkeeping is paid every 7 pixels. Here the block's input is first copied into a
 * tile with zeros around it (at most EN_DW_TILE pixels of one block, on the stack), so every
 * window is whole: the taps are unrolled for k = 3 and 5 and strides 1 and 2 (constants after
 * inlining), four output pixels at a time sharing each weight vector, then activated together
 * (four swishes interleaved), stored, and summed for the SE pooling. A task is one image's
 * 16 channels (one block, or two on AVX2): no halo is recomputed and each pooled sum has one
 * writer. */
#include <omp.h>

#include "kernels/depthwise_small.h"

#if EN_X86_TARGETS
EN_TARGET_AVX512 __attribute__((flatten)) static void small_task_avx512(
    float *out, const float *img, const float *w, const float *bias, const en_conv_desc *d,
    int i, float *pool, const float *next) {
  small_task(out, img, w, bias, d, i, pool, EN_ISA_AVX512, next);
}
#endif

/* AVX-512, and AVX2 with 8-float vectors (depthwise_small_avx2.c): elsewhere a 16-float vector
 * is not one register (see vec16.h). */
int en_fast_depthwise_small(float *out, const float *in, const float *w, const float *bias,
                            const en_conv_desc *d, float *pool) {
#if EN_X86_TARGETS
  tile_shape t = shape_of(d);
  /* stride 2 copies about four input pixels per output pixel: worth it only where the row
   * kernel's rows are mostly border (B0's 14 -> 7: 57 vs 83 us; B3's 19 -> 10: 230 vs 190) */
  int isa = en_isa(), lanes = isa == EN_ISA_AVX512 ? LANES : 8;
  if ((isa != EN_ISA_AVX512 && isa != EN_ISA_AVX2) || (d->kernel != 3 && d->kernel != 5) ||
      (d->stride != 1 && (d->stride != 2 || d->ow > 8)) || (int64_t)t.rows * t.cols > EN_DW_TILE)
    return 0;
  /* a task covers 16 channels, one 64-byte line per pixel: two 8-channel AVX2 blocks in one
   * task, as otherwise two threads wrote the two halves of every output line at once (B7's
   * 19 x 19 x 3840 k3 on two threads took 3.1 ms, 1.7 ms this way; one thread: 3.2-3.5) */
  int blocks = (d->cin + lanes - 1) / lanes, per = LANES / lanes;
  int groups = (blocks + per - 1) / per;
  int64_t tasks = (int64_t)d->n * groups;
  /* contiguous runs of tasks per thread (static): a thread's next task is then the one whose
   * lines it prefetched (in-process A/B, two threads: B0 0.91-0.98 of the time, B3 0.95-0.96,
   * against a dynamic schedule) */
#pragma omp parallel for schedule(static) if (tasks > 1)
  for (int64_t task = 0; task < tasks; task++) {
    int b = (int)(task / groups), i0 = (int)(task % groups) * per;
    int i1 = i0 + per < blocks ? i0 + per : blocks;
    int64_t image = (int64_t)b * d->h * d->w * d->cin, outs = (int64_t)b * d->oh * d->ow * d->cin;
    float *sums = pool ? pool + (int64_t)b * d->cin : NULL;
    /* the next group's lines (same pixels, the next 64 bytes), during the first block */
    const float *next = i1 < blocks ? in + image + (int64_t)i1 * lanes : NULL;
    for (int i = i0; i < i1; i++) {
      const float *pf = i == i0 ? next : NULL;
      if (isa == EN_ISA_AVX512) small_task_avx512(out + outs, in + image, w, bias, d, i, sums, pf);
      else en_small_task_avx2(out + outs, in + image, w, bias, d, i, sums, pf);
    }
  }
  return 1;
#else
  (void)out, (void)in, (void)w, (void)bias, (void)d, (void)pool;
  return 0;
#endif
}
