/* daemon/fingerprint.h — the identity of a model directory, cheap to compute
 * at load: SHA-256 over config.json, and the name, size and header of every
 * *.safetensors file (the header lists each tensor's name, dtype, shape and
 * offsets, so a retrained or converted model differs; the weights themselves
 * are not read). Results and the workers' rows record it, so reports can
 * tell which exact files a number came from. */
#ifndef S1D_FINGERPRINT_H
#define S1D_FINGERPRINT_H

#include "err.h"

/* "sha256:" and 64 hex digits, and the NUL. */
enum { S1D_FINGERPRINT_LEN = 7 + 64 + 1 };

/* Fills out with the fingerprint of the model in dir: 0, or -1 with err
 * naming the file that cannot be read (or whose header is cut short). */
int s1d_fingerprint(const char *dir, char out[S1D_FINGERPRINT_LEN], s1_err *err);

#endif
