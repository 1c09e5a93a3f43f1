/* effnet: command-line front end. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
  fprintf(f,
          "effnet %d.%d.%d: the EfficientNet family in C\n"
          "usage:\n"
          "  effnet classify IMAGE|DIR... [--weights FILE] [--model NAME] [--top K] [--json]\n"
          "                  [--preprocess torchvision|timm|tf|lite|inception] [--size S]\n"
          "                  [--batch N] [--threads T]\n"
          "  effnet eval DIR [--labels FILE] [--weights FILE] [--batch N] (top-1/top-5)\n"
          "  effnet info MODEL [--json] [--size HxW] [--resolution R] [--classes N]\n"
          "  effnet info --phi P [--alpha A --beta B --gamma G] [--json]\n"
          "  effnet info --width W --depth D [--resolution R] [--lite] [--json]\n"
          "  effnet run --weights FILE --input X.npy --output Y.npy [--model NAME]\n"
          "             [--threads T] [--padding same|symmetric] [--bn-eps E]\n"
          "             [--dump-stages DIR] [--reference]\n"
          "  effnet convert IN OUT.safetensors [--model NAME] [--padding same|symmetric]\n"
          "  effnet bench MODEL|--weights FILE [--batch N] [--threads T] [--runs R] [--warmup W]\n"
          "               [--size HxW|S] [--profile] [--json] (median/min latency, last line)\n"
          "  effnet train --data fashion-mnist|DIR --out DIR (MODEL | --init W | --resume)\n"
          "               [--epochs E] [--batch B] [--optimizer O] [--lr LR] ... (train --help)\n"
          "  effnet search --data DATA --out DIR BASE [--mode compound,width,depth,resolution,\n"
          "               width-dr] [--grid ...] [--epochs E|--steps S] [--seeds N] [--workers W]\n"
          "  effnet scale --alpha A --beta B --gamma G [--phi 1..7] [BASE] | --from results.csv\n"
          "MODEL: b0..b8, l2, lite0..lite4 (optionally prefixed efficientnet_ or\n"
          "tf_efficientnet_ for TF ports, which use TF 'SAME' padding and BN eps 1e-3).\n",
          EFFNET_VERSION_MAJOR, EFFNET_VERSION_MINOR, EFFNET_VERSION_PATCH);
}

/* OpenBLAS picks its kernels when it loads, from OPENBLAS_CORETYPE only; on CPUs it does not
 * recognise it falls back to SSE3 kernels 3-4x slower (src/kernels/blas.c). Restart once with
 * the variable set. EFFNET_NO_REEXEC=1 disables this; a user's own setting is kept. */
static void select_blas_kernels(char **argv) {
  const char *hint = effnet_blas_coretype_hint();
  if (!hint || getenv("OPENBLAS_CORETYPE") || getenv("EFFNET_NO_REEXEC")) return;
  setenv("OPENBLAS_CORETYPE", hint, 1);
  setenv("EFFNET_NO_REEXEC", "1", 1); /* never loop, whatever OpenBLAS then does */
  execv("/proc/self/exe", argv);
  unsetenv("OPENBLAS_CORETYPE"); /* exec failed: carry on with the kernels we have */
}

int main(int argc, char **argv) {
  select_blas_kernels(argv);
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "info")) return cli_info(argc - 2, argv + 2);
  if (!strcmp(cmd, "run")) return cli_run(argc - 2, argv + 2);
  if (!strcmp(cmd, "convert")) return cli_convert(argc - 2, argv + 2);
  if (!strcmp(cmd, "classify")) return cli_classify(argc - 2, argv + 2);
  if (!strcmp(cmd, "eval")) return cli_eval(argc - 2, argv + 2);
  if (!strcmp(cmd, "bench")) return cli_bench(argc - 2, argv + 2);
  if (!strcmp(cmd, "train")) return cli_train(argc - 2, argv + 2);
  if (!strcmp(cmd, "search")) return cli_search(argc - 2, argv + 2);
  if (!strcmp(cmd, "scale")) return cli_scale(argc - 2, argv + 2);
  if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
    printf("effnet %d.%d.%d\n", EFFNET_VERSION_MAJOR, EFFNET_VERSION_MINOR, EFFNET_VERSION_PATCH);
    return 0;
  }
  fprintf(stderr, "effnet: unknown command '%s' (try 'effnet help')\n", cmd);
  return 2;
}
