/* Message dispatch: who may send what, routing each message to its subsystem, replies. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/mr_log.h"
#include "common/mr_util.h"
#include "net/transport.h"
#include "tablet/logstore/ls_paxos.h"
#include "tablet/node/nd_http.h"
#include "tablet/node/nd_metrics.h"
#include "tablet/paxos/px.h"
#include "truetime/tt.h"

#include "tablet/node/nd_int.h"
#include "tablet/node/nd_peer.h"
#include "tablet/node/nd_validate.h"

/* Process-wide: read_at sizes scan pages from it without a node at hand. A
 * test switch (MERIDIAN_TEST_REPLY_MAX) lowers it when a node opens. */
static uint32_t reply_max = NET_FRAME_DEFAULT_MAX;

uint32_t nd_reply_max(void)
{
    return reply_max;
}

void nd_reply_set_max(uint32_t max)
{
    reply_max = max;
}

void nd_reply_json(nd_node *n, net_reply_to to, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    size_t len = s ? strlen(s) : 0;
    if (!s || len > nd_reply_max()) {
        /* The client hears why instead of waiting out its timeout. */
        char msg[160];
        if (s)
            snprintf(msg, sizeof msg, "the reply takes %zu bytes, over the %u-byte frame limit",
                     len, nd_reply_max());
        else
            snprintf(msg, sizeof msg, "the reply could not be encoded (out of memory)");
        MR_WARN("node", "reply refused: %s", msg);
        free(s);
        json_t *e = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", len ? "too_large" : "nomem",
                              "message", msg);
        s = e ? json_dumps(e, JSON_COMPACT) : NULL;
        json_decref(e);
        if (!s)
            return;
        len = strlen(s);
    }
    mr_err err;
    if (net_transport_reply(n->tr, to, ND_MSG_REPLY, s, (uint32_t)len, &err) != MR_OK)
        MR_WARN("node", "reply dropped: %s", mr_err_msg(&err));
    free(s);
}

void nd_reply_error(nd_node *n, net_reply_to to, const char *code, const char *msg)
{
    nd_reply_json(n, to, json_pack("{s:b, s:s, s:s}", "ok", 0, "error", code, "message", msg));
}

/* Message types only cluster nodes may send: replication, cluster formation,
 * two-phase commit and split traffic. A client certificate (clientAuth only)
 * may ask, propose and read status, never speak these. */
void nd_peer_malformed(nd_node *n, const net_message *m, const mr_err *why)
{
    n->stats.malformed++;
    const ProtobufCMessageDescriptor *d = nd_peer_descriptor(m->type);
    MR_WARN("node", "malformed %s message (type %u) from %s: %s", d ? d->short_name : "peer",
            m->type, m->peer, mr_err_msg(why));
}

const ProtobufCMessage *nd_peer_receive(nd_node *n, const net_message *m, pr_arena *a)
{
    mr_err err;
    const ProtobufCMessage *o = nd_peer_decode(m->type, a, m->payload, m->len, &err);
    if (!o)
        nd_peer_malformed(n, m, &err);
    return o;
}

static bool node_only(uint8_t type)
{
    return type == ND_MSG_PX || type == ND_MSG_BOOTSTRAP || type == ND_MSG_PREPARED ||
           type == ND_MSG_DECISION || type == ND_MSG_TXN_QUERY || type == ND_MSG_SAFE_REQ ||
           type == ND_MSG_SAFE_GRANT || type == ND_MSG_SPLIT;
}

/* Message types that mean nothing before `meridian init`: requests are told
 * so, one-way messages dropped. */
static bool needs_cluster(uint8_t type)
{
    switch (type) {
    case ND_MSG_PROPOSE:
    case ND_MSG_RANGES:
    case ND_MSG_SPLIT_AT:
    case ND_MSG_TXN:
    case ND_MSG_SNAPREAD:
    case ND_MSG_REGISTER:
    case ND_MSG_SAFE_REQ:
    case ND_MSG_SAFE_GRANT:
    case ND_MSG_SPLIT:
    case ND_MSG_PREPARED:
    case ND_MSG_DECISION:
    case ND_MSG_TXN_QUERY:
        return true;
    default:
        return false;
    }
}

void nd_dispatch(net_transport *t, const net_message *m, void *ud)
{
    nd_node *n = ud;
    if (n->closing || n->fatal)
        return;
    if (node_only(m->type) && !m->peer_is_node) {
        n->stats.refused++;
        MR_WARN("node", "refused message type %u from non-node peer %s (%s)", m->type, m->peer,
                m->peer_name);
        if (m->reply_to.req_id)
            nd_reply_error(n, m->reply_to, "forbidden", "only cluster nodes may send this");
        return;
    }
    if (needs_cluster(m->type) && !n->initialized) {
        if (m->reply_to.req_id)
            nd_reply_error(n, m->reply_to, "uninitialized", "run meridian init first");
        return;
    }
    switch (m->type) {
    case ND_MSG_PX:
        nd_on_px(n, m);
        break;
    case ND_MSG_INFO:
        nd_reply_json(n, m->reply_to,
                      json_pack("{s:s, s:s, s:s, s:b, s:s}", "addr", n->advertise, "zone", n->zone,
                                "region", n->region, "initialized", n->initialized, "cluster",
                                n->cluster_id));
        break;
    case ND_MSG_INIT:
        nd_cluster_on_init(n, m);
        break;
    case ND_MSG_BOOTSTRAP:
        nd_cluster_on_bootstrap(n, m);
        break;
    case ND_MSG_PROPOSE:
        nd_chain_on_propose(n, m);
        break;
    case ND_MSG_STATUS:
        nd_reply_json(n, m->reply_to, nd_status_json(n));
        break;
    case ND_MSG_RANGES:
        nd_range_on_request(n, m);
        break;
    case ND_MSG_SAFE_REQ:
        nd_txn_on_safe_request(n, m);
        break;
    case ND_MSG_SAFE_GRANT:
        nd_txn_on_safe_grant(n, m);
        break;
    case ND_MSG_SPLIT:
        nd_split_on_message(n, m);
        break;
    case ND_MSG_SPLIT_AT:
        nd_split_on_request(n, m);
        break;
    case ND_MSG_PREPARED:
    case ND_MSG_DECISION:
    case ND_MSG_TXN_QUERY:
        nd_txn_on_2pc(n, m);
        break;
    case ND_MSG_TXN:
    case ND_MSG_SNAPREAD:
        nd_txn_on_message(n, m);
        break;
    case ND_MSG_FAULT:
        nd_fault_on_request(n, m);
        break;
    case ND_MSG_REGISTER:
        nd_chain_on_register(n, m);
        break;
    default:
        MR_WARN("node", "unknown message type %u from %s", m->type, m->peer);
        if (m->reply_to.req_id)
            nd_reply_error(n, m->reply_to, "invalid", "unknown message type");
    }
}
