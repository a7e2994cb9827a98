/* A single request/response on a private loop (see oneshot.h). */
#include "net/oneshot.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "net/transport.h"

typedef struct oneshot_state {
    bool done;
    int status;
    mr_err err;
    uint8_t *reply;
    uint32_t len;
} oneshot_state;

static void on_reply(net_transport *t, int status, const mr_err *err, const net_message *resp,
                     void *ud)
{
    oneshot_state *s = ud;
    s->done = true;
    s->status = status;
    if (status != MR_OK) {
        if (err)
            s->err = *err;
        return;
    }
    s->reply = malloc((size_t)resp->len + 1);
    if (!s->reply) {
        s->status = mr_errf(&s->err, MR_ENOMEM, "out of memory");
        return;
    }
    if (resp->len)
        memcpy(s->reply, resp->payload, resp->len);
    s->reply[resp->len] = '\0';
    s->len = resp->len;
}

static void on_closed(void *ud)
{
    *(bool *)ud = true;
}

int net_oneshot(net_tls_ctx *tls, const char *addr, uint8_t oneway_type, const void *oneway,
                uint32_t oneway_len, uint8_t type, const void *payload, uint32_t len,
                uint64_t timeout_ms, uint8_t **reply, uint32_t *reply_len, mr_err *err)
{
    *reply = NULL;
    *reply_len = 0;
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        return mr_errf(err, MR_EIO, "uv_loop_init failed");
    net_transport_config tc = {
        .loop = &loop, .tls = tls, .open_timeout_ms = timeout_ms, .backoff_max_ms = 200};
    net_transport *t;
    int rc = net_transport_new(&tc, &t, err);
    if (rc != MR_OK) {
        uv_run(&loop, UV_RUN_DEFAULT); /* let a half-made listener close */
        uv_loop_close(&loop);
        return rc;
    }
    oneshot_state s = {0};
    if (oneway_type)
        rc = net_transport_send(t, addr, oneway_type, oneway, oneway_len, err);
    if (rc == MR_OK)
        rc = net_transport_request(t, addr, type, payload, len, timeout_ms ? timeout_ms : 10000,
                                   on_reply, &s, NULL, err);
    if (rc == MR_OK) {
        while (!s.done && uv_run(&loop, UV_RUN_ONCE)) {
        }
        rc = s.status;
        if (rc != MR_OK)
            *err = s.err;
    }
    bool closed = false;
    net_transport_close(t, on_closed, &closed);
    while (!closed && uv_run(&loop, UV_RUN_ONCE)) {
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (rc == MR_OK) {
        *reply = s.reply;
        *reply_len = s.len;
    } else {
        free(s.reply);
    }
    return rc;
}
