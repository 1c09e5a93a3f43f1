/* BN folding: y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta
 *             = conv_{w * s}(x) + (beta - mean * s),  s = gamma / sqrt(var + eps),
 * computed in double so folding adds no error beyond the final float rounding. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/bigalloc.h"
#include "core/error.h"
#include "infer/infer.h"

typedef struct carver {
  float *base;
  size_t used;
  float *plain; /* staging for a weight before it is packed (largest 1x1 or stem weight) */
  size_t plain_max;
} carver;

static float *carve(carver *c, size_t floats) {
  float *p = c->base ? c->base + c->used : NULL;
  c->used += (floats + 15) / 16 * 16;
  return p;
}

/* Per-output-channel scale and shift of a BN; writes shift into bias. */
static void bn_scale(const en_params *p, en_bn_ref bn, float eps, double *scale, float *bias,
                     int channels) {
  const float *g = en_param_ptr(p, bn.weight), *b = en_param_ptr(p, bn.bias);
  const float *m = en_param_ptr(p, bn.mean), *v = en_param_ptr(p, bn.var);
  for (int c = 0; c < channels; c++) {
    scale[c] = (double)g[c] / sqrt((double)v[c] + (double)eps);
    bias[c] = (float)((double)b[c] - (double)m[c] * scale[c]);
  }
}

/* (cout, cin, k, k) OIHW -> (cout, k, k, cin) OHWI, scaled per output channel. */
static void fold_dense(float *dst, float *bias, const en_params *p, int w_index, en_bn_ref bn,
                       float eps, double *scale) {
  const en_param *e = &p->table[w_index];
  int cout = e->shape[0], cin = e->shape[1], k = e->shape[2];
  const float *w = en_param_ptr(p, w_index);
  bn_scale(p, bn, eps, scale, bias, cout);
  for (int co = 0; co < cout; co++)
    for (int ci = 0; ci < cin; ci++)
      for (int ky = 0; ky < k; ky++)
        for (int kx = 0; kx < k; kx++)
          dst[(((size_t)co * k + ky) * k + kx) * cin + ci] =
              (float)(w[(((size_t)co * cin + ci) * k + ky) * k + kx] * scale[co]);
}

/* (C, 1, k, k) -> (k, k, C), scaled per channel. */
static void fold_depthwise(float *dst, float *bias, const en_params *p, int w_index,
                           en_bn_ref bn, float eps, double *scale) {
  const en_param *e = &p->table[w_index];
  int C = e->shape[0], k = e->shape[2];
  const float *w = en_param_ptr(p, w_index);
  bn_scale(p, bn, eps, scale, bias, C);
  for (int c = 0; c < C; c++)
    for (int t = 0; t < k * k; t++) dst[(size_t)t * C + c] = (float)(w[(size_t)c * k * k + t] * scale[c]);
}

static void copy_param(float *dst, const en_params *p, int index) {
  memcpy(dst, en_param_ptr(p, index), (size_t)p->table[index].numel * sizeof(float));
}

/* dst (cols, rows) = src (rows, cols) transposed */
static void transpose(float *dst, const float *src, int rows, int cols) {
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) dst[(int64_t)c * rows + r] = src[(int64_t)r * cols + c];
}

/* A dense conv (1x1, or the stem as an im2col GEMM over (ky, kx, ci)) folded and packed for the
 * kernels' gemm (kernels.h): (cout, k * k * cin) -> panels. */
static float *packed_dense(carver *c, float **bias, const en_params *p, int w_index,
                           en_bn_ref bn, float eps, double *scale) {
  const en_param *e = &p->table[w_index];
  int cout = e->shape[0], cols = e->shape[1] * e->shape[2] * e->shape[3];
  float *dst = carve(c, en_gemm_packed_floats(cols, cout));
  *bias = carve(c, (size_t)cout);
  if ((size_t)e->numel > c->plain_max) c->plain_max = (size_t)e->numel;
  if (c->base) {
    fold_dense(c->plain, *bias, p, w_index, bn, eps, scale);
    en_gemm_pack(dst, c->plain, cols, cout);
  }
  return dst;
}

