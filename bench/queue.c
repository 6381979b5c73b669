/* bench/queue — the queue protocol's speed on PostgreSQL, side by side with
 * bare PostgreSQL on the same cluster (a benchmark, not a test: it prints
 * figures and asserts nothing).
 *
 *   queue [--db CONNINFO] [--jobs N] [--big-jobs N] [--clients N] [--batch N]
 *         [--rounds N] [--latency N]
 *
 * 1. Interleaved rounds, each a side-by-side pair on fresh tables, with the
 *    same --clients threads (one connection each) and claim batches of --batch:
 *    (a) s1d's claim + complete with one empty result row per job (the
 *        statements of store/queue.h) against a bare SKIP LOCKED claim +
 *        UPDATE on a plain table;
 *    (b) the same with a 64 KB trace and 16k token ids per job against the
 *        bare claim + UPDATE + INSERT of the same rows into a plain table of
 *        s1.results' columns (no index, key or trigger).
 *    Prints each round's jobs/s and the min/median/max of the ratios.
 * 2. s1d end to end: --jobs jobs through `s1d --engine noop`, learnt from the
 *    end-of-job notifications; jobs/s and how many updates of s1.jobs were HOT.
 * 3. submit-to-start latency when idle: --latency jobs are inserted one at a
 *    time into the queue of an idle `s1d --engine noop`; the latency is the
 *    claim's started_at minus the insert's created_at (both server clock).
 *    Prints p50 and p99.
 * Figures name the CPU and the server's settings. Without --db it starts a
 * throwaway cluster with tests/pg.sh. */
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "queue.h"

enum { TRACE_BYTES = 65536, TOKEN_IDS = 16384, PROMPT_IDS = 128, VOCAB = 151643 };

/* What a completed job carries: an empty result, or a long trace's. The
 * bare baseline gets the same rows as array elements, made once. */
typedef struct {
    s1_queue_sample sample;                    /* points into the buffers below */
    char *trace;                               /* owned */
    int32_t *ids, *prompt;                     /* owned */
    size_t bytes;                              /* s1_queue_done_bytes of one job */
    char *bare_trace, *bare_prompt, *bare_ids; /* owned: quoted array elements */
} payload;

typedef struct {
    const char *db;
    bool bare;
    int batch;
    const payload *load;
    long done;
    s1_err err;
    int failed;
} client;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const char *const QUEUES[] = {"bench"};
static const s1_queue_worker WORKER = {
    .worker = "bench", .model = "noop", .queues = QUEUES, .n_queues = 1, .lease_ms = 60000};

/* ---- payloads ---------------------------------------------------------- */

/* Text like a trace: words of a small vocabulary in a fixed pseudo-random
 * order, so it compresses about as well as English. */
static char *make_trace(size_t len)
{
    static const char *const words[] = {"the ", "answer ",       "is ",    "so ",     "we ",
                                        "get ", "Wait, ",        "let ",   "x ",      "= ",
                                        "2 ",   "\\frac{1}{3} ", "check ", "again. ", "therefore ",
                                        "sum ", "of ",           "terms\n"};
    char *t = malloc(len + 1);
    size_t n = 0;
    unsigned seed = 12345;
    while (t && n < len) {
        seed = seed * 1103515245u + 12345u;
        const char *w = words[(seed >> 16) % (sizeof words / sizeof *words)];
        for (; *w && n < len; w++)
            t[n++] = *w;
    }
    if (t) t[n] = 0;
    return t;
}

static int32_t *make_ids(int n, unsigned seed)
{
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    for (int i = 0; ids && i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        ids[i] = (int32_t)((seed >> 8) % VOCAB);
    }
    return ids;
}

/* An element of a text[] literal: quoted, quotes and backslashes escaped. */
static char *quoted(const char *v)
{
    char *out = malloc(2 * strlen(v) + 3), *o = out;
    if (!out) return NULL;
    *o++ = '"';
    for (; *v; v++) {
        if (*v == '"' || *v == '\\') *o++ = '\\';
        *o++ = *v;
    }
    *o++ = '"';
    *o = 0;
    return out;
}

