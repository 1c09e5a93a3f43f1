/* Depthwise convolution of small images (late stages: 7 x 7 to 40 x 40) one channel block (16
 * channels on AVX-512, 8 on AVX2) at a time, from a zero-padded copy of the block, or from the
 * block's zero-padded plane, which the expand GEMM before it wrote (en_planes, kernels.h; B0
 * 224's small depthwise convs 0.82 -> 0.71 ms without the copies, one thread, Zen 4).
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
    int i, float *pool, const float *next, const en_vec *given, int stride) {
  small_task(out, img, w, bias, d, i, pool, EN_ISA_AVX512, next, given, stride);
}
#endif

/* Whether the small kernel takes d (the ISA aside): windows of 3 and 5, stride 1, or 2 where
 * the output is at most 8 wide (stride 2 copies about four input pixels per output pixel:
 * worth it only where the row kernel's rows are mostly border; B0's 14 -> 7: 57 vs 83 us; B3's
 * 19 -> 10: 230 vs 190), and a tile of at most EN_DW_TILE pixels. */
static int small_shape(const en_conv_desc *d) {
  tile_shape t = shape_of(d);
  return (d->kernel == 3 || d->kernel == 5) && (d->stride == 1 || (d->stride == 2 && d->ow <= 8)) &&
         (int64_t)t.rows * t.cols <= EN_DW_TILE;
}

/* Planes' tiles have the columns that the kernels read, up to the last output pixel's window
 * (a whole last group of four, as the stack tile has, made B0's 14 x 14 planes 2 pixels wider:
 * 1.000 of the network's time against 0.994 with margins of their own, one thread). */
int en_planes_shape(const en_conv_desc *d, int *rows, int *cols) {
  tile_shape t = shape_of(d);
  int reach = (d->ow - 1) * d->stride + d->kernel;
  if (d->n < 1 || d->h < 1 || d->w < 1 || d->cin < 1 || d->cin % EN_PLANE_LANES ||
      d->cout != d->cin || !small_shape(d) || d->pad_top < 0 || d->pad_left < 0 ||
      t.rows < d->h + d->pad_top || reach < d->w + d->pad_left)
    return 0;
  *rows = t.rows;
  *cols = reach;
  return 1;
}

/* The tile starts dy rows and dx columns into the plane and reads rows through dy + rows - 1
 * (those from q->rows on are the next plane's top margin: at most pad_top of them) and columns
 * through dx + cols - 1 (those from q->cols on, the next row's left margin: at most pad_left). */
int en_planes_fit(const en_planes *q, const en_conv_desc *d, int64_t *offset) {
  int rows, cols, dy = q->pad_top - d->pad_top, dx = q->pad_left - d->pad_left;
  if (!en_planes_shape(d, &rows, &cols) || dy < 0 || dx < 0 || dy + rows > q->rows + q->pad_top ||
      dx + cols > q->cols + q->pad_left || q->rows < q->pad_top + d->h ||
      q->cols < q->pad_left + d->w)
    return 0;
  *offset = ((int64_t)dy * q->cols + dx) * EN_PLANE_LANES;
  return 1;
}

void en_planes_index(int64_t *at, const en_planes *q, int n, int h, int w) {
  for (int b = 0; b < n; b++)
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++, at++)
        *at = (((int64_t)b * q->rows + y + q->pad_top) * q->cols + x + q->pad_left) *
              EN_PLANE_LANES;
}

/* The planes need the depthwise kernels of AVX-512 or AVX2 to read them as tiles (AVX2's one
 * half of each 16-float pixel), and tiles of AVX2 or AVX-512 to write them (gemm.c). */
int en_fast_planes_pay(const en_conv_desc *d) {
  int rows, cols, isa = en_isa();
  return (isa == EN_ISA_AVX512 || isa == EN_ISA_AVX2) && en_dense_isa() != EN_ISA_PORTABLE &&
         en_planes_shape(d, &rows, &cols);
}

