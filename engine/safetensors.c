#include "safetensors.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

static int dtype_from_name(const char *s, s1_dtype *out)
{
    if (!strcmp(s, "BF16"))
        *out = S1_DTYPE_BF16;
    else if (!strcmp(s, "F16"))
        *out = S1_DTYPE_F16;
    else if (!strcmp(s, "F32"))
        *out = S1_DTYPE_F32;
    else
        return -1;
    return 0;
}

/* Reads a JSON integer that must be >= 0 into *out. */
static int get_u64(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* Shape and dtype: fills t->shape and returns in *bytes what they occupy,
 * failing on overflow so a crafted shape cannot wrap the size check. */
static int parse_shape(const json_t *shape, const char *path, s1_st_tensor *t, uint64_t *bytes,
                       s1_err *err)
{
    if (!json_is_array(shape))
        return s1_errf(err, "%s: tensor %s: shape is not an array", path, t->name);
    if (json_array_size(shape) > S1_ST_MAX_DIMS)
        return s1_errf(err, "%s: tensor %s: %zu dimensions, more than %d", path, t->name,
                       json_array_size(shape), S1_ST_MAX_DIMS);
    t->ndim = (int)json_array_size(shape);
    uint64_t n = s1_dtype_size(t->dtype);
    for (int i = 0; i < t->ndim; i++) {
        uint64_t d;
        if (get_u64(json_array_get(shape, (size_t)i), &d) < 0 || d > INT64_MAX)
            return s1_errf(err, "%s: tensor %s: shape[%d] is not a non-negative integer", path,
                           t->name, i);
        if (__builtin_mul_overflow(n, d, &n))
            return s1_errf(err, "%s: tensor %s: shape is too large", path, t->name);
        t->shape[i] = (int64_t)d;
    }
    *bytes = n;
    return 0;
}

static int parse_offsets(const json_t *offs, const char *path, s1_st_tensor *t, s1_err *err)
{
    if (!json_is_array(offs) || json_array_size(offs) != 2 ||
        get_u64(json_array_get(offs, 0), &t->begin) < 0 ||
        get_u64(json_array_get(offs, 1), &t->end) < 0)
        return s1_errf(err, "%s: tensor %s: data_offsets is not [begin, end] with integers >= 0",
                       path, t->name);
    if (t->begin > t->end)
        return s1_errf(
            err, "%s: tensor %s: data_offsets [%" PRIu64 ", %" PRIu64 "] end before they begin",
            path, t->name, t->begin, t->end);
    return 0;
}

/* One header entry {dtype, shape, data_offsets}, checked against the
 * data_len bytes of data that follow the header. */
static int parse_entry(const json_t *v, const char *path, uint64_t data_start, uint64_t data_len,
                       s1_st_tensor *t, s1_err *err)
{
    if (!json_is_object(v))
        return s1_errf(err, "%s: tensor %s: entry is not an object", path, t->name);
    const char *dt = json_string_value(json_object_get(v, "dtype"));
    if (!dt) return s1_errf(err, "%s: tensor %s: dtype is missing or not a string", path, t->name);
    if (dtype_from_name(dt, &t->dtype) < 0)
        return s1_errf(err, "%s: tensor %s has dtype %.32s; s1d reads BF16, F16 and F32 weights",
                       path, t->name, dt);
    uint64_t bytes = 0;
    if (parse_shape(json_object_get(v, "shape"), path, t, &bytes, err) < 0) return -1;
    if (parse_offsets(json_object_get(v, "data_offsets"), path, t, err) < 0) return -1;
    if (t->end > data_len)
        return s1_errf(err,
                       "%s: tensor %s: data ends at byte %" PRIu64
                       " of the data, past its end (%" PRIu64 " bytes); the file is truncated",
                       path, t->name, t->end, data_len);
    if (t->end - t->begin != bytes) {
        char shape[128];
        s1_st_shape_str(t, shape, sizeof shape);
        return s1_errf(
            err, "%s: tensor %s: data_offsets span %" PRIu64 " bytes but %s %s needs %" PRIu64,
            path, t->name, t->end - t->begin, s1_dtype_name(t->dtype), shape, bytes);
    }
    /* Tensors are used in place, so each element must be aligned in the mmap. */
    if ((data_start + t->begin) % s1_dtype_size(t->dtype))
        return s1_errf(
            err,
            "%s: tensor %s starts at file byte %" PRIu64
            ", not a multiple of its element size; re-save the file with the safetensors library",
            path, t->name, data_start + t->begin);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const s1_st_tensor *)a)->name, ((const s1_st_tensor *)b)->name);
}

