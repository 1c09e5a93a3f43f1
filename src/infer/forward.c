/* The inference forward pass over the planned arena (NHWC). */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "core/clones.h"
#include "core/denormals.h"
#include "infer/infer.h"

typedef struct fmap {
  float *data;
  int h, w, c;
} fmap;

/* Parts of the profile (effnet.h): the stem's, a stage's blocks' (stage + 1), the head's. */
enum { PART_STEM = 0, PART_HEAD = EFFNET_PROFILE_STAGES - 1 };
_Static_assert(EFFNET_PROFILE_STAGES == EN_NUM_STAGES + 2, "stem, the stages, the head");

/* Runs `call` and, when profiling, charges its time and multiply-adds to `kind` (and its time
 * to `kind` within `part`). */
#define TIMED(args, part, kind, mac_count, call)                                   \
  do {                                                                             \
    double t0_ = (args)->profile ? omp_get_wtime() : 0.0;                          \
    call;                                                                          \
    if ((args)->profile) {                                                         \
      double dt_ = omp_get_wtime() - t0_;                                          \
      (args)->profile->seconds[kind] += dt_;                                       \
      (args)->profile->stage_seconds[part][kind] += dt_;                           \
      (args)->profile->calls[kind]++;                                              \
      (args)->profile->macs[kind] += (mac_count);                                  \
    }                                                                              \
  } while (0)

/* Where a tensor of `pixels` rows of c floats goes in buf (cap floats): centred with two
 * threads or more (en_plan_place), at the start with one, where nothing is shared. */
static float *place(const en_plan *p, float *buf, size_t cap, int64_t pixels, int c) {
  return p->threads > 1 ? en_plan_place(buf, cap, pixels, c) : buf;
}

static void emit(const en_forward_args *a, const char *name, const fmap *x) {
  if (a->hook) a->hook(a->hook_user, name, x->data, a->plan->n, x->h, x->w, x->c);
}

static en_conv_desc conv_desc(const en_forward_args *a, const fmap *x, int cout, int kernel,
                              int stride, en_act act) {
  en_conv_desc d;
  int pad_bottom, pad_right;
  d.n = a->plan->n;
  d.h = x->h;
  d.w = x->w;
  d.cin = x->c;
  d.cout = cout;
  d.kernel = kernel;
  d.stride = stride;
  en_padding(a->padding, x->h, kernel, stride, &d.pad_top, &pad_bottom);
  en_padding(a->padding, x->w, kernel, stride, &d.pad_left, &pad_right);
  d.oh = en_conv_out(x->h, stride);
  d.ow = en_conv_out(x->w, stride);
  d.act = act;
  return d;
}

/* NCHW -> NHWC for the 3-channel input, rows split over the team (vectorised in clones.h's
 * clones: three loads, interleaving permutes, three stores per vector of pixels). */
EN_CLONES static void interleave3(float *dst, const float *r, const float *g, const float *b,
                                  int w) {
  for (int x = 0; x < w; x++) {
    dst[3 * x] = r[x];
    dst[3 * x + 1] = g[x];
    dst[3 * x + 2] = b[x];
  }
}

static void to_nhwc(float *dst, const float *src, int n, int h, int w) {
  int64_t hw = (int64_t)h * w;
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < n; b++)
    for (int y = 0; y < h; y++) {
      const float *plane = src + (int64_t)b * 3 * hw + (int64_t)y * w;
      interleave3(dst + ((int64_t)b * hw + (int64_t)y * w) * 3, plane, plane + hw, plane + 2 * hw,
                  w);
    }
}

/* The SE gate scales the projection's input channels; whichever is smaller gets multiplied:
 * the activations (hw x mid: late stages, where hw is small) or, per image, the projection's
 * packed weights (mid x out: early stages), since (x * gate) . W^T == x . (W diag(gate))^T. */
static int gate_on_activations(const en_block *b, int64_t hw) {
  return hw * b->mid_ch <= (int64_t)en_gemm_packed_floats(b->mid_ch, b->out_ch);
}