/* The kernel over in (NHWC), or with planes (in NULL) over their tiles. */
static int small_run(float *out, const float *in, const en_planes *planes, const float *w,
                     const float *bias, const en_conv_desc *d, float *pool) {
#if EN_X86_TARGETS
  int isa = en_isa(), lanes = isa == EN_ISA_AVX512 ? LANES : 8;
  if ((isa != EN_ISA_AVX512 && isa != EN_ISA_AVX2) || !small_shape(d)) return 0;
  /* a task covers 16 channels, one 64-byte line per pixel: two 8-channel AVX2 blocks in one
   * task, as otherwise two threads wrote the two halves of every output line at once (B7's
   * 19 x 19 x 3840 k3 on two threads took 3.1 ms, 1.7 ms this way; one thread: 3.2-3.5) */
  int blocks = (d->cin + lanes - 1) / lanes, per = LANES / lanes;
  int groups = (blocks + per - 1) / per;
  int64_t tasks = (int64_t)d->n * groups;
  int64_t plane = planes ? (int64_t)planes->rows * planes->cols * EN_PLANE_LANES : 0, offset = 0;
  if (planes && !en_planes_fit(planes, d, &offset)) return 0;
  /* contiguous runs of tasks per thread (static): a thread's next task is then the one whose
   * lines it prefetched (in-process A/B, two threads: B0 0.91-0.98 of the time, B3 0.95-0.96,
   * against a dynamic schedule) */
#pragma omp parallel for schedule(static) if (tasks > 1)
  for (int64_t task = 0; task < tasks; task++) {
    int b = (int)(task / groups), i0 = (int)(task % groups) * per;
    int i1 = i0 + per < blocks ? i0 + per : blocks;
    int64_t image = (int64_t)b * d->h * d->w * d->cin, outs = (int64_t)b * d->oh * d->ow * d->cin;
    float *sums = pool ? pool + (int64_t)b * d->cin : NULL;
    /* the next group's lines (same pixels, the next 64 bytes), during the first block (the
     * planes' next tile follows this one: the hardware prefetcher's) */
    const float *next = !planes && i1 < blocks ? in + image + (int64_t)i1 * lanes : NULL;
    for (int i = i0; i < i1; i++) {
      const float *pf = i == i0 ? next : NULL;
      if (planes && isa == EN_ISA_AVX512)
        small_task_avx512(out + outs, NULL, w, bias, d, i, sums, NULL,
                          (const en_vec *)(planes->data + i * planes->block + b * plane + offset),
                          planes->cols);
      else if (planes) /* block i: half i % 2 of plane i / 2 */
        en_small_task_avx2(out + outs, NULL, w, bias, d, i, sums, NULL,
                           planes->data + i / 2 * planes->block + b * plane + offset + i % 2 * 8,
                           planes->cols);
      else if (isa == EN_ISA_AVX512)
        small_task_avx512(out + outs, in + image, w, bias, d, i, sums, pf, NULL, 0);
      else en_small_task_avx2(out + outs, in + image, w, bias, d, i, sums, pf, NULL, 0);
    }
  }
  return 1;
#else
  (void)out, (void)in, (void)planes, (void)w, (void)bias, (void)d, (void)pool;
  return 0;
#endif
}

/* AVX-512, and AVX2 with 8-float vectors (depthwise_small_avx2.c): elsewhere a 16-float vector
 * is not one register (see vec16.h). */
int en_fast_depthwise_small(float *out, const float *in, const float *w, const float *bias,
                            const en_conv_desc *d, float *pool) {
  return small_run(out, in, NULL, w, bias, d, pool);
}

void en_fast_depthwise_planes(float *out, const en_planes *in, const float *w, const float *bias,
                              const en_conv_desc *d, float *pool) {
  if (en_fast_planes_pay(d) && small_run(out, NULL, in, w, bias, d, pool)) return;
  en_ref_depthwise_planes(out, in, w, bias, d, pool);
}

