/* Fuzz target for PNG decoding (libpng behind our error and read callbacks, palette and
 * 16-bit conversion, eXIf orientation), then for small accepted images the
 * preprocessing (Pillow and TF resamplers, crop and padding geometry). libFuzzer entry
 * point; also built as a corpus replayer (fuzz/replay_main.c). */
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

int fuzz_accepts(const uint8_t *data, size_t size) {
  effnet_image im = {0, 0, NULL};
  effnet_error err = {{0}};
  int orientation = 0;
  if (img_decode_png(&im, &orientation, data, size, "fuzz.png", &err) != EFFNET_OK) {
    if (im.rgb || im.width || im.height) abort(); /* output must be empty on failure */
    if (fuzz_verbose) fprintf(stderr, "  rejected: %s\n", err.message);
    return 0;
  }
  if (!im.rgb || im.width < 1 || im.height < 1 || orientation < 1 || orientation > 8) abort();
  if (img_apply_orientation(&im, orientation, "fuzz.png", &err) != EFFNET_OK) abort();
  if ((int64_t)im.width * im.height <= 1 << 16) exercise_preprocess(&im);
  effnet_image_free(&im);
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_accepts(data, size);
  return 0;
}
