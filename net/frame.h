/* Wire framing: every message travels in one frame with a fixed 18-byte header.
 *
 *   offset size field
 *   0      2    magic 0x4D52 ("MR")  rejects strangers (HTTP, TLS to a plain port) at once
 *   2      1    protocol version (NET_FRAME_VERSION; 2 since every payload integer is
 *                big-endian: version 1's Paxos and node payloads were little-endian)
 *   3      1    message type, 1..255 (0 is never valid)
 *   4      2    flags: bit 0 = response, bit 1 = control (the transport's own
 *                messages, e.g. HELLO); every other bit must be zero
 *   6      8    request id: 0 = one-way message, else matched by the response
 *   14     4    payload length, at most the decoder's maximum frame size
 *   18     ...  payload (the message codec, net/buf.h)
 *
 * All integers are big-endian. The decoder is incremental: it accepts bytes in
 * any chunking and checks each header field as soon as its bytes arrive, so a
 * bad magic or an oversize length is refused before any payload is buffered. */
#ifndef NET_FRAME_H
#define NET_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "common/mr_err.h"
#include "net/buf.h"

#define NET_FRAME_MAGIC       0x4D52u
#define NET_FRAME_VERSION     2
#define NET_FRAME_HDR         18
#define NET_FRAME_RESPONSE    0x0001u
#define NET_FRAME_CONTROL     0x0002u
#define NET_FRAME_FLAGS_KNOWN (NET_FRAME_RESPONSE | NET_FRAME_CONTROL)
/* Default and hard ceiling of the maximum payload size. */
#define NET_FRAME_DEFAULT_MAX (16u << 20)
#define NET_FRAME_LIMIT       (256u << 20)

typedef struct net_frame {
    uint8_t type;
    uint16_t flags;
    uint64_t req_id;
    uint32_t len;
    const uint8_t *payload; /* borrowed: valid only during the callback */
} net_frame;

/* Writes the header for `f` (payload ignored) into out. */
void net_frame_put_header(uint8_t out[NET_FRAME_HDR], const net_frame *f);
/* Appends header + payload to w. */
void net_frame_encode(net_wbuf *w, const net_frame *f);

/* Called once per complete frame. Return 0 to go on, nonzero to stop feeding
 * (e.g. the connection is closing): the rest of the chunk is dropped and the
 * decoder must not be fed again. */
typedef int (*net_frame_cb)(void *ctx, const net_frame *f);

typedef struct net_frame_decoder {
    uint32_t max_payload;
    uint8_t hdr[NET_FRAME_HDR];
    size_t hdr_have;
    net_frame cur; /* header of the frame being assembled */
    uint8_t *body; /* owned; allocated only when a payload spans chunks */
    size_t body_have;
    int failed;      /* sticky MR_EPROTO after a malformed frame */
    uint64_t frames; /* frames delivered */
} net_frame_decoder;

/* max_payload 0 means NET_FRAME_DEFAULT_MAX; values over NET_FRAME_LIMIT are clamped. */
void net_frame_decoder_init(net_frame_decoder *d, uint32_t max_payload);
void net_frame_decoder_free(net_frame_decoder *d);

/* Consumes `len` bytes. Returns MR_OK (all consumed or stopped by cb), or
 * MR_EPROTO / MR_ENOMEM with a reason in err; after an error the decoder fails
 * every later call, since the stream has lost its frame boundaries. */
int net_frame_decoder_feed(net_frame_decoder *d, const void *data, size_t len, net_frame_cb cb,
                           void *ctx, mr_err *err);

/* Validates a complete header (with the decoder's rules); MR_OK or MR_EPROTO. */
int net_frame_parse_header(const uint8_t *hdr, size_t have, uint32_t max_payload, net_frame *f,
                           mr_err *err);

#endif
