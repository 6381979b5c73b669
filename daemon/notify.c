#include "notify.h"

#include <inttypes.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>

#include "log.h"

struct s1d_notify {
    s1d_exec *exec; /* not owned */
    uv_timer_t watchdog;
    uint64_t watchdog_usec; /* systemd's WatchdogSec= */
    bool ready_sent;
};

s1d_notify *s1d_notify_new(uv_loop_t *loop, s1d_exec *exec)
{
    s1d_notify *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->exec = exec;
    uv_timer_init(loop, &n->watchdog);
    n->watchdog.data = n;
    return n;
}

/* The watchdog is fed only while the engine thread finishes steps or
 * idle-waits: a hung forward gets the daemon restarted. */
static void on_watchdog_timer(uv_timer_t *t)
{
    s1d_notify *n = t->data;
    if (s1d_exec_stalled_ms(n->exec) * 1000 < n->watchdog_usec)
        sd_notify(0, "WATCHDOG=1");
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
    sd_notify(0, "READY=1");
}

/* The daemon says "ready" in its log once, with the first READY=1. */
bool s1d_notify_is_ready(const s1d_notify *n)
{
    return n->ready_sent;
}

/* STATUS= follows READY=1: before it, systemd shows "activating". */
void s1d_notify_status(const s1d_notify *n, const s1d_status *s)
{
    if (!n->ready_sent) return;
    sd_notifyf(0, "STATUS=%s%d jobs running, %lld done, %.0f tokens/s, database %s",
               s->draining ? "draining: " : "", s->running, s->done, s->tokens_per_s,
               s->db_up ? "up" : "unreachable");
}

/* systemd wants the monotonic time with RELOADING=1 to tell reloads apart. */
void s1d_notify_reloading(void)
{
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, uv_hrtime() / 1000);
}

/* A reload ends with READY=1 even when the file was bad: the old settings run. */
void s1d_notify_reloaded(void)
{
    sd_notify(0, "READY=1");
}

/* systemd shows "deactivating" while the jobs drain. */
void s1d_notify_stopping(void)
{
    sd_notify(0, "STOPPING=1");
}

void s1d_notify_free(s1d_notify *n)
{
    free(n);
}
