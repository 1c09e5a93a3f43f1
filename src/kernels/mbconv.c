/* The front of an MBConv block fused: expand 1x1 (+ bias + act) and depthwise (+ bias + act +
 * SE pooling) without the expanded tensor ever leaving the cache.
 *
 * In early stages the expanded tensor is megabytes (B0: 112 x 112 x 96 floats = 4.8 MB); written
 * by the expand GEMM and read back by the depthwise conv, it makes both memory-bound, and two
 * cores share one memory bus. Here each thread owns a band of output rows of one image (or, when
 * threads share an image, a group of its channels: see choose_split) and keeps a
 * ring of the last k expanded rows: before output row oy it expands the input rows that row
 * needs and that the ring lacks (one GEMM over that row's pixels, on the calling thread), then
 * runs the depthwise row from the ring. A band recomputes only the k - stride rows it shares with
 * the band above. SE pooling sums are kept per thread and added in thread order (each image's
 * channel has one writer), or, for images in bands, per row and added in row order.
 *
 * The same rings serve the stem and the first block's depthwise conv (EfficientNet's first block
 * has no expand): the ring rows are the stem's output rows (its direct row kernel, stem.c), so
 * the stem's output, the largest tensor of the network after the expanded ones (B0: 112 x 112 x
 * 32 floats, 1.6 MB), is never written out and read back. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

/* How one call is split: each image in `bands` row bands and each band in `groups` runs of
 * output panels (channel groups). With fewer images than threads an image must be shared:
 * channel groups recompute nothing and each reads only its part of the expand weights, where
 * row bands recompute the k - stride expanded rows each band shares with the one above. Groups
 * were once faster even where they come out unequal (B0's 9-panel stage 2 in groups of 5 and
 * 4): at batch 1 on two threads, Zen 3, the whole B0 ran 8-25 % and B3 27 % faster with groups
 * than with bands (same process, alternating runs), before the tensors were centred in their
 * buffers and the GEMMs' rows split in order (en_plan_place). Now bands where they recompute
 * little and fit in half the L2 (EN_BAND_RECOMPUTE), groups elsewhere, and bands for images
 * with too few panels for two per thread. */
typedef struct split {
  int bands, groups;
} split;

/* Where the depthwise conv's input rows come from: the expand GEMM of the block's input rows
 * (x (n, h, w, cin), w its packed weights, b its bias), or, with stem set, the stem's dense conv
 * of the NHWC image x (stem: its descriptor, row: its direct row kernel; w, b: its packed
 * weights and bias), which computes every channel of a row at once (no channel groups). */
typedef struct source {
  const float *x, *w, *b;
  int cin;
  const en_conv_desc *stem;
  en_dense_row_fn row;
} source;

/* Input row y of image b of the depthwise conv, channels of panels [p0, p1), into dst (the
 * image's columns of a ring row). */
static void fill_row(float *dst, const source *s, const en_conv_desc *d, int b, int y, int p0,
                     int p1) {
  if (s->stem) {
    const en_conv_desc *sd = s->stem;
    s->row(dst, s->x + (int64_t)b * sd->h * sd->w * sd->cin, s->w, s->b, sd, y);
    return;
  }
  en_fast_gemm_panels(dst, s->x + (((int64_t)b * d->h + y) * d->w) * s->cin, s->w, s->b, d->w,
                      s->cin, d->cin, d->act, p0, p1);
}

/* Pixels in a ring row: the image row with zero columns on either side (pad_left on the left,
 * as many on the right as the last window needs), so that every output pixel's window lies
 * inside the row and the depthwise row kernel takes its four-pixel interior path for all of
 * them: at 19 pixels a row (B3's 19 x 19 stages, k 5) its one-pixel border path covered 7 of
 * 19 and cost as much as the other 12. */
static int ring_width(const en_conv_desc *d) {
  int need = (d->ow - 1) * d->stride + d->kernel; /* padded columns the last window reaches */
  return need > d->pad_left + d->w ? need : d->pad_left + d->w;
}

