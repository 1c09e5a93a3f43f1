/* Activation arena: two ping-pong buffers for block inputs/outputs, one for the expanded
 * tensor, one for the depthwise output, plus small SE/pool/im2col areas. Sizes are the maxima
 * over the network for the given input shape, computed with overflow checks before any
 * allocation. With two threads or more the activation buffers (ping, pong, expanded, dw) hold
 * each tensor centred on their middle (en_plan_place, infer.h), and so take a few floats more
 * than their largest. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "infer/infer.h"

typedef struct plan_sizes {
  size_t ping, expanded, dw, pool, se, im2col, gate, gated_w, ring;
  size_t planes; /* bytes: the plane sets' planes and offsets (apart from the arena) */
  size_t channels; /* the most channels of any tensor (en_plan_place's margin) */
} plan_sizes;

/* Fused when the expanded tensor is too big to stay in cache between the two passes (512 KB
 * per image). B0 fused vs unfused: ~4 % faster on one thread, ~6 % on two (min of 4
 * alternations); thresholds of 200 KB to 2 MB were within noise of each other. But the fused
 * kernel runs the expand GEMM once per input row, reading its weights (in x mid floats) again
 * for every w pixels, where the unfused pair writes and reads back 2 x mid floats per pixel:
 * fused only while in <= 2 w, or in <= 8 w when the weights stay in the 2 MB L2 (rereading
 * them from there costs about a quarter of memory traffic). Measured against the neighbouring
 * choice (time of the stage's expand+depthwise, same run): B7's 19-wide stages (3.5-9.8 MB of
 * weights) 105-109 ms unfused vs 127-156 fused; B7's 38-wide stage 5 (in 224, 1.2 MB) fused
 * 104-110 vs 128-141; B3's 10-wide stage 6 (in 232, 1.3 MB) unfused 8 % faster on one thread,
 * 18 % on two (relative to the stage's projection time, machine drift). B0 keeps every fused
 * stage (14 wide, in <= 112) on that 2 MiB L2.
 * Where the fused kernel's weights and ring of k expanded rows outgrow the L2 (Zen 3: 512 KiB),
 * its per-row weight rereads come from L3, and an expanded tensor of under 1.5 MiB, which stays
 * in cache between the two passes, is cheaper unfused. Zen 3, one thread: standalone 14 x 14 x
 * 112 -> 672 k5 (301 + 242 KiB; 514 KiB expanded) unfused 0.74 of the fused time, 19 x 19 x 136
 * -> 816 k5 0.87, 28 x 28 x 40 -> 240 k5 (fits) 0.81 but in the network fused is better there;
 * 38 x 38 x 48 -> 288 k5 (1.6 MiB expanded) fused better (unfused 1.24). In the network (per-op
 * trace, 4 processes each alternated): B0's three 14 x 14 x 672 blocks 0.80-0.84 (one thread)
 * and 0.87-0.89 (two) of their time while untouched blocks drifted 0.89-1.05; B3's 19 x 19 x 816
 * blocks 0.94-1.04, neutral. */
static int fused_by_shape(const en_block *b, int h, int w) {
  int64_t expanded = (int64_t)h * w * b->mid_ch * 4, weights = (int64_t)b->in_ch * b->mid_ch * 4;
  int reread = weights <= (2 << 20) ? 1 : 4; /* cost of a weight reread, L2 = 1 */
  return b->expand != 1 && w >= 8 && expanded >= (512 << 10) && b->in_ch * reread <= 8 * w;
}

/* Narrow images (rows of at most EN_FUSE_NARROW pixels) run unfused where the fused kernel's
 * weights and ring take over half the L2 and the call's expanded tensor stays under 2 MiB: the
 * fused expand GEMM runs one image row a call, three or four tiles a panel, and with the L2 that
 * full its per-call setup and weight reloads cost more than writing the expanded tensor (in L2
 * or L3) and reading it back. In one process, paired runs alternated, Zen 3 (512 KiB L2), one
 * thread: B3 300 (four 19 x 19 x 96 -> 576 k3 blocks, 366 KiB of weights and ring) 0.985-0.988
 * of the time, two threads 0.992; B4 380 (five 24 x 24 x 112 -> 672 k3, 511 KiB) 0.951-0.979,
 * two threads 0.983; B2 260 (17 x 17) 0.989. Wider rows were not better unfused: B5 456's 29 x
 * 29 blocks neutral (0.977 paired, medians the other way), B6 528's 33 x 33 1.06, B3's 38 x 38
 * stage 1.01 against the 19 x 19 alone; nor B3's batch of 8 at once (6.6 MB expanded; 1.004
 * one thread, 0.996 two). */
