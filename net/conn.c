/* Frame-carrying connections over libuv TCP, plain or TLS (see conn.h). */
#include "net/conn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mr_log.h"
#include "common/mr_util.h"

#define READ_BUF                65536
#define PLAIN_BUF               16384
#define DEFAULT_WRITE_QUEUE     ((size_t)64 << 20)
#define MAX_WRITE_QUEUE         ((size_t)1 << 30)
#define DEFAULT_OPEN_TIMEOUT_MS 10000
/* How long an orderly close waits for queued frames to reach the socket. */
#define LINGER_MS 2000

enum { ST_RESOLVING, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSING };

struct net_conn {
    const net_conn_type *type;
    void *impl;
    uv_loop_t *loop;
    uv_tcp_t tcp;     /* handle.data = this */
    uv_timer_t timer; /* open deadline */
    uv_connect_t connect_req;
    uv_getaddrinfo_t gai;       /* in flight while resolving */
    uv_shutdown_t shutdown_req; /* an orderly close waits for its writes */
    int handles_closing;
    int pending; /* handles and requests whose callbacks are still due */
    int gai_active;
    int state;
    int is_client;
    char host[256];
    int port;
    char peer[300];
    net_frame_decoder dec;
    net_conn_opts opts;
    net_conn_cbs cbs;
    void *ud;
    size_t queued; /* bytes in uv_write requests not yet completed, plus `out` */
    int writing;   /* uv_write requests in flight */
    /* Frames sent while a write is in flight wait here and leave together when
     * it completes: one record and one system call for a burst of frames, yet
     * no added delay for a frame sent alone. Owned. */
    net_wbuf out;
    mr_err why;
    /* Reads are handled to completion inside the read callback, so one buffer
     * per connection is enough (libuv asks for it again before the next read). */
    uint8_t rbuf[READ_BUF];
};

typedef struct write_req {
    uv_write_t req;
    net_conn *c;
    uint8_t *buf;
    size_t len;
} write_req;

static void close_with(net_conn *c, int code, const char *msg);

/* ---- Life cycle ---- */

static void finish(net_conn *c)
{
    if (--c->pending > 0)
        return;
    if (c->cbs.on_close)
        c->cbs.on_close(c, &c->why, c->ud);
    if (c->type->free)
        c->type->free(c);
    net_frame_decoder_free(&c->dec);
    net_wbuf_free(&c->out);
    free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    finish(h->data);
}

static void close_handles(net_conn *c)
{
    if (c->handles_closing)
        return;
    c->handles_closing = 1;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

/* All writes reached the socket (or were cancelled by close_handles). */
static void on_shutdown(uv_shutdown_t *req, int status)
{
    close_handles(req->data);
}

static void on_linger_timeout(uv_timer_t *t)
{
    close_handles(t->data);
}

static void close_with(net_conn *c, int code, const char *msg)
{
    if (c->state == ST_CLOSING)
        return;
    int was_open = c->state == ST_OPEN;
    /* An orderly close delivers what was sent: frames gathered behind a write
     * in flight go out now, and the handles close once the writes are done
     * (bounded by LINGER_MS). An error close drops them. */
    int linger = code == MR_OK && was_open && (c->out.len > 0 || c->writing > 0);
    if (linger && c->out.len > 0) {
        size_t len;
        uint8_t *data = net_wbuf_take(&c->out, &len);
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        c->queued -= len;
        if (c->type->write(c, &b, 1, NULL) != MR_OK)
            linger = 0;
        free(data);
    }
    c->state = ST_CLOSING;
    mr_errf(&c->why, code, "%s", msg);
    /* A peer going away or not answering is routine; anything else is worth a warning. */
    if (code == MR_EUNAVAIL)
        MR_INFO("net", "closing connection peer=%s type=%s open=%d reason=\"%s\"", c->peer,
                c->type->name, was_open, msg);
    else if (code != MR_OK)
        MR_WARN("net", "closing connection peer=%s type=%s open=%d reason=\"%s\"", c->peer,
                c->type->name, was_open, msg);
    else
        MR_DEBUG("net", "closing connection peer=%s reason=\"%s\"", c->peer, msg);
    if (c->gai_active)
        uv_cancel((uv_req_t *)&c->gai); /* its callback still runs and calls finish() */
    if (linger && c->writing > 0) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->shutdown_req.data = c;
        if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) == 0) {
            uv_timer_stop(&c->timer);
            uv_timer_start(&c->timer, on_linger_timeout, LINGER_MS, 0);
            return;
        }
    }
    close_handles(c);
}

