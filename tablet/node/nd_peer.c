/* Node-to-node messages: the schema message of each type, decoding with checks, encoding. */
#include <assert.h>
#include <stdlib.h>

#include "net/frame.h"
#include "tablet/node/nd.h"
#include "proto/pr_msg.h"
#include "tablet/node/nd_peer.h"
#include "tablet/paxos/px.h"

/* The transport's type byte is the schema's MsgType: one numbering. */
#define SAME(nd, pb) static_assert((int)(nd) == (int)(pb), #nd " is not " #pb)
SAME(ND_MSG_PX, MERIDIAN__MSG_TYPE__MSG_PX);
SAME(ND_MSG_INFO, MERIDIAN__MSG_TYPE__MSG_INFO);
SAME(ND_MSG_INIT, MERIDIAN__MSG_TYPE__MSG_INIT);
SAME(ND_MSG_BOOTSTRAP, MERIDIAN__MSG_TYPE__MSG_BOOTSTRAP);
SAME(ND_MSG_PROPOSE, MERIDIAN__MSG_TYPE__MSG_PROPOSE);
SAME(ND_MSG_STATUS, MERIDIAN__MSG_TYPE__MSG_STATUS);
SAME(ND_MSG_REPLY, MERIDIAN__MSG_TYPE__MSG_REPLY);
SAME(ND_MSG_FAULT, MERIDIAN__MSG_TYPE__MSG_FAULT);
SAME(ND_MSG_REGISTER, MERIDIAN__MSG_TYPE__MSG_REGISTER);
SAME(ND_MSG_TXN, MERIDIAN__MSG_TYPE__MSG_TXN);
SAME(ND_MSG_SNAPREAD, MERIDIAN__MSG_TYPE__MSG_SNAPREAD);
SAME(ND_MSG_SAFE_REQ, MERIDIAN__MSG_TYPE__MSG_SAFE_REQ);
SAME(ND_MSG_RANGES, MERIDIAN__MSG_TYPE__MSG_RANGES);
SAME(ND_MSG_PREPARED, MERIDIAN__MSG_TYPE__MSG_PREPARED);
SAME(ND_MSG_DECISION, MERIDIAN__MSG_TYPE__MSG_DECISION);
SAME(ND_MSG_TXN_QUERY, MERIDIAN__MSG_TYPE__MSG_TXN_QUERY);
SAME(ND_MSG_SAFE_GRANT, MERIDIAN__MSG_TYPE__MSG_SAFE_GRANT);
SAME(ND_MSG_SPLIT, MERIDIAN__MSG_TYPE__MSG_SPLIT);
SAME(ND_MSG_SPLIT_AT, MERIDIAN__MSG_TYPE__MSG_SPLIT_AT);
SAME(ND_MSG_TXN_NOTICE, MERIDIAN__MSG_TYPE__MSG_TXN_NOTICE);

const ProtobufCMessageDescriptor *nd_peer_descriptor(uint8_t type)
{
    switch (type) {
    case ND_MSG_PX:
    case ND_MSG_BOOTSTRAP:
    case ND_MSG_SAFE_REQ:
    case ND_MSG_SAFE_GRANT:
    case ND_MSG_PREPARED:
    case ND_MSG_DECISION:
    case ND_MSG_TXN_QUERY:
    case ND_MSG_SPLIT:
        return pr_request_descriptor(type); /* the one pairing of types and messages */
    default:
        return NULL;
    }
}

/* What the schema leaves to its readers: protobuf-c takes any enum number and
 * optional fields an op needs may be absent. */
static int check(uint8_t type, const ProtobufCMessage *m, mr_err *err)
{
    if (type == ND_MSG_SPLIT) {
        const Meridian__Split *s = (const Meridian__Split *)m;
        switch (s->op) {
        case MERIDIAN__SPLIT__OP__ALLOC:
            if (!s->has_start || !s->has_end || !s->has_key)
                return mr_errf(err, MR_EPROTO, "split alloc without start, end or key");
            break;
        case MERIDIAN__SPLIT__OP__ALLOCATED:
            if (!s->has_start || !s->has_end || !s->has_key || !s->has_child)
                return mr_errf(err, MR_EPROTO, "split allocated without start, end, key or child");
            break;
        case MERIDIAN__SPLIT__OP__NOTICE:
            if (!s->has_key || !s->has_child)
                return mr_errf(err, MR_EPROTO, "split notice without key or child");
            break;
        default:
            return mr_errf(err, MR_EPROTO, "split op %d unknown", (int)s->op);
        }
    } else if (type == ND_MSG_PX) {
        const Meridian__PxBundle *b = (const Meridian__PxBundle *)m;
        if (b->from < 1 || b->from > PX_MAX_NODE_ID)
            return mr_errf(err, MR_EPROTO, "bundle from node %u", b->from);
        if (b->clock_status > UINT8_MAX)
            return mr_errf(err, MR_EPROTO, "bundle clock status %u", b->clock_status);
    } else if (type == ND_MSG_SAFE_REQ) {
        const Meridian__SafeRequest *r = (const Meridian__SafeRequest *)m;
        if (r->node < 1 || r->node > PX_MAX_NODE_ID)
            return mr_errf(err, MR_EPROTO, "safe-time request from node %u", r->node);
    }
    return MR_OK;
}

ProtobufCMessage *nd_peer_decode(uint8_t type, pr_arena *a, const void *buf, size_t len,
                                 mr_err *err)
{
    const ProtobufCMessageDescriptor *d = nd_peer_descriptor(type);
    if (!d) {
        mr_errf(err, MR_EPROTO, "message type %u is not a node-to-node message", type);
        return NULL;
    }
    ProtobufCMessage *m = pr_decode(d, a, buf, len, err);
    if (!m)
        return NULL;
    if (check(type, m, err) != MR_OK)
        return NULL; /* the arena takes it back */
    return m;
}

int nd_peer_encode(const ProtobufCMessage *m, uint8_t **out, size_t *len, mr_err *err)
{
    return pr_encode(m, NET_FRAME_DEFAULT_MAX, out, len, err);
}

size_t nd_px_item_bytes(size_t n)
{
    size_t v = 1;
    for (size_t x = n; x >= 0x80; x >>= 7)
        v++;
    return 1 + v + n;
}