/* Row bands where they recompute at most this share (percent) of the expanded rows ((k -
 * stride) rows for each band after the first) and where one thread's ring and expand weights
 * (in x mid floats) fit in half the L2, as channel groups halve both. Bands keep each thread on
 * its own part of the image, as the GEMMs before and after them do (gemm.c's rows_static;
 * en_plan_place), where channel groups read every pixel of an input that the other thread
 * wrote half of, and write every pixel's lines in turns. B0 224 batch 1 on two threads,
 * variant loops tagged by the hand-off, Zen 4 (with the GEMMs' static rows and the centred
 * tensors): stages 2-4's fused blocks 1.21 against 1.26 ms with both vCPUs on one die, 1.64
 * against 2.05 on two dies (B0's blocks recompute 1-14 %, rings and weights up to 188 KiB; B3's
 * up to 358 KiB). B7 600's (0.6-2.3 MB of ring and weights) lost with bands on one die: the fused
 * blocks 163 against 154 ms, the whole network 432 against 419 (6-7 processes each); on two dies
 * level (177 against 175 ms, 33-34). */
#define EN_BAND_RECOMPUTE 15

/* Channel groups, run one after another, for an image that one thread computes alone and whose
 * expand weights outgrow a quarter of the L2: with every channel at once each row's expand
 * streams all the weights while the ring holds k rows of every channel (B7 600's 38 x 38 x 224
 * -> 1344 k5: 1.2 MB of weights and 1.1 MB of ring for a 1 MiB L2), so the weights and the ring
 * rows come back from L3 for every row. Groups of a quarter of the L2 each (weights and ring),
 * the input rows read once per group. Zen 4, one thread, caches flushed before each call, one
 * process alternating the sizes (medians of 20-30 calls): that block 11.83 -> 11.39 ms (groups
 * of 1200 KiB 12.09, 800 KiB 12.06, 400 KiB 11.67, 150 KiB 11.49), B5 456's 29 x 29 x 176 ->
 * 1056 k5 4.76 -> 4.43; in the network, one thread, B7's stage 5 0.96-0.99 of its time. Wide
 * rows with small weights lost (B7's 150 x 150 x 48 -> 288 blocks 1.06 with groups of 400
 * KiB), hence the weights' test; two threads sharing an image by groups of their own gained
 * nothing from more of them (B7's stage 5 53.9 against 54.5 ms). */
static int l2_groups(const en_conv_desc *d, int groups_ok, int in_ch) {
  int64_t quarter = en_l2_bytes() / 4, floats = (int64_t)d->kernel * ring_width(d) + in_ch;
  int panels = (d->cin + EN_GEMM_PANEL - 1) / EN_GEMM_PANEL;
  if (!groups_ok || (int64_t)in_ch * d->cin * (int64_t)sizeof(float) <= quarter) return 1;
  int64_t want = (floats * d->cin * (int64_t)sizeof(float) + quarter - 1) / quarter;
  /* two or more panels per group (see choose_split) */
  return (int)(want < panels / 2 ? want : panels / 2 > 1 ? panels / 2 : 1);
}

static split choose_split(const en_conv_desc *d, int threads, int groups_ok, int in_ch) {
  split s = {1, 1};
  if (d->n >= threads) {
    s.groups = l2_groups(d, groups_ok, in_ch);
    return s;
  }
  int share = (threads + d->n - 1) / d->n, panels = (d->cin + EN_GEMM_PANEL - 1) / EN_GEMM_PANEL;
  int64_t hot = ((int64_t)d->kernel * ring_width(d) + in_ch) * d->cin * (int64_t)sizeof(float);
  if ((int64_t)(d->kernel - d->stride) * (share - 1) * 100 <= (int64_t)EN_BAND_RECOMPUTE * d->h &&
      hot <= en_l2_bytes() / 2)
    groups_ok = 0;
  /* two or more panels per group: the last group then holds the panel before a ragged last one,
   * which the depthwise conv's last channel block reads (kernels.h) */
  if (groups_ok && panels >= 2 * share) s.groups = share;
  else s.bands = share > d->oh ? d->oh : share;
  return s;
}

