#include "conn.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

enum {
    BACKOFF_MIN_MS = 100,
    BACKOFF_MAX_MS = 5000,
    CONNECT_TIMEOUT_MS = 10000,
    STATEMENT_TIMEOUT_MS = 30000,
    MAX_PREPARED = 32 /* statement names kept per connection; store/queue.c has 7 */
};

typedef struct op {
    s1_queue_stmt stmt;
    s1d_conn_cb cb;
    void *ud;
    bool preparing; /* in flight is its PREPARE; the execute follows */
    struct op *next;
} op;

typedef enum { C_DOWN, C_CONNECTING, C_UP } conn_state;

struct s1d_conn {
    uv_loop_t *loop;
    char *conninfo, *listen_sql;
    s1d_conn_events ev;
    PGconn *pg;      /* owned */
    uv_poll_t *poll; /* owned; closed and replaced when the socket changes */
    int poll_fd;
    uv_timer_t retry; /* reconnect backoff, and the in-flight statement's deadline */
    int backoff_ms;
    conn_state state;
    bool listening; /* the listen_sql statement is the one in flight */
    bool closing;
    op *head, *tail; /* FIFO; head is in flight when sent */
    bool head_sent;
    PGresult *result; /* the in-flight statement's result so far (the first error wins) */
    uint64_t sent_at;
    const char *prepared[MAX_PREPARED]; /* statement names prepared on this connection */
    int n_prepared;
};

static void start_connect(s1d_conn *c);
static void reconnect(uv_timer_t *t)
{
    start_connect(t->data);
}
/* Socket events: the connect handshake, pending output, then input. */
static void on_poll(uv_poll_t *h, int status, int events);

static void free_poll(uv_handle_t *h)
{
    free(h);
}

static void stop_poll(s1d_conn *c)
{
    if (!c->poll) return;
    uv_close((uv_handle_t *)c->poll, free_poll);
    c->poll = NULL;
    c->poll_fd = -1;
}

/* Watches the socket for events; a new socket needs a new uv_poll. */
static void watch(s1d_conn *c, int events)
{
    int fd = PQsocket(c->pg);
    if (c->poll && c->poll_fd != fd) stop_poll(c);
    if (!c->poll) {
        c->poll = malloc(sizeof *c->poll);
        if (!c->poll || uv_poll_init(c->loop, c->poll, fd)) {
            free(c->poll);
            c->poll = NULL;
            return;
        }
        c->poll->data = c;
        c->poll_fd = fd;
    }
    uv_poll_start(c->poll, events, on_poll);
}

static op *pop(s1d_conn *c)
{
    op *o = c->head;
    if (o) c->head = o->next;
    if (!c->head) c->tail = NULL;
    c->head_sent = false;
    return o;
}

static void finish_op(op *o, const PGresult *r, const char *error)
{
    if (o->cb) o->cb(o->ud, r, error);
    s1_queue_stmt_clear(&o->stmt);
    free(o);
}

/* The connection broke: everything pending fails, and a reconnect is
 * scheduled with doubling backoff. */
static void lost(s1d_conn *c, const char *why)
{
    bool was_up = c->state == C_UP;
    stop_poll(c);
    if (c->pg) PQfinish(c->pg);
    c->pg = NULL;
    if (c->result) PQclear(c->result);
    c->result = NULL;
    c->state = C_DOWN;
    c->listening = false;
    c->n_prepared = 0; /* prepared statements end with their session */
    for (op *o; (o = pop(c));)
        finish_op(o, NULL, why);
    if (c->closing) return;
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (c->backoff_ms > BACKOFF_MAX_MS) c->backoff_ms = BACKOFF_MAX_MS;
    if (was_up)
        c->ev.on_down(c->ev.ud, why);
    else
        log_warning("database: cannot connect (%s); retrying in %.1f s", why,
                    c->backoff_ms / 1000.0);
    uv_timer_start(&c->retry, reconnect, (uint64_t)c->backoff_ms, 0);
}

