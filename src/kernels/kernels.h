/* Kernels see raw pointers, dims and a small descriptor, never a model. Activations are NHWC
 * (channels innermost): 1x1 convs become plain GEMMs over pixels, depthwise and SE vectorise
 * over channels, and no layout reorder happens inside the network.
 *
 * Each op has a naive reference kernel (the oracle, every case supported) and may have a fast
 * one; en_kernels is the op table a model runs with. Adding an op: a field here, a reference
 * kernel, its test, optionally a fast kernel. EN_KERNEL_OPS counts the fields so a half-added
 * op fails to compile (see the static assert in kernels.c). */
#ifndef EN_KERNELS_H
#define EN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "model/arch.h"

/* A 2-D convolution over NHWC input (n, h, w, cin) -> (n, oh, ow, cout). */
typedef struct en_conv_desc {
  int n, h, w, cin, cout;
  int kernel, stride;
  int pad_top, pad_left; /* bottom/right padding is implied by oh, ow */
  int oh, ow;
  en_act act; /* applied after the bias */
} en_conv_desc;

/* A tensor (n, h, w, C), C a multiple of 16, held as the small depthwise kernel's tiles
 * (depthwise_small.h): per 16 channels and image, a plane of rows x cols pixels of 16 floats,
 * the image at row pad_top, column pad_left, zeros around it. The expand GEMM before a small
 * depthwise conv writes its output there (gemm_planes) and the depthwise kernel reads its tile
 * in place (depthwise_planes: the window's zero padding is the plane's), where it copied each
 * into a zero-padded tile before. Channels c .. c + 15 (c a multiple of 16) of pixel r = (b h +
 * y) w + x are at data + c / 16 * block + at[r], at[r] = (b rows cols + (y + pad_top) cols + x +
 * pad_left) 16; every other float of the planes is 0. The planes follow each other (images,
 * then blocks of 16 channels) and, after the last, pad_top + 1 rows of zeros; their zeros serve
 * twice: a window reaching past an image row's right end reads on into the next row's left
 * margin, past its bottom into the next plane's top rows (en_planes_fit). */
typedef struct en_planes {
  float *data;
  const int64_t *at;     /* n h w offsets (en_planes_index) */
  int64_t block;         /* floats from one 16 channels to the next: n rows cols 16 */
  int rows, cols;        /* a plane's pixels */
  int pad_top, pad_left; /* the image's place in it */
} en_planes;
#define EN_PLANE_LANES 16

/* conv: dense conv, weights (cout, kernel, kernel, cin) (OHWI), bias (cout).
 *   scratch: en_conv_scratch_floats(d) floats (may be NULL when that is 0).
 * pointwise: out (rows, cout) = act(in (rows, cin) . w(cout, cin)^T + bias); rows = n*h*w.
 * depthwise: weights (kernel, kernel, C) (HWC), bias (C), cin == cout == C; when pool is not
 *   NULL it receives (n, C) sums of the output over space (for squeeze-excite).
 * se: x (n, hw, C) *= sigmoid(w2 . act(w1 . (pool / hw) + b1) + b2) per image and channel;
 *   w1 (se, C); w2t (se, C) is w2 (C, se) transposed, so the second product runs over
 *   contiguous channels like the first; scratch: n * (se + C) floats.
 * pool: out (n, C) = mean over hw of in (n, hw, C).
 * linear: out (n, cout) = in (n, cin) . w(cout, cin)^T + bias.
 * add: out[i] += in[i], count elements.
 * gemm: out (rows, cout) = act(in (rows, cin) . W^T + bias) + residual, W packed by
 *   en_gemm_pack (one layout for every table); bias and residual (rows, cout) may be NULL.
 * se_gate: gate (n, C) = sigmoid(w2 . act(w1 . (pool / hw) + b1) + b2) (w2t as for se), pool
 *   the (n, C) sums of the depthwise output; scratch: se floats. The inference path folds the
 *   gate into the projection's packed weights (en_gemm_pack_scaled) instead of rescaling the
 *   activations.
 * expand_depthwise: out = depthwise(act(x (n, h, w, cin) . E^T + eb)) as `depthwise` with pool,
 *   E packed (mid, cin); d describes the depthwise (h, w, cin = cout = mid, act for both).
 *   expanded: n * h * w * mid floats the reference kernel materialises the expanded tensor in;
 *   scratch: en_expand_depthwise_scratch(d, threads) floats the fused kernel keeps its rings
 *   in (it never touches `expanded`, so those pages are never faulted in).
 * dense: the stem's dense conv, out (n, oh, ow, cout) = act(conv(in) + bias) with the OHWI
 *   weights (cout, kernel * kernel * cin) packed by en_gemm_pack; bias may be NULL; scratch:
 *   en_conv_scratch_floats(d) floats (one image's patches; the fast kernel needs it only for
 *   windows of more than EN_DENSE_TAPS taps).
 * planes_pay: whether the expand before depthwise conv d (its input: n, h, w, C) should write
 *   planes for depthwise_planes (the fast kernels have them for d on this CPU); the reference
 *   table says never, its planes ops being the oracle of the fast ones.
 * gemm_planes: gemm without residual into planes (cout a multiple of 16, rows = n h w).
 * depthwise_planes: depthwise from planes of its input (d->cin a multiple of 16).
 * stem_depthwise: out = depthwise(dense(img)) as `depthwise` with pool: the stem's dense conv sd
 *   of the NHWC image (weights packed as for dense, bias may be NULL) and the first block's
 *   depthwise conv d (h, w = sd's oh, ow; cin = cout = sd->cout); stem_out: n * oh * ow * cout
 *   floats the reference kernel (and the fast one where it has no direct stem row) writes the
 *   stem's output to; scratch: en_stem_depthwise_scratch(sd, d, threads) floats. */
