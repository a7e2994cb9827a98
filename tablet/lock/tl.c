/* Lock table with wound-wait (see tl.h). Requests live on one list; each call
 * scans it, O(requests) per decision. That is fine for the hundreds of locks a
 * tablet leader holds at once; an ordered index is the next step if the
 * benchmark says so. */
#include "tablet/lock/tl.h"

#include <stdlib.h>
#include <string.h>

typedef struct tl_req {
    uint64_t id, txn;
    int64_t prio;
    tl_mode mode;
    bool range, granted;
    uint8_t *start, *end; /* end NULL: unbounded (ranges only) */
    size_t slen, elen;
    struct tl_req *prev, *next;
} tl_req;

typedef struct tl_txn {
    uint64_t id;
    int64_t prio;
    tl_txn_state state;
    size_t held, waiting;
    struct tl_txn *hnext;
} tl_txn;

#define TL_BUCKETS 1024

struct tl_table {
    tl_req *head, *tail;
    size_t nreqs;
    uint64_t next_id;
    tl_mutant mutant;
    tl_txn *txns[TL_BUCKETS];
};

void tl_set_mutant(tl_table *t, tl_mutant m)
{
    t->mutant = m;
}

/* ---- output ---- */

void tl_out_reset(tl_out *o)
{
    o->nwounded = o->ngranted = o->npushed = 0;
}

void tl_out_free(tl_out *o)
{
    free(o->wounded);
    free(o->granted);
    free(o->pushed);
    memset(o, 0, sizeof *o);
}

/* Reports prepared holder txn as pushed, once per tl_out. */
static int out_push(tl_out *o, uint64_t txn)
{
    for (size_t i = 0; i < o->npushed; i++)
        if (o->pushed[i] == txn)
            return 0;
    if (o->npushed == o->cap_pushed) {
        size_t cap = o->cap_pushed ? 2 * o->cap_pushed : 8;
        uint64_t *p = realloc(o->pushed, cap * sizeof *p);
        if (!p)
            return -1;
        o->pushed = p;
        o->cap_pushed = cap;
    }
    o->pushed[o->npushed++] = txn;
    return 0;
}

static int out_wound(tl_out *o, uint64_t txn)
{
    if (o->nwounded == o->cap_wounded) {
        size_t cap = o->cap_wounded ? 2 * o->cap_wounded : 8;
        uint64_t *w = realloc(o->wounded, cap * sizeof *w);
        if (!w)
            return -1;
        o->wounded = w;
        o->cap_wounded = cap;
    }
    o->wounded[o->nwounded++] = txn;
    return 0;
}

static int out_grant(tl_out *o, uint64_t txn, uint64_t req)
{
    if (o->ngranted == o->cap_granted) {
        size_t cap = o->cap_granted ? 2 * o->cap_granted : 8;
        tl_grant *g = realloc(o->granted, cap * sizeof *g);
        if (!g)
            return -1;
        o->granted = g;
        o->cap_granted = cap;
    }
    o->granted[o->ngranted++] = (tl_grant){txn, req};
    return 0;
}

/* ---- transactions ---- */

tl_table *tl_new(void)
{
    tl_table *t = calloc(1, sizeof *t);
    if (t)
        t->next_id = 1;
    return t;
}

static void free_req(tl_req *r)
{
    free(r->start);
    free(r->end);
    free(r);
}

void tl_free(tl_table *t)
{
    if (!t)
        return;
    for (tl_req *r = t->head, *n; r; r = n) {
        n = r->next;
        free_req(r);
    }
    for (int i = 0; i < TL_BUCKETS; i++)
        for (tl_txn *x = t->txns[i], *n; x; x = n) {
            n = x->hnext;
            free(x);
        }
    free(t);
}

static size_t bucket(uint64_t id)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 54) % TL_BUCKETS;
}

static tl_txn *find_txn(const tl_table *t, uint64_t id)
{
    for (tl_txn *x = t->txns[bucket(id)]; x; x = x->hnext)
        if (x->id == id)
            return x;
    return NULL;
}

bool tl_known(const tl_table *t, uint64_t txn)
{
    return find_txn(t, txn) != NULL;
}

tl_txn_state tl_state(const tl_table *t, uint64_t txn)
{
    tl_txn *x = find_txn(t, txn);
    return x ? x->state : TL_ACTIVE;
}

size_t tl_held(const tl_table *t, uint64_t txn)
{
    tl_txn *x = find_txn(t, txn);
    return x ? x->held : 0;
}

