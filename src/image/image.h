/* Internals of the image module: codec back ends (libjpeg-turbo, libpng), EXIF orientation,
 * and the two resamplers the reference pipelines use (Pillow's, TF1's resize_bicubic).
 * Images are 8-bit RGB interleaved, rows top to bottom, like effnet_image. */
#ifndef EN_IMAGE_H
#define EN_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "effnet.h"

/* Refuse width x height before anything of that size is allocated: EFFNET_E_LIMIT when a
 * side exceeds EFFNET_IMAGE_MAX_SIDE or the area EFFNET_IMAGE_MAX_PIXELS; EFFNET_E_FORMAT
 * for a zero side. */
effnet_status img_check_dims(uint64_t width, uint64_t height, const char *label,
                             effnet_error *err);

/* Allocate out->rgb for width x height (dims already checked). */
effnet_status img_alloc(effnet_image *out, int width, int height, const char *label,
                        effnet_error *err);

/* Codec back ends. On success *out holds the pixels and *orientation the EXIF orientation
 * (1..8; 1 when there is none or it is malformed). On failure *out is empty. */
effnet_status img_decode_jpeg(effnet_image *out, int *orientation, const uint8_t *data,
                              size_t size, const char *label, effnet_error *err);
effnet_status img_decode_png(effnet_image *out, int *orientation, const uint8_t *data,
                             size_t size, const char *label, effnet_error *err);

/* Orientation tag of a TIFF block (the EXIF payload after "Exif\0\0"): 1..8, or 1 when the
 * block is malformed or has no valid tag. Bounds-checked; both byte orders. */
int img_exif_orientation(const uint8_t *tiff, size_t len);

/* Rotate/flip im in place (a new buffer replaces im->rgb) so that the picture is upright,
 * with the semantics of Pillow's ImageOps.exif_transpose. */
effnet_status img_apply_orientation(effnet_image *im, int orientation, const char *label,
                                    effnet_error *err);

/* A source image or a rectangle of one: RGB bytes, rows `stride` bytes apart. */
typedef struct img_view {
  const uint8_t *px;
  int w, h;
  size_t stride;
} img_view;

/* A rectangle of a resized image. The resamplers compute only this window of the full
 * dst_w x dst_h result: every output pixel depends only on its own coordinates, so the
 * window is bit-identical to the same region of the full resize (and a centre crop of a
 * huge resize costs only the crop). */
typedef struct img_window {
  int x0, y0, w, h;
} img_window;

/* Pillow's Image.resize for an 8-bit RGB image (BILINEAR or BICUBIC, reducing_gap None as
 * torchvision calls it): separable, horizontal pass then vertical, antialiased when
 * shrinking, fixed point with the intermediate rounded and clipped to uint8.
 * dst holds win.w * win.h * 3 bytes. */
effnet_status img_resize_pil(img_view src, int dst_w, int dst_h, img_window win,
                             effnet_interp interp, uint8_t *dst, effnet_error *err);

/* TF1 tf.image.resize_bicubic (align_corners=False, half_pixel_centers=False): a = -0.75
 * from a 1025-entry table, edge samples repeated, no antialias, float32 result neither
 * rounded nor clipped. dst holds win.w * win.h * 3 floats. */
effnet_status img_resize_tf_bicubic(img_view src, int dst_w, int dst_h, img_window win,
                                    float *dst, effnet_error *err);

#endif
