/* bench/queue — the queue protocol's speed on PostgreSQL (a benchmark, not a
 * test: it prints figures and asserts nothing).
 *
 *   queue [--db CONNINFO] [--jobs N] [--clients N] [--batch N] [--latency N]
 *
 * 1. claim + complete: N jobs are inserted, then --clients threads, each on
 *    its own connection, claim --batch jobs at a time and complete them with
 *    one (empty) result row each, in batches, with the statements s1d uses
 *    (store/queue.h). Prints jobs/s and result rows written.
 * 2. s1d end to end: N jobs through `s1d --engine noop`: jobs/s.
 * 3. submit-to-start latency when idle: --latency jobs are inserted one at a
 *    time into the queue of an idle `s1d --engine noop`; the latency is the
 *    claim's started_at minus the insert's created_at (both server clock).
 *    Prints p50 and p99.
 * Without --db it starts a throwaway cluster with tests/pg.sh. */
#include <getopt.h>
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

typedef struct {
    const char *db;
    int batch;
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

/* Completes claimed jobs with one empty result row each. */
static int complete_all(PGconn *c, const s1_queue_job *jobs, int n, s1_err *err)
{
    s1_queue_sample sample = {.trace = "", .answer = "", .grade = -1, .stop_reason = "eos"};
    s1_queue_done *d = calloc((size_t)n, sizeof *d);
    if (!d) return s1_errf(err, "out of memory");
    for (int i = 0; i < n; i++)
        d[i] = (s1_queue_done){.id = jobs[i].id,
                               .attempt = jobs[i].attempt,
                               .end = S1_QUEUE_SUCCEEDED,
                               .samples = &sample,
                               .n_samples = 1};
    s1_queue_origin o = {.model = "noop", .backend = "noop"};
    s1_queue_stmt s;
    int rc = s1_queue_complete(&s, &WORKER, &o, d, n, err);
    free(d);
    if (rc) return -1;
    _cleanup_pgresult_ PGresult *r = s1_queue_exec(c, &s, err);
    s1_queue_stmt_clear(&s);
    if (!r) return -1;
    if (PQntuples(r) != n) return s1_errf(err, "complete wrote %d of %d jobs", PQntuples(r), n);
    return 0;
}

static void *client_main(void *arg)
{
    client *cl = arg;
    _cleanup_pgconn_ PGconn *c = s1_db_connect(cl->db, &cl->err);
    cl->failed = !c;
    while (!cl->failed) {
        s1_queue_stmt s;
        s1_queue_claim(&s, &WORKER, cl->batch);
        _cleanup_pgresult_ PGresult *r = s1_queue_exec(c, &s, &cl->err);
        s1_queue_stmt_clear(&s);
        s1_queue_job *jobs = NULL;
        int n = 0;
        if (!r || s1_queue_parse_claim(r, &jobs, &n, &cl->err))
            cl->failed = 1;
        else if (n && complete_all(c, jobs, n, &cl->err))
            cl->failed = 1;
        s1_queue_jobs_free(jobs, n);
        if (!n) break;
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

static int insert_jobs(PGconn *c, int n, const char *queue)
{
    char sql[256];
    snprintf(
        sql, sizeof sql,
        "INSERT INTO s1.jobs (problem, queue) SELECT 'bench', '%s' FROM generate_series(1, %d)",
        queue, n);
    return exec_sql(c, sql);
}

static long count(PGconn *c, const char *sql)
{
    s1_err err = {0};
    _cleanup_pgresult_ PGresult *r = s1_db_exec(c, "count", sql, 0, NULL, &err);
    return r ? atol(PQgetvalue(r, 0, 0)) : -1;
}

static int bench_claims(PGconn *c, const char *db, int jobs, int clients, int batch)
{
    if (exec_sql(c, "TRUNCATE s1.jobs, s1.results") || insert_jobs(c, jobs, "bench")) return -1;
    exec_sql(c, "VACUUM ANALYZE s1.jobs");
    client *cl = calloc((size_t)clients, sizeof *cl);
    pthread_t *t = calloc((size_t)clients, sizeof *t);
    double t0 = now_s();
    for (int i = 0; i < clients; i++) {
        cl[i] = (client){.db = db, .batch = batch};
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
    printf("claim+complete: %ld jobs in %.2f s = %.0f jobs/s (%d clients, batches of %d); "
           "%ld result rows written\n",
           done, dt, done / dt, clients, batch, count(c, "SELECT count(*) FROM s1.results"));
    free(cl);
    free(t);
    return failed ? -1 : 0;
}

/* Starts `s1d --engine noop` on the bench queue; returns its pid. */
static pid_t start_s1d(const char *db)
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
              "bench-s1d", "--max-seqs", "256", "--poll", "1", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int wait_until(PGconn *c, const char *sql, long want, double timeout)
{
    double end = now_s() + timeout;
    while (now_s() < end) {
        if (count(c, sql) >= want) return 0;
        usleep(2000);
    }
    fprintf(stderr, "queue: timed out waiting for: %s\n", sql);
    return -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int bench_daemon(PGconn *c, int jobs)
{
    exec_sql(c, "TRUNCATE s1.jobs, s1.results");
    if (insert_jobs(c, jobs, "bench")) return -1;
    double t0 = now_s();
    char want[64];
    snprintf(want, sizeof want, "%d", jobs);
    int rc = wait_until(c, "SELECT count(*) FROM s1.jobs WHERE state = 'succeeded'", jobs, 300);
    double dt = now_s() - t0;
    if (!rc)
        printf("s1d --engine noop: %d jobs in %.2f s = %.0f jobs/s end to end\n", jobs, dt,
               jobs / dt);
    return rc;
}

static int bench_latency(PGconn *c, int n)
{
    exec_sql(c, "TRUNCATE s1.jobs, s1.results");
    double *lat = calloc((size_t)n, sizeof *lat);
    for (int i = 0; i < n; i++) {
        if (insert_jobs(c, 1, "bench") ||
            wait_until(c, "SELECT count(*) FROM s1.jobs WHERE state = 'succeeded'", i + 1, 30)) {
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

/* tests/pg.sh start|stop DIR, for the throwaway cluster. */
static int pg_sh(const char *cmd, const char *dir)
{
    char line[8192];
    snprintf(line, sizeof line, "'%s/tests/pg.sh' %s '%s'", S1_SOURCE_ROOT, cmd, dir);
    return system(line);
}

static int run(const char *db, int jobs, int clients, int batch, int latency_jobs)
{
    s1_err err = {0};
    _cleanup_pgconn_ PGconn *c = s1_db_connect(db, &err);
    if (!c || s1_db_migrate(c, NULL, &err)) {
        fprintf(stderr, "queue: %s\n", err.msg);
        return 1;
    }
    if (bench_claims(c, db, jobs, clients, batch)) return 1;
    pid_t pid = start_s1d(db);
    if (pid < 0 || wait_until(c,
                              "SELECT count(*) FROM s1.workers WHERE name = 'bench-s1d' "
                              "AND state = 'running'",
                              1, 30)) {
        if (pid > 0) kill(pid, SIGKILL);
        return 1;
    }
    int rc = bench_daemon(c, jobs) || bench_latency(c, latency_jobs);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'},      {"jobs", required_argument, 0, 'j'},
        {"clients", required_argument, 0, 'c'}, {"batch", required_argument, 0, 'b'},
        {"latency", required_argument, 0, 'l'}, {0, 0, 0, 0}};
    const char *db = NULL;
    int jobs = 50000, clients = 4, batch = 50, latency = 200, ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'd')
            db = optarg;
        else if (ch == 'j')
            jobs = atoi(optarg);
        else if (ch == 'c')
            clients = atoi(optarg);
        else if (ch == 'b')
            batch = atoi(optarg);
        else if (ch == 'l')
            latency = atoi(optarg);
        else
            return fprintf(stderr, "usage: queue [--db CONNINFO] [--jobs N] [--clients N] "
                                   "[--batch N] [--latency N]\n"),
                   2;
    }
    if (jobs < 1 || clients < 1 || batch < 1 || latency < 2)
        return fprintf(stderr, "queue: --jobs, --clients, --batch must be >= 1, --latency >= 2\n"),
               2;
    s1_log_set_level(S1_LOG_WARNING);
    if (db) return run(db, jobs, clients, batch, latency);
    char dir[] = "/tmp/s1bench.XXXXXX";
    if (!mkdtemp(dir) || pg_sh("start", dir))
        return fprintf(stderr, "queue: cannot start PostgreSQL\n"), 1;
    char conninfo[256];
    snprintf(conninfo, sizeof conninfo, "host=%s user=s1 dbname=postgres", dir);
    int rc = run(conninfo, jobs, clients, batch, latency);
    pg_sh("stop", dir);
    return rc;
}
