/* A single request/response exchange with a node for the CLI (see cmd_rpc.h). */
#include "cmd/cmd_rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/oneshot.h"
#include "proto/pr_msg.h"

int cmd_rpc(const cmd_conn_opts *o, uint8_t type, const ProtobufCMessage *req, pr_arena *a,
            const Meridian__Reply **reply, mr_err *err)
{
    uint8_t *payload;
    size_t len;
    int rc = pr_encode(req, 0, &payload, &len, err);
    if (rc != MR_OK)
        return rc;
    net_tls_ctx *tls = NULL;
    if (!o->insecure) {
        if (!o->certs_dir) {
            free(payload);
            return mr_errf(err, MR_EINVAL, "give --certs DIR, or --insecure");
        }
        char name[128];
        snprintf(name, sizeof name, "client.%s", o->user ? o->user : "root");
        if (net_tls_ctx_load_dir(o->certs_dir, name, &tls, err) != MR_OK) {
            free(payload);
            return mr_err_wrap(err, "load client certificate %s from %s", name, o->certs_dir);
        }
    }
    uint8_t *resp;
    uint32_t rlen;
    rc = net_oneshot(tls, o->host, 0, NULL, 0, type, payload, (uint32_t)len,
                     o->timeout_ms ? o->timeout_ms : 10000, &resp, &rlen, err);
    net_tls_ctx_free(tls);
    free(payload);
    if (rc != MR_OK)
        return mr_err_wrap(err, "%s", o->host);
    *reply = pr_reply_decode(a, resp, rlen, err);
    free(resp);
    if (!*reply)
        return mr_err_wrap(err, "%s", o->host);
    return MR_OK;
}

int cmd_rpc_leader(const cmd_conn_opts *o, uint8_t type, const ProtobufCMessage *req, pr_arena *a,
                   const Meridian__Reply **reply, mr_err *err)
{
    char host[256];
    snprintf(host, sizeof host, "%s", o->host);
    int rc = MR_OK;
    for (int hop = 0; hop < 4; hop++) {
        cmd_conn_opts oo = *o;
        oo.host = host;
        const Meridian__Reply *r = NULL;
        rc = cmd_rpc(&oo, type, req, a, &r, err);
        if (rc != MR_OK)
            break;
        const char *leader = r->error ? r->error->leader : NULL;
        if (pr_reply_code(r) == MERIDIAN__ERROR_CODE__NOT_LEADER && leader && *leader &&
            strcmp(leader, host) != 0 && hop < 3) {
            snprintf(host, sizeof host, "%s", leader);
            continue;
        }
        *reply = r;
        break;
    }
    return rc;
}
