/* A single request/response exchange with a node for the CLI (see cmd_rpc.h). */
#include "cmd/cmd_rpc.h"

#include <stdio.h>
#include <stdlib.h>

#include "net/oneshot.h"

int cmd_rpc(const cmd_conn_opts *o, uint8_t type, const void *payload, uint32_t len, json_t **reply,
            mr_err *err)
{
    net_tls_ctx *tls = NULL;
    if (!o->insecure) {
        if (!o->certs_dir)
            return mr_errf(err, MR_EINVAL, "give --certs DIR, or --insecure");
        char name[128];
        snprintf(name, sizeof name, "client.%s", o->user ? o->user : "root");
        if (net_tls_ctx_load_dir(o->certs_dir, name, &tls, err) != MR_OK)
            return mr_err_wrap(err, "load client certificate %s from %s", name, o->certs_dir);
    }
    uint8_t *resp;
    uint32_t rlen;
    int rc = net_oneshot(tls, o->host, 0, NULL, 0, type, payload, len,
                         o->timeout_ms ? o->timeout_ms : 10000, &resp, &rlen, err);
    net_tls_ctx_free(tls);
    if (rc != MR_OK)
        return mr_err_wrap(err, "%s", o->host);
    json_error_t je;
    *reply = json_loadb((const char *)resp, rlen, 0, &je);
    free(resp);
    if (!*reply)
        return mr_errf(err, MR_EPROTO, "%s: unparsable reply: %s", o->host, je.text);
    return MR_OK;
}
