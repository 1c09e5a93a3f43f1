/* Fast depthwise convolution (NHWC): bias, activation and the squeeze-excite pooling fused into
 * the one pass that writes the output.
 *
 * The unit of work is one output row of a run of channel blocks (16 channels, a 64-byte cache
 * line per pixel; 8 on AVX2), reading its k input rows through row pointers: pointers into the
 * input image here, pointers into a ring of freshly expanded rows in the fused expand +
 * depthwise path (mbconv.c). Interior pixels (whose window never leaves the image) go eight
 * (then four) at a time, every block of the run for one group of pixels before the next group,
 * each input pixel loaded once for all outputs that read it; border pixels loop over their
 * valid taps only (depthwise_row.h).
 *
 * The whole-tensor kernel runs rows outer, every channel block of a row before the next row
 * (block by block over a whole image would read a 300 x 300 x 64 image four times). Tasks are
 * (image, row band): with fewer images than three per thread, images are split in bands, each
 * row's pooled sums kept apart and added in row order, the order a whole image adds them in.
 * Tasks go to threads by a guided schedule (a contiguous run each first, the rest to whichever
 * is free: one core of a shared machine is often slower for a while); no result depends on the
 * thread count or on which thread ran a task. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/depthwise_row.h"

int64_t en_dw_stream_least = 0;

/* The AVX-512 and portable entry points (isa.h; the AVX2 one, with 8-float vectors, is in
 * depthwise_avx2.c; 4-float vectors for the portable one ran 2.5x slower on SSE2), `target` the
 * ISA's attribute (on each function: an attribute before a macro would reach only the first);
 * flattened, as the ISA's swish cannot be always_inline and the inliner leaves it a call at
 * some sites. */
#define DW_VARIANT(target, suffix, isa)                                                      \
  target __attribute__((flatten)) static void one_row_##suffix(                              \
      float *out, const float *const *rows, const float *w, const float *bias,               \
      const en_conv_desc *d, int oy, float *pool, int i0, int i1, int from_image) {          \
    one_row(out, rows, w, bias, d, oy, pool, i0, i1, from_image, isa);                       \
  }
#if EN_X86_TARGETS
DW_VARIANT(EN_TARGET_AVX512, avx512, EN_ISA_AVX512)
#endif
DW_VARIANT(, portable, EN_ISA_PORTABLE)

/* en_fast_depthwise_row with from_image (see dw_row). With AVX-512, a last block of at most 8
 * channels (the stem outputs of B3, 40 channels, and B6, 56; the stage-1 depthwise convs of
 * B3-B5, 24) goes to the AVX2 kernel's 8-float vectors, which take half a 16-float vector's slots
 * on CPUs that run 512-bit instructions as two halves, and whose swish costs less per 8 values
 * there (vec16.h); elsewhere half the vector was masked work. Zen 4, one thread, alone: B3's
 * stem + depthwise (300 x 300 -> 150 x 150 x 40) 1.35 -> 1.21 ms, a 150 x 150 x 24 depthwise
 * 0.467 -> 0.386; in B3 (binaries alternated, 51 pairs) stem + depthwise 1.510 -> 1.391 ms,
 * stage 1's depthwise 0.480 -> 0.402, the network 0.996 of the time (two threads, one die,
 * 0.996). Those channels' swish then rounds as AVX2's does: B3's logits moved 2.5e-5 (relative
 * to the largest), 7.8e-5 from float64 torch where they were 7.5e-5. Not where the output goes
 * to memory: the AVX2 kernel would write its 8 channels with non-temporal stores (C a multiple
 * of its 8) into lines whose other channels the AVX-512 one stores plainly (C not one of 16). */
static void row_any(float *out, const float *const *rows, const float *w, const float *bias,
                    const en_conv_desc *d, int oy, float *pool, int i0, int i1, int from_image) {
#if EN_X86_TARGETS
  int isa = en_isa(), blocks = (d->cin + LANES - 1) / LANES;
  if (isa == EN_ISA_AVX512 && i1 == blocks && i1 > i0 && d->cin - (i1 - 1) * LANES <= 8 &&
      !output_in_memory(d)) {
    if (i1 - 1 > i0) one_row_avx512(out, rows, w, bias, d, oy, pool, i0, i1 - 1, from_image);
    return en_depthwise_row_avx2(out, rows, w, bias, d, oy, pool, i1 - 1, i1, from_image);
  }
  if (isa == EN_ISA_AVX512)
    return one_row_avx512(out, rows, w, bias, d, oy, pool, i0, i1, from_image);
  if (isa == EN_ISA_AVX2)
    return en_depthwise_row_avx2(out, rows, w, bias, d, oy, pool, i0, i1, from_image);
#endif
  one_row_portable(out, rows, w, bias, d, oy, pool, i0, i1, from_image);
}

