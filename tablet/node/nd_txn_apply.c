/* Applying the log's transactional records on every replica: prepared transactions, decisions,
 * writes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mr_log.h"
#include "common/mr_util.h"
#include "coordinator/co.h"
#include "tablet/node/nd_int.h"
#include "tablet/node/nd_txn_int.h"
#include "tablet/node/nd_validate.h"
#include "tablet/txn/tx.h"

void nd_sys_key(char *k, char kind, uint64_t txn)
{
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)txn);
    k[0] = 0;
    k[1] = kind;
    k[2] = '/';
    memcpy(k + 3, hex, 16);
}

nd_prepared *nd_prepared_find(nd_group *g, uint64_t txn)
{
    for (nd_prepared *p = g->txn.prepared; p; p = p->next)
        if (p->txn == txn)
            return p;
    return NULL;
}

/* The writes of a prepared record (a malloc'd array borrowing from p->val). MR_EINVAL for a
 * malformed record, MR_ENOMEM. */
int nd_prepared_writes(const nd_prepared *p, mv_write **w, size_t *nw)
{
    if (p->len < 20)
        return MR_EINVAL;
    uint32_t slen = get32(p->val + 16);
    if (slen > p->len - 20)
        return MR_EINVAL;
    return decode_writes(p->val + 20 + slen, p->len - 20 - slen, w, nw);
}

/* MR_EINVAL for a malformed record, MR_ENOMEM. */
static int prepared_add(nd_group *g, uint64_t txn, const uint8_t *val, size_t len)
{
    if (len < 20)
        return MR_EINVAL;
    nd_prepared *p = calloc(1, sizeof *p);
    if (!p || !(p->val = malloc(len))) {
        free(p);
        return MR_ENOMEM;
    }
    memcpy(p->val, val, len);
    p->len = len;
    p->txn = txn;
    p->ts = (int64_t)get64(val);
    p->coord = get64(val + 8);
    mv_write *w;
    size_t nw;
    int rc = nd_prepared_writes(p, &w, &nw);
    if (rc != MR_OK) {
        free(p->val);
        free(p);
        return rc;
    }
    free(w);
    p->next = g->txn.prepared;
    g->txn.prepared = p;
    return MR_OK;
}

static void prepared_remove(nd_group *g, uint64_t txn)
{
    for (nd_prepared **pp = &g->txn.prepared; *pp; pp = &(*pp)->next)
        if ((*pp)->txn == txn) {
            nd_prepared *p = *pp;
            *pp = p->next;
            free(p->val);
            free(p);
            return;
        }
}

size_t nd_txn_prepared_count(const nd_group *g)
{
    size_t c = 0;
    for (const nd_prepared *p = g->txn.prepared; p; p = p->next)
        c++;
    return c;
}

void nd_prepared_clear(nd_group *g)
{
    while (g->txn.prepared) {
        nd_prepared *p = g->txn.prepared;
        g->txn.prepared = p->next;
        free(p->val);
        free(p);
    }
}

static int load_prepared_row(void *arg, const mv_version *v)
{
    nd_group *g = arg;
    if (v->key_len != SYS_KEY_LEN || v->deleted)
        return 0;
    char hex[17];
    memcpy(hex, (const char *)v->key + 3, 16);
    hex[16] = 0;
    int rc = prepared_add(g, strtoull(hex, NULL, 16), v->value, v->len);
    if (rc == MR_EINVAL)
        MR_ERROR("node", "group=%llu: malformed prepared record %s skipped",
                 (unsigned long long)g->id, hex);
    return rc == MR_ENOMEM ? MR_ENOMEM : 0;
}

/* Rebuilds the prepared list from the store (at open, after a snapshot). A replica that
 * missed one would serve reads its prepare timestamp still holds back: an error here must
 * stop the replica. */
