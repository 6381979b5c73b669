/* daemon/notify.h — what s1d tells systemd (Type=notify, $NOTIFY_SOCKET):
 * READY=1 once the model is loaded and the database reached, STATUS= with
 * live figures, RELOADING=1 and READY=1 around a reload, STOPPING=1, and
 * WATCHDOG=1 only while the engine thread is alive. Nothing here blocks the
 * loop: messages go out on a non-blocking socket; when the reader lags and
 * its queue is full, STATUS= and WATCHDOG=1 are dropped (the next ones say
 * the same) and the state changes wait to be sent again on the next try. */
#ifndef S1D_NOTIFY_H
#define S1D_NOTIFY_H

#include <stdbool.h>
#include <uv.h>

#include "exec.h"

typedef struct s1d_notify s1d_notify;

/* The live figures STATUS= shows. */
typedef struct {
    bool draining;
    int running;
    long long done;
    double tokens_per_s;
    bool db_up;
} s1d_status;

/* Watches exec's thread for the watchdog, with a timer on loop (closed with
 * the loop's other handles). NULL when out of memory. */
s1d_notify *s1d_notify_new(uv_loop_t *loop, s1d_exec *exec);

/* Starts feeding the watchdog, when the unit has one (WatchdogSec=). */
void s1d_notify_start_watchdog(s1d_notify *n);

/* READY=1 the first time: from then on STATUS= is sent. */
void s1d_notify_ready(s1d_notify *n);
bool s1d_notify_is_ready(const s1d_notify *n);

/* Nothing before READY=1: until then systemd shows "activating". */
void s1d_notify_status(s1d_notify *n, const s1d_status *s);

/* SIGHUP: RELOADING=1 before the configuration is read again, READY=1
 * after (whether or not it could be read). */
void s1d_notify_reloading(s1d_notify *n);
void s1d_notify_reloaded(s1d_notify *n);

void s1d_notify_stopping(s1d_notify *n);

/* After the loop has closed its handles. */
void s1d_notify_free(s1d_notify *n);

#endif
