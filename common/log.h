/* common/log.h — one-line logs to stderr. Under systemd (S1_LOG_PREFIX set by
 * s1d, or JOURNAL_STREAM present) each line starts with the sd-daemon priority
 * prefix ("<3>" ...) so journald keeps the level. */
#ifndef S1_LOG_H
#define S1_LOG_H

enum { S1_LOG_ERR = 3, S1_LOG_WARNING = 4, S1_LOG_NOTICE = 5, S1_LOG_INFO = 6, S1_LOG_DEBUG = 7 };

/* Lines above this level are dropped (default S1_LOG_INFO; S1_LOG_LEVEL=debug). */
void s1_log_set_level(int level);
/* Forces sd-daemon prefixes on or off; by default they follow JOURNAL_STREAM. */
void s1_log_set_prefix(int on);
/* Program name written before each line when prefixes are off. */
void s1_log_set_ident(const char *ident);

__attribute__((format(printf, 2, 3))) void s1_log(int level, const char *fmt, ...);

#define log_error(...)   s1_log(S1_LOG_ERR, __VA_ARGS__)
#define log_warning(...) s1_log(S1_LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  s1_log(S1_LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    s1_log(S1_LOG_INFO, __VA_ARGS__)
#define log_debug(...)   s1_log(S1_LOG_DEBUG, __VA_ARGS__)

#endif
