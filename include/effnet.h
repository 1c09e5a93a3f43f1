/* effnet: the EfficientNet family in C.
 *
 * One public header. Conventions:
 *  - every call that can fail returns an effnet_status; objects come back through an
 *    out-parameter that is set to NULL on failure;
 *  - functions that create an object take an effnet_error* (may be NULL) that receives a
 *    one-line message naming the file, tensor or argument at fault; later failures on a
 *    model are described by effnet_model_error(model);
 *  - the library never exits, aborts or prints;
 *  - *_free(NULL) is a no-op;
 *  - a model handle may be used by one thread at a time (it owns its activation arena);
 *    distinct handles are independent. Inside one call the library runs
 *    effnet_model_set_threads() worker threads (OpenMP).
 * Tensors crossing the API are float32, row-major, images in NCHW (PyTorch layout).
 */
#ifndef EFFNET_H
#define EFFNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EFFNET_VERSION_MAJOR 0
#define EFFNET_VERSION_MINOR 1
#define EFFNET_VERSION_PATCH 0

/* Status codes are pinned: values never change once released. */
typedef enum effnet_status {
  EFFNET_OK = 0,
  EFFNET_E_ARGUMENT = 1,    /* bad argument, unknown model name, inconsistent options */
  EFFNET_E_IO = 2,          /* a file cannot be opened, read, mapped or written */
  EFFNET_E_FORMAT = 3,      /* a file's contents are malformed or lie about sizes */
  EFFNET_E_SHAPE = 4,       /* a tensor's shape or dtype does not fit the model */
  EFFNET_E_MISSING = 5,     /* a required tensor is absent (or an extra one present) */
  EFFNET_E_NOMEM = 6,       /* an allocation failed */
  EFFNET_E_UNSUPPORTED = 7, /* valid input the library does not handle */
  EFFNET_E_LIMIT = 8,       /* input exceeds a safety cap (dims, pixels, bytes) */
  EFFNET_E_NUMERIC = 9      /* training diverged: a non-finite loss or gradient */
} effnet_status;

/* Short stable name of a status ("ok", "io", ...). Never NULL. */
const char *effnet_status_name(effnet_status status);

/* Caller-owned error buffer filled by functions that create objects. */
typedef struct effnet_error {
  char message[512];
} effnet_error;

/* ------------------------------------------------------------------ model specs */

typedef enum effnet_family {
  EFFNET_FAMILY_B = 0,   /* B0..B8, L2, custom: SE, swish, scaled stem/head */
  EFFNET_FAMILY_LITE = 1 /* Lite0..4: no SE, ReLU6, fixed stem/head, first/last repeats fixed */
} effnet_family;

typedef enum effnet_padding {
  EFFNET_PAD_AUTO = 0,      /* decided by the weights' source (see effnet_model_load) */
  EFFNET_PAD_SYMMETRIC = 1, /* PyTorch: k/2 on every side (torchvision, timm efficientnet_*) */
  EFFNET_PAD_TF_SAME = 2    /* TensorFlow 'SAME', computed from the actual input size */
} effnet_padding;

/* A member of the family. Fill it with effnet_spec_from_name / _compound / _custom,
 * then adjust num_classes etc. if needed. Plain data: copy freely. */
typedef struct effnet_spec {
  char name[64];          /* canonical name, e.g. "b0", "lite2", "custom" */
  effnet_family family;
  double width;           /* channel multiplier before rounding */
  double depth;           /* repeat multiplier before ceil */
  int resolution;         /* native square input side */
  double dropout;         /* classifier dropout (training only) */
  double drop_path;       /* stochastic depth rate of the last block (training only) */
  int num_classes;
  effnet_padding padding; /* AUTO = follow the weights */
  float bn_eps;           /* 0 = follow the weights */
} effnet_spec;

