/* Fuzz target for PNG decoding (libpng behind our error and read callbacks, palette and
 * 16-bit conversion, eXIf orientation), then for small accepted images the preprocessing (Pillow and TF
 * resamplers, crop and padding geometry). libFuzzer entry point; also built as a corpus
 * replayer (fuzz/replay_main.c). */
#include "image_target.h"

int fuzz_accepts(const uint8_t *data, size_t size) {
  return image_target(img_decode_png, "fuzz.png", data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_accepts(data, size);
  return 0;
}
