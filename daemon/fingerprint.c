#include "fingerprint.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

/* A safetensors header is a few MB for the largest sharded models; more is
 * not a header. */
#define MAX_HEADER_BYTES ((uint64_t)256 << 20)

/* Adds a length-prefixed field, so the fields' boundaries are part of the
 * hash ("ab" + "c" differs from "a" + "bc"). */
static int add_field(EVP_MD_CTX *h, const void *p, uint64_t n)
{
    return EVP_DigestUpdate(h, &n, sizeof n) && EVP_DigestUpdate(h, p, (size_t)n) ? 0 : -1;
}

/* Adds the first n bytes of path (all of it when n is UINT64_MAX). */
static int add_bytes(EVP_MD_CTX *h, const char *path, FILE *f, uint64_t n, s1_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    if (n == UINT64_MAX) {
        struct stat st;
        if (fstat(fileno(f), &st) < 0) return s1_errf(err, "%s: %s", path, strerror(errno));
        n = (uint64_t)st.st_size;
    }
    if (n > MAX_HEADER_BYTES)
        return s1_errf(err, "%s: %llu bytes to read for the fingerprint, more than a header", path,
                       (unsigned long long)n);
    if (n && !(buf = malloc((size_t)n))) return s1_errf(err, "%s: out of memory", path);
    len = n ? fread(buf, 1, (size_t)n, f) : 0;
    int rc = len == n ? add_field(h, buf, n) : -1;
    free(buf);
    if (len != n)
        return s1_errf(err, "%s: ends after %zu bytes, before the %llu the header says", path, len,
                       (unsigned long long)n);
    return rc < 0 ? s1_errf(err, "%s: hashing failed", path) : 0;
}

/* config.json whole. */
static int add_config(EVP_MD_CTX *h, const char *dir, s1_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return s1_errf(err, "%s: %s", path, strerror(errno));
    int rc = add_bytes(h, path, f, UINT64_MAX, err);
    fclose(f);
    return rc;
}

/* One shard: its name, its size and its header (the 8-byte little-endian
 * length, then that many bytes of JSON). */
static int add_shard(EVP_MD_CTX *h, const char *dir, const char *name, s1_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return s1_errf(err, "%s: %s", path, strerror(errno));
    struct stat st;
    unsigned char len8[8];
    int rc = fstat(fileno(f), &st) < 0 ? s1_errf(err, "%s: %s", path, strerror(errno)) : 0;
    if (!rc && fread(len8, 1, 8, f) != 8)
        rc = s1_errf(err, "%s: shorter than a safetensors header", path);
    uint64_t n = 0, size = (uint64_t)st.st_size;
    for (int i = 7; !rc && i >= 0; i--)
        n = n << 8 | len8[i];
    if (!rc && (add_field(h, name, strlen(name)) || add_field(h, &size, sizeof size)))
        rc = s1_errf(err, "%s: hashing failed", path);
    if (!rc) rc = add_bytes(h, path, f, n, err);
    fclose(f);
    return rc;
}

static int is_shard(const struct dirent *e)
{
    size_t n = strlen(e->d_name), ext = strlen(".safetensors");
    return n > ext && !strcmp(e->d_name + n - ext, ".safetensors");
}

/* Every shard, in name order, so the listing order of the directory does not
 * change the fingerprint. */
static int add_shards(EVP_MD_CTX *h, const char *dir, s1_err *err)
{
    struct dirent **names;
    int n = scandir(dir, &names, is_shard, alphasort);
    if (n < 0) return s1_errf(err, "%s: %s", dir, strerror(errno));
    int rc = n ? 0 : s1_errf(err, "%s: no *.safetensors file", dir);
    for (int i = 0; i < n; i++) {
        if (!rc) rc = add_shard(h, dir, names[i]->d_name, err);
        free(names[i]);
    }
    free(names);
    return rc;
}

int s1d_fingerprint(const char *dir, char out[S1D_FINGERPRINT_LEN], s1_err *err)
{
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    unsigned char digest[32];
    unsigned int len = 0;
    if (!h || !EVP_DigestInit_ex(h, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(h);
        return s1_errf(err, "%s: SHA-256 is not available", dir);
    }
    int rc = add_config(h, dir, err);
    if (!rc) rc = add_shards(h, dir, err);
    if (!rc && (!EVP_DigestFinal_ex(h, digest, &len) || len != sizeof digest))
        rc = s1_errf(err, "%s: hashing failed", dir);
    EVP_MD_CTX_free(h);
    if (rc) return rc;
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", digest[i]);
    return 0;
}
