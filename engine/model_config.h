/* engine/model_config.h — config.json of a Hugging Face Qwen2 model, parsed
 * and validated into an s1_model_config. Internal to the model loader; works
 * on a string so it can be fuzzed. */
#ifndef S1_MODEL_CONFIG_H
#define S1_MODEL_CONFIG_H

#include <stddef.h>

#include "err.h"
#include "model.h"

/* Parses len bytes of JSON (path names the file in errors). Fails on a
 * missing key, a wrong type, an inconsistent shape or an unsupported option,
 * naming the key. */
int s1_model_config_parse(const char *json, size_t len, const char *path, s1_model_config *cfg,
                          s1_err *err);

#endif
