/* What classify and eval share: the model with its preprocessing, images into tensors,
 * probabilities. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

const char *cli_default_weights(char *buf, size_t size) {
  const char *env = getenv("EFFNET_WEIGHTS");
  if (env && *env) return env;
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return NULL;
  exe[n] = 0;
  char *slash = strrchr(exe, '/');
  if (!slash) return NULL;
  *slash = 0; /* the directory holding effnet: build/ or PREFIX/bin */
  static const char *candidates[] = {"%s/../models/efficientnet-lite0.pth",
                                     "%s/../share/effnet/efficientnet-lite0.pth"};
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
    snprintf(buf, size, candidates[i], exe);
    if (access(buf, R_OK) == 0) return buf;
  }
  return NULL;
}

int cli_session_open(cli_session *s, const cli_session_args *a) {
  memset(s, 0, sizeof *s);
  char buf[PATH_MAX + 64];
  const char *weights = a->weights ? a->weights : cli_default_weights(buf, sizeof buf);
  if (!weights) {
    fprintf(stderr, "effnet: no --weights given and no default model found; run "
                    "scripts/fetch_weights.sh (or set EFFNET_WEIGHTS)\n");
    return 1;
  }
  long threads = 0;
  if (a->threads && !cli_int(a->threads, 1, 1024, &threads)) {
    fprintf(stderr, "effnet: invalid --threads '%s'\n", a->threads);
    return 2;
  }
  effnet_load_options opt = {a->model, EFFNET_PAD_AUTO, 0.0f};
  if (a->padding && !strcmp(a->padding, "same")) opt.padding = EFFNET_PAD_TF_SAME;
  else if (a->padding && !strcmp(a->padding, "symmetric")) opt.padding = EFFNET_PAD_SYMMETRIC;
  else if (a->padding) {
    fprintf(stderr, "effnet: --padding must be 'same' or 'symmetric'\n");
    return 2;
  }
  effnet_error err = {{0}};
  if (effnet_model_load(&s->model, weights, &opt, &err) != EFFNET_OK) {
    fprintf(stderr, "effnet: %s\n", err.message);
    return 1;
  }
  effnet_model_set_threads(s->model, (int)threads);
  const char *preset = a->preprocess ? a->preprocess : effnet_model_preprocess(s->model);
  if (effnet_preprocess_preset(&s->prep, preset, effnet_model_spec(s->model), &err) != EFFNET_OK) {
    fprintf(stderr, "effnet: %s\n", err.message);
    cli_session_close(s);
    return 2;
  }
  if (a->size) {
    long side;
    if (!cli_int(a->size, 1, 4096, &side)) {
      fprintf(stderr, "effnet: invalid --size '%s'\n", a->size);
      cli_session_close(s);
      return 2;
    }
    /* keep the preset's resize/crop ratio at the new size */
    if (s->prep.resize_shorter > 0)
      s->prep.resize_shorter = (int)floor(side * (double)s->prep.resize_shorter / s->prep.crop_h);
    s->prep.crop_h = s->prep.crop_w = (int)side;
  }
  s->classes = effnet_model_spec(s->model)->num_classes;
  s->weights = weights;
  return 0;
}

void cli_session_close(cli_session *s) {
  effnet_model_free(s->model);
  s->model = NULL;
}

size_t cli_session_floats(const cli_session *s) {
  return (size_t)3 * s->prep.crop_h * s->prep.crop_w;
}

effnet_status cli_session_prepare(const cli_session *s, const char *path, float *dst,
                                  effnet_error *err) {
  effnet_image img = {0};
  effnet_status st = effnet_image_load(&img, path, err);
  if (st == EFFNET_OK) st = effnet_preprocess_image(&img, &s->prep, dst, err);
  effnet_image_free(&img);
  return st;
}

void cli_top_k(const float *logits, int classes, int k, int *index, float *prob) {
  double max = logits[0], sum = 0.0;
  for (int c = 1; c < classes; c++)
    if (logits[c] > max) max = logits[c];
  for (int c = 0; c < classes; c++) sum += exp((double)logits[c] - max);
  for (int j = 0; j < k; j++) {
    int best = -1;
    for (int c = 0; c < classes; c++) {
      int taken = 0;
      for (int t = 0; t < j && !taken; t++) taken = index[t] == c;
      if (!taken && (best < 0 || logits[c] > logits[best])) best = c;
    }
    index[j] = best;
    prob[j] = (float)(exp((double)logits[best] - max) / sum);
  }
}

const char *cli_class_name(const cli_session *s, int index, char *buf, size_t size) {
  const char *name = s->classes == 1000 ? effnet_imagenet_class(index) : NULL;
  if (name) return name;
  snprintf(buf, size, "class %d", index);
  return buf;
}
