/* Hugging Face hub folders hold model.safetensors beside a config.json whose "architecture"
 * (timm) names the model, e.g. "tf_efficientnet_b0": the only place that tells a timm TF port
 * (SAME padding, eps 1e-3) from a PyTorch-trained model with the same tensor names. */
#ifndef EN_HFCONFIG_H
#define EN_HFCONFIG_H

#include <stddef.h>

/* Reads config.json in the directory of weights_path. Returns 1 and copies the architecture
 * name into buf when present and readable; 0 otherwise (no config is not an error). */
int en_hfconfig_architecture(const char *weights_path, char *buf, size_t size);

#endif