/* Accepts (case-insensitive) b0..b8, l2, lite0..lite4, with optional prefixes
 * "efficientnet-", "efficientnet_", "efficientnet" (torchvision/timm style) or "tf_efficientnet_"
 * (timm TF ports: TF-SAME padding, eps 1e-3). Unknown names give EFFNET_E_ARGUMENT. */
effnet_status effnet_spec_from_name(effnet_spec *out, const char *name, effnet_error *err);

/* Literal compound scaling of B0 (paper eq. 3): width beta^phi, depth alpha^phi,
 * resolution round(224 * gamma^phi). phi >= 0, coefficients >= 1. */
effnet_status effnet_spec_compound(effnet_spec *out, double phi, double alpha, double beta,
                                   double gamma, effnet_error *err);

/* Explicit multipliers of the B0 (or Lite0) baseline. */
effnet_status effnet_spec_custom(effnet_spec *out, effnet_family family, double width,
                                 double depth, int resolution, effnet_error *err);

/* ------------------------------------------------------------------ architecture report */

#define EFFNET_MAX_STAGES 7

typedef struct effnet_stage_info {
  int expand, kernel, stride;
  int in_channels, out_channels, repeats;
  int se_channels; /* of the first block of the stage; 0 when the family has no SE */
  int out_h, out_w;
} effnet_stage_info;

typedef struct effnet_info {
  int input_h, input_w;
  int stem_channels, head_channels, num_classes;
  int num_stages, num_blocks;
  effnet_stage_info stages[EFFNET_MAX_STAGES];
  int stem_h, stem_w;
  int64_t params;            /* trainable: weights, biases, BN gamma/beta */
  int64_t buffers;           /* BN running statistics */
  int64_t macs;              /* multiply-adds of convs, SE convs and the classifier */
  int64_t activation_bytes;  /* inference arena for batch 1 at input_h x input_w */
} effnet_info;

/* Describe a spec at an input size (h, w <= 0: the spec's resolution). */
effnet_status effnet_spec_describe(const effnet_spec *spec, int h, int w, effnet_info *out,
                                   effnet_error *err);

/* ------------------------------------------------------------------ models */

typedef struct effnet_model effnet_model;

/* A model with TF-style random initialisation (seeded) and BN statistics 0/1. */
effnet_status effnet_model_create(effnet_model **out, const effnet_spec *spec, uint64_t seed,
                                  effnet_error *err);

typedef struct effnet_load_options {
  const char *model;       /* NULL: infer from the file (names, shapes, metadata) */
  effnet_padding padding;  /* AUTO: from the weights' source */
  float bn_eps;            /* 0: from the weights' source */
} effnet_load_options;

/* Load a safetensors file written by effnet, torchvision (features.*), timm efficientnet_* /
 * tf_efficientnet_* (conv_stem, blocks.i.j.*) or lukemelas (_conv_stem, _blocks.N.*).
 * The variant is inferred from the tensor shapes unless options->model is set; the number of
 * classes from the classifier. Padding and BN epsilon follow the source: torchvision
 * symmetric (eps 1e-5 for B0..B4, 1e-3 for B5..B7), timm efficientnet_* symmetric 1e-5,
 * TF ports (tf_ prefix) and lukemelas TF-SAME 1e-3. For timm names the tf_ distinction comes from options->model,
 * the file's metadata or a config.json beside it; without any hint a PyTorch-trained timm model is assumed.
 * options may be NULL. Every tensor must be present with the right shape; extra tensors
 * other than BN num_batches_tracked are rejected. */
effnet_status effnet_model_load(effnet_model **out, const char *path,
                                const effnet_load_options *options, effnet_error *err);

/* Save weights (timm names, f32, with effnet metadata) atomically: temp file, fsync,
 * rename. */
effnet_status effnet_model_save(effnet_model *model, const char *path);

void effnet_model_free(effnet_model *model);

/* Message of the last failure on this handle ("" if none). Valid until the next call. */
const char *effnet_model_error(const effnet_model *model);

