/* daemon/conn.h — one PostgreSQL connection driven by the libuv loop:
 * asynchronous connect (PQconnectStart) with reconnect backoff, statements
 * sent one at a time from a FIFO, each prepared once per connection and then
 * only executed (PQsendPrepare, PQsendQueryPrepared), LISTEN notifications
 * (PQnotifies), all from a uv_poll on PQsocket. Nothing here blocks.
 * When the connection is lost, every statement queued or in flight fails
 * (its callback gets NULL): callers keep what must not be lost and send it
 * again from on_up. */
#ifndef S1D_CONN_H
#define S1D_CONN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <uv.h>

#include "queue.h"

typedef struct s1d_conn s1d_conn;

/* r is the statement's result (owned by the connection, cleared after the
 * callback), or NULL with error set when it failed or the connection broke. */
typedef void (*s1d_conn_cb)(void *ud, const PGresult *r, const char *error);

typedef struct {
    void (*on_up)(void *ud);                    /* connected, LISTENs done */
    void (*on_down)(void *ud, const char *why); /* lost; reconnecting */
    void (*on_notify)(void *ud, const char *channel, const char *payload); /* may be NULL */
    void *ud;
} s1d_conn_events;

/* Starts connecting at once. listen_sql (may be NULL) runs first on every
 * connection, e.g. "LISTEN s1_jobs; LISTEN s1_cancel". */
s1d_conn *s1d_conn_new(uv_loop_t *loop, const char *conninfo, const char *listen_sql,
                       const s1d_conn_events *ev);

/* Queues a statement (taken: cleared here whatever happens). cb may be NULL. */
void s1d_conn_send(s1d_conn *c, s1_queue_stmt *s, s1d_conn_cb cb, void *ud);

bool s1d_conn_is_up(const s1d_conn *c);

/* Fails what is pending, closes the socket and frees c once the loop has
 * run its close callbacks. */
void s1d_conn_close(s1d_conn *c);

#endif
