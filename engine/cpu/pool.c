#include "pool.h"

#include <stdbool.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Iterations a waiting thread spins (with a pause) before it sleeps: long
 * enough to cover the gap between two steps of one forward, short enough not
 * to burn a core between forwards. */
#define SPIN_ITERS (1 << 14)

typedef struct {
    s1_pool *pool;
    int tid;
    pthread_t thread;
} worker;

struct s1_pool {
    int n;           /* threads in all, the caller included */
    worker *workers; /* [n - 1], owned */
    int n_started;
    s1_pool_fn *fn;
    void *ctx;
    atomic_uint gen; /* bumped once per run */
    atomic_int done; /* workers finished in this run */
    atomic_bool stop;
    pthread_mutex_t lock;
    pthread_cond_t start_cv, done_cv;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Waits until the generation moves past `seen` or the pool stops. */
static unsigned wait_start(s1_pool *p, unsigned seen)
{
    for (int i = 0; i < SPIN_ITERS; i++) {
        unsigned g = atomic_load(&p->gen);
        if (g != seen || atomic_load(&p->stop)) return g;
        cpu_relax();
    }
    pthread_mutex_lock(&p->lock);
    while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
        pthread_cond_wait(&p->start_cv, &p->lock);
    pthread_mutex_unlock(&p->lock);
    return atomic_load(&p->gen);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    s1_pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        seen = wait_start(p, seen);
        if (atomic_load(&p->stop)) return NULL;
        p->fn(p->ctx, w->tid, p->n);
        if (atomic_fetch_add(&p->done, 1) + 1 == p->n - 1) {
            pthread_mutex_lock(&p->lock);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->lock);
        }
    }
}

s1_pool *s1_pool_new(int n_threads, s1_err *err)
{
    s1_pool *p = calloc(1, sizeof *p);
    if (!p) {
        s1_errf(err, "cpu: out of memory for the thread pool");
        return NULL;
    }
    p->n = n_threads < 1 ? 1 : n_threads;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->start_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    p->workers = calloc((size_t)p->n, sizeof *p->workers);
    if (!p->workers) {
        s1_pool_free(p);
        s1_errf(err, "cpu: out of memory for the thread pool");
        return NULL;
    }
    for (int i = 1; i < p->n; i++) {
        worker *w = &p->workers[i - 1];
        w->pool = p;
        w->tid = i;
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc) {
            s1_pool_free(p);
            s1_errf(err, "cpu: cannot start worker thread %d of %d: %s", i, n_threads,
                    strerror(rc));
            return NULL;
        }
        p->n_started = i;
    }
    return p;
}

void s1_pool_run(s1_pool *p, s1_pool_fn *fn, void *ctx)
{
    if (p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->done, 0);
    pthread_mutex_lock(&p->lock);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->start_cv);
    pthread_mutex_unlock(&p->lock);
    fn(ctx, 0, p->n);
    for (int i = 0; i < SPIN_ITERS && atomic_load(&p->done) < p->n - 1; i++)
        cpu_relax();
    if (atomic_load(&p->done) < p->n - 1) {
        pthread_mutex_lock(&p->lock);
        while (atomic_load(&p->done) < p->n - 1)
            pthread_cond_wait(&p->done_cv, &p->lock);
        pthread_mutex_unlock(&p->lock);
    }
}

int s1_pool_size(const s1_pool *p)
{
    return p->n;
}

void s1_pool_free(s1_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->start_cv);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n_started; i++)
        pthread_join(p->workers[i].thread, NULL);
    free(p->workers);
    pthread_cond_destroy(&p->start_cv);
    pthread_cond_destroy(&p->done_cv);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
