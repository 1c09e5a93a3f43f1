/* Image -> network input, following the reference pipelines step for step:
 *  - torchvision / timm eval: Resize(shorter side) -> CenterCrop -> ToTensor -> Normalize,
 *    on a PIL image (so Pillow's resampler, uint8 in between);
 *  - TF EfficientNet reference (tensorflow/tpu models/official/efficientnet/preprocessing.py
 *    _decode_and_center_crop): centre square of S/(S+32) of the shorter side, then
 *    resize_bicubic to S x S, float all the way; then (x - 255*mean) / (255*std).
 * Presets hold the per-variant numbers of each reference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "image/image.h"

/* ------------------------------------------------------------------ presets */

/* torchvision.models.EfficientNet_B*_Weights.IMAGENET1K_V1 transforms (resize, crop); all
 * bicubic. B2's crop is 288, not its 260 native resolution: that is what torchvision runs. */
typedef struct tv_sizes {
  const char *variant;
  int resize, crop;
} tv_sizes;

static const tv_sizes torchvision_sizes[] = {
    {"b0", 256, 224}, {"b1", 256, 240}, {"b2", 288, 288}, {"b3", 320, 300},
    {"b4", 384, 380}, {"b5", 456, 456}, {"b6", 528, 528}, {"b7", 600, 600},
};

/* timm's crop_pct for its tf_efficientnet_* configs: S/(S+32) written with three decimals,
 * not always rounded (528/560 = 0.9429 is 0.942). The literal matters: floor(300 / 0.904) =
 * 331 but floor(300 / (300/332)) = 332. Other sizes use S/(S+32) itself. */
typedef struct crop_pct_entry {
  int resolution;
  double crop_pct;
} crop_pct_entry;

static const crop_pct_entry timm_tf_crop_pct[] = {
    {224, 0.875}, {240, 0.882}, {260, 0.890}, {300, 0.904}, {380, 0.922},
    {456, 0.934}, {528, 0.942}, {600, 0.949}, {672, 0.954}, {800, 0.96},
};

#define DEFAULT_CROP_PCT 0.875 /* timm/torchvision default: 224 of 256 */

typedef enum preset_geometry {
  GEOM_TORCHVISION, /* the table above, else crop S after resize floor(S / 0.875) */
  GEOM_TIMM,        /* crop S after resize floor(S / crop_pct) */
  GEOM_TF,          /* crop S/(S+32) of the shorter side, resize to S */
  GEOM_CROP_PCT     /* crop S after resize floor(S / 0.875) */
} preset_geometry;

typedef struct preset_def {
  const char *name;
  preset_geometry geometry;
  effnet_interp interp;
  double mean[3], std[3]; /* Python floats, rounded to float32 as torch.as_tensor does */
} preset_def;

#define IMAGENET_MEAN {0.485, 0.456, 0.406}
#define IMAGENET_STD {0.229, 0.224, 0.225}

/* "lite": the EfficientNet-Lite checkpoints take (x - 127) / 128 (TF lite model README);
 * the geometry is torchvision-style pending a check of the real checkpoints on photos. */
static const preset_def preset_defs[] = {
    {"torchvision", GEOM_TORCHVISION, EFFNET_INTERP_BICUBIC, IMAGENET_MEAN, IMAGENET_STD},
    {"timm", GEOM_TIMM, EFFNET_INTERP_BICUBIC, IMAGENET_MEAN, IMAGENET_STD},
    {"tf", GEOM_TF, EFFNET_INTERP_TF_BICUBIC, IMAGENET_MEAN, IMAGENET_STD},
    {"inception", GEOM_TIMM, EFFNET_INTERP_BICUBIC, {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}},
    {"lite", GEOM_CROP_PCT, EFFNET_INTERP_BICUBIC, {127.0 / 255, 127.0 / 255, 127.0 / 255},
     {128.0 / 255, 128.0 / 255, 128.0 / 255}},
};