#define EN_FUSE_NARROW 24

int en_fuse_front(const en_block *b, int64_t n, int h, int w) {
  int64_t expanded = (int64_t)h * w * b->mid_ch * 4, weights = (int64_t)b->in_ch * b->mid_ch * 4;
  int64_t ring = (int64_t)b->kernel * (w + b->kernel - 1) * b->mid_ch * 4;
  if (weights + ring > en_l2_bytes() && expanded < (3 << 19)) return 0;
  if (w <= EN_FUSE_NARROW && expanded < ((int64_t)2 << 20) / (n > 0 ? n : 1) &&
      weights + ring > en_l2_bytes() / 2)
    return 0;
  return fused_by_shape(b, h, w);
}

int en_fuse_stem(const en_arch *arch) {
  return arch->num_blocks > 0 && arch->blocks[0].expand == 1 && !arch->blocks[0].has_skip;
}

/* Bytes of activations one image moves through block b (its input, the expanded tensor where
 * it is not fused, the depthwise output and the block's output) and of the block's weights.
 * Fused or not as on a 2 MiB L2 (fused_by_shape), so that the split point does not depend on
 * the machine's L2: on Zen 3 counting the unfused 14 x 14 x 672 blocks moved B0 224's split from
 * block 9 to 11, and batch 8 ran within noise of block 9 (separate builds alternated, 6 each:
 * one thread 1.03 of the time, 0.95-1.09; two 0.91, 0.78-1.40). */
static void block_traffic(const en_block *b, int h, int w, int64_t *act, int64_t *weights) {
  int64_t in = (int64_t)h * w, out = (int64_t)en_conv_out(h, b->stride) * en_conv_out(w, b->stride);
  int64_t floats = in * b->in_ch + out * b->mid_ch + out * b->out_ch;
  if (b->expand != 1 && !fused_by_shape(b, h, w)) floats += in * b->mid_ch;
  *act = 4 * floats;
  *weights = 4 * ((int64_t)b->in_ch * b->mid_ch * (b->expand != 1) +
                  (int64_t)b->mid_ch * b->out_ch + 2 * (int64_t)b->mid_ch * b->se_ch);
}

int en_split_block(const en_arch *a, int h, int w) {
  int H = en_conv_out(h, 2), W = en_conv_out(w, 2), i = 0;
  for (; i < a->num_blocks; i++) {
    int64_t act, weights;
    block_traffic(&a->blocks[i], H, W, &act, &weights);
    if (act < weights) break;
    H = en_conv_out(H, a->blocks[i].stride);
    W = en_conv_out(W, a->blocks[i].stride);
  }
  return i;
}

static int mul4(size_t a, size_t b, size_t c, size_t d, size_t *out) {
  size_t t;
  if (__builtin_mul_overflow(a, b, &t) || __builtin_mul_overflow(t, c, &t) ||
      __builtin_mul_overflow(t, d, &t))
    return 0;
  *out = t;
  return 1;
}

static void keep_max(size_t *m, size_t v) {
  if (v > *m) *m = v;
}

/* Block b's depthwise conv for an input of n images of H x W, padded as the network's are. */
static en_conv_desc block_depthwise(const en_arch *a, const en_block *b, int n, int H, int W) {
  en_conv_desc d = {n, H, W, b->mid_ch, b->mid_ch, b->kernel, b->stride, 0, 0,
                    en_conv_out(H, b->stride), en_conv_out(W, b->stride), 0};
  int after;
  en_padding(a->spec.padding, H, b->kernel, b->stride, &d.pad_top, &after);
  en_padding(a->spec.padding, W, b->kernel, b->stride, &d.pad_left, &after);
  return d;
}

static int imax(int a, int b) { return a > b ? a : b; }

/* Set s made to hold d's input and its tile (rows x cols) too (en_planes_fit): its padding the
 * larger of the two; its planes as tall and wide as the image with that padding before it, or
 * as the tile reaches from the image's start (a bottom or right margin beyond the top or left
 * one takes rows or columns of its own). */
static void widen(en_plane_set *s, const en_conv_desc *d, int rows, int cols) {
  en_planes *q = &s->planes;
  q->pad_top = imax(q->pad_top, d->pad_top);
  q->pad_left = imax(q->pad_left, d->pad_left);
  q->rows = imax(imax(q->rows, q->pad_top + d->h), rows - d->pad_top);
  q->cols = imax(imax(q->cols, q->pad_left + d->w), cols - d->pad_left);
  s->channels = imax(s->channels, d->cin);
}

