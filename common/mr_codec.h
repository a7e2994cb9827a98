/* The integer codec: fixed-width big-endian (network order) put/get for 16, 32 and 64 bits.
 * Every integer Meridian writes to the wire or to disk goes through these, so there is one
 * byte order and one implementation; the stream writer/reader of net/buf.h builds on them.
 * Callers check bounds: p must hold the width. Host byte order never leaks into a format. */
#ifndef MR_CODEC_H
#define MR_CODEC_H

#include <stdint.h>

static inline void mr_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void mr_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void mr_put_u64(uint8_t *p, uint64_t v)
{
    mr_put_u32(p, (uint32_t)(v >> 32));
    mr_put_u32(p + 4, (uint32_t)v);
}

static inline uint16_t mr_get_u16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t mr_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t mr_get_u64(const uint8_t *p)
{
    return (uint64_t)mr_get_u32(p) << 32 | mr_get_u32(p + 4);
}

#endif
