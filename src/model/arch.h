/* The family is generated, never written out: the B0 stage table (paper Table 1, TF
 * _DEFAULT_BLOCKS_ARGS) plus the scaling rules of TF efficientnet_model.py (round_filters,
 * ceil of repeats, SE width from the block input) give every member. */
#ifndef EN_ARCH_H
#define EN_ARCH_H

#include <stdint.h>

#include "effnet.h"

#define EN_NUM_STAGES 7
#define EN_MAX_BLOCKS 1024
#define EN_MAX_WIDTH 16.0 /* caps on custom multipliers: keeps every size far from overflow */
#define EN_MAX_DEPTH 40.0
#define EN_MAX_CLASSES 1000000

typedef enum en_act { EN_ACT_NONE = 0, EN_ACT_SWISH, EN_ACT_RELU6, EN_ACT_SIGMOID } en_act;

/* One row of the baseline table (B0 and Lite0 share it). */
typedef struct en_stage_def {
  int expand, kernel, stride, in_ch, out_ch, repeats;
} en_stage_def;

typedef struct en_block {
  int stage;          /* 0..6 */
  int index_in_stage; /* 0.. */
  int global_index;   /* 0..num_blocks-1, the TF/lukemelas block number */
  int in_ch, mid_ch, out_ch, se_ch; /* se_ch 0: no squeeze-excite */
  int kernel, stride, expand;
  int has_skip;       /* stride 1 and in == out */
  double drop_path;   /* stochastic-depth rate: drop_path * global_index / num_blocks */
} en_block;

typedef struct en_arch {
  effnet_spec spec;
  en_act act;
  int stem_ch, head_ch, num_classes;
  int num_blocks;
  int stage_first[EN_NUM_STAGES];   /* index of the first block of each stage */
  int stage_repeats[EN_NUM_STAGES];
  en_block blocks[EN_MAX_BLOCKS];
} en_arch;

extern const en_stage_def en_base_stages[EN_NUM_STAGES];

/* round_filters (TF) == _make_divisible (torchvision) == round_channels (timm). */
int en_round_filters(int channels, double width);
/* ceil(depth * repeats), evaluated in double exactly as Python does. */
int en_round_repeats(int repeats, double depth);

/* Validate spec and build the block list. On failure returns a status with a message. */
effnet_status en_arch_build(en_arch *arch, const effnet_spec *spec, effnet_error *err);

/* Output side of a conv with odd kernel, stride s: ceil(in / s) for both paddings. */
static inline int en_conv_out(int in, int stride) { return (in + stride - 1) / stride; }

/* Per-side padding of one spatial axis. */
void en_padding(effnet_padding mode, int in, int kernel, int stride, int *before, int *after);

/* Parameters, buffers and MACs of the architecture at input h x w (batch 1). */
void en_arch_counts(const en_arch *arch, int h, int w, int64_t *params, int64_t *buffers,
                    int64_t *macs);

#endif
