/* effnet_train: datasets -> model -> graph -> optimizer, a step loop with checkpoints, and an
 * evaluation per epoch. Everything random is a function of (seed, epoch, index) or (seed,
 * step) (core/rng.h), so a resumed run repeats the uninterrupted one exactly. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/rng.h"
#include "train/trainer.h"

#define MAX_TRAIN_BYTES ((size_t)16 << 30)

void effnet_train_defaults(effnet_train_options *o) {
  memset(o, 0, sizeof *o);
  o->lr = o->weight_decay = o->warmup_epochs = o->label_smoothing = -1.0;
  o->dropout = o->drop_path = o->bn_momentum = o->ema_decay = -1.0;
  o->min_scale = o->val_fraction = -1.0;
}

static double pick(double v, double fallback) { return v < 0 ? fallback : v; }

/* Defaults of every open option, given the model and the data. */
static effnet_status resolve(en_trainer *t, const effnet_spec *spec, int is_idx,
                             effnet_error *err) {
  effnet_train_options *o = &t->o;
  if (o->epochs <= 0) o->epochs = 10;
  if (o->batch <= 0) o->batch = 64;
  if (o->seed == 0) o->seed = 1;
  if (!o->optimizer) o->optimizer = "rmsprop";
  if (!o->schedule) o->schedule = "exp";
  if (!o->augment) o->augment = "auto";
  en_optim_config cfg;
  if (!en_optim_parse(o->optimizer, &cfg))
    return en_fail(err, EFFNET_E_ARGUMENT, "unknown optimizer '%s' (rmsprop, sgd, nesterov, "
                   "adamw)", o->optimizer);
  int adamw = cfg.kind == EN_OPT_ADAMW, sgd = cfg.kind == EN_OPT_SGD;
  o->lr = pick(o->lr, adamw ? 1e-3 : (sgd ? 0.1 : 0.016) * o->batch / 256.0);
  o->weight_decay = pick(o->weight_decay, adamw ? 0.05 : 1e-5);
  /* the run's length in epochs: a step budget may end it long before o->epochs */
  int64_t per_epoch = t->train ? en_dataset_size(t->train) / o->batch : 0;
  double length = o->max_steps > 0 && per_epoch > 0
                      ? fmin((double)o->epochs, (double)o->max_steps / per_epoch) : o->epochs;
  /* paper: 5 warm-up epochs of 350; short runs warm up for a tenth of their length */
  double warm = !strcmp(o->schedule, "exp") && length >= 30 ? 5 : 1;
  o->warmup_epochs = pick(o->warmup_epochs, fmin(warm, 0.1 * length));
  o->label_smoothing = pick(o->label_smoothing, 0.1);
  o->dropout = pick(o->dropout, spec->dropout);
  o->drop_path = pick(o->drop_path, spec->drop_path);
  o->bn_momentum = pick(o->bn_momentum, 0.1);
  /* TF's 0.9999 averages over ~10^4 steps, right for 350 ImageNet epochs; a short run would
   * evaluate weights dominated by its first epochs, so the default horizon is a tenth of the
   * run (a few hundred steps), capped at timm's 0.9998 */
  int64_t steps_total = o->max_steps > 0 ? o->max_steps : 0;
  if (!steps_total && t->train)
    steps_total = (int64_t)o->epochs * (en_dataset_size(t->train) / (o->batch > 0 ? o->batch : 1));
  o->ema_decay = pick(o->ema_decay, steps_total > 0 ? fmin(0.9998, fmax(0.9, 1.0 - 10.0 / steps_total)) : 0.9998);
  o->min_scale = pick(o->min_scale, is_idx ? 0.35 : 0.08);
  o->val_fraction = pick(o->val_fraction, 0.1);
  if (o->resolution <= 0) o->resolution = spec->resolution;
  if (o->epochs > EN_MAX_EPOCHS || o->batch > 65536 || o->resolution > 4096 || o->lr <= 0 ||
      !isfinite(o->lr) || o->dropout >= 1 || o->drop_path >= 1 || o->label_smoothing >= 1 ||
      o->bn_momentum > 1 || o->ema_decay >= 1 || o->min_scale > 1 || o->val_fraction >= 1 ||
      o->max_steps < 0 || o->checkpoint_every < 0 || o->eval_limit < 0)
    return en_fail(err, EFFNET_E_ARGUMENT, "training option out of range (epochs <= %d, batch "
                   "<= 65536, lr > 0, dropout/drop_path/label_smoothing/ema/val_fraction < 1)",
                   EN_MAX_EPOCHS);
  return EFFNET_OK;
}

