/* Checkpoints and the epoch log. A checkpoint is one safetensors file: the model's tensors
 * under their usual names (so classify/run/eval load it directly), the optimizer moments and
 * the EMA as flat blocks under "train.", and the position (epoch, step, loss sums, log, the
 * options that shape the loss curve) as JSON in the metadata key "effnet.train". st_write
 * makes it atomic: temp file, fsync, rename, fsync of the folder. */
#include <inttypes.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/iofile.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "train/trainer.h"

typedef struct sbuf {
  char *s;
  size_t len, cap;
  int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->cap - b->len;
    int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->oom = 1;
      return;
    }
    if (b->s && (size_t)n < room) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = (b->cap + (size_t)n + 1) * 2;
    char *s = realloc(b->s, cap);
    if (!s) {
      b->oom = 1;
      return;
    }
    b->s = s;
    b->cap = cap;
  }
}

/* A JSON string literal (paths may hold quotes, backslashes, control bytes). */
static void sb_string(sbuf *b, const char *s) {
  sb_printf(b, "\"");
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') sb_printf(b, "\\%c", c);
    else if (c < 0x20) sb_printf(b, "\\u%04x", c);
    else sb_printf(b, "%c", c);
  }
  sb_printf(b, "\"");
}

static void sb_epoch(sbuf *b, const effnet_epoch_result *r) {
  sb_printf(b, "{\"epoch\": %d, \"train_loss\": %.9g, \"test_loss\": %.9g, \"test_acc\": %.6f, "
               "\"test_top5\": %.6f, \"img_per_s\": %.2f, \"seconds\": %.3f, \"lr\": %.9g, "
               "\"global_step\": %" PRId64 "}",
            r->epoch, r->train_loss, r->test_loss, r->test_acc, r->test_top5, r->img_per_s,
            r->seconds, r->lr, r->global_step);
}

/* Options that decide the loss curve: a resume must run with the same values. */
static void sb_options(sbuf *b, const effnet_train_options *o) {
  sb_printf(b, "\"options\": {\"data\": ");
  sb_string(b, o->data);
  sb_printf(b, ", \"optimizer\": ");
  sb_string(b, o->optimizer);
  sb_printf(b, ", \"schedule\": ");
  sb_string(b, o->schedule);
  sb_printf(b, ", \"augment\": ");
  sb_string(b, o->augment);
  sb_printf(b, ", \"batch\": %d, \"resolution\": %d, \"seed\": %" PRIu64 ", \"lr\": %.17g, "
               "\"weight_decay\": %.17g, \"warmup_epochs\": %.17g, \"label_smoothing\": %.17g, "
               "\"dropout\": %.17g, \"drop_path\": %.17g, \"bn_momentum\": %.17g, "
               "\"ema_decay\": %.17g, \"min_scale\": %.17g, \"val_fraction\": %.17g, "
               "\"epochs\": %d}",
            o->batch, o->resolution, o->seed, o->lr, o->weight_decay, o->warmup_epochs,
            o->label_smoothing, o->dropout, o->drop_path, o->bn_momentum, o->ema_decay,
            o->min_scale, o->val_fraction, o->epochs);
}

static char *state_json(const en_trainer *t) {
  sbuf b = {0};
  sb_printf(&b, "{\"version\": 1, \"epoch\": %d, \"step_in_epoch\": %" PRId64
                ", \"global_step\": %" PRId64 ", \"optim_steps\": %" PRId64
                ", \"loss_sum\": %.17g, \"loss_count\": %" PRId64 ", \"train_seconds\": %.17g, ",
            t->epoch, t->step_in_epoch, t->global_step, t->opt.steps, t->loss_sum,
            t->loss_count, t->train_seconds);
  sb_options(&b, &t->o);
  sb_printf(&b, ", \"log\": [");
  for (int i = 0; i < t->log_count; i++) {
    if (i) sb_printf(&b, ", ");
    sb_epoch(&b, &t->log[i]);
  }
  sb_printf(&b, "]}");
  if (b.oom) {
    free(b.s);
    return NULL;
  }
  return b.s;
}

effnet_status en_ckpt_save(en_trainer *t, effnet_error *err) {
  char *state = state_json(t);
  if (!state) return en_fail(err, EFFNET_E_NOMEM, "out of memory writing the checkpoint state");
  int64_t total = t->model->params.total;
  st_write_tensor extra[3];
  size_t k = 0;
  extra[k++] = (st_write_tensor){"train.optim.state1", ST_F32, 1, {total}, t->opt.state1};
  if (t->opt.state2)
    extra[k++] = (st_write_tensor){"train.optim.state2", ST_F32, 1, {total}, t->opt.state2};
  if (t->ema) extra[k++] = (st_write_tensor){"train.ema", ST_F32, 1, {total}, t->ema};
  const char *meta[] = {"effnet.train", state};
  effnet_status st = en_weights_save_ext(t->model, t->ckpt_path, NULL, extra, k, meta, 1, err);
  free(state);
  return st;
}

