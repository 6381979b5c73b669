#include <stdio.h>

#include "commands.h"

int s1ctl_tokenize(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "s1ctl: tokenize is not built yet\n");
    return S1CTL_EXIT_FAILED;
}