static void pg_lost(s1d_conn *c)
{
    char why[256];
    const char *m = c->pg ? PQerrorMessage(c->pg) : "";
    snprintf(why, sizeof why, "%s", *m ? m : "connection closed");
    why[strcspn(why, "\n")] = 0;
    lost(c, why);
}

/* A server that does not answer (network cut) must not hang the connect. */
static void connect_deadline(uv_timer_t *t)
{
    lost(t->data, "connect timed out");
}

static void statement_deadline(uv_timer_t *t)
{
    s1d_conn *c = t->data;
    log_warning("database: no answer to a statement within %d s; reconnecting",
                STATEMENT_TIMEOUT_MS / 1000);
    lost(c, "statement timed out");
}

static bool is_prepared(const s1d_conn *c, const char *name)
{
    for (int i = 0; i < c->n_prepared; i++)
        if (!strcmp(c->prepared[i], name)) return true;
    return false;
}

/* Sends o's statement: planned once per connection (a PREPARE the first
 * time, then only executes), unless it has no name (the LISTENs, which
 * only the simple protocol runs several of) or the name table is full. */
static int send_stmt(s1d_conn *c, op *o)
{
    const s1_queue_stmt *s = &o->stmt;
    const char *const *params = (const char *const *)s->params;
    if (!s->name) return PQsendQuery(c->pg, s->sql);
    if (is_prepared(c, s->name))
        return PQsendQueryPrepared(c->pg, s->name, s->n_params, params, NULL, NULL, 0);
    if (c->n_prepared == MAX_PREPARED)
        return PQsendQueryParams(c->pg, s->sql, s->n_params, NULL, params, NULL, NULL, 0);
    o->preparing = true;
    return PQsendPrepare(c->pg, s->name, s->sql, 0, NULL);
}

/* Sends the next statement when none is in flight. */
static void send_next(s1d_conn *c)
{
    if (c->state != C_UP || c->head_sent || !c->head) return;
    int ok = send_stmt(c, c->head);
    if (!ok) return pg_lost(c);
    c->head_sent = true;
    uv_timer_start(&c->retry, statement_deadline, STATEMENT_TIMEOUT_MS, 0);
    int f = PQflush(c->pg);
    if (f < 0) return pg_lost(c);
    watch(c, UV_READABLE | (f ? UV_WRITABLE : 0));
}

static void became_up(s1d_conn *c)
{
    c->backoff_ms = 0;
    c->listening = false;
    c->ev.on_up(c->ev.ud);
    send_next(c);
}

/* The listen statement's result: the connection is usable once it is in. */
static void listen_done(void *ud, const PGresult *r, const char *error)
{
    s1d_conn *c = ud;
    if (r) return became_up(c);
    /* A LISTEN refused on a live connection: start over on a new one. */
    if (c->state == C_UP) lost(c, error);
}

static void connected(s1d_conn *c)
{
    uv_timer_stop(&c->retry);
    PQsetnonblocking(c->pg, 1);
    c->state = C_UP;
    if (!c->listen_sql) return became_up(c);
    /* The LISTEN goes first, ahead of whatever was queued meanwhile. */
    op *o = calloc(1, sizeof *o);
    if (!o) return lost(c, "out of memory");
    o->stmt.what = "listen";
    o->stmt.sql = c->listen_sql;
    o->cb = listen_done;
    o->ud = c;
    o->next = c->head;
    c->head = o;
    if (!c->tail) c->tail = o;
    c->listening = true;
    send_next(c);
}

static void connect_step(s1d_conn *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        return watch(c, UV_READABLE);
    case PGRES_POLLING_WRITING:
        return watch(c, UV_WRITABLE);
    case PGRES_POLLING_OK:
        return connected(c);
    default:
        return pg_lost(c);
    }
}

static void start_connect(s1d_conn *c)
{
    c->pg = PQconnectStart(c->conninfo);
    if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) return pg_lost(c);
    c->state = C_CONNECTING;
    uv_timer_start(&c->retry, connect_deadline, CONNECT_TIMEOUT_MS, 0);
    connect_step(c);
}