/* dw: the block's depthwise output (in the plan's dw buffer). */
static void squeeze_excite(const en_forward_args *a, const en_block *b,
                           const en_folded_block *f, float *dw, int64_t hw) {
  en_plan *p = a->plan;
  if (gate_on_activations(b, hw))
    a->kernels->se(dw, p->pool, f->se_w1, f->se_b1, f->se_w2t, f->se_b2, p->n, hw, b->mid_ch,
                   b->se_ch, a->arch->act, p->se_scratch);
  else
    a->kernels->se_gate(p->gate, p->pool, f->se_w1, f->se_b1, f->se_w2t, f->se_b2, p->n, hw,
                        b->mid_ch, b->se_ch, a->arch->act, p->se_scratch);
}

/* The projection 1x1 conv, the skip connection fused into the GEMM's epilogue. */
static void project(const en_forward_args *a, const en_block *b, const en_folded_block *f,
                    const float *dw, const float *residual, float *out, int64_t hw) {
  const en_kernels *k = a->kernels;
  en_plan *p = a->plan;
  if (!f->se_w1 || gate_on_activations(b, hw)) {
    k->gemm(out, dw, f->project_w, f->project_b, residual, p->n * hw, b->mid_ch, b->out_ch,
            EN_ACT_NONE);
    return;
  }
  for (int i = 0; i < p->n; i++) {
    int64_t in_at = i * hw * b->mid_ch, out_at = i * hw * b->out_ch;
    en_gemm_pack_scaled(p->gated_w, f->project_w, p->gate + (int64_t)i * b->mid_ch, b->mid_ch,
                        b->out_ch);
    k->gemm(out + out_at, dw + in_at, p->gated_w, f->project_b,
            residual ? residual + out_at : NULL, hw, b->mid_ch, b->out_ch, EN_ACT_NONE);
  }
}

/* The rest of a block (input x, depthwise d) after its depthwise conv, whose output is dw and
 * whose SE pooling sums are in the plan's pool: [SE gate] -> project 1x1 [+ identity], into
 * the buffer `out` (the plan's ping or pong). */
static fmap block_back(const en_forward_args *a, const en_block *b, const en_folded_block *f,
                       fmap x, float *dw, float *out, const en_conv_desc *d) {
  en_plan *p = a->plan;
  int64_t hw = (int64_t)d->oh * d->ow;
  int part = b->stage + 1;
  out = place(p, out, p->ping_cap, p->n * hw, b->out_ch);
  if (f->se_w1)
    TIMED(a, part, EFFNET_OP_SE, (int64_t)p->n * 2 * b->mid_ch * b->se_ch,
          squeeze_excite(a, b, f, dw, hw));
  TIMED(a, part, EFFNET_OP_POINTWISE, p->n * hw * b->mid_ch * b->out_ch,
        project(a, b, f, dw, b->has_skip ? x.data : NULL, out, hw));
  fmap y = {out, d->oh, d->ow, b->out_ch};
  return y;
}

/* One MBConv block: [expand 1x1] -> depthwise (+ SE pooling) -> [SE gate] -> project 1x1
 * [+ identity]. Drop-connect is the identity at inference. */
static fmap run_block(const en_forward_args *a, const en_block *b, const en_folded_block *f,
                      fmap x, float *out) {
  const en_kernels *k = a->kernels;
  en_plan *p = a->plan;
  en_act act = a->arch->act;
  int64_t in_rows = (int64_t)p->n * x.h * x.w;
  fmap e = {place(p, p->expanded, p->expanded_cap, in_rows, b->mid_ch), x.h, x.w,
            b->mid_ch};
  en_conv_desc d = conv_desc(a, f->expand_w ? &e : &x, b->mid_ch, b->kernel, b->stride, act);
  int64_t hw = (int64_t)d.oh * d.ow;
  int part = b->stage + 1;
  float *pool = f->se_w1 ? p->pool : NULL;
  float *dw = place(p, p->dw, p->dw_cap, p->n * hw, b->mid_ch);
  const en_planes *planes;
  if (f->expand_w && en_fuse_front(b, p->n, x.h, x.w)) {
    int64_t macs = in_rows * b->in_ch * b->mid_ch + p->n * hw * b->mid_ch * b->kernel * b->kernel;
    TIMED(a, part, EFFNET_OP_FUSED, macs,
          k->expand_depthwise(dw, pool, x.data, b->in_ch, f->expand_w, f->expand_b, f->dw_w,
                              f->dw_b, &d, p->expanded, p->ring));
  } else if (f->expand_w && (planes = k->planes_pay(&d) ? en_plan_planes(p, &d) : NULL)) {
    TIMED(a, part, EFFNET_OP_POINTWISE, in_rows * b->in_ch * b->mid_ch,
          k->gemm_planes(planes, x.data, f->expand_w, f->expand_b, in_rows, b->in_ch, b->mid_ch,
                         act));
    TIMED(a, part, EFFNET_OP_DEPTHWISE, p->n * hw * b->mid_ch * b->kernel * b->kernel,
          k->depthwise_planes(dw, planes, f->dw_w, f->dw_b, &d, pool));
  } else {
    if (f->expand_w)
      TIMED(a, part, EFFNET_OP_POINTWISE, in_rows * b->in_ch * b->mid_ch,
            k->gemm(e.data, x.data, f->expand_w, f->expand_b, NULL, in_rows, b->in_ch,
                    b->mid_ch, act));
    TIMED(a, part, EFFNET_OP_DEPTHWISE, p->n * hw * b->mid_ch * b->kernel * b->kernel,
          k->depthwise(dw, f->expand_w ? e.data : x.data, f->dw_w, f->dw_b, &d, pool));
  }
  return block_back(a, b, f, x, dw, out, &d);
}

