#include "model/params.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

typedef struct table_builder {
  en_params *p;
  int cap;
  int oom;
} table_builder;

static int add(table_builder *tb, en_role role, en_field field, int block, int ndim, int d0,
               int d1, int d2, int d3, int trainable) {
  en_params *p = tb->p;
  if (p->count == tb->cap) {
    int cap = tb->cap ? tb->cap * 2 : 256;
    en_param *t = realloc(p->table, (size_t)cap * sizeof *t);
    if (!t) {
      tb->oom = 1;
      return -1;
    }
    p->table = t;
    tb->cap = cap;
  }
  en_param *e = &p->table[p->count];
  memset(e, 0, sizeof *e);
  e->role = role;
  e->field = field;
  e->block = block;
  e->ndim = ndim;
  int dims[4] = {d0, d1, d2, d3};
  e->numel = 1;
  for (int i = 0; i < ndim; i++) {
    e->shape[i] = dims[i];
    e->numel *= dims[i];
  }
  e->offset = p->total;
  /* keep every tensor 64-byte aligned so kernels may use aligned vector loads */
  p->total += (e->numel + 15) / 16 * 16;
  e->trainable = trainable;
  return p->count++;
}

static int add_conv(table_builder *tb, en_role role, int block, int out, int in, int k) {
  return add(tb, role, EN_F_WEIGHT, block, 4, out, in, k, k, 1);
}

static en_bn_ref add_bn(table_builder *tb, en_role role, int block, int ch) {
  en_bn_ref r;
  r.weight = add(tb, role, EN_F_WEIGHT, block, 1, ch, 0, 0, 0, 1);
  r.bias = add(tb, role, EN_F_BIAS, block, 1, ch, 0, 0, 0, 1);
  r.mean = add(tb, role, EN_F_MEAN, block, 1, ch, 0, 0, 0, 0);
  r.var = add(tb, role, EN_F_VAR, block, 1, ch, 0, 0, 0, 0);
  return r;
}

static const en_bn_ref no_bn = {-1, -1, -1, -1};

static void add_block(table_builder *tb, const en_block *b, en_block_ref *r) {
  int g = b->global_index;
  r->expand_w = -1;
  r->expand_bn = no_bn;
  r->se_reduce_w = r->se_reduce_b = r->se_expand_w = r->se_expand_b = -1;
  if (b->expand != 1) {
    r->expand_w = add_conv(tb, EN_R_EXPAND_CONV, g, b->mid_ch, b->in_ch, 1);
    r->expand_bn = add_bn(tb, EN_R_EXPAND_BN, g, b->mid_ch);
  }
  r->dw_w = add_conv(tb, EN_R_DW_CONV, g, b->mid_ch, 1, b->kernel);
  r->dw_bn = add_bn(tb, EN_R_DW_BN, g, b->mid_ch);
  if (b->se_ch) {
    r->se_reduce_w = add_conv(tb, EN_R_SE_REDUCE, g, b->se_ch, b->mid_ch, 1);
    r->se_reduce_b = add(tb, EN_R_SE_REDUCE, EN_F_BIAS, g, 1, b->se_ch, 0, 0, 0, 1);
    r->se_expand_w = add_conv(tb, EN_R_SE_EXPAND, g, b->mid_ch, b->se_ch, 1);
    r->se_expand_b = add(tb, EN_R_SE_EXPAND, EN_F_BIAS, g, 1, b->mid_ch, 0, 0, 0, 1);
  }
  r->project_w = add_conv(tb, EN_R_PROJECT_CONV, g, b->out_ch, b->mid_ch, 1);
  r->project_bn = add_bn(tb, EN_R_PROJECT_BN, g, b->out_ch);
}

