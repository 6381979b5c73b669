#include "shared.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

const char *s1test_shared(const char *rel, const char *skipped)
{
    static char path[4096];
    const char *root = getenv("S1_SHARED");
    snprintf(path, sizeof path, "%s/%s", root ? root : "(S1_SHARED unset)", rel);
    if (root && access(path, R_OK) == 0) return path;
    printf("# %s is missing: %s skipped\n", path, skipped);
    return NULL;
}
