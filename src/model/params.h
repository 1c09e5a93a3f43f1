/* One float block for every parameter and BN buffer of a model, carved by a table of
 * (name, shape, offset). Layouts are PyTorch's (OIHW convs, depthwise [C,1,k,k], Linear
 * [out,in]) so that files load with a copy and gradients/optimizer state can share the table. */
#ifndef EN_PARAMS_H
#define EN_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "model/arch.h"

typedef enum en_role {
  EN_R_STEM_CONV, EN_R_STEM_BN, EN_R_EXPAND_CONV, EN_R_EXPAND_BN, EN_R_DW_CONV, EN_R_DW_BN,
  EN_R_SE_REDUCE, EN_R_SE_EXPAND, EN_R_PROJECT_CONV, EN_R_PROJECT_BN, EN_R_HEAD_CONV,
  EN_R_HEAD_BN, EN_R_FC
} en_role;

typedef enum en_field { EN_F_WEIGHT, EN_F_BIAS, EN_F_MEAN, EN_F_VAR } en_field;

/* Tensor naming conventions of the weight files people have. */
typedef enum en_naming {
  EN_NAMING_TIMM,        /* conv_stem, blocks.S.J.conv_dw, ... (also effnet's own files) */
  EN_NAMING_TORCHVISION, /* features.S.J.block.K.* */
  EN_NAMING_LUKEMELAS    /* _conv_stem, _blocks.N._depthwise_conv, ... */
} en_naming;

typedef struct en_param {
  en_role role;
  en_field field;
  int block; /* global block index, -1 for stem / head / classifier */
  int ndim;
  int shape[4];
  int64_t numel;
  int64_t offset; /* in floats, into en_params.data */
  int trainable;  /* 0 for BN running statistics */
} en_param;

typedef struct en_bn_ref { int weight, bias, mean, var; } en_bn_ref;

typedef struct en_block_ref {
  int expand_w, dw_w, se_reduce_w, se_reduce_b, se_expand_w, se_expand_b, project_w;
  en_bn_ref expand_bn, dw_bn, project_bn; /* -1 where the block has no such layer */
} en_block_ref;

typedef struct en_params {
  int count;
  en_param *table;
  int64_t total; /* floats */
  float *data;   /* 64-byte aligned */
  int stem_w, head_w, fc_w, fc_b;
  en_bn_ref stem_bn, head_bn;
  en_block_ref *blocks; /* one per block */
} en_params;

effnet_status en_params_build(en_params *p, const en_arch *arch, effnet_error *err);
void en_params_free(en_params *p);

static inline float *en_param_ptr(const en_params *p, int index) {
  return p->data + p->table[index].offset;
}

/* Name of table entry `index` in a naming convention; returns 0 if it does not fit buf. */
int en_param_name(const en_arch *arch, const en_param *param, en_naming naming, char *buf,
                  size_t size);

/* BN statistics 0/1, affine 1/0; convs normal(0, sqrt(2 / fan_out)) with fan_out divided by
 * groups (TF conv_kernel_initializer, timm _init_weight_goog); classifier uniform(+-1/sqrt(
 * classes)) (TF dense_kernel_initializer); biases 0. Deterministic in seed. */
void en_params_init(en_params *p, uint64_t seed);

#endif
