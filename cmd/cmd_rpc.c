/* A single request/response exchange with a node for the CLI (see cmd_rpc.h). */
#include "cmd/cmd_rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int cmd_rpc_leader(const cmd_conn_opts *o, uint8_t type, json_t *req, json_t **reply, mr_err *err)
{
    char *text = json_dumps(req, JSON_COMPACT);
    if (!text)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    char host[256];
    snprintf(host, sizeof host, "%s", o->host);
    int rc = MR_OK;
    for (int hop = 0; hop < 4; hop++) {
        cmd_conn_opts oo = *o;
        oo.host = host;
        json_t *r = NULL;
        rc = cmd_rpc(&oo, type, text, (uint32_t)strlen(text), &r, err);
        if (rc != MR_OK)
            break;
        const char *e = json_string_value(json_object_get(r, "error"));
        const char *leader = json_string_value(json_object_get(r, "leader"));
        if (e && strcmp(e, "not_leader") == 0 && leader && *leader && strcmp(leader, host) != 0 &&
            hop < 3) {
            snprintf(host, sizeof host, "%s", leader);
            json_decref(r);
            continue;
        }
        *reply = r;
        break;
    }
    free(text);
    return rc;
}