/* Blocks [from, end) from x, alternating between the plan's ping and pong (x in ping: before
 * pong, which follows it in the arena). */
static fmap blocks(const en_forward_args *a, fmap x, int from, int end) {
  const en_arch *arch = a->arch;
  en_plan *p = a->plan;
  for (int i = from; i < end; i++) {
    const en_block *b = &arch->blocks[i];
    float *out = x.data < p->pong ? p->pong : p->ping;
    x = run_block(a, b, &a->weights->blocks[i], x, out);
    if (i + 1 == arch->num_blocks || arch->blocks[i + 1].stage != b->stage) {
      char name[32];
      snprintf(name, sizeof name, "stage%d", b->stage + 1);
      emit(a, name, &x);
    }
  }
  return x;
}

/* The stem: a dense 3x3 conv from the packed weights (direct in the fast table). */
static void stem(const en_forward_args *a, const en_conv_desc *d, const float *in, float *out) {
  a->kernels->dense(out, in, a->weights->stem_w, a->weights->stem_b, d, a->plan->im2col);
}

/* The stem and the first block's depthwise conv as one op (kernels' stem_depthwise; the stem's
 * output x, in the plan's pong, is then never written by the fast kernels), and the rest of
 * that block: returns its output. */
static fmap stem_and_first(const en_forward_args *a, fmap img, const en_conv_desc *sd, fmap x) {
  const en_block *b = &a->arch->blocks[0];
  const en_folded_block *f = &a->weights->blocks[0];
  en_plan *p = a->plan;
  en_conv_desc d = conv_desc(a, &x, b->mid_ch, b->kernel, b->stride, a->arch->act);
  int64_t macs = (int64_t)p->n * sd->oh * sd->ow * sd->cout * 27 +
                 (int64_t)p->n * d.oh * d.ow * b->mid_ch * b->kernel * b->kernel;
  float *dw = place(p, p->dw, p->dw_cap, (int64_t)p->n * d.oh * d.ow, b->mid_ch);
  TIMED(a, PART_STEM, EFFNET_OP_STEM_DW, macs,
        a->kernels->stem_depthwise(dw, f->se_w1 ? p->pool : NULL, img.data,
                                   a->weights->stem_w, a->weights->stem_b, sd, f->dw_w, f->dw_b,
                                   &d, x.data, p->ring));
  return block_back(a, b, f, x, dw, p->ping, &d);
}

/* The stem and blocks [0, end): returns the last output (in the plan's ping or pong). */
static fmap front(const en_forward_args *a, const float *input, int end) {
  const en_arch *arch = a->arch;
  en_plan *p = a->plan;
  fmap img = {place(p, p->ping, p->ping_cap, (int64_t)p->n * p->h * p->w, 3), p->h, p->w,
              3};
  TIMED(a, PART_STEM, EFFNET_OP_LAYOUT, 0, to_nhwc(img.data, input, p->n, p->h, p->w));
  en_conv_desc d = conv_desc(a, &img, arch->stem_ch, 3, 2, arch->act);
  fmap x = {place(p, p->pong, p->ping_cap, (int64_t)p->n * d.oh * d.ow, arch->stem_ch),
            d.oh, d.ow, arch->stem_ch};
  if (end > 0 && !a->hook && en_fuse_stem(arch)) {
    x = stem_and_first(a, img, &d, x); /* no hook: nothing to emit */
    return blocks(a, x, 1, end);
  }
  TIMED(a, PART_STEM, EFFNET_OP_STEM, (int64_t)p->n * d.oh * d.ow * arch->stem_ch * 27,
        stem(a, &d, img.data, x.data));
  emit(a, "stem", &x);
  return blocks(a, x, 0, end);
}

