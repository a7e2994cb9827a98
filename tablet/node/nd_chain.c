/* The replicated state machine: applying chosen entries (chain, register, records), snapshots. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/mr_log.h"
#include "common/mr_util.h"
#include "net/transport.h"
#include "tablet/logstore/ls_paxos.h"
#include "tablet/node/nd_http.h"
#include "tablet/node/nd_metrics.h"
#include "tablet/paxos/px.h"
#include "truetime/tt.h"

#include "tablet/node/nd_int.h"
#include "tablet/node/nd_validate.h"

static void reg_set(nd_chain *sm, const uint8_t *v, uint32_t len)
{
    uint8_t *c = malloc(len ? len : 1);
    if (!c)
        return; /* the replica would diverge: refuse loudly rather than silently */
    memcpy(c, v, len);
    free(sm->reg);
    sm->reg = c;
    sm->reg_len = len;
    sm->reg_set = true;
}

/* The register's value into a reply (borrowed from sm). */
static void reg_value(const nd_chain *sm, Meridian__RegisterReply *r)
{
    if (!sm->reg_set)
        return; /* never written: no value */
    r->has_value = true;
    r->value = (ProtobufCBinaryData){.len = sm->reg_len, .data = sm->reg};
}

/* Applies one proposal's register operation; fills the proposer's reply (the value read, the
 * cas outcome). */
static void reg_apply(nd_chain *sm, const uint8_t *p, uint32_t plen, Meridian__RegisterReply *r)
{
    if (plen < ND_PROP_HDR)
        return;
    uint8_t op = p[12];
    const uint8_t *b = p + ND_PROP_HDR;
    uint32_t blen = plen - ND_PROP_HDR;
    switch (op) {
    case ND_OP_WRITE:
        reg_set(sm, b, blen);
        return;
    case ND_OP_READ:
        return reg_value(sm, r);
    case ND_OP_CAS: {
        r->has_cas = true;
        if (blen < 4 || get32(b) > blen - 4)
            return;
        uint32_t elen = get32(b);
        bool match = sm->reg_set && sm->reg_len == elen && memcmp(sm->reg, b + 4, elen) == 0;
        if (match)
            reg_set(sm, b + 4 + elen, blen - 4 - elen);
        r->cas = match;
        return;
    }
    default:
        return;
    }
}

void nd_chain_apply(nd_node *n, nd_group *g, const px_entry *e)
{
    if (n->fatal)
        return; /* stopping (an apply failed): apply and acknowledge nothing more */
    g->sm.slot = e->slot;
    if (e->kind != PX_ENTRY_DATA)
        return;
    uint32_t off = 0, plen;
    const uint8_t *p;
    int r;
    /* Commit records of the slot are applied together (the MVCC store records
     * one applied slot per transaction of SQLite). */
    enum { MAX_RECS = 256 };
    const uint8_t *recs[MAX_RECS];
    uint32_t lens[MAX_RECS];
    size_t nrec = 0;
    const uint8_t *split = NULL; /* a SPLIT record: takes effect at the end of the slot */
    uint32_t split_len = 0;
    while ((r = px_batch_next(e->data, e->len, &off, &p, &plen)) == 1) {
        if (plen >= ND_PROP_HDR && p[12] == ND_OP_SPLIT) {
            if (!split) {
                split = p;
                split_len = plen;
            }
            continue;
        }
        if (plen >= ND_PROP_HDR && p[12] == ND_OP_SAFE) {
            if (get32(p) == n->self && g->lead.seq && get64(p + 4) == g->lead.seq)
                g->lead.ready = true; /* this term's own record: predecessors are settled */
            continue;                 /* otherwise only moves safe time */
        }
        if (plen >= ND_PROP_HDR + 8 && nd_op_is_txn(p[12])) {
            g->read.last_data_slot = e->slot;
            if (get32(p) == n->self && g->lead.inflight)
                g->lead.inflight--;
            if (nrec < MAX_RECS) {
                recs[nrec] = p + 12;
                lens[nrec++] = plen - 12;
            } else {
                MR_ERROR("node", "group=%llu slot=%llu: more than %d commit records in a slot",
                         (unsigned long long)g->id, (unsigned long long)e->slot, MAX_RECS);
            }
            continue;
        }
        g->sm.count++;
        g->sm.last_ts = e->ts;
        g->sm.hash = fnv1a(g->sm.hash ^ (uint64_t)e->ts, p, plen);
        uint8_t op = plen >= ND_PROP_HDR ? p[12] : ND_OP_OPAQUE;
        Meridian__RegisterReply reg = MERIDIAN__REGISTER_REPLY__INIT;
        reg_apply(&g->sm, p, plen, &reg);
        /* Answer the client whose proposal this is, if it waits here. */
        if (plen < 12 || get32(p) != n->self)
            continue;
        uint64_t seq = get64(p + 4);
        for (size_t i = 0; i < n->npending; i++) {
            if (n->pending[i].group == g->id && n->pending[i].seq == seq) {
                nd_hist_observe(&n->stats.proposal_latency,
                                mr_monotonic_ns() - n->pending[i].start);
                n->stats.proposals++;
                if (op == ND_OP_OPAQUE) {
                    Meridian__ProposeReply pr = MERIDIAN__PROPOSE_REPLY__INIT;
                    pr.slot = e->slot;
                    pr.ts = e->ts;
                    nd_reply_body(n, n->pending[i].reply_to, MERIDIAN__REPLY__BODY_PROPOSE,
                                  &pr.base);
                } else {
                    reg.has_slot = reg.has_ts = true;
                    reg.slot = e->slot;
                    reg.ts = e->ts;
                    nd_reply_body(n, n->pending[i].reply_to, MERIDIAN__REPLY__BODY_REGISTER,
                                  &reg.base);
                }
                n->pending[i] = n->pending[--n->npending];
                break;
            }
        }
    }
    if (r < 0)
        MR_ERROR("node", "group=%llu slot=%llu holds a malformed batch", (unsigned long long)g->id,
                 (unsigned long long)e->slot);
    nd_txn_apply_slot(n, g, e->slot, e->ts, recs, lens, nrec);
    if (n->fatal)
        return; /* the slot did not apply: serve no read that would depend on it */
    if (split)
        nd_split_apply(n, g, e->slot, e->ts, split, split_len);
    nd_txn_applied(n, g);
}