/* The plane sets for n images of h x w (their planes' data not yet placed): one per input size
 * among the blocks with an unfused expand before a depthwise conv that planes apply to
 * (en_planes_shape), its planes padded for every such window on that size (B0's 14 x 14 k3, k5
 * and k5 stride 2: the expand before each then writes the same lines), and of at most
 * EN_MEMORY_L2S L2s (kernels.h: larger ones would live in memory); the count, at most
 * EN_PLANE_SETS (more sizes go without).
 *
 * The planes save the depthwise kernel its tile fill, but their zero margins are lines that the
 * kernel reads from L2 or L3 where the fill read the image's pixels only, and each size's planes
 * are memory of their own where the NHWC tensors of every block shared one buffer: margins
 * shared between rows and between planes (en_planes) keep those lines few. Zen 4 (1 MiB L2), one
 * thread, process pairs alternated, against the fill: B0 224 (planes of 688 and 373 KB) 0.989 of
 * the time (depthwise 0.82 -> 0.71 ms, 1x1 convs level), two threads 0.993 (one die) and 0.985
 * (two), with AVX2's kernels forced 0.996; B3 300 (1.3 and 1.4 MB) 0.994 (depthwise -0.28 ms,
 * 1x1 convs +0.08); B0's batch of 8 (5.5 and 3.0 MB) 0.995 on one thread, 0.988 and 1.004 on
 * two (one die, two dies; 0.997, 0.999 and 1.016 with sets of at most two L2s, the image lanes'
 * alone). With margins of their own (planes of 18 x 18 and 11 x 11 pixels for B0's 16 x 16 and 9
 * x 9): B0 0.994-0.996, B3 0.998-0.999, B0's batch of 8 (7.0 and 4.5 MB) 1.003-1.008; one buffer
 * for all sizes, its margins zeroed where the size changed, as fast on one thread (0.993), 1.019
 * on two threads on two dies. */
static int plane_sets(const en_arch *a, int n, int h, int w, en_plane_set *sets) {
  int count = 0, H = en_conv_out(h, 2), W = en_conv_out(w, 2);
  for (int i = 0; i < a->num_blocks; i++) {
    const en_block *b = &a->blocks[i];
    en_conv_desc d = block_depthwise(a, b, n, H, W);
    int rows, cols, j = 0;
    if (b->expand != 1 && !en_fuse_front(b, n, H, W) && en_planes_shape(&d, &rows, &cols)) {
      while (j < count && (sets[j].h != H || sets[j].w != W)) j++;
      if (j == count && count < EN_PLANE_SETS)
        sets[count++] = (en_plane_set){H, W, 0, {NULL, NULL, 0, 0, 0, 0, 0}};
      if (j < count) widen(&sets[j], &d, rows, cols);
    }
    H = en_conv_out(H, b->stride);
    W = en_conv_out(W, b->stride);
  }
  int kept = 0;
  for (int j = 0; j < count; j++) {
    double bytes = (double)sets[j].channels * n * sets[j].planes.rows * sets[j].planes.cols;
    if (bytes * sizeof(float) <= (double)EN_MEMORY_L2S * en_l2_bytes()) sets[kept++] = sets[j];
  }
  return kept;
}

/* Bytes of set s for n images: its planes (channels x n x rows x cols floats, and the rows of
 * zeros after them) and offsets (n x h x w); 0 where they overflow. */
static size_t set_bytes(const en_plane_set *s, int n, size_t *offsets) {
  size_t planes, tail, at, total;
  *offsets = 0;
  if (!mul4((size_t)s->channels * n, (size_t)s->planes.rows, (size_t)s->planes.cols,
            sizeof(float), &planes) ||
      !mul4((size_t)s->planes.pad_top + 1, (size_t)s->planes.cols, EN_PLANE_LANES,
            sizeof(float), &tail) ||
      !mul4((size_t)n, (size_t)s->h, (size_t)s->w, sizeof(int64_t), &at) ||
      __builtin_add_overflow(planes, tail, &total) || __builtin_add_overflow(total, at, &total))
    return 0;
  *offsets = at;
  return total;
}

/* Bytes of all the plane sets; 0 where they overflow (and where there are none). */
static size_t planes_bytes(const en_arch *a, int n, int h, int w) {
  en_plane_set sets[EN_PLANE_SETS];
  int count = plane_sets(a, n, h, w, sets);
  size_t total = 0, at, one;
  for (int i = 0; i < count; i++)
    if (!(one = set_bytes(&sets[i], n, &at)) || __builtin_add_overflow(total, one, &total))
      return 0;
  return total;
}