/* Rows [y0, y1) of image b, channel blocks [i0, i1), straight from the input image; pool:
 * the image's (C) sums, or with row_pool set each row's own (C) sums at pool + oy C. */
static void image_rows(float *out, const float *in, const float *w, const float *bias,
                       const en_conv_desc *d, int b, int y0, int y1, int i0, int i1,
                       float *pool, int row_pool) {
  const float *rows[EN_MAX_KERNEL];
  const float *img = in + (int64_t)b * d->h * d->w * d->cin;
  for (int oy = y0; oy < y1; oy++) {
    int iy0 = oy * d->stride - d->pad_top;
    for (int ky = 0; ky < d->kernel; ky++) {
      int iy = iy0 + ky;
      rows[ky] = iy >= 0 && iy < d->h ? img + (int64_t)iy * d->w * d->cin : NULL;
    }
    row_any(out + (((int64_t)b * d->oh + oy) * d->ow) * d->cin, rows, w, bias, d, oy,
            pool && row_pool ? pool + (int64_t)oy * d->cin : pool, i0, i1, 1);
  }
}

void en_fast_depthwise(float *out, const float *in, const float *w, const float *bias,
                       const en_conv_desc *d, float *pool) {
  if (d->kernel > EN_MAX_KERNEL) {
    en_kernels_ref.depthwise(out, in, w, bias, d, pool);
    return;
  }
  if (en_fast_depthwise_small(out, in, w, bias, d, pool)) return;
  int threads = omp_get_max_threads(), blocks = (d->cin + LANES - 1) / LANES;
  int bands = threads == 1 || d->n >= 3 * threads ? 1 : (3 * threads + d->n - 1) / d->n;
  if (bands > d->oh) bands = d->oh;
  int64_t per_image = (int64_t)d->oh * d->cin;
  float *sums = NULL; /* (n, oh, C): each row's pooled sums, when images are split in bands */
  if (pool && bands > 1 && !(sums = calloc((size_t)(d->n * per_image), sizeof *sums)))
    bands = 1; /* no memory for them: whole images, fewer tasks */
  if (pool) memset(pool, 0, (size_t)d->n * d->cin * sizeof *pool);
  int64_t tasks = (int64_t)d->n * bands;
  /* guided: contiguous bands first, the rest to whichever thread is free */
#pragma omp parallel for schedule(guided) if (threads > 1 && tasks > 1)
  for (int64_t task = 0; task < tasks; task++) {
    int b = (int)(task / bands), part = (int)(task % bands);
    int y0 = (int)((int64_t)d->oh * part / bands), y1 = (int)((int64_t)d->oh * (part + 1) / bands);
    float *s = !pool ? NULL : sums ? sums + b * per_image : pool + (int64_t)b * d->cin;
    image_rows(out, in, w, bias, d, b, y0, y1, 0, blocks, s, sums != NULL);
  }
  if (sums) { /* rows in order, as image_rows adds them into one image's sums */
    for (int b = 0; b < d->n; b++)
      for (int oy = 0; oy < d->oh; oy++)
        for (int c = 0; c < d->cin; c++)
          pool[(int64_t)b * d->cin + c] += sums[b * per_image + (int64_t)oy * d->cin + c];
    free(sums);
  }
}

/* One output row, every channel, from k input row pointers (rows[ky]: pixel 0, channel 0 of the
 * row read by tap ky; NULL outside the image); pool (C), when not NULL, accumulates the row's
 * outputs. Used by the fused expand + depthwise path. */
void en_fast_depthwise_row(float *out, const float *const *rows, const float *w,
                           const float *bias, const en_conv_desc *d, int oy, float *pool, int i0,
                           int i1) {
  row_any(out, rows, w, bias, d, oy, pool, i0, i1, 0);
}