/* A chosen entry applied as a no-op everywhere (a resurrected value whose
 * timestamp would go backwards, see px.h): its proposals did not happen, so
 * their clients here hear so and may retry. */
void nd_chain_void(nd_node *n, nd_group *g, const px_entry *e)
{
    g->sm.slot = e->slot;
    if (e->kind != PX_ENTRY_DATA)
        return;
    uint32_t off = 0, plen;
    const uint8_t *p;
    while (px_batch_next(e->data, e->len, &off, &p, &plen) == 1) {
        if (plen < ND_PROP_HDR || get32(p) != n->self)
            continue;
        if (p[12] == ND_OP_SPLIT) {
            nd_split_voided(n, g);
            continue;
        }
        if (nd_op_is_txn(p[12]) && plen >= ND_PROP_HDR + 8) {
            if (g->lead.inflight)
                g->lead.inflight--;
            nd_txn_voided(n, g, p[12], get64(p + ND_PROP_HDR));
            continue;
        }
        uint64_t seq = get64(p + 4);
        for (size_t i = 0; i < n->npending; i++)
            if (n->pending[i].group == g->id && n->pending[i].seq == seq) {
                nd_send_reply(n, n->pending[i].reply_to,
                              nd_enc_error(MERIDIAN__ERROR_CODE__VOIDED,
                                           "the proposal was voided; retry", true, NULL, 0));
                n->pending[i] = n->pending[--n->npending];
                break;
            }
    }
    nd_txn_applied(n, g);
}

typedef struct snap_buf {
    uint8_t *p;
    size_t len, cap;
} snap_buf;

static int snap_sink(void *arg, const void *buf, size_t len)
{
    snap_buf *b = arg;
    if (b->len + len > b->cap) {
        size_t cap = b->cap * 2 > b->len + len ? b->cap * 2 : b->len + len;
        if (cap > UINT32_MAX)
            return -1; /* px snapshots are one buffer of at most 4 GiB */
        uint8_t *np = realloc(b->p, cap);
        if (!np)
            return -1;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, buf, len);
    b->len += len;
    return 0;
}

/* The groups split off g, in the order of their splits (their ids grow), for
 * its snapshots: u32 count, then per child u64 id, i64 floor, u32 key length,
 * the key where it starts. */
