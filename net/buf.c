/* Bounds-checked byte writer and reader (see buf.h). */
#include "net/buf.h"

#include <stdlib.h>
#include <string.h>

void net_wbuf_init(net_wbuf *w, size_t limit)
{
    memset(w, 0, sizeof *w);
    w->limit = limit ? limit : SIZE_MAX;
}

void net_wbuf_free(net_wbuf *w)
{
    free(w->data);
    w->data = NULL;
    w->len = w->cap = 0;
}

void net_wbuf_reset(net_wbuf *w)
{
    w->len = 0;
    w->failed = MR_OK;
}

uint8_t *net_wbuf_take(net_wbuf *w, size_t *len)
{
    uint8_t *d = w->data;
    *len = w->len;
    w->data = NULL;
    w->len = w->cap = 0;
    return d;
}

int net_wbuf_failed(const net_wbuf *w)
{
    return w->failed;
}

uint8_t *net_wbuf_reserve(net_wbuf *w, size_t n)
{
    if (w->failed)
        return NULL;
    if (n > w->limit - w->len) {
        w->failed = MR_EFULL;
        return NULL;
    }
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 64;
        while (cap < w->len + n)
            cap = cap > SIZE_MAX / 2 ? w->len + n : cap * 2;
        uint8_t *d = realloc(w->data, cap);
        if (!d) {
            w->failed = MR_ENOMEM;
            return NULL;
        }
        w->data = d;
        w->cap = cap;
    }
    uint8_t *p = w->data + w->len;
    w->len += n;
    return p;
}

void net_wbuf_u8(net_wbuf *w, uint8_t v)
{
    uint8_t *p = net_wbuf_reserve(w, 1);
    if (p)
        *p = v;
}

void net_wbuf_u16(net_wbuf *w, uint16_t v)
{
    uint8_t *p = net_wbuf_reserve(w, 2);
    if (p)
        mr_put_u16(p, v);
}

void net_wbuf_u32(net_wbuf *w, uint32_t v)
{
    uint8_t *p = net_wbuf_reserve(w, 4);
    if (p)
        mr_put_u32(p, v);
}

void net_wbuf_u64(net_wbuf *w, uint64_t v)
{
    uint8_t *p = net_wbuf_reserve(w, 8);
    if (p)
        mr_put_u64(p, v);
}

void net_wbuf_uvarint(net_wbuf *w, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        tmp[n++] = (uint8_t)(b | (v ? 0x80 : 0));
    } while (v);
    net_wbuf_raw(w, tmp, n);
}