const effnet_spec *effnet_model_spec(const effnet_model *model);

/* Name of the preprocessing preset that matches the weights' source (see
 * effnet_preprocess_preset): "torchvision" for torchvision files, "timm" for timm files, "tf"
 * for lukemelas-named B ports, "lite" for the Lite checkpoints, the recorded one for effnet's
 * own files. Never NULL. */
const char *effnet_model_preprocess(const effnet_model *model);

/* Worker threads for later calls (<= 0: all cores). */
effnet_status effnet_model_set_threads(effnet_model *model, int threads);

/* on != 0: run the naive reference kernels (the oracle) instead of the fast ones. */
effnet_status effnet_model_use_reference(effnet_model *model, int on);

/* Inference. input: (n, 3, h, w) float32, already normalised; logits: (n, num_classes).
 * Any n >= 1, any h, w >= 1 (square or not) up to the caps in the README. */
effnet_status effnet_model_forward(effnet_model *model, const float *input, int n, int h, int w,
                                   float *logits);

/* Per-op-kind timing of effnet_model_forward, accumulated while enabled. */
typedef enum effnet_op_kind {
  EFFNET_OP_LAYOUT = 0,   /* NCHW input -> NHWC */
  EFFNET_OP_STEM,         /* 3x3 stride-2 conv (im2col + GEMM) */
  EFFNET_OP_POINTWISE,    /* 1x1 expand / project / head convs (GEMM) + bias + activation */
  EFFNET_OP_DEPTHWISE,    /* depthwise conv + bias + activation (+ SE pooling sums) */
  EFFNET_OP_SE,           /* squeeze-excite gate and channel scaling */
  EFFNET_OP_ADD,          /* residual add */
  EFFNET_OP_POOL,         /* global average pool */
  EFFNET_OP_LINEAR,       /* classifier */
  EFFNET_OP_FUSED,        /* expand 1x1 + depthwise fused (early stages; multiply-adds of both) */
  EFFNET_OP_STEM_DW,      /* stem + the first block's depthwise conv fused (both's multiply-adds;
                           * profiled in the stem's part) */
  EFFNET_OP_KINDS
} effnet_op_kind;

/* Parts of the network a profile splits its times by: 0 the input layout and the stem, 1..7
 * the blocks of stages 1..7, 8 the head (1x1 conv, pooling, classifier). */
#define EFFNET_PROFILE_STAGES 9

typedef struct effnet_profile {
  double seconds[EFFNET_OP_KINDS];
  int64_t calls[EFFNET_OP_KINDS];
  int64_t macs[EFFNET_OP_KINDS]; /* multiply-adds done by each kind */
  double stage_seconds[EFFNET_PROFILE_STAGES][EFFNET_OP_KINDS]; /* seconds, split by part */
} effnet_profile;

/* on != 0 starts (and zeroes) profiling; the timing adds a clock read around each op. */
effnet_status effnet_model_set_profiling(effnet_model *model, int on);
/* Copies the accumulated profile. */
effnet_status effnet_model_profile(const effnet_model *model, effnet_profile *out);
const char *effnet_op_kind_name(effnet_op_kind kind);

/* Called during effnet_model_forward after the stem ("stem"), each stage ("stage1".."stage7")
 * and the head conv ("head"), with the activation in NHWC layout. The pointer is valid only
 * during the call, which runs with subnormal floats flushed to zero (x86 MXCSR FTZ and DAZ, set
 * for the forward pass and restored after it). fn NULL removes the hook. */
typedef void (*effnet_feature_fn)(void *user, const char *name, const float *nhwc, int n,
                                  int h, int w, int c);
void effnet_model_set_feature_hook(effnet_model *model, effnet_feature_fn fn, void *user);

/* ------------------------------------------------------------------ .npy tensors */