static int children_sink(nd_node *n, const nd_group *g, snap_buf *b)
{
    uint32_t count = 0;
    for (size_t i = 0; i < n->nranges; i++)
        count += n->ranges[i].parent == g->id;
    uint8_t hdr[20];
    put32(hdr, count);
    if (snap_sink(b, hdr, 4) != 0)
        return -1;
    uint64_t last = 0;
    for (uint32_t k = 0; k < count; k++) {
        const nd_range *next = NULL;
        for (size_t i = 0; i < n->nranges; i++) {
            const nd_range *r = &n->ranges[i];
            if (r->parent == g->id && r->group > last && (!next || r->group < next->group))
                next = r;
        }
        if (!next)
            return -1;
        last = next->group;
        put64(hdr, next->group);
        put64(hdr + 8, (uint64_t)next->floor_ts);
        put32(hdr + 16, (uint32_t)next->start.len);
        if (snap_sink(b, hdr, 20) != 0 ||
            (next->start.len && snap_sink(b, next->start.p, next->start.len) != 0))
            return -1;
    }
    return 0;
}

/* A replica that caught up on g by snapshot past splits it never applied
 * learns of them here: the map (so that its range checks and answers are
 * right) records the children, absent here (it has no copy of their data;
 * the other replicas serve them). */
static int learn_children(nd_node *n, nd_group *g, const uint8_t *p, size_t len)
{
    if (len < 4)
        return -1;
    uint32_t count = get32(p);
    size_t off = 4;
    for (uint32_t k = 0; k < count; k++) {
        if (len - off < 20 || get32(p + off + 16) > len - off - 20)
            return -1;
        uint64_t child = get64(p + off);
        int64_t floor = (int64_t)get64(p + off + 8);
        uint32_t klen = get32(p + off + 16);
        const uint8_t *key = p + off + 20;
        off += 20 + klen;
        bool known = false;
        for (size_t i = 0; i < n->nranges; i++)
            known |= n->ranges[i].group == child;
        mr_err err;
        if (!known) {
            char text[200];
            MR_WARN("node",
                    "group=%llu: caught up past its split at '%s' (group %llu): this node "
                    "has no copy of the new group's data and does not serve it",
                    (unsigned long long)g->id, mr_bytes_text(key, klen, text, sizeof text),
                    (unsigned long long)child);
            if (nd_cluster_record_split(n, g->id, key, klen, child, floor, true, &err) != MR_OK) {
                MR_ERROR("node", "group=%llu: %s", (unsigned long long)g->id, mr_err_msg(&err));
                return -1;
            }
        }
    }
    return off == len ? 0 : -1;
}

/* Snapshot: count, last_ts, hash, slot (u64 each), then u8 set, u32 len, the
 * register's bytes; then the tablet: i64 safe time, u64 length, the MVCC
 * store's snapshot (tablet/mvcc/mv_snap.c); then the groups split off it
 * (children_sink). Returns a malloc'd buffer (caller frees) and its length. */
uint8_t *nd_chain_snapshot(nd_node *n, const nd_group *g, uint32_t *len)
{
    size_t chain = 32 + 5 + g->sm.reg_len;
    snap_buf b = {malloc(chain + 16 + 4096), chain + 16, chain + 16 + 4096};
    mr_err err;
    if (!b.p || mv_snapshot_write(g->mv, MV_SNAP_ALL, snap_sink, &b, &err) != MR_OK) {
        MR_ERROR("node", "group=%llu: cannot snapshot the tablet: %s", (unsigned long long)g->id,
                 b.p ? mr_err_msg(&err) : "out of memory");
        free(b.p);
        return NULL;
    }
    size_t tablet_end = b.len;
    if (children_sink(n, g, &b) != 0) {
        MR_ERROR("node", "group=%llu: cannot snapshot the tablet: out of memory",
                 (unsigned long long)g->id);
        free(b.p);
        return NULL;
    }
    uint8_t *out = b.p;
    *len = (uint32_t)b.len;
    put64(out + chain, (uint64_t)g->read.safe_ts);
    put64(out + chain + 8, tablet_end - chain - 16);
    put64(out, g->sm.count);
    put64(out + 8, (uint64_t)g->sm.last_ts);
    put64(out + 16, g->sm.hash);
    put64(out + 24, g->sm.slot);
    out[32] = g->sm.reg_set;
    put32(out + 33, g->sm.reg_len);
    if (g->sm.reg_len)
        memcpy(out + 37, g->sm.reg, g->sm.reg_len);
    return out;
}