typedef struct en_kernels {
  const char *name;
  void (*conv)(float *out, const float *in, const float *w, const float *bias,
               const en_conv_desc *d, float *scratch);
  void (*pointwise)(float *out, const float *in, const float *w, const float *bias,
                    int64_t rows, int cin, int cout, en_act act);
  void (*depthwise)(float *out, const float *in, const float *w, const float *bias,
                    const en_conv_desc *d, float *pool);
  void (*se)(float *x, const float *pool, const float *w1, const float *b1, const float *w2t,
             const float *b2, int n, int64_t hw, int channels, int se_channels, en_act act,
             float *scratch);
  void (*pool)(float *out, const float *in, int n, int64_t hw, int channels);
  void (*linear)(float *out, const float *in, const float *w, const float *bias, int n,
                 int cin, int cout);
  void (*add)(float *out, const float *in, int64_t count);
  void (*gemm)(float *out, const float *in, const float *packed, const float *bias,
               const float *residual, int64_t rows, int cin, int cout, en_act act);
  void (*se_gate)(float *gate, const float *pool, const float *w1, const float *b1,
                  const float *w2t, const float *b2, int n, int64_t hw, int channels,
                  int se_channels, en_act act, float *scratch);
  void (*expand_depthwise)(float *out, float *pool, const float *x, int cin,
                           const float *expand_packed, const float *expand_bias,
                           const float *dw_w, const float *dw_b, const en_conv_desc *d,
                           float *expanded, float *scratch);
  void (*dense)(float *out, const float *in, const float *packed, const float *bias,
                const en_conv_desc *d, float *scratch);
  void (*stem_depthwise)(float *out, float *pool, const float *img, const float *stem_packed,
                         const float *stem_bias, const en_conv_desc *sd, const float *dw_w,
                         const float *dw_b, const en_conv_desc *d, float *stem_out,
                         float *scratch);
  int (*planes_pay)(const en_conv_desc *d);
  void (*gemm_planes)(const en_planes *out, const float *in, const float *packed,
                      const float *bias, int64_t rows, int cin, int cout, en_act act);
  void (*depthwise_planes)(float *out, const en_planes *in, const float *w, const float *bias,
                           const en_conv_desc *d, float *pool);
} en_kernels;

#define EN_KERNEL_OPS 15
/* The tile (rows x cols pixels, its input at d's padding) that depthwise conv d reads from
 * planes, or 0 where the planes do not apply to d (C not a multiple of 16, or a window, stride
 * or image the small depthwise kernel does not take: src/kernels/depthwise_small.c). */
int en_planes_shape(const en_conv_desc *d, int *rows, int *cols);
/* Whether planes q hold d's input with room for its tile (the planes' padding at least d's);
 * offset: the tile's first float in each plane. */
