/* store/queue.h — the queue protocol's statements (DESIGN.md "The queue
 * protocol"): claim, lease renewal, progress, completion, requeue, the reaper
 * and the worker row. Each function fills an s1_queue_stmt (SQL text and
 * text parameters) that the caller sends as it likes: s1d sends them
 * asynchronously on its event loop, the benchmark synchronously. Parsers turn
 * the results back into structs. Every write after the claim is fenced: it
 * names the job's id, attempt and worker and requires state = 'running'. */
#ifndef S1_QUEUE_H
#define S1_QUEUE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine.h"
#include "err.h"

enum { S1_QUEUE_MAX_PARAMS = 16 };

/* One statement to send; params are owned (NULL = SQL NULL). Each is
 * prepared once per connection, under its name, and then only executed. */
typedef struct {
    const char *what; /* for error messages: "claim", "complete" ... */
    const char *name; /* prepared statement name, e.g. "s1_claim" */
    const char *sql;
    int n_params;
    char *params[S1_QUEUE_MAX_PARAMS];
} s1_queue_stmt;

void s1_queue_stmt_clear(s1_queue_stmt *s);
/* Runs s synchronously (the benchmark, tests), preparing it on c the first
 * time; the result or NULL with err. */
PGresult *s1_queue_exec(PGconn *c, const s1_queue_stmt *s, s1_err *err);

/* Who claims, and what it serves. */
typedef struct {
    const char *worker;
    const char *model;         /* jobs whose model is NULL or this */
    const char *fingerprint;   /* of the model's files (daemon/fingerprint.h); NULL: none */
    const char *const *queues; /* queue names */
    int n_queues;
    int lease_ms;
} s1_queue_worker;

/* A claimed job; strings owned (s1_queue_jobs_free). */
typedef struct {
    int64_t id;
    int attempt;
    int samples;
    bool cancel_requested;
    double queue_wait_ms; /* created → claimed */
    char *problem;
    char *reference;     /* NULL without a reference answer */
    char *policy;        /* JSON text */
    char *sampling;      /* JSON text */
    char *resume;        /* JSON text: the sequences saved by earlier attempts; NULL when none */
    char *template_name; /* "s1", "think-tags", or NULL: the engine's default */
} s1_queue_job;

/* Claims up to n queued jobs (FOR UPDATE SKIP LOCKED), best first. */
int s1_queue_claim(s1_queue_stmt *s, const s1_queue_worker *w, int n);
int s1_queue_parse_claim(const PGresult *r, s1_queue_job **jobs, int *n, s1_err *err);
void s1_queue_jobs_free(s1_queue_job *jobs, int n);

/* A job this worker holds: the fencing key. */
typedef struct {
    int64_t id;
    int attempt;
    int thinking;  /* progress: thinking tokens so far */
    int generated; /* progress: generated tokens so far */
} s1_queue_held;

/* Renews the leases of the held jobs. The result lists those still held,
 * with their cancel flag; a job missing from it was taken from this worker. */
int s1_queue_renew(s1_queue_stmt *s, const s1_queue_worker *w, const s1_queue_held *h, int n);
typedef struct {
    int64_t id;
    bool cancel_requested;
} s1_queue_lease;
int s1_queue_parse_renew(const PGresult *r, s1_queue_lease **out, int *n, s1_err *err);

/* Writes progress of the held jobs and NOTIFYs s1_progress ("id thinking"). */
int s1_queue_progress(s1_queue_stmt *s, const s1_queue_worker *w, const s1_queue_held *h, int n);

/* One finished sample at one rung, as written to s1.results. */
typedef struct {
    int sample;
    int rung;        /* index in the job's ladder; 0 without one */
    int budget;      /* the run's max_think: the rung's budget, else the job's; 0 = none */
    int ignore_stop; /* the run's ignore_stop: the rung's wait count, else the job's */
    bool context_end;
    const char *trace, *answer, *extracted_answer;
    int grade;     /* -1 = NULL (no reference), 0, 1 */
    bool majority; /* the majority answer of its job's samples at its rung */
    int votes;     /* with majority: how many samples gave that answer */
    int prompt_tokens, thinking_tokens, forced_tokens, answer_tokens, waits;
    bool forced_end;
    const char *stop_reason;
    const int32_t *prompt_ids;
    size_t n_prompt;
    const int32_t *token_ids;
    size_t n_tokens;
    double queue_wait_ms, ttft_ms, decode_tps;
} s1_queue_sample;

