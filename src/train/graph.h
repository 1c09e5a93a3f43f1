/* The training graph: one forward pass in training mode that keeps what backward needs, and
 * the backward pass through every block, over the parameter block of a model (PyTorch
 * layouts). Activations are NHWC in one arena sized once for the largest batch; a step
 * allocates nothing.
 *
 * What is kept per conv-BN-activation unit is only the conv output and the batch statistics
 * (plus the activation, which is the next conv's input): BN output and the activation
 * derivative are recomputed in backward (src/train/tkernels.h). */
#ifndef EN_GRAPH_H
#define EN_GRAPH_H

#include <stdint.h>

#include "effnet.h"
#include "kernels/kernels.h"
#include "model/arch.h"
#include "model/params.h"

typedef struct en_train_flags {
  float dropout;         /* before the classifier (paper: 0.2 for B0 .. 0.5 for B7) */
  float drop_path;       /* stochastic depth: block i of N is dropped with drop_path * i / N
                            (timm, TF survival_prob), residual blocks only */
  float bn_momentum;     /* PyTorch convention (0.1 default; TF's decay 0.99 == 0.01) */
  float label_smoothing; /* paper: 0.1 */
} en_train_flags;

/* A conv output kept for backward with its BN batch statistics. */
typedef struct en_tunit {
  float *x;         /* conv output, before BN */
  float *mean, *var; /* batch statistics (C) */
} en_tunit;

typedef struct en_tblock {
  int h, w, oh, ow;
  float *in;        /* block input: the previous block's out (not owned) */
  en_tunit expand, dw, project;
  float *expanded;  /* act(BN(expand)) = depthwise input; == in without expansion */
  float *dw_act;    /* act(BN(depthwise)) = SE input */
  float *se_out;    /* dw_act * gate = project input; == dw_act without SE */
  float *pool, *hidden, *gate; /* SE: (n, C), (n, se), (n, C) */
  float *out;       /* block output */
  float *keep;      /* (n) drop-path multipliers: 0 or 1 / (1 - rate) */
  float *dw_w, *dw_g; /* depthwise weights and their gradient, kernel layout (k, k, C) */
} en_tblock;

typedef struct en_tgraph {
  const en_arch *arch;
  int max_n, h, w;
  float *arena;
  size_t arena_floats;
  en_tunit stem, head;
  int stem_h, stem_w;
  float *stem_act, *head_act; /* act(BN(.)) outputs */
  float *stem_w_ohwi, *stem_g;   /* stem weights / gradient, kernel layout (cout, 3, 3, 3) */
  en_tblock *blocks;
  float *pooled, *dropped, *drop_mask; /* (n, head) */
  float *logits, *dlogits;             /* (n, classes) */
  float *grads[3];                     /* backward ping-pong, max activation size each */
  float *stem_scratch, *se_scratch; /* the stem's patches or weight-gradient partials; SE */
  float *packed;                       /* packed 1x1 weights of the GEMM running now, or */
  size_t packed_floats;                /* partial weight gradients (one per extra thread) */
  float *grad;                         /* parameter gradients, layout of en_params.data */
  int64_t grad_floats;
} en_tgraph;

/* Plan the arena for batches of up to max_n images of h x w. EFFNET_E_LIMIT when the arena
 * would exceed max_bytes. */
effnet_status en_tgraph_init(en_tgraph *g, const en_arch *arch, const en_params *params,
                             int max_n, int h, int w, size_t max_bytes, effnet_error *err);
void en_tgraph_free(en_tgraph *g);

/* Bytes the arena of en_tgraph_init would take (for messages and the memory report). */
size_t en_tgraph_bytes(const en_arch *arch, int max_n, int h, int w);

/* One training step's forward and backward: images (n, h, w, 3) NHWC, labels (n).
 * Fills g->logits and g->grad, updates the BN running statistics in params (PyTorch does that
 * in the forward pass), and returns the mean loss. Dropout and drop-path masks are drawn from
 * (seed, step). n <= max_n. Parameters are read, never written, except running statistics. */
double en_tgraph_step(en_tgraph *g, en_params *params, const float *images, const int *labels,
                      int n, const en_train_flags *flags, uint64_t seed, int64_t step);

#endif