/* An element of a bytea[] literal: ids as 4 little-endian bytes, in hex. */
static char *quoted_ids(const int32_t *ids, int n)
{
    char *out = malloc(8 * (size_t)n + 8), *o = out;
    if (!out) return NULL;
    o += sprintf(o, "\"\\\\x");
    for (int i = 0; i < n; i++)
        for (int b = 0; b < 4; b++)
            o += sprintf(o, "%02x", ((uint32_t)ids[i] >> (8 * b)) & 0xFF);
    strcpy(o, "\"");
    return out;
}

static void payload_free(payload *p)
{
    free(p->trace);
    free(p->ids);
    free(p->prompt);
    free(p->bare_trace);
    free(p->bare_prompt);
    free(p->bare_ids);
}

/* big: a 64 KB trace, 16k generated and 128 prompt ids; else all empty. */
static int payload_init(payload *p, bool big)
{
    memset(p, 0, sizeof *p);
    int n_ids = big ? TOKEN_IDS : 0, n_prompt = big ? PROMPT_IDS : 0;
    p->trace = make_trace(big ? TRACE_BYTES : 0);
    p->ids = make_ids(n_ids + 1, 7);
    p->prompt = make_ids(n_prompt + 1, 11);
    if (!p->trace || !p->ids || !p->prompt) return -1;
    p->sample = (s1_queue_sample){.trace = p->trace,
                                  .answer = "Final Answer: 42",
                                  .grade = -1,
                                  .stop_reason = "eos",
                                  .prompt_ids = p->prompt,
                                  .n_prompt = (size_t)n_prompt,
                                  .token_ids = p->ids,
                                  .n_tokens = (size_t)n_ids};
    s1_queue_done d = {.end = S1_QUEUE_SUCCEEDED, .samples = &p->sample, .n_samples = 1};
    p->bytes = s1_queue_done_bytes(&d);
    p->bare_trace = quoted(p->trace);
    p->bare_prompt = quoted_ids(p->prompt, n_prompt);
    p->bare_ids = quoted_ids(p->ids, n_ids);
    return p->bare_trace && p->bare_prompt && p->bare_ids ? 0 : -1;
}

/* ---- s1d's statements ---------------------------------------------------- */

/* Completes claimed jobs with one result row each, in statements cut as
 * s1d's writer cuts them (s1_queue_batch_full). */
static int complete_all(PGconn *c, const s1_queue_job *jobs, int n, const payload *load,
                        s1_err *err)
{
    s1_queue_done *d = calloc((size_t)n, sizeof *d);
    if (!d) return s1_errf(err, "out of memory");
    for (int i = 0; i < n; i++)
        d[i] = (s1_queue_done){.id = jobs[i].id,
                               .attempt = jobs[i].attempt,
                               .end = S1_QUEUE_SUCCEEDED,
                               .samples = &load->sample,
                               .n_samples = 1};
    s1_queue_origin o = {.model = "noop", .backend = "noop"};
    int rc = 0;
    for (int first = 0, k; !rc && first < n; first += k) {
        size_t bytes = 0;
        for (k = 0; first + k < n && !s1_queue_batch_full(k, bytes, load->bytes); k++)
            bytes += load->bytes;
        s1_queue_stmt s;
        rc = s1_queue_complete(&s, &WORKER, &o, d + first, k, err);
        PGresult *r = rc ? NULL : s1_queue_exec(c, &s, err);
        s1_queue_stmt_clear(&s);
        if (!rc && !r) rc = -1;
        if (r && PQntuples(r) != k)
            rc = s1_errf(err, "complete wrote %d of %d jobs", PQntuples(r), k);
        PQclear(r);
    }
    free(d);
    return rc;
}

/* One claim and its completion; the number of jobs, 0 when none was left. */
static int s1d_step(PGconn *c, client *cl)
{
    s1_queue_stmt s;
    s1_queue_claim(&s, &WORKER, cl->batch);
    _cleanup_pgresult_ PGresult *r = s1_queue_exec(c, &s, &cl->err);
    s1_queue_stmt_clear(&s);
    s1_queue_job *jobs = NULL;
    int n = 0;
    if (!r || s1_queue_parse_claim(r, &jobs, &n, &cl->err))
        n = -1;
    else if (n && complete_all(c, jobs, n, cl->load, &cl->err))
        n = -1;
    s1_queue_jobs_free(jobs, n > 0 ? n : 0);
    return n;
}

/* ---- the bare baseline ----------------------------------------------------- */