effnet_status en_log_write(const en_trainer *t, effnet_error *err) {
  sbuf b = {0};
  for (int i = 0; i < t->log_count; i++) {
    sb_epoch(&b, &t->log[i]);
    sb_printf(&b, "\n");
  }
  if (b.oom) {
    free(b.s);
    return en_fail(err, EFFNET_E_NOMEM, "out of memory writing %s", t->log_path);
  }
  io_atomic a;
  effnet_status st = io_atomic_open(&a, t->log_path, err);
  if (st == EFFNET_OK) st = io_atomic_write(&a, b.s ? b.s : "", b.len, err);
  if (st == EFFNET_OK) st = io_atomic_commit(&a, err);
  else io_atomic_abort(&a);
  free(b.s);
  return st;
}

/* ------------------------------------------------------------------ restore */

static double jnum(const json_value *o, const char *key, int *ok) {
  const json_value *v = json_get(o, key);
  if (!v || v->type != JSON_NUMBER) {
    *ok = 0;
    return 0.0;
  }
  return v->number;
}

static effnet_status restore_block(st_file *f, const char *name, float *dst, int64_t total,
                                   const char *path, effnet_error *err) {
  const st_tensor *tn = st_find(f, name);
  if (!tn) return en_fail(err, EFFNET_E_MISSING, "%s: checkpoint lacks %s (written by another "
                          "optimizer or without EMA? resume with the same options)", path, name);
  if (tn->numel != total)
    return en_fail(err, EFFNET_E_SHAPE, "%s: %s has %lld values, the model needs %lld", path,
                   name, (long long)tn->numel, (long long)total);
  return st_to_f32(tn, dst, err);
}

static effnet_status restore_log(en_trainer *t, const json_value *log, const char *path,
                                 effnet_error *err) {
  t->log_count = 0;
  if (!log || log->type != JSON_ARRAY)
    return en_fail(err, EFFNET_E_FORMAT, "%s: effnet.train has no log", path);
  t->log = calloc(log->count + 1, sizeof *t->log);
  if (!t->log) return en_fail(err, EFFNET_E_NOMEM, "out of memory (log)");
  for (const json_value *e = log->child; e; e = e->next) {
    int ok = 1;
    effnet_epoch_result *r = &t->log[t->log_count++];
    r->epoch = (int)jnum(e, "epoch", &ok);
    r->train_loss = jnum(e, "train_loss", &ok);
    r->test_loss = jnum(e, "test_loss", &ok);
    r->test_acc = jnum(e, "test_acc", &ok);
    r->test_top5 = jnum(e, "test_top5", &ok);
    r->img_per_s = jnum(e, "img_per_s", &ok);
    r->seconds = jnum(e, "seconds", &ok);
    r->lr = jnum(e, "lr", &ok);
    r->global_step = (int64_t)jnum(e, "global_step", &ok);
    if (!ok) return en_fail(err, EFFNET_E_FORMAT, "%s: malformed log entry in effnet.train", path);
  }
  return EFFNET_OK;
}

static effnet_status restore_position(en_trainer *t, const json_value *root, const char *path,
                                      effnet_error *err) {
  int ok = 1;
  t->epoch = (int)jnum(root, "epoch", &ok);
  t->step_in_epoch = (int64_t)jnum(root, "step_in_epoch", &ok);
  t->global_step = (int64_t)jnum(root, "global_step", &ok);
  t->opt.steps = (int64_t)jnum(root, "optim_steps", &ok);
  t->loss_sum = jnum(root, "loss_sum", &ok);
  t->loss_count = (int64_t)jnum(root, "loss_count", &ok);
  t->train_seconds = jnum(root, "train_seconds", &ok);
  if (!ok || t->epoch < 0 || t->step_in_epoch < 0 || t->global_step < 0 || t->loss_count < 0 ||
      !isfinite(t->loss_sum))
    return en_fail(err, EFFNET_E_FORMAT, "%s: malformed training position in effnet.train", path);
  return restore_log(t, json_get(root, "log"), path, err);
}

/* The checkpoint at path and its parsed "effnet.train" state; both NULL on failure. */
static effnet_status open_state(const char *path, st_file **f, json_doc **doc,
                                effnet_error *err) {
  *f = NULL;
  *doc = NULL;
  effnet_status st = st_open(f, path, err);
  const char *state = st == EFFNET_OK ? st_metadata(*f, "effnet.train") : NULL;
  if (st == EFFNET_OK && !state)
    st = en_fail(err, EFFNET_E_FORMAT, "%s: not an effnet training checkpoint (no effnet.train "
                 "metadata); use --init to start from these weights", path);
  if (st == EFFNET_OK) st = json_parse(doc, state, strlen(state), NULL, path, err);
  if (st != EFFNET_OK) {
    st_close(*f);
    *f = NULL;
  }
  return st;
}

