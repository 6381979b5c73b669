/* libFuzzer target: s1_model_config_parse on arbitrary bytes must either
 * give a consistent config or fail cleanly. */
#include <stddef.h>
#include <stdint.h>

#include "model_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s1_model_config c;
    s1_err err;
    if (s1_model_config_parse((const char *)data, size, "fuzz/config.json", &c, &err) < 0) return 0;
    /* What the loader relies on once the parse succeeded. */
    if (c.head_dim * c.n_heads != c.hidden_size || c.n_heads % c.n_kv_heads || c.head_dim % 2 ||
        c.vocab_size <= 0 || c.intermediate_size <= 0 || c.n_layers <= 0 || !(c.rms_norm_eps > 0))
        __builtin_trap();
    return 0;
}