/* What anyone would write with PostgreSQL alone: a plain table, the claim
 * by SKIP LOCKED (its ids as an array, found by primary key, as s1d's), an
 * UPDATE at the end, and with results an INSERT of the rows into a table of
 * s1.results' columns. */
static const char BARE_JOBS[] =
    "CREATE TABLE bench.jobs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "                         state text NOT NULL DEFAULT 'queued', worker text,"
    "                         problem text NOT NULL)";
static const char BARE_RESULTS[] =
    "CREATE TABLE bench.results"
    "    (LIKE s1.results INCLUDING COMPRESSION INCLUDING DEFAULTS INCLUDING IDENTITY)";
static const char *const BARE_SCHEMA[] = {
    "CREATE SCHEMA IF NOT EXISTS bench", "DROP TABLE IF EXISTS bench.jobs, bench.results",
    BARE_JOBS, "CREATE INDEX bench_jobs_queued ON bench.jobs (id) WHERE state = 'queued'",
    BARE_RESULTS};

static const char BARE_CLAIM[] =
    "UPDATE bench.jobs SET state = 'running', worker = 'bench'"
    " WHERE id = ANY (ARRAY(SELECT id FROM bench.jobs WHERE state = 'queued'"
    "                         ORDER BY id FOR UPDATE SKIP LOCKED LIMIT $1))"
    " RETURNING id";
static const char BARE_DONE[] =
    "UPDATE bench.jobs SET state = 'done' WHERE id = ANY ($1::bigint[])";
static const char BARE_DONE_ROWS[] =
    "WITH d AS (UPDATE bench.jobs SET state = 'done' WHERE id = ANY ($1::bigint[]))"
    " INSERT INTO bench.results (job_id, attempt, sample, trace, answer, prompt_ids, token_ids)"
    " SELECT id, 1, 0, t, a, p, k"
    "   FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bytea[], $5::bytea[])"
    "        AS x(id, t, a, p, k)";

/* {e,e,...}: n copies of one element. */
static char *repeat_array(const char *elem, int n)
{
    size_t len = strlen(elem);
    char *out = malloc((len + 1) * (size_t)n + 3), *o = out;
    if (!out) return NULL;
    *o++ = '{';
    for (int i = 0; i < n; i++) {
        if (i) *o++ = ',';
        memcpy(o, elem, len);
        o += len;
    }
    strcpy(o, "}");
    return out;
}

/* The claimed ids as a bigint[] literal. */
static char *id_array(const PGresult *r)
{
    int n = PQntuples(r);
    char *out = malloc((size_t)n * 21 + 3), *o = out;
    if (!out) return NULL;
    *o++ = '{';
    for (int i = 0; i < n; i++)
        o += sprintf(o, "%s%s", i ? "," : "", PQgetvalue(r, i, 0));
    strcpy(o, "}");
    return out;
}

static int bare_done(PGconn *c, const PGresult *claimed, const payload *load, s1_err *err)
{
    int n = PQntuples(claimed);
    bool rows = load->sample.n_tokens > 0;
    char *params[5] = {id_array(claimed)};
    if (rows) {
        params[1] = repeat_array(load->bare_trace, n);
        params[2] = repeat_array("\"Final Answer: 42\"", n);
        params[3] = repeat_array(load->bare_prompt, n);
        params[4] = repeat_array(load->bare_ids, n);
    }
    PGresult *r = PQexecPrepared(c, rows ? "bare_done_rows" : "bare_done", rows ? 5 : 1,
                                 (const char *const *)params, NULL, NULL, 0);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : s1_db_errf(err, c, r, "bare completion");
    PQclear(r);
    for (int i = 0; i < 5; i++)
        free(params[i]);
    return rc;
}

static int bare_step(PGconn *c, client *cl)
{
    char batch[16];
    snprintf(batch, sizeof batch, "%d", cl->batch);
    const char *params[] = {batch};
    _cleanup_pgresult_ PGresult *r = PQexecPrepared(c, "bare_claim", 1, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) return s1_db_errf(&cl->err, c, r, "bare claim");
    int n = PQntuples(r);
    return n && bare_done(c, r, cl->load, &cl->err) ? -1 : n;
}