/* Floats between one thread's part of the scratch and the next one's: a page, so that no stream
 * the hardware prefetcher follows in one thread's ring and sums reaches the next thread's ring,
 * which that thread keeps writing (the prefetcher stops at the end of a page). B0's 28 x 28 x 40
 * -> 240 block alone on two threads in row bands, on two dies: the second thread's band 151 ->
 * 141 us, the call 152 -> 142 (61-62 processes each); B0 224 batch 1 on two threads, process
 * pairs tagged by the hand-off: 0.999 of the time on one die (256), 0.991 on two (100); B3
 * 0.998 and 0.996. */
#define RING_GAP 1024

size_t en_expand_depthwise_scratch(const en_conv_desc *d, int threads) {
  /* ring of k rows of the expanded tensor, pooled sums for every image, the gap; a multiple of
   * 16 floats, so that every thread's ring starts on a cache line */
  size_t part = (size_t)d->kernel * ring_width(d) * d->cin + (size_t)d->n * d->cin + RING_GAP;
  return (size_t)threads * ((part + 15) / 16 * 16);
}

/* Zeroes the padding columns of the k ring rows (the expand GEMM writes only the image's). */
static void zero_ring_padding(float *ring, const en_conv_desc *d) {
  int width = ring_width(d), mid = d->cin, right = width - d->pad_left - d->w;
  for (int slot = 0; slot < d->kernel; slot++) {
    float *row = ring + (size_t)slot * width * mid;
    memset(row, 0, (size_t)d->pad_left * mid * sizeof(float));
    memset(row + (size_t)(d->pad_left + d->w) * mid, 0, (size_t)right * mid * sizeof(float));
  }
}

/* Output rows [y0, y1) of image b, expanded channels in panels [p0, p1). ring: k rows of
 * (ring_width, mid), padding zeroed (only this group's columns are written and read); pool:
 * (n, mid) of this thread, or with row_pool set (n, oh, mid), each row's own sums. */
static void band(float *out, float *pool, int row_pool, const source *src, const float *dw,
                 const float *db, const en_conv_desc *d, int b, int y0, int y1, int p0, int p1,
                 float *ring) {
  int k = d->kernel, mid = d->cin;
  int64_t row_floats = (int64_t)ring_width(d) * mid, left = (int64_t)d->pad_left * mid;
  en_conv_desc padded = *d; /* the depthwise conv as the ring rows present it */
  padded.w = ring_width(d);
  padded.pad_left = 0;
  const float *rows[EN_MAX_KERNEL];
  int next = -1; /* first input row not yet expanded into the ring */
  for (int oy = y0; oy < y1; oy++) {
    int iy0 = oy * d->stride - d->pad_top;
    int lo = iy0 < 0 ? 0 : iy0, hi = iy0 + k < d->h ? iy0 + k : d->h; /* rows needed */
    if (next < lo) next = lo;
    for (; next < hi; next++)
      fill_row(ring + (next % k) * row_floats + left, src, d, b, next, p0, p1);
    for (int ky = 0; ky < k; ky++) {
      int iy = iy0 + ky;
      rows[ky] = iy >= 0 && iy < d->h ? ring + (iy % k) * row_floats : NULL;
    }
    float *sums = !pool ? NULL
                  : row_pool ? pool + ((int64_t)b * d->oh + oy) * mid
                             : pool + (int64_t)b * mid;
    en_fast_depthwise_row(out + (((int64_t)b * d->oh + oy) * d->ow) * mid, rows, dw, db,
                          &padded, oy, sums, p0, p1);
  }
}

