/* effnet eval: top-1 / top-5 accuracy on a labelled image set. Two layouts:
 *   DIR/<class>/<image>   ImageNet synset folders (n01440764, ...) give their class index for
 *                         a 1000-class model, so any subset scores correctly; other names
 *                         take their position in the sorted list (torchvision ImageFolder),
 *                         which needs one folder per class of the model;
 *   --labels FILE         lines "relative/path.jpg INDEX" (paths relative to DIR). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "cli.h"

typedef struct labelled {
  cli_paths paths;
  int *labels;
  size_t cap;
  int classes; /* number of class folders, or max label + 1 */
} labelled;

static int add_label(labelled *l, size_t first, int label) {
  size_t need = l->paths.count;
  if (need > l->cap) {
    size_t cap = need * 2;
    int *p = realloc(l->labels, cap * sizeof *p);
    if (!p) return -1;
    l->labels = p;
    l->cap = cap;
  }
  for (size_t i = first; i < l->paths.count; i++) l->labels[i] = label;
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Class index of each folder: ImageNet synset ids (n01440764, ...) name their class for a
 * 1000-class model, so a subset of the validation set scores correctly; otherwise the sorted
 * position, which is only meaningful when every class has a folder. */
static int folder_labels(const cli_paths *classes, int model_classes, const char *dir,
                         int *labels) {
  int synsets = model_classes == 1000;
  for (size_t c = 0; c < classes->count && synsets; c++)
    synsets = (labels[c] = effnet_imagenet_synset_index(classes->items[c])) >= 0;
  if (synsets) return 0;
  if ((int)classes->count != model_classes) {
    fprintf(stderr, "effnet eval: %s has %zu class folders for a %d-class model; name them by "
                    "ImageNet synset (n01440764, ...) or give --labels\n", dir, classes->count,
            model_classes);
    return 1;
  }
  for (size_t c = 0; c < classes->count; c++) labels[c] = (int)c;
  return 0;
}

static int from_folders(labelled *l, const char *dir, int model_classes) {
  cli_paths classes = {0};
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "effnet eval: cannot read directory %s\n", dir);
    return 1;
  }
  struct dirent *e;
  char path[4096];
  int bad = 0;
  while ((e = readdir(d))) {
    struct stat sb;
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) && cli_paths_push(&classes, e->d_name))
      bad = 1;
  }
  closedir(d);
  if (classes.count) qsort(classes.items, classes.count, sizeof *classes.items, by_name);
  int *labels = calloc(classes.count + 1, sizeof *labels);
  if (!classes.count) fprintf(stderr, "effnet eval: %s has no class subfolders\n", dir);
  bad |= !labels || !classes.count || folder_labels(&classes, model_classes, dir, labels);
  for (size_t c = 0; c < classes.count && !bad; c++) {
    size_t first = l->paths.count;
    char *sub = path;
    snprintf(path, sizeof path, "%s/%s", dir, classes.items[c]);
    bad |= cli_collect_images(&l->paths, &sub, 1);
    if (add_label(l, first, labels[c])) bad = 1;
    if (labels[c] + 1 > l->classes) l->classes = labels[c] + 1;
  }
  free(labels);
  cli_paths_free(&classes);
  return bad;
}

static int from_label_file(labelled *l, const char *dir, const char *file) {
  FILE *f = fopen(file, "r");
  if (!f) {
    fprintf(stderr, "effnet eval: cannot open labels file %s\n", file);
    return 1;
  }
  char line[4096], path[4096 + 16];
  int lineno = 0, bad = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *end = line + strcspn(line, "\r\n");
    *end = 0;
    char *space = strrchr(line, ' ');
    if (!*line) continue;
    long label;
    if (!space || !cli_int(space + 1, 0, 1000000, &label)) {
      fprintf(stderr, "effnet eval: %s:%d: expected 'path label'\n", file, lineno);
      bad = 1;
      break;
    }
    *space = 0;
    snprintf(path, sizeof path, "%s/%s", dir, line);
    char *one = path;
    size_t first = l->paths.count;
    cli_collect_images(&l->paths, &one, 1);
    if (add_label(l, first, (int)label)) bad = 1;
    if (label + 1 > l->classes) l->classes = (int)label + 1;
  }
  fclose(f);
  return bad;
}

typedef struct eval_counts {
  size_t seen, top1, top5, failed;
} eval_counts;

static void score(const cli_session *s, const float *logits, int label, eval_counts *c) {
  int index[5];
  float prob[5];
  int k = s->classes < 5 ? s->classes : 5;
  cli_top_k(logits, s->classes, k, index, prob);
  c->seen++;
  c->top1 += index[0] == label;
  for (int j = 0; j < k; j++) c->top5 += index[j] == label;
}

