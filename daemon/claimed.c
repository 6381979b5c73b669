#include "claimed.h"

#include <stdlib.h>
#include <string.h>

/* A row asking for no samples, or more than a tag can name, runs one. */
s1d_job *s1d_job_new(s1_queue_job *row)
{
    s1d_job *j = calloc(1, sizeof *j);
    int n = row->samples > 0 && row->samples <= (1 << S1D_SAMPLE_BITS) ? row->samples : 1;
    if (!j) return NULL;
    j->row = *row;
    j->row.samples = n;
    memset(row, 0, sizeof *row);
    return j;
}

int s1d_job_size(s1d_job *j)
{
    const s1_ladder *l = &j->params.policy.ladder;
    j->rungs = l->kind == S1_LADDER_NONE ? 1 : l->n_rungs;
    size_t n = (size_t)s1d_job_runs(j);
    j->results = calloc(n, sizeof *j->results);
    j->extracted = calloc(n, sizeof *j->extracted);
    j->grade = calloc(n, sizeof *j->grade);
    return j->results && j->extracted && j->grade ? 0 : -1;
}

int s1d_job_runs(const s1d_job *j)
{
    return j->row.samples * j->rungs;
}

/* The arrays may be missing (not sized yet, or out of memory). */
void s1d_job_free(s1d_job *j, const s1d_runner *r)
{
    for (int i = 0; j->results && i < s1d_job_runs(j); i++)
        if (j->results[i]) s1d_runner_free_result(r, j->results[i]);
    for (int i = 0; j->extracted && i < s1d_job_runs(j); i++)
        free(j->extracted[i]);
    s1_resume_free(j->resume);
    s1_resume_free(j->saved);
    free(j->results);
    free(j->extracted);
    free(j->grade);
    if (j->params_ok) s1_job_params_free(&j->params);
    free(j->row.problem);
    free(j->row.reference);
    free(j->row.policy);
    free(j->row.sampling);
    free(j->row.resume);
    free(j->row.template_name);
    free(j);
}
