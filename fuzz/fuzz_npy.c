/* Fuzz target for the .npy parser (libFuzzer; also built as a corpus replayer). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "io/npy.h"

int fuzz_verbose; /* set by replay_main -v: print why an input was rejected */

int fuzz_accepts(const uint8_t *data, size_t size) {
  npy_array a;
  effnet_error err = {{0}};
  if (npy_parse(&a, data, size, "fuzz.npy", &err) != EFFNET_OK) {
    if (a.data) abort(); /* out-parameter must be empty on failure */
    if (fuzz_verbose) fprintf(stderr, "  rejected: %s\n", err.message);
    return 0;
  }
  int64_t numel = 1;
  for (int d = 0; d < a.ndim; d++) numel *= a.shape[d];
  if (numel != a.numel || !a.data) abort();
  float sum = 0; /* reads every element, so ASan checks the whole allocation */
  for (int64_t i = 0; i < a.numel; i++) sum += a.data[i];
  volatile float sink = sum;
  (void)sink;
  npy_free(&a);
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_accepts(data, size);
  return 0;
}
