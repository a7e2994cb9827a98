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

#include "proto/pr_msg.h"
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

/* An Error reply's encoding; {NULL, 0} only when out of memory. */
static nd_enc enc_error(Meridian__ErrorCode code, const char *msg, bool retryable,
                        const char *leader, uint64_t owner)
{
    Meridian__Error e = MERIDIAN__ERROR__INIT;
    e.code = code;
    e.message = (char *)(uintptr_t)msg;
    if (retryable) {
        e.has_retryable = true;
        e.retryable = true;
    }
    e.leader = (char *)(uintptr_t)leader;
    if (owner) {
        e.has_owner = true;
        e.owner = owner;
    }
    Meridian__Reply r = MERIDIAN__REPLY__INIT;
    r.error = &e;
    nd_enc out = {0};
    mr_err err;
    if (pr_encode(&r.base, 0, &out.buf, &out.len, &err) != MR_OK)
        out = (nd_enc){0};
    return out;
}

nd_enc nd_enc_reply(const Meridian__Reply *r)
{
    nd_enc out = {0};
    mr_err err;
    int rc = pr_encode(&r->base, nd_reply_max(), &out.buf, &out.len, &err);
    if (rc == MR_OK)
        return out;
    /* The client hears why instead of waiting out its timeout. */
    char msg[200];
    if (rc == MR_EFULL)
        snprintf(msg, sizeof msg, "the reply takes %zu bytes, over the %u-byte frame limit",
                 protobuf_c_message_get_packed_size(&r->base), nd_reply_max());
    else
        snprintf(msg, sizeof msg, "the reply could not be encoded: %s", mr_err_msg(&err));
    MR_WARN("node", "reply refused: %s", msg);
    return enc_error(rc == MR_EFULL ? MERIDIAN__ERROR_CODE__TOO_LARGE
                                    : MERIDIAN__ERROR_CODE__NO_MEMORY,
                     msg, false, NULL, 0);
}

nd_enc nd_enc_error(Meridian__ErrorCode code, const char *msg, bool retryable, const char *leader,
                    uint64_t owner)
{
    return enc_error(code, msg, retryable, leader, owner);
}

nd_enc nd_enc_body(Meridian__Reply__BodyCase body_case, const ProtobufCMessage *body)
{
    Meridian__Reply r = MERIDIAN__REPLY__INIT;
    r.body_case = body_case;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&meridian__reply__descriptor, (unsigned)body_case);
    if (f) /* every member of the body is a message field */
        *(const ProtobufCMessage **)((char *)&r + f->offset) = body;
    return nd_enc_reply(&r);
}

void nd_send_reply(nd_node *n, net_reply_to to, nd_enc e)
{
    if (!e.buf) {
        MR_WARN("node", "reply dropped: out of memory");
        return;
    }
    mr_err err;
    if (net_transport_reply(n->tr, to, ND_MSG_REPLY, e.buf, (uint32_t)e.len, &err) != MR_OK)
        MR_WARN("node", "reply dropped: %s", mr_err_msg(&err));
    free(e.buf);
}

void nd_reply(nd_node *n, net_reply_to to, const Meridian__Reply *r)
{
    nd_send_reply(n, to, nd_enc_reply(r));
}

void nd_reply_body(nd_node *n, net_reply_to to, Meridian__Reply__BodyCase body_case,
                   const ProtobufCMessage *body)
{
    nd_send_reply(n, to, nd_enc_body(body_case, body));
}

void nd_reply_error(nd_node *n, net_reply_to to, Meridian__ErrorCode code, const char *msg)
{
    nd_send_reply(n, to, enc_error(code, msg, false, NULL, 0));
}

void nd_reply_ack(nd_node *n, net_reply_to to)
{
    Meridian__Ack ack = MERIDIAN__ACK__INIT;
    nd_reply_body(n, to, MERIDIAN__REPLY__BODY_ACK, &ack.base);
}

Meridian__ErrorCode nd_code_of_mr(int mr)
{
    switch (mr) {
    case MR_ESTALE:
        return MERIDIAN__ERROR_CODE__STALE;
    case MR_ENOMEM:
        return MERIDIAN__ERROR_CODE__NO_MEMORY;
    case MR_EINVAL:
        return MERIDIAN__ERROR_CODE__INVALID;
    default:
        return MERIDIAN__ERROR_CODE__INTERNAL;
    }
}

const ProtobufCMessage *nd_request_decode(const net_message *m, pr_arena *a, mr_err *err)
{
    const ProtobufCMessageDescriptor *d = pr_request_descriptor(m->type);
    if (!d) {
        mr_errf(err, MR_EINVAL, "message type %u is not a request", m->type);
        return NULL;
    }
    ProtobufCMessage *o = pr_decode(d, a, m->payload, m->len, err);
    if (!o)
        mr_err_wrap(err, "the request does not decode");
    return o;
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

/* ND_MSG_INFO: who this node is, for `meridian init`. */
static void nd_on_info(nd_node *n, const net_message *m)
{
    Meridian__InfoReply r = MERIDIAN__INFO_REPLY__INIT;
    r.addr = n->advertise;
    r.zone = n->zone;
    r.region = n->region;
    r.initialized = n->initialized;
    r.cluster = n->cluster_id;
    r.proto_version = MERIDIAN__PROTO_VERSION__PROTO_VERSION;
    nd_reply_body(n, m->reply_to, MERIDIAN__REPLY__BODY_INFO, &r.base);
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
            nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__REFUSED,
                           "only cluster nodes may send this");
        return;
    }
    if (needs_cluster(m->type) && !n->initialized) {
        if (m->reply_to.req_id)
            nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__NOT_INITIALIZED,
                           "run meridian init first");
        return;
    }
    switch (m->type) {
    case ND_MSG_PX:
        nd_on_px(n, m);
        break;
    case ND_MSG_INFO:
        nd_on_info(n, m);
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
        nd_status_on_request(n, m);
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
            nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__INVALID, "unknown message type");
    }
}
