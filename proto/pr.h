/* The wire protocol (proto/meridian.proto), encoded by protobuf-c: one place
 * that declares every message between clients and nodes and between nodes.
 * This module adds what protobuf-c leaves to its users:
 *   - an arena that a decoded message borrows from (one request's allocations
 *     freed at once, no per-field malloc on the hot path);
 *   - encoding with a byte cap (a message over the frame limit is an error the
 *     caller turns into TOO_LARGE, never a silently dropped frame);
 *   - errors as mr_err;
 *   - the message each frame type carries, and replies decoded with checks
 *     (pr_msg.h);
 *   - a JSON mapping driven by the descriptors, for what a person reads
 *     (`--json` output) and for tests that write requests by hand (pr_json.h;
 *     the only part that needs jansson, which libmeridian does not link).
 * Why protobuf-c and not a hand-written codec: docs/architecture.md
 * ("The wire protocol") and bench/proto. */
#ifndef PR_H
#define PR_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "common/mr_err.h"
#include "proto/meridian.pb-c.h"

/* ---- the arena ---- */

typedef struct pr_chunk pr_chunk;

/* A bump allocator in chunks. Everything allocated from it lives until
 * pr_arena_reset or pr_arena_free. Embed it (no allocation until first use). */
typedef struct pr_arena {
    ProtobufCAllocator allocator; /* for protobuf-c: allocates from this arena */
    pr_chunk *chunks;
    size_t used; /* bytes handed out since the last reset, for limits and tests */
} pr_arena;

void pr_arena_init(pr_arena *a);
/* Forgets everything allocated, keeping the first chunk for reuse. */
void pr_arena_reset(pr_arena *a);
void pr_arena_free(pr_arena *a);
/* n bytes aligned for any type, or NULL when out of memory. */
void *pr_arena_alloc(pr_arena *a, size_t n);
/* A copy of n bytes (n may be 0: a valid non-NULL pointer), or NULL. */
void *pr_arena_dup(pr_arena *a, const void *p, size_t n);

/* ---- encoding and decoding ---- */

/* Decodes buf[len] as a message of descriptor d, allocated from a. Returns the
 * message (cast it to the generated type), or NULL with MR_EPROTO in err when
 * the bytes are not such a message (truncated, a required field missing, a
 * wrong wire type) or MR_ENOMEM. */
ProtobufCMessage *pr_decode(const ProtobufCMessageDescriptor *d, pr_arena *a, const void *buf,
                            size_t len, mr_err *err);

/* Encodes m into a malloc'd buffer (*out, *len; the caller frees it). MR_EFULL
 * when it would exceed max bytes (0 = no cap), MR_ENOMEM. */
int pr_encode(const ProtobufCMessage *m, size_t max, uint8_t **out, size_t *len, mr_err *err);

/* The lowercase name of an error code ("invalid", "not_leader", ...; "error"
 * for a value this version does not know). */
const char *pr_error_name(Meridian__ErrorCode code);

#endif
