#include "runner.h"

#include <stdlib.h>
#include <string.h>

#include "fingerprint.h"
#include "job.h"
#include "noop.h"

/* Exactly one of the two is set; the engine's model has a fingerprint. */
struct s1d_runner {
    s1_engine *engine;
    s1d_noop *noop;
    char fingerprint[S1D_FINGERPRINT_LEN];
};

s1d_runner *s1d_runner_open(const s1d_config *cfg, s1_err *err)
{
    s1d_runner *r = calloc(1, sizeof *r);
    if (!r) {
        s1_errf(err, "out of memory");
        return NULL;
    }
    if (!strcmp(cfg->engine, "noop")) {
        r->noop = s1d_noop_open(cfg->max_seqs, cfg->noop_rate);
        if (!r->noop) s1_errf(err, "out of memory opening the noop engine");
    } else {
        /* validate() has checked the name: a NULL or known one. */
        s1_template template = S1_TEMPLATE_DEFAULT;
        s1_job_template_parse(cfg->template_name, &template, err);
        s1_engine_cfg ec = {.model_dir = cfg->model,
                            .backend = cfg->backend,
                            .tp = cfg->tp,
                            .threads = cfg->threads,
                            .max_seqs = cfg->max_seqs,
                            .max_context = cfg->max_context,
                            .template = template};
        /* Taken from the files the engine has just loaded, so results
         * name the model they came from. */
        r->engine = s1_engine_open(&ec, err);
        if (r->engine && s1d_fingerprint(cfg->model, r->fingerprint, err) < 0) {
            s1_engine_close(r->engine);
            r->engine = NULL;
        }
    }
    if (!r->engine && !r->noop) {
        free(r);
        return NULL;
    }
    return r;
}

void s1d_runner_close(s1d_runner *r)
{
    if (!r) return;
    if (r->engine) s1_engine_close(r->engine);
    s1d_noop_close(r->noop);
    free(r);
}

const char *s1d_runner_fingerprint(const s1d_runner *r)
{
    return r->engine ? r->fingerprint : NULL;
}

const s1_engine_info *s1d_runner_info(const s1d_runner *r)
{
    return r->noop ? s1d_noop_info(r->noop) : s1_engine_get_info(r->engine);
}

int s1d_runner_add(s1d_runner *r, const s1_request *req, s1_err *err)
{
    return r->noop ? s1d_noop_add(r->noop, req, err) : s1_engine_add(r->engine, req, err);
}

int s1d_runner_cancel(s1d_runner *r, uint64_t tag)
{
    return r->noop ? s1d_noop_cancel(r->noop, tag) : s1_engine_cancel(r->engine, tag);
}

int s1d_runner_step(s1d_runner *r, s1_err *err)
{
    return r->noop ? s1d_noop_step(r->noop) : s1_engine_step(r->engine, err);
}

int s1d_runner_capacity(const s1d_runner *r)
{
    return r->noop ? s1d_noop_capacity(r->noop) : s1_engine_capacity(r->engine);
}

s1_result *s1d_runner_take_result(s1d_runner *r)
{
    return r->noop ? s1d_noop_take_result(r->noop) : s1_engine_take_result(r->engine);
}

s1_resume *s1d_runner_save(const s1d_runner *r, uint64_t tag, s1_err *err)
{
    return r->noop ? s1d_noop_save(r->noop, tag, err) : s1_engine_save(r->engine, tag, err);
}

int s1d_runner_progress(const s1d_runner *r, uint64_t tag, int *thinking, int *generated)
{
    return r->noop ? s1d_noop_progress(r->noop, tag, thinking, generated)
                   : s1_engine_progress(r->engine, tag, thinking, generated);
}

void s1d_runner_free_result(const s1d_runner *r, s1_result *res)
{
    if (r->noop)
        s1d_noop_free_result(res);
    else
        s1_result_free(res);
}