/* The bare statements are prepared too, as s1d's are. */
static int bare_prepare(PGconn *c, s1_err *err)
{
    const char *names[] = {"bare_claim", "bare_done", "bare_done_rows"};
    const char *sql[] = {BARE_CLAIM, BARE_DONE, BARE_DONE_ROWS};
    for (int i = 0; i < 3; i++) {
        PGresult *r = PQprepare(c, names[i], sql[i], 0, NULL);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok) s1_db_errf(err, c, r, "preparing %s", names[i]);
        PQclear(r);
        if (!ok) return -1;
    }
    return 0;
}

/* ---- rounds ---------------------------------------------------------------------- */

static void *client_main(void *arg)
{
    client *cl = arg;
    _cleanup_pgconn_ PGconn *c = s1_db_connect(cl->db, &cl->err);
    cl->failed = !c || (cl->bare && bare_prepare(c, &cl->err));
    while (!cl->failed) {
        int n = cl->bare ? bare_step(c, cl) : s1d_step(c, cl);
        cl->failed = n < 0;
        if (n <= 0) break;
        cl->done += n;
    }
    return NULL;
}

static int exec_sql(PGconn *c, const char *sql)
{
    s1_err err = {0};
    if (s1_db_run(c, "bench", sql, 0, NULL, &err)) {
        fprintf(stderr, "queue: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int insert_jobs(PGconn *c, int n, const char *table)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO %s (problem%s) SELECT 'bench'%s FROM generate_series(1, %d)", table,
             strcmp(table, "s1.jobs") ? "" : ", queue", strcmp(table, "s1.jobs") ? "" : ", 'bench'",
             n);
    return exec_sql(c, sql);
}

/* Fresh tables with n queued jobs, vacuumed, for one side of a round. */
static int fresh_jobs(PGconn *c, bool bare, int n)
{
    if (bare)
        return exec_sql(c, "TRUNCATE bench.jobs, bench.results") ||
               insert_jobs(c, n, "bench.jobs") || exec_sql(c, "VACUUM ANALYZE bench.jobs");
    return exec_sql(c, "TRUNCATE s1.jobs CASCADE") || insert_jobs(c, n, "s1.jobs") ||
           exec_sql(c, "VACUUM ANALYZE s1.jobs");
}

/* One side of a round: jobs/s, or -1. */
static double run_side(PGconn *c, const char *db, bool bare, const payload *load, int jobs,
                       int clients, int batch)
{
    if (fresh_jobs(c, bare, jobs)) return -1;
    client *cl = calloc((size_t)clients, sizeof *cl);
    pthread_t *t = calloc((size_t)clients, sizeof *t);
    double t0 = now_s();
    for (int i = 0; i < clients; i++) {
        cl[i] = (client){.db = db, .bare = bare, .batch = batch, .load = load};
        pthread_create(&t[i], NULL, client_main, &cl[i]);
    }
    long done = 0;
    int failed = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(t[i], NULL);
        done += cl[i].done;
        if (cl[i].failed) fprintf(stderr, "queue: client %d: %s\n", i, cl[i].err.msg);
        failed |= cl[i].failed;
    }
    double dt = now_s() - t0;
    free(cl);
    free(t);
    if (!failed && done != jobs) fprintf(stderr, "queue: %ld of %d jobs done\n", done, jobs);
    return failed || done != jobs ? -1 : done / dt;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Rounds of s1d against bare, the side that goes first alternating. */
static int compare(PGconn *c, const char *db, const char *title, const payload *load, int jobs,
                   int clients, int batch, int rounds)
{
    printf("%s, %d jobs a round\n", title, jobs);
    double *ratio = calloc((size_t)rounds, sizeof *ratio);
    for (int r = 0; ratio && r < rounds; r++) {
        double rate[2]; /* [0] s1d, [1] bare */
        for (int k = 0; k < 2; k++) {
            int bare = (r + k) % 2;
            rate[bare] = run_side(c, db, bare, load, jobs, clients, batch);
            if (rate[bare] < 0) {
                free(ratio);
                return -1;
            }
        }
        ratio[r] = rate[0] / rate[1];
        printf("  round %d: s1d %.0f jobs/s, bare %.0f jobs/s, ratio %.2f\n", r + 1, rate[0],
               rate[1], ratio[r]);
    }
    if (!ratio) return -1;
    qsort(ratio, (size_t)rounds, sizeof *ratio, cmp_double);
    printf("  ratio s1d/bare: min %.2f, median %.2f, max %.2f (%d rounds)\n", ratio[0],
           rounds % 2 ? ratio[rounds / 2] : (ratio[rounds / 2 - 1] + ratio[rounds / 2]) / 2,
           ratio[rounds - 1], rounds);
    free(ratio);
    return 0;
}

/* ---- s1d end to end ---------------------------------------------------------------- */

static long count(PGconn *c, const char *sql)
{
    s1_err err = {0};
    _cleanup_pgresult_ PGresult *r = s1_db_exec(c, "count", sql, 0, NULL, &err);
    return r ? atol(PQgetvalue(r, 0, 0)) : -1;
}

/* Starts `s1d --engine noop` on the bench queue, generating rate tokens/s
 * per job (0: instantly); returns its pid. */
static pid_t start_s1d(const char *db, const char *rate)
{
    char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 64);
    if (n <= 0) return -1;
    path[n] = 0;
    char *slash = strrchr(path, '/');
    if (!slash) return -1;
    strcpy(slash, "/../daemon/s1d");
    pid_t pid = fork();
    if (pid == 0) {
        setenv("S1_LOG_LEVEL", "warning", 1); /* no line per job */
        execl(path, "s1d", "--db", db, "--engine", "noop", "--queue", "bench", "--worker-name",
              "bench-s1d", "--max-seqs", "256", "--poll", "1", "--noop-rate", rate, "--heartbeat",
              "0.5", "--lease", "5", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits until sql counts at least want, checking it when a notification
 * arrives (c LISTENs) and at least every second: the check is an indexed
 * read, and the waiting takes no CPU from the daemon measured. */
static int wait_until(PGconn *c, const char *sql, long want, double timeout)
{
    double end = now_s() + timeout;
    struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
    while (now_s() < end) {
        if (count(c, sql) >= want) return 0;
        if (poll(&pfd, 1, 1000) > 0 && !PQconsumeInput(c)) break;
        for (PGnotify *n; (n = PQnotifies(c));)
            PQfreemem(n);
    }
    fprintf(stderr, "queue: timed out waiting for: %s\n", sql);
    return -1;
}

/* Every job of the bench queue has ended: read through the claim index
 * (queued) and the running jobs' index, never the whole table. */
static const char SQL_ALL_ENDED[] =
    "SELECT (NOT EXISTS (SELECT FROM s1.jobs WHERE state = 'queued' AND queue = 'bench')"
    "        AND NOT EXISTS (SELECT FROM s1.jobs WHERE state = 'running'))::int";

/* s1.jobs' updates and HOT updates so far, as the statistics report them. */
static void jobs_updates(PGconn *c, long *upd, long *hot)
{
    exec_sql(c, "SELECT pg_stat_clear_snapshot()");
    *upd = count(c, "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relid = 's1.jobs'::regclass");
    *hot = count(c, "SELECT n_tup_hot_upd FROM pg_stat_user_tables "
                    "WHERE relid = 's1.jobs'::regclass");
}

static int bench_daemon(PGconn *c, int jobs)
{
    if (exec_sql(c, "TRUNCATE s1.jobs CASCADE")) return -1;
    double t0 = now_s();
    if (insert_jobs(c, jobs, "s1.jobs") || wait_until(c, SQL_ALL_ENDED, 1, 300)) return -1;
    double dt = now_s() - t0;
    printf("s1d --engine noop: %d jobs in %.2f s = %.0f jobs/s end to end\n", jobs, dt, jobs / dt);
    return 0;
}

/* Jobs that think for a while (HOT_JOBS of HOT_TOKENS tokens at 100
 * tokens/s, heartbeats every 0.5 s) get lease renewals and progress writes
 * between their claim and their completion: how many of s1.jobs' updates
 * were HOT. The daemon is stopped first, so that its backend has reported
 * its figures (when it exits). */
enum { HOT_JOBS = 50, HOT_TOKENS = 300 };

static int bench_hot(PGconn *c, pid_t pid)
{
    long upd0, hot0, upd1 = 0, hot1 = 0;
    jobs_updates(c, &upd0, &hot0);
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO s1.jobs (problem, queue, policy) SELECT 'bench', 'bench', "
             "'{\"max_think\": %d}' FROM generate_series(1, %d)",
             HOT_TOKENS, HOT_JOBS);
    if (exec_sql(c, sql) || wait_until(c, SQL_ALL_ENDED, 1, 120)) return -1;
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    /* A backend reports at exit, a moment after its client has gone. */
    for (double end = now_s() + 5; now_s() < end && upd1 - upd0 < 2L * HOT_JOBS;) {
        usleep(100000);
        jobs_updates(c, &upd1, &hot1);
    }
    printf("%d jobs of %d tokens at 100 tokens/s: s1.jobs had %ld updates, %ld of them HOT "
           "(%.0f%%; claims and completions change state, which indexes name)\n",
           HOT_JOBS, HOT_TOKENS, upd1 - upd0, hot1 - hot0,
           upd1 > upd0 ? 100.0 * (double)(hot1 - hot0) / (double)(upd1 - upd0) : 0.0);
    return 0;
}

static int bench_latency(PGconn *c, int n)
{
    exec_sql(c, "TRUNCATE s1.jobs CASCADE");
    double *lat = calloc((size_t)n, sizeof *lat);
    for (int i = 0; i < n; i++) {
        if (insert_jobs(c, 1, "s1.jobs") || wait_until(c, SQL_ALL_ENDED, 1, 30)) {
            free(lat);
            return -1;
        }
        usleep(10000); /* idle again */
    }
    s1_err err = {0};
    _cleanup_pgresult_ PGresult *r = s1_db_exec(
        c, "latency", "SELECT extract(epoch FROM started_at - created_at) * 1000 FROM s1.jobs", 0,
        NULL, &err);
    for (int i = 0; r && i < n && i < PQntuples(r); i++)
        lat[i] = atof(PQgetvalue(r, i, 0));
    qsort(lat, (size_t)n, sizeof *lat, cmp_double);
    printf("submit-to-start latency when idle: p50 %.2f ms, p99 %.2f ms (%d jobs)\n", lat[n / 2],
           lat[(n * 99) / 100], n);
    free(lat);
    return r ? 0 : -1;
}

/* ---- setting ----------------------------------------------------------------------- */

/* lscpu's model name, or "unknown CPU". */
static void cpu_name(char *out, size_t cap)
{
    snprintf(out, cap, "unknown CPU");
    FILE *f = popen("lscpu 2>/dev/null", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Model name:", 11)) {
            const char *v = line + 11 + strspn(line + 11, " \t");
            snprintf(out, cap, "%.*s", (int)strcspn(v, "\n"), v);
        }
    if (f) pclose(f);
}

static void print_setting(PGconn *c, int clients, int batch, int rounds)
{
    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    s1_err err = {0};
    _cleanup_pgresult_ PGresult *r = s1_db_exec(
        c, "settings",
        "SELECT current_setting('server_version'), current_setting('fsync'),"
        "       current_setting('synchronous_commit'), current_setting('shared_buffers'),"
        "       current_setting('default_toast_compression')",
        0, NULL, &err);
    printf("queue benchmark on %s (%ld CPUs online), PostgreSQL %s (fsync=%s, "
           "synchronous_commit=%s, shared_buffers=%s, default_toast_compression=%s)\n",
           cpu, sysconf(_SC_NPROCESSORS_ONLN), r ? PQgetvalue(r, 0, 0) : "?",
           r ? PQgetvalue(r, 0, 1) : "?", r ? PQgetvalue(r, 0, 2) : "?",
           r ? PQgetvalue(r, 0, 3) : "?", r ? PQgetvalue(r, 0, 4) : "?");
    printf("%d clients, claim batches of %d, %d interleaved rounds; jobs/s are noisy on a "
           "shared machine, the ratios of a round's two sides are what compare\n",
           clients, batch, rounds);
}

/* tests/pg.sh start|stop DIR, for the throwaway cluster. */
static int pg_sh(const char *cmd, const char *dir)
{
    char line[8192];
    snprintf(line, sizeof line, "'%s/tests/pg.sh' %s '%s'", S1_SOURCE_ROOT, cmd, dir);
    return system(line);
}

typedef struct {
    int jobs, big_jobs, clients, batch, rounds, latency;
} sizes;

/* Starts a noop daemon (rate tokens/s) and waits until it serves. */
static pid_t serving_s1d(PGconn *c, const char *db, const char *rate)
{
    pid_t pid = start_s1d(db, rate);
    if (pid > 0 && !wait_until(c,
                               "SELECT count(*) FROM s1.workers WHERE name = 'bench-s1d' "
                               "AND state = 'running' AND heartbeat_at > now() - interval '2 s'",
                               1, 30))
        return pid;
    if (pid > 0) kill(pid, SIGKILL), waitpid(pid, NULL, 0);
    return -1;
}

static int run_daemon(PGconn *c, const char *db, const sizes *z)
{
    if (exec_sql(c, "LISTEN s1_progress")) return -1;
    pid_t pid = serving_s1d(c, db, "0");
    if (pid < 0) return -1;
    int rc = bench_daemon(c, z->jobs) || bench_latency(c, z->latency);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    if (rc || exec_sql(c, "TRUNCATE s1.jobs CASCADE")) return -1;
    pid = serving_s1d(c, db, "100");
    return pid < 0 ? -1 : bench_hot(c, pid);
}

static int run(const char *db, const sizes *z)
{
    s1_err err = {0};
    _cleanup_pgconn_ PGconn *c = s1_db_connect(db, &err);
    if (!c || s1_db_migrate(c, NULL, &err)) {
        fprintf(stderr, "queue: %s\n", err.msg);
        return 1;
    }
    payload empty, big;
    int rc = payload_init(&empty, false) || payload_init(&big, true) ||
             exec_sql(c, "SET client_min_messages = warning");
    for (size_t i = 0; !rc && i < sizeof BARE_SCHEMA / sizeof *BARE_SCHEMA; i++)
        rc = exec_sql(c, BARE_SCHEMA[i]);
    if (!rc) {
        print_setting(c, z->clients, z->batch, z->rounds);
        rc =
            compare(c, db, "(a) empty results: s1d claim+complete vs bare SKIP LOCKED claim+UPDATE",
                    &empty, z->jobs, z->clients, z->batch, z->rounds) ||
            compare(c, db,
                    "(b) 64 KB traces + 16k token ids: s1d claim+complete vs bare claim+UPDATE "
                    "+ INSERT of the same rows",
                    &big, z->big_jobs, z->clients, z->batch, z->rounds) ||
            run_daemon(c, db, z);
    }
    payload_free(&empty);
    payload_free(&big);
    exec_sql(c, "DROP SCHEMA IF EXISTS bench CASCADE");
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'},       {"jobs", required_argument, 0, 'j'},
        {"big-jobs", required_argument, 0, 'g'}, {"clients", required_argument, 0, 'c'},
        {"batch", required_argument, 0, 'b'},    {"rounds", required_argument, 0, 'r'},
        {"latency", required_argument, 0, 'l'},  {0, 0, 0, 0}};
    const char *db = NULL;
    sizes z = {
        .jobs = 5000, .big_jobs = 200, .clients = 4, .batch = 50, .rounds = 5, .latency = 100};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int v = optarg ? atoi(optarg) : 0;
        if (ch == 'd')
            db = optarg;
        else if (ch == 'j')
            z.jobs = v;
        else if (ch == 'g')
            z.big_jobs = v;
        else if (ch == 'c')
            z.clients = v;
        else if (ch == 'b')
            z.batch = v;
        else if (ch == 'r')
            z.rounds = v;
        else if (ch == 'l')
            z.latency = v;
        else
            return fprintf(stderr, "usage: queue [--db CONNINFO] [--jobs N] [--big-jobs N] "
                                   "[--clients N] [--batch N] [--rounds N] [--latency N]\n"),
                   2;
    }
    if (z.jobs < 1 || z.big_jobs < 1 || z.clients < 1 || z.batch < 1 || z.rounds < 1 ||
        z.latency < 2)
        return fprintf(stderr, "queue: --jobs, --big-jobs, --clients, --batch, --rounds must be "
                               ">= 1, --latency >= 2\n"),
               2;
    s1_log_set_level(S1_LOG_WARNING);
    if (db) return run(db, &z);
    char dir[] = "/tmp/s1bench.XXXXXX";
    if (!mkdtemp(dir) || pg_sh("start", dir))
        return fprintf(stderr, "queue: cannot start PostgreSQL\n"), 1;
    char conninfo[256];
    snprintf(conninfo, sizeof conninfo, "host=%s user=s1 dbname=postgres", dir);
    int rc = run(conninfo, &z);
    pg_sh("stop", dir);
    return rc;
}
