/* A single request/response exchange with a node for the CLI (see cmd_rpc.h). */
#include "cmd/cmd_rpc.h"

#include <stdio.h>
#include <string.h>

#include "net/transport.h"

typedef struct rpc_state {
    bool done;
    int status;
    mr_err err;
    json_t *reply;
} rpc_state;

static void on_reply(net_transport *t, int status, const mr_err *err, const net_message *resp,
                     void *ud)
{
    rpc_state *s = ud;
    s->done = true;
    s->status = status;
    if (status != MR_OK) {
        s->err = *err;
        return;
    }
    json_error_t je;
    s->reply = json_loadb((const char *)resp->payload, resp->len, 0, &je);
    if (!s->reply) {
        s->status = MR_EPROTO;
        mr_errf(&s->err, MR_EPROTO, "unparsable reply: %s", je.text);
    }
}

static void on_closed(void *ud)
{
    *(bool *)ud = true;
}

int cmd_rpc(const cmd_conn_opts *o, uint8_t type, const void *payload, uint32_t len, json_t **reply,
            mr_err *err)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    net_tls_ctx *tls = NULL;
    int rc = MR_OK;
    if (!o->insecure) {
        if (!o->certs_dir) {
            uv_loop_close(&loop);
            return mr_errf(err, MR_EINVAL, "give --certs DIR, or --insecure");
        }
        char name[128];
        snprintf(name, sizeof name, "client.%s", o->user ? o->user : "root");
        rc = net_tls_ctx_load_dir(o->certs_dir, name, &tls, err);
        if (rc) {
            uv_loop_close(&loop);
            return mr_err_wrap(err, "load client certificate %s from %s", name, o->certs_dir);
        }
    }
    net_transport_config tc = {.loop = &loop, .tls = tls, .backoff_max_ms = 200};
    net_transport *t;
    rc = net_transport_new(&tc, &t, err);
    if (rc) {
        net_tls_ctx_free(tls);
        uv_loop_close(&loop);
        return rc;
    }
    rpc_state s = {0};
    rc = net_transport_request(t, o->host, type, payload, len,
                               o->timeout_ms ? o->timeout_ms : 10000, on_reply, &s, NULL, err);
    if (rc == MR_OK) {
        while (!s.done && uv_run(&loop, UV_RUN_ONCE)) {
        }
        if (s.status != MR_OK) {
            rc = s.status;
            *err = s.err;
            mr_err_wrap(err, "%s", o->host);
        } else {
            *reply = s.reply;
        }
    }
    bool closed = false;
    net_transport_close(t, on_closed, &closed);
    while (!closed && uv_run(&loop, UV_RUN_ONCE)) {
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    net_tls_ctx_free(tls);
    return rc;
}