int nd_load_prepared(nd_group *g, mr_err *err)
{
    nd_prepared_clear(g);
    g->txn.prepared_locked = false;
    char start[3] = {0, 'p', '/'}, end[3] = {0, 'p', '0'};
    mv_scan_opts so = {.start = start, .start_len = 3, .end = end, .end_len = 3, .ts = MV_TS_MAX};
    uint64_t count;
    int rc = mv_scan(g->mv, &so, load_prepared_row, g, &count, err);
    if (rc == MR_ENOMEM)
        mr_errf(err, MR_ENOMEM, "out of memory");
    if (rc != MR_OK)
        return mr_err_wrap(err, "group %llu: loading prepared transactions",
                           (unsigned long long)g->id);
    return MR_OK;
}

/* The coordinator's decision about txn, if one is logged. */
bool nd_decision_lookup(nd_group *g, uint64_t txn, co_decision *d)
{
    char k[SYS_KEY_LEN];
    nd_sys_key(k, 'd', txn);
    mv_version v;
    mr_err err;
    if (mv_get(g->mv, k, SYS_KEY_LEN, MV_TS_MAX, &v, &err) != MR_OK)
        return false;
    bool ok = !v.deleted && co_decision_decode(v.value, v.len, d, &err) == MR_OK;
    free((void *)v.value);
    return ok;
}

/* What the store holds of txn's decision row: none, a kept row, or a tombstone (a decision
 * made and collected since, until MVCC GC removes it). One read. */
typedef enum { DECISION_NONE, DECISION_KEPT, DECISION_COLLECTED } decision_row;

static decision_row decision_row_state(nd_group *g, uint64_t txn)
{
    char k[SYS_KEY_LEN];
    nd_sys_key(k, 'd', txn);
    mv_version v;
    mr_err err;
    int rc = mv_get(g->mv, k, SYS_KEY_LEN, MV_TS_MAX, &v, &err);
    if (rc == MR_OK) {
        free((void *)v.value);
        return DECISION_KEPT;
    }
    return rc == MR_ENOTFOUND && v.deleted ? DECISION_COLLECTED : DECISION_NONE;
}

/* Was a decision about txn made and collected since? No second decision is ever logged for
 * such a transaction. */
bool nd_decision_forgotten(nd_group *g, uint64_t txn)
{
    return decision_row_state(g, txn) == DECISION_COLLECTED;
}

/* Was a decision about txn ever logged here (kept, or collected since)? */
static bool decision_made(nd_group *g, uint64_t txn)
{
    return decision_row_state(g, txn) != DECISION_NONE;
}

static void acc_sys(apply_acc *a, size_t i, char kind, uint64_t txn, int64_t ts, uint8_t *val,
                    size_t len)
{
    char *k = (char *)a->keys + i * SYS_KEY_LEN;
    nd_sys_key(k, kind, txn);
    a->sys[i] = (mv_write){
        .op = val ? MV_PUT : MV_DELETE, .key = k, .key_len = SYS_KEY_LEN, .value = val, .len = len};
    a->bufs[i] = val;
    a->txns[a->nt++] = (mv_txn){.commit_ts = ts, .w = &a->sys[i], .n = 1};
}

/* Does every write fall in g's range? A record proposed before a split but
 * chosen after it may not: it is then skipped (aborted) on every replica,
 * never applied in part. The meta group has no range: its keys are its own. */
static bool writes_fit(const nd_group *g, const mv_write *w, size_t nw)
{
    for (size_t i = 0; g->has_range && i < nw; i++)
        if (!nd_in_range(g, w[i].key, w[i].key_len))
            return false;
    return true;
}

/* Can every replica store txn's writes at ts? The same verdict everywhere: it depends only
 * on the record, the range and the store's own input checks (mv_check_txn), so a record that
 * fails is skipped on every replica and never takes the rest of its slot down. */
static int writes_storable(const nd_group *g, uint64_t txn, const mv_write *w, size_t nw,
                           int64_t ts)
{
    if (!writes_fit(g, w, nw))
        return MR_EINVAL;
    mv_txn t = {.commit_ts = ts, .w = w, .n = nw};
    mr_err err;
    if (mv_check_txn(g->mv, &t, &err) != MR_OK) {
        MR_WARN("node", "group=%llu txn=%llu: its writes cannot be stored, skipped: %s",
                (unsigned long long)g->id, (unsigned long long)txn, mr_err_msg(&err));
        return MR_EINVAL;
    }
    return MR_OK;
}