/* Lay out (or, with c->base set, fill) every folded tensor. */
static void fold_all(carver *c, en_folded *f, const en_arch *a, const en_params *p, float eps,
                     double *scale) {
  int fill = c->base != NULL;
  f->stem_w = packed_dense(c, &f->stem_b, p, p->stem_w, p->stem_bn, eps, scale);
  for (int i = 0; i < a->num_blocks; i++) {
    const en_block *b = &a->blocks[i];
    const en_block_ref *r = &p->blocks[i];
    en_folded_block *fb = &f->blocks[i];
    if (r->expand_w >= 0)
      fb->expand_w = packed_dense(c, &fb->expand_b, p, r->expand_w, r->expand_bn, eps, scale);
    fb->dw_w = carve(c, (size_t)b->mid_ch * b->kernel * b->kernel);
    fb->dw_b = carve(c, (size_t)b->mid_ch);
    if (fill) fold_depthwise(fb->dw_w, fb->dw_b, p, r->dw_w, r->dw_bn, eps, scale);
    if (r->se_reduce_w >= 0) {
      fb->se_w1 = carve(c, (size_t)b->se_ch * b->mid_ch);
      fb->se_b1 = carve(c, (size_t)b->se_ch);
      fb->se_w2t = carve(c, (size_t)b->se_ch * b->mid_ch);
      fb->se_b2 = carve(c, (size_t)b->mid_ch);
      if (fill) {
        copy_param(fb->se_w1, p, r->se_reduce_w);
        copy_param(fb->se_b1, p, r->se_reduce_b);
        transpose(fb->se_w2t, en_param_ptr(p, r->se_expand_w), b->mid_ch, b->se_ch);
        copy_param(fb->se_b2, p, r->se_expand_b);
      }
    }
    fb->project_w = packed_dense(c, &fb->project_b, p, r->project_w, r->project_bn, eps, scale);
  }
  f->head_w = packed_dense(c, &f->head_b, p, p->head_w, p->head_bn, eps, scale);
  f->fc_w = carve(c, en_gemm_packed_floats(a->head_ch, a->num_classes));
  f->fc_b = carve(c, (size_t)a->num_classes);
  if (fill) {
    en_gemm_pack(f->fc_w, en_param_ptr(p, p->fc_w), a->head_ch, a->num_classes);
    copy_param(f->fc_b, p, p->fc_b);
  }
}

static int max_channels(const en_arch *a) {
  int m = a->head_ch > a->stem_ch ? a->head_ch : a->stem_ch;
  for (int i = 0; i < a->num_blocks; i++)
    if (a->blocks[i].mid_ch > m) m = a->blocks[i].mid_ch;
  return m;
}

effnet_status en_fold(en_folded *f, const en_arch *a, const en_params *p, float eps,
                      effnet_error *err) {
  memset(f, 0, sizeof *f);
  f->blocks = calloc((size_t)a->num_blocks, sizeof *f->blocks);
  double *scale = malloc((size_t)max_channels(a) * sizeof *scale);
  carver sizing = {NULL, 0, NULL, 0};
  if (f->blocks && scale) fold_all(&sizing, f, a, p, eps, scale);
  float *plain = f->blocks && scale ? malloc(sizing.plain_max * sizeof(float)) : NULL;
  if (plain) f->data = en_big_alloc(sizing.used * sizeof(float));
  if (!f->blocks || !scale || !plain || !f->data) {
    free(scale);
    free(plain);
    en_folded_free(f);
    return en_fail(err, EFFNET_E_NOMEM, "out of memory (folded weights)");
  }
  carver filling = {f->data, 0, plain, sizing.plain_max};
  fold_all(&filling, f, a, p, eps, scale);
  free(plain);
  free(scale);
  return EFFNET_OK;
}

void en_folded_free(en_folded *f) {
  if (!f) return;
  free(f->data);
  free(f->blocks);
  memset(f, 0, sizeof *f);
}