static int by_begin(const void *a, const void *b)
{
    const s1_st_tensor *x = *(const s1_st_tensor *const *)a, *y = *(const s1_st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* Two tensors sharing bytes would alias each other's weights. */
static int check_overlaps(const s1_st_header *h, const char *path, s1_err *err)
{
    _cleanup_free_ const s1_st_tensor **order = malloc((h->n ? h->n : 1) * sizeof *order);
    if (!order) return s1_errf(err, "%s: out of memory", path);
    size_t m = 0;
    for (size_t i = 0; i < h->n; i++)
        if (h->tensors[i].end > h->tensors[i].begin) order[m++] = &h->tensors[i];
    qsort(order, m, sizeof *order, by_begin);
    for (size_t i = 1; i < m; i++)
        if (order[i]->begin < order[i - 1]->end)
            return s1_errf(err,
                           "%s: tensors %s and %s overlap (bytes %" PRIu64 "-%" PRIu64
                           " and %" PRIu64 "-%" PRIu64 ")",
                           path, order[i - 1]->name, order[i]->name, order[i - 1]->begin,
                           order[i - 1]->end, order[i]->begin, order[i]->end);
    return 0;
}

static int parse_entries(const json_t *root, const char *path, uint64_t data_start,
                         uint64_t data_len, s1_st_header *h, s1_err *err)
{
    h->tensors = calloc(json_object_size(root) + 1, sizeof *h->tensors);
    if (!h->tensors) return s1_errf(err, "%s: out of memory", path);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)root, key, v)
    {
        if (!strcmp(key, "__metadata__")) {
            if (!json_is_object(v)) return s1_errf(err, "%s: __metadata__ is not an object", path);
            continue;
        }
        s1_st_tensor *t = &h->tensors[h->n];
        t->name = strdup(key);
        if (!t->name) return s1_errf(err, "%s: out of memory", path);
        h->n++;
        if (parse_entry(v, path, data_start, data_len, t, err) < 0) return -1;
    }
    qsort(h->tensors, h->n, sizeof *h->tensors, by_name);
    return check_overlaps(h, path, err);
}

int s1_st_parse_header(const uint8_t *buf, size_t len, const char *path, s1_st_header *out,
                       s1_err *err)
{
    *out = (s1_st_header){0};
    if (len < 8)
        return s1_errf(err, "%s: %zu bytes, too short for a safetensors file; it is truncated",
                       path, len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | buf[i];
    if (hlen > S1_ST_MAX_HEADER)
        return s1_errf(err,
                       "%s: header length %" PRIu64
                       " exceeds the limit of %u bytes; not a safetensors file?",
                       path, hlen, S1_ST_MAX_HEADER);
    if (hlen > len - 8)
        return s1_errf(err,
                       "%s: header length %" PRIu64
                       " runs past the end of the file (%zu bytes); it is truncated",
                       path, hlen, len);
    json_error_t jerr;
    json_auto_t *root = json_loadb((const char *)buf + 8, hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return s1_errf(err, "%s: header is not valid JSON: %s (header byte %d)", path, jerr.text,
                       jerr.position);
    if (!json_is_object(root)) return s1_errf(err, "%s: header is not a JSON object", path);
    out->data_start = 8 + hlen;
    if (parse_entries(root, path, out->data_start, len - out->data_start, out, err) < 0) {
        s1_st_header_free(out);
        return -1;
    }
    return 0;
}

void s1_st_header_free(s1_st_header *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->tensors[i].name);
    free(h->tensors);
    *h = (s1_st_header){0};
}

const s1_st_tensor *s1_st_find(const s1_st_header *h, const char *name)
{
    if (!h->n) return NULL;
    s1_st_tensor key = {.name = (char *)name};
    return bsearch(&key, h->tensors, h->n, sizeof *h->tensors, by_name);
}

void s1_st_shape_str(const s1_st_tensor *t, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < t->ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64, i ? ", " : "", t->shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}
