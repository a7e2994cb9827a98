/* Talks to chronyd over its unix datagram command socket (candm protocol).
 * Like chronyc, the client binds a socket path of its own so chronyd can
 * reply, and makes it writable by chronyd (which runs as an unprivileged user). */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/mr_codec.h"
#include "common/mr_util.h"
#include "truetime/tt_candm.h"
#include "truetime/tt_sources.h"

struct tt_chrony {
    int fd;
    uint32_t sequence;
    char server[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char local[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static _Atomic unsigned socket_counter;

int tt_chrony_open(const char *socket_path, tt_chrony **out, mr_err *err)
{
    tt_chrony *c = calloc(1, sizeof *c);
    if (!c)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    c->fd = -1;
    if (!socket_path || !*socket_path || strlen(socket_path) >= sizeof c->server) {
        free(c);
        return mr_errf(err, MR_EINVAL, "chronyd socket path is empty or longer than %zu bytes",
                       sizeof c->server - 1);
    }
    snprintf(c->server, sizeof c->server, "%s", socket_path);
    /* A random starting sequence makes stale replies from an earlier process unlikely to match. */
    c->sequence = (uint32_t)getpid() * 2654435761u ^ (uint32_t)mr_monotonic_ns();
    *out = c;
    return MR_OK;
}

void tt_chrony_close(tt_chrony *c)
{
    if (!c)
        return;
    if (c->fd >= 0) {
        close(c->fd);
        unlink(c->local);
    }
    free(c);
}

static int ensure_socket(tt_chrony *c, mr_err *err)
{
    if (c->fd >= 0)
        return MR_OK;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return mr_errf(err, MR_EIO, "socket: %s", strerror(errno));
    struct sockaddr_un local = {.sun_family = AF_UNIX};
    snprintf(c->local, sizeof c->local, "/tmp/meridian-tt.%d.%u.sock", (int)getpid(),
             atomic_fetch_add(&socket_counter, 1));
    snprintf(local.sun_path, sizeof local.sun_path, "%s", c->local);
    unlink(c->local);
    if (bind(fd, (struct sockaddr *)&local, sizeof local) != 0) {
        int e = errno;
        close(fd);
        return mr_errf(err, MR_EIO, "bind %s: %s", c->local, strerror(e));
    }
    /* chronyd drops root and must be able to send to us. */
    if (chmod(c->local, 0666) != 0) {
        int e = errno;
        close(fd);
        unlink(c->local);
        return mr_errf(err, MR_EIO, "chmod %s: %s", c->local, strerror(e));
    }
    struct sockaddr_un server = {.sun_family = AF_UNIX};
    snprintf(server.sun_path, sizeof server.sun_path, "%s", c->server);
    if (connect(fd, (struct sockaddr *)&server, sizeof server) != 0) {
        int e = errno;
        close(fd);
        unlink(c->local);
        return mr_errf(err, MR_EUNAVAIL, "cannot reach chronyd at %s: %s", c->server, strerror(e));
    }
    c->fd = fd;
    return MR_OK;
}

static void drop_socket(tt_chrony *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        unlink(c->local);
        c->fd = -1;
    }
}

int tt_chrony_tracking(tt_chrony *c, int64_t timeout_ns, tt_sample *out, mr_err *err)
{
    int rc = ensure_socket(c, err);
    if (rc)
        return rc;
    uint32_t seq = ++c->sequence;
    uint8_t req[TT_CANDM_TRACKING_LEN];
    tt_candm_tracking_request(req, seq);
    if (send(c->fd, req, sizeof req, 0) != (ssize_t)sizeof req) {
        int e = errno;
        /* chronyd restarted (new socket inode) or went away: reconnect next time. */
        drop_socket(c);
        return mr_errf(err, MR_EUNAVAIL, "send to chronyd at %s: %s", c->server, strerror(e));
    }
    int64_t deadline = mr_monotonic_ns() + timeout_ns;
    for (;;) {
        int64_t left = deadline - mr_monotonic_ns();
        if (left <= 0)
            return mr_errf(err, MR_ETIMEDOUT, "no reply from chronyd at %s within %lld ms",
                           c->server, (long long)(timeout_ns / 1000000));
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int n = poll(&p, 1, (int)((left + 999999) / 1000000));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return mr_errf(err, MR_EIO, "poll: %s", strerror(errno));
        if (n == 0)
            continue;
        uint8_t buf[512];
        ssize_t len = recv(c->fd, buf, sizeof buf, 0);
        if (len < 0) {
            int e = errno;
            if (e == EINTR || e == EAGAIN)
                continue;
            drop_socket(c);
            return mr_errf(err, MR_EUNAVAIL, "recv from chronyd at %s: %s", c->server, strerror(e));
        }
        /* A late reply to an earlier request carries an older sequence: skip it. */
        if (len >= TT_CANDM_RPY_HDR_LEN && buf[0] == TT_CANDM_VERSION &&
            mr_get_u32(buf + 16) != seq)
            continue;
        rc = tt_candm_tracking_decode(buf, (size_t)len, seq, out, err);
        if (rc)
            return mr_err_wrap(err, "chronyd at %s", c->server);
        return MR_OK;
    }
}
