#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "job.h"
#include "s1_config.h"

typedef enum { K_STR, K_INT, K_SECONDS, K_QUEUES, K_RATE } key_type;

/* One setting: its name in the file and as a flag, and where it lands. */
typedef struct {
    const char *name;
    key_type type;
    size_t off;
    long min, max; /* K_INT; K_SECONDS in ms */
    const char *help;
} key_def;

#define OFF(f) offsetof(s1d_config, f)
static const key_def KEYS[] = {
    {"db", K_STR, OFF(db), 0, 0, "libpq conninfo or URI (default $DATABASE_URL)"},
    {"model", K_STR, OFF(model), 0, 0, "model directory (Hugging Face layout)"},
    {"model-name", K_STR, OFF(model_name), 0, 0, "name matched against jobs' model"},
    {"backend", K_STR, OFF(backend), 0, 0, "cpu or cuda"},
    {"engine", K_STR, OFF(engine), 0, 0, "engine, or noop (benchmarks: no model)"},
    {"queue", K_QUEUES, OFF(queues), 0, 0, "queue(s) to serve, comma-separated"},
    {"max-batch", K_INT, OFF(max_batch), 0, 1 << 20, "jobs claimed at once at most"},
    {"max-seqs", K_INT, OFF(max_seqs), 0, 1 << 16, "sequences the engine runs at once"},
    {"max-context", K_INT, OFF(max_context), 0, 1 << 24,
     "tokens per sequence at most (0 = the model's)"},
    {"template", K_STR, OFF(template_name), 0, 0,
     "prompt template of jobs that name none: s1 or think-tags (default: from the tokenizer)"},
    {"lease", K_SECONDS, OFF(lease_ms), 200, 86400000, "seconds a claim is held unrenewed"},
    {"heartbeat", K_SECONDS, OFF(heartbeat_ms), 50, 3600000, "seconds between lease renewals"},
    {"drain-timeout", K_SECONDS, OFF(drain_timeout_ms), 0, 86400000, "seconds to finish on stop"},
    {"poll", K_SECONDS, OFF(poll_ms), 50, 3600000, "seconds between claims when no notify comes"},
    {"save-every", K_SECONDS, OFF(save_ms), 0, 86400000,
     "seconds between saves of running samples (0 = never)"},
    {"worker-name", K_STR, OFF(worker_name), 0, 0, "name in s1.workers (default host name)"},
    {"threads", K_INT, OFF(threads), 0, 4096, "CPU threads (0 = one per core)"},
    {"tp", K_INT, OFF(tp), 0, 64, "tensor-parallel degree"},
    {"noop-rate", K_RATE, OFF(noop_rate), 0, 0, "noop engine: tokens/s per sequence (0 = instant)"},
};
enum { N_KEYS = sizeof KEYS / sizeof KEYS[0] };

static const key_def *find_key(const char *name)
{
    for (int i = 0; i < N_KEYS; i++)
        if (!strcmp(KEYS[i].name, name)) return &KEYS[i];
    return NULL;
}

/* t without the blanks at its ends (in place). */
static char *trim_blanks(char *t)
{
    while (isspace((unsigned char)*t))
        t++;
    size_t n = strlen(t);
    while (n && isspace((unsigned char)t[n - 1]))
        t[--n] = '\0';
    return t;
}

/* A comma-separated list of queue names replaces the previous list, or is
 * appended to it (a repeated --queue flag). Blanks around a name are not part
 * of it; a name itself follows s1_job_queue_check, as s1ctl's --queue does. */
static int set_queues(s1d_config *cfg, const char *value, bool append, const char *where,
                      s1_err *err)
{
    int before = append ? cfg->n_queues : 0;
    if (!append) {
        for (int i = 0; i < cfg->n_queues; i++)
            free(cfg->queues[i]);
        cfg->n_queues = 0;
    }
    _cleanup_free_ char *copy = strdup(value);
    char *save = NULL;
    for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save)) {
        char *name = trim_blanks(t);
        if (!*name) continue;
        s1_err why = {0};
        if (s1_job_queue_check(name, &why)) return s1_errf(err, "%s: queue: %s", where, why.msg);
        if (cfg->n_queues == S1D_MAX_QUEUES)
            return s1_errf(err, "%s: queue: more than %d queues", where, S1D_MAX_QUEUES);
        cfg->queues[cfg->n_queues++] = strdup(name);
    }
    if (cfg->n_queues == before)
        return s1_errf(err, "%s: queue: no queue name in \"%s\"", where, value);
    return 0;
}