int en_planes_fit(const en_planes *q, const en_conv_desc *d, int64_t *offset);
/* q's offsets (q->at, n h w of them) for images of h x w */
void en_planes_index(int64_t *at, const en_planes *q, int n, int h, int w);
size_t en_expand_depthwise_scratch(const en_conv_desc *d, int threads);
size_t en_stem_depthwise_scratch(const en_conv_desc *sd, const en_conv_desc *d, int threads);

/* Packed 1x1 weights: panels of EN_GEMM_PANEL output channels, each (cin, EN_GEMM_PANEL)
 * row-major, the last zero-padded: packed[(p * cin + k) * PANEL + j] = w[(p * PANEL + j) * cin
 * + k]. A row of a panel is one aligned vector of the GEMM's micro-kernel. */
#define EN_GEMM_PANEL 16
size_t en_gemm_packed_floats(int cin, int cout);
/* The per-core L2 cache in bytes (src/kernels/gemm.c; 512 KiB where the system does not say). */
int64_t en_l2_bytes(void);
/* A tensor of more bytes than this many L2s is taken to live in memory rather than in the caches:
 * the depthwise convs write such an output with non-temporal stores (depthwise_row.h), and the
 * GEMM prefetches such an input a row block ahead (gemm.c). */
#define EN_MEMORY_L2S 8
/* w (cout, cin) -> packed */
void en_gemm_pack(float *packed, const float *w, int cin, int cout);
/* w (cout, cin) packed as the weights of the GEMM out (rows, cin) = in (rows, cout) . w, i.e.
 * W^T in en_gemm_pack's layout with cin outputs (en_gemm_packed_floats(cout, cin) floats): the
 * input gradient of a 1x1 conv in training */
void en_gemm_pack_transposed(float *packed, const float *w, int cin, int cout);
/* packed copy with input channel k scaled by scale[k]: W . diag(scale), i.e. the weights that
 * applied to x give the GEMM of x * scale (squeeze-excite's gate on the projection's input) */
void en_gemm_pack_scaled(float *dst, const float *packed, const float *scale, int cin, int cout);

extern const en_kernels en_kernels_ref;  /* naive reference: the oracle */
extern const en_kernels en_kernels_fast; /* fast where available, reference elsewhere */

size_t en_conv_scratch_floats(const en_conv_desc *d);
/* One image's patches for a dense conv: cols (oh * ow, k * k * cin), columns ordered
 * (ky, kx, ci) like OHWI weights; zeros where the window leaves the image. */
void en_im2col(float *cols, const float *in, const en_conv_desc *d);
/* The direct dense conv (src/kernels/stem.c) handles windows of up to EN_DENSE_TAPS taps
 * (k * k * cin; the stem has 27) in strips of EN_DENSE_PIX output pixels. en_dense_patches
 * writes the patches of pixels (oy, ox0 .. ox0 + np) of one image as patch[j * taps + t],
 * t ordered (ky, kx, ci) like OHWI weights, zeros outside the image, and zeros for strip
 * pixels j >= np (patch holds EN_DENSE_PIX * taps floats). */
#define EN_DENSE_TAPS 64
#define EN_DENSE_PIX 8
void en_dense_patches(float *patch, const float *img, const en_conv_desc *d, int oy, int ox0,
                      int np);
/* A direct dense conv's output row oy of one image (img), all output channels, written to out
 * (ow pixels of cout floats). */
typedef void (*en_dense_row_fn)(float *out, const float *img, const float *packed,
                                const float *bias, const en_conv_desc *d, int oy);
/* the AVX2 + FMA one (src/kernels/stem_avx2.c) */
void en_dense_row_avx2(float *out, const float *img, const float *packed, const float *bias,
                       const en_conv_desc *d, int oy);
/* The row function en_fast_dense uses for d on this CPU, or NULL where it computes patches and
 * a GEMM instead (more than EN_DENSE_TAPS taps, no AVX2 or AVX-512) */
en_dense_row_fn en_fast_dense_row(const en_conv_desc *d);

/* Fast kernels shared between files of the fast table (src/kernels/fast.c, depthwise.c,
 * gemm.c, mbconv.c). Depthwise windows up to EN_MAX_KERNEL (the family uses 3 and 5; larger
 * ones fall back to the reference kernel). */
