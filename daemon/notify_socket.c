#include "notify_socket.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

struct s1d_notify_socket {
    int fd; /* non-blocking datagram socket, owned */
    struct sockaddr_un addr;
    socklen_t addr_len;
};

/* $NOTIFY_SOCKET is a path or, with a leading '@', an abstract name.
 * Returns false (and says why) for anything else. */
static bool notify_address(s1d_notify_socket *s, const char *where)
{
    size_t len = strlen(where);
    if ((where[0] != '/' && where[0] != '@') || len < 2 || len >= sizeof s->addr.sun_path) {
        log_warning("NOTIFY_SOCKET=%s: not a unix socket path; systemd will not hear from s1d",
                    where);
        return false;
    }
    s->addr.sun_family = AF_UNIX;
    memcpy(s->addr.sun_path, where, len);
    if (where[0] == '@') s->addr.sun_path[0] = 0;
    s->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    return true;
}

s1d_notify_socket *s1d_notify_socket_open(void)
{
    const char *where = getenv("NOTIFY_SOCKET");
    if (!where) return NULL;
    s1d_notify_socket *s = calloc(1, sizeof *s);
    if (!s || !notify_address(s, where)) {
        free(s);
        return NULL;
    }
    s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s->fd >= 0) return s;
    log_warning("NOTIFY_SOCKET: %s; systemd will not hear from s1d", strerror(errno));
    free(s);
    return NULL;
}

bool s1d_notify_socket_send(s1d_notify_socket *s, const char *msg)
{
    if (!s) return true;
    ssize_t sent = sendto(s->fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT,
                          (const struct sockaddr *)&s->addr, s->addr_len);
    return sent >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS);
}

void s1d_notify_socket_close(s1d_notify_socket *s)
{
    if (!s) return;
    close(s->fd);
    free(s);
}