static int set_number(s1d_config *cfg, const key_def *k, const char *value, const char *where,
                      s1_err *err)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(value, &end);
    if (!*value || *end || errno || !isfinite(v))
        return s1_errf(err, "%s: %s: \"%s\" is not a number", where, k->name, value);
    void *dst = (char *)cfg + k->off;
    if (k->type == K_RATE) {
        if (v < 0) return s1_errf(err, "%s: %s: %s must be >= 0", where, k->name, value);
        *(double *)dst = v;
        return 0;
    }
    if (k->type == K_SECONDS)
        v *= 1000;
    else if (v != floor(v))
        return s1_errf(err, "%s: %s: \"%s\" is not an integer", where, k->name, value);
    if (v < k->min || v > k->max) {
        double scale = k->type == K_SECONDS ? 1000.0 : 1.0;
        return s1_errf(err, "%s: %s: %s is out of range [%g, %g]", where, k->name, value,
                       k->min / scale, k->max / scale);
    }
    *(int *)dst = (int)v;
    return 0;
}

/* Applies one key = value; where says where it was written, for errors. */
static int set_key(s1d_config *cfg, const char *name, const char *value, bool append,
                   const char *where, s1_err *err)
{
    const key_def *k = find_key(name);
    if (!k) return s1_errf(err, "%s: unknown key \"%s\" (see s1d --help)", where, name);
    if (k->type == K_QUEUES) return set_queues(cfg, value, append, where, err);
    if (k->type != K_STR) return set_number(cfg, k, value, where, err);
    if (!*value) return s1_errf(err, "%s: %s: empty value", where, name);
    char **dst = (char **)((char *)cfg + k->off);
    free(*dst);
    *dst = strdup(value);
    return 0;
}

/* inih reads line by line through this reader, which counts lines so that
 * errors can name file:line (the packaged inih does not pass line numbers). */
typedef struct {
    FILE *f;
    int line;
    s1d_config *cfg;
    const char *path;
    s1_err *err;
    int failed;
} ini_ctx;

static char *read_line(char *buf, int size, void *stream)
{
    ini_ctx *c = stream;
    char *r = fgets(buf, size, c->f);
    if (r) c->line++;
    return r;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    ini_ctx *c = user;
    if (c->failed) return 1;
    char where[512];
    snprintf(where, sizeof where, "%s:%d", c->path, c->line);
    if (strcmp(section, "s1d")) {
        s1_errf(c->err, "%s: unknown section [%s] (the settings go under [s1d])", where, section);
        c->failed = 1;
        return 0;
    }
    if (set_key(c->cfg, name, value, false, where, c->err)) c->failed = 1;
    return !c->failed;
}

static int load_file(s1d_config *cfg, const char *path, s1_err *err)
{
    _cleanup_fclose_ FILE *f = fopen(path, "r");
    if (!f) return s1_errf(err, "%s: %s (--config)", path, strerror(errno));
    ini_ctx c = {.f = f, .cfg = cfg, .path = path, .err = err};
    int rc = ini_parse_stream(read_line, &c, on_key, &c);
    if (c.failed) return -1;
    if (rc)
        return s1_errf(err, "%s:%d: syntax error (expected \"key = value\" or [s1d])", path, rc);
    return 0;
}

static void usage(void)
{
    printf("usage: s1d [--config FILE] [--check-config] [--KEY VALUE]...\n"
           "Runs s1 reasoning jobs from the PostgreSQL queue. Every key can also be set\n"
           "in the [s1d] section of the config file; flags override the file.\n\n");
    for (int i = 0; i < N_KEYS; i++)
        printf("  --%-15s %s\n", KEYS[i].name, KEYS[i].help);
}

static void set_defaults(s1d_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->backend = strdup("cpu");
    cfg->engine = strdup("engine");
    cfg->queues[cfg->n_queues++] = strdup("default");
    cfg->lease_ms = 60000;
    cfg->heartbeat_ms = 10000;
    cfg->drain_timeout_ms = 30000;
    cfg->poll_ms = 5000;
    cfg->save_ms = 10000;
}

