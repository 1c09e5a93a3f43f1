/* Training forward and backward over the arena of graph_plan.c. The forward pass mirrors
 * src/infer/forward.c with BN unfolded (batch statistics); backward walks the blocks in
 * reverse with three gradient buffers, of which at most two are live at any time. */
#include <string.h>

#include "core/rng.h"
#include "train/graph.h"
#include "train/tkernels.h"

#define K (&en_kernels_fast)

typedef struct step_ctx {
  en_tgraph *g;
  en_params *p;
  const en_train_flags *f;
  int n;
  float eps;
  en_act act;
} step_ctx;

static float *gradp(const step_ctx *s, int index) { return s->g->grad + s->p->table[index].offset; }
static float *param(const step_ctx *s, int index) { return en_param_ptr(s->p, index); }

static en_conv_desc desc(const step_ctx *s, int h, int w, int c, int cout, int k, int stride) {
  en_conv_desc d;
  int after;
  d.n = s->n;
  d.h = h;
  d.w = w;
  d.cin = c;
  d.cout = cout;
  d.kernel = k;
  d.stride = stride;
  en_padding(s->g->arch->spec.padding, h, k, stride, &d.pad_top, &after);
  en_padding(s->g->arch->spec.padding, w, k, stride, &d.pad_left, &after);
  d.oh = en_conv_out(h, stride);
  d.ow = en_conv_out(w, stride);
  d.act = EN_ACT_NONE;
  return d;
}

/* BN (batch statistics) + activation after a conv; updates the running statistics. */
static void bn_forward(const step_ctx *s, float *y, en_tunit *u, en_bn_ref bn, int64_t rows,
                       int C, en_act act) {
  en_bn_act_forward_train(y, u->mean, u->var, u->x, param(s, bn.weight), param(s, bn.bias),
                          rows, C, s->eps, act);
  en_bn_update_running(param(s, bn.mean), param(s, bn.var), u->mean, u->var, C, rows,
                       s->f->bn_momentum);
}

static void bn_backward(const step_ctx *s, float *d, const en_tunit *u, en_bn_ref bn,
                        int64_t rows, int C, en_act act) {
  en_bn_act_backward(d, gradp(s, bn.weight), gradp(s, bn.bias), d, u->x, u->mean, u->var,
                     param(s, bn.weight), param(s, bn.bias), rows, C, s->eps, act);
}

/* The depthwise unit's BN (model activation), reading dy through squeeze-excite's gate. */
static void bn_backward_gated(const step_ctx *s, float *d, const en_bn_gate *gate,
                              const en_tunit *u, en_bn_ref bn, int64_t rows, int C) {
  en_bn_act_backward_gated(d, gradp(s, bn.weight), gradp(s, bn.bias), d, gate, u->x, u->mean,
                           u->var, param(s, bn.weight), param(s, bn.bias), rows, C, s->eps,
                           s->act);
}

/* PyTorch layouts -> kernel layouts: stem OIHW -> OHWI, depthwise (C,1,k,k) -> (k,k,C). */
static void pack_weights(const step_ctx *s) {
  const en_arch *a = s->g->arch;
  const float *w = param(s, s->p->stem_w);
  for (int co = 0; co < a->stem_ch; co++)
    for (int ci = 0; ci < 3; ci++)
      for (int t = 0; t < 9; t++) s->g->stem_w_ohwi[(co * 9 + t) * 3 + ci] = w[(co * 3 + ci) * 9 + t];
  for (int i = 0; i < a->num_blocks; i++) {
    const en_block *b = &a->blocks[i];
    const float *dw = param(s, s->p->blocks[i].dw_w);
    int kk = b->kernel * b->kernel;
    for (int c = 0; c < b->mid_ch; c++)
      for (int t = 0; t < kk; t++) s->g->blocks[i].dw_w[(int64_t)t * b->mid_ch + c] = dw[(int64_t)c * kk + t];
  }
}

static void unpack_grads(const step_ctx *s) {
  const en_arch *a = s->g->arch;
  float *w = gradp(s, s->p->stem_w);
  for (int co = 0; co < a->stem_ch; co++)
    for (int ci = 0; ci < 3; ci++)
      for (int t = 0; t < 9; t++) w[(co * 3 + ci) * 9 + t] = s->g->stem_g[(co * 9 + t) * 3 + ci];
  for (int i = 0; i < a->num_blocks; i++) {
    const en_block *b = &a->blocks[i];
    float *dw = gradp(s, s->p->blocks[i].dw_w);
    int kk = b->kernel * b->kernel;
    for (int c = 0; c < b->mid_ch; c++)
      for (int t = 0; t < kk; t++) dw[(int64_t)c * kk + t] = s->g->blocks[i].dw_g[(int64_t)t * b->mid_ch + c];
  }
}

