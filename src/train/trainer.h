/* The training loop behind effnet_train: state, checkpoints and evaluation. */
#ifndef EN_TRAINER_H
#define EN_TRAINER_H

#include "effnet.h"
#include "model/model.h"
#include "train/data.h"
#include "train/graph.h"
#include "train/optim.h"

#define EN_MAX_EPOCHS 100000

typedef struct en_trainer {
  effnet_train_options o; /* resolved: no defaults left open */
  effnet_train_callbacks cb;
  effnet_model *model;    /* the weights being trained (and BN running statistics) */
  effnet_model *eval;     /* inference copy for evaluation (EMA weights when on) */
  en_dataset *train, *test;
  en_augment aug_train, aug_test;
  en_tgraph graph;
  en_optim opt;
  en_schedule sched;
  en_train_flags flags;
  float *ema;             /* NULL without EMA; layout of params */
  float *images;          /* (batch, res, res, 3) */
  int *labels;
  int64_t *order;         /* this epoch's permutation of the training set */
  int res;
  /* position: everything a resume restores */
  int epoch;              /* finished epochs */
  int64_t step_in_epoch, global_step, steps_per_epoch;
  double loss_sum, train_seconds;
  int64_t loss_count;
  effnet_epoch_result *log;
  int log_count;
  char ckpt_path[4096], model_path[4096], log_path[4096];
} en_trainer;

/* checkpoint.c */
effnet_status en_ckpt_save(en_trainer *t, effnet_error *err);
/* Restore optimizer, EMA, position and log from t->ckpt_path into a trainer whose model was
 * loaded from the same file. */
effnet_status en_ckpt_restore(en_trainer *t, effnet_error *err);
effnet_status en_log_write(const en_trainer *t, effnet_error *err);

/* evaluate.c: top-1/top-5 and mean loss of model on d (no augmentation), on its first
 * `limit` samples (0: all). */
effnet_status en_evaluate(effnet_model *model, const en_dataset *d, const en_augment *aug,
                          int res, int batch, int64_t limit, effnet_epoch_result *r,
                          const effnet_train_callbacks *cb, effnet_error *err);

/* datasets.c: the train and test parts of a DATA argument, and the augmentations for it. */
effnet_status en_open_data(const char *data, double val_fraction, en_dataset **train,
                           en_dataset **test, int *is_idx, const effnet_train_callbacks *cb,
                           effnet_error *err);

/* Fill the unspecified fields of o (NULL strings, numbers < 0, batch/resolution/seed/epochs
 * 0) from the checkpoint at path; a specified value that differs from the recorded one is an
 * error naming the option. Strings are copied into strings[]. */
effnet_status en_ckpt_merge_options(const char *path, effnet_train_options *o,
                                    char strings[4][4096], effnet_error *err);

#endif