/* How a job ends. succeeded carries its samples; failed carries error;
 * cancelled neither. queued hands the job back (drain): attempt is undone so
 * the hand-back does not count against max_attempts. */
typedef enum {
    S1_QUEUE_SUCCEEDED,
    S1_QUEUE_FAILED,
    S1_QUEUE_CANCELLED,
    S1_QUEUE_REQUEUED
} s1_queue_end;

typedef struct {
    int64_t id;
    int attempt;
    s1_queue_end end;
    const char *error;
    const s1_queue_sample *samples;
    int n_samples;
} s1_queue_done;

/* What the result rows say about the engine that made them. */
typedef struct {
    const char *model, *backend;
    int gpus;
    const char *fingerprint; /* NULL: none (the noop engine) */
    const char *version;     /* s1d's */
} s1_queue_origin;

/* Ends several jobs in one statement (one transaction): each job's new state
 * and its result rows are written only when this worker still holds that
 * attempt. The result lists the ids written; the others were fenced out. */
int s1_queue_complete(s1_queue_stmt *s, const s1_queue_worker *w, const s1_queue_origin *o,
                      const s1_queue_done *d, int n, s1_err *err);
int s1_queue_parse_ids(const PGresult *r, int64_t **ids, int *n, s1_err *err);

/* Completion statements are bounded by count and by size: a batch of
 * 16k-token results is megabytes of parameters, and one statement must
 * commit well within the statement timeout. A single job always goes. */
enum { S1_QUEUE_BATCH_JOBS = 256 };
#define S1_QUEUE_BATCH_BYTES ((size_t)4 << 20)

/* About how many bytes d's results add to a completion statement. */
size_t s1_queue_done_bytes(const s1_queue_done *d);

/* Whether a batch of jobs (bytes in all) is full: true when it holds
 * S1_QUEUE_BATCH_JOBS, or when a job of next_bytes would take a non-empty
 * batch past S1_QUEUE_BATCH_BYTES. */
bool s1_queue_batch_full(int jobs, size_t bytes, size_t next_bytes);

/* Requeues (with backoff) or fails jobs whose lease expired, on any worker;
 * cancels those whose cancel was requested. The result lists id, state, attempt. */
void s1_queue_reap(s1_queue_stmt *s);

/* Saves where running jobs stand (s1.resume), as this worker's model: each
 * job's every sequence (engine.h s1_resume). */
typedef struct {
    int64_t id;
    int attempt;
    const s1_resume *state;
} s1_queue_saved;
int s1_queue_save(s1_queue_stmt *s, const s1_queue_worker *w, const s1_queue_saved *v, int n,
                  s1_err *err);

/* The saved sequences of a claimed job (its resume text), malloc'ed
 * (engine.h s1_resume_free); NULL with err when the text is not what the
 * claim returns. */
s1_resume *s1_queue_parse_resume(const char *text, s1_err *err);

/* Inserts or updates this worker's row in s1.workers. */
typedef struct {
    const char *host, *version, *backend, *state;
    int pid, gpus, jobs_in_flight;
    int max_context; /* the engine's context, which submit checks budgets against; 0 = unknown */
    long long jobs_done;
    double tokens_per_s;
} s1_queue_figures;
int s1_queue_worker_beat(s1_queue_stmt *s, const s1_queue_worker *w, const s1_queue_figures *f);

/* Copies s into a valid UTF-8 string (invalid bytes become U+FFFD), owned by
 * the caller: PostgreSQL rejects text that is not UTF-8, and a decoded trace
 * can end inside a character. */
char *s1_queue_utf8(const char *s);

#endif