static effnet_status setup_optimizer(en_trainer *t, effnet_error *err) {
  en_optim_config cfg;
  en_optim_parse(t->o.optimizer, &cfg);
  cfg.weight_decay = (float)t->o.weight_decay;
  en_schedule *s = &t->sched;
  memset(s, 0, sizeof *s);
  s->base_lr = t->o.lr;
  s->warmup_epochs = t->o.warmup_epochs;
  s->warmup_lr = 0.0;
  s->decay_rate = 0.97;
  s->decay_epochs = 2.4;
  /* cosine ends where the run ends: at the step budget when that comes first */
  int64_t per_epoch = en_dataset_size(t->train) / t->o.batch;
  s->total_epochs = t->o.max_steps > 0 && per_epoch > 0
                        ? fmin((double)t->o.epochs, (double)t->o.max_steps / per_epoch)
                        : t->o.epochs;
  s->min_lr = 0.0;
  if (!strcmp(t->o.schedule, "exp")) s->kind = EN_SCHED_EXP;
  else if (!strcmp(t->o.schedule, "cosine")) s->kind = EN_SCHED_COSINE;
  else if (!strcmp(t->o.schedule, "constant")) s->kind = EN_SCHED_CONSTANT;
  else return en_fail(err, EFFNET_E_ARGUMENT, "unknown schedule '%s' (exp, cosine, constant)",
                      t->o.schedule);
  return en_optim_init(&t->opt, &cfg, t->model->params.total, err);
}

static effnet_status setup_augment(en_trainer *t, int is_idx, effnet_error *err) {
  static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
  static const float imagenet_std[3] = {0.229f, 0.224f, 0.225f};
  en_augment a;
  memset(&a, 0, sizeof a);
  const char *pre = effnet_model_preprocess(t->model);
  for (int c = 0; c < 3; c++) {
    /* Lite checkpoints expect (x - 127) / 128, inception-style ones (x - 0.5) / 0.5 */
    a.mean[c] = !strcmp(pre, "lite") ? 127.0f / 255 : !strcmp(pre, "inception") ? 0.5f : imagenet_mean[c];
    a.std[c] = !strcmp(pre, "lite") ? 128.0f / 255 : !strcmp(pre, "inception") ? 0.5f : imagenet_std[c];
  }
  a.crop_frac = 0.875f;
  a.flip = 1;
  a.min_scale = (float)t->o.min_scale;
  a.pad = 2;
  t->aug_test = a;
  t->aug_test.kind = EN_AUG_NONE;
  const char *k = t->o.augment;
  if (!strcmp(k, "auto")) a.kind = is_idx ? EN_AUG_PAD_CROP : EN_AUG_RRC;
  else if (!strcmp(k, "rrc")) a.kind = EN_AUG_RRC;
  else if (!strcmp(k, "crop")) a.kind = EN_AUG_PAD_CROP;
  else if (!strcmp(k, "none")) a.kind = EN_AUG_NONE;
  else return en_fail(err, EFFNET_E_ARGUMENT, "unknown augmentation '%s' (auto, rrc, crop, none)", k);
  t->aug_train = a;
  return EFFNET_OK;
}