size_t tl_waiting(const tl_table *t, uint64_t txn)
{
    tl_txn *x = find_txn(t, txn);
    return x ? x->waiting : 0;
}

size_t tl_count(const tl_table *t)
{
    return t->nreqs;
}

/* ---- conflicts ---- */

static int keycmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return al < bl ? -1 : al > bl;
}

/* Is key k inside request r's span? */
static bool covers_key(const tl_req *r, const uint8_t *k, size_t kl)
{
    if (!r->range)
        return keycmp(r->start, r->slen, k, kl) == 0;
    return keycmp(k, kl, r->start, r->slen) >= 0 && (!r->end || keycmp(k, kl, r->end, r->elen) < 0);
}

static bool overlaps(const tl_req *a, const tl_req *b)
{
    if (!a->range)
        return covers_key(b, a->start, a->slen);
    if (!b->range)
        return covers_key(a, b->start, b->slen);
    bool a_before_b_end = !b->end || keycmp(a->start, a->slen, b->end, b->elen) < 0;
    bool b_before_a_end = !a->end || keycmp(b->start, b->slen, a->end, a->elen) < 0;
    return a_before_b_end && b_before_a_end;
}

static bool conflicts(const tl_req *a, const tl_req *b)
{
    if (a->txn == b->txn)
        return false;
    if (a->mode == TL_SHARED && b->mode == TL_SHARED)
        return false;
    return overlaps(a, b);
}

/* a older than b: smaller prio, then smaller id. */
static bool older(int64_t ap, uint64_t aid, int64_t bp, uint64_t bid)
{
    return ap < bp || (ap == bp && aid < bid);
}

/* ---- mutation ---- */

static void unlink_req(tl_table *t, tl_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        t->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        t->tail = r->prev;
    t->nreqs--;
}

/* Drops every request of txn x. */
static void drop_reqs(tl_table *t, tl_txn *x)
{
    for (tl_req *r = t->head, *n; r; r = n) {
        n = r->next;
        if (r->txn == x->id) {
            unlink_req(t, r);
            free_req(r);
        }
    }
    x->held = x->waiting = 0;
}

static int wound(tl_table *t, tl_txn *x, tl_out *out)
{
    x->state = TL_WOUNDED_STATE;
    drop_reqs(t, x);
    return out_wound(out, x->id);
}

/* Wounds the younger active holders that conflict with r; returns whether r
 * may be granted now (no older or prepared holder and no older conflicting
 * waiter stands in the way). -1 when out of memory. */
static int try_grant(tl_table *t, tl_req *r, tl_out *out)
{
    for (;;) {
        bool blocked = false;
        tl_txn *victim = NULL;
        for (tl_req *h = t->head; h; h = h->next) {
            if (h == r || !conflicts(r, h))
                continue;
            if (t->mutant == TL_MUTANT_IGNORE_RANGES && (h->range || r->range))
                continue;
            if (h->granted) {
                tl_txn *hx = find_txn(t, h->txn);
                bool r_older = older(r->prio, r->txn, h->prio, h->txn);
                if (hx->state == TL_ACTIVE && r_older && t->mutant != TL_MUTANT_NO_WOUND) {
                    victim = hx;
                    break;
                }
                if (hx->state == TL_PREPARED && r_older && t->mutant != TL_MUTANT_NO_PUSH &&
                    out_push(out, hx->id) != 0)
                    return -1;
                blocked = true;
            } else if (older(h->prio, h->txn, r->prio, r->txn)) {
                blocked = true;
            }
        }
        if (victim) {
            /* Wounding drops requests from the list: rescan from the start. */
            if (wound(t, victim, out) != 0)
                return -1;
            continue;
        }
        if (blocked)
            return 0;
        r->granted = true;
        tl_txn *x = find_txn(t, r->txn);
        x->waiting--;
        x->held++;
        return 1;
    }
}