/* Per-sample stochastic depth (timm drop_path): keep with 1 - rate, scaled by 1 / (1 - rate). */
static void draw_keep(const step_ctx *s, en_tblock *t, int block, uint64_t seed, int64_t step) {
  const en_arch *a = s->g->arch;
  double rate = a->blocks[block].has_skip ? s->f->drop_path * block / a->num_blocks : 0.0;
  en_rng r = en_rng_make(seed, EN_STREAM_DROP_PATH, (uint64_t)step * EN_MAX_BLOCKS + block);
  for (int i = 0; i < s->n; i++)
    t->keep[i] = rate <= 0.0 ? 1.0f
                 : (en_rng_next_uniform(&r) < rate ? 0.0f : (float)(1.0 / (1.0 - rate)));
}

static void block_forward(const step_ctx *s, int i) {
  const en_block *b = &s->g->arch->blocks[i];
  en_tblock *t = &s->g->blocks[i];
  const en_block_ref *r = &s->p->blocks[i];
  int64_t rows_in = (int64_t)s->n * t->h * t->w, rows_out = (int64_t)s->n * t->oh * t->ow;
  const float *x = t->in;
  if (b->expand != 1) {
    en_pointwise_forward_train(t->expand.x, x, param(s, r->expand_w), rows_in, b->in_ch,
                               b->mid_ch, s->g->packed);
    bn_forward(s, t->expanded, &t->expand, r->expand_bn, rows_in, b->mid_ch, s->act);
    x = t->expanded;
  }
  en_conv_desc d = desc(s, t->h, t->w, b->mid_ch, b->mid_ch, b->kernel, b->stride);
  K->depthwise(t->dw.x, x, t->dw_w, NULL, &d, NULL);
  bn_forward(s, t->dw_act, &t->dw, r->dw_bn, rows_out, b->mid_ch, s->act);
  const float *proj_in = t->dw_act;
  if (b->se_ch) {
    en_se_forward_train(t->se_out, t->pool, t->hidden, t->gate, t->dw_act,
                        param(s, r->se_reduce_w), param(s, r->se_reduce_b),
                        param(s, r->se_expand_w), param(s, r->se_expand_b), s->n,
                        (int64_t)t->oh * t->ow, b->mid_ch, b->se_ch, s->act);
    proj_in = t->se_out;
  }
  en_pointwise_forward_train(t->project.x, proj_in, param(s, r->project_w), rows_out,
                             b->mid_ch, b->out_ch, s->g->packed);
  bn_forward(s, t->out, &t->project, r->project_bn, rows_out, b->out_ch, EN_ACT_NONE);
  if (!b->has_skip) return;
  int64_t per = (int64_t)t->oh * t->ow * b->out_ch;
#pragma omp parallel for schedule(static)
  for (int64_t e = 0; e < s->n * per; e++) t->out[e] = t->out[e] * t->keep[e / per] + t->in[e];
}

static void head_forward(const step_ctx *s, const float *x, int64_t hw, uint64_t seed,
                         int64_t step) {
  en_tgraph *g = s->g;
  const en_arch *a = g->arch;
  int last = a->blocks[a->num_blocks - 1].out_ch, n = s->n, H = a->head_ch;
  en_pointwise_forward_train(g->head.x, x, param(s, s->p->head_w), n * hw, last, H,
                             g->packed);
  bn_forward(s, g->head_act, &g->head, s->p->head_bn, n * hw, H, s->act);
  K->pool(g->pooled, g->head_act, n, hw, H);
  float p = s->f->dropout, scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  en_rng r = en_rng_make(seed, EN_STREAM_DROPOUT, (uint64_t)step);
  for (int64_t e = 0; e < (int64_t)n * H; e++) {
    g->drop_mask[e] = p <= 0.0f ? 1.0f : (en_rng_next_uniform(&r) < p ? 0.0f : scale);
    g->dropped[e] = g->pooled[e] * g->drop_mask[e];
  }
  K->linear(g->logits, g->dropped, param(s, s->p->fc_w), param(s, s->p->fc_b), n, H,
            a->num_classes);
}

/* A buffer index not in {a, b} (-1 = none). */
static int free_buf(int a, int b) {
  for (int k = 0; k < 3; k++)
    if (k != a && k != b) return k;
  return -1;
}

