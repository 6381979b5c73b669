#include "place.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "kernels.h"

#define LINE 64

static size_t row_bytes(const s1_tensor *t)
{
    return (size_t)t->cols * s1_dtype_size(t->dtype);
}

/* A row's bytes rounded up to a cache line. */
static size_t padded_row(const s1_tensor *t)
{
    return (row_bytes(t) + LINE - 1) / LINE * LINE;
}

size_t s1_cpu_placed_bytes(const s1_tensor *t)
{
    return (size_t)t->rows * padded_row(t);
}

s1_tensor s1_cpu_place(const s1_tensor *t, void *dst)
{
    size_t stride = padded_row(t), n = row_bytes(t);
    char *out = dst;
    for (int64_t r = 0; r < t->rows; r++) {
        memcpy(out + (size_t)r * stride, s1_tensor_row(t, r), n);
        memset(out + (size_t)r * stride + n, 0, stride - n);
    }
    s1_tensor v = *t;
    v.data = dst;
    v.row_stride = (int64_t)(stride / s1_dtype_size(t->dtype));
    return v;
}

/* Anonymous mappings, not malloc: they come back to the OS at free, and
 * madvise applies to them whole. */
void *s1_cpu_place_alloc(size_t n, s1_err *err)
{
    if (!n) n = 1;
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        s1_errf(err,
                "cpu: no memory for a copy of the weights (%.0f MiB): %s; free memory or serve a "
                "smaller model",
                (double)n / (1 << 20), strerror(errno));
        return NULL;
    }
    (void)madvise(p, n, MADV_HUGEPAGE);
    return p;
}

void s1_cpu_place_free(void *p, size_t n)
{
    if (p) munmap(p, n ? n : 1);
}