effnet_status en_ckpt_restore(en_trainer *t, effnet_error *err) {
  const char *path = t->ckpt_path;
  st_file *f;
  json_doc *doc;
  effnet_status st = open_state(path, &f, &doc, err);
  if (st == EFFNET_OK) st = restore_position(t, json_root(doc), path, err);
  int64_t total = t->model->params.total;
  if (st == EFFNET_OK) st = restore_block(f, "train.optim.state1", t->opt.state1, total, path, err);
  if (st == EFFNET_OK && t->opt.state2)
    st = restore_block(f, "train.optim.state2", t->opt.state2, total, path, err);
  if (st == EFFNET_OK && t->ema) st = restore_block(f, "train.ema", t->ema, total, path, err);
  json_free(doc);
  st_close(f);
  return st;
}

/* ------------------------------------------------------------------ options of a resume */

typedef struct opt_num {
  const char *key;
  double *value; /* unspecified when < 0 */
} opt_num;

static effnet_status merge_string(const json_value *o, const char *key, const char **field,
                                  char *store, size_t size, const char *path, effnet_error *err) {
  const json_value *v = json_get(o, key);
  if (!v || v->type != JSON_STRING) return en_fail(err, EFFNET_E_FORMAT, "%s: options lack %s", path, key);
  if (*field && strcmp(*field, v->str))
    return en_fail(err, EFFNET_E_ARGUMENT, "%s was trained with --%s %s, not %s: resume with the "
                   "same options or start a new --out folder", path, key, v->str, *field);
  snprintf(store, size, "%s", v->str);
  *field = store;
  return EFFNET_OK;
}

static effnet_status merge_number(const json_value *o, const char *key, double *field,
                                  int unset, const char *path, effnet_error *err) {
  int ok = 1;
  double v = jnum(o, key, &ok);
  if (!ok) return en_fail(err, EFFNET_E_FORMAT, "%s: options lack %s", path, key);
  if (!unset && *field != v)
    return en_fail(err, EFFNET_E_ARGUMENT, "%s was trained with --%s %.9g, not %.9g: resume with "
                   "the same options or start a new --out folder", path, key, v, *field);
  *field = v;
  return EFFNET_OK;
}

effnet_status en_ckpt_merge_options(const char *path, effnet_train_options *o,
                                    char strings[4][4096], effnet_error *err) {
  st_file *f;
  json_doc *doc;
  effnet_status st = open_state(path, &f, &doc, err);
  const json_value *opts = st == EFFNET_OK ? json_get(json_root(doc), "options") : NULL;
  if (st == EFFNET_OK && !opts) st = en_fail(err, EFFNET_E_FORMAT, "%s: no options recorded", path);
  if (st == EFFNET_OK) st = merge_string(opts, "data", &o->data, strings[0], 4096, path, err);
  if (st == EFFNET_OK) st = merge_string(opts, "optimizer", &o->optimizer, strings[1], 4096, path, err);
  if (st == EFFNET_OK) st = merge_string(opts, "schedule", &o->schedule, strings[2], 4096, path, err);
  if (st == EFFNET_OK) st = merge_string(opts, "augment", &o->augment, strings[3], 4096, path, err);
  opt_num nums[] = {{"lr", &o->lr}, {"weight_decay", &o->weight_decay},
                    {"warmup_epochs", &o->warmup_epochs}, {"label_smoothing", &o->label_smoothing},
                    {"dropout", &o->dropout}, {"drop_path", &o->drop_path},
                    {"bn_momentum", &o->bn_momentum}, {"ema_decay", &o->ema_decay},
                    {"min_scale", &o->min_scale}, {"val_fraction", &o->val_fraction}};
  for (size_t i = 0; st == EFFNET_OK && i < sizeof nums / sizeof nums[0]; i++)
    st = merge_number(opts, nums[i].key, nums[i].value, *nums[i].value < 0, path, err);
  double batch = o->batch, res = o->resolution, seed = (double)o->seed, epochs = o->epochs;
  if (st == EFFNET_OK) st = merge_number(opts, "batch", &batch, o->batch <= 0, path, err);
  if (st == EFFNET_OK) st = merge_number(opts, "resolution", &res, o->resolution <= 0, path, err);
  if (st == EFFNET_OK) st = merge_number(opts, "seed", &seed, o->seed == 0, path, err);
  /* more (or fewer) epochs than recorded is allowed: it extends the run */
  if (st == EFFNET_OK && o->epochs <= 0) st = merge_number(opts, "epochs", &epochs, 1, path, err);
  o->batch = (int)batch;
  o->resolution = (int)res;
  o->seed = (uint64_t)seed;
  o->epochs = (int)epochs;
  json_free(doc);
  st_close(f);
  return st;
}
