/* Minimal GET-only HTTP responder (see nd_http.h). */
#include "tablet/node/nd_http.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mr_log.h"
#include "common/mr_util.h"

#define HTTP_MAX_REQUEST 8192

typedef struct http_conn http_conn;

struct nd_http {
    uv_tcp_t server;
    nd_http_handler handler;
    void *ud;
    int open_conns;
    bool stopping, server_closed;
    http_conn *conns; /* open connections, so stop can close idle ones */
};

struct http_conn {
    uv_tcp_t tcp;
    nd_http *srv;
    http_conn *prev, *next;
    char req[HTTP_MAX_REQUEST];
    size_t len;
    bool responded;
    uv_write_t wr;
    char *resp;
};

static void server_maybe_free(nd_http *s)
{
    if (s->stopping && s->server_closed && s->open_conns == 0)
        free(s);
}

static void on_conn_closed(uv_handle_t *h)
{
    http_conn *c = h->data;
    nd_http *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->resp);
    free(c);
    s->open_conns--;
    server_maybe_free(s);
}

static void close_conn(http_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_written(uv_write_t *w, int status)
{
    close_conn(w->data);
}

static void respond(http_conn *c, int code, const char *ctype, const char *body, size_t blen)
{
    const char *reason = code == 200   ? "OK"
                         : code == 404 ? "Not Found"
                         : code == 405 ? "Method Not Allowed"
                         : code == 503 ? "Service Unavailable"
                                       : "Bad Request";
    size_t cap = blen + 256;
    c->resp = malloc(cap);
    if (!c->resp) {
        close_conn(c);
        return;
    }
    int h = snprintf(c->resp, cap,
                     "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     code, reason, ctype, blen);
    memcpy(c->resp + h, body, blen);
    uv_buf_t b = uv_buf_init(c->resp, (unsigned)(h + (int)blen));
    c->responded = true;
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
        close_conn(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    http_conn *c = h->data;
    buf->base = c->req + c->len;
    buf->len = sizeof c->req - 1 - c->len;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    http_conn *c = st->data;
    if (c->responded)
        return;
    if (n < 0) {
        close_conn(c);
        return;
    }
    c->len += (size_t)n;
    c->req[c->len] = '\0';
    if (!strstr(c->req, "\r\n\r\n") && !strstr(c->req, "\n\n")) {
        if (c->len >= sizeof c->req - 1) {
            uv_read_stop(st);
            respond(c, 400, "text/plain", "request too large\n", 18);
        }
        return;
    }
    uv_read_stop(st);
    char method[16], path[512];
    if (sscanf(c->req, "%15s %511s", method, path) != 2) {
        respond(c, 400, "text/plain", "bad request\n", 12);
        return;
    }
    if (strcmp(method, "GET") != 0) {
        respond(c, 405, "text/plain", "only GET\n", 9);
        return;
    }
    nd_text body = {0};
    const char *ctype = "text/plain; charset=utf-8";
    int code = c->srv->handler(c->srv->ud, path, &body, &ctype);
    respond(c, code, ctype, body.buf ? body.buf : "", body.len);
    nd_text_free(&body);
}

static void on_connection(uv_stream_t *server, int status)
{
    nd_http *s = server->data;
    if (status < 0)
        return;
    http_conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = s;
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    s->open_conns++;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read) != 0)
        close_conn(c);
}

int nd_http_start(uv_loop_t *loop, const char *hostport, nd_http_handler h, void *ud, nd_http **out,
                  mr_err *err)
{
    char host[256];
    int port;
    if (mr_parse_hostport(hostport, host, sizeof host, &port) != 0)
        return mr_errf(err, MR_EINVAL, "--http '%s' is not HOST:PORT", hostport);
    struct sockaddr_storage sa;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) != 0)
        return mr_errf(err, MR_EINVAL, "--http host '%s' is not an IP address", host);
    nd_http *s = calloc(1, sizeof *s);
    if (!s)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    s->handler = h;
    s->ud = ud;
    uv_tcp_init(loop, &s->server);
    s->server.data = s;
    int rc = uv_tcp_bind(&s->server, (struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->server, 64, on_connection);
    if (rc != 0) {
        nd_http_stop(s);
        return mr_errf(err, MR_EIO, "http listen on %s: %s", hostport, uv_strerror(rc));
    }
    *out = s;
    return MR_OK;
}

static void on_server_closed(uv_handle_t *h)
{
    nd_http *s = h->data;
    s->server_closed = true;
    server_maybe_free(s);
}

void nd_http_stop(nd_http *s)
{
    if (!s)
        return;
    s->stopping = true;
    for (http_conn *c = s->conns; c; c = c->next)
        close_conn(c);
    uv_close((uv_handle_t *)&s->server, on_server_closed);
}