/* Reads what arrived: the in-flight statement's results, then notifications. */
static void read_input(s1d_conn *c)
{
    if (!PQconsumeInput(c->pg)) return pg_lost(c);
    while (c->head_sent && !PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (r) {
            bool error =
                PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK;
            bool keep = !c->result || (error && PQresultStatus(c->result) != PGRES_FATAL_ERROR);
            if (keep) {
                if (c->result) PQclear(c->result);
                c->result = r;
            } else {
                PQclear(r);
            }
            continue;
        }
        uv_timer_stop(&c->retry);
        PGresult *res = c->result;
        c->result = NULL;
        if (c->head->preparing && res && PQresultStatus(res) == PGRES_COMMAND_OK) {
            PQclear(res);
            c->prepared[c->n_prepared++] = c->head->stmt.name;
            c->head->preparing = false;
            c->head_sent = false;
            send_next(c); /* the execute, as the same op */
            continue;
        }
        op *o = pop(c);
        char msg[512] = "";
        if (!res || PQresultStatus(res) == PGRES_FATAL_ERROR) {
            snprintf(msg, sizeof msg, "%s: %s", o->stmt.what,
                     res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg));
            msg[strcspn(msg, "\n")] = 0;
            finish_op(o, NULL, msg);
        } else {
            finish_op(o, res, NULL);
        }
        if (res) PQclear(res);
        if (c->state != C_UP) return;
        send_next(c);
    }
    for (PGnotify *n; c->pg && (n = PQnotifies(c->pg));) {
        if (c->ev.on_notify) c->ev.on_notify(c->ev.ud, n->relname, n->extra);
        PQfreemem(n);
    }
    if (c->pg && PQstatus(c->pg) == CONNECTION_BAD) pg_lost(c);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    s1d_conn *c = h->data;
    if (status < 0) return pg_lost(c);
    if (c->state == C_CONNECTING) return connect_step(c);
    if (events & UV_WRITABLE) {
        int f = PQflush(c->pg);
        if (f < 0) return pg_lost(c);
        watch(c, UV_READABLE | (f ? UV_WRITABLE : 0));
    }
    if (events & UV_READABLE) read_input(c);
}

s1d_conn *s1d_conn_new(uv_loop_t *loop, const char *conninfo, const char *listen_sql,
                       const s1d_conn_events *ev)
{
    s1d_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->loop = loop;
    c->conninfo = strdup(conninfo);
    c->listen_sql = listen_sql ? strdup(listen_sql) : NULL;
    c->ev = *ev;
    c->poll_fd = -1;
    uv_timer_init(loop, &c->retry);
    c->retry.data = c;
    start_connect(c);
    return c;
}

void s1d_conn_send(s1d_conn *c, s1_queue_stmt *s, s1d_conn_cb cb, void *ud)
{
    op *o = calloc(1, sizeof *o);
    if (!o) {
        s1_queue_stmt_clear(s);
        if (cb) cb(ud, NULL, "out of memory");
        return;
    }
    o->stmt = *s;
    memset(s, 0, sizeof *s);
    o->cb = cb;
    o->ud = ud;
    if (c->state == C_DOWN) {
        finish_op(o, NULL, "not connected to the database");
        return;
    }
    if (c->tail)
        c->tail->next = o;
    else
        c->head = o;
    c->tail = o;
    send_next(c);
}

bool s1d_conn_is_up(const s1d_conn *c)
{
    return c->state == C_UP && !c->listening;
}

static void free_conn(uv_handle_t *h)
{
    s1d_conn *c = h->data;
    free(c->conninfo);
    free(c->listen_sql);
    free(c);
}

void s1d_conn_close(s1d_conn *c)
{
    c->closing = true;
    lost(c, "closing");
    uv_close((uv_handle_t *)&c->retry, free_conn);
}