static const char *variant_of(const effnet_spec *spec) {
  return strncmp(spec->name, "tf_", 3) == 0 ? spec->name + 3 : spec->name;
}

static double timm_crop_pct(const effnet_spec *spec) {
  if (strncmp(spec->name, "tf_", 3) != 0) return DEFAULT_CROP_PCT;
  int s = spec->resolution;
  for (size_t i = 0; i < sizeof timm_tf_crop_pct / sizeof timm_tf_crop_pct[0]; i++)
    if (timm_tf_crop_pct[i].resolution == s) return timm_tf_crop_pct[i].crop_pct;
  return (double)s / (s + 32);
}

static void set_geometry(effnet_preprocess *p, preset_geometry g, const effnet_spec *spec) {
  int s = spec->resolution;
  p->crop_h = p->crop_w = s;
  switch (g) {
    case GEOM_TORCHVISION:
      p->resize_shorter = (int)floor(s / DEFAULT_CROP_PCT);
      for (size_t i = 0; i < sizeof torchvision_sizes / sizeof torchvision_sizes[0]; i++)
        if (strcmp(variant_of(spec), torchvision_sizes[i].variant) == 0) {
          p->resize_shorter = torchvision_sizes[i].resize;
          p->crop_h = p->crop_w = torchvision_sizes[i].crop;
        }
      break;
    case GEOM_TIMM: /* timm transforms_imagenet_eval: math.floor(img_size / crop_pct) */
      p->resize_shorter = (int)floor(s / timm_crop_pct(spec));
      break;
    case GEOM_TF:
      p->crop_first = 1;
      p->crop_fraction = (double)s / (s + 32);
      break;
    case GEOM_CROP_PCT:
      p->resize_shorter = (int)floor(s / DEFAULT_CROP_PCT);
      break;
  }
}

effnet_status effnet_preprocess_preset(effnet_preprocess *out, const char *preset,
                                       const effnet_spec *spec, effnet_error *err) {
  if (!out || !preset || !spec)
    return en_fail(err, EFFNET_E_ARGUMENT, "effnet_preprocess_preset: NULL argument");
  if (spec->resolution < 1 || spec->resolution > EFFNET_IMAGE_MAX_SIDE)
    return en_fail(err, EFFNET_E_ARGUMENT, "preset '%s': resolution %d outside [1, %d]", preset,
                   spec->resolution, EFFNET_IMAGE_MAX_SIDE);
  const preset_def *def = NULL;
  for (size_t i = 0; i < sizeof preset_defs / sizeof preset_defs[0]; i++)
    if (strcmp(preset, preset_defs[i].name) == 0) def = &preset_defs[i];
  if (!def)
    return en_fail(err, EFFNET_E_ARGUMENT,
                   "unknown preprocessing preset '%s' (expected torchvision, timm, tf, "
                   "inception or lite)", preset);
  memset(out, 0, sizeof *out);
  snprintf(out->name, sizeof out->name, "%s", def->name);
  set_geometry(out, def->geometry, spec);
  out->interp = def->interp;
  for (int c = 0; c < 3; c++) {
    out->mean[c] = (float)def->mean[c];
    out->std[c] = (float)def->std[c];
  }
  return EFFNET_OK;
}

/* ------------------------------------------------------------------ geometry */

/* torchvision _compute_resized_output_size with an int size: the shorter side becomes size,
 * the longer int(size * long / short) (true division in double, then truncation). */
static void resized_size(int w, int h, int size, int *out_w, int *out_h) {
  int shorter = w <= h ? w : h, longer = w <= h ? h : w;
  int new_long = (int)((double)((int64_t)size * longer) / shorter);
  *out_w = w <= h ? size : new_long;
  *out_h = w <= h ? new_long : size;
}

/* torchvision center_crop along one axis of length n, crop c: offset of the crop in the
 * image. A crop larger than the image pads (c - n) // 2 zeros before (the rest after);
 * otherwise int(round((n - c) / 2.0)), and Python's round halves to even. */