static void run_eval(cli_session *s, const labelled *l, int batch, eval_counts *c) {
  size_t per = cli_session_floats(s);
  float *input = malloc(per * batch * sizeof(float));
  float *logits = malloc((size_t)s->classes * batch * sizeof(float));
  int *labels = malloc((size_t)batch * sizeof(int));
  cli_progress bar;
  cli_progress_start(&bar, l->paths.count, "images");
  int n = 0;
  for (size_t i = 0; input && logits && labels && i <= l->paths.count; i++) {
    int last = i == l->paths.count;
    if (!last) {
      effnet_error err = {{0}};
      if (cli_session_prepare(s, l->paths.items[i], input + per * n, &err) == EFFNET_OK) {
        labels[n++] = l->labels[i];
      } else {
        cli_progress_clear(&bar);
        fprintf(stderr, "effnet eval: %s (skipped)\n", err.message);
        c->failed++;
      }
    }
    if (n && (n == batch || last)) {
      if (effnet_model_forward(s->model, input, n, s->prep.crop_h, s->prep.crop_w, logits) != EFFNET_OK) {
        cli_progress_clear(&bar);
        fprintf(stderr, "effnet eval: %s\n", effnet_model_error(s->model));
        c->failed += n;
      } else {
        for (int b = 0; b < n; b++) score(s, logits + (size_t)b * s->classes, labels[b], c);
      }
      n = 0;
    }
    if (!last) cli_progress_update(&bar, i + 1);
  }
  cli_progress_clear(&bar);
  if (!input || !logits || !labels) fprintf(stderr, "effnet eval: out of memory\n");
  free(input), free(logits), free(labels);
}

/* Fashion-MNIST (or any IDX folder): its test split, through the library's dataset reader,
 * with the normalisation of the model's preprocessing preset. */
static int is_idx_data(const char *data) {
  char path[4200];
  if (!strcmp(data, "fashion-mnist")) return 1;
  snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", data);
  if (access(path, R_OK) == 0) return 1;
  snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", data);
  return access(path, R_OK) == 0;
}

static int eval_idx(cli_session *s, const char *data, int batch) {
  effnet_epoch_result r;
  effnet_error err = {{0}};
  effnet_status st = effnet_evaluate(s->model, data, batch, 0, -1, &r, &err);
  if (st != EFFNET_OK) {
    fprintf(stderr, "effnet eval: %s\n", err.message);
    return 1;
  }
  printf("%s test split: loss %.4f, top-1 %.2f%%, top-5 %.2f%%\n", data, r.test_loss,
         100.0 * r.test_acc, 100.0 * r.test_top5);
  return 0;
}

int cli_eval(int argc, char **argv) {
  cli_session_args sa = {0};
  const char *data = NULL, *labels = NULL, *batch_s = NULL;
  for (int i = 0; i < argc; i++) {
    struct { const char *name; const char **slot; } opts[] = {
        {"--weights", &sa.weights}, {"--model", &sa.model}, {"--preprocess", &sa.preprocess},
        {"--threads", &sa.threads}, {"--size", &sa.size}, {"--padding", &sa.padding},
        {"--data", &data}, {"--labels", &labels}, {"--batch", &batch_s}};
    int r = 0;
    for (size_t k = 0; k < sizeof opts / sizeof opts[0] && !r; k++)
      r = cli_value(argc, argv, &i, opts[k].name, opts[k].slot);
    if (r < 0) return 2;
    if (r) continue;
    if (argv[i][0] != '-' && !data) data = argv[i];
    else {
      fprintf(stderr, "effnet eval: unknown argument '%s'\n", argv[i]);
      return 2;
    }
  }
  long batch = 16;
  if (!data || (batch_s && !cli_int(batch_s, 1, 1024, &batch))) {
    fprintf(stderr, "usage: effnet eval DIR [--labels FILE] [--weights FILE] [--model NAME] "
                    "[--preprocess PRESET] [--batch N] [--threads T]\n");
    return 2;
  }
  cli_session s;
  int rc = cli_session_open(&s, &sa);
  if (rc) return rc;
  if (is_idx_data(data)) {
    rc = eval_idx(&s, data, (int)batch);
    cli_session_close(&s);
    return rc;
  }
  labelled l = {0};
  int bad = labels ? from_label_file(&l, data, labels) : from_folders(&l, data, s.classes);
  if (!bad && l.classes > s.classes) {
    fprintf(stderr, "effnet eval: %d classes in %s but the model has %d\n", l.classes, data, s.classes);
    bad = 1;
  }
  eval_counts c = {0};
  if (!bad && l.paths.count) run_eval(&s, &l, (int)batch, &c);
  if (c.seen)
    printf("%zu images (%zu unreadable): top-1 %.2f%%, top-5 %.2f%%\n", c.seen, c.failed,
           100.0 * c.top1 / c.seen, 100.0 * c.top5 / c.seen);
  else if (!bad) fprintf(stderr, "effnet eval: no images evaluated\n");
  cli_paths_free(&l.paths);
  free(l.labels);
  cli_session_close(&s);
  return bad || !c.seen || c.failed ? 1 : 0;
}
