/* The two resamplers of the reference pipelines, written to give their exact numbers.
 *
 * Pillow (src/libImaging/Resample.c, what torchvision's and timm's Resize run on a PIL
 * image): a separable convolution, horizontal pass first, then vertical. Each output sample
 * has a centre (i + 0.5) * in/out in input coordinates; when shrinking, the kernel is
 * stretched by the shrink factor (antialiasing), so its support covers in/out input samples
 * per unit. Weights are normalised to sum 1, then turned into 22-bit fixed point; each pass
 * adds half an ulp, shifts and clips to 0..255, so the intermediate image is uint8 and the
 * rounding happens twice. A pass whose size does not change is skipped.
 *
 * TF1 resize_bicubic (tensorflow/core/kernels/image/resize_bicubic_op.cc, the legacy
 * align_corners=False / half_pixel_centers=False mode the TF EfficientNet reference uses):
 * sample i reads input position i * in/out (no half-pixel shift, so the image drifts by
 * half a pixel), Keys cubic with a = -0.75 looked up in a table of 1025 steps, four taps
 * with edge indices clamped (the edge sample gets the weight of the missing ones), no
 * antialias, float32 arithmetic: vertical interpolation of four columns, then horizontal.
 * There is no TensorFlow in this environment; the check is a NumPy transcription of that
 * definition in tools/oracle/gen_image_fixtures.py. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "image/image.h"

#if defined(__clang__)
/* the float sums must round after every operation, as the reference's do */
#pragma STDC FP_CONTRACT OFF
#endif

/* ------------------------------------------------------------------ Pillow */

/* Pillow keeps 8 bits for the value and 2 for overshoot of negative lobes in an int. */
#define PIL_PRECISION_BITS 22

typedef struct pil_filter {
  double (*weight)(double x);
  double support; /* radius at scale 1 */
} pil_filter;