static int cmp_age(const void *a, const void *b)
{
    const tl_req *x = *(tl_req *const *)a, *y = *(tl_req *const *)b;
    if (older(x->prio, x->txn, y->prio, y->txn))
        return -1;
    if (older(y->prio, y->txn, x->prio, x->txn))
        return 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Grants waiters oldest first until nothing changes. `self` (may be NULL) is
 * the request of the current tl_acquire call: its grant is the call's result,
 * not an out entry. */
static int grant_waiters(tl_table *t, tl_req *self, tl_out *out)
{
    for (;;) {
        size_t n = 0;
        for (tl_req *r = t->head; r; r = r->next)
            n += !r->granted;
        if (n == 0)
            return 0;
        tl_req **w = malloc(n * sizeof *w);
        if (!w)
            return -1;
        n = 0;
        for (tl_req *r = t->head; r; r = r->next)
            if (!r->granted)
                w[n++] = r;
        qsort(w, n, sizeof *w, cmp_age);
        bool changed = false;
        for (size_t i = 0; i < n && !changed; i++) {
            size_t before = out->nwounded;
            int g = try_grant(t, w[i], out);
            if (g < 0) {
                free(w);
                return -1;
            }
            if (g == 1 && w[i] != self && out_grant(out, w[i]->txn, w[i]->id) != 0) {
                free(w);
                return -1;
            }
            /* A grant or a wound changes the table (and may free later entries of w). */
            changed = g == 1 || out->nwounded != before;
        }
        free(w);
        if (!changed)
            return 0;
    }
}

static uint8_t *dupkey(const uint8_t *k, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, k, n);
    return d;
}

/* Does txn already hold a granted lock of at least lk's strength covering it? */
static tl_req *own_cover(tl_table *t, uint64_t txn, const tl_req *want)
{
    for (tl_req *r = t->head; r; r = r->next) {
        if (r->txn != txn || !r->granted || r->mode < want->mode)
            continue;
        if (!want->range && covers_key(r, want->start, want->slen))
            return r;
        if (want->range && r->range && keycmp(r->start, r->slen, want->start, want->slen) <= 0 &&
            (!r->end || (want->end && keycmp(want->end, want->elen, r->end, r->elen) <= 0)))
            return r;
    }
    return NULL;
}

int tl_acquire(tl_table *t, uint64_t txn, int64_t prio, const tl_lock *lk, uint64_t *req_id,
               tl_out *out, mr_err *err)
{
    if (!lk || (lk->mode != TL_SHARED && lk->mode != TL_EXCLUSIVE))
        return -mr_errf(err, MR_EINVAL, "lock mode must be shared or exclusive");
    if ((!lk->start && lk->start_len) || lk->start_len > TL_KEY_MAX ||
        (lk->end && lk->end_len > TL_KEY_MAX))
        return -mr_errf(err, MR_EINVAL, "lock key missing or longer than %d bytes", TL_KEY_MAX);
    if (lk->range && lk->end && keycmp(lk->start, lk->start_len, lk->end, lk->end_len) >= 0)
        return -mr_errf(err, MR_EINVAL, "empty lock range: start is not below end");
    tl_txn *x = find_txn(t, txn);
    if (x && x->prio != prio)
        return -mr_errf(err, MR_EINVAL, "transaction %llu re-registered with another priority",
                        (unsigned long long)txn);
    if (x && x->state == TL_WOUNDED_STATE)
        return TL_WOUNDED;
    if (x && x->state == TL_PREPARED)
        return -mr_errf(err, MR_EINVAL, "transaction %llu is prepared and takes no more locks",
                        (unsigned long long)txn);
    if (!x) {
        x = calloc(1, sizeof *x);
        if (!x)
            return -mr_errf(err, MR_ENOMEM, "out of memory");
        x->id = txn;
        x->prio = prio;
        size_t b = bucket(txn);
        x->hnext = t->txns[b];
        t->txns[b] = x;
    }
    tl_req *r = calloc(1, sizeof *r);
    if (!r)
        return -mr_errf(err, MR_ENOMEM, "out of memory");
    r->txn = txn;
    r->prio = prio;
    r->mode = lk->mode;
    r->range = lk->range;
    r->slen = lk->start_len;
    r->start = dupkey(lk->start, lk->start_len);
    if (lk->range && lk->end) {
        r->elen = lk->end_len;
        r->end = dupkey(lk->end, lk->end_len);
    }
    if (!r->start || (lk->range && lk->end && !r->end)) {
        free_req(r);
        return -mr_errf(err, MR_ENOMEM, "out of memory");
    }
    tl_req *mine = own_cover(t, txn, r);
    if (mine) {
        free_req(r);
        *req_id = mine->id;
        return TL_GRANTED;
    }
    r->id = t->next_id++;
    r->prev = t->tail;
    if (t->tail)
        t->tail->next = r;
    else
        t->head = r;
    t->tail = r;
    t->nreqs++;
    x->waiting++;
    *req_id = r->id;
    int g = try_grant(t, r, out);
    if (g >= 0)
        g = grant_waiters(t, r, out) < 0 ? -1 : (r->granted ? 1 : 0);
    if (g < 0)
        return -mr_errf(err, MR_ENOMEM, "out of memory");
    return g == 1 ? TL_GRANTED : TL_WAIT;
}

