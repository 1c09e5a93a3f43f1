/* Evaluation on a dataset with the inference engine (BN folded, running statistics): what a
 * user of the trained weights will get. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/tkernels.h"
#include "train/trainer.h"

/* Rank of the label among the logits: 0 = top-1. */
static int rank_of(const float *logits, int K, int label) {
  int rank = 0;
  for (int k = 0; k < K; k++)
    if (logits[k] > logits[label] || (logits[k] == logits[label] && k < label)) rank++;
  return rank;
}

static effnet_status sample_batch(const en_dataset *d, int64_t first, int n, int res,
                                  const en_augment *aug, float *nhwc, float *nchw, int *labels,
                                  effnet_error *err) {
  effnet_status st = EFFNET_OK;
  int64_t plane = (int64_t)res * res;
#pragma omp parallel for schedule(dynamic)
  for (int i = 0; i < n; i++) {
    effnet_error e;
    effnet_status s = en_dataset_sample(d, first + i, nhwc + i * plane * 3, res, aug, 0, &e);
    if (s != EFFNET_OK) {
#pragma omp critical
      if (st == EFFNET_OK) {
        st = s;
        *err = e;
      }
    }
    labels[i] = en_dataset_label(d, first + i);
    for (int64_t p = 0; p < plane; p++)
      for (int c = 0; c < 3; c++) nchw[(i * 3 + c) * plane + p] = nhwc[(i * plane + p) * 3 + c];
  }
  return st;
}

effnet_status en_evaluate(effnet_model *model, const en_dataset *d, const en_augment *aug,
                          int res, int batch, int64_t limit, effnet_epoch_result *r,
                          const effnet_train_callbacks *cb, effnet_error *err) {
  int64_t total = en_dataset_size(d);
  if (limit > 0 && limit < total) total = limit;
  int K = model->arch.num_classes;
  if (en_dataset_classes(d) > K)
    return en_fail(err, EFFNET_E_SHAPE, "the data has %d classes but the model only %d",
                   en_dataset_classes(d), K);
  size_t px = (size_t)batch * res * res * 3;
  float *nhwc = malloc(px * sizeof(float)), *nchw = malloc(px * sizeof(float));
  float *logits = malloc((size_t)batch * K * sizeof(float));
  int *labels = malloc((size_t)batch * sizeof(int));
  effnet_status st = nhwc && nchw && logits && labels ? EFFNET_OK
                     : en_fail(err, EFFNET_E_NOMEM, "out of memory (evaluation batch)");
  int64_t top1 = 0, top5 = 0;
  double loss = 0.0;
  for (int64_t first = 0; st == EFFNET_OK && first < total; first += batch) {
    int n = (int)(total - first < batch ? total - first : batch);
    st = sample_batch(d, first, n, res, aug, nhwc, nchw, labels, err);
    if (st == EFFNET_OK) st = effnet_model_forward(model, nchw, n, res, res, logits);
    if (st != EFFNET_OK) {
      if (st != EFFNET_OK && err && model->error.message[0]) *err = model->error;
      break;
    }
    loss += en_softmax_xent(NULL, logits, labels, n, K, 0.0f) * n;
    for (int i = 0; i < n; i++) {
      int rank = rank_of(logits + (int64_t)i * K, K, labels[i]);
      top1 += rank == 0;
      top5 += rank < 5;
    }
    if (cb && cb->progress) {
      effnet_train_progress p = {0};
      p.evaluating = 1;
      p.step_in_epoch = first / batch + 1;
      p.steps_per_epoch = (total + batch - 1) / batch;
      cb->progress(cb->user, &p);
    }
  }
  if (st == EFFNET_OK && total > 0) {
    r->test_acc = (double)top1 / total;
    r->test_top5 = (double)top5 / total;
    r->test_loss = loss / total;
  }
  free(nhwc), free(nchw), free(logits), free(labels);
  return st;
}