/* A float32 array for exchanging tensors with NumPy users (effnet run). */
#define EFFNET_TENSOR_MAX_DIMS 8
typedef struct effnet_tensor {
  int ndim;
  int64_t shape[EFFNET_TENSOR_MAX_DIMS];
  float *data; /* owned; release with effnet_tensor_free */
} effnet_tensor;

/* Read a C-order little-endian float32 (or float64, converted) .npy file. Anything else is
 * rejected with a message naming the file. */
effnet_status effnet_npy_read(const char *path, effnet_tensor *out, effnet_error *err);
/* Write t as float32 .npy, atomically (temp file, fsync, rename). */
effnet_status effnet_npy_write(const char *path, const effnet_tensor *t, effnet_error *err);
void effnet_tensor_free(effnet_tensor *t);

/* ------------------------------------------------------------------ BLAS, kernels */

/* Instruction set of effnet's own kernels in this process: "avx512", "avx2" (with FMA) or
 * "portable", chosen at run time from the CPU (EFFNET_ISA=avx2|portable forces a narrower one). */
const char *effnet_kernel_isa(void);

/* Instruction set of the dense kernels (the GEMM of 1x1 convolutions and classifiers, the
 * stem): effnet_kernel_isa()'s, except "avx2" on CPUs that run 512-bit instructions as two
 * halves (AMD Zen 4), where those kernels are faster (GEMMs of fewer than 64 rows, such as a
 * batch-1 classifier's, keep AVX-512's there); EFFNET_DENSE_ISA=avx512|avx2|portable forces
 * one for all of them, never wider than effnet_kernel_isa(). On those CPUs the GEMM's, the
 * stem's and the depthwise kernels' swish is AVX-512's, ending with a divide rather than a
 * reciprocal estimate (EFFNET_SWISH=divide|estimate forces either; the results differ in the
 * last bits only). */
const char *effnet_dense_kernel_isa(void);

/* The round trip of a cache line between two of effnet's (OpenMP) threads, in nanoseconds: the
 * median of 15 batches of 2000, a few milliseconds in all. It is what every hand-over of data
 * between the cores costs in a multi-threaded run, and it can change while a program runs: on a
 * 2-vCPU cloud VM (AMD Zen 4) it was 55-80 ns while the vCPUs sat on one die and 310-360 ns while
 * they sat on two, and B0 on two threads then took 1.6x as long. 0 where the process has one CPU
 * or its team one thread; the mean so far, or -1 with none, where a round trip stalled past one
 * second (the other thread descheduled). */
double effnet_thread_handoff_ns(void);

/* Name of the OpenBLAS kernel set in use ("SkylakeX", "Haswell", "Prescott", ...). */
const char *effnet_blas_core(void);
/* NULL when the kernels suit this CPU; otherwise the OPENBLAS_CORETYPE value that would be
 * faster (OpenBLAS 0.3.21 falls back to SSE3 kernels on CPUs newer than itself). OpenBLAS
 * reads that variable only when it loads, so it must be in the environment before the
 * program starts; effnet's CLI does this by re-executing itself. */
const char *effnet_blas_coretype_hint(void);

/* Name of ImageNet-1k class index (0..999) in the order every released EfficientNet
 * checkpoint uses; NULL outside that range. */
const char *effnet_imagenet_class(int index);
/* WordNet synset id of class index ("n01440764" for 0), as the ILSVRC2012 validation folders
 * are named; NULL outside 0..999. */
const char *effnet_imagenet_synset(int index);
/* Class index of a synset id, -1 if it is not one of the 1000. */
int effnet_imagenet_synset_index(const char *synset);

/* ------------------------------------------------------------------ images */

/* A decoded image: 8-bit RGB, interleaved, rows top to bottom. Pixels equal PIL's
 * Image.open(path).convert("RGB") (same libjpeg-turbo settings; gray, palette and alpha
 * converted as convert("RGB") does, alpha dropped without compositing; 16-bit samples keep
 * their high byte; no gamma/ICC correction), with two deliberate differences: the EXIF
 * orientation (JPEG APP1, PNG eXIf) is applied, as ImageOps.exif_transpose would, so photos
 * come out upright; and 16-bit grayscale PNGs keep the high byte where PIL clips to 255. */
