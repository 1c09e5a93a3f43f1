/* effnet train: the training loop of the library with a progress bar per epoch (on a
 * terminal), a line per epoch on stdout and warnings on stderr. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static void train_usage(void) {
  fprintf(stdout,
          "usage: effnet train --data fashion-mnist|DIR --out DIR [MODEL | --init WEIGHTS | --resume]\n"
          "  MODEL: --model NAME | --width W --depth D [--lite] | --phi P [--alpha A --beta B --gamma G]\n"
          "         [--resolution R] [--classes N]\n"
          "  [--epochs E] [--max-steps S] [--batch B] [--threads T] [--seed N]\n"
          "  [--optimizer rmsprop|sgd|nesterov|adamw] [--lr LR] [--weight-decay WD]\n"
          "  [--schedule exp|cosine|constant] [--warmup EPOCHS] [--label-smoothing E]\n"
          "  [--dropout P] [--drop-path P] [--bn-momentum M] [--ema DECAY (0: off)]\n"
          "  [--augment auto|rrc|crop|none] [--min-scale S] [--val-fraction F]\n"
          "  [--checkpoint-every STEPS] [--eval-limit N (first N test images)]\n");
}

typedef struct train_view {
  int tty;
  double last_draw;
} train_view;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void on_progress(void *user, const effnet_train_progress *p) {
  train_view *v = user;
  double t = now();
  int last = p->step_in_epoch == p->steps_per_epoch;
  if (!v->tty || (t - v->last_draw < 0.2 && !last)) return;
  v->last_draw = t;
  int width = 24, fill = p->steps_per_epoch ? (int)(width * p->step_in_epoch / p->steps_per_epoch) : 0;
  char bar[32];
  for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
  bar[width] = 0;
  if (p->evaluating)
    fprintf(stderr, "\r\033[K  evaluating [%s] %lld/%lld", bar, (long long)p->step_in_epoch,
            (long long)p->steps_per_epoch);
  else
    fprintf(stderr, "\r\033[Kepoch %d/%d [%s] %lld/%lld loss %.4f lr %.3g %.0f img/s ETA %.0f s",
            p->epoch, p->epochs, bar, (long long)p->step_in_epoch,
            (long long)p->steps_per_epoch, p->loss, p->lr, p->img_per_s, p->eta_s);
  fflush(stderr);
}

static void on_epoch(void *user, const effnet_epoch_result *r) {
  train_view *v = user;
  if (v->tty) fputs("\r\033[K", stderr);
  printf("epoch %d: train_loss %.4f test_loss %.4f test_acc %.2f%% top5 %.2f%% %.0f img/s "
         "%.1f s lr %.4g\n", r->epoch, r->train_loss, r->test_loss, 100 * r->test_acc,
         100 * r->test_top5, r->img_per_s, r->seconds, r->lr);
  fflush(stdout);
}

static void on_note(void *user, const char *message) {
  train_view *v = user;
  if (v->tty) fputs("\r\033[K", stderr);
  fprintf(stderr, "effnet: %s\n", message);
}

typedef struct num_opt {
  const char *name;
  double *slot;
  double lo, hi;
} num_opt;

/* Numeric options; returns 1 consumed, 0 not one of them, -1 error. */
static int numeric_option(int argc, char **argv, int *i, effnet_train_options *o) {
  num_opt nums[] = {
      {"--lr", &o->lr, 1e-12, 100},          {"--weight-decay", &o->weight_decay, 0, 10},
      {"--warmup", &o->warmup_epochs, 0, 1e5}, {"--label-smoothing", &o->label_smoothing, 0, 0.99},
      {"--dropout", &o->dropout, 0, 0.99},   {"--drop-path", &o->drop_path, 0, 0.99},
      {"--bn-momentum", &o->bn_momentum, 0, 1}, {"--ema", &o->ema_decay, 0, 0.999999999},
      {"--min-scale", &o->min_scale, 0.01, 1}, {"--val-fraction", &o->val_fraction, 0.001, 0.99},
  };
  const char *v = NULL;
  for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
    int r = cli_value(argc, argv, i, nums[k].name, &v);
    if (r < 0) return -1;
    if (!r) continue;
    if (!cli_double(v, nums[k].lo, nums[k].hi, nums[k].slot)) {
      fprintf(stderr, "effnet: invalid %s '%s' (%g..%g)\n", nums[k].name, v, nums[k].lo, nums[k].hi);
      return -1;
    }
    return 1;
  }
  struct { const char *name; long lo, hi; int64_t *slot64; int *slot; } ints[] = {
      {"--epochs", 1, 100000, NULL, &o->epochs},     {"--batch", 1, 65536, NULL, &o->batch},
      {"--threads", 1, 1024, NULL, &o->threads},
      {"--max-steps", 1, 1000000000000L, &o->max_steps, NULL},
      {"--checkpoint-every", 1, 1000000000000L, &o->checkpoint_every, NULL},
      {"--eval-limit", 1, 1000000000000L, &o->eval_limit, NULL},
  };
  for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
    int r = cli_value(argc, argv, i, ints[k].name, &v);
    if (r < 0) return -1;
    if (!r) continue;
    long x;
    if (!cli_int(v, ints[k].lo, ints[k].hi, &x)) {
      fprintf(stderr, "effnet: invalid %s '%s'\n", ints[k].name, v);
      return -1;
    }
    if (ints[k].slot) *ints[k].slot = (int)x;
    else *ints[k].slot64 = x;
    return 1;
  }
  return 0;
}

