/* Fuzz target for JPEG decoding (libjpeg-turbo behind our error manager, EXIF parsing,
 * orientation), then for small accepted images the preprocessing (Pillow and TF
 * resamplers, crop and padding geometry). libFuzzer entry point; also built as a corpus
 * replayer (fuzz/replay_main.c). */
#include "image_target.h"

int fuzz_accepts(const uint8_t *data, size_t size) {
  return image_target(img_decode_jpeg, "fuzz.jpg", data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_accepts(data, size);
  return 0;
}