effnet_status en_params_build(en_params *p, const en_arch *a, effnet_error *err) {
  memset(p, 0, sizeof *p);
  table_builder tb = {p, 0, 0};
  p->blocks = calloc((size_t)a->num_blocks, sizeof *p->blocks);
  if (!p->blocks) return en_fail(err, EFFNET_E_NOMEM, "out of memory (parameter table)");
  p->stem_w = add_conv(&tb, EN_R_STEM_CONV, -1, a->stem_ch, 3, 3);
  p->stem_bn = add_bn(&tb, EN_R_STEM_BN, -1, a->stem_ch);
  for (int i = 0; i < a->num_blocks; i++) add_block(&tb, &a->blocks[i], &p->blocks[i]);
  int last = a->blocks[a->num_blocks - 1].out_ch;
  p->head_w = add_conv(&tb, EN_R_HEAD_CONV, -1, a->head_ch, last, 1);
  p->head_bn = add_bn(&tb, EN_R_HEAD_BN, -1, a->head_ch);
  p->fc_w = add(&tb, EN_R_FC, EN_F_WEIGHT, -1, 2, a->num_classes, a->head_ch, 0, 0, 1);
  p->fc_b = add(&tb, EN_R_FC, EN_F_BIAS, -1, 1, a->num_classes, 0, 0, 0, 1);
  if (!tb.oom) p->data = aligned_alloc(64, (size_t)p->total * sizeof(float));
  if (tb.oom || !p->data) {
    en_params_free(p);
    return en_fail(err, EFFNET_E_NOMEM, "out of memory (%lld parameters)", (long long)p->total);
  }
  memset(p->data, 0, (size_t)p->total * sizeof(float));
  return EFFNET_OK;
}

void en_params_free(en_params *p) {
  if (!p) return;
  free(p->table);
  free(p->blocks);
  free(p->data);
  memset(p, 0, sizeof *p);
}

/* ---------------------------------------------------------------- names */

static const char *bn_field(en_field f) {
  static const char *names[] = {"weight", "bias", "running_mean", "running_var"};
  return names[f];
}

static const char *wb_field(en_field f) { return f == EN_F_BIAS ? "bias" : "weight"; }

/* timm: stage-0 blocks are DepthwiseSeparableConv (conv_dw, bn1, se, conv_pw, bn2), the
 * others InvertedResidual (conv_pw, bn1, conv_dw, bn2, se, conv_pwl, bn3). */
static const char *timm_layer(en_role r, int ds) {
  switch (r) {
    case EN_R_EXPAND_CONV: return "conv_pw";
    case EN_R_EXPAND_BN: return "bn1";
    case EN_R_DW_CONV: return "conv_dw";
    case EN_R_DW_BN: return ds ? "bn1" : "bn2";
    case EN_R_SE_REDUCE: return "se.conv_reduce";
    case EN_R_SE_EXPAND: return "se.conv_expand";
    case EN_R_PROJECT_CONV: return ds ? "conv_pw" : "conv_pwl";
    case EN_R_PROJECT_BN: return ds ? "bn2" : "bn3";
    default: return "?";
  }
}

static int timm_name(const en_arch *a, const en_param *e, char *buf, size_t n) {
  const char *f = e->role == EN_R_STEM_BN || e->role == EN_R_HEAD_BN ? bn_field(e->field)
                                                                      : wb_field(e->field);
  switch (e->role) {
    case EN_R_STEM_CONV: return snprintf(buf, n, "conv_stem.weight");
    case EN_R_STEM_BN: return snprintf(buf, n, "bn1.%s", f);
    case EN_R_HEAD_CONV: return snprintf(buf, n, "conv_head.weight");
    case EN_R_HEAD_BN: return snprintf(buf, n, "bn2.%s", f);
    case EN_R_FC: return snprintf(buf, n, "classifier.%s", f);
    default: break;
  }
  const en_block *b = &a->blocks[e->block];
  int is_bn = e->role == EN_R_EXPAND_BN || e->role == EN_R_DW_BN || e->role == EN_R_PROJECT_BN;
  return snprintf(buf, n, "blocks.%d.%d.%s.%s", b->stage, b->index_in_stage,
                  timm_layer(e->role, b->expand == 1), is_bn ? bn_field(e->field)
                                                             : wb_field(e->field));
}

/* torchvision MBConv: block.K with K = expand, dw, SE, project (expand absent when ratio 1);
 * conv-norm-act units hold the conv at .0 and BN at .1; SE holds fc1 / fc2. */