/* Fisher-Yates from (seed, epoch): the order of an epoch never depends on earlier ones. */
static void epoch_order(en_trainer *t) {
  int64_t n = en_dataset_size(t->train);
  en_rng r = en_rng_make(t->o.seed, EN_STREAM_ORDER, (uint64_t)t->epoch);
  for (int64_t i = 0; i < n; i++) t->order[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)en_rng_below(&r, (uint64_t)i + 1);
    int64_t tmp = t->order[i];
    t->order[i] = t->order[j];
    t->order[j] = tmp;
  }
}

static effnet_status load_batch(en_trainer *t, effnet_error *err) {
  int B = t->o.batch;
  int64_t px = (int64_t)t->res * t->res * 3, first = t->step_in_epoch * B;
  uint64_t seed = en_rng_bits(t->o.seed, EN_STREAM_AUGMENT, (uint64_t)t->epoch);
  effnet_status st = EFFNET_OK;
#pragma omp parallel for schedule(dynamic)
  for (int i = 0; i < B; i++) {
    int64_t idx = t->order[first + i];
    effnet_error e;
    effnet_status s = en_dataset_sample(t->train, idx, t->images + i * px, t->res,
                                        &t->aug_train, seed, &e);
    t->labels[i] = en_dataset_label(t->train, idx);
#pragma omp critical
    if (s != EFFNET_OK && st == EFFNET_OK) {
      st = s;
      *err = e;
    }
  }
  return st;
}

static int grads_finite(const en_trainer *t) {
  const float *g = t->graph.grad;
  int ok = 1;
#pragma omp parallel for reduction(&& : ok) schedule(static)
  for (int64_t i = 0; i < t->graph.grad_floats; i++) ok = ok && isfinite(g[i]);
  return ok;
}

static void report(en_trainer *t, double epoch_seconds, double lr) {
  if (!t->cb.progress) return;
  effnet_train_progress p = {0};
  p.epoch = t->epoch + 1;
  p.epochs = t->o.epochs;
  p.step_in_epoch = t->step_in_epoch;
  p.steps_per_epoch = t->steps_per_epoch;
  p.global_step = t->global_step;
  p.loss = t->loss_count ? t->loss_sum / t->loss_count : 0.0;
  p.img_per_s = epoch_seconds > 0 ? (double)t->loss_count * t->o.batch / epoch_seconds : 0.0;
  p.eta_s = p.img_per_s > 0
                ? (double)(t->steps_per_epoch - t->step_in_epoch) * t->o.batch / p.img_per_s
                : 0.0;
  p.lr = lr;
  t->cb.progress(t->cb.user, &p);
}

static effnet_status train_step(en_trainer *t, double *lr, effnet_error *err) {
  effnet_status st = load_batch(t, err);
  if (st != EFFNET_OK) return st;
  *lr = en_schedule_lr(&t->sched, t->epoch + (double)t->step_in_epoch / t->steps_per_epoch);
  double loss = en_tgraph_step(&t->graph, &t->model->params, t->images, t->labels, t->o.batch,
                               &t->flags, t->o.seed, t->global_step);
  if (!isfinite(loss) || !grads_finite(t))
    return en_fail(err, EFFNET_E_NUMERIC, "training diverged at epoch %d step %lld: the loss is "
                   "%g; nothing of this step was applied and the last checkpoint (%s) is kept: "
                   "lower --lr", t->epoch + 1, (long long)t->step_in_epoch + 1, loss,
                   t->ckpt_path);
  en_optim_step(&t->opt, &t->model->params, t->graph.grad, (float)*lr);
  t->global_step++;
  if (t->ema) en_ema_update(t->ema, t->model->params.data, t->model->params.total,
                            t->o.ema_decay, t->global_step);
  t->loss_sum += loss;
  t->loss_count++;
  t->step_in_epoch++;
  return EFFNET_OK;
}

/* Evaluate, log and save. A whole epoch advances the position and is checkpointed with its
 * log line; a partial one (the step budget ran out mid-epoch) is evaluated and shown in
 * log.jsonl and the result, while the checkpoint keeps the mid-epoch position and only whole
 * epochs, so a resume with a larger budget continues the same curve. */
