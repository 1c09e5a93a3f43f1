/* Training kernels: forward ops that keep what backward needs, and the backward of every op of
 * an EfficientNet. Activations are NHWC (rows = n*h*w pixels, channels innermost), as in
 * inference. Every kernel overwrites its outputs (no accumulation) unless it says otherwise;
 * "may alias" means the output pointer may equal that input pointer.
 *
 * Memory-efficient by design: a conv-BN-activation unit keeps only the conv output x (before
 * BN) and the per-channel batch statistics; BN output and the activation derivative are
 * recomputed in backward (swish: s = sigmoid(z), d swish/dz = s * (1 + z * (1 - s))).
 *
 * Reductions (BN sums, dw, SE pools, the loss) are split into blocks whose number depends on
 * the shape only, accumulated in double and summed in block order: results do not depend on
 * the OpenMP thread count (the GEMMs are as deterministic as BLAS, i.e. for a fixed count).
 *
 * Each kernel is checked against finite differences of a double-precision forward
 * (tests/test_grad.c). */
#ifndef EN_TKERNELS_H
#define EN_TKERNELS_H

#include <stdint.h>

#include "kernels/kernels.h"

/* BN in training mode followed by an activation (EN_ACT_NONE allowed).
 *   x (rows, C) conv output; gamma, beta (C).
 *   mean, var (C): batch mean and biased variance (over rows), written.
 *   y (rows, C) = act(gamma * (x - mean) / sqrt(var + eps) + beta). y may alias x only when
 *   the caller does not need x afterwards (backward needs x). */
void en_bn_act_forward_train(float *y, float *mean, float *var, const float *x,
                             const float *gamma, const float *beta, int64_t rows, int C,
                             float eps, en_act act);

/* Backward of en_bn_act_forward_train given dy = dL/dy (rows, C).
 *   dx (rows, C) = dL/dx (may alias dy, never x; it also holds dy * act'(z) in between);
 *   dgamma, dbeta (C) written.
 *   x, mean, var, gamma, beta, eps, act as in forward (z is recomputed from x). */
/* The same with dy read as dy * gate[image] + add[image] (gate, add (n, C), image = row / hw):
 * squeeze-excite's input gradient (en_se_backward with dx NULL) applied while BN reads it,
 * instead of in a pass of its own. */
typedef struct en_bn_gate {
  const float *gate, *add;
  int64_t hw;
} en_bn_gate;
void en_bn_act_backward_gated(float *dx, float *dgamma, float *dbeta, const float *dy,
                              const en_bn_gate *gate, const float *x, const float *mean,
                              const float *var, const float *gamma, const float *beta,
                              int64_t rows, int C, float eps, en_act act);
void en_bn_act_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                        const float *x, const float *mean, const float *var,
                        const float *gamma, const float *beta, int64_t rows, int C, float eps,
                        en_act act);

/* BN in eval mode with running statistics (used for validation when not folding). Not needed
 * by training itself; inference folds BN. */

/* Running statistics, PyTorch convention: r = (1 - momentum) * r + momentum * batch, the
 * variance unbiased (var * count / (count - 1)). TF's decay d equals momentum 1 - d.
 * count < 2: the unbiased variance is undefined (PyTorch refuses to train BN then); the
 * running variance is left unchanged and only the mean is updated. */
void en_bn_update_running(float *running_mean, float *running_var, const float *mean,
                          const float *var, int C, int64_t count, float momentum);

/* Activation backward from the pre-activation z: dz = dy * act'(z). dz may alias dy. */
void en_act_backward(float *dz, const float *dy, const float *z, int64_t count, en_act act);

/* Dense conv (the stem): weight gradient only (its input is the image).
 *   dw (cout, k, k, cin) OHWI, written; dout (n, oh, ow, cout); in (n, h, w, cin).
 *   scratch: en_conv_backward_weight_scratch(d) floats (may be NULL when that is 0). */
