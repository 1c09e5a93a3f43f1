/* Block list generation and the analytic parameter / MAC counts. */
#include "model/arch.h"

#include <math.h>
#include <string.h>

#include "core/error.h"

/* B0 / Lite0 baseline: expand, kernel, stride, in, out, repeats (TF _DEFAULT_BLOCKS_ARGS). */
const en_stage_def en_base_stages[EN_NUM_STAGES] = {
    {1, 3, 1, 32, 16, 1},  {6, 3, 2, 16, 24, 2},  {6, 5, 2, 24, 40, 2},
    {6, 3, 2, 40, 80, 3},  {6, 5, 1, 80, 112, 3}, {6, 5, 2, 112, 192, 4},
    {6, 3, 1, 192, 320, 1},
};

#define EN_STEM_BASE 32
#define EN_HEAD_BASE 1280
#define EN_DIVISOR 8

int en_round_filters(int channels, double width) {
  double scaled = channels * width;
  int rounded = (int)(scaled + EN_DIVISOR / 2.0) / EN_DIVISOR * EN_DIVISOR;
  if (rounded < EN_DIVISOR) rounded = EN_DIVISOR;
  if (rounded < 0.9 * scaled) rounded += EN_DIVISOR; /* never round down by more than 10% */
  return rounded;
}

int en_round_repeats(int repeats, double depth) { return (int)ceil(depth * repeats); }

void en_padding(effnet_padding mode, int in, int kernel, int stride, int *before, int *after) {
  if (mode == EFFNET_PAD_TF_SAME) {
    /* TF 'SAME': total = max((ceil(in/s) - 1) * s + k - in, 0), the odd pixel goes after. */
    int total = (en_conv_out(in, stride) - 1) * stride + kernel - in;
    if (total < 0) total = 0;
    *before = total / 2;
    *after = total - *before;
  } else {
    *before = kernel / 2;
    *after = kernel / 2;
  }
}

static effnet_status check_spec(const effnet_spec *spec, effnet_error *err) {
  if (spec->family != EFFNET_FAMILY_B && spec->family != EFFNET_FAMILY_LITE)
    return en_fail(err, EFFNET_E_ARGUMENT, "unknown family %d", (int)spec->family);
  if (!(spec->width > 0.0 && spec->width <= EN_MAX_WIDTH))
    return en_fail(err, EFFNET_E_ARGUMENT, "width multiplier %g outside (0, %g]", spec->width,
                   EN_MAX_WIDTH);
  if (!(spec->depth > 0.0 && spec->depth <= EN_MAX_DEPTH))
    return en_fail(err, EFFNET_E_ARGUMENT, "depth multiplier %g outside (0, %g]", spec->depth,
                   EN_MAX_DEPTH);
  if (spec->num_classes < 1 || spec->num_classes > EN_MAX_CLASSES)
    return en_fail(err, EFFNET_E_ARGUMENT, "num_classes %d outside [1, %d]", spec->num_classes,
                   EN_MAX_CLASSES);
  if (spec->padding < EFFNET_PAD_AUTO || spec->padding > EFFNET_PAD_TF_SAME)
    return en_fail(err, EFFNET_E_ARGUMENT, "unknown padding %d", (int)spec->padding);
  if (!(spec->bn_eps >= 0.0f && spec->bn_eps < 1.0f))
    return en_fail(err, EFFNET_E_ARGUMENT, "BN epsilon %g outside [0, 1)", spec->bn_eps);
  return EFFNET_OK;
}

static int stage_repeats(const effnet_spec *spec, int stage) {
  int base = en_base_stages[stage].repeats;
  /* Lite keeps the first and last stage at their baseline repeats (TF fix_head_stem) */
  if (spec->family == EFFNET_FAMILY_LITE && (stage == 0 || stage == EN_NUM_STAGES - 1))
    return base;
  return en_round_repeats(base, spec->depth);
}

