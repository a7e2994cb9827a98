/* Bounds-checked byte codec: a growable writer and a sticky-failing reader for
 * big-endian integers, LEB128 varints and length-prefixed byte strings. Every
 * message that crosses the network is built and parsed with these, so a
 * hostile length or count can never read or allocate past what was received.
 * Fixed-width integers use the one codec of common/mr_codec.h (mr_put_u32, ...). */
#ifndef NET_BUF_H
#define NET_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "common/mr_codec.h"
#include "common/mr_err.h"

/* ---- Writer ---- */

/* A growable output buffer. Owns `data` (free with net_wbuf_free). A failed
 * allocation or a limit overrun makes it fail sticky: later writes are no-ops and
 * net_wbuf_failed() reports it, so encoders check once at the end. */
typedef struct net_wbuf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t limit; /* maximum len; 0 = SIZE_MAX */
    int failed;   /* MR_OK, MR_ENOMEM or MR_EFULL */
} net_wbuf;

void net_wbuf_init(net_wbuf *w, size_t limit);
void net_wbuf_free(net_wbuf *w);
/* Forget the contents, keep the allocation. */
void net_wbuf_reset(net_wbuf *w);
/* Hands the buffer to the caller (who frees it with free()) and resets w. */
uint8_t *net_wbuf_take(net_wbuf *w, size_t *len);
int net_wbuf_failed(const net_wbuf *w);

/* Reserve n bytes at the end and return a pointer to them, or NULL on failure. */
uint8_t *net_wbuf_reserve(net_wbuf *w, size_t n);
void net_wbuf_u8(net_wbuf *w, uint8_t v);
void net_wbuf_u16(net_wbuf *w, uint16_t v);
void net_wbuf_u32(net_wbuf *w, uint32_t v);
void net_wbuf_u64(net_wbuf *w, uint64_t v);
void net_wbuf_uvarint(net_wbuf *w, uint64_t v);
/* Zig-zag encoded, so small negative numbers stay short. */
void net_wbuf_svarint(net_wbuf *w, int64_t v);
void net_wbuf_raw(net_wbuf *w, const void *p, size_t n);
/* uvarint length, then the bytes. */
void net_wbuf_bytes(net_wbuf *w, const void *p, size_t n);
void net_wbuf_str(net_wbuf *w, const char *s);

/* ---- Reader ---- */

/* Reads from a borrowed buffer (the caller keeps it alive). The first failure
 * (truncation, an overlong varint, a length or count over its limit) is sticky:
 * every later read returns zero/empty, and net_rbuf_error() explains the first
 * one with its offset. Decoders read everything, then check once. */
typedef struct net_rbuf {
    const uint8_t *p;
    size_t len;
    size_t pos;
    int failed;       /* MR_OK or MR_EPROTO */
    const char *what; /* static description of the first failure */
    size_t fail_pos;
} net_rbuf;

void net_rbuf_init(net_rbuf *r, const void *p, size_t len);
static inline size_t net_rbuf_remaining(const net_rbuf *r)
{
    return r->failed ? 0 : r->len - r->pos;
}
static inline int net_rbuf_failed(const net_rbuf *r)
{
    return r->failed;
}
/* Marks the reader failed (for semantic checks made by decoders); keeps the first reason. */
void net_rbuf_fail(net_rbuf *r, const char *what);

uint8_t net_rbuf_u8(net_rbuf *r);
uint16_t net_rbuf_u16(net_rbuf *r);
uint32_t net_rbuf_u32(net_rbuf *r);
uint64_t net_rbuf_u64(net_rbuf *r);
/* At most 10 bytes; rejects overflow past 64 bits and non-minimal encodings. */
uint64_t net_rbuf_uvarint(net_rbuf *r);
int64_t net_rbuf_svarint(net_rbuf *r);
/* n raw bytes; returns a pointer into the buffer (NULL on failure). */
const uint8_t *net_rbuf_raw(net_rbuf *r, size_t n);
/* A length-prefixed byte string of at most `max` bytes; *out points into the
 * buffer. Returns the length (0 with *out = NULL on failure). */
size_t net_rbuf_bytes(net_rbuf *r, size_t max, const uint8_t **out);
/* A length-prefixed string copied into dst (NUL-terminated, at most dstlen-1
 * bytes, no embedded NUL). Returns 0 or -1 (reader failed). */
int net_rbuf_str(net_rbuf *r, char *dst, size_t dstlen);
/* An element count of at most `max`, also checked against the bytes left given
 * each element takes at least `min_elem` bytes, so a count can never make the
 * caller allocate more than the message could describe. */
uint64_t net_rbuf_count(net_rbuf *r, uint64_t max, size_t min_elem);
/* Fails unless every byte was consumed (trailing garbage is an error). */
void net_rbuf_expect_end(net_rbuf *r);
/* MR_OK, or MR_EPROTO with "what at offset N" in err. */
int net_rbuf_error(const net_rbuf *r, mr_err *err);

#endif
