/* Which message each frame carries (proto/meridian.proto: a frame's type is a MsgType, its
 * payload one message), and replies decoded with the checks the schema cannot state. Shared
 * by the node, libmeridian, the CLI, the launcher and the test fakes, so that the pairing of
 * types and messages is written once. */
#ifndef PR_MSG_H
#define PR_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "common/mr_err.h"
#include "proto/pr.h"

/* The message a request (or one-way message) of `type` carries: Empty for INFO, STATUS and
 * RANGES; NULL for REPLY and for a type this version does not know. */
const ProtobufCMessageDescriptor *pr_request_descriptor(uint8_t type);

/* Decodes a REPLY frame's payload into a (it lives until a is reset) and checks that exactly
 * one of error and body is set. NULL with MR_EPROTO in err otherwise, or MR_ENOMEM. */
Meridian__Reply *pr_reply_decode(pr_arena *a, const void *buf, size_t len, mr_err *err);

/* The error code of a reply (0 = ERROR_UNSPECIFIED: no error, the body is set). */
static inline Meridian__ErrorCode pr_reply_code(const Meridian__Reply *r)
{
    return r && r->error ? r->error->code : MERIDIAN__ERROR_CODE__ERROR_UNSPECIFIED;
}

/* The error's message, "" when none. */
static inline const char *pr_reply_message(const Meridian__Reply *r)
{
    return r && r->error && r->error->message ? r->error->message : "";
}

#endif
