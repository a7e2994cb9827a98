/* The arena and the encode/decode wrappers around protobuf-c (pr.h). */
#include "proto/pr.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PR_CHUNK_MIN 4096
#define PR_ALIGN     16

struct pr_chunk {
    pr_chunk *next;
    size_t cap, used;
    _Alignas(PR_ALIGN) unsigned char data[];
};

static void *arena_alloc_cb(void *ud, size_t n)
{
    return pr_arena_alloc(ud, n);
}

static void arena_free_cb(void *ud, void *p)
{
    (void)ud;
    (void)p; /* freed with the arena */
}

void pr_arena_init(pr_arena *a)
{
    memset(a, 0, sizeof *a);
    a->allocator = (ProtobufCAllocator){arena_alloc_cb, arena_free_cb, a};
}

void *pr_arena_alloc(pr_arena *a, size_t n)
{
    size_t need = (n + PR_ALIGN - 1) & ~(size_t)(PR_ALIGN - 1);
    if (need < n)
        return NULL;
    pr_chunk *c = a->chunks;
    if (!c || c->cap - c->used < need) {
        size_t cap = need > PR_CHUNK_MIN ? need : PR_CHUNK_MIN;
        if (c && cap < 2 * c->cap && 2 * c->cap <= (1u << 20))
            cap = 2 * c->cap; /* grow geometrically up to 1 MiB chunks */
        if (cap > SIZE_MAX - sizeof *c)
            return NULL;
        pr_chunk *nc = malloc(sizeof *nc + cap);
        if (!nc)
            return NULL;
        nc->cap = cap;
        nc->used = 0;
        nc->next = c;
        a->chunks = c = nc;
    }
    void *p = c->data + c->used;
    c->used += need;
    a->used += need;
    return p;
}

void *pr_arena_dup(pr_arena *a, const void *p, size_t n)
{
    void *q = pr_arena_alloc(a, n ? n : 1);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

void pr_arena_reset(pr_arena *a)
{
    /* Keep the last chunk of the list (the first allocated, the smallest) for reuse. */
    pr_chunk *keep = NULL;
    while (a->chunks) {
        pr_chunk *c = a->chunks;
        a->chunks = c->next;
        if (!a->chunks) {
            keep = c;
            break;
        }
        free(c);
    }
    if (keep) {
        keep->used = 0;
        keep->next = NULL;
    }
    a->chunks = keep;
    a->used = 0;
}

void pr_arena_free(pr_arena *a)
{
    while (a->chunks) {
        pr_chunk *c = a->chunks;
        a->chunks = c->next;
        free(c);
    }
    a->used = 0;
}

ProtobufCMessage *pr_decode(const ProtobufCMessageDescriptor *d, pr_arena *a, const void *buf,
                            size_t len, mr_err *err)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(d, &a->allocator, len, buf);
    if (!m) /* protobuf-c does not say why: truncated, a required field missing, ... */
        mr_errf(err, MR_EPROTO, "malformed %s message (%zu bytes)", d->short_name, len);
    return m;
}

int pr_encode(const ProtobufCMessage *m, size_t max, uint8_t **out, size_t *len, mr_err *err)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    if (max && n > max)
        return mr_errf(err, MR_EFULL, "%s message of %zu bytes is over the %zu-byte limit",
                       m->descriptor->short_name, n, max);
    uint8_t *b = malloc(n ? n : 1);
    if (!b)
        return mr_errf(err, MR_ENOMEM, "out of memory encoding a %zu-byte message", n);
    size_t w = protobuf_c_message_pack(m, b);
    if (w != n) {
        free(b);
        return mr_errf(err, MR_EINVAL, "%s message packed to %zu bytes, expected %zu",
                       m->descriptor->short_name, w, n);
    }
    *out = b;
    *len = n;
    return MR_OK;
}

/* ---- error names ---- */

#define PR_MAX_ERROR 64
static char error_names[PR_MAX_ERROR][24];
static pthread_once_t error_names_once = PTHREAD_ONCE_INIT;

static void load_error_names(void)
{
    const ProtobufCEnumDescriptor *d = &meridian__error_code__descriptor;
    for (unsigned i = 0; i < d->n_values; i++) {
        int v = d->values[i].value;
        if (v < 0 || v >= PR_MAX_ERROR)
            continue;
        const char *s = d->values[i].name;
        size_t k = 0;
        for (; s[k] && k + 1 < sizeof error_names[v]; k++)
            error_names[v][k] = (char)tolower((unsigned char)s[k]);
        error_names[v][k] = 0;
    }
}

const char *pr_error_name(Meridian__ErrorCode code)
{
    pthread_once(&error_names_once, load_error_names);
    int v = (int)code;
    return v > 0 && v < PR_MAX_ERROR && error_names[v][0] ? error_names[v] : "error";
}
