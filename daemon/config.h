/* daemon/config.h — s1d's settings: an INI file (--config) and flags that
 * override it. Every key can be given either way (`lease = 30` in [s1d] or
 * `--lease 30`); unknown keys and bad values are errors naming the key and
 * where it was written (file:line or the flag). */
#ifndef S1D_CONFIG_H
#define S1D_CONFIG_H

#include <stdbool.h>

#include "err.h"

enum { S1D_MAX_QUEUES = 32 };

/* All strings owned (s1d_config_free). Durations in milliseconds. */
typedef struct {
    char *config_path; /* --config, NULL when none */
    bool check_only;   /* --check-config */
    char *db;          /* conninfo; NULL = $DATABASE_URL or libpq defaults */
    char *model;       /* model directory */
    char *model_name;  /* default: last path component of model ("noop" without) */
    char *backend;     /* "cpu" or "cuda" */
    char *engine;      /* "engine" (the model) or "noop" (benchmarks) */
    char *queues[S1D_MAX_QUEUES];
    int n_queues;
    int max_batch; /* jobs claimed at once at most; 0 = engine capacity */
    int lease_ms;
    int heartbeat_ms;
    int drain_timeout_ms;
    int poll_ms;       /* slow poll for missed notifies */
    int save_ms;       /* saves of running samples for crash-resume; 0 = never */
    char *worker_name; /* default: the host name */
    int threads, tp;
    int max_seqs;        /* sequences the engine runs at once; 0 = its default */
    int max_context;     /* tokens per sequence at most; 0 = the model's */
    char *template_name; /* of jobs that name none; NULL = the engine's choice */
    double noop_rate;    /* noop engine: tokens per second per sequence, 0 = instant */
} s1d_config;

/* Fills cfg from argv: defaults, then the --config file, then the other
 * flags; called again on SIGHUP to re-read the file. Returns 0, 1 when
 * --help or --version was printed, -1 with err (cfg is freed unless 0). */
int s1d_config_load(s1d_config *cfg, int argc, char **argv, s1_err *err);

void s1d_config_free(s1d_config *cfg);

#endif
