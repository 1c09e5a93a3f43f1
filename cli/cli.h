/* effnet command-line tool: shared helpers. The CLI uses only the public API. */
#ifndef EFFNET_CLI_H
#define EFFNET_CLI_H

#include "effnet.h"

/* Matches argv[*i] against --name (as "--name VALUE" or "--name=VALUE"). On a match stores
 * the value, advances *i past it and returns 1; returns -1 when the value is missing. */
int cli_value(int argc, char **argv, int *i, const char *name, const char **value);
int cli_flag(const char *arg, const char *name);

/* Strict number parsing: the whole string must be a number in [lo, hi]. */
int cli_int(const char *s, long lo, long hi, long *out);
int cli_double(const char *s, double lo, double hi, double *out);

/* Model selection shared by the commands: a name, or --phi/--alpha/--beta/--gamma, or
 * --width/--depth[/--resolution][--lite], plus --classes. */
typedef struct cli_model_args {
  const char *name;
  const char *phi, *alpha, *beta, *gamma;
  const char *width, *depth, *resolution, *classes;
  int lite;
} cli_model_args;

/* Consumes a model option at argv[*i]; returns 1 if it was one, 0 if not, -1 on error. */
int cli_model_option(int argc, char **argv, int *i, cli_model_args *m);
/* Builds the spec; prints the error and returns non-zero on failure. */
int cli_model_spec(const cli_model_args *m, effnet_spec *spec, double *phi_out);

/* A growable list of strings (image paths). */
typedef struct cli_paths {
  char **items;
  size_t count, cap;
} cli_paths;

/* Files as given, directories walked (sorted, image extensions only). Returns non-zero if a
 * directory could not be read (reported on stderr). */
int cli_collect_images(cli_paths *p, char **args, int count);
void cli_paths_free(cli_paths *p);
int cli_paths_push(cli_paths *p, const char *s); /* 0 ok, -1 out of memory */

typedef struct cli_progress {
  size_t total, done;
  const char *unit;
  double start;
  int enabled, shown;
} cli_progress;

void cli_progress_start(cli_progress *p, size_t total, const char *unit);
void cli_progress_update(cli_progress *p, size_t done);
/* Erase the bar before printing a result line on a shared terminal. */
void cli_progress_clear(cli_progress *p);

/* The default pretrained model (Lite0 from scripts/fetch_weights.sh): $EFFNET_WEIGHTS, else
 * models/efficientnet-lite0.pth beside the build or install tree. NULL if none exists. */
const char *cli_default_weights(char *buf, size_t size);

/* A loaded model plus the preprocessing its weights expect. */
typedef struct cli_session_args {
  const char *weights, *model, *preprocess, *threads, *size, *padding;
} cli_session_args;

typedef struct cli_session {
  effnet_model *model;
  effnet_preprocess prep;
  int classes;
  const char *weights;
} cli_session;

int cli_session_open(cli_session *s, const cli_session_args *a); /* prints errors */
void cli_session_close(cli_session *s);
size_t cli_session_floats(const cli_session *s); /* per image */
effnet_status cli_session_prepare(const cli_session *s, const char *path, float *dst,
                                  effnet_error *err);
/* Softmax top-k (k <= classes), descending. */
void cli_top_k(const float *logits, int classes, int k, int *index, float *prob);
const char *cli_class_name(const cli_session *s, int index, char *buf, size_t size);

int cli_info(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_convert(int argc, char **argv);
int cli_classify(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_train(int argc, char **argv);
int cli_search(int argc, char **argv);
int cli_scale(int argc, char **argv);

#endif