static effnet_status end_epoch(en_trainer *t, double lr, int partial, effnet_epoch_result *out,
                               effnet_error *err) {
  double t0 = omp_get_wtime();
  const float *w = t->ema ? t->ema : t->model->params.data;
  memcpy(t->eval->params.data, w, (size_t)t->model->params.total * sizeof(float));
  t->eval->folded_valid = 0;
  effnet_epoch_result r = {0};
  effnet_status st = en_evaluate(t->eval, t->test, &t->aug_test, t->res, t->o.batch,
                                   t->o.eval_limit, &r, &t->cb, err);
  if (st != EFFNET_OK) return st;
  r.epoch = t->epoch + 1;
  r.train_loss = t->loss_count ? t->loss_sum / t->loss_count : 0.0;
  r.img_per_s = t->train_seconds > 0 ? t->loss_count * (double)t->o.batch / t->train_seconds : 0.0;
  r.seconds = t->train_seconds + omp_get_wtime() - t0;
  r.lr = lr;
  r.global_step = t->global_step;
  t->log[t->log_count++] = r;
  if (out) *out = r;
  /* the weights a user should deploy (EMA when on) go to model.safetensors */
  st = en_weights_save(t->eval, t->model_path, err);
  if (partial) {
    if (st == EFFNET_OK) st = en_log_write(t, err);
    t->log_count--;
    if (st == EFFNET_OK) st = en_ckpt_save(t, err);
  } else {
    t->epoch++;
    t->step_in_epoch = 0;
    t->loss_sum = t->train_seconds = 0.0;
    t->loss_count = 0;
    /* checkpoint before the log: after a kill in between, the log is rebuilt from the
     * checkpoint's own copy */
    if (st == EFFNET_OK) st = en_ckpt_save(t, err);
    if (st == EFFNET_OK) st = en_log_write(t, err);
  }
  if (st == EFFNET_OK && t->cb.epoch) t->cb.epoch(t->cb.user, &r);
  return st;
}

static effnet_status run_epochs(en_trainer *t, effnet_epoch_result *result, effnet_error *err) {
  effnet_status st = EFFNET_OK;
  double lr = t->o.lr;
  while (t->epoch < t->o.epochs && st == EFFNET_OK) {
    epoch_order(t);
    double t0 = omp_get_wtime() - t->train_seconds;
    while (t->step_in_epoch < t->steps_per_epoch && st == EFFNET_OK) {
      if (t->o.max_steps && t->global_step >= t->o.max_steps) {
        t->train_seconds = omp_get_wtime() - t0;
        return t->loss_count ? end_epoch(t, lr, 1, result, err) : en_ckpt_save(t, err);
      }
      st = train_step(t, &lr, err);
      t->train_seconds = omp_get_wtime() - t0;
      if (st == EFFNET_OK) report(t, t->train_seconds, lr);
      if (st == EFFNET_OK && t->o.checkpoint_every && t->global_step % t->o.checkpoint_every == 0 &&
          t->step_in_epoch < t->steps_per_epoch)
        st = en_ckpt_save(t, err);
    }
    if (st == EFFNET_OK) st = end_epoch(t, lr, 0, result, err);
  }
  return st;
}

/* ------------------------------------------------------------------ setup */

static effnet_status make_dirs(const char *dir, effnet_error *err) {
  char path[4096];
  if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
    return en_fail(err, EFFNET_E_ARGUMENT, "output folder name too long");
  for (char *p = path + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    mkdir(path, 0777);
    *p = '/';
  }
  struct stat sb;
  if (mkdir(path, 0777) != 0 && (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)))
    return en_fail(err, EFFNET_E_IO, "%s: cannot create the output folder", dir);
  return EFFNET_OK;
}

static int same_member(const effnet_spec *a, const effnet_spec *b) {
  return a->family == b->family && fabs(a->width - b->width) < 1e-9 &&
         fabs(a->depth - b->depth) < 1e-9;
}

