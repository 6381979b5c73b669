/* libFuzzer target: s1_st_parse_header on arbitrary file contents must
 * either parse (with every range inside the buffer) or fail cleanly. */
#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s1_st_header h;
    s1_err err;
    if (s1_st_parse_header(data, size, "fuzz.safetensors", &h, &err) < 0) return 0;
    /* Touch the first and last byte of each tensor so ASan checks the ranges. */
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < h.n; i++) {
        const s1_st_tensor *t = &h.tensors[i];
        if (t->end > t->begin)
            sink ^= data[h.data_start + t->begin] ^ data[h.data_start + t->end - 1];
        if (s1_st_find(&h, t->name) != t) __builtin_trap();
    }
    (void)sink;
    s1_st_header_free(&h);
    return 0;
}
