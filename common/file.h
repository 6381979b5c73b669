/* common/file.h — reading whole files with errors that say what is wrong:
 * missing, a directory, unreadable, empty, too large. */
#ifndef S1_FILE_H
#define S1_FILE_H

#include <stddef.h>

#include "err.h"

/* Reads path (or stdin when path is "-") into a NUL-terminated buffer owned by
 * the caller. Fails when the file is larger than max_bytes. *len excludes the
 * terminating NUL. */
int s1_read_file(const char *path, size_t max_bytes, char **out, size_t *len, s1_err *err);

#endif
