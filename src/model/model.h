/* The model handle behind effnet_model: architecture, parameter block, folded inference
 * weights and the activation plan. Shared by the API, the weight I/O and (later) training. */
#ifndef EN_MODEL_H
#define EN_MODEL_H

#include "effnet.h"
#include "infer/infer.h"
#include "kernels/kernels.h"
#include "model/arch.h"
#include "model/params.h"

/* Safety caps for forward(): checked before the arena is allocated. */
#define EN_MAX_BATCH 65536
#define EN_MAX_SIDE 16384
#define EN_MAX_ARENA_BYTES ((size_t)16 << 30)

struct effnet_model {
  en_arch arch; /* spec.padding and spec.bn_eps are resolved (never AUTO / 0) */
  en_params params;
  en_folded folded;
  int folded_valid;
  en_plan plan;
  en_plan *lanes; /* image lanes' arenas (infer.h en_forward), lane_count of them */
  int lane_count;
  const en_kernels *kernels;
  int threads;
  effnet_feature_fn hook;
  void *hook_user;
  effnet_error error;
  int profiling;
  effnet_profile profile;
  char preprocess[32]; /* preset the weights were trained with ("torchvision", "lite", ...) */
};

/* Allocate a model for spec (params zeroed). */
effnet_status en_model_new(effnet_model **out, const effnet_spec *spec, effnet_error *err);

/* Weight files (src/io/weights.c). */
effnet_status en_weights_load(effnet_model **out, const char *path,
                              const effnet_load_options *options, effnet_error *err);
effnet_status en_weights_save(const effnet_model *model, const char *path, effnet_error *err);

/* Prefix of the tensors a training checkpoint adds (optimizer state, EMA); loading for
 * inference ignores them. */
#define EN_TRAIN_PREFIX "train."

/* Save `data` (a block in the layout of model->params; NULL: the model's own) with extra
 * tensors and metadata pairs appended. Atomic like st_write. */
struct st_write_tensor;
effnet_status en_weights_save_ext(const effnet_model *model, const char *path, const float *data,
                                  const struct st_write_tensor *extra, size_t extra_count,
                                  const char *const *extra_meta, size_t extra_pairs,
                                  effnet_error *err);

#endif
