/* The write buffer of a read-write transaction: its puts and deletes, sorted
 * by key (as bytes), last write of a key wins. Reads consult it first (a
 * transaction sees its own writes), scans merge it with the rows the leaders
 * return, and commit sends each group its share. Pure. */
#include <stdlib.h>
#include <string.h>

#include "client/mer_int.h"
#include "common/mr_util.h"

size_t mer_wbuf_lower_bound(const mer_wbuf *b, const void *key, size_t klen)
{
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mr_bytes_cmp(b->w[mid].key, b->w[mid].klen, key, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const mer_write *mer_wbuf_get(const mer_wbuf *b, const void *key, size_t klen)
{
    size_t i = mer_wbuf_lower_bound(b, key, klen);
    return i < b->n && mr_bytes_cmp(b->w[i].key, b->w[i].klen, key, klen) == 0 ? &b->w[i] : NULL;
}

/* A malloc'd copy of len bytes (never NULL for len 0, unless out of memory). */
static uint8_t *copy_bytes(const void *p, size_t len)
{
    uint8_t *v = malloc(len ? len : 1);
    if (v && len)
        memcpy(v, p, len);
    return v;
}

int mer_wbuf_set(mer_wbuf *b, const void *key, size_t klen, const void *val, size_t vlen)
{
    uint8_t *v = NULL;
    if (val && !(v = copy_bytes(val, vlen)))
        return MR_ENOMEM;
    size_t i = mer_wbuf_lower_bound(b, key, klen);
    if (i < b->n && mr_bytes_cmp(b->w[i].key, b->w[i].klen, key, klen) == 0) {
        free(b->w[i].val);
        b->w[i].val = v;
        b->w[i].vlen = val ? vlen : 0;
        return MR_OK;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 16;
        mer_write *nw = realloc(b->w, cap * sizeof *nw);
        if (!nw) {
            free(v);
            return MR_ENOMEM;
        }
        b->w = nw;
        b->cap = cap;
    }
    uint8_t *k = copy_bytes(key, klen);
    if (!k) {
        free(v);
        return MR_ENOMEM;
    }
    memmove(&b->w[i + 1], &b->w[i], (b->n - i) * sizeof *b->w);
    b->w[i] = (mer_write){.key = k, .klen = klen, .val = v, .vlen = val ? vlen : 0};
    b->n++;
    return MR_OK;
}

void mer_wbuf_free(mer_wbuf *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->w[i].key);
        free(b->w[i].val);
    }
    free(b->w);
    memset(b, 0, sizeof *b);
}
