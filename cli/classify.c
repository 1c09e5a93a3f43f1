/* effnet classify: top-K ImageNet classes for photos. Images are decoded and preprocessed
 * one by one and run in batches; a bad file is reported and skipped, the rest still run, and
 * the exit status is 1 if any failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct classify_args {
  cli_session_args session;
  const char *top, *batch;
  int json;
  char **inputs;
  int input_count;
} classify_args;

static void print_json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c < 0x20) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

static void print_result(const cli_session *s, const char *path, const float *logits, int k,
                         int json) {
  int index[32];
  float prob[32];
  char buf[32];
  cli_top_k(logits, s->classes, k, index, prob);
  if (json) {
    printf("{\"file\": ");
    print_json_string(path);
    printf(", \"top\": [");
    for (int j = 0; j < k; j++) {
      printf("%s{\"class\": %d, \"label\": ", j ? ", " : "", index[j]);
      print_json_string(cli_class_name(s, index[j], buf, sizeof buf));
      printf(", \"prob\": %.6f}", prob[j]);
    }
    printf("]}\n");
    return;
  }
  printf("%s\n", path);
  for (int j = 0; j < k; j++)
    printf("  %5.1f%%  %s (%d)\n", 100.0 * prob[j], cli_class_name(s, index[j], buf, sizeof buf),
           index[j]);
}

static void print_failure(const char *path, const char *message, int json) {
  fprintf(stderr, "effnet classify: %s\n", message);
  if (json) {
    printf("{\"file\": ");
    print_json_string(path);
    printf(", \"error\": ");
    print_json_string(message);
    printf("}\n");
  }
}

static int parse_classify_args(int argc, char **argv, classify_args *a) {
  struct { const char *name; const char **slot; } opts[] = {
      {"--weights", &a->session.weights}, {"--model", &a->session.model},
      {"--preprocess", &a->session.preprocess}, {"--threads", &a->session.threads},
      {"--size", &a->session.size}, {"--top", &a->top}, {"--batch", &a->batch},
      {"--padding", &a->session.padding},
  };
  a->inputs = calloc((size_t)argc + 1, sizeof *a->inputs);
  if (!a->inputs) return 1;
  for (int i = 0; i < argc; i++) {
    int r = 0;
    for (size_t k = 0; k < sizeof opts / sizeof opts[0] && !r; k++)
      r = cli_value(argc, argv, &i, opts[k].name, opts[k].slot);
    if (r < 0) return 2;
    if (r) continue;
    if (cli_flag(argv[i], "--json")) a->json = 1;
    else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "effnet classify: unknown option '%s'\n", argv[i]);
      return 2;
    } else a->inputs[a->input_count++] = argv[i];
  }
  if (!a->input_count) {
    fprintf(stderr, "usage: effnet classify IMAGE|DIR... [--weights FILE] [--model NAME] "
                    "[--top K] [--json] [--preprocess PRESET] [--size S] [--batch N] "
                    "[--threads T]\n");
    return 2;
  }
  return 0;
}

typedef struct batch_state {
  float *input, *logits;
  const char **paths;
  int count, capacity;
} batch_state;

/* Runs the filled batch and prints its results; returns the number of failures. */
static int flush_batch(cli_session *s, batch_state *b, int k, int json, cli_progress *bar) {
  if (!b->count) return 0;
  int h = s->prep.crop_h, w = s->prep.crop_w, failures = 0;
  effnet_status st = effnet_model_forward(s->model, b->input, b->count, h, w, b->logits);
  cli_progress_clear(bar);
  for (int i = 0; i < b->count; i++) {
    if (st == EFFNET_OK) print_result(s, b->paths[i], b->logits + (size_t)i * s->classes, k, json);
    else print_failure(b->paths[i], effnet_model_error(s->model), json), failures++;
  }
  fflush(stdout);
  b->count = 0;
  return failures;
}

static int classify_all(cli_session *s, const cli_paths *files, int k, int batch, int json) {
  batch_state b = {0};
  size_t per = cli_session_floats(s);
  b.capacity = batch;
  b.input = malloc(per * batch * sizeof(float));
  b.logits = malloc((size_t)s->classes * batch * sizeof(float));
  b.paths = malloc((size_t)batch * sizeof *b.paths);
  if (!b.input || !b.logits || !b.paths) {
    fprintf(stderr, "effnet classify: out of memory for a batch of %d\n", batch);
    free(b.input), free(b.logits), free(b.paths);
    return (int)files->count;
  }
  cli_progress bar;
  cli_progress_start(&bar, files->count, "images");
  int failures = 0;
  for (size_t i = 0; i < files->count; i++) {
    effnet_error err = {{0}};
    if (cli_session_prepare(s, files->items[i], b.input + per * b.count, &err) == EFFNET_OK) {
      b.paths[b.count++] = files->items[i];
      if (b.count == b.capacity) failures += flush_batch(s, &b, k, json, &bar);
    } else {
      cli_progress_clear(&bar);
      print_failure(files->items[i], err.message, json);
      failures++;
    }
    cli_progress_update(&bar, i + 1);
  }
  failures += flush_batch(s, &b, k, json, &bar);
  cli_progress_clear(&bar);
  free(b.input), free(b.logits), free(b.paths);
  return failures;
}

int cli_classify(int argc, char **argv) {
  classify_args a = {0};
  int rc = parse_classify_args(argc, argv, &a);
  long k = 5, batch = 8;
  if (!rc && a.top && !cli_int(a.top, 1, 32, &k)) {
    fprintf(stderr, "effnet classify: --top must be 1..32\n");
    rc = 2;
  }
  if (!rc && a.batch && !cli_int(a.batch, 1, 1024, &batch)) {
    fprintf(stderr, "effnet classify: --batch must be 1..1024\n");
    rc = 2;
  }
  cli_session s = {0};
  if (!rc) rc = cli_session_open(&s, &a.session);
  if (rc) {
    free(a.inputs);
    return rc;
  }
  if (k > s.classes) k = s.classes;
  cli_paths files = {0};
  int walk_failed = cli_collect_images(&files, a.inputs, a.input_count);
  int failures = files.count ? classify_all(&s, &files, (int)k, (int)batch, a.json) : 0;
  if (!files.count) fprintf(stderr, "effnet classify: no images found\n");
  if (failures) fprintf(stderr, "effnet classify: %d of %zu images failed\n", failures, files.count);
  int none = files.count == 0;
  cli_paths_free(&files);
  cli_session_close(&s);
  free(a.inputs);
  return failures || walk_failed || none ? 1 : 0;
}