/* A record's writes into the slot's batch at ts. MR_EINVAL: they cannot be stored (skip the
 * record, on every replica alike); MR_ENOMEM. */
static int acc_writes(const nd_group *g, apply_acc *a, uint64_t txn, const uint8_t *b, size_t len,
                      int64_t ts)
{
    mv_write *w;
    size_t nw;
    int rc = decode_writes(b, len, &w, &nw);
    if (rc == MR_OK && (rc = writes_storable(g, txn, w, nw, ts)) != MR_OK)
        free(w);
    if (rc != MR_OK)
        return rc;
    a->owned[a->nowned++] = w;
    a->txns[a->nt++] = (mv_txn){.commit_ts = ts, .w = w, .n = nw};
    return MR_OK;
}

static bool decided_in(const rec_effect *fx, size_t n, uint64_t txn)
{
    for (size_t i = 0; i < n; i++)
        if (!fx[i].skipped && fx[i].txn == txn &&
            (fx[i].kind == ND_OP_TXN || fx[i].kind == ND_OP_COMMIT2 || fx[i].kind == ND_OP_ABORT2))
            return true;
    return false;
}

/* The writes of a PREPARE body ([txn][coord][u32 slen][spans][writes]) can be stored at ts
 * (they will be at the commit timestamp, above it, in the same range: a split waits until
 * nothing is prepared). MR_EINVAL, MR_ENOMEM as acc_writes. */
static int prepare_fits(const nd_group *g, uint64_t txn, const uint8_t *b, size_t bl, int64_t ts)
{
    uint32_t slen = get32(b + 16);
    if (slen > bl - 20)
        return MR_EINVAL;
    mv_write *w;
    size_t nw;
    int rc = decode_writes(b + 20 + slen, bl - 20 - slen, &w, &nw);
    if (rc == MR_OK) {
        rc = writes_storable(g, txn, w, nw, ts);
        free(w);
    }
    return rc;
}

/* stage_record: a single-group commit record (ND_OP_TXN). */
static int stage_txn(nd_group *g, apply_acc *a, rec_effect *fx, size_t i, int64_t ts,
                     const uint8_t *b, size_t bl)
{
    int rc;
    /* A single-group commit is its own decision, logged like a
     * coordinator's so that {op: status} answers it truly; an ABORT2
     * logged first (a status question about it) wins. */
    if (decision_made(g, fx[i].txn) || decided_in(fx, i, fx[i].txn)) {
        fx[i].skipped = true;
        return MR_OK;
    }
    uint8_t *val = malloc(CO_DECISION_MAX);
    if (!val)
        return MR_ENOMEM;
    if ((rc = acc_writes(g, a, fx[i].txn, b + 8, bl - 8, ts)) != MR_OK) {
        free(val);
        if (rc == MR_ENOMEM)
            return rc;
        fx[i].skipped = true;
        return MR_OK;
    }
    co_decision d = {.commit = true, .ts = ts};
    acc_sys(a, i, 'd', fx[i].txn, ts, val, co_decision_encode(&d, val));
    return MR_OK;
}

/* stage_record: a participant's PREPARE:
 * [txn][coord][u32 slen][spans][writes] -> [ts][coord]... */
static int stage_prepare(nd_group *g, apply_acc *a, rec_effect *fx, size_t i, int64_t ts,
                         const uint8_t *b, size_t bl)
{
    int rc;
    if (bl < 20 || nd_prepared_find(g, fx[i].txn)) {
        fx[i].skipped = true;
        return MR_OK;
    }
    if ((rc = prepare_fits(g, fx[i].txn, b, bl, ts)) != MR_OK) {
        if (rc == MR_ENOMEM)
            return rc;
        fx[i].skipped = true;
        return MR_OK;
    }
    uint8_t *val = malloc(bl);
    if (!val)
        return MR_ENOMEM;
    put64(val, (uint64_t)ts);
    memcpy(val + 8, b + 8, bl - 8);
    fx[i].prep_val = val;
    fx[i].prep_len = bl;
    acc_sys(a, i, 'p', fx[i].txn, ts, val, bl);
    a->bufs[i] = NULL; /* owned by fx until the list takes a copy */
    return MR_OK;
}