size_t en_conv_backward_weight_scratch(const en_conv_desc *d);
void en_conv_backward_weight(float *dw, const float *dout, const float *in,
                             const en_conv_desc *d, float *scratch);

/* 1x1 conv / linear without bias: out (rows, cout) = in (rows, cin) . w (cout, cin)^T.
 *   din (rows, cin) = dout . w (skipped when din is NULL);
 *   dw (cout, cin) = dout^T . in, written;  db (cout) = column sums of dout when not NULL.
 *   scratch: scratch_floats >= en_pointwise_scratch_floats(cin, cout) floats (the packed
 *   weights or their transpose; for the backward, room for more cin x cout partial weight
 *   gradients lets more threads share that product). */
size_t en_pointwise_scratch_floats(int cin, int cout);
void en_pointwise_forward_train(float *out, const float *in, const float *w, int64_t rows,
                                int cin, int cout, float *scratch);
void en_pointwise_backward(float *din, float *dw, float *db, const float *dout,
                           const float *in, const float *w, int64_t rows, int cin, int cout,
                           float *scratch, size_t scratch_floats);

/* Depthwise conv backward (weights HWC (k, k, C) as in inference, no bias).
 *   din (n, h, w, C) written (skipped when NULL); dw (k, k, C) written;
 *   dout (n, oh, ow, C); in (n, h, w, C); d describes the forward conv (d->act ignored).
 *   Allocates min(n * oh, 32) * k * k * C * 12 bytes of partial sums for dw (falls back to a
 *   serial float sum if that fails). */
void en_depthwise_backward(float *din, float *dw, const float *dout, const float *in,
                           const float *w, const en_conv_desc *d);

/* Squeeze-excite, training forward. x (n, hw, C) is the depthwise activation output (kept).
 *   y (n, hw, C) = x * gate (must not alias x: y holds act(hidden) for a GEMM before it is
 *   written);
 *   pool (n, C) = mean over hw of x; hidden (n, se) = w1 . pool + b1 (pre-activation);
 *   gate (n, C) = sigmoid(w2 . act(hidden) + b2). w1 (se, C), w2 (C, se). */
void en_se_forward_train(float *y, float *pool, float *hidden, float *gate, const float *x,
                         const float *w1, const float *b1, const float *w2, const float *b2,
                         int n, int64_t hw, int C, int se, en_act act);

/* Squeeze-excite backward. dy (n, hw, C); dx (n, hw, C) = dy * gate + (pooling path) may alias
 * dy; dx NULL leaves it to the consumer: the pooling path's (n, C) term is then at
 * en_se_pool_term(scratch, n, C) (en_bn_act_backward_gated's add, with gate as its gate).
 *   dw1 (se, C), db1 (se), dw2 (C, se), db2 (C) written.
 *   scratch: n * (2 * C + 2 * se) floats. */
/* Where en_se_backward leaves the pooling path's (n, C) term in its scratch. */
static inline float *en_se_pool_term(float *scratch, int n, int C) {
  return scratch + (int64_t)n * C;
}
void en_se_backward(float *dx, float *dw1, float *db1, float *dw2, float *db2, const float *dy,
                    const float *x, const float *pool, const float *hidden, const float *gate,
                    const float *w1, const float *w2, int n, int64_t hw, int C, int se,
                    en_act act, float *scratch);

/* Global average pool backward: dx (n, hw, C) = dout (n, C) / hw. */
void en_pool_backward(float *dx, const float *dout, int n, int64_t hw, int C);

/* Softmax cross-entropy with label smoothing eps (target 1 - eps + eps / K on the label,
 * eps / K elsewhere, as torch.nn.CrossEntropyLoss(label_smoothing=eps)). Mean over n.
 *   logits (n, K); labels (n) in [0, K). dlogits (n, K) = d mean loss / d logits (may be NULL;
 *   may alias logits). Returns the mean loss (computed in double). */
double en_softmax_xent(float *dlogits, const float *logits, const int *labels, int n, int K,
                       float smoothing);

#endif