static int string_option(int argc, char **argv, int *i, effnet_train_options *o) {
  struct { const char *name; const char **slot; } strs[] = {
      {"--data", &o->data},           {"--out", &o->out_dir},       {"--init", &o->init},
      {"--optimizer", &o->optimizer}, {"--schedule", &o->schedule}, {"--augment", &o->augment},
  };
  for (size_t k = 0; k < sizeof strs / sizeof strs[0]; k++) {
    int r = cli_value(argc, argv, i, strs[k].name, strs[k].slot);
    if (r) return r;
  }
  const char *v;
  int r = cli_value(argc, argv, i, "--seed", &v);
  if (r <= 0) return r;
  long seed;
  if (!cli_int(v, 1, 0x7fffffffffffffffL, &seed)) {
    fprintf(stderr, "effnet: invalid --seed '%s' (a positive integer)\n", v);
    return -1;
  }
  o->seed = (uint64_t)seed;
  return 1;
}

static int parse(int argc, char **argv, effnet_train_options *o, cli_model_args *m) {
  for (int i = 0; i < argc; i++) {
    if (cli_flag(argv[i], "--help") || cli_flag(argv[i], "-h")) {
      train_usage();
      return -1;
    }
    if (cli_flag(argv[i], "--resume")) {
      o->resume = 1;
      continue;
    }
    int r = cli_model_option(argc, argv, &i, m);
    if (!r) r = numeric_option(argc, argv, &i, o);
    if (!r) r = string_option(argc, argv, &i, o);
    if (r < 0) return 1;
    if (!r) {
      fprintf(stderr, "effnet: unknown train option '%s'\n", argv[i]);
      train_usage();
      return 1;
    }
  }
  return 0;
}

int cli_train(int argc, char **argv) {
  effnet_train_options o;
  effnet_train_defaults(&o);
  cli_model_args m = {0};
  int pr = parse(argc, argv, &o, &m);
  if (pr < 0) return 0;
  if (pr) return 2;
  if ((!o.data && !o.resume) || !o.out_dir) { /* a resume reads --data from its checkpoint */
    fprintf(stderr, "effnet: train needs --data and --out (--resume: --out)\n");
    train_usage();
    return 2;
  }
  effnet_spec spec, *specp = NULL;
  double phi;
  int has_model = m.name || m.phi || m.width || m.depth;
  if (has_model && o.init) {
    fprintf(stderr, "effnet: give either a model or --init, not both\n");
    return 2;
  }
  if (has_model) {
    if (cli_model_spec(&m, &spec, &phi)) return 2;
    specp = &spec;
  } else if (!o.init && !o.resume) {
    fprintf(stderr, "effnet: no model to train: --model NAME, --width/--depth, --phi, --init "
                    "WEIGHTS or --resume\n");
    return 2;
  }
  long v;
  if (m.resolution && cli_int(m.resolution, 1, 8192, &v)) o.resolution = (int)v;
  if (m.classes && cli_int(m.classes, 1, 1000000, &v)) o.num_classes = (int)v;
  /* a write beyond a file-size limit must fail with an error, not kill the process */
  signal(SIGXFSZ, SIG_IGN);
  train_view view = {isatty(STDERR_FILENO), 0.0};
  effnet_train_callbacks cb = {on_progress, on_epoch, on_note, &view};
  effnet_error err = {{0}};
  effnet_epoch_result r;
  effnet_status st = effnet_train(specp, &o, &cb, &r, &err);
  if (view.tty) fputs("\r\033[K", stderr);
  if (st != EFFNET_OK) {
    fprintf(stderr, "effnet: %s\n", err.message);
    return 1;
  }
  return 0;
}
