/* What a DATA argument names: Debian's Fashion-MNIST, a folder of IDX files, or an image
 * folder. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "train/trainer.h"

#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

static int has_idx(const char *dir) {
  char path[4200];
  snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
  if (access(path, R_OK) == 0) return 1;
  snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
  return access(path, R_OK) == 0;
}

effnet_status en_open_data(const char *data, double val_fraction, en_dataset **train,
                           en_dataset **test, int *is_idx, const effnet_train_callbacks *cb,
                           effnet_error *err) {
  *train = *test = NULL;
  if (!data || !*data) return en_fail(err, EFFNET_E_ARGUMENT, "no training data given (--data)");
  const char *dir = data;
  if (!strcmp(data, "fashion-mnist")) {
    dir = FASHION_MNIST_DIR;
    if (access(dir, R_OK) != 0)
      return en_fail(err, EFFNET_E_IO,
                     "fashion-mnist: %s is missing (apt-get install dataset-fashion-mnist)", dir);
  }
  struct stat sb;
  if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return en_fail(err, EFFNET_E_IO, "%s: not a folder (expected fashion-mnist, a folder of IDX "
                   "files or an image folder with one subfolder per class)", dir);
  effnet_status st;
  *is_idx = has_idx(dir);
  if (*is_idx) {
    st = en_dataset_open_idx(train, dir, 1, err);
    if (st == EFFNET_OK) st = en_dataset_open_idx(test, dir, 0, err);
  } else {
    int skipped_train = 0, skipped_val = 0;
    st = en_dataset_open_folder(train, dir, 1, val_fraction, &skipped_train, err);
    if (st == EFFNET_OK) st = en_dataset_open_folder(test, dir, 0, val_fraction, &skipped_val, err);
    if (st == EFFNET_OK && skipped_train + skipped_val > 0 && cb && cb->note) {
      char msg[600];
      snprintf(msg, sizeof msg, "%.400s: skipped %d unreadable image%s (%d training, %d validation)",
               dir, skipped_train + skipped_val, skipped_train + skipped_val == 1 ? "" : "s",
               skipped_train, skipped_val);
      cb->note(cb->user, msg);
    }
  }
  if (st != EFFNET_OK) {
    en_dataset_free(*train);
    en_dataset_free(*test);
    *train = *test = NULL;
  }
  return st;
}