void net_conn_close(net_conn *c, int code, const char *fmt, ...)
{
    char msg[MR_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    close_with(c, code, msg);
}

static void close_err(net_conn *c, const mr_err *e)
{
    close_with(c, e->code ? e->code : MR_EIO, mr_err_msg(e));
}

static void on_open_timeout(uv_timer_t *t)
{
    net_conn *c = t->data;
    static const char *const what[] = {"resolving", "connecting", "handshake"};
    char msg[128];
    snprintf(msg, sizeof msg, "%s timed out after %llu ms", what[c->state < 3 ? c->state : 2],
             (unsigned long long)c->opts.open_timeout_ms);
    close_with(c, MR_ETIMEDOUT, msg);
}

static net_conn *conn_new(uv_loop_t *loop, const net_conn_opts *opts, const net_conn_cbs *cbs,
                          void *ud, mr_err *err)
{
    net_conn *c = calloc(1, sizeof *c);
    if (!c) {
        mr_errf(err, MR_ENOMEM, "out of memory");
        return NULL;
    }
    c->loop = loop;
    c->opts = *opts;
    if (!c->opts.max_write_queue)
        c->opts.max_write_queue = DEFAULT_WRITE_QUEUE;
    /* libuv buffers carry an unsigned int length. */
    if (c->opts.max_write_queue > MAX_WRITE_QUEUE)
        c->opts.max_write_queue = MAX_WRITE_QUEUE;
    if (!c->opts.open_timeout_ms)
        c->opts.open_timeout_ms = DEFAULT_OPEN_TIMEOUT_MS;
    c->cbs = *cbs;
    c->ud = ud;
    c->type = opts->tls ? &net_conn_type_tls : &net_conn_type_tcp;
    net_frame_decoder_init(&c->dec, opts->max_frame);
    net_wbuf_init(&c->out, 0);
    int r = uv_tcp_init(loop, &c->tcp);
    if (r) {
        mr_errf(err, MR_EIO, "uv_tcp_init: %s", uv_strerror(r));
        free(c);
        return NULL;
    }
    uv_timer_init(loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->pending = 2;
    snprintf(c->peer, sizeof c->peer, "?");
    uv_timer_start(&c->timer, on_open_timeout, c->opts.open_timeout_ms, 0);
    return c;
}

/* Abandons a connection before its creator learned of it: no callbacks. */
static void conn_abort(net_conn *c, const mr_err *e)
{
    c->cbs.on_close = NULL;
    close_err(c, e);
}

/* ---- Reading ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    net_conn *c = h->data;
    buf->base = (char *)c->rbuf;
    buf->len = sizeof c->rbuf;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    net_conn *c = s->data;
    if (c->state == ST_CLOSING)
        return;
    if (nread == UV_EOF) {
        close_with(c, MR_EUNAVAIL, "peer closed the connection");
        return;
    }
    if (nread < 0) {
        net_conn_close(c, MR_EIO, "read failed: %s", uv_strerror((int)nread));
        return;
    }
    mr_err e;
    mr_err_clear(&e);
    if (c->type->on_bytes(c, (const uint8_t *)buf->base, (size_t)nread, &e))
        close_err(c, &e);
}

static int frame_cb(void *ctx, const net_frame *f)
{
    net_conn *c = ctx;
    if (c->state != ST_OPEN)
        return 1;
    if (c->cbs.on_frame)
        c->cbs.on_frame(c, f, c->ud);
    return c->state != ST_OPEN;
}

int net_conn_deliver(net_conn *c, const uint8_t *data, size_t n, mr_err *err)
{
    if (c->state != ST_OPEN)
        return mr_errf(err, MR_EPROTO, "data before the connection was open");
    int rc = net_frame_decoder_feed(&c->dec, data, n, frame_cb, c, err);
    if (rc) {
        mr_err_wrap(err, "malformed frame");
        return rc;
    }
    return MR_OK;
}

void net_conn_opened(net_conn *c)
{
    if (c->state == ST_CLOSING)
        return;
    c->state = ST_OPEN;
    uv_timer_stop(&c->timer);
    MR_DEBUG("net", "connection open peer=%s type=%s", c->peer, c->type->name);
    if (c->cbs.on_open)
        c->cbs.on_open(c, c->ud);
}

static void start_io(net_conn *c)
{
    mr_err e;
    mr_err_clear(&e);
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 30);
    int r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (r) {
        mr_errf(&e, MR_EIO, "uv_read_start: %s", uv_strerror(r));
        close_err(c, &e);
        return;
    }
    c->state = ST_HANDSHAKE;
    if (c->type->start(c, &e))
        close_err(c, &e);
}

/* ---- Writing ---- */

/* Hands the frames gathered in `out` to the connection type in one piece. */
static void flush_out(net_conn *c)
{
    size_t len;
    uint8_t *data = net_wbuf_take(&c->out, &len);
    c->queued -= len;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    mr_err e;
    mr_err_clear(&e);
    if (c->type->write(c, &b, 1, &e))
        close_err(c, &e);
    free(data);
}

static void on_write(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    net_conn *c = w->c;
    c->queued -= w->len;
    c->writing--;
    free(w->buf);
    free(w);
    if (status < 0 && c->state != ST_CLOSING) {
        net_conn_close(c, MR_EIO, "write failed: %s", uv_strerror(status));
        return;
    }
    if (c->writing == 0 && c->out.len > 0 && c->state == ST_OPEN)
        flush_out(c);
}

int net_conn_raw_write(net_conn *c, uint8_t *buf, size_t len, mr_err *err)
{
    if (c->state == ST_CLOSING) {
        free(buf);
        return mr_errf(err, MR_EUNAVAIL, "connection closing");
    }
    write_req *w = malloc(sizeof *w);
    if (!w) {
        free(buf);
        return mr_errf(err, MR_ENOMEM, "out of memory");
    }
    w->c = c;
    w->buf = buf;
    w->len = len;
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
    int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (r) {
        free(buf);
        free(w);
        return mr_errf(err, MR_EIO, "uv_write: %s", uv_strerror(r));
    }
    c->queued += len;
    c->writing++;
    return MR_OK;
}

int net_conn_send(net_conn *c, const net_frame *f, mr_err *err)
{
    if (c->state != ST_OPEN)
        return mr_errf(err, MR_EUNAVAIL, "connection to %s is not open", c->peer);
    if (f->type == 0 || (f->flags & ~NET_FRAME_FLAGS_KNOWN))
        return mr_errf(err, MR_EINVAL, "bad frame type %u flags 0x%x", f->type, f->flags);
    if (f->len > c->dec.max_payload)
        return mr_errf(err, MR_EINVAL, "frame of %u bytes exceeds the maximum of %u", f->len,
                       c->dec.max_payload);
    size_t total = NET_FRAME_HDR + (size_t)f->len;
    if (c->queued + total > c->opts.max_write_queue)
        return mr_errf(err, MR_EFULL, "write queue to %s full (%zu bytes queued)", c->peer,
                       c->queued);
    if (c->writing > 0 || c->out.len > 0) {
        net_frame_encode(&c->out, f);
        if (net_wbuf_failed(&c->out)) {
            /* Part of a frame may be in `out`: the stream is unusable now. */
            close_with(c, MR_ENOMEM, "out of memory for the write queue");
            return mr_errf(err, MR_ENOMEM, "out of memory");
        }
        c->queued += total;
        return MR_OK;
    }
    uint8_t hdr[NET_FRAME_HDR];
    net_frame_put_header(hdr, f);
    uv_buf_t bufs[2] = {uv_buf_init((char *)hdr, NET_FRAME_HDR),
                        uv_buf_init((char *)f->payload, f->len)};
    mr_err e;
    mr_err_clear(&e);
    int rc = c->type->write(c, bufs, f->len ? 2 : 1, &e);
    if (rc) {
        /* Half a frame may have been queued: the stream is unusable now. */
        close_err(c, &e);
        if (err)
            *err = e;
        return rc;
    }
    return MR_OK;
}

/* ---- Connecting and accepting ---- */

static void on_connect(uv_connect_t *req, int status)
{
    net_conn *c = req->data;
    if (c->state == ST_CLOSING)
        return;
    if (status < 0) {
        net_conn_close(c, MR_EUNAVAIL, "connect to %s failed: %s", c->peer, uv_strerror(status));
        return;
    }
    start_io(c);
}

static void dial(net_conn *c, const struct sockaddr *sa)
{
    c->state = ST_CONNECTING;
    c->connect_req.data = c;
    int r = uv_tcp_connect(&c->connect_req, &c->tcp, sa, on_connect);
    if (r) {
        net_conn_close(c, MR_EUNAVAIL, "connect to %s failed: %s", c->peer, uv_strerror(r));
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    net_conn *c = req->data;
    c->gai_active = 0;
    if (c->state != ST_CLOSING) {
        if (status < 0 || !res) {
            net_conn_close(c, MR_EUNAVAIL, "cannot resolve %s: %s", c->host, uv_strerror(status));
        } else {
            /* One socket, one attempt: prefer IPv4, as listeners here usually are. */
            struct addrinfo *pick = res;
            for (struct addrinfo *a = res; a; a = a->ai_next)
                if (a->ai_family == AF_INET) {
                    pick = a;
                    break;
                }
            dial(c, pick->ai_addr);
        }
    }
    uv_freeaddrinfo(res);
    finish(c);
}

int net_conn_connect(uv_loop_t *loop, const net_conn_opts *opts, const char *hostport,
                     const net_conn_cbs *cbs, void *ud, net_conn **out, mr_err *err)
{
    char host[256];
    int port;
    *out = NULL;
    if (mr_parse_hostport(hostport, host, sizeof host, &port) != 0 || port == 0)
        return mr_errf(err, MR_EINVAL, "bad address '%s' (want HOST:PORT)", hostport);
    net_conn *c = conn_new(loop, opts, cbs, ud, err);
    if (!c)
        return err ? err->code : MR_ENOMEM;
    c->is_client = 1;
    snprintf(c->host, sizeof c->host, "%s", host);
    c->port = port;
    snprintf(c->peer, sizeof c->peer, "%s", hostport);
    mr_err e;
    mr_err_clear(&e);
    if (c->type->init && c->type->init(c, 1, host, &e)) {
        if (err)
            *err = e;
        conn_abort(c, &e);
        return e.code;
    }
    *out = c;
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0) {
        dial(c, (struct sockaddr *)&ss);
        return MR_OK;
    }
    c->state = ST_RESOLVING;
    c->gai.data = c;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int r = uv_getaddrinfo(loop, &c->gai, on_resolved, host, service, &hints);
    if (r) {
        net_conn_close(c, MR_EUNAVAIL, "cannot resolve %s: %s", host, uv_strerror(r));
        return MR_OK;
    }
    c->gai_active = 1;
    c->pending++;
    return MR_OK;
}

int net_conn_accept(uv_stream_t *server, const net_conn_opts *opts, const net_conn_cbs *cbs,
                    void *ud, net_conn **out, mr_err *err)
{
    *out = NULL;
    net_conn *c = conn_new(server->loop, opts, cbs, ud, err);
    if (!c)
        return err ? err->code : MR_ENOMEM;
    mr_err e;
    mr_err_clear(&e);
    int r = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (r) {
        mr_errf(&e, MR_EIO, "uv_accept: %s", uv_strerror(r));
        if (err)
            *err = e;
        conn_abort(c, &e);
        return e.code;
    }
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        char ip[64] = "?";
        int port = 0;
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
            snprintf(c->peer, sizeof c->peer, "[%s]:%d", ip, port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
        }
    }
    if (c->type->init && c->type->init(c, 0, NULL, &e)) {
        if (err)
            *err = e;
        conn_abort(c, &e);
        return e.code;
    }
    *out = c;
    start_io(c);
    return MR_OK;
}

/* ---- Accessors ---- */

int net_conn_is_open(const net_conn *c)
{
    return c->state == ST_OPEN;
}

const char *net_conn_peer(const net_conn *c)
{
    return c->peer;
}

const char *net_conn_peer_name(const net_conn *c)
{
    return c->type->peer_name ? c->type->peer_name(c) : "";
}

int net_conn_peer_is_node(const net_conn *c)
{
    return c->type->peer_is_node ? c->type->peer_is_node(c) : 1;
}

int net_conn_peer_has_host(const net_conn *c, const char *host)
{
    return c->type->peer_has_host ? c->type->peer_has_host(c, host) : 1;
}

size_t net_conn_write_queue(const net_conn *c)
{
    return c->queued;
}

void *net_conn_user(const net_conn *c)
{
    return c->ud;
}

void net_conn_set_user(net_conn *c, void *ud)
{
    c->ud = ud;
}

void *net_conn_impl(const net_conn *c)
{
    return c->impl;
}

void net_conn_set_impl(net_conn *c, void *impl)
{
    c->impl = impl;
}

net_tls_ctx *net_conn_tls_ctx(const net_conn *c)
{
    return c->opts.tls;
}

/* ---- Plain TCP: bytes are plaintext. ---- */

static int tcp_start(net_conn *c, mr_err *err)
{
    net_conn_opened(c);
    return MR_OK;
}

static int tcp_on_bytes(net_conn *c, const uint8_t *data, size_t n, mr_err *err)
{
    return net_conn_deliver(c, data, n, err);
}

static int tcp_write(net_conn *c, const uv_buf_t *bufs, unsigned nbufs, mr_err *err)
{
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    /* One copy into one buffer: the caller's payload need not outlive the call. */
    uint8_t *buf = malloc(total ? total : 1);
    if (!buf)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    size_t off = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        memcpy(buf + off, bufs[i].base, bufs[i].len);
        off += bufs[i].len;
    }
    return net_conn_raw_write(c, buf, total, err);
}