#define EN_MAX_KERNEL 7
void en_fast_depthwise(float *out, const float *in, const float *w, const float *bias,
                       const en_conv_desc *d, float *pool);
/* en_fast_depthwise for small images (src/kernels/depthwise_small.c): returns 0, having done
 * nothing, where it does not apply (window not 3 or 5, stride not 1 or 2, image too big) */
int en_fast_depthwise_small(float *out, const float *in, const float *w, const float *bias,
                            const en_conv_desc *d, float *pool);
/* its AVX2 task (src/kernels/depthwise_small_avx2.c): 8-channel block i of one image; next:
 * input lines to prefetch meanwhile, or NULL; given: the block's tile in planes (its first
 * pixel's 8 floats, pixels 16 floats apart, rows `stride` pixels apart), or NULL */
void en_small_task_avx2(float *out, const float *img, const float *w, const float *bias,
                        const en_conv_desc *d, int i, float *pool, const float *next,
                        const float *given, int stride);
/* Depthwise outputs of more bytes per image than this are written to memory with
 * non-temporal stores (src/kernels/depthwise_row.h, stream_output); 0, the default:
 * EN_MEMORY_L2S per-core L2 caches. Tests set 1 to reach that path with small tensors. */
extern int64_t en_dw_stream_least;
/* One output row, channel blocks [i0, i1) of EN_LANES channels (the last block of C > EN_LANES
 * channels, when partial, covers channels C - EN_LANES .. C - 1 and writes only its new ones) */
void en_fast_depthwise_row(float *out, const float *const *rows, const float *w,
                           const float *bias, const en_conv_desc *d, int oy, float *pool, int i0,
                           int i1);
/* en_fast_depthwise_row's AVX2 variant (src/kernels/depthwise_avx2.c: 8-float vectors), same
 * block units; from_image: the rows are an input image's, in memory (prefetched ahead where it
 * is large), not the fused path's ring rows */
void en_depthwise_row_avx2(float *out, const float *const *rows, const float *w,
                           const float *bias, const en_conv_desc *d, int oy, float *pool, int i0,
                           int i1, int from_image);
void en_fast_gemm(float *out, const float *in, const float *packed, const float *bias,
                  const float *residual, int64_t rows, int cin, int cout, en_act act);
int en_fast_planes_pay(const en_conv_desc *d);
void en_fast_gemm_planes(const en_planes *out, const float *in, const float *packed,
                         const float *bias, int64_t rows, int cin, int cout, en_act act);
void en_fast_depthwise_planes(float *out, const en_planes *in, const float *w, const float *bias,
                              const en_conv_desc *d, float *pool);
/* the reference table's planes ops (the fast ones' fallback where the CPU has no fast kernel) */
void en_ref_gemm_planes(const en_planes *out, const float *in, const float *packed,
                        const float *bias, int64_t rows, int cin, int cout, en_act act);
void en_ref_depthwise_planes(float *out, const en_planes *in, const float *w, const float *bias,
                             const en_conv_desc *d, float *pool);
void en_fast_expand_depthwise(float *out, float *pool, const float *x, int cin, const float *ew,
                              const float *eb, const float *dw, const float *db,
                              const en_conv_desc *d, float *expanded, float *scratch);
void en_fast_dense(float *out, const float *in, const float *packed, const float *bias,
                   const en_conv_desc *d, float *scratch);
void en_fast_stem_depthwise(float *out, float *pool, const float *img, const float *sw,
                            const float *sb, const en_conv_desc *sd, const float *dw,
                            const float *db, const en_conv_desc *d, float *stem_out,
                            float *scratch);
/* en_fast_gemm without a residual on the calling thread only (inside a parallel region), for
 * output panels [p0, p1) only (columns p0 * EN_GEMM_PANEL .. of the cout-wide output rows) */
void en_fast_gemm_panels(float *out, const float *in, const float *packed, const float *bias,
                         int64_t rows, int cin, int cout, en_act act, int p0, int p1);

/* Scalar activations shared by all kernels (and by tests). */
float en_activate(float x, en_act act);
void en_activate_array(float *x, int64_t count, en_act act);

#endif
