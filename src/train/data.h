/* Training data: Fashion-MNIST (IDX files, gzipped or not) and image folders (one subfolder
 * per class), with the augmentations of the EfficientNet recipe. A sample is produced as NHWC
 * float (res, res, 3), normalised by mean/std, from a counter-based seed, so the same
 * (seed, epoch, index) always gives the same pixels on any thread. */
#ifndef EN_DATA_H
#define EN_DATA_H

#include <stdint.h>

#include "effnet.h"

typedef struct en_dataset en_dataset;

/* Crops and flips follow torchvision (RandomResizedCrop, RandomCrop(padding), Resize,
 * RandomHorizontalFlip). Folder images are resampled with Pillow's filters (img_resize_pil:
 * bilinear for the training crops, bicubic for eval), so a crop gives torchvision's pixels;
 * IDX images use the same bilinear filter in float without the uint8 rounding, and without
 * any allocation. The flip (when aug->flip) is drawn after the crop, so flip on and off
 * with the same seed give the same crop. */
typedef enum en_aug_kind {
  EN_AUG_NONE,     /* eval: folders resize the short side to floor(res / crop_frac), then
                      centre-crop res (effnet_preprocess_image's torchvision geometry); IDX
                      images are resized to res x res (at their own size: the exact pixels);
                      never flipped */
  EN_AUG_RRC,      /* random-resized-crop (scale [min_scale, 1], ratio [3/4, 4/3]) + h-flip */
  EN_AUG_PAD_CROP  /* pad by `pad` pixels (zeros), random crop of the source size, h-flip,
                      then resize to res x res (the classic CIFAR / Fashion-MNIST recipe) */
} en_aug_kind;

typedef struct en_augment {
  en_aug_kind kind;
  float min_scale; /* RRC, e.g. 0.08 (Inception) or 0.25 for small images */
  int pad;         /* PAD_CROP */
  int flip;        /* horizontal flip with p = 0.5 */
  float crop_frac; /* NONE on folders: 0.875 */
  float mean[3], std[3]; /* on [0, 1] pixel values */
} en_augment;

/* Fashion-MNIST (or MNIST) from `dir` holding train-images-idx3-ubyte[.gz],
 * train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]
 * (the .gz name is tried first). train = 1 for the training split, 0 for the test split.
 * Every header, size and label is checked: wrong magic, sides outside 1..4096, a count
 * mismatch between the two files, a label >= 10, a truncated file or trailing bytes are
 * errors naming the file. Always 10 classes, named as Fashion-MNIST's ("T-shirt/top" ..
 * "Ankle boot") unless `dir` mentions "mnist" but not "fashion" ("0".."9"). */
effnet_status en_dataset_open_idx(en_dataset **out, const char *dir, int train,
                                  effnet_error *err);

/* Image folder. `dir` has one subfolder per class (names sorted by strcmp = class order), or
 * `train/` and `val/` (or `validation/`) with class subfolders: the classes are train/'s, and
 * val/ may lack some but may not add any. Files: .jpg, .jpeg, .png (any case), found
 * recursively inside each class folder, sorted; dot files ignored. split: 1 = training
 * part, 0 = validation part. Without train/val subfolders, the validation part of a class of
 * n >= 2 files is the round(n * val_fraction) files (at least 1 if val_fraction > 0, at most
 * n - 1) of smallest hash of their path inside the class folder: deterministic, and the two
 * parts are disjoint; val_fraction in [0, 1). Each file of the part is decoded once at open
 * time (in parallel); those that fail are dropped and *skipped (may be NULL) receives their
 * count (the caller warns). Errors: no class folder, a class with no image file, a class
 * with no decodable image in the training part, an empty part. Only paths and labels stay
 * in memory; samples decode their file again. */
effnet_status en_dataset_open_folder(en_dataset **out, const char *dir, int split,
                                     double val_fraction, int *skipped, effnet_error *err);

void en_dataset_free(en_dataset *d);
int64_t en_dataset_size(const en_dataset *d);
int en_dataset_classes(const en_dataset *d);
const char *en_dataset_class_name(const en_dataset *d, int cls);
int en_dataset_label(const en_dataset *d, int64_t index);

/* Sample `index` into out (res, res, 3) floats, (pixel / 255 - mean[c]) / std[c], grey IDX
 * pixels replicated to the 3 channels, with augmentation aug drawn from
 * en_rng_make(seed, EN_STREAM_AUGMENT, index): a pure function of its arguments.
 * Thread-safe (read-only dataset). Fails on an unreadable file or an unusable argument
 * (index, res outside 1..4096, std 0, min_scale outside (0, 1], pad outside 0..4096,
 * crop_frac outside (0, 1] for folders). */
effnet_status en_dataset_sample(const en_dataset *d, int64_t index, float *out, int res,
                                const en_augment *aug, uint64_t seed, effnet_error *err);

#endif