typedef struct effnet_image {
  int width, height;
  unsigned char *rgb; /* width * height * 3 bytes; owned, release with effnet_image_free */
} effnet_image;

/* Caps for untrusted images, checked from the header before any pixel is decoded. */
#define EFFNET_IMAGE_MAX_PIXELS ((int64_t)1 << 28) /* 268 Mpx */
#define EFFNET_IMAGE_MAX_SIDE 65535

/* Decode a JPEG or PNG file (format from its signature, not its name). Errors name the file:
 * EFFNET_E_IO unreadable, EFFNET_E_FORMAT not an image / corrupt / truncated (like PIL, a
 * file cut before its last row is an error, a missing trailer after it is not),
 * EFFNET_E_LIMIT larger than the caps (refused from the header, before allocating),
 * EFFNET_E_UNSUPPORTED valid but unhandled (12-bit or 2-component JPEG), EFFNET_E_NOMEM.
 * On failure *out is empty. Never prints; no global state (thread-safe). */
effnet_status effnet_image_load(effnet_image *out, const char *path, effnet_error *err);
/* The same from memory; label names the source in messages. */
effnet_status effnet_image_decode(effnet_image *out, const void *data, size_t size,
                                  const char *label, effnet_error *err);
void effnet_image_free(effnet_image *image);

typedef enum effnet_interp {
  EFFNET_INTERP_BILINEAR = 0, /* PIL BILINEAR (antialiased when shrinking) */
  EFFNET_INTERP_BICUBIC = 1,  /* PIL BICUBIC, a = -0.5 (antialiased when shrinking) */
  EFFNET_INTERP_TF_BICUBIC = 2 /* TF1 resize_bicubic: a = -0.75, no antialias */
} effnet_interp;

/* How an image becomes the network's input tensor. Two geometries exist in the references:
 *  - resize-then-crop (torchvision, timm): shorter side to resize_shorter, centre crop
 *    crop_h x crop_w;
 *  - crop-then-resize (TF reference): centre square of crop_fraction * shorter side (TF: S /
 *    (S + 32)), then resize to crop_h x crop_w.
 * Then x = (pixel / 255 - mean) / std per channel (RGB). */
typedef struct effnet_preprocess {
  char name[32];       /* preset name, for reports */
  int crop_first;      /* 0: resize-then-crop, 1: crop-then-resize */
  int resize_shorter;  /* resize-then-crop only */
  double crop_fraction; /* crop-then-resize only */
  int crop_h, crop_w;
  effnet_interp interp;
  float mean[3], std[3];
} effnet_preprocess;

/* Presets: "torchvision" (its per-variant resize/crop table, bicubic, ImageNet mean/std),
 * "timm" (resize floor(S / crop_pct), crop S; crop_pct is timm's tf_efficientnet config
 * literal for tf_ models (S/(S+32) to three decimals: 0.904 for 300 gives 331, not 332),
 * 0.875 otherwise; bicubic), "tf" (the TF reference crop-then-resize), "lite" ((x - 127) /
 * 128 as the EfficientNet-Lite checkpoints expect, resize floor(S / 0.875) then crop S,
 * bicubic), "inception" (timm geometry, mean = std = 0.5, for timm's .ap_ weights). spec
 * chooses the size (its resolution) and variant-specific entries. */
effnet_status effnet_preprocess_preset(effnet_preprocess *out, const char *preset,
                                       const effnet_spec *spec, effnet_error *err);

