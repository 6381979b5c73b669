/* engine/safetensors.h — the header of a safetensors file, parsed from the
 * file's bytes and checked before any tensor is touched: dtypes, shapes that
 * agree with the byte ranges, ranges inside the file and not overlapping.
 * Internal to the model loader; works on a memory buffer so it can be fuzzed. */
#ifndef S1_SAFETENSORS_H
#define S1_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "model.h"

#define S1_ST_MAX_DIMS   8
#define S1_ST_MAX_HEADER (100u << 20)

typedef struct {
    char *name; /* owned by the s1_st_header */
    s1_dtype dtype;
    int ndim;
    int64_t shape[S1_ST_MAX_DIMS];
    uint64_t begin, end; /* byte range, from the start of the data */
} s1_st_tensor;

typedef struct {
    s1_st_tensor *tensors; /* sorted by name; owned */
    size_t n;
    uint64_t data_start; /* 8 + header length: where offsets count from */
} s1_st_header;

/* Parses the header of the file whose len bytes are at buf (path names it in
 * errors). On success the tensors' ranges are known to lie within buf. */
int s1_st_parse_header(const uint8_t *buf, size_t len, const char *path, s1_st_header *out,
                       s1_err *err);
void s1_st_header_free(s1_st_header *h);

/* The tensor called name, or NULL. */
const s1_st_tensor *s1_st_find(const s1_st_header *h, const char *name);

/* Writes t's shape as "[a, b]" for messages. */
void s1_st_shape_str(const s1_st_tensor *t, char *buf, size_t cap);

#endif