int tl_prepare(tl_table *t, uint64_t txn, mr_err *err)
{
    tl_txn *x = find_txn(t, txn);
    if (!x)
        return mr_errf(err, MR_ENOTFOUND, "transaction %llu holds no locks here",
                       (unsigned long long)txn);
    if (x->state == TL_WOUNDED_STATE)
        return mr_errf(err, MR_EABORTED, "transaction %llu was wounded by an older one",
                       (unsigned long long)txn);
    if (x->waiting)
        return mr_errf(err, MR_EINVAL, "transaction %llu still waits for %zu lock(s)",
                       (unsigned long long)txn, x->waiting);
    x->state = TL_PREPARED;
    return MR_OK;
}

void tl_release(tl_table *t, uint64_t txn, tl_out *out)
{
    size_t b = bucket(txn);
    for (tl_txn **p = &t->txns[b]; *p; p = &(*p)->hnext) {
        if ((*p)->id == txn) {
            tl_txn *x = *p;
            drop_reqs(t, x);
            *p = x->hnext;
            free(x);
            /* Out of memory here only delays grants to the next change. */
            (void)grant_waiters(t, NULL, out);
            return;
        }
    }
}

/* ---- invariants ---- */

int tl_check(const tl_table *t, mr_err *err)
{
    for (const tl_req *a = t->head; a; a = a->next) {
        tl_txn *ax = find_txn(t, a->txn);
        if (!ax || ax->state == TL_WOUNDED_STATE)
            return mr_errf(err, MR_ECORRUPT, "request %llu belongs to a %s transaction",
                           (unsigned long long)a->id, ax ? "wounded" : "unknown");
        for (const tl_req *b = a->next; b; b = b->next)
            if (a->granted && b->granted && conflicts(a, b))
                return mr_errf(err, MR_ECORRUPT,
                               "transactions %llu and %llu hold conflicting locks",
                               (unsigned long long)a->txn, (unsigned long long)b->txn);
        if (a->granted || ax->state != TL_ACTIVE)
            continue;
        for (const tl_req *h = t->head; h; h = h->next) {
            if (!h->granted || !conflicts(a, h))
                continue;
            tl_txn *hx = find_txn(t, h->txn);
            if (hx->state == TL_ACTIVE && older(a->prio, a->txn, h->prio, h->txn))
                return mr_errf(err, MR_ECORRUPT,
                               "active transaction %llu waits for younger active %llu",
                               (unsigned long long)a->txn, (unsigned long long)h->txn);
        }
    }
    /* Waits-for edges go from a waiter to every conflicting holder and every
     * older conflicting waiter. Wound-wait makes each edge point to an older
     * or prepared transaction, and prepared ones wait for nothing, so a cycle
     * means a bug. Detect it by repeatedly removing transactions that wait for
     * nothing still present (Kahn's algorithm). */
    size_t n = 0;
    for (int i = 0; i < TL_BUCKETS; i++)
        for (tl_txn *x = t->txns[i]; x; x = x->hnext)
            n++;
    if (n == 0)
        return MR_OK;
    uint64_t *ids = malloc(n * sizeof *ids);
    bool *gone = calloc(n, sizeof *gone);
    if (!ids || !gone) {
        free(ids);
        free(gone);
        return MR_OK;
    }
    n = 0;
    for (int i = 0; i < TL_BUCKETS; i++)
        for (tl_txn *x = t->txns[i]; x; x = x->hnext)
            ids[n++] = x->id;
    size_t removed = 0;
    for (bool progress = true; progress;) {
        progress = false;
        for (size_t i = 0; i < n; i++) {
            if (gone[i])
                continue;
            bool waits = false;
            for (const tl_req *a = t->head; a && !waits; a = a->next) {
                if (a->txn != ids[i] || a->granted)
                    continue;
                for (const tl_req *h = t->head; h && !waits; h = h->next) {
                    if (!conflicts(a, h))
                        continue;
                    if (!h->granted && !older(h->prio, h->txn, a->prio, a->txn))
                        continue;
                    for (size_t j = 0; j < n; j++)
                        if (ids[j] == h->txn && !gone[j])
                            waits = true;
                }
            }
            if (!waits) {
                gone[i] = true;
                removed++;
                progress = true;
            }
        }
    }
    free(ids);
    free(gone);
    if (removed != n)
        return mr_errf(err, MR_ECORRUPT, "waits-for cycle among %zu transactions", n - removed);
    return MR_OK;
}