/* Cross-key checks, once everything is read. */
static int validate(const s1d_config *cfg, s1_err *err)
{
    const char *where = cfg->config_path ? cfg->config_path : "flags";
    if (strcmp(cfg->engine, "engine") && strcmp(cfg->engine, "noop"))
        return s1_errf(err, "%s: engine: \"%s\" is not engine or noop", where, cfg->engine);
    if (strcmp(cfg->backend, "cpu") && strcmp(cfg->backend, "cuda"))
        return s1_errf(err, "%s: backend: \"%s\" is not cpu or cuda", where, cfg->backend);
    s1_template ignored;
    if (s1_job_template_parse(cfg->template_name, &ignored, err) < 0)
        return s1_err_prefix(err, "%s", where);
    if (cfg->heartbeat_ms * 2 > cfg->lease_ms)
        return s1_errf(err,
                       "%s: heartbeat: %g s is more than half the lease (%g s); "
                       "leases would expire between renewals",
                       where, cfg->heartbeat_ms / 1000.0, cfg->lease_ms / 1000.0);
    if (!strcmp(cfg->engine, "noop")) return 0;
    if (!cfg->model) return s1_errf(err, "%s: model: no model directory (set model = DIR)", where);
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/config.json", cfg->model);
    if (stat(path, &st) || !S_ISREG(st.st_mode))
        return s1_errf(err, "model: %s is not a model directory (no config.json)", cfg->model);
    return 0;
}

static const struct option *long_options(void)
{
    static struct option opts[N_KEYS + 5];
    for (int i = 0; i < N_KEYS; i++)
        opts[i] = (struct option){KEYS[i].name, required_argument, 0, 'k'};
    opts[N_KEYS] = (struct option){"config", required_argument, 0, 'c'};
    opts[N_KEYS + 1] = (struct option){"check-config", no_argument, 0, 'C'};
    opts[N_KEYS + 2] = (struct option){"help", no_argument, 0, 'h'};
    opts[N_KEYS + 3] = (struct option){"version", no_argument, 0, 'V'};
    return opts;
}

/* The flags other than --config, in order, applied after the file. */
static int apply_flags(s1d_config *cfg, int argc, char **argv, s1_err *err)
{
    const struct option *opts = long_options();
    int idx = 0, ch;
    bool queue_seen = false;
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, &idx)) != -1) {
        if (ch == '?' || ch == ':')
            return s1_errf(err, "%s: unknown flag or missing value (see s1d --help)",
                           argv[optind - 1]);
        if (ch != 'k') continue;
        char where[128];
        snprintf(where, sizeof where, "--%s", opts[idx].name);
        bool is_queue = !strcmp(opts[idx].name, "queue");
        if (set_key(cfg, opts[idx].name, optarg, is_queue && queue_seen, where, err)) return -1;
        queue_seen = queue_seen || is_queue;
    }
    if (optind < argc)
        return s1_errf(err, "%s: unexpected argument (see s1d --help)", argv[optind]);
    return 0;
}

/* First pass: --config, --check-config, --help, --version. */
static int scan_flags(s1d_config *cfg, int argc, char **argv)
{
    const struct option *opts = long_options();
    int idx = 0, ch;
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, &idx)) != -1) {
        if (ch == 'c') {
            free(cfg->config_path);
            cfg->config_path = strdup(optarg);
        } else if (ch == 'C') {
            cfg->check_only = true;
        } else if (ch == 'h') {
            usage();
            return 1;
        } else if (ch == 'V') {
            printf("s1d %s\n", S1_VERSION);
            return 1;
        }
    }
    return 0;
}

/* The model name jobs are matched against: the last path component of the
 * model directory unless model-name says otherwise. */
static void default_model_name(s1d_config *cfg)
{
    if (cfg->model_name) return;
    if (!cfg->model) {
        cfg->model_name = strdup("noop");
        return;
    }
    const char *end = cfg->model + strlen(cfg->model);
    while (end > cfg->model && end[-1] == '/')
        end--;
    const char *start = end;
    while (start > cfg->model && start[-1] != '/')
        start--;
    cfg->model_name = strndup(start, (size_t)(end - start));
}

/* The name in s1.workers: the host name unless worker-name says otherwise. */
static void default_worker_name(s1d_config *cfg)
{
    if (cfg->worker_name) return;
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    cfg->worker_name = strdup(*host ? host : "s1d");
}

int s1d_config_load(s1d_config *cfg, int argc, char **argv, s1_err *err)
{
    set_defaults(cfg);
    int rc = scan_flags(cfg, argc, argv);
    if (!rc && cfg->config_path) rc = load_file(cfg, cfg->config_path, err);
    if (!rc) rc = apply_flags(cfg, argc, argv, err);
    if (!rc) rc = validate(cfg, err);
    if (!rc) default_model_name(cfg);
    if (!rc) default_worker_name(cfg);
    if (rc) s1d_config_free(cfg);
    return rc;
}

void s1d_config_free(s1d_config *cfg)
{
    for (int i = 0; i < N_KEYS; i++)
        if (KEYS[i].type == K_STR) free(*(char **)((char *)cfg + KEYS[i].off));
    for (int i = 0; i < cfg->n_queues; i++)
        free(cfg->queues[i]);
    free(cfg->config_path);
    memset(cfg, 0, sizeof *cfg);
}