/* A pretrained start: every tensor but the classifier, which is redrawn when the class count
 * differs (fine-tuning on new classes). */
static effnet_status init_from(en_trainer *t, int classes, effnet_error *err) {
  effnet_model *src = NULL;
  effnet_status st = effnet_model_load(&src, t->o.init, NULL, err);
  if (st != EFFNET_OK) return st;
  if (src->arch.num_classes == classes) {
    t->model = src;
    return EFFNET_OK;
  }
  effnet_spec spec = src->arch.spec;
  spec.num_classes = classes;
  st = effnet_model_create(&t->model, &spec, t->o.seed ? t->o.seed : 1, err);
  if (st == EFFNET_OK) {
    const en_params *from = &src->params;
    for (int i = 0; i < from->count; i++)
      if (from->table[i].role != EN_R_FC)
        memcpy(en_param_ptr(&t->model->params, i), en_param_ptr(from, i),
               (size_t)from->table[i].numel * sizeof(float));
    memcpy(t->model->preprocess, src->preprocess, sizeof src->preprocess);
    if (t->cb.note) {
      char msg[600];
      snprintf(msg, sizeof msg, "%.400s: classifier replaced (%d -> %d classes)", t->o.init,
               src->arch.num_classes, classes);
      t->cb.note(t->cb.user, msg);
    }
  }
  effnet_model_free(src);
  return st;
}

static effnet_status make_model(en_trainer *t, const effnet_spec *spec, int classes,
                                effnet_error *err) {
  effnet_status st;
  if (t->o.resume) {
    st = effnet_model_load(&t->model, t->ckpt_path, NULL, err);
    if (st != EFFNET_OK) return st;
    const effnet_spec *have = &t->model->arch.spec;
    if (spec && !same_member(spec, have))
      return en_fail(err, EFFNET_E_ARGUMENT, "%s holds a %s (width %g, depth %g), not the "
                     "requested %s (width %g, depth %g)", t->ckpt_path, have->name, have->width,
                     have->depth, spec->name, spec->width, spec->depth);
    if (t->model->arch.num_classes != classes)
      return en_fail(err, EFFNET_E_SHAPE, "%s has %d classes but the data has %d",
                     t->ckpt_path, t->model->arch.num_classes, classes);
    return EFFNET_OK;
  }
  if (t->o.init) return init_from(t, classes, err);
  if (!spec) return en_fail(err, EFFNET_E_ARGUMENT, "no model to train (--model or --init)");
  effnet_spec s = *spec;
  s.num_classes = classes;
  return effnet_model_create(&t->model, &s, t->o.seed ? t->o.seed : 1, err);
}

static effnet_status alloc_state(en_trainer *t, effnet_error *err) {
  const effnet_spec *spec = &t->model->arch.spec;
  effnet_status st = effnet_model_create(&t->eval, spec, 1, err);
  if (st != EFFNET_OK) return st;
  memcpy(t->eval->preprocess, t->model->preprocess, sizeof t->model->preprocess);
  st = setup_optimizer(t, err);
  if (st != EFFNET_OK) return st;
  st = en_tgraph_init(&t->graph, &t->model->arch, &t->model->params, t->o.batch, t->res, t->res,
                      MAX_TRAIN_BYTES, err);
  if (st != EFFNET_OK) return st;
  int64_t n = en_dataset_size(t->train), px = (int64_t)t->res * t->res * 3;
  t->images = malloc((size_t)(t->o.batch * px) * sizeof(float));
  t->labels = malloc((size_t)t->o.batch * sizeof(int));
  t->order = malloc((size_t)n * sizeof(int64_t));
  t->log = calloc((size_t)t->o.epochs + 2, sizeof *t->log);
  if (t->o.ema_decay > 0) t->ema = malloc((size_t)t->model->params.total * sizeof(float));
  if (!t->images || !t->labels || !t->order || !t->log || (t->o.ema_decay > 0 && !t->ema))
    return en_fail(err, EFFNET_E_NOMEM, "out of memory (training buffers)");
  if (t->ema) memcpy(t->ema, t->model->params.data, (size_t)t->model->params.total * sizeof(float));
  t->steps_per_epoch = n / t->o.batch;
  if (t->steps_per_epoch < 1)
    return en_fail(err, EFFNET_E_ARGUMENT, "the training data has %lld images, fewer than one "
                   "batch of %d", (long long)n, t->o.batch);
  t->flags.dropout = (float)t->o.dropout;
  t->flags.drop_path = (float)t->o.drop_path;
  t->flags.bn_momentum = (float)t->o.bn_momentum;
  t->flags.label_smoothing = (float)t->o.label_smoothing;
  return EFFNET_OK;
}

