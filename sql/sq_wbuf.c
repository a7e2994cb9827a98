/* sql/sq_wbuf.c: the write buffer as a treap (a binary search tree kept
 * balanced by random heap priorities) and an undo log. */
#include "sql/sq_wbuf.h"

#include <stdlib.h>
#include <string.h>

typedef struct node {
    struct node *l, *r;
    uint32_t prio;
    uint8_t *key; /* key and value share one allocation: [key][val] */
    size_t klen, vlen;
    int del;
} node;

/* One undo record: what key held before a change (had = 0: no entry). */
typedef struct undo {
    uint8_t *kv; /* [key][old val] in one allocation */
    size_t klen, vlen;
    int had, del;
} undo;

struct sq_wbuf {
    node *root;
    size_t count, bytes;
    undo *log;
    size_t nlog, caplog;
    uint64_t rng;
};

static uint32_t next_prio(sq_wbuf *w)
{
    /* xorshift64*: only the tree's shape depends on it. */
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return (uint32_t)((w->rng * 2685821657736338717ULL) >> 32);
}

static int cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return al < bl ? -1 : al > bl;
}

sq_wbuf *sq_wbuf_new(void)
{
    sq_wbuf *w = calloc(1, sizeof *w);
    if (w)
        w->rng = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)w;
    return w;
}

static void free_tree(node *n)
{
    while (n) {
        free_tree(n->l);
        node *r = n->r;
        free(n->key);
        free(n);
        n = r;
    }
}

void sq_wbuf_clear(sq_wbuf *w)
{
    if (!w)
        return;
    free_tree(w->root);
    w->root = NULL;
    w->count = w->bytes = 0;
    for (size_t i = 0; i < w->nlog; i++)
        free(w->log[i].kv);
    w->nlog = 0;
}

void sq_wbuf_free(sq_wbuf *w)
{
    if (!w)
        return;
    sq_wbuf_clear(w);
    free(w->log);
    free(w);
}

static node *find(const sq_wbuf *w, const void *key, size_t klen)
{
    node *n = w->root;
    while (n) {
        int c = cmp(key, klen, n->key, n->klen);
        if (c == 0)
            return n;
        n = c < 0 ? n->l : n->r;
    }
    return NULL;
}

static node *rot_right(node *n)
{
    node *l = n->l;
    n->l = l->r;
    l->r = n;
    return l;
}

static node *rot_left(node *n)
{
    node *r = n->r;
    n->r = r->l;
    r->l = n;
    return r;
}

static node *insert(node *t, node *n)
{
    if (!t)
        return n;
    if (cmp(n->key, n->klen, t->key, t->klen) < 0) {
        t->l = insert(t->l, n);
        if (t->l->prio > t->prio)
            t = rot_right(t);
    } else {
        t->r = insert(t->r, n);
        if (t->r->prio > t->prio)
            t = rot_left(t);
    }
    return t;
}

/* Removes the node with key from t (which must hold it); *out gets it. */
static node *erase(node *t, const uint8_t *key, size_t klen, node **out)
{
    int c = cmp(key, klen, t->key, t->klen);
    if (c < 0) {
        t->l = erase(t->l, key, klen, out);
        return t;
    }
    if (c > 0) {
        t->r = erase(t->r, key, klen, out);
        return t;
    }
    if (!t->l || !t->r) {
        *out = t;
        return t->l ? t->l : t->r;
    }
    if (t->l->prio > t->r->prio) {
        t = rot_right(t);
        t->r = erase(t->r, key, klen, out);
    } else {
        t = rot_left(t);
        t->l = erase(t->l, key, klen, out);
    }
    return t;
}

static uint8_t *join(const void *a, size_t al, const void *b, size_t bl)
{
    uint8_t *p = malloc(al + bl + 1);
    if (!p)
        return NULL;
    if (al)
        memcpy(p, a, al);
    if (bl)
        memcpy(p + al, b, bl);
    return p;
}