int nd_chain_install(nd_node *n, nd_group *g, const uint8_t *snap, uint32_t len)
{
    if (len < 37 || get32(snap + 33) > len - 37)
        return -1;
    size_t chain = 37 + get32(snap + 33);
    if (len != chain) {
        if (len - chain < 16 || get64(snap + chain + 8) > len - chain - 16)
            return -1;
        size_t tlen = get64(snap + chain + 8), rest = len - chain - 16 - tlen;
        mr_err err;
        if (mv_snapshot_load(g->mv, snap + chain + 16, tlen, &err) != MR_OK) {
            MR_ERROR("node", "group=%llu: tablet snapshot refused: %s", (unsigned long long)g->id,
                     mr_err_msg(&err));
            return -1;
        }
        int64_t safe = (int64_t)get64(snap + chain);
        if (safe > g->read.safe_ts)
            g->read.safe_ts = safe;
        nd_txn_reloaded(n, g);
        if (rest && learn_children(n, g, snap + chain + 16 + tlen, rest) != 0)
            return -1;
    }
    g->sm.count = get64(snap);
    g->sm.last_ts = (int64_t)get64(snap + 8);
    g->sm.hash = get64(snap + 16);
    g->sm.slot = get64(snap + 24);
    free(g->sm.reg);
    g->sm.reg = NULL;
    g->sm.reg_len = 0;
    g->sm.reg_set = false;
    if (snap[32])
        reg_set(&g->sm, snap + 37, (uint32_t)chain - 37);
    return 0;
}

void nd_chain_on_propose(nd_node *n, const net_message *m)
{
    pr_arena a;
    pr_arena_init(&a);
    mr_err err;
    const Meridian__ProposeRequest *rq =
        (const Meridian__ProposeRequest *)nd_request_decode(m, &a, &err);
    if (!rq || nd_valid_propose(rq, &err) != MR_OK)
        nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__INVALID, mr_err_msg(&err));
    else
        nd_propose_op(n, m, rq->group, ND_OP_OPAQUE, rq->data.data, rq->data.len);
    pr_arena_free(&a);
}

/* Register operations through the log (RegisterRequest: group, op read | write | cas, value,
 * expected). With MERIDIAN_TEST_BREAK=stale-reads (a negative control for the consistency
 * harness) any replica answers reads from its own state at once, without the log or a lease:
 * stale under partitions. */
void nd_chain_on_register(nd_node *n, const net_message *m)
{
    pr_arena a;
    pr_arena_init(&a);
    mr_err err;
    const Meridian__RegisterRequest *rq =
        (const Meridian__RegisterRequest *)nd_request_decode(m, &a, &err);
    if (!rq || nd_valid_register(rq, &err) != MR_OK) {
        nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__INVALID, mr_err_msg(&err));
        pr_arena_free(&a);
        return;
    }
    uint64_t gid = rq->group;
    if (rq->op == MERIDIAN__REGISTER_REQUEST__OP__READ) {
        nd_group *g = nd_find_group(n, gid);
        if (g && nd_test_break(n, ND_BREAK_STALE_READS)) {
            Meridian__RegisterReply r = MERIDIAN__REGISTER_REPLY__INIT;
            reg_value(&g->sm, &r);
            nd_reply_body(n, m->reply_to, MERIDIAN__REPLY__BODY_REGISTER, &r.base);
        } else {
            nd_propose_op(n, m, gid, ND_OP_READ, NULL, 0);
        }
    } else if (rq->op == MERIDIAN__REGISTER_REQUEST__OP__WRITE) {
        nd_propose_op(n, m, gid, ND_OP_WRITE, rq->value.data, rq->value.len);
    } else { /* cas (nd_valid_register checked the op) */
        size_t el = rq->expected.len, vl = rq->value.len;
        uint8_t *b = malloc(4 + el + vl);
        if (b) {
            put32(b, (uint32_t)el);
            if (el)
                memcpy(b + 4, rq->expected.data, el);
            if (vl)
                memcpy(b + 4 + el, rq->value.data, vl);
            nd_propose_op(n, m, gid, ND_OP_CAS, b, 4 + el + vl);
            free(b);
        } else {
            nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__NO_MEMORY, "out of memory");
        }
    }
    pr_arena_free(&a);
}