static effnet_status resume_position(en_trainer *t, effnet_error *err) {
  effnet_epoch_result *log = t->log;
  t->log = NULL;
  effnet_status st = en_ckpt_restore(t, err); /* allocates its own log */
  if (st == EFFNET_OK) {
    effnet_epoch_result *grown = calloc((size_t)t->log_count + t->o.epochs + 2, sizeof *grown);
    if (!grown) st = en_fail(err, EFFNET_E_NOMEM, "out of memory (log)");
    else memcpy(grown, t->log, (size_t)t->log_count * sizeof *grown);
    free(t->log);
    t->log = grown;
  }
  free(log);
  if (st == EFFNET_OK && t->cb.note) {
    char msg[600];
    snprintf(msg, sizeof msg, "resumed %.400s at epoch %d, step %lld of %lld", t->ckpt_path,
             t->epoch + 1, (long long)t->step_in_epoch, (long long)t->steps_per_epoch);
    t->cb.note(t->cb.user, msg);
  }
  if (st == EFFNET_OK) st = en_log_write(t, err);
  return st;
}

static void trainer_free(en_trainer *t) {
  effnet_model_free(t->model);
  effnet_model_free(t->eval);
  en_dataset_free(t->train);
  en_dataset_free(t->test);
  en_tgraph_free(&t->graph);
  en_optim_free(&t->opt);
  free(t->ema), free(t->images), free(t->labels), free(t->order), free(t->log);
  free(t);
}

/* A run killed while writing leaves its temp file (NAME.tmp.PID) behind: remove those of a
 * previous process; the files they were meant to replace are intact. */
static void remove_stale_temps(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  static const char *const ours[] = {"checkpoint.safetensors.tmp.", "model.safetensors.tmp.",
                                     "log.jsonl.tmp."};
  char mine[32], path[4400];
  snprintf(mine, sizeof mine, ".tmp.%ld", (long)getpid());
  struct dirent *e;
  while ((e = readdir(d)))
    for (size_t k = 0; k < sizeof ours / sizeof ours[0]; k++)
      if (!strncmp(e->d_name, ours[k], strlen(ours[k])) && !strstr(e->d_name, mine)) {
        snprintf(path, sizeof path, "%.4000s/%.255s", dir, e->d_name);
        unlink(path);
      }
  closedir(d);
}

