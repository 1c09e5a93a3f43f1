/* Inference: BN folded into the convolutions once, activations in one planned arena (no
 * allocation inside the forward pass), NHWC throughout. */
#ifndef EN_INFER_H
#define EN_INFER_H

#include <stddef.h>

#include "effnet.h"
#include "kernels/kernels.h"
#include "model/arch.h"
#include "model/params.h"

/* 1x1 weights, the stem and the classifier are packed for the kernels' gemm (kernels.h):
 * "packed (cout, cin)" below. */
typedef struct en_folded_block {
  float *expand_w, *expand_b;   /* packed (mid, in), NULL when expand ratio is 1 */
  float *dw_w, *dw_b;           /* (k, k, mid) */
  float *se_w1, *se_b1;         /* (se, mid), NULL without SE */
  float *se_w2t, *se_b2;        /* (se, mid): the (mid, se) expand weights transposed */
  float *project_w, *project_b; /* packed (out, mid) */
} en_folded_block;

typedef struct en_folded {
  float *data;
  float *stem_w, *stem_b; /* packed (stem, 3 * 3 * 3), columns (ky, kx, ci) as im2col's */
  en_folded_block *blocks;
  float *head_w, *head_b; /* packed (head, last) */
  float *fc_w, *fc_b;     /* packed (classes, head) */
} en_folded;

/* Fold BN (eps) into the weights of params, re-laid for the kernels. */
effnet_status en_fold(en_folded *f, const en_arch *arch, const en_params *params, float eps,
                      effnet_error *err);
void en_folded_free(en_folded *f);

/* Whether a block's expand and depthwise run fused (kernels' expand_depthwise) for an input of
 * n images of h x w: when the expanded tensor is too big to stay in cache between the two (early
 * stages) and rows are wide enough for a GEMM per row to be efficient. */
int en_fuse_front(const en_block *b, int64_t n, int h, int w);
/* Whether the stem and the first block's depthwise conv run as one op (kernels' stem_depthwise):
 * where that block has no expand and no skip connection (the stem's output is needed by nothing
 * else), as in every EfficientNet. */
int en_fuse_stem(const en_arch *arch);

/* Where a batch of h x w images is best split (en_forward): the first block from which on the
 * batch runs layer by layer, each image having run on its own through the stem and the blocks
 * before it; 0 for no split. Early blocks move megabytes of activations per image and read
 * little weight (B0 224: 1.3-1.8 MB against 0.01-0.6 MB): run for a whole batch, the tensors
 * between layers leave the L2 where one image's stay in it. Late blocks read more weight than
 * activation (B0's 7 x 7 stage: 2.2 MB against 0.5 MB), which a batch reads once. */
int en_split_block(const en_arch *arch, int h, int w);

/* Planes (kernels.h) of the small depthwise convs' inputs where their expand runs unfused (the
 * expand GEMM writes them, the depthwise conv reads its tiles there): one set per depthwise
 * input shape, window and padding, sized for the most channels of the blocks that share it. */
#define EN_PLANE_SETS 16
typedef struct en_plane_set {
  int h, w, channels;
  en_planes planes;
} en_plane_set;

/* The activation arena for one input shape and thread count. */
typedef struct en_plan {
  int n, h, w, threads;
  size_t floats; /* total */
  float *arena;  /* 64-byte aligned */
  float *ping, *pong, *expanded, *dw, *pool, *se_scratch, *im2col;
  float *gate;    /* (n, mid) squeeze-excite gates */
  float *gated_w; /* one block's packed projection weights times one image's gate */
  float *ring;    /* fused expand + depthwise: per-thread rings of expanded rows */
  /* floats in ping (and pong), expanded and dw: with two threads or more, each tensor written
   * there is centred on the buffer's middle (en_plan_place) */
  size_t ping_cap, expanded_cap, dw_cap;
  /* the plane sets, in memory of their own (calloc: zero, and pages the CPU never uses, where
   * the planes do not pay, are never touched) */
  en_plane_set sets[EN_PLANE_SETS];
  int set_count;
  void *planes_mem;
} en_plan;

/* The planes for depthwise conv d's input (n, h, w, d->cin), or NULL where the plan has none. */
const en_planes *en_plan_planes(const en_plan *plan, const en_conv_desc *d);

/* Where a tensor of `pixels` rows of c floats starts in a buffer of cap floats: its row
 * pixels / 2 on the buffer's middle (within 16 floats: the start stays 64-byte aligned), so
 * that with two threads, which take the first and the second half of a tensor's rows (the
 * GEMM's row blocks, the depthwise conv's and the fused kernels' row bands), each thread
 * writes the same half of the buffer whatever the tensor: a line that one thread wrote last is
 * not taken over by the other (on CPUs whose cores sit on two dies, a line moving between them
 * costs several times a miss to L3). cap must be at least pixels * c + c + 32. */
float *en_plan_place(float *buf, size_t cap, int64_t pixels, int c);

/* Arena size in floats for an input shape; EFFNET_E_LIMIT when it exceeds max_bytes. */
effnet_status en_plan_size(const en_arch *arch, int n, int h, int w, int threads,
                           size_t max_bytes, size_t *floats, effnet_error *err);
/* (Re)allocate plan for the shape; keeps the arena if the shape is unchanged. */
effnet_status en_plan_prepare(en_plan *plan, const en_arch *arch, int n, int h, int w,
                              int threads, size_t max_bytes, effnet_error *err);
void en_plan_free(en_plan *plan);

typedef struct en_forward_args {
  const en_arch *arch;
  const en_folded *weights;
  const en_kernels *kernels;
  en_plan *plan;   /* the batch's arena; unused when lanes is set */
  en_plan *lanes;  /* image lanes (see en_forward): lane_count one-image arenas, or NULL */
  int lane_count;
  int batch;       /* images, when lanes is set */
  int split_at;    /* > 0: the batch split there (en_split_block), lanes[0] its one-image arena */
  effnet_padding padding; /* SYMMETRIC or TF_SAME */
  effnet_feature_fn hook;
  void *hook_user;
  effnet_profile *profile; /* NULL: no timing */
} en_forward_args;

/* input (n, 3, h, w) NCHW as prepared in plan; logits (n, classes). With lanes, the batch runs
 * as lane_count image lanes instead: a team of lane_count threads takes the images one at a
 * time (whichever thread is free takes the next), each through the whole network on one
 * thread with its own one-image arena, so threads never wait for each other inside a layer and
 * each image's activations stay in its core's cache. The results are those of the batch
 * path: every kernel computes an image's outputs the same way whatever else is in the batch.
 * With split_at > 0, the lanes run only the stem and the blocks before split_at, and the rest
 * runs on the whole batch in plan (see en_split_block). */
void en_forward(const en_forward_args *args, const float *input, float *logits);

#endif