const net_conn_type net_conn_type_tcp = {
    .name = "tcp",
    .start = tcp_start,
    .on_bytes = tcp_on_bytes,
    .write = tcp_write,
};

/* ---- TLS: an OpenSSL session over memory BIOs between socket and frames. ---- */

static int tls_flush(net_conn *c, mr_err *err)
{
    size_t len;
    uint8_t *out = net_tls_take_out(net_conn_impl(c), &len);
    if (!out)
        return MR_OK;
    return net_conn_raw_write(c, out, len, err);
}

static int tls_init(net_conn *c, int is_client, const char *host, mr_err *err)
{
    net_tls *t;
    int rc = net_tls_new(net_conn_tls_ctx(c), is_client, host, &t, err);
    if (rc)
        return rc;
    net_conn_set_impl(c, t);
    return MR_OK;
}

static int tls_step_handshake(net_conn *c, mr_err *err)
{
    net_tls *t = net_conn_impl(c);
    int rc = net_tls_handshake(t, err);
    /* Flush even on failure: the alert tells the peer why. */
    mr_err ferr;
    mr_err_clear(&ferr);
    tls_flush(c, &ferr);
    if (rc == NET_TLS_AGAIN)
        return MR_OK;
    if (rc) {
        mr_err_wrap(err, "TLS handshake with %s", net_conn_peer(c));
        return rc;
    }
    net_conn_opened(c);
    return MR_OK;
}