static effnet_status prepare(en_trainer *t, const effnet_spec *spec, char strings[4][4096],
                             effnet_error *err) {
  const char *dir = t->o.out_dir;
  if (!dir || !*dir) return en_fail(err, EFFNET_E_ARGUMENT, "no output folder (--out)");
  if (strlen(dir) > 4000) return en_fail(err, EFFNET_E_ARGUMENT, "output folder name too long");
  snprintf(t->ckpt_path, sizeof t->ckpt_path, "%s/checkpoint.safetensors", dir);
  snprintf(t->model_path, sizeof t->model_path, "%s/model.safetensors", dir);
  snprintf(t->log_path, sizeof t->log_path, "%s/log.jsonl", dir);
  effnet_status st = make_dirs(dir, err);
  if (st == EFFNET_OK) remove_stale_temps(dir);
  if (st == EFFNET_OK && t->o.resume) st = en_ckpt_merge_options(t->ckpt_path, &t->o, strings, err);
  int is_idx = 0;
  if (st == EFFNET_OK)
    st = en_open_data(t->o.data, t->o.val_fraction < 0 ? 0.1 : t->o.val_fraction, &t->train,
                      &t->test, &is_idx, &t->cb, err);
  int classes = st == EFFNET_OK ? en_dataset_classes(t->train) : 0;
  if (st == EFFNET_OK && t->o.num_classes > 0 && t->o.num_classes != classes)
    st = en_fail(err, EFFNET_E_ARGUMENT, "--classes %d disagrees with the data (%s has %d classes)",
                 t->o.num_classes, t->o.data, classes);
  if (st == EFFNET_OK) st = make_model(t, spec, classes, err);
  if (st == EFFNET_OK) st = resolve(t, &t->model->arch.spec, is_idx, err);
  t->res = t->o.resolution;
  if (st == EFFNET_OK) st = setup_augment(t, is_idx, err);
  if (st == EFFNET_OK) st = alloc_state(t, err);
  if (st == EFFNET_OK && t->o.resume) st = resume_position(t, err);
  return st;
}

effnet_status effnet_train(const effnet_spec *spec, const effnet_train_options *options,
                           const effnet_train_callbacks *callbacks, effnet_epoch_result *result,
                           effnet_error *err) {
  if (!options) return en_fail(err, EFFNET_E_ARGUMENT, "effnet_train: NULL options");
  en_trainer *t = calloc(1, sizeof *t);
  char (*strings)[4096] = calloc(4, 4096);
  if (!t || !strings) {
    free(t), free(strings);
    return en_fail(err, EFFNET_E_NOMEM, "out of memory (trainer)");
  }
  t->o = *options;
  if (callbacks) t->cb = *callbacks;
  int previous = omp_get_max_threads();
  omp_set_num_threads(options->threads > 0 ? options->threads : omp_get_num_procs());
  effnet_status st = prepare(t, spec, strings, err);
  if (st == EFFNET_OK) st = run_epochs(t, result, err);
  omp_set_num_threads(previous);
  trainer_free(t);
  free(strings);
  return st;
}

effnet_status effnet_evaluate(effnet_model *model, const char *data, int batch, int resolution,
                              double val_fraction, effnet_epoch_result *result,
                              effnet_error *err) {
  if (!model || !result) return en_fail(err, EFFNET_E_ARGUMENT, "effnet_evaluate: NULL argument");
  memset(result, 0, sizeof *result);
  en_dataset *train = NULL, *test = NULL;
  int is_idx = 0;
  effnet_status st = en_open_data(data, val_fraction < 0 ? 0.1 : val_fraction, &train, &test,
                                  &is_idx, NULL, err);
  en_trainer t;
  memset(&t, 0, sizeof t);
  t.model = model;
  t.o.min_scale = 1.0;
  t.o.augment = "none";
  if (st == EFFNET_OK) st = setup_augment(&t, is_idx, err);
  int res = resolution > 0 ? resolution : model->arch.spec.resolution;
  if (st == EFFNET_OK)
    st = en_evaluate(model, test, &t.aug_test, res, batch > 0 ? batch : 64, 0, result, NULL, err);
  en_dataset_free(train);
  en_dataset_free(test);
  return st;
}

effnet_status effnet_data_classes(const char *data, int *classes, effnet_error *err) {
  if (!classes) return en_fail(err, EFFNET_E_ARGUMENT, "effnet_data_classes: NULL classes");
  *classes = 0;
  en_dataset *train = NULL, *test = NULL;
  int is_idx = 0;
  effnet_status st = en_open_data(data, 0.1, &train, &test, &is_idx, NULL, err);
  if (st == EFFNET_OK) *classes = en_dataset_classes(train);
  en_dataset_free(train);
  en_dataset_free(test);
  return st;
}
