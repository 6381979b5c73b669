#include "file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"

static int read_stream(FILE *f, const char *name, size_t max_bytes, char **out, size_t *len,
                       s1_err *err)
{
    size_t cap = 4096, n = 0;
    _cleanup_free_ char *buf = malloc(cap + 1);
    if (!buf) return s1_errf(err, "%s: out of memory", name);
    for (;;) {
        if (n == cap) {
            if (cap > max_bytes) break;
            cap *= 2;
            char *grown = realloc(buf, cap + 1);
            if (!grown) return s1_errf(err, "%s: out of memory", name);
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) return s1_errf(err, "%s: read error: %s", name, strerror(errno));
    if (n > max_bytes)
        return s1_errf(err, "%s: larger than the limit of %zu bytes", name, max_bytes);
    buf[n] = '\0';
    *out = S1_TAKE_PTR(buf);
    *len = n;
    return 0;
}

int s1_read_file(const char *path, size_t max_bytes, char **out, size_t *len, s1_err *err)
{
    if (!strcmp(path, "-")) return read_stream(stdin, "<stdin>", max_bytes, out, len, err);

    struct stat st;
    if (stat(path, &st) < 0) return s1_errf(err, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return s1_errf(err, "%s: is a directory, expected a file", path);
    if (S_ISREG(st.st_mode) && (size_t)st.st_size > max_bytes)
        return s1_errf(err, "%s: %lld bytes, larger than the limit of %zu bytes", path,
                       (long long)st.st_size, max_bytes);
    _cleanup_fclose_ FILE *f = fopen(path, "rb");
    if (!f) return s1_errf(err, "%s: %s", path, strerror(errno));
    return read_stream(f, path, max_bytes, out, len, err);
}