/* Sets key's entry without logging. 0 or -1. */
static int set_raw(sq_wbuf *w, const void *key, size_t klen, const void *val, size_t vlen, int del)
{
    node *n = find(w, key, klen);
    uint8_t *kv = join(key, klen, val, del ? 0 : vlen);
    if (!kv)
        return -1;
    if (n) {
        w->bytes -= n->vlen;
        free(n->key);
        n->key = kv;
        n->vlen = del ? 0 : vlen;
        n->del = del;
        w->bytes += n->vlen;
        return 0;
    }
    n = calloc(1, sizeof *n);
    if (!n) {
        free(kv);
        return -1;
    }
    n->key = kv;
    n->klen = klen;
    n->vlen = del ? 0 : vlen;
    n->del = del;
    n->prio = next_prio(w);
    w->root = insert(w->root, n);
    w->count++;
    w->bytes += klen + n->vlen;
    return 0;
}

int sq_wbuf_set(sq_wbuf *w, const void *key, size_t klen, const void *val, size_t vlen, int del)
{
    if (w->nlog == w->caplog) {
        size_t cap = w->caplog ? w->caplog * 2 : 64;
        undo *l = realloc(w->log, cap * sizeof *l);
        if (!l)
            return -1;
        w->log = l;
        w->caplog = cap;
    }
    node *old = find(w, key, klen);
    undo u = {0};
    u.klen = klen;
    if (old) {
        u.had = 1;
        u.del = old->del;
        u.vlen = old->vlen;
        u.kv = join(key, klen, old->key + old->klen, old->vlen);
    } else {
        u.kv = join(key, klen, NULL, 0);
    }
    if (!u.kv)
        return -1;
    if (set_raw(w, key, klen, val, vlen, del) != 0) {
        free(u.kv);
        return -1;
    }
    w->log[w->nlog++] = u;
    return 0;
}

int sq_wbuf_get(const sq_wbuf *w, const void *key, size_t klen, sq_went *e)
{
    node *n = find(w, key, klen);
    if (!n)
        return 0;
    e->key = n->key;
    e->klen = n->klen;
    e->del = n->del;
    e->val = n->del ? NULL : n->key + n->klen;
    e->vlen = n->vlen;
    return 1;
}

int sq_wbuf_seek(const sq_wbuf *w, const void *key, size_t klen, int strict, sq_went *e)
{
    node *n = w->root, *best = NULL;
    while (n) {
        int c = key ? cmp(n->key, n->klen, key, klen) : 1;
        if (c > 0 || (c == 0 && !strict)) {
            best = n;
            n = n->l;
        } else {
            n = n->r;
        }
    }
    if (!best)
        return 0;
    e->key = best->key;
    e->klen = best->klen;
    e->del = best->del;
    e->val = best->del ? NULL : best->key + best->klen;
    e->vlen = best->vlen;
    return 1;
}

size_t sq_wbuf_count(const sq_wbuf *w)
{
    return w->count;
}

size_t sq_wbuf_bytes(const sq_wbuf *w)
{
    return w->bytes;
}

size_t sq_wbuf_mark(const sq_wbuf *w)
{
    return w->nlog;
}

void sq_wbuf_rollback(sq_wbuf *w, size_t mark)
{
    while (w->nlog > mark) {
        undo *u = &w->log[--w->nlog];
        /* The change being undone left an entry for the key (every set does);
         * restoring needs no memory: the record's [key][old value] becomes the
         * entry's storage, or the entry goes. */
        node *n = find(w, u->kv, u->klen);
        if (!n) { /* cannot happen: see above */
            free(u->kv);
            continue;
        }
        if (!u->had) {
            node *gone = NULL;
            w->root = erase(w->root, n->key, n->klen, &gone);
            w->count--;
            w->bytes -= gone->klen + gone->vlen;
            free(gone->key);
            free(gone);
            free(u->kv);
            continue;
        }
        w->bytes -= n->vlen;
        free(n->key);
        n->key = u->kv;
        n->vlen = u->vlen;
        n->del = u->del;
        w->bytes += n->vlen;
    }
}