static int center_offset(int n, int c) {
  if (c > n) return -((c - n) / 2);
  int d = n - c, q = d / 2;
  if (d % 2 == 1 && q % 2 == 1) q++;
  return q;
}

/* The part of a crop_w x crop_h crop at (x0, y0) that lies inside a w x h image. */
static img_window inside(int x0, int y0, int crop_w, int crop_h, int w, int h) {
  int xa = x0 > 0 ? x0 : 0, ya = y0 > 0 ? y0 : 0;
  int xb = x0 + crop_w < w ? x0 + crop_w : w, yb = y0 + crop_h < h ? y0 + crop_h : h;
  img_window win = {xa, ya, xb > xa ? xb - xa : 0, yb > ya ? yb - ya : 0};
  return win;
}

/* ------------------------------------------------------------------ normalisation */

typedef struct norm {
  float mean[3], std[3];
} norm;

/* ToTensor then Normalize, in float32 and in torch's order: (v / 255 - mean) / std. */
static float normalize(float v, const norm *n, int c) {
  float x = v / 255.0f;
  return (x - n->mean[c]) / n->std[c];
}

/* Fill the whole CHW output with the value of a zero pixel (torchvision's pad fill). */
static void fill_padding(float *out, int crop_h, int crop_w, const norm *n) {
  size_t plane = (size_t)crop_h * (size_t)crop_w;
  for (int c = 0; c < 3; c++) {
    float v = normalize(0.0f, n, c);
    for (size_t i = 0; i < plane; i++) out[c * plane + i] = v;
  }
}

/* Write a window of pixels (u8 or float, RGB interleaved) at (dx, dy) of the CHW output. */
static void put_window(const uint8_t *u8, const float *f32, img_window win, int dx, int dy,
                       int crop_h, int crop_w, const norm *n, float *out) {
  size_t plane = (size_t)crop_h * (size_t)crop_w;
  for (int y = 0; y < win.h; y++)
    for (int x = 0; x < win.w; x++) {
      size_t src = ((size_t)y * win.w + x) * 3;
      size_t dst = (size_t)(dy + y) * crop_w + (dx + x);
      for (int c = 0; c < 3; c++)
        out[c * plane + dst] = normalize(u8 ? (float)u8[src + c] : f32[src + c], n, c);
    }
}

/* Resize src to dst_w x dst_h but compute only win, then place it at (dx, dy). */
static effnet_status resize_into(img_view src, int dst_w, int dst_h, img_window win, int dx,
                                 int dy, const effnet_preprocess *p, const norm *n, float *out,
                                 effnet_error *err) {
  if (win.w == 0 || win.h == 0) return EFFNET_OK;
  size_t count = (size_t)win.w * (size_t)win.h * 3;
  int tf = p->interp == EFFNET_INTERP_TF_BICUBIC;
  void *buf = malloc(count * (tf ? sizeof(float) : 1));
  if (!buf) return en_fail(err, EFFNET_E_NOMEM, "preprocess: out of memory");
  effnet_status st = tf ? img_resize_tf_bicubic(src, dst_w, dst_h, win, buf, err)
                        : img_resize_pil(src, dst_w, dst_h, win, p->interp, buf, err);
  if (st == EFFNET_OK)
    put_window(tf ? NULL : buf, tf ? buf : NULL, win, dx, dy, p->crop_h, p->crop_w, n, out);
  free(buf);
  return st;
}

static effnet_status resize_then_crop(img_view src, const effnet_preprocess *p, const norm *n,
                                      float *out, effnet_error *err) {
  int rw, rh;
  resized_size(src.w, src.h, p->resize_shorter, &rw, &rh);
  int x0 = center_offset(rw, p->crop_w), y0 = center_offset(rh, p->crop_h);
  img_window win = inside(x0, y0, p->crop_w, p->crop_h, rw, rh);
  if (win.w < p->crop_w || win.h < p->crop_h) fill_padding(out, p->crop_h, p->crop_w, n);
  return resize_into(src, rw, rh, win, win.x0 - x0, win.y0 - y0, p, n, out, err);
}