static int torchvision_name(const en_arch *a, const en_param *e, char *buf, size_t n) {
  int last_feature = EN_NUM_STAGES + 1;
  switch (e->role) {
    case EN_R_STEM_CONV: return snprintf(buf, n, "features.0.0.weight");
    case EN_R_STEM_BN: return snprintf(buf, n, "features.0.1.%s", bn_field(e->field));
    case EN_R_HEAD_CONV: return snprintf(buf, n, "features.%d.0.weight", last_feature);
    case EN_R_HEAD_BN:
      return snprintf(buf, n, "features.%d.1.%s", last_feature, bn_field(e->field));
    case EN_R_FC: return snprintf(buf, n, "classifier.1.%s", wb_field(e->field));
    default: break;
  }
  const en_block *b = &a->blocks[e->block];
  int k0 = b->expand == 1 ? -1 : 0; /* index of the expand unit */
  int k;
  const char *unit;
  switch (e->role) {
    case EN_R_EXPAND_CONV: k = k0; unit = "0.weight"; break;
    case EN_R_EXPAND_BN: k = k0; unit = "1"; break;
    case EN_R_DW_CONV: k = k0 + 1; unit = "0.weight"; break;
    case EN_R_DW_BN: k = k0 + 1; unit = "1"; break;
    case EN_R_SE_REDUCE: k = k0 + 2; unit = "fc1"; break;
    case EN_R_SE_EXPAND: k = k0 + 2; unit = "fc2"; break;
    case EN_R_PROJECT_CONV: k = k0 + 3; unit = "0.weight"; break;
    default: k = k0 + 3; unit = "1"; break; /* project BN */
  }
  const char *prefix = "features";
  if (e->role == EN_R_SE_REDUCE || e->role == EN_R_SE_EXPAND)
    return snprintf(buf, n, "%s.%d.%d.block.%d.%s.%s", prefix, b->stage + 1, b->index_in_stage,
                    k, unit, wb_field(e->field));
  if (e->role == EN_R_EXPAND_BN || e->role == EN_R_DW_BN || e->role == EN_R_PROJECT_BN)
    return snprintf(buf, n, "%s.%d.%d.block.%d.1.%s", prefix, b->stage + 1, b->index_in_stage, k,
                    bn_field(e->field));
  return snprintf(buf, n, "%s.%d.%d.block.%d.%s", prefix, b->stage + 1, b->index_in_stage, k,
                  unit);
}

static int lukemelas_name(const en_arch *a, const en_param *e, char *buf, size_t n) {
  (void)a;
  static const char *layer[] = {"_conv_stem", "_bn0", "_expand_conv", "_bn0",
                                "_depthwise_conv", "_bn1", "_se_reduce", "_se_expand",
                                "_project_conv", "_bn2", "_conv_head", "_bn1", "_fc"};
  int is_bn = e->role == EN_R_STEM_BN || e->role == EN_R_HEAD_BN || e->role == EN_R_EXPAND_BN ||
              e->role == EN_R_DW_BN || e->role == EN_R_PROJECT_BN;
  const char *f = is_bn ? bn_field(e->field) : wb_field(e->field);
  if (e->block < 0) return snprintf(buf, n, "%s.%s", layer[e->role], f);
  return snprintf(buf, n, "_blocks.%d.%s.%s", e->block, layer[e->role], f);
}

int en_param_name(const en_arch *a, const en_param *e, en_naming naming, char *buf, size_t n) {
  int len;
  switch (naming) {
    case EN_NAMING_TORCHVISION: len = torchvision_name(a, e, buf, n); break;
    case EN_NAMING_LUKEMELAS: len = lukemelas_name(a, e, buf, n); break;
    default: len = timm_name(a, e, buf, n); break;
  }
  return len > 0 && (size_t)len < n;
}

/* ---------------------------------------------------------------- init */

/* splitmix64: small, seedable, good enough for weight initialisation */
static uint64_t next_u64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static double uniform01(uint64_t *s) { return (next_u64(s) >> 11) * (1.0 / 9007199254740992.0); }

static double normal(uint64_t *s) {
  double u1 = uniform01(s), u2 = uniform01(s);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void en_params_init(en_params *p, uint64_t seed) {
  uint64_t s = seed;
  for (int i = 0; i < p->count; i++) {
    const en_param *e = &p->table[i];
    float *d = en_param_ptr(p, i);
    double fill = e->field == EN_F_VAR || (e->field == EN_F_WEIGHT && e->ndim == 1) ? 1.0 : 0.0;
    if (e->field == EN_F_WEIGHT && e->ndim == 4) {
      int groups = e->role == EN_R_DW_CONV ? e->shape[0] : 1;
      double fan_out = (double)e->shape[0] / groups * e->shape[2] * e->shape[3];
      double std = sqrt(2.0 / fan_out);
      for (int64_t j = 0; j < e->numel; j++) d[j] = (float)(normal(&s) * std);
    } else if (e->role == EN_R_FC && e->field == EN_F_WEIGHT) {
      double r = 1.0 / sqrt((double)e->shape[0]);
      for (int64_t j = 0; j < e->numel; j++) d[j] = (float)((2.0 * uniform01(&s) - 1.0) * r);
    } else {
      for (int64_t j = 0; j < e->numel; j++) d[j] = (float)fill;
    }
  }
}