/* Writes 3 * crop_h * crop_w floats (CHW) into out. Resize-then-crop follows torchvision
 * exactly, including its zero padding when the crop exceeds the resized image and Python's
 * round-half-even crop offsets; bit-identical to torchvision on a PIL image. Crop-then-resize
 * computes the crop side in float32 as TF does and keeps TF's unrounded float resize.
 * Only the cropped window of the resize is computed. EFFNET_E_ARGUMENT for an unusable p. */
effnet_status effnet_preprocess_image(const effnet_image *image, const effnet_preprocess *p,
                                      float *out, effnet_error *err);

/* ------------------------------------------------------------------ training */

/* Options of effnet_train. Start from effnet_train_defaults, then set what differs.
 * Numbers < 0 (or NULL strings) mean "the default", which is stated per field. */
typedef struct effnet_train_options {
  const char *data;        /* "fashion-mnist" (Debian's dataset-fashion-mnist), a folder of
                              IDX files, or an image folder: one subfolder per class, or
                              train/ + val/ each with class subfolders */
  const char *out_dir;     /* created if missing: checkpoint.safetensors, model.safetensors,
                              log.jsonl */
  const char *init;        /* weights to start from (NULL: random init from seed); the
                              classifier is replaced when its class count differs */
  int resume;              /* continue from out_dir/checkpoint.safetensors */
  int epochs;              /* default 10 */
  int64_t max_steps;       /* stop after this many steps in total (0: no cap): a step budget */
  int batch;               /* default 64 */
  int threads;             /* 0: all cores */
  int resolution;          /* input side; 0: the model's */
  const char *optimizer;   /* "rmsprop" (paper, TF semantics; default), "sgd", "nesterov",
                              "adamw" */
  double lr;               /* base learning rate; < 0: 0.016 * batch / 256 for rmsprop (the
                              paper's 0.256 at batch 4096), 0.1 * batch / 256 for sgd,
                              1e-3 for adamw */
  double weight_decay;     /* < 0: 1e-5 (paper) for rmsprop/sgd, 0.05 for adamw */
  const char *schedule;    /* "exp" (paper: x0.97 every 2.4 epochs; default), "cosine",
                              "constant" */
  double warmup_epochs;    /* < 0: 5 for exp with >= 30 epochs, otherwise 1, at most a tenth
                              of the run (epochs, or max_steps when that ends it first) */
  double label_smoothing;  /* < 0: 0.1 */
  double dropout;          /* < 0: the variant's (0.2 for B0) */
  double drop_path;        /* < 0: the variant's (0.2) */
  double bn_momentum;      /* PyTorch convention; < 0: 0.1 (TF's decay 0.99 is 0.01) */
  double ema_decay;        /* 0: no EMA; < 0: 1 - 10 / total steps (horizon a tenth of the
                              run), capped at 0.9998 (timm; TF: 0.9999); eval uses the EMA */
  const char *augment;     /* "auto" (pad-crop+flip for 28x28 IDX, random-resized-crop+flip
                              for folders), "rrc", "crop", "none" */
  double min_scale;        /* random-resized-crop area floor; < 0: 0.08 (folders), 0.35 (IDX) */
  double val_fraction;     /* image folder without val/: held-out part; < 0: 0.1 */
  uint64_t seed;           /* everything random follows from it; default 1 */
  int64_t checkpoint_every; /* steps between checkpoints; 0: at the end of each epoch only */
  int num_classes;         /* 0: from the data; otherwise must equal the data's */
  int64_t eval_limit;      /* evaluate on the first N test images only (0: all of them) */
} effnet_train_options;

void effnet_train_defaults(effnet_train_options *o);

/* What the progress callback sees, after every step and after each evaluation. */
typedef struct effnet_train_progress {
  int epoch, epochs;            /* 1-based */
  int64_t step_in_epoch, steps_per_epoch;
  int64_t global_step;
  double loss;                  /* mean over this epoch's steps so far */
  double img_per_s;             /* this epoch so far */
  double eta_s;                 /* rest of this epoch */
  double lr;
  int evaluating;               /* 1 while the test split runs */
} effnet_train_progress;