/* stage_record: a participant's DECIDE: [txn][u8 commit][i64 s]. */
static int stage_decide(nd_group *g, apply_acc *a, rec_effect *fx, size_t i, int64_t ts,
                        const uint8_t *b, size_t bl)
{
    int rc;
    nd_prepared *p = nd_prepared_find(g, fx[i].txn);
    if (bl < 17 || !p) {
        fx[i].skipped = true;
        return MR_OK;
    }
    fx[i].coord = p->coord;
    fx[i].d.commit = b[8] == 1;
    fx[i].d.ts = (int64_t)get64(b + 9);
    if (fx[i].d.commit) {
        mv_write *w = NULL;
        size_t nw = 0;
        if ((rc = nd_prepared_writes(p, &w, &nw)) == MR_OK &&
            (rc = writes_storable(g, fx[i].txn, w, nw, fx[i].d.ts)) != MR_OK)
            free(w);
        if (rc == MR_ENOMEM)
            return rc;
        if (rc != MR_OK) {
            /* PREPARE checked these writes: the record must have been damaged. Keep it
             * prepared rather than decide it without its writes. */
            MR_ERROR("node", "group=%llu txn=%llu: prepared writes cannot be applied",
                     (unsigned long long)g->id, (unsigned long long)fx[i].txn);
            fx[i].skipped = true;
            return MR_OK;
        }
        a->owned[a->nowned++] = w;
        a->txns[a->nt++] = (mv_txn){.commit_ts = fx[i].d.ts, .w = w, .n = nw};
    }
    acc_sys(a, i, 'p', fx[i].txn, ts, NULL, 0);
    return MR_OK;
}

/* stage_record: the coordinator's decision (COMMIT2 with its writes, or ABORT2). */
static int stage_decision(nd_group *g, apply_acc *a, rec_effect *fx, size_t i, int64_t ts,
                          uint8_t kind, const uint8_t *b, size_t bl)
{
    int rc;
    /* The first decision logged for a transaction wins, also once collected. */
    if (decision_made(g, fx[i].txn) || decided_in(fx, i, fx[i].txn)) {
        fx[i].skipped = true;
        return MR_OK;
    }
    co_decision d = {.commit = kind == ND_OP_COMMIT2, .ts = ts};
    if (d.commit) {
        uint32_t np = bl >= 12 ? get32(b + 8) : 0;
        if (bl < 12 || np > CO_MAX_PARTS || bl < 12 + 8 * (size_t)np) {
            fx[i].skipped = true;
            return MR_OK;
        }
        if ((rc = acc_writes(g, a, fx[i].txn, b + 12 + 8 * np, bl - 12 - 8 * np, ts)) != MR_OK) {
            if (rc == MR_ENOMEM)
                return rc;
            fx[i].skipped = true;
            return MR_OK;
        }
        d.nparts = np;
        for (uint32_t k = 0; k < np; k++)
            d.parts[k] = get64(b + 12 + 8 * k);
    }
    uint8_t *val = malloc(CO_DECISION_MAX);
    if (!val)
        return MR_ENOMEM;
    fx[i].d = d;
    acc_sys(a, i, 'd', fx[i].txn, ts, val, co_decision_encode(&d, val));
    return MR_OK;
}

/* stage_record: a commit record with a deadline ([txn][i64 before][the record's rest]): the
 * record itself when the slot's timestamp is below before; else, alike on every replica, a
 * single-group commit is skipped and a coordinator's COMMIT2 becomes its abort decision
 * (logged, so participants that ask hear "aborted"). fx[i].kind is the plain kind. */