static double triangle(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

/* Keys' cubic convolution with a = -0.5 (Catmull-Rom), in Horner form. */
static double keys_cubic(double x) {
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

static const pil_filter pil_bilinear = {triangle, 1.0};
static const pil_filter pil_bicubic = {keys_cubic, 2.0};

/* Taps of the output samples first..first+n-1 of a 1-D resize in_size -> out_size. */
typedef struct pil_taps {
  int ksize;        /* weights stored per output sample */
  int *start;       /* first input sample of each output sample */
  int *count;       /* number of input samples used */
  int32_t *weights; /* fixed point, ksize per output sample */
  double *scratch;
} pil_taps;

static void pil_taps_free(pil_taps *t) {
  free(t->start);
  free(t->count);
  free(t->weights);
  free(t->scratch);
  memset(t, 0, sizeof *t);
}

static int32_t to_fixed(double w) {
  double scaled = w * (1 << PIL_PRECISION_BITS);
  return (int32_t)(w < 0 ? scaled - 0.5 : scaled + 0.5);
}

static void pil_taps_one(pil_taps *t, const pil_filter *f, int in_size, double scale,
                         double filterscale, double support, int out_index, int slot) {
  double center = (out_index + 0.5) * scale;
  double inv = 1.0 / filterscale;
  int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
  if (lo < 0) lo = 0;
  if (hi > in_size) hi = in_size;
  int n = hi - lo;
  if (n > t->ksize) n = t->ksize; /* cannot happen: 2 * support + 1 <= ksize */
  if (n < 0) n = 0;
  double sum = 0.0;
  for (int k = 0; k < n; k++) {
    double w = f->weight(((lo + k) - center + 0.5) * inv);
    t->scratch[k] = w;
    sum += w;
  }
  int32_t *dst = t->weights + (size_t)slot * (size_t)t->ksize;
  for (int k = 0; k < t->ksize; k++)
    dst[k] = k < n ? to_fixed(sum != 0.0 ? t->scratch[k] / sum : t->scratch[k]) : 0;
  t->start[slot] = lo;
  t->count[slot] = n;
}

static effnet_status pil_taps_make(pil_taps *t, const pil_filter *f, int in_size, int out_size,
                                   int first, int n, effnet_error *err) {
  memset(t, 0, sizeof *t);
  double scale = (double)in_size / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale; /* stretch the kernel only to shrink */
  double support = f->support * filterscale;
  t->ksize = (int)ceil(support) * 2 + 1; /* <= 4 * 65535 + 5: sides are capped */
  t->start = malloc((size_t)n * sizeof *t->start);
  t->count = malloc((size_t)n * sizeof *t->count);
  t->weights = malloc((size_t)n * (size_t)t->ksize * sizeof *t->weights);
  t->scratch = malloc((size_t)t->ksize * sizeof *t->scratch);
  if (!t->start || !t->count || !t->weights || !t->scratch) {
    pil_taps_free(t);
    return en_fail(err, EFFNET_E_NOMEM, "resize: out of memory for filter taps");
  }
  for (int i = 0; i < n; i++)
    pil_taps_one(t, f, in_size, scale, filterscale, support, first + i, i);
  return EFFNET_OK;
}

static uint8_t pil_clip(int64_t acc) {
  if (acc < 0) return 0;
  int64_t v = acc >> PIL_PRECISION_BITS;
  return v > 255 ? 255 : (uint8_t)v;
}

/* One output sample from `count` RGB pixels `step` bytes apart. */
static void pil_convolve(const uint8_t *in, size_t step, const int32_t *w, int count,
                         uint8_t *out) {
  int64_t acc[3] = {1 << (PIL_PRECISION_BITS - 1), 1 << (PIL_PRECISION_BITS - 1),
                    1 << (PIL_PRECISION_BITS - 1)};
  for (int k = 0; k < count; k++, in += step)
    for (int c = 0; c < 3; c++) acc[c] += (int64_t)in[c] * w[k];
  for (int c = 0; c < 3; c++) out[c] = pil_clip(acc[c]);
}

/* Horizontal pass over input rows [row0, row0 + rows) into tmp (win.w columns), or a plain
 * copy of the window's columns when the width does not change. */
static void pil_horizontal(img_view src, const pil_taps *tx, img_window win, int row0,
                           int rows, uint8_t *tmp) {
  for (int r = 0; r < rows; r++) {
    const uint8_t *in = src.px + (size_t)(row0 + r) * src.stride;
    uint8_t *out = tmp + (size_t)r * (size_t)win.w * 3;
    if (!tx) {
      memcpy(out, in + (size_t)win.x0 * 3, (size_t)win.w * 3);
      continue;
    }
    for (int i = 0; i < win.w; i++)
      pil_convolve(in + (size_t)tx->start[i] * 3, 3, tx->weights + (size_t)i * tx->ksize,
                   tx->count[i], out + (size_t)i * 3);
  }
}

static void pil_vertical(const uint8_t *tmp, int row0, const pil_taps *ty, img_window win,
                         uint8_t *dst) {
  size_t row_bytes = (size_t)win.w * 3;
  for (int j = 0; j < win.h; j++) {
    const uint8_t *in = tmp + (size_t)(ty->start[j] - row0) * row_bytes;
    const int32_t *w = ty->weights + (size_t)j * ty->ksize;
    for (int i = 0; i < win.w; i++)
      pil_convolve(in + (size_t)i * 3, row_bytes, w, ty->count[j], dst + j * row_bytes + i * 3);
  }
}

effnet_status img_resize_pil(img_view src, int dst_w, int dst_h, img_window win,
                             effnet_interp interp, uint8_t *dst, effnet_error *err) {
  const pil_filter *f = interp == EFFNET_INTERP_BILINEAR ? &pil_bilinear : &pil_bicubic;
  int need_h = dst_w != src.w, need_v = dst_h != src.h;
  pil_taps tx = {0}, ty = {0};
  effnet_status st = EFFNET_OK;
  if (need_h) st = pil_taps_make(&tx, f, src.w, dst_w, win.x0, win.w, err);
  if (st == EFFNET_OK && need_v) st = pil_taps_make(&ty, f, src.h, dst_h, win.y0, win.h, err);
  if (st != EFFNET_OK) {
    pil_taps_free(&tx);
    return st;
  }
  /* Input rows the window needs: all the vertical taps, or the window itself. Taps start
   * and end monotonically, so the first and last output rows bound them. */
  int row0 = need_v ? ty.start[0] : win.y0;
  int row1 = need_v ? ty.start[win.h - 1] + ty.count[win.h - 1] : win.y0 + win.h;
  int rows = row1 - row0;
  uint8_t *tmp = need_v ? malloc((size_t)rows * (size_t)win.w * 3) : dst;
  if (!tmp) {
    pil_taps_free(&tx);
    pil_taps_free(&ty);
    return en_fail(err, EFFNET_E_NOMEM, "resize: out of memory for %d rows", rows);
  }
  pil_horizontal(src, need_h ? &tx : NULL, win, row0, rows, tmp);
  if (need_v) {
    pil_vertical(tmp, row0, &ty, win, dst);
    free(tmp);
  }
  pil_taps_free(&tx);
  pil_taps_free(&ty);
  return EFFNET_OK;
}

/* ------------------------------------------------------------------ TF1 resize_bicubic */

#define TF_TABLE_STEPS 1024
#define TF_CUBIC_A (-0.75)

/* The op's coefficient table, entry by entry: computed in double from a float position,
 * stored as float. near(i): weight at distance i/1024; far(i): at distance 1 + i/1024. */
static float tf_weight_near(int i) {
  const double a = TF_CUBIC_A;
  double x = (float)(i * 1.0 / TF_TABLE_STEPS);
  return (float)(((a + 2) * x - (a + 3)) * x * x + 1);
}

static float tf_weight_far(int i) {
  const double a = TF_CUBIC_A;
  double x = (float)((float)(i * 1.0 / TF_TABLE_STEPS) + 1.0);
  return (float)(((a * x - 5 * a) * x + 8 * a) * x - 4 * a);
}

typedef struct tf_taps {
  int index[4];
  float weight[4];
} tf_taps;

static int clamp_index(long long v, int limit) {
  return v < 0 ? 0 : v > limit - 1 ? limit - 1 : (int)v;
}

static void tf_taps_at(float scale, int out_index, int in_size, tf_taps *t) {
  float pos = (float)out_index * scale;
  long long base = (long long)floorf(pos);
  float delta = pos - (float)base;
  int step = (int)lrintf(delta * (float)TF_TABLE_STEPS);
  t->weight[0] = tf_weight_far(step);
  t->weight[1] = tf_weight_near(step);
  t->weight[2] = tf_weight_near(TF_TABLE_STEPS - step);
  t->weight[3] = tf_weight_far(TF_TABLE_STEPS - step);
  for (int k = 0; k < 4; k++) t->index[k] = clamp_index(base - 1 + k, in_size);
}

/* v0*w0 + v1*w1 + v2*w2 + v3*w3 in float, left to right, one rounding per operation. */
static float tf_dot4(const float v[4], const float w[4]) {
  float sum = v[0] * w[0];
  for (int k = 1; k < 4; k++) {
    float term = v[k] * w[k];
    sum = sum + term;
  }
  return sum;
}

effnet_status img_resize_tf_bicubic(img_view src, int dst_w, int dst_h, img_window win,
                                    float *dst, effnet_error *err) {
  tf_taps *tx = malloc((size_t)win.w * sizeof *tx);
  if (!tx) return en_fail(err, EFFNET_E_NOMEM, "resize: out of memory for filter taps");
  float scale_x = (float)src.w / (float)dst_w, scale_y = (float)src.h / (float)dst_h;
  for (int i = 0; i < win.w; i++) tf_taps_at(scale_x, win.x0 + i, src.w, &tx[i]);
  for (int j = 0; j < win.h; j++) {
    tf_taps ty;
    tf_taps_at(scale_y, win.y0 + j, src.h, &ty);
    for (int i = 0; i < win.w; i++) {
      for (int c = 0; c < 3; c++) {
        float column[4];
        for (int k = 0; k < 4; k++) {
          float v[4];
          for (int r = 0; r < 4; r++)
            v[r] = src.px[(size_t)ty.index[r] * src.stride + (size_t)tx[i].index[k] * 3 + c];
          column[k] = tf_dot4(v, ty.weight);
        }
        dst[((size_t)j * win.w + i) * 3 + c] = tf_dot4(column, tx[i].weight);
      }
    }
  }
  free(tx);
  return EFFNET_OK;
}