/* One line of out_dir/log.jsonl. */
typedef struct effnet_epoch_result {
  int epoch;
  double train_loss, test_loss, test_acc, test_top5; /* accuracies in [0, 1] */
  double img_per_s, seconds, lr;
  int64_t global_step;
} effnet_epoch_result;

typedef struct effnet_train_callbacks {
  void (*progress)(void *user, const effnet_train_progress *p); /* may be NULL */
  void (*epoch)(void *user, const effnet_epoch_result *r);      /* may be NULL */
  void (*note)(void *user, const char *message); /* warnings: skipped images, replaced
                                                     classifier, resumed position */
  void *user;
} effnet_train_callbacks;

/* Train `spec` (ignored with options->init or resume, whose file decides the model; spec may
 * then be NULL). Checkpoints (weights + optimizer + EMA + data position + loss sums) are
 * written atomically (temp file, fsync, rename), so a run killed at any moment resumes from
 * the last one and continues with the same losses as an uninterrupted run (same threads).
 * A non-finite loss stops with EFFNET_E_NUMERIC before its update is applied; the last
 * checkpoint stays. result (may be NULL) receives the last epoch's line. */
effnet_status effnet_train(const effnet_spec *spec, const effnet_train_options *options,
                           const effnet_train_callbacks *callbacks, effnet_epoch_result *result,
                           effnet_error *err);

/* The number of classes of a DATA argument (as effnet_train reads it). */
effnet_status effnet_data_classes(const char *data, int *classes, effnet_error *err);

/* Top-1/top-5 of weights on a dataset (the same DATA forms as training: the test split of
 * IDX data, the validation part of an image folder). */
effnet_status effnet_evaluate(effnet_model *model, const char *data, int batch, int resolution,
                              double val_fraction, effnet_epoch_result *result,
                              effnet_error *err);

/* ------------------------------------------------------------------ compound scaling */

/* A member of a scaled family: base scaled by depth alpha^phi, width beta^phi, resolution
 * gamma^phi (paper eq. 3), with the real channel and repeat rounding, and its real cost. */
typedef struct effnet_candidate {
  double alpha, beta, gamma, phi;
  effnet_spec spec;  /* width = base.width * beta^phi, depth = base.depth * alpha^phi,
                        resolution = round(base.resolution * gamma^phi) */
  int64_t params, macs; /* at spec.resolution, after rounding */
  double nominal;       /* (alpha * beta^2 * gamma^2)^phi: the paper's FLOPs factor */
  double flops_ratio;   /* macs / the base's macs: the real factor */
} effnet_candidate;

effnet_status effnet_scale_member(const effnet_spec *base, double alpha, double beta,
                                  double gamma, double phi, effnet_candidate *out,
                                  effnet_error *err);

/* Step 1's grid: alpha, beta, gamma from 1 to their max in `step` increments (inclusive),
 * kept when the constraint holds: |value / target - 1| <= tolerance, where value is
 * alpha * beta^2 * gamma^2 (nominal) or the real MACs ratio at phi = 1 (real_flops). */
typedef struct effnet_grid {
  double alpha_max, beta_max, gamma_max; /* e.g. 1.4, 1.4, 1.4 */
  double step;                           /* e.g. 0.05 */
  double target;                         /* 2 */
  double tolerance;                      /* e.g. 0.05 */
  int real_flops;
} effnet_grid;

/* Candidates meeting the constraint, ordered by alpha, then beta, then gamma. An empty result
 * is EFFNET_E_ARGUMENT with a message that says how far the closest point was. *out is
 * malloc'ed (free with free()). At most 100000 grid points are examined. */
effnet_status effnet_scale_grid(const effnet_spec *base, const effnet_grid *grid,
                                effnet_candidate **out, size_t *count, effnet_error *err);

#ifdef __cplusplus
}
#endif
#endif
