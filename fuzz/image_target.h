/* Shared body of the image fuzz targets (fuzz_jpeg.c, fuzz_png.c): decode, check that a
 * failure leaves the output empty and a success is a valid image, apply the orientation, and
 * for small images run every preprocessing geometry and filter. */
#ifndef EN_FUZZ_IMAGE_TARGET_H
#define EN_FUZZ_IMAGE_TARGET_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "image/image.h"

int fuzz_verbose; /* set by replay_main -v: print why an input was rejected */

/* Preprocess with both geometries and all three filters; sizes derived from the image so
 * that shrinking, enlarging and padding all occur. */
static void exercise_preprocess(const effnet_image *im) {
  effnet_preprocess p = {.name = "fuzz", .mean = {0.5f, 0.5f, 0.5f}, .std = {0.25f, 0.25f, 0.25f}};
  float out[3 * 24 * 24];
  effnet_error err;
  for (int k = 0; k < 3; k++) {
    p.interp = (effnet_interp)k;
    p.crop_first = k == 2;
    p.crop_fraction = 0.875;
    p.resize_shorter = 1 + (im->width * 7 + im->height * (k + 3)) % 30;
    p.crop_h = 1 + (im->height + k) % 24;
    p.crop_w = 1 + (im->width * 3 + k) % 24;
    if (effnet_preprocess_image(im, &p, out, &err) != EFFNET_OK) abort();
  }
}

typedef effnet_status (*image_decoder)(effnet_image *out, int *orientation, const uint8_t *data,
                                       size_t size, const char *label, effnet_error *err);

/* Decode with one codec, check the output contract, orient, preprocess small images. */
static int image_target(image_decoder decode, const char *label, const uint8_t *data,
                        size_t size) {
  effnet_image im = {0, 0, NULL};
  effnet_error err = {{0}};
  int orientation = 0;
  if (decode(&im, &orientation, data, size, label, &err) != EFFNET_OK) {
    if (im.rgb || im.width || im.height) abort(); /* output must be empty on failure */
    if (fuzz_verbose) fprintf(stderr, "  rejected: %s\n", err.message);
    return 0;
  }
  if (!im.rgb || im.width < 1 || im.height < 1 || orientation < 1 || orientation > 8) abort();
  if (img_apply_orientation(&im, orientation, label, &err) != EFFNET_OK) abort();
  if ((int64_t)im.width * im.height <= 1 << 16) exercise_preprocess(&im);
  effnet_image_free(&im);
  return 1;
}


#endif