static int measure(const en_arch *a, int n, int h, int w, int threads, plan_sizes *s) {
  memset(s, 0, sizeof *s);
  size_t t;
  int H = en_conv_out(h, 2), W = en_conv_out(w, 2);
  if (!mul4(n, h, w, 3, &t)) return 0;
  keep_max(&s->ping, t);
  if (!mul4(n, H, W, a->stem_ch, &t)) return 0;
  keep_max(&s->ping, t);
  keep_max(&s->channels, (size_t)a->stem_ch);
  keep_max(&s->channels, (size_t)a->head_ch);
  if (!mul4(H, W, 27, 1, &s->im2col)) return 0;
  if (en_fuse_stem(a)) { /* the stem's rings (padding bounded as for the blocks' below) */
    const en_block *b = &a->blocks[0];
    int k = b->kernel;
    en_conv_desc sd = {n, h, w, 3, a->stem_ch, 3, 2, 1, 1, H, W, 0};
    en_conv_desc d = {n, H, W, b->mid_ch, b->mid_ch, k, b->stride, k / 2, k / 2,
                      en_conv_out(H, b->stride), en_conv_out(W, b->stride), 0};
    if (!mul4(k, W + 2 * k, b->mid_ch, threads, &t)) return 0; /* overflow check only */
    keep_max(&s->ring, en_stem_depthwise_scratch(&sd, &d, threads));
  }
  for (int i = 0; i < a->num_blocks; i++) {
    const en_block *b = &a->blocks[i];
    if (!mul4(n, H, W, b->mid_ch, &t)) return 0;
    if (b->expand != 1) keep_max(&s->expanded, t);
    if (en_fuse_front(b, n, H, W)) {
      /* padding k / 2 bounds both modes' (the ring rows carry it as zero columns) */
      int k = b->kernel;
      en_conv_desc d = {n, H, W, b->mid_ch, b->mid_ch, k, b->stride, k / 2, k / 2,
                        en_conv_out(H, b->stride), en_conv_out(W, b->stride), 0};
      if (!mul4(k, W + 2 * k, b->mid_ch, threads, &t)) return 0; /* overflow check only */
      keep_max(&s->ring, en_expand_depthwise_scratch(&d, threads));
    }
    H = en_conv_out(H, b->stride);
    W = en_conv_out(W, b->stride);
    if (!mul4(n, H, W, b->mid_ch, &t)) return 0;
    keep_max(&s->dw, t);
    if (!mul4(n, H, W, b->out_ch, &t)) return 0;
    keep_max(&s->ping, t);
    keep_max(&s->pool, (size_t)n * b->mid_ch);
    keep_max(&s->channels, (size_t)b->mid_ch);
    keep_max(&s->channels, (size_t)b->out_ch);
    keep_max(&s->se, (size_t)b->se_ch + b->mid_ch);
    if (b->se_ch > 0) {
      keep_max(&s->gate, (size_t)n * b->mid_ch);
      keep_max(&s->gated_w, en_gemm_packed_floats(b->mid_ch, b->out_ch));
    }
  }
  if (!mul4(n, H, W, a->head_ch, &t)) return 0;
  keep_max(&s->expanded, t);
  keep_max(&s->pool, (size_t)n * a->head_ch);
  en_plane_set sets[EN_PLANE_SETS];
  s->planes = planes_bytes(a, n, h, w);
  return s->planes || plane_sets(a, n, h, w, sets) == 0;
}

static size_t round16(size_t v) { return (v + 15) / 16 * 16; }

/* A buffer for tensors of up to `floats` floats placed by en_plan_place: their margin added (0:
 * the sizes overflow, which the total's limit then reports). */
static size_t centred(size_t floats, size_t channels) {
  size_t cap;
  if (floats > SIZE_MAX / 2 ||
      __builtin_add_overflow(round16(floats), round16(channels) + 32, &cap))
    return 0;
  return cap;
}

/* The arena's parts in its order (en_plan_prepare): 0 where one overflows. */
static int parts_of(const plan_sizes *s, size_t parts[10]) {
  size_t ping = centred(s->ping, s->channels), expanded = centred(s->expanded, s->channels);
  size_t dw = centred(s->dw, s->channels);
  size_t all[10] = {ping,   ping,      expanded, dw,         s->pool,
                    s->se,  s->im2col, s->gate,  s->gated_w, s->ring};
  memcpy(parts, all, sizeof all);
  return ping && expanded && dw;
}

float *en_plan_place(float *buf, size_t cap, int64_t pixels, int c) {
  size_t middle = cap / 2 / 16 * 16, before = (size_t)(pixels / 2) * (size_t)c / 16 * 16;
  return buf + middle - before;
}