/* Blocks [from, num_blocks) from x, the head, pooling and the classifier. */
static void back(const en_forward_args *a, fmap x, int from, float *logits) {
  const en_arch *arch = a->arch;
  const en_folded *f = a->weights;
  const en_kernels *k = a->kernels;
  en_plan *p = a->plan;
  x = blocks(a, x, from, arch->num_blocks);
  int64_t rows = (int64_t)p->n * x.h * x.w;
  fmap head = {place(p, p->expanded, p->expanded_cap, rows, arch->head_ch), x.h, x.w,
               arch->head_ch};
  TIMED(a, PART_HEAD, EFFNET_OP_POINTWISE, rows * x.c * arch->head_ch,
        k->gemm(head.data, x.data, f->head_w, f->head_b, NULL, rows, x.c, arch->head_ch,
                arch->act));
  emit(a, "head", &head);
  TIMED(a, PART_HEAD, EFFNET_OP_POOL, 0,
        k->pool(p->pool, head.data, p->n, (int64_t)x.h * x.w, arch->head_ch));
  TIMED(a, PART_HEAD, EFFNET_OP_LINEAR, (int64_t)p->n * arch->head_ch * arch->num_classes,
        k->gemm(logits, p->pool, f->fc_w, f->fc_b, NULL, p->n, arch->head_ch, arch->num_classes,
                EN_ACT_NONE));
}

static void forward(const en_forward_args *a, const float *input, float *logits) {
  back(a, front(a, input, a->arch->num_blocks), a->arch->num_blocks, logits);
}

/* Image lanes (a->lane_count one-image arenas, a thread each; infer.h): whichever thread is free
 * takes the next image, through the whole network into logits, or with a->split_at > 0 through
 * the stem and the blocks before it only, its output copied into the batch's arena (ping);
 * returns that output's shape. */
static fmap run_lanes(const en_forward_args *a, const float *input, float *logits) {
  int64_t image = (int64_t)3 * a->lanes[0].h * a->lanes[0].w, classes = a->arch->num_classes;
  fmap x = {0};
#pragma omp parallel num_threads(a->lane_count) if (a->lane_count > 1)
  {
    omp_set_num_threads(1); /* this thread's kernels run serially */
    en_forward_args lane = *a;
    lane.plan = &a->lanes[omp_get_thread_num()];
    lane.lanes = NULL;
    en_fp_mode mode;
    en_denormals_off(&mode);
#pragma omp for schedule(dynamic)
    for (int b = 0; b < a->batch; b++) {
      if (a->split_at == 0) {
        forward(&lane, input + b * image, logits + b * classes);
        continue;
      }
      fmap y = front(&lane, input + b * image, a->split_at);
      int64_t size = (int64_t)y.h * y.w * y.c;
      memcpy(a->plan->ping + b * size, y.data, (size_t)size * sizeof(float));
      if (b == 0) x = y; /* every image's has this shape */
    }
    en_denormals_back(&mode);
  }
  return x;
}

/* The batch split at block a->split_at: the images through the blocks before it as image
 * lanes, then the rest of the network on the whole batch (infer.h). */
static void forward_split(const en_forward_args *a, const float *input, float *logits) {
  fmap x = run_lanes(a, input, logits);
  x.data = a->plan->ping;
  back(a, x, a->split_at, logits);
}

void en_forward(const en_forward_args *a, const float *input, float *logits) {
  if (a->lanes && a->split_at == 0) {
    run_lanes(a, input, logits);
    return;
  }
  /* the per-thread scratch of the plan holds plan->threads rings: never run wider */
  int previous = omp_get_max_threads();
  if (previous > a->plan->threads) omp_set_num_threads(a->plan->threads);
  en_fp_mode mode;
  en_denormals_off(&mode); /* see core/denormals.h */
  if (a->split_at > 0) forward_split(a, input, logits);
  else forward(a, input, logits);
  en_denormals_back(&mode);
  if (previous > a->plan->threads) omp_set_num_threads(previous);
}
