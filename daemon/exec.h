/* daemon/exec.h — the engine thread. It owns the runner (runner.h) and calls
 * its step in a loop; the event loop hands it requests and cancels, and it
 * hands back results, rejections and progress. The two sides exchange work
 * through mutex-protected lists and uv_async_send: neither ever waits for
 * the other to finish anything. */
#ifndef S1D_EXEC_H
#define S1D_EXEC_H

#include <stdint.h>
#include <uv.h>

#include "runner.h"

typedef enum {
    S1D_EV_DONE,     /* result: a request finished */
    S1D_EV_REJECTED, /* error: the engine refused the request (add failed) */
    S1D_EV_PROGRESS, /* thinking, generated: tokens so far (sent at most every 250 ms) */
    S1D_EV_BROKEN,   /* error: the engine failed; it runs nothing more */
    S1D_EV_SAVED,    /* saved: where a request stands (at most every save interval) */
} s1d_event_kind;

typedef struct s1d_event {
    s1d_event_kind kind;
    uint64_t tag;
    s1_result *result; /* owned by the event (s1d_exec_event_free) */
    s1_resume *saved;  /* owned by the event, like result */
    int thinking, generated;
    char error[512];
    struct s1d_event *next;
} s1d_event;

typedef struct s1d_exec s1d_exec;

/* Starts the engine thread on runner r (not owned). wake(ud) runs on the
 * loop thread whenever events are waiting (call s1d_exec_take). */
s1d_exec *s1d_exec_start(s1d_runner *r, uv_loop_t *loop, void (*wake)(void *ud), void *ud,
                         s1_err *err);

/* Queues a request. The strings req points to must live until its DONE or
 * REJECTED event has been taken. Returns -1 when out of memory. */
int s1d_exec_add(s1d_exec *x, const s1_request *req);
void s1d_exec_cancel(s1d_exec *x, uint64_t tag);

/* Every event since the last call, oldest first; the caller owns the list. */
s1d_event *s1d_exec_take(s1d_exec *x);
void s1d_exec_event_free(s1d_exec *x, s1d_event *ev);

/* Saves every request whose tokens changed, every ms milliseconds (0: never). */
void s1d_exec_save_every(s1d_exec *x, int ms);

/* Requests the engine could take now, less those queued to it. */
int s1d_exec_capacity(s1d_exec *x);

/* Milliseconds since the engine thread last finished a step or idle-waited:
 * large when it is stuck (the systemd watchdog stops being fed). */
uint64_t s1d_exec_stalled_ms(s1d_exec *x);

/* Stops and joins the thread (requests in flight are dropped), frees x once
 * the loop has closed its async handle. */
void s1d_exec_stop(s1d_exec *x);

#endif