/* The depthwise conv d over rows from src, rings in scratch (en_expand_depthwise_scratch). */
static void fused(float *out, float *pool, const source *src, const float *dw, const float *db,
                  const en_conv_desc *d, float *scratch) {
  int threads = omp_get_max_threads(), mid = d->cin;
  int panels = (mid + EN_GEMM_PANEL - 1) / EN_GEMM_PANEL;
  split sp = choose_split(d, threads, !src->stem, src->cin);
  size_t per_thread = en_expand_depthwise_scratch(d, 1);
  int64_t tasks = (int64_t)d->n * sp.bands * sp.groups;
  int used = tasks < threads ? (int)tasks : threads;
  /* images in bands: each row's sums apart, added in row order afterwards (the order of a
   * whole image), so that no pooled sum depends on the thread count */
  float *rows = pool && sp.bands > 1 ? calloc((size_t)d->n * d->oh * mid, sizeof *rows) : NULL;
  /* (no memory for them: per-thread sums in thread order, which may differ by a rounding) */
#pragma omp parallel num_threads(used) if (used > 1)
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    float *ring = scratch + (size_t)t * per_thread;
    float *my_pool = ring + (size_t)d->kernel * ring_width(d) * mid;
    zero_ring_padding(ring, d);
    if (pool) memset(my_pool, 0, (size_t)d->n * mid * sizeof(float));
    for (int64_t task = tasks * t / nt; task < tasks * (t + 1) / nt; task++) {
      int b = (int)(task / (sp.bands * sp.groups)), rest = (int)(task % (sp.bands * sp.groups));
      int part = rest / sp.groups, g = rest % sp.groups;
      int y0 = (int)((int64_t)d->oh * part / sp.bands);
      int y1 = (int)((int64_t)d->oh * (part + 1) / sp.bands);
      band(out, rows ? rows : pool ? my_pool : NULL, rows != NULL, src, dw, db, d, b, y0, y1,
           panels * g / sp.groups, panels * (g + 1) / sp.groups, ring);
    }
#pragma omp barrier
    /* pooled sums: thread-order sum, each thread reducing a slice of (n, mid); every image's
     * channel has one writer, so that sum adds zeros to it */
    if (pool && !rows) {
      int64_t total = (int64_t)d->n * mid;
#pragma omp for schedule(static)
      for (int64_t i = 0; i < total; i++) {
        float acc = 0.0f;
        for (int u = 0; u < nt; u++)
          acc += scratch[(size_t)u * per_thread + (size_t)d->kernel * ring_width(d) * mid + i];
        pool[i] = acc;
      }
    }
  }
  if (rows) {
    memset(pool, 0, (size_t)d->n * mid * sizeof *pool);
    for (int b = 0; b < d->n; b++)
      for (int oy = 0; oy < d->oh; oy++)
        for (int c = 0; c < mid; c++)
          pool[(int64_t)b * mid + c] += rows[((int64_t)b * d->oh + oy) * mid + c];
    free(rows);
  }
}

void en_fast_expand_depthwise(float *out, float *pool, const float *x, int cin, const float *ew,
                              const float *eb, const float *dw, const float *db,
                              const en_conv_desc *d, float *expanded, float *scratch) {
  if (d->kernel > EN_MAX_KERNEL) {
    en_kernels_ref.expand_depthwise(out, pool, x, cin, ew, eb, dw, db, d, expanded, scratch);
    return;
  }
  source src = {x, ew, eb, cin, NULL, NULL};
  fused(out, pool, &src, dw, db, d, scratch);
}

size_t en_stem_depthwise_scratch(const en_conv_desc *sd, const en_conv_desc *d, int threads) {
  size_t rings = en_expand_depthwise_scratch(d, threads), patches = en_conv_scratch_floats(sd);
  return rings > patches ? rings : patches;
}

void en_fast_stem_depthwise(float *out, float *pool, const float *img, const float *sw,
                            const float *sb, const en_conv_desc *sd, const float *dw,
                            const float *db, const en_conv_desc *d, float *stem_out,
                            float *scratch) {
  en_dense_row_fn row = en_fast_dense_row(sd);
  if (!row || d->kernel > EN_MAX_KERNEL) { /* the stem's output written out in full */
    en_fast_dense(stem_out, img, sw, sb, sd, scratch);
    en_fast_depthwise(out, stem_out, dw, db, d, pool);
    return;
  }
  source src = {img, sw, sb, sd->cin, sd, row};
  fused(out, pool, &src, dw, db, d, scratch);
}