static int stage_before(nd_group *g, apply_acc *a, rec_effect *fx, size_t i, int64_t ts,
                        uint8_t kind, const uint8_t *b, size_t bl)
{
    uint8_t base = nd_op_base(kind);
    fx[i].kind = base;
    if (bl < 16) {
        fx[i].skipped = true;
        return MR_OK;
    }
    int64_t before = (int64_t)get64(b + 8);
    if (ts < before) /* (the plain record's stage reads neither of its first 8 bytes) */
        return base == ND_OP_TXN ? stage_txn(g, a, fx, i, ts, b + 8, bl - 8)
                                 : stage_decision(g, a, fx, i, ts, base, b + 8, bl - 8);
    fx[i].deadline = true;
    if (base == ND_OP_TXN) {
        fx[i].skipped = true;
        return MR_OK;
    }
    fx[i].kind = ND_OP_ABORT2;
    return stage_decision(g, a, fx, i, ts, ND_OP_ABORT2, b, bl);
}

/* One record into the slot's MVCC batch. Deterministic on every replica: it
 * depends only on the store and the records before it; a record that cannot be
 * applied is skipped (fx->skipped) everywhere alike. MR_OK, or MR_ENOMEM: then
 * this replica cannot go on (skipping here alone would make it diverge). */
static int stage_record(nd_group *g, apply_acc *a, rec_effect *fx, size_t i, int64_t ts,
                        const uint8_t *r, size_t len)
{
    const uint8_t *b = r + 1;
    size_t bl = len - 1;
    fx[i].kind = r[0];
    fx[i].txn = get64(b);
    switch (r[0]) {
    case ND_OP_TXN:
        return stage_txn(g, a, fx, i, ts, b, bl);
    case ND_OP_PREPARE:
        return stage_prepare(g, a, fx, i, ts, b, bl);
    case ND_OP_DECIDE:
        return stage_decide(g, a, fx, i, ts, b, bl);
    case ND_OP_COMMIT2:
    case ND_OP_ABORT2:
        return stage_decision(g, a, fx, i, ts, r[0], b, bl);
    case ND_OP_TXN_BEFORE:
    case ND_OP_COMMIT2_BEFORE:
        return stage_before(g, a, fx, i, ts, r[0], b, bl);
    case ND_OP_FORGET:
        fx[i].skipped = !nd_stage_forget(g, a, fx, i, ts, b, bl);
        break;
    default:
        fx[i].skipped = true;
    }
    return MR_OK;
}

/* What the leader does once a slot's records are stored. */
static void react(nd_node *n, nd_group *g, const rec_effect *fx, int64_t ts)
{
    nd_txn *t = nd_txn_find(g, fx->txn);
    switch (fx->kind) {
    case ND_OP_TXN:
    case ND_OP_COMMIT2: /* a decision record: commit wait, or abort if one came first */
        if (t && t->state == TXN_COMMITTING) {
            if (fx->deadline)
                return nd_txn_deadline_abort(n, g, t);
            if (fx->skipped)
                return nd_txn_abort(n, g, t,
                                    "aborted: the transaction was already decided, a split "
                                    "moved its keys, or its writes cannot be stored",
                                    NULL);
            t->commit_ts = ts;
            nd_txn_commit_wait(n, t);
        }
        break;
    case ND_OP_PREPARE:
        if (t && t->state == TXN_PREPARING && fx->skipped && !nd_prepared_find(g, t->id))
            return nd_txn_abort(n, g, t, "the tablet split: its keys moved; retry", NULL);
        if (t && t->state == TXN_PREPARING) {
            t->state = TXN_PREPARED;
            t->commit_ts = ts;
            nd_txn_reply(n, t, nd_commit_reply(g->id, ts, true, 0));
            nd_prepared *p = nd_prepared_find(g, t->id);
            if (p && t->abort_decided) {
                /* The coordinator's abort came while PREPARE was in flight: log it now, as
                 * on_decision (nd_2pc.c) does for a prepared participant. */
                uint8_t body[17] = {0};
                put64(body, t->id);
                mr_err err;
                if (nd_propose_raw(n, g, 0, ND_OP_DECIDE, body, sizeof body, &err) == MR_OK) {
                    t->state = TXN_DECIDING;
                    break;
                }
            }
            nd_send_vote(n, g, t->id, t->coord, true, ts);
            /* The first question comes sooner than the next ones: a decision that went
             * astray costs ND_QUERY_FIRST. */
            if (p)
                p->last_query = mr_monotonic_ns() - ND_QUERY_EVERY + ND_QUERY_FIRST;
        }
        break;
    case ND_OP_DECIDE:
        if (t && fx->skipped && nd_prepared_find(g, fx->txn)) { /* still prepared: keep its locks */
            if (t->state == TXN_DECIDING)
                t->state = TXN_PREPARED;
            break;
        }
        if (t)
            nd_txn_finish(n, g, t);
        if (!fx->skipped && nd_px_is_leader(g))
            nd_send_ack(n, fx->txn, fx->coord, g->id);
        break;
    case ND_OP_ABORT2:
        /* A COMMIT2 stamped at or past its deadline (stage_before): the coordinator's own
         * transaction, waiting for it, is aborted (the participants are told there). */
        if (t && fx->deadline && t->state == TXN_COMMITTING)
            nd_txn_deadline_abort(n, g, t);
        else if (t && !fx->skipped && !txn_sealed(t->state))
            nd_txn_abort(n, g, t, "aborted: the coordinator decided so", NULL);
        /* Votes and questions that came before the abort was logged hear of it now. */
        if (!fx->skipped && nd_px_is_leader(g))
            for (nd_vote **pv = &g->txn.votes; *pv;) {
                nd_vote *v = *pv;
                if (v->txn == fx->txn) {
                    nd_send_decision(n, fx->txn, v->from, g->id, false, 0);
                    *pv = v->next;
                    free(v);
                } else {
                    pv = &v->next;
                }
            }
        break;
    }
}