/* Gradient of block i's output in grads[cur]; returns the buffer holding its input's. */
static int block_backward(const step_ctx *s, int i, int cur) {
  const en_block *b = &s->g->arch->blocks[i];
  en_tblock *t = &s->g->blocks[i];
  const en_block_ref *r = &s->p->blocks[i];
  float **G = s->g->grads;
  int64_t rows_in = (int64_t)s->n * t->h * t->w, hw = (int64_t)t->oh * t->ow;
  int64_t rows_out = s->n * hw;
  int held = b->has_skip ? cur : -1; /* the skip path still needs dOut at the end */
  int zi = cur;
  if (b->has_skip) {
    zi = free_buf(cur, -1);
    int64_t per = hw * b->out_ch;
#pragma omp parallel for schedule(static)
    for (int64_t e = 0; e < rows_out * b->out_ch; e++) G[zi][e] = G[cur][e] * t->keep[e / per];
  }
  bn_backward(s, G[zi], &t->project, r->project_bn, rows_out, b->out_ch, EN_ACT_NONE);
  int si = free_buf(held, zi);
  en_pointwise_backward(G[si], gradp(s, r->project_w), NULL, G[zi],
                        b->se_ch ? t->se_out : t->dw_act, param(s, r->project_w), rows_out,
                        b->mid_ch, b->out_ch, s->g->packed, s->g->packed_floats);
  en_bn_gate gate = {t->gate, en_se_pool_term(s->g->se_scratch, s->n, b->mid_ch), hw};
  if (b->se_ch) /* its input gradient is applied by the BN backward below (gate) */
    en_se_backward(NULL, gradp(s, r->se_reduce_w), gradp(s, r->se_reduce_b),
                   gradp(s, r->se_expand_w), gradp(s, r->se_expand_b), G[si], t->dw_act,
                   t->pool, t->hidden, t->gate, param(s, r->se_reduce_w),
                   param(s, r->se_expand_w), s->n, hw, b->mid_ch, b->se_ch, s->act,
                   s->g->se_scratch);
  bn_backward_gated(s, G[si], b->se_ch ? &gate : NULL, &t->dw, r->dw_bn, rows_out, b->mid_ch);
  en_conv_desc d = desc(s, t->h, t->w, b->mid_ch, b->mid_ch, b->kernel, b->stride);
  int ii;
  if (b->expand != 1) {
    int ei = free_buf(held, si);
    en_depthwise_backward(G[ei], t->dw_g, G[si], t->expanded, t->dw_w, &d);
    bn_backward(s, G[ei], &t->expand, r->expand_bn, rows_in, b->mid_ch, s->act);
    ii = free_buf(held, ei);
    en_pointwise_backward(G[ii], gradp(s, r->expand_w), NULL, G[ei], t->in,
                          param(s, r->expand_w), rows_in, b->in_ch, b->mid_ch, s->g->packed,
                          s->g->packed_floats);
  } else {
    ii = free_buf(held, si);
    en_depthwise_backward(G[ii], t->dw_g, G[si], t->in, t->dw_w, &d);
  }
  if (b->has_skip) K->add(G[ii], G[cur], rows_in * b->in_ch);
  return ii;
}

/* Head backward: from dlogits to the gradient of the last block's output (returned index). */
static int head_backward(const step_ctx *s, const float *x, int64_t hw) {
  en_tgraph *g = s->g;
  const en_arch *a = g->arch;
  int last = a->blocks[a->num_blocks - 1].out_ch, n = s->n, H = a->head_ch;
  float *dpool = g->grads[1];
  en_pointwise_backward(dpool, gradp(s, s->p->fc_w), gradp(s, s->p->fc_b), g->dlogits,
                        g->dropped, param(s, s->p->fc_w), n, H, a->num_classes, g->packed,
                        g->packed_floats);
  for (int64_t e = 0; e < (int64_t)n * H; e++) dpool[e] *= g->drop_mask[e];
  en_pool_backward(g->grads[0], dpool, n, hw, H);
  bn_backward(s, g->grads[0], &g->head, s->p->head_bn, n * hw, H, s->act);
  en_pointwise_backward(g->grads[1], gradp(s, s->p->head_w), NULL, g->grads[0], x,
                        param(s, s->p->head_w), n * hw, last, H, g->packed, g->packed_floats);
  return 1;
}

double en_tgraph_step(en_tgraph *g, en_params *params, const float *images, const int *labels,
                      int n, const en_train_flags *flags, uint64_t seed, int64_t step) {
  const en_arch *a = g->arch;
  step_ctx s = {g, params, flags, n, a->spec.bn_eps, a->act};
  pack_weights(&s);
  en_conv_desc d = desc(&s, g->h, g->w, 3, a->stem_ch, 3, 2);
  en_gemm_pack(g->packed, g->stem_w_ohwi, 27, a->stem_ch);
  K->dense(g->stem.x, images, g->packed, NULL, &d, g->stem_scratch);
  int64_t rows = (int64_t)n * d.oh * d.ow;
  bn_forward(&s, g->stem_act, &g->stem, params->stem_bn, rows, a->stem_ch, a->act);
  const float *x = g->stem_act;
  for (int i = 0; i < a->num_blocks; i++) {
    en_tblock *t = &g->blocks[i];
    t->in = (float *)x;
    draw_keep(&s, t, i, seed, step);
    block_forward(&s, i);
    x = t->out;
  }
  const en_tblock *lastb = &g->blocks[a->num_blocks - 1];
  int64_t hw = (int64_t)lastb->oh * lastb->ow;
  head_forward(&s, x, hw, seed, step);
  double loss = en_softmax_xent(g->dlogits, g->logits, labels, n, a->num_classes,
                                flags->label_smoothing);
  int cur = head_backward(&s, x, hw);
  for (int i = a->num_blocks - 1; i >= 0; i--) cur = block_backward(&s, i, cur);
  bn_backward(&s, g->grads[cur], &g->stem, params->stem_bn, rows, a->stem_ch, a->act);
  en_conv_backward_weight(g->stem_g, g->grads[cur], images, &d, g->stem_scratch);
  unpack_grads(&s);
  return loss;
}
