/* Frame header encoding and the incremental frame decoder (see frame.h). */
#include "net/frame.h"

#include <stdlib.h>
#include <string.h>

void net_frame_put_header(uint8_t out[NET_FRAME_HDR], const net_frame *f)
{
    mr_put_u16(out, NET_FRAME_MAGIC);
    out[2] = NET_FRAME_VERSION;
    out[3] = f->type;
    mr_put_u16(out + 4, f->flags);
    mr_put_u64(out + 6, f->req_id);
    mr_put_u32(out + 14, f->len);
}

void net_frame_encode(net_wbuf *w, const net_frame *f)
{
    uint8_t *h = net_wbuf_reserve(w, NET_FRAME_HDR);
    if (h)
        net_frame_put_header(h, f);
    net_wbuf_raw(w, f->payload, f->len);
}

void net_frame_decoder_init(net_frame_decoder *d, uint32_t max_payload)
{
    memset(d, 0, sizeof *d);
    if (max_payload == 0)
        max_payload = NET_FRAME_DEFAULT_MAX;
    d->max_payload = max_payload > NET_FRAME_LIMIT ? NET_FRAME_LIMIT : max_payload;
}

void net_frame_decoder_free(net_frame_decoder *d)
{
    free(d->body);
    d->body = NULL;
}

/* Checks every field whose bytes are present among the first `have` bytes, so
 * garbage is refused as early as possible. */
int net_frame_parse_header(const uint8_t *h, size_t have, uint32_t max_payload, net_frame *f,
                           mr_err *err)
{
    if (have >= 2 && mr_get_u16(h) != NET_FRAME_MAGIC)
        return mr_errf(err, MR_EPROTO, "bad frame magic 0x%04x (want 0x%04x)", mr_get_u16(h),
                       NET_FRAME_MAGIC);
    if (have >= 3 && h[2] != NET_FRAME_VERSION)
        return mr_errf(err, MR_EPROTO, "unsupported protocol version %u (want %u)", h[2],
                       NET_FRAME_VERSION);
    if (have >= 4 && h[3] == 0)
        return mr_errf(err, MR_EPROTO, "frame with message type 0");
    if (have >= 6 && (mr_get_u16(h + 4) & ~NET_FRAME_FLAGS_KNOWN))
        return mr_errf(err, MR_EPROTO, "frame with unknown flags 0x%04x", mr_get_u16(h + 4));
    if (have >= NET_FRAME_HDR && mr_get_u32(h + 14) > max_payload)
        return mr_errf(err, MR_EPROTO, "frame of %u bytes exceeds the maximum of %u",
                       mr_get_u32(h + 14), max_payload);
    if (have >= NET_FRAME_HDR && f) {
        f->type = h[3];
        f->flags = mr_get_u16(h + 4);
        f->req_id = mr_get_u64(h + 6);
        f->len = mr_get_u32(h + 14);
        f->payload = NULL;
    }
    return MR_OK;
}

int net_frame_decoder_feed(net_frame_decoder *d, const void *data, size_t len, net_frame_cb cb,
                           void *ctx, mr_err *err)
{
    const uint8_t *p = data;
    if (d->failed)
        return mr_errf(err, d->failed, "frame stream already failed");
    while (len > 0) {
        if (d->hdr_have < NET_FRAME_HDR) {
            size_t n = NET_FRAME_HDR - d->hdr_have;
            if (n > len)
                n = len;
            memcpy(d->hdr + d->hdr_have, p, n);
            d->hdr_have += n;
            p += n;
            len -= n;
            int rc = net_frame_parse_header(d->hdr, d->hdr_have, d->max_payload, &d->cur, err);
            if (rc) {
                d->failed = rc;
                mr_err_wrap(err, "after %llu good frames", (unsigned long long)d->frames);
                return rc;
            }
            if (d->hdr_have < NET_FRAME_HDR)
                return MR_OK;
            d->body_have = 0;
        }
        const net_frame *f = &d->cur;
        if (d->body_have == 0 && len >= f->len) {
            /* The whole payload is in this chunk: deliver it in place, no copy.
             * (A buffer made when only the header had arrived is not needed.) */
            free(d->body);
            d->body = NULL;
            net_frame out = *f;
            out.payload = f->len ? p : (const uint8_t *)"";
            p += f->len;
            len -= f->len;
            d->hdr_have = 0;
            d->frames++;
            if (cb(ctx, &out))
                return MR_OK;
            continue;
        }
        if (!d->body) {
            /* A split payload: buffer it. Bounded by max_payload, checked above. */
            d->body = malloc(f->len);
            if (!d->body) {
                d->failed = MR_ENOMEM;
                return mr_errf(err, MR_ENOMEM, "no memory for a %u-byte frame", f->len);
            }
        }
        size_t n = f->len - d->body_have;
        if (n > len)
            n = len;
        memcpy(d->body + d->body_have, p, n);
        d->body_have += n;
        p += n;
        len -= n;
        if (d->body_have < f->len)
            return MR_OK;
        net_frame out = *f;
        out.payload = d->body;
        d->hdr_have = 0;
        d->body_have = 0;
        d->frames++;
        int stop = cb(ctx, &out);
        free(d->body);
        d->body = NULL;
        if (stop)
            return MR_OK;
    }
    return MR_OK;
}