/* TF: side = int(float32(fraction) * float32(min(h, w))) (the product is a float32 tensor
 * op), offsets ((h - side) + 1) // 2; a side of 0 (tiny image) is raised to 1. */
static effnet_status crop_then_resize(img_view src, const effnet_preprocess *p, const norm *n,
                                      float *out, effnet_error *err) {
  int shorter = src.w < src.h ? src.w : src.h;
  int side = (int)((float)p->crop_fraction * (float)shorter);
  if (side < 1) side = 1;
  int y0 = (src.h - side + 1) / 2, x0 = (src.w - side + 1) / 2;
  img_view crop = {src.px + (size_t)y0 * src.stride + (size_t)x0 * 3, side, side, src.stride};
  img_window all = {0, 0, p->crop_w, p->crop_h};
  return resize_into(crop, p->crop_w, p->crop_h, all, 0, 0, p, n, out, err);
}

static effnet_status check_preprocess(const effnet_preprocess *p, effnet_error *err) {
  if (p->crop_h < 1 || p->crop_w < 1 || p->crop_h > EFFNET_IMAGE_MAX_SIDE ||
      p->crop_w > EFFNET_IMAGE_MAX_SIDE ||
      (int64_t)p->crop_h * p->crop_w > EFFNET_IMAGE_MAX_PIXELS)
    return en_fail(err, EFFNET_E_ARGUMENT, "preprocess '%s': crop %dx%d outside the caps",
                   p->name, p->crop_w, p->crop_h);
  if (p->crop_first && !(p->crop_fraction > 0.0 && p->crop_fraction <= 1.0))
    return en_fail(err, EFFNET_E_ARGUMENT, "preprocess '%s': crop_fraction %g outside (0, 1]",
                   p->name, p->crop_fraction);
  if (!p->crop_first && (p->resize_shorter < 1 || p->resize_shorter > EFFNET_IMAGE_MAX_SIDE))
    return en_fail(err, EFFNET_E_ARGUMENT, "preprocess '%s': resize_shorter %d outside [1, %d]",
                   p->name, p->resize_shorter, EFFNET_IMAGE_MAX_SIDE);
  if (p->interp != EFFNET_INTERP_BILINEAR && p->interp != EFFNET_INTERP_BICUBIC &&
      p->interp != EFFNET_INTERP_TF_BICUBIC)
    return en_fail(err, EFFNET_E_ARGUMENT, "preprocess '%s': unknown interpolation %d", p->name,
                   (int)p->interp);
  for (int c = 0; c < 3; c++)
    if (!isfinite(p->mean[c]) || !isfinite(p->std[c]) || p->std[c] == 0.0f)
      return en_fail(err, EFFNET_E_ARGUMENT, "preprocess '%s': mean/std of channel %d unusable",
                     p->name, c);
  return EFFNET_OK;
}

effnet_status effnet_preprocess_image(const effnet_image *image, const effnet_preprocess *p,
                                      float *out, effnet_error *err) {
  if (!image || !p || !out)
    return en_fail(err, EFFNET_E_ARGUMENT, "effnet_preprocess_image: NULL argument");
  if (!image->rgb || image->width < 1 || image->height < 1 ||
      image->width > EFFNET_IMAGE_MAX_SIDE || image->height > EFFNET_IMAGE_MAX_SIDE)
    return en_fail(err, EFFNET_E_ARGUMENT, "effnet_preprocess_image: empty or oversized image "
                   "(%dx%d)", image->width, image->height);
  effnet_status st = check_preprocess(p, err);
  if (st != EFFNET_OK) return st;
  norm n;
  memcpy(n.mean, p->mean, sizeof n.mean);
  memcpy(n.std, p->std, sizeof n.std);
  img_view src = {image->rgb, image->width, image->height, (size_t)image->width * 3};
  return p->crop_first ? crop_then_resize(src, p, &n, out, err)
                       : resize_then_crop(src, p, &n, out, err);
}
