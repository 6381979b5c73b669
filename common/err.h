/* common/err.h — an error a user can act on: one line that names the thing
 * (file, key, job id) and, where there is one, the fix. Library code fills an
 * s1_err and returns -1 or NULL; only main() prints it and exits. */
#ifndef S1_ERR_H
#define S1_ERR_H

#include <stddef.h>

typedef struct {
    char msg[512];
} s1_err;

/* Formats the message into err (when err is not NULL) and returns -1, so a
 * failing function can end with `return s1_errf(err, ...)`. */
__attribute__((format(printf, 2, 3))) int s1_errf(s1_err *err, const char *fmt, ...);

/* Prepends "prefix: " to an existing message, to add context on the way up. */
__attribute__((format(printf, 2, 3))) int s1_err_prefix(s1_err *err, const char *fmt, ...);

#endif
