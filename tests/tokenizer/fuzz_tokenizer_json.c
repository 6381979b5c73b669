/* tests/tokenizer/fuzz_tokenizer_json.c — libFuzzer: arbitrary bytes as a
 * tokenizer.json must load or fail with a message, never crash; what loads
 * must encode and decode a short text. The bytes reach the loader through a
 * memfd, so nothing touches the disk. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cleanup.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const s1_tokenizer *t)
{
    static const char text[] = "Hello <|im_end|> caf\xc3\xa9 123  \n\t\xf0\x9f\x98\x80 it's";
    s1_err err;
    for (int special = 0; special < 2; special++) {
        _cleanup_free_ int32_t *ids = NULL;
        _cleanup_free_ char *back = NULL;
        size_t n, len;
        if (s1_tokenizer_encode(t, text, sizeof text - 1, special, &ids, &n, &err) == 0)
            s1_tokenizer_decode(t, ids, n, &back, &len, &err);
    }
    s1_tokenizer_token_id(t, "<|im_start|>");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    _cleanup_close_ int fd = memfd_create("tokenizer.json", 0);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) return 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    s1_err err;
    s1_tokenizer *t = s1_tokenizer_load(path, &err);
    if (t) exercise(t);
    s1_tokenizer_free(t);
    return 0;
}
