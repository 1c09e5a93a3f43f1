/* The effnet API in one page: load weights, run a tensor, read the logits.
 *
 *   cc simple.c $(pkg-config --cflags --libs effnet) -o simple
 *   ./simple weights.safetensors [input.npy]
 *
 * Without an input file a mid-grey image at the model's native resolution is used (already
 * normalised tensors are expected: the caller owns preprocessing here). */
#include <stdio.h>
#include <stdlib.h>

#include "effnet.h"

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s WEIGHTS.safetensors [INPUT.npy]\n", argv[0]);
    return 2;
  }
  effnet_error err;
  effnet_model *model = NULL;
  if (effnet_model_load(&model, argv[1], NULL, &err) != EFFNET_OK) {
    fprintf(stderr, "%s\n", err.message);
    return 1;
  }
  const effnet_spec *spec = effnet_model_spec(model);
  effnet_tensor input = {0};
  int n = 1, h = spec->resolution, w = spec->resolution;
  if (argc > 2) {
    if (effnet_npy_read(argv[2], &input, &err) != EFFNET_OK || input.ndim != 4 ||
        input.shape[1] != 3) {
      fprintf(stderr, "%s\n", input.ndim == 4 ? err.message : "input must be (N, 3, H, W)");
      effnet_model_free(model);
      return 1;
    }
    n = (int)input.shape[0], h = (int)input.shape[2], w = (int)input.shape[3];
  } else {
    input.data = calloc((size_t)3 * h * w, sizeof(float)); /* zeros = the mean colour */
  }
  float *logits = malloc((size_t)n * spec->num_classes * sizeof(float));
  int rc = 0;
  if (!input.data || !logits) {
    fprintf(stderr, "out of memory\n");
    rc = 1;
  } else if (effnet_model_forward(model, input.data, n, h, w, logits) != EFFNET_OK) {
    fprintf(stderr, "%s\n", effnet_model_error(model));
    rc = 1;
  } else {
    for (int b = 0; b < n; b++) {
      int best = 0;
      for (int c = 1; c < spec->num_classes; c++)
        if (logits[b * spec->num_classes + c] > logits[b * spec->num_classes + best]) best = c;
      printf("image %d: %s (%d classes) top-1 class %d, logit %.4f\n", b, spec->name,
             spec->num_classes, best, logits[b * spec->num_classes + best]);
    }
  }
  free(logits);
  effnet_tensor_free(&input);
  effnet_model_free(model);
  return rc;
}