/* Every replica applies a slot's transactional records to its MVCC store in
 * one SQLite transaction; the leader then reacts to its own (commit wait,
 * votes, lock releases). */
void nd_txn_apply_slot(nd_node *n, nd_group *g, uint64_t slot, int64_t ts, const uint8_t **recs,
                       const uint32_t *lens, size_t nrec)
{
    if (n->fatal)
        return; /* stopping: nothing more is applied, nor acknowledged */
    size_t cap = nrec ? 2 * nrec : 1;
    apply_acc a = {.txns = calloc(cap, sizeof(mv_txn)),
                   .owned = calloc(cap, sizeof(mv_write *)),
                   .keys = calloc(cap, SYS_KEY_LEN),
                   .sys = calloc(cap, sizeof(mv_write)),
                   .bufs = calloc(cap, sizeof(uint8_t *))};
    rec_effect *fx = calloc(cap, sizeof *fx);
    if (!a.txns || !a.owned || !a.keys || !a.sys || !a.bufs || !fx) {
        /* a replica that skips a slot diverges: stop instead */
        mr_err e;
        mr_errf(&e, MR_ENOMEM, "group %llu slot %llu: out of memory", (unsigned long long)g->id,
                (unsigned long long)slot);
        nd_fatal(n, "applying a slot", &e);
        goto out;
    }
    mr_err err;
    for (size_t i = 0; i < nrec; i++) {
        if (lens[i] < 9) {
            fx[i].skipped = true;
            continue;
        }
        if (stage_record(g, &a, fx, i, ts, recs[i], lens[i]) != MR_OK) {
            mr_errf(&err, MR_ENOMEM, "group %llu slot %llu: out of memory",
                    (unsigned long long)g->id, (unsigned long long)slot);
            nd_fatal(n, "applying a slot", &err);
            goto out;
        }
        if (fx[i].skipped && !fx[i].deadline && nd_op_base(recs[i][0]) == ND_OP_TXN)
            MR_DEBUG("node",
                     "group=%llu slot=%llu: commit record skipped (decided before, keys "
                     "outside the range, or malformed)",
                     (unsigned long long)g->id, (unsigned long long)slot);
    }
    int arc = MR_OK;
    if (a.nt) {
        arc = mv_apply_txns(g->mv, slot, a.txns, a.nt, &err);
        if (arc != MR_OK && arc != MR_EEXIST) {
            /* Every transaction passed the store's input checks (stage_record), so the
             * store failed (I/O, corruption, a full disk): nothing of the slot may be
             * acknowledged, nor the replica go on past it. */
            mr_err_wrap(&err, "group %llu slot %llu", (unsigned long long)g->id,
                        (unsigned long long)slot);
            nd_fatal(n, "applying a slot", &err);
            goto out;
        }
    }
    if (arc == MR_OK) /* not a replay: the decision rows changed as staged */
        nd_decisions_applied(g, fx, nrec);
    /* The in-memory view of the prepared transactions follows the store. */
    for (size_t i = 0; i < nrec; i++) {
        if (fx[i].skipped)
            continue;
        if (fx[i].kind == ND_OP_PREPARE &&
            prepared_add(g, fx[i].txn, fx[i].prep_val, fx[i].prep_len) != MR_OK) {
            /* (stage_record checked the record: only memory can fail) A replica missing a
             * prepared transaction would serve reads its prepare timestamp holds back. */
            mr_errf(&err, MR_ENOMEM, "group %llu slot %llu: out of memory",
                    (unsigned long long)g->id, (unsigned long long)slot);
            nd_fatal(n, "applying a slot", &err);
            goto out;
        } else if (fx[i].kind == ND_OP_DECIDE) {
            prepared_remove(g, fx[i].txn);
        }
    }
    /* Spanner keeps each group's Paxos write timestamps monotonic (§4.1.2): a
     * DECIDE applies its writes at the coordinator's s, above this slot's stamp,
     * so every later stamp of this group must exceed s -- on every replica, so
     * that a successor does too. Otherwise a participant whose clock is behind
     * the coordinator's would stamp its next write of a key below s (a version
     * order against the lock order), and only commit wait would hide it.
     * Raised before react releases the locks. */
    int64_t top = ts;
    for (size_t i = 0; i < a.nt; i++)
        if (a.txns[i].commit_ts > top)
            top = a.txns[i].commit_ts;
    if (top > ts && !nd_test_break(n, ND_BREAK_NO_TS_FLOOR))
        px_node_raise_ts_floor(g->px, top);
    if (ts > g->read.safe_ts)
        g->read.safe_ts = ts;
    for (size_t i = 0; i < nrec; i++)
        if (lens[i] >= 9)
            react(n, g, &fx[i], ts);
    if (g->txn.prepared && nd_leads_with_log(n, g))
        nd_lock_prepared(n, g);
out:
    for (size_t i = 0; i < a.nowned; i++)
        free(a.owned[i]);
    for (size_t i = 0; a.bufs && i < nrec; i++)
        free(a.bufs[i]);
    for (size_t i = 0; fx && i < nrec; i++) {
        free(fx[i].prep_val);
        free(fx[i].forgot);
    }
    free(a.txns);
    free(a.owned);
    free(a.keys);
    free(a.sys);
    free(a.bufs);
    free(fx);
}

void nd_txn_voided(nd_node *n, nd_group *g, uint8_t kind, uint64_t id)
{
    nd_txn *t = nd_txn_find(g, id);
    if (!t)
        return;
    kind = nd_op_base(kind);
    if ((kind == ND_OP_TXN || kind == ND_OP_COMMIT2) && t->state == TXN_COMMITTING)
        nd_txn_abort(n, g, t, "the commit record was voided (it would have gone back in time)",
                     NULL);
    else if (kind == ND_OP_PREPARE && t->state == TXN_PREPARING)
        nd_txn_abort(n, g, t, "the prepare record was voided (it would have gone back in time)",
                     NULL);
    else if (kind == ND_OP_DECIDE && t->state == TXN_DECIDING)
        t->state = TXN_PREPARED; /* the coordinator resends, or we ask again */
}

void nd_txn_reloaded(nd_node *n, nd_group *g)
{
    mr_err err;
    if (nd_load_prepared(g, &err) != MR_OK)
        nd_fatal(n, "reloading a tablet", &err);
    nd_count_decisions(g);
    if (nd_raise_floor_from_store(g, &err) != MR_OK)
        nd_fatal(n, "loading a snapshot", &err);
}
