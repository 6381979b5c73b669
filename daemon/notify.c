#include "notify.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "notify_socket.h"

enum { MAX_WAITING = 8 }; /* state changes waiting for room: a few at most */

struct s1d_notify {
    s1d_exec *exec; /* not owned */
    uv_timer_t watchdog;
    uint64_t watchdog_usec; /* systemd's WatchdogSec= */
    bool ready_sent;
    s1d_notify_socket *sock;       /* owned; NULL without $NOTIFY_SOCKET */
    char waiting[MAX_WAITING][96]; /* state changes not sent yet, oldest first */
    int n_waiting;
    long long dropped; /* STATUS= and WATCHDOG=1 the full socket refused */
};

s1d_notify *s1d_notify_new(uv_loop_t *loop, s1d_exec *exec)
{
    s1d_notify *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->exec = exec;
    n->sock = s1d_notify_socket_open();
    uv_timer_init(loop, &n->watchdog);
    n->watchdog.data = n;
    return n;
}

/* State changes go out in order, before anything newer. */
static bool send_waiting(s1d_notify *n)
{
    int sent = 0;
    while (sent < n->n_waiting && s1d_notify_socket_send(n->sock, n->waiting[sent]))
        sent++;
    memmove(n->waiting, n->waiting[sent], (size_t)(n->n_waiting - sent) * sizeof n->waiting[0]);
    n->n_waiting -= sent;
    return n->n_waiting == 0;
}

/* A state change (READY, RELOADING, STOPPING) must arrive: it waits for
 * room; the oldest is given up only when too many wait. */
static void send_state(s1d_notify *n, const char *msg)
{
    if (send_waiting(n) && s1d_notify_socket_send(n->sock, msg)) return;
    if (n->n_waiting == MAX_WAITING) {
        log_warning("systemd's notify socket is full; %s was not sent", n->waiting[0]);
        memmove(n->waiting, n->waiting[1], (MAX_WAITING - 1) * sizeof n->waiting[0]);
        n->n_waiting--;
    }
    snprintf(n->waiting[n->n_waiting++], sizeof n->waiting[0], "%s", msg);
}

/* STATUS= and WATCHDOG=1 are repeated anyway: dropped when there is no room. */
static void send_figure(s1d_notify *n, const char *msg)
{
    if (send_waiting(n) && s1d_notify_socket_send(n->sock, msg)) return;
    if (n->dropped++ == 0)
        log_warning("systemd's notify socket is full (its reader lags); dropping status "
                    "and watchdog messages until it reads again");
}

/* The watchdog is fed only while the engine thread finishes steps or
 * idle-waits: a hung forward gets the daemon restarted. */
static void on_watchdog_timer(uv_timer_t *t)
{
    s1d_notify *n = t->data;
    if (s1d_exec_stalled_ms(n->exec) * 1000 < n->watchdog_usec)
        send_figure(n, "WATCHDOG=1");
    else
        log_warning("engine thread stalled for %" PRIu64 " ms; not feeding the watchdog",
                    s1d_exec_stalled_ms(n->exec));
}

/* Fed four times a period, so one late tick does not get the daemon killed. */
void s1d_notify_start_watchdog(s1d_notify *n)
{
    if (sd_watchdog_enabled(0, &n->watchdog_usec) > 0) {
        uint64_t every = n->watchdog_usec / 4000;
        uv_timer_start(&n->watchdog, on_watchdog_timer, every ? every : 1, every ? every : 1);
    }
}

/* Marked before it is sent: STATUS= may follow at once. */
void s1d_notify_ready(s1d_notify *n)
{
    n->ready_sent = true;
    send_state(n, "READY=1");
}

/* The daemon says "ready" in its log once, with the first READY=1. */
bool s1d_notify_is_ready(const s1d_notify *n)
{
    return n->ready_sent;
}

/* STATUS= follows READY=1: before it, systemd shows "activating". */
void s1d_notify_status(s1d_notify *n, const s1d_status *s)
{
    if (!n->ready_sent) return;
    char msg[256];
    snprintf(msg, sizeof msg, "STATUS=%s%d jobs running, %lld done, %.0f tokens/s, database %s",
             s->draining ? "draining: " : "", s->running, s->done, s->tokens_per_s,
             s->db_up ? "up" : "unreachable");
    send_figure(n, msg);
}

/* systemd wants the monotonic time with RELOADING=1 to tell reloads apart. */
void s1d_notify_reloading(s1d_notify *n)
{
    char msg[96];
    snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, uv_hrtime() / 1000);
    send_state(n, msg);
}

/* A reload ends with READY=1 even when the file was bad: the old settings run. */
void s1d_notify_reloaded(s1d_notify *n)
{
    send_state(n, "READY=1");
}

/* systemd shows "deactivating" while the jobs drain. */
void s1d_notify_stopping(s1d_notify *n)
{
    send_state(n, "STOPPING=1");
}

void s1d_notify_free(s1d_notify *n)
{
    if (!n) return;
    s1d_notify_socket_close(n->sock);
    free(n);
}
