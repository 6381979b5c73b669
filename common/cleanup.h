/* common/cleanup.h — scope-bound release of resources, so every return path
 * frees what the function opened (the attribute is supported by gcc and clang). */
#ifndef S1_CLEANUP_H
#define S1_CLEANUP_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void s1_freep(void *p)
{
    free(*(void **)p);
}
static inline void s1_fclosep(FILE **f)
{
    if (*f) fclose(*f);
}
static inline void s1_closep(int *fd)
{
    if (*fd >= 0) close(*fd);
}

#define _cleanup_free_   _cleanup_(s1_freep)
#define _cleanup_fclose_ _cleanup_(s1_fclosep)
#define _cleanup_close_  _cleanup_(s1_closep)

/* Hands ownership out of a _cleanup_ variable: returns it and clears it. */
#define S1_TAKE_PTR(p)                                                                             \
    ({                                                                                             \
        __typeof__(p) take_tmp_ = (p);                                                             \
        (p) = NULL;                                                                                \
        take_tmp_;                                                                                 \
    })

#endif
