/* daemon/notify_socket.h — the datagram socket to systemd ($NOTIFY_SOCKET),
 * opened once and written without ever waiting: a reader that lags makes a
 * send fail, not block. Used by the loop's notifier (notify.h) and by the
 * watchdog feeder that runs while the model loads (main.c). */
#ifndef S1D_NOTIFY_SOCKET_H
#define S1D_NOTIFY_SOCKET_H

#include <stdbool.h>

typedef struct s1d_notify_socket s1d_notify_socket;

/* The socket $NOTIFY_SOCKET names; NULL when it is unset, not a unix socket
 * path (said in the log) or out of memory: then there is nobody to tell. */
s1d_notify_socket *s1d_notify_socket_open(void);

/* One datagram, never waiting. True when it went out, or never will (no
 * socket, a reader that is gone); false only when the reader's queue is
 * full, where a retry may succeed. */
bool s1d_notify_socket_send(s1d_notify_socket *s, const char *msg);

void s1d_notify_socket_close(s1d_notify_socket *s); /* NULL is fine */

#endif