static int tls_start(net_conn *c, mr_err *err)
{
    return tls_step_handshake(c, err);
}

static int tls_on_bytes(net_conn *c, const uint8_t *data, size_t n, mr_err *err)
{
    net_tls *t = net_conn_impl(c);
    int rc = net_tls_feed(t, data, n, err);
    if (rc)
        return rc;
    if (!net_tls_handshake_done(t)) {
        if ((rc = tls_step_handshake(c, err)))
            return rc;
        if (!net_tls_handshake_done(t) || !net_conn_is_open(c))
            return MR_OK;
    }
    uint8_t plain[PLAIN_BUF];
    while (net_conn_is_open(c)) {
        size_t got;
        rc = net_tls_read(t, plain, sizeof plain, &got, err);
        if (rc)
            return rc;
        if (got == 0)
            break;
        if ((rc = net_conn_deliver(c, plain, got, err)))
            return rc;
    }
    return net_conn_is_open(c) ? tls_flush(c, err) : MR_OK;
}

static int tls_write(net_conn *c, const uv_buf_t *bufs, unsigned nbufs, mr_err *err)
{
    net_tls *t = net_conn_impl(c);
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    /* Each SSL_write makes at least one record (header, tag, padding): gather a
     * small frame so header and payload share one. */
    if (nbufs > 1 && total <= PLAIN_BUF) {
        uint8_t one[PLAIN_BUF];
        size_t off = 0;
        for (unsigned i = 0; i < nbufs; i++) {
            memcpy(one + off, bufs[i].base, bufs[i].len);
            off += bufs[i].len;
        }
        int rc = net_tls_write(t, one, total, err);
        return rc ? rc : tls_flush(c, err);
    }
    for (unsigned i = 0; i < nbufs; i++) {
        int rc = net_tls_write(t, bufs[i].base, bufs[i].len, err);
        if (rc)
            return rc;
    }
    return tls_flush(c, err);
}

static const char *tls_peer_name(const net_conn *c)
{
    net_tls *t = net_conn_impl(c);
    return t ? net_tls_peer_name(t) : "";
}

static int tls_peer_has_host(const net_conn *c, const char *host)
{
    net_tls *t = net_conn_impl(c);
    return t && net_tls_peer_has_host(t, host);
}

static int tls_peer_is_node(const net_conn *c)
{
    net_tls *t = net_conn_impl(c);
    return t && net_tls_peer_is_node(t);
}

static void tls_free(net_conn *c)
{
    net_tls_free(net_conn_impl(c));
    net_conn_set_impl(c, NULL);
}

const net_conn_type net_conn_type_tls = {
    .name = "tls",
    .init = tls_init,
    .start = tls_start,
    .on_bytes = tls_on_bytes,
    .write = tls_write,
    .peer_name = tls_peer_name,
    .peer_has_host = tls_peer_has_host,
    .peer_is_node = tls_peer_is_node,
    .free = tls_free,
};
