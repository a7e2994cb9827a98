/* Node-to-node messages on the wire schema (proto/meridian.proto, encoded by
 * protobuf-c through proto/pr.h): 2PC (TwoPhase), splits (Split), safe time
 * (SafeRequest, SafeGrant), Paxos bundles (PxBundle) and bootstrap
 * (ClusterDescription). Client requests are decoded by nd_request_decode (nd_int.h). */
#ifndef ND_PEER_H
#define ND_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "common/mr_err.h"
#include "proto/pr.h"

/* The schema message a node-to-node type carries, or NULL for any other type. */
const ProtobufCMessageDescriptor *nd_peer_descriptor(uint8_t type);

/* Decodes buf[len] as the message of node-to-node `type`, allocated from a
 * (it lives until a is reset), and checks what the schema cannot say (an
 * enum value this version knows, the fields a Split op needs, a node id in
 * range). Returns the message (cast it to the generated type), or NULL with
 * MR_EPROTO in err: the caller counts it (stats.malformed) and drops it. */
ProtobufCMessage *nd_peer_decode(uint8_t type, pr_arena *a, const void *buf, size_t len,
                                 mr_err *err);

/* Encodes m under the transport's frame limit into a malloc'd buffer (*out,
 * *len; the caller frees it). MR_EFULL over the limit, MR_ENOMEM. Senders
 * fill the generated struct (on the stack, fields borrowed) and pass it here
 * or to nd_send_to_group (nd_int.h). */
int nd_peer_encode(const ProtobufCMessage *m, uint8_t **out, size_t *len, mr_err *err);

/* What one Paxos message of n bytes adds to a PxBundle: its tag, its length, itself. */
size_t nd_px_item_bytes(size_t n);

#endif