void net_wbuf_svarint(net_wbuf *w, int64_t v)
{
    net_wbuf_uvarint(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void net_wbuf_raw(net_wbuf *w, const void *p, size_t n)
{
    uint8_t *d = net_wbuf_reserve(w, n);
    if (d && n)
        memcpy(d, p, n);
}

void net_wbuf_bytes(net_wbuf *w, const void *p, size_t n)
{
    net_wbuf_uvarint(w, n);
    net_wbuf_raw(w, p, n);
}

void net_wbuf_str(net_wbuf *w, const char *s)
{
    net_wbuf_bytes(w, s, strlen(s));
}

void net_rbuf_init(net_rbuf *r, const void *p, size_t len)
{
    r->p = p;
    r->len = p ? len : 0;
    r->pos = 0;
    r->failed = MR_OK;
    r->what = NULL;
    r->fail_pos = 0;
}

void net_rbuf_fail(net_rbuf *r, const char *what)
{
    if (r->failed)
        return;
    r->failed = MR_EPROTO;
    r->what = what;
    r->fail_pos = r->pos;
}

/* Returns a pointer to the next n bytes and consumes them, or NULL (failing r). */
static const uint8_t *take(net_rbuf *r, size_t n, const char *what)
{
    if (r->failed)
        return NULL;
    if (n > r->len - r->pos) {
        net_rbuf_fail(r, what);
        return NULL;
    }
    const uint8_t *p = r->p + r->pos;
    r->pos += n;
    return p;
}

uint8_t net_rbuf_u8(net_rbuf *r)
{
    const uint8_t *p = take(r, 1, "truncated u8");
    return p ? p[0] : 0;
}

uint16_t net_rbuf_u16(net_rbuf *r)
{
    const uint8_t *p = take(r, 2, "truncated u16");
    return p ? mr_get_u16(p) : 0;
}

uint32_t net_rbuf_u32(net_rbuf *r)
{
    const uint8_t *p = take(r, 4, "truncated u32");
    return p ? mr_get_u32(p) : 0;
}

uint64_t net_rbuf_u64(net_rbuf *r)
{
    const uint8_t *p = take(r, 8, "truncated u64");
    return p ? mr_get_u64(p) : 0;
}

uint64_t net_rbuf_uvarint(net_rbuf *r)
{
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        const uint8_t *p = take(r, 1, "truncated varint");
        if (!p)
            return 0;
        uint8_t b = *p;
        /* The 10th byte may only carry the top bit of a 64-bit value. */
        if (i == 9 && b > 1) {
            net_rbuf_fail(r, "varint overflows 64 bits");
            return 0;
        }
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            /* One value, one encoding: a zero final byte after the first is padding. */
            if (i > 0 && b == 0) {
                net_rbuf_fail(r, "non-minimal varint");
                return 0;
            }
            return v;
        }
    }
    net_rbuf_fail(r, "varint longer than 10 bytes");
    return 0;
}

int64_t net_rbuf_svarint(net_rbuf *r)
{
    uint64_t u = net_rbuf_uvarint(r);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

const uint8_t *net_rbuf_raw(net_rbuf *r, size_t n)
{
    return take(r, n, "truncated bytes");
}

size_t net_rbuf_bytes(net_rbuf *r, size_t max, const uint8_t **out)
{
    *out = NULL;
    uint64_t n = net_rbuf_uvarint(r);
    if (r->failed)
        return 0;
    if (n > max) {
        net_rbuf_fail(r, "byte string longer than its limit");
        return 0;
    }
    if (n > r->len - r->pos) {
        net_rbuf_fail(r, "byte string longer than the message");
        return 0;
    }
    *out = take(r, (size_t)n, "truncated bytes");
    return *out ? (size_t)n : 0;
}

int net_rbuf_str(net_rbuf *r, char *dst, size_t dstlen)
{
    const uint8_t *p;
    if (dstlen == 0) {
        net_rbuf_fail(r, "no room for string");
        return -1;
    }
    size_t n = net_rbuf_bytes(r, dstlen - 1, &p);
    if (r->failed) {
        dst[0] = '\0';
        return -1;
    }
    if (n && memchr(p, 0, n)) {
        net_rbuf_fail(r, "string with an embedded NUL");
        dst[0] = '\0';
        return -1;
    }
    if (n)
        memcpy(dst, p, n);
    dst[n] = '\0';
    return 0;
}

uint64_t net_rbuf_count(net_rbuf *r, uint64_t max, size_t min_elem)
{
    uint64_t n = net_rbuf_uvarint(r);
    if (r->failed)
        return 0;
    if (n > max) {
        net_rbuf_fail(r, "count over its limit");
        return 0;
    }
    if (min_elem && n > (r->len - r->pos) / min_elem) {
        net_rbuf_fail(r, "count larger than the message could hold");
        return 0;
    }
    return n;
}

void net_rbuf_expect_end(net_rbuf *r)
{
    if (!r->failed && r->pos != r->len)
        net_rbuf_fail(r, "trailing bytes");
}

int net_rbuf_error(const net_rbuf *r, mr_err *err)
{
    if (!r->failed)
        return MR_OK;
    return mr_errf(err, r->failed, "%s at offset %zu", r->what ? r->what : "malformed",
                   r->fail_pos);
}
