/* One request from a process without an event loop of its own (command-line
 * tools, tests, a harness's control calls): a private libuv loop and a
 * dial-only transport, an optional one-way message first on the same
 * connection, one request, its reply, everything closed again. */
#ifndef NET_ONESHOT_H
#define NET_ONESHOT_H

#include <stdint.h>

#include "common/mr_err.h"
#include "net/tls.h"

/* tls NULL = plain TCP. oneway_type 0 = no one-way message. On MR_OK,
 * *reply (malloc'd, NUL-terminated for convenience; caller frees) and
 * *reply_len hold the response payload. Errors: those of
 * net_transport_request's callback (MR_ETIMEDOUT, MR_EUNAVAIL, ...). */
int net_oneshot(net_tls_ctx *tls, const char *addr, uint8_t oneway_type, const void *oneway,
                uint32_t oneway_len, uint8_t type, const void *payload, uint32_t len,
                uint64_t timeout_ms, uint8_t **reply, uint32_t *reply_len, mr_err *err);

#endif
