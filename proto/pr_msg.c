/* The message of each frame type, and replies decoded with checks (pr_msg.h). */
#include "proto/pr_msg.h"

#include <stdbool.h>

const ProtobufCMessageDescriptor *pr_request_descriptor(uint8_t type)
{
    switch (type) {
    case MERIDIAN__MSG_TYPE__MSG_PX:
        return &meridian__px_bundle__descriptor;
    case MERIDIAN__MSG_TYPE__MSG_INFO:
    case MERIDIAN__MSG_TYPE__MSG_STATUS:
    case MERIDIAN__MSG_TYPE__MSG_RANGES:
        return &meridian__empty__descriptor;
    case MERIDIAN__MSG_TYPE__MSG_INIT:
        return &meridian__init_request__descriptor;
    case MERIDIAN__MSG_TYPE__MSG_BOOTSTRAP:
        return &meridian__cluster_description__descriptor;
    case MERIDIAN__MSG_TYPE__MSG_PROPOSE:
        return &meridian__propose_request__descriptor;
    case MERIDIAN__MSG_TYPE__MSG_FAULT:
        return &meridian__fault_request__descriptor;
    case MERIDIAN__MSG_TYPE__MSG_REGISTER:
        return &meridian__register_request__descriptor;
    case MERIDIAN__MSG_TYPE__MSG_TXN:
        return &meridian__txn_request__descriptor;
    case MERIDIAN__MSG_TYPE__MSG_SNAPREAD:
        return &meridian__snap_read_request__descriptor;
    case MERIDIAN__MSG_TYPE__MSG_SAFE_REQ:
        return &meridian__safe_request__descriptor;
    case MERIDIAN__MSG_TYPE__MSG_PREPARED:
    case MERIDIAN__MSG_TYPE__MSG_DECISION:
    case MERIDIAN__MSG_TYPE__MSG_TXN_QUERY:
        return &meridian__two_phase__descriptor;
    case MERIDIAN__MSG_TYPE__MSG_SAFE_GRANT:
        return &meridian__safe_grant__descriptor;
    case MERIDIAN__MSG_TYPE__MSG_SPLIT:
        return &meridian__split__descriptor;
    case MERIDIAN__MSG_TYPE__MSG_SPLIT_AT:
        return &meridian__split_at_request__descriptor;
    case MERIDIAN__MSG_TYPE__MSG_TXN_NOTICE:
        return &meridian__txn_notice__descriptor;
    default:
        return NULL;
    }
}

Meridian__Reply *pr_reply_decode(pr_arena *a, const void *buf, size_t len, mr_err *err)
{
    Meridian__Reply *r =
        (Meridian__Reply *)pr_decode(&meridian__reply__descriptor, a, buf, len, err);
    if (!r)
        return NULL;
    bool body = r->body_case != MERIDIAN__REPLY__BODY__NOT_SET;
    if (!r->error == !body) {
        mr_errf(err, MR_EPROTO, "a reply with %s",
                body ? "both an error and a body" : "neither an error nor a body");
        return NULL;
    }
    if (r->error && r->error->code == MERIDIAN__ERROR_CODE__ERROR_UNSPECIFIED) {
        mr_errf(err, MR_EPROTO, "a reply with an error of code 0");
        return NULL;
    }
    return r;
}