effnet_status en_plan_size(const en_arch *a, int n, int h, int w, int threads,
                           size_t max_bytes, size_t *floats, effnet_error *err) {
  plan_sizes s;
  if (n < 1 || h < 1 || w < 1)
    return en_fail(err, EFFNET_E_SHAPE, "input shape (%d, 3, %d, %d) must be positive", n, h, w);
  size_t parts[10];
  int ok = measure(a, n, h, w, threads, &s) && parts_of(&s, parts);
  size_t total = 0;
  for (size_t i = 0; ok && i < sizeof parts / sizeof parts[0]; i++)
    ok = !__builtin_add_overflow(total, round16(parts[i]), &total);
  ok = ok && !__builtin_add_overflow(total, s.planes / sizeof(float), &total);
  if (!ok || total > max_bytes / sizeof(float))
    return en_fail(err, EFFNET_E_LIMIT,
                   "input (%d, 3, %d, %d) needs more than the %zu MiB activation limit", n, h, w,
                   max_bytes >> 20);
  *floats = total;
  return EFFNET_OK;
}

/* The plane sets in memory of their own (bytes: planes_bytes), zeroed; their offsets filled. */
static int place_planes(en_plan *p, const en_arch *a, int n, int h, int w, size_t bytes) {
  p->set_count = plane_sets(a, n, h, w, p->sets);
  if (!p->set_count) return 1;
  p->planes_mem = calloc(1, bytes + 64);
  if (!p->planes_mem) return 0;
  char *cur = (char *)(((uintptr_t)p->planes_mem + 63) & ~(uintptr_t)63);
  for (int i = 0; i < p->set_count; i++) { /* the planes first: each a multiple of 64 bytes */
    en_plane_set *s = &p->sets[i];
    size_t at, all = set_bytes(s, n, &at);
    s->planes.data = (float *)cur;
    s->planes.block = (int64_t)n * s->planes.rows * s->planes.cols * EN_PLANE_LANES;
    cur += all - at;
  }
  for (int i = 0; i < p->set_count; i++) {
    en_plane_set *s = &p->sets[i];
    size_t at;
    set_bytes(s, n, &at);
    en_planes_index((int64_t *)cur, &s->planes, n, s->h, s->w);
    s->planes.at = (const int64_t *)cur;
    cur += at;
  }
  return 1;
}

const en_planes *en_plan_planes(const en_plan *p, const en_conv_desc *d) {
  int64_t offset;
  for (int i = 0; i < p->set_count; i++) {
    const en_plane_set *s = &p->sets[i];
    if (s->h == d->h && s->w == d->w && s->channels >= d->cin && p->n == d->n &&
        en_planes_fit(&s->planes, d, &offset))
      return &s->planes;
  }
  return NULL;
}

effnet_status en_plan_prepare(en_plan *p, const en_arch *a, int n, int h, int w, int threads,
                              size_t max_bytes, effnet_error *err) {
  if (p->arena && p->n == n && p->h == h && p->w == w && p->threads == threads) return EFFNET_OK;
  size_t total;
  effnet_status st = en_plan_size(a, n, h, w, threads, max_bytes, &total, err);
  if (st != EFFNET_OK) return st;
  plan_sizes s;
  measure(a, n, h, w, threads, &s);
  en_plan_free(p);
  p->arena = aligned_alloc(64, (total - s.planes / sizeof(float)) * sizeof(float));
  if (!p->arena || !place_planes(p, a, n, h, w, s.planes)) {
    en_plan_free(p);
    return en_fail(err, EFFNET_E_NOMEM, "out of memory: activation arena of %zu MiB",
                   (total * sizeof(float)) >> 20);
  }
  float *cur = p->arena;
  float **slots[] = {&p->ping, &p->pong, &p->expanded, &p->dw, &p->pool, &p->se_scratch,
                     &p->im2col, &p->gate, &p->gated_w, &p->ring};
  size_t sizes[10];
  parts_of(&s, sizes);
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    *slots[i] = cur;
    cur += round16(sizes[i]);
  }
  p->ping_cap = sizes[0];
  p->expanded_cap = sizes[2];
  p->dw_cap = sizes[3];
  p->n = n;
  p->h = h;
  p->w = w;
  p->threads = threads;
  p->floats = total;
  return EFFNET_OK;
}

void en_plan_free(en_plan *p) {
  if (!p) return;
  free(p->arena);
  free(p->planes_mem);
  memset(p, 0, sizeof *p);
}
