/* The JSON mapping of the wire protocol's messages (proto/meridian.proto), driven by the
 * descriptors protobuf-c generates: for what a person reads (`meridian ... --json`, the
 * harness's records) and for tests and tools that write requests by hand. Never on the wire.
 * The node and libmeridian do not use it. */
#ifndef PR_JSON_H
#define PR_JSON_H

#include <jansson.h>

#include "proto/pr.h"

/* The mapping:
 * Field names as in the .proto file; enum values as lowercase names
 * ("not_leader"); bytes as a JSON string when they are valid UTF-8, else
 * {"hex": "..."} (both accepted when reading); 64-bit integers as JSON
 * integers (uint64 over INT64_MAX as a decimal string); a oneof member as an
 * ordinary field. Absent optional fields are left out. */

/* The JSON form of m (a new reference), or NULL when out of memory. */
json_t *pr_to_json(const ProtobufCMessage *m);

/* Builds a message of descriptor d from the JSON object j, allocated from a.
 * MR_EINVAL in err names the field when j does not describe such a message
 * (an unknown field, a wrong type, a value out of range, a required field
 * missing). */
ProtobufCMessage *pr_from_json(const ProtobufCMessageDescriptor *d, const json_t *j, pr_arena *a,
                               mr_err *err);

/* The JSON view of a reply, the shape tools and tests read: {"ok": true, ...the body's
 * fields} or {"ok": false, "error": "<lowercase code>", "message", "retryable", "leader",
 * "owner"}. A StatusReply's view is its document (parsed) with "ok" and "initialized" added.
 * NULL when out of memory. */
json_t *pr_reply_view(const Meridian__Reply *r);

/* The request of `type` (pr_request_descriptor) built from JSON text, encoded (*out
 * malloc'd, the caller frees it). MR_EINVAL naming the field when the text is not such a
 * request; MR_EPROTO for a type that carries no request message. */
int pr_request_from_text(uint8_t type, const char *json, uint8_t **out, size_t *len, mr_err *err);

#endif
