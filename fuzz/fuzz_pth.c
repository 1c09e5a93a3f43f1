/* Fuzz target for the .pth (torch.save) reader: zip container, legacy container and the
 * pickle VM (libFuzzer; also built as a corpus replayer). An accepted image has every tensor
 * looked up by name, its last byte read and float tensors converted, so the sanitizers see
 * every pointer the parser hands out being used. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/pth.h"

int fuzz_verbose; /* set by replay_main -v: print why an input was rejected */

static void exercise(const pth_file *f) {
  for (size_t i = 0; i < pth_count(f); i++) {
    const st_tensor *t = pth_tensor_at(f, i);
    if (pth_find(f, t->name) != t) abort(); /* names are unique, so lookup must round-trip */
    if (t->nbytes != (size_t)t->numel * st_dtype_size(t->dtype)) abort();
    if (t->nbytes == 0) continue;
    volatile unsigned char sink = ((const unsigned char *)t->data)[t->nbytes - 1];
    (void)sink;
    float *dst = malloc((size_t)t->numel * sizeof *dst);
    if (!dst) continue;
    effnet_error err;
    st_to_f32(t, dst, &err);
    free(dst);
  }
  pth_find(f, "");
  if (!pth_source_key(f) || !pth_format(f)) abort();
}

int fuzz_accepts(const uint8_t *data, size_t size) {
  pth_file *f = NULL;
  effnet_error err = {{0}};
  if (pth_parse(&f, data, size, "fuzz.pth", &err) != EFFNET_OK) {
    if (f) abort(); /* out-parameter must be NULL on failure */
    if (fuzz_verbose) fprintf(stderr, "  rejected: %s\n", err.message);
    return 0;
  }
  exercise(f);
  pth_close(f);
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_accepts(data, size);
  return 0;
}
