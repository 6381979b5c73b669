#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int log_level = -1;
static int log_prefix = -1;
static const char *log_ident = "s1d";

static int level_from_env(void)
{
    const char *v = getenv("S1_LOG_LEVEL");
    if (!v) return S1_LOG_INFO;
    if (!strcmp(v, "debug")) return S1_LOG_DEBUG;
    if (!strcmp(v, "notice")) return S1_LOG_NOTICE;
    if (!strcmp(v, "warning")) return S1_LOG_WARNING;
    if (!strcmp(v, "error")) return S1_LOG_ERR;
    return S1_LOG_INFO;
}

void s1_log_set_level(int level)
{
    log_level = level;
}

void s1_log_set_prefix(int on)
{
    log_prefix = on;
}

void s1_log_set_ident(const char *ident)
{
    log_ident = ident;
}

void s1_log(int level, const char *fmt, ...)
{
    if (log_level < 0) log_level = level_from_env();
    if (level > log_level) return;
    if (log_prefix < 0) log_prefix = getenv("JOURNAL_STREAM") != NULL;

    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One fprintf per line keeps lines whole when several threads log. */
    if (log_prefix)
        fprintf(stderr, "<%d>%s\n", level, line);
    else
        fprintf(stderr, "%s: %s\n", log_ident, line);
}
