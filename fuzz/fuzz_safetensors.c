/* Fuzz target for the safetensors parser (libFuzzer; also built as a corpus replayer). An
 * accepted image has every tensor looked up by name and every float tensor converted, so the
 * sanitizers see the whole data section being read through the parsed offsets. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

int fuzz_verbose; /* set by replay_main -v: print why an input was rejected */

static void exercise(const st_file *f) {
  for (size_t i = 0; i < st_count(f); i++) {
    const st_tensor *t = st_tensor_at(f, i);
    if (st_find(f, t->name) != t) abort(); /* names are unique, so lookup must round-trip */
    if (t->nbytes == 0) continue;
    volatile unsigned char sink = ((const unsigned char *)t->data)[t->nbytes - 1];
    (void)sink;
    float *dst = malloc((size_t)t->numel * sizeof *dst);
    if (!dst) continue;
    effnet_error err;
    st_to_f32(t, dst, &err);
    free(dst);
  }
  st_metadata(f, "format");
  st_find(f, "");
}

int fuzz_accepts(const uint8_t *data, size_t size) {
  st_file *f = NULL;
  effnet_error err = {{0}};
  if (st_parse(&f, data, size, "fuzz.safetensors", &err) != EFFNET_OK) {
    if (f) abort(); /* out-parameter must be NULL on failure */
    if (fuzz_verbose) fprintf(stderr, "  rejected: %s\n", err.message);
    return 0;
  }
  exercise(f);
  st_close(f);
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_accepts(data, size);
  return 0;
}