effnet_status en_arch_build(en_arch *arch, const effnet_spec *spec, effnet_error *err) {
  effnet_status st = check_spec(spec, err);
  if (st != EFFNET_OK) return st;
  memset(arch, 0, sizeof *arch);
  arch->spec = *spec;
  int lite = spec->family == EFFNET_FAMILY_LITE;
  arch->act = lite ? EN_ACT_RELU6 : EN_ACT_SWISH;
  arch->stem_ch = lite ? EN_STEM_BASE : en_round_filters(EN_STEM_BASE, spec->width);
  arch->head_ch = lite ? EN_HEAD_BASE : en_round_filters(EN_HEAD_BASE, spec->width);
  arch->num_classes = spec->num_classes;
  int total = 0;
  for (int s = 0; s < EN_NUM_STAGES; s++) total += stage_repeats(spec, s);
  if (total > EN_MAX_BLOCKS)
    return en_fail(err, EFFNET_E_ARGUMENT, "depth %g gives %d blocks (max %d)", spec->depth,
                   total, EN_MAX_BLOCKS);
  int in_ch = arch->stem_ch, g = 0;
  for (int s = 0; s < EN_NUM_STAGES; s++) {
    const en_stage_def *d = &en_base_stages[s];
    int out_ch = en_round_filters(d->out_ch, spec->width);
    arch->stage_first[s] = g;
    arch->stage_repeats[s] = stage_repeats(spec, s);
    for (int j = 0; j < arch->stage_repeats[s]; j++, g++) {
      en_block *b = &arch->blocks[g];
      b->stage = s;
      b->index_in_stage = j;
      b->global_index = g;
      b->in_ch = in_ch;
      b->mid_ch = in_ch * d->expand;
      b->out_ch = out_ch;
      /* SE width from the block *input* channels (TF int(in * 0.25), torchvision in // 4) */
      b->se_ch = lite ? 0 : (in_ch / 4 > 1 ? in_ch / 4 : 1);
      b->kernel = d->kernel;
      b->stride = j == 0 ? d->stride : 1;
      b->expand = d->expand;
      b->has_skip = b->stride == 1 && in_ch == out_ch;
      b->drop_path = spec->drop_path * g / total;
      in_ch = out_ch;
    }
  }
  arch->num_blocks = total;
  return EFFNET_OK;
}

void en_arch_counts(const en_arch *a, int h, int w, int64_t *params, int64_t *buffers,
                    int64_t *macs) {
  int64_t p = 0, bufs = 0, m = 0;
  int H = en_conv_out(h, 2), W = en_conv_out(w, 2);
  p += (int64_t)a->stem_ch * 3 * 9 + 2 * a->stem_ch;
  bufs += 2 * a->stem_ch;
  m += (int64_t)H * W * a->stem_ch * 3 * 9;
  for (int i = 0; i < a->num_blocks; i++) {
    const en_block *b = &a->blocks[i];
    int64_t in = b->in_ch, mid = b->mid_ch, out = b->out_ch, se = b->se_ch, k = b->kernel;
    if (b->expand != 1) {
      p += in * mid + 2 * mid;
      bufs += 2 * mid;
      m += (int64_t)H * W * in * mid;
    }
    H = en_conv_out(H, b->stride);
    W = en_conv_out(W, b->stride);
    p += mid * k * k + 2 * mid;
    bufs += 2 * mid;
    m += (int64_t)H * W * mid * k * k;
    if (se) {
      p += mid * se + se + se * mid + mid;
      m += 2 * mid * se;
    }
    p += mid * out + 2 * out;
    bufs += 2 * out;
    m += (int64_t)H * W * mid * out;
  }
  int last = a->blocks[a->num_blocks - 1].out_ch;
  p += (int64_t)last * a->head_ch + 2 * a->head_ch;
  bufs += 2 * a->head_ch;
  m += (int64_t)H * W * last * a->head_ch;
  p += (int64_t)a->head_ch * a->num_classes + a->num_classes;
  m += (int64_t)a->head_ch * a->num_classes;
  *params = p;
  *buffers = bufs;
  *macs = m;
}
