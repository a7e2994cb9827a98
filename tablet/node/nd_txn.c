/* Read-write transactions at the leader: the transaction table, locks, commit records, commit
 * wait. The transaction modules (nd_txn_int.h) together, Spanner §4.1-4.2, one group at a time:
 *
 * - Read-write transactions run at the group's leader: reads take shared
 *   locks and see the latest committed version; writes are buffered by the
 *   client and sent with COMMIT, which takes exclusive locks (wound-wait, see
 *   tablet/lock/tl.h), proposes a commit record through Paxos, and — once it
 *   is chosen at timestamp s (the slot's timestamp, assigned by the leader
 *   inside its lease, max(TT.now().latest, last + 1)) and applied — waits
 *   until TT.after(s) (commit wait, mostly overlapped with replication),
 *   then releases the locks and answers s.
 * - Reads without locks at any replica: a snapshot read at t is served once
 *   the replica's safe time (the largest applied timestamp: every later write
 *   gets a larger one) reaches t. Strong reads use t = TT.now().latest;
 *   exact staleness D reads at TT.now().latest - D; bounded staleness D reads
 *   at the replica's safe time without waiting, if that is no older than D.
 *   An idle leader proposes an empty SAFE record every ND_SAFE_IDLE so that
 *   followers' safe time keeps up.
 *
 * Requests and replies are the schema's (proto/meridian.proto: TxnRequest,
 * SnapReadRequest; Reply with ReadReply, CommitReply, TxnStatusReply, Ack or an
 * Error). */
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

static void on_commit_wait(uv_timer_t *h);
static void commit_done(nd_node *n, nd_group *g, nd_txn *t);
static void propose_record(nd_node *n, nd_group *g, nd_txn *t, uint8_t kind, const uint8_t *body,
                           size_t blen);

/* A replica's later timestamps exceed every commit timestamp its store holds
 * (see nd_txn_apply_slot): after a restart the replay skips the DECIDE records
 * the store already applied, and a snapshot brings writes at timestamps above
 * its slots', so both raise the floor from the store. */
int nd_raise_floor_from_store(nd_group *g, mr_err *err)
{
    int64_t top;
    int rc = mv_max_ts(g->mv, &top, err);
    if (rc)
        return mr_err_wrap(err, "group %llu", (unsigned long long)g->id);
    px_node_raise_ts_floor(g->px, top);
    return MR_OK;
}

int nd_txn_group_open(nd_node *n, nd_group *g, mr_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/g%llu.mv", n->data_dir, (unsigned long long)g->id);
    int rc = mv_open(path, NULL, &g->mv, err);
    if (rc)
        return mr_err_wrap(err, "open %s", path);
    g->txn.locks = tl_new();
    if (!g->txn.locks)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    rc = nd_load_prepared(g, err);
    if (rc)
        return rc;
    nd_count_decisions(g);
    return nd_raise_floor_from_store(g, err);
}

static void txn_free(nd_txn *t)
{
    free(t->co);
    free(t->spans);
    free(t->key);
    free(t->end);
    free(t->body);
    free(t->held);
    free(t);
}

static void on_timer_closed(uv_handle_t *h)
{
    nd_txn *t = h->data;
    free(h);
    if (t)
        txn_free(t);
}

/* Unlinks and frees t (after its timer, if any, has closed). */
static void txn_drop(nd_group *g, nd_txn *t)
{
    for (nd_txn **p = &g->txn.txns; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            break;
        }
    if (t->timer) {
        t->timer->data = t;
        uv_close((uv_handle_t *)t->timer, on_timer_closed);
    } else {
        txn_free(t);
    }
}

/* t is over here (committed, or its decision applied): its locks go, and
 * whoever waited for them is granted. */
void nd_txn_finish(nd_node *n, nd_group *g, nd_txn *t)
{
    tl_out out = {0};
    tl_release(g->txn.locks, t->id, &out);
    txn_drop(g, t);
    nd_handle_out(n, g, &out);
    tl_out_free(&out);
}

void nd_txn_group_close(nd_node *n, nd_group *g)
{
    while (g->txn.txns) {
        nd_txn *t = g->txn.txns;
        g->txn.txns = t->next;
        if (t->timer) {
            t->timer->data = NULL;
            uv_close((uv_handle_t *)t->timer, on_timer_closed);
        }
        txn_free(t);
    }
    while (g->read.snapwaits) {
        nd_snapwait *w = g->read.snapwaits;
        g->read.snapwaits = w->next;
        nd_snapwait_free(w);
    }
    nd_prepared_clear(g);
    nd_votes_clear(g);
    nd_deliveries_clear(g);
    free(g->gc.forget_ready);
    g->gc.forget_ready = NULL;
    g->gc.nforget_ready = g->gc.cap_forget_ready = 0;
    if (g->read.timer) {
        uv_close((uv_handle_t *)&g->read.timer->h, nd_on_read_timer_closed);
        g->read.timer = NULL;
    }
    tl_free(g->txn.locks);
    g->txn.locks = NULL;
    mv_close(g->mv);
    g->mv = NULL;
}

nd_txn *nd_txn_find(nd_group *g, uint64_t id)
{
    for (nd_txn *t = g->txn.txns; t; t = t->next)
        if (t->id == id)
            return t;
    return NULL;
}

void nd_txn_reply(nd_node *n, nd_txn *t, nd_enc e)
{
    if (t->has_reply) {
        nd_send_reply(n, t->reply_to, e);
        t->has_reply = false;
    } else {
        nd_enc_free(e);
    }
}

/* Answers t's request with an "invalid" error (a client mistake). */
static void txn_invalid(nd_node *n, nd_txn *t, const char *msg)
{
    nd_txn_reply(n, t, nd_enc_error(MERIDIAN__ERROR_CODE__INVALID, msg, false, NULL, 0));
}

static nd_enc aborted(const char *why)
{
    return nd_enc_error(MERIDIAN__ERROR_CODE__ABORTED, why, true, NULL, 0);
}

nd_enc nd_commit_reply(uint64_t group, int64_t ts, bool prepared, int64_t wait_ns)
{
    Meridian__CommitReply c = MERIDIAN__COMMIT_REPLY__INIT;
    c.ts = ts;
    c.has_group = true;
    c.group = group;
    if (prepared) {
        c.has_prepared = c.prepared = true;
    } else {
        c.has_commit_wait_ns = true;
        c.commit_wait_ns = wait_ns;
    }
    return nd_enc_body(MERIDIAN__REPLY__BODY_COMMIT, &c.base);
}

/* The version of key visible at ts: a ReadReply {found, value, version_ts} with, for
 * snapshot reads, the read timestamp; or the store's error (e.g. a read below the version
 * horizon). */
nd_enc nd_read_key(nd_group *g, const void *key, size_t klen, int64_t ts, bool with_ts,
                   int64_t *vis)
{
    mv_version v;
    mr_err err;
    int rc = mv_get(g->mv, key, klen, ts, &v, &err);
    if (vis)
        *vis = rc == MR_OK ? v.ts : 0; /* a tombstone's timestamp counts too */
    if (rc != MR_OK && rc != MR_ENOTFOUND)
        return nd_enc_error(nd_code_of_mr(rc), mr_err_msg(&err), false, NULL, 0);
    Meridian__ReadReply r = MERIDIAN__READ_REPLY__INIT;
    r.has_found = true;
    if (rc == MR_OK && !v.deleted) {
        r.found = true;
        r.has_value = true;
        r.value = (ProtobufCBinaryData){.len = v.len, .data = (uint8_t *)v.value};
        r.has_version_ts = true;
        r.version_ts = v.ts;
    }
    if (with_ts) {
        r.has_read_ts = true;
        r.read_ts = ts;
    }
    nd_enc e = nd_enc_body(MERIDIAN__REPLY__BODY_READ, &r.base);
    if (rc == MR_OK)
        free((void *)v.value);
    return e;
}

/* Under a transaction's locks: the latest committed version. */
static nd_enc read_latest(nd_group *g, const uint8_t *key, size_t klen)
{
    return nd_read_key(g, key, klen, MV_TS_MAX, false, NULL);
}

/* A read or scan of a transaction, under its locks: the latest committed versions. */
static nd_enc txn_read(nd_group *g, nd_txn *t)
{
    if (t->scan)
        return nd_read_at(g, t->key, t->klen, true, t->end, t->elen, t->limit, MV_TS_MAX, NULL);
    return read_latest(g, t->key, t->klen);
}

/* Appends [u64 txn] then parts of a prefix and the writes of t->body. */
static uint8_t *frame_2pc(const nd_txn *t, const uint8_t *mid, size_t mlen, size_t *len)
{
    size_t wl = t->blen - 8; /* t->body: [u64 txn][u32 nwrites][writes] */
    uint8_t *b = malloc(8 + mlen + wl);
    if (!b)
        return NULL;
    put64(b, t->id);
    if (mlen)
        memcpy(b + 8, mid, mlen);
    memcpy(b + 8 + mlen, t->body + 8, wl);
    *len = 8 + mlen + wl;
    return b;
}

/* t holds every lock it asked for. Single group: propose its commit record.
 * Participant of a 2PC: propose PREPARE (its writes and read locks, so a new
 * leader can take them again). Coordinator: wait for every vote, then
 * propose COMMIT2 above every prepare timestamp. From the proposal on t can
 * no longer be wounded (tl_prepare): its locks stay until the record applied
 * and commit wait is over, or the decision is in. */
void nd_txn_locked(nd_node *n, nd_group *g, nd_txn *t)
{
    if (t->co) {
        co_verdict v = co_verdict_of(t->co);
        if (v == CO_ABORT)
            return nd_txn_abort(n, g, t, "a participant could not prepare", NULL);
        if (v == CO_WAITING) {
            /* Voting: every lock it needs here is held, and it waits only for the
             * participants' votes, which follow their PREPAREs' log writes. Wounding it now
             * would throw the whole two-phase commit away (and make every prepared participant
             * log an abort), so it is marked prepared in the lock table: an older request
             * waits and pushes it (nd_handle_out, or a participant's nd_push), and the push
             * aborts it only if its votes are not in by ND_VOTING_GRACE after its commit came
             * (expired). That bounds any cycle of waits through it: one needs a participant
             * of it still taking locks, waiting for someone who waits here. */
            mr_err err;
            int prc = tl_prepare(g->txn.locks, t->id, &err);
            if (prc != MR_OK && prc != MR_ENOTFOUND)
                return nd_txn_abort(n, g, t, mr_err_msg(&err), NULL);
            t->state = TXN_VOTING;
            return;
        }
    }
    mr_err err;
    int prc = tl_prepare(g->txn.locks, t->id, &err);
    if (prc != MR_OK && prc != MR_ENOTFOUND) /* not found: it holds no lock here */
        return nd_txn_abort(n, g, t, mr_err_msg(&err), NULL);
    /* A commit deadline (TxnRequest.commit_before) goes into the record (TXN_BEFORE,
     * COMMIT2_BEFORE): the commit timestamp is the slot's, stamped when Paxos proposes it, so
     * only applying it tells whether it is below the deadline -- on every replica alike, one
     * path for every case (a deadline already passed here costs a round of the log, rarely). */
    uint8_t kind = ND_OP_TXN;
    const uint8_t *body = t->body;
    size_t blen = t->blen;
    uint8_t *framed = NULL;
    if (t->co) {
        /* s > every prepare timestamp (MinNextTS), and >= TT.now().latest:
         * the slot's own stamp. */
        if (px_node_promise(g->px, tt_now(n->clock), t->co->max_prepare_ts, &err) != MR_OK) {
            char why[300];
            snprintf(why, sizeof why, "cannot commit above the prepare timestamps: %s",
                     mr_err_msg(&err));
            return nd_txn_abort(n, g, t, why, NULL);
        }
        uint8_t mid[8 + 4 + 8 * CO_MAX_PARTS];
        size_t off = 0;
        if (t->commit_before) {
            put64(mid, (uint64_t)t->commit_before);
            off = 8;
        }
        put32(mid + off, t->co->nparts);
        for (uint32_t i = 0; i < t->co->nparts; i++)
            put64(mid + off + 4 + 8 * i, t->co->parts[i]);
        framed = frame_2pc(t, mid, off + 4 + 8 * (size_t)t->co->nparts, &blen);
        kind = t->commit_before ? ND_OP_COMMIT2_BEFORE : ND_OP_COMMIT2;
    } else if (t->commit_before) {
        uint8_t mid[8];
        put64(mid, (uint64_t)t->commit_before);
        framed = frame_2pc(t, mid, sizeof mid, &blen);
        kind = ND_OP_TXN_BEFORE;
    } else if (t->coord) {
        uint8_t *mid = malloc(12 + t->spans_len);
        if (mid) {
            put64(mid, t->coord);
            put32(mid + 8, (uint32_t)t->spans_len);
            if (t->spans_len)
                memcpy(mid + 12, t->spans, t->spans_len);
            framed = frame_2pc(t, mid, 12 + t->spans_len, &blen);
            free(mid);
        }
        kind = ND_OP_PREPARE;
    }
    if (kind != ND_OP_TXN) {
        if (!framed)
            return nd_txn_abort(n, g, t, "out of memory", NULL);
        body = framed;
    }
    if (kind == ND_OP_PREPARE && n->hold_prepare_ns > 0) {
        /* Test-only (the fault RPC's hold_prepare_ms): PREPARE goes out late, as if its
         * replication were slow; nd_txn_tick proposes it. */
        free(t->held);
        t->held = framed;
        t->held_len = blen;
        t->held_until = mr_monotonic_ns() + n->hold_prepare_ns;
        t->state = TXN_PREPARING;
        return;
    }
    propose_record(n, g, t, kind, body, blen);
    free(framed);
}

/* Proposes t's commit record (ND_OP_TXN, COMMIT2) or PREPARE; aborts t if it cannot. */
static void propose_record(nd_node *n, nd_group *g, nd_txn *t, uint8_t kind, const uint8_t *body,
                           size_t blen)
{
    mr_err err;
    int rc = nd_propose_raw(n, g, 0, kind, body, blen, &err);
    if (rc != MR_OK) {
        char why[300];
        snprintf(why, sizeof why, "commit not proposed: %s", mr_err_msg(&err));
        if (rc == MR_EINVAL) /* over the log's entry size: retrying cannot help */
            nd_txn_reply(n, t, nd_enc_error(MERIDIAN__ERROR_CODE__TOO_LARGE, why, false, NULL, 0));
        return nd_txn_abort(n, g, t, why, NULL);
    }
    t->state = kind == ND_OP_PREPARE ? TXN_PREPARING : TXN_COMMITTING;
    if (kind != ND_OP_PREPARE)
        t->wait_from = mr_monotonic_ns();
}

/* Test-only: proposes the PREPAREs held back (hold_prepare_ms) whose time has come. */
static void propose_held(nd_node *n, nd_group *g, int64_t now)
{
    for (;;) { /* from the top each time: an abort changes the list */
        nd_txn *t = g->txn.txns;
        while (t && !(t->held && now >= t->held_until))
            t = t->next;
        if (!t)
            return;
        uint8_t *b = t->held;
        t->held = NULL;
        propose_record(n, g, t, ND_OP_PREPARE, b, t->held_len);
        free(b);
    }
}

void nd_txn_deadline_abort(nd_node *n, nd_group *g, nd_txn *t)
{
    g->txn.deadline_aborts++;
    MR_DEBUG("node", "group=%llu txn=%llu: aborted, its commit deadline %lld passed",
             (unsigned long long)g->id, (unsigned long long)t->id, (long long)t->commit_before);
    nd_txn_abort(n, g, t, ND_DEADLINE_PASSED, NULL);
}

void nd_txn_abort(nd_node *n, nd_group *g, nd_txn *t, const char *why, tl_out *out)
{
    nd_txn_reply(n, t, aborted(why));
    /* The other side of a two-phase commit hears of it now rather than by
     * timeout: a participant votes no, a coordinator tells everyone, and logs
     * the abort so that a participant that missed it (its PREPARE was in flight,
     * or the message was lost) is answered when its vote or question comes. */
    if (t->co) {
        nd_send_decisions(n, g, t->id, t->co, false, 0);
        nd_propose_abort2(n, g, t->id);
    } else if (t->coord && t->coord != g->id)
        nd_send_vote(n, g, t->id, t->coord, false, 0);
    tl_out local = {0};
    tl_release(g->txn.locks, t->id, out ? out : &local);
    if (!out) {
        nd_handle_out(n, g, &local);
        tl_out_free(&local);
    }
    txn_drop(g, t);
}

/* t was wounded while no request of it waited here: tell its client now (TxnNotice, on the
 * connection of its last request), so that it stops what it does at its other groups -- a
 * read parked there, locks taken there -- instead of learning it at its next request here,
 * which may come only with its commit, after every other group prepared it. */
static void notify_wounded(nd_node *n, nd_group *g, nd_txn *t)
{
    Meridian__TxnNotice no = MERIDIAN__TXN_NOTICE__INIT;
    no.has_txn = no.has_group = true;
    no.txn = t->id;
    no.group = g->id;
    no.message = "wounded by an older transaction";
    uint8_t *buf;
    size_t len;
    mr_err err;
    if (pr_encode(&no.base, NET_FRAME_DEFAULT_MAX, &buf, &len, &err) != MR_OK)
        return; /* the client learns it at its next request here */
    if (net_transport_notify(n->tr, t->reply_to, ND_MSG_TXN_NOTICE, buf, (uint32_t)len, &err) ==
        MR_OK)
        g->txn.notices++;
    free(buf);
}

/* Wounds and grants reported by the lock table. */
void nd_handle_out(nd_node *n, nd_group *g, tl_out *out)
{
    for (size_t i = 0; i < out->nwounded; i++) {
        nd_txn *t = nd_txn_find(g, out->wounded[i]);
        if (!t || txn_sealed(t->state))
            continue;
        if (t->coord && (t->state == TXN_LOCKING || t->state == TXN_VOTING)) {
            /* A two-phase commit cannot wait for the client to hear of it. */
            nd_txn_abort(n, g, t, "wounded by an older transaction", out);
            continue;
        }
        t->wounded = true;
        if (t->has_reply) {
            /* A parked request learns it now; the client retries the transaction. */
            nd_txn_reply(n, t, aborted("wounded by an older transaction"));
            t->state = TXN_IDLE;
        } else if (t->reply_to.conn_id) {
            notify_wounded(n, g, t);
        }
    }
    out->nwounded = 0;
    /* Younger prepared participants that older requests wait for here: their coordinators
     * wound them unless they are decided (tl.h, "push"). */
    for (size_t i = 0; i < out->npushed; i++) {
        nd_txn *t = nd_txn_find(g, out->pushed[i]);
        if (t && t->coord && t->coord != g->id &&
            (t->state == TXN_PREPARING || t->state == TXN_PREPARED))
            nd_push(n, g, t);
        else if (t && t->co && t->state == TXN_VOTING)
            nd_push_coordinator(n, g, t); /* (waits a little: see nd_txn_locked) */
    }
    out->npushed = 0;
    /* Grants may cascade (handling one can release more): take them in turn. */
    while (out->ngranted) {
        tl_grant gr = out->granted[--out->ngranted];
        nd_txn *t = nd_txn_find(g, gr.txn);
        if (!t)
            continue;
        if (t->state == TXN_READ_WAIT) {
            t->state = TXN_IDLE;
            nd_txn_reply(n, t, txn_read(g, t));
        } else if (t->state == TXN_LOCKING && t->locks_pending > 0 && --t->locks_pending == 0) {
            nd_txn_locked(n, g, t);
        }
    }
}

/* Commit: t asks for an exclusive lock on every key its commit record (t->body) writes and is
 * LOCKING until locks_pending reaches 0. False if it was wounded or refused on the way (abort
 * it). */
static bool lock_writes(nd_group *g, nd_txn *t, tl_out *out)
{
    t->state = TXN_LOCKING;
    t->locks_pending = 0;
    mv_write *w;
    size_t nw;
    if (decode_writes(t->body + 8, t->blen - 8, &w, &nw) != MR_OK)
        return false;
    bool ok = true;
    for (size_t i = 0; ok && i < nw; i++) {
        tl_lock lk = {.mode = TL_EXCLUSIVE, .start = w[i].key, .start_len = w[i].key_len};
        uint64_t req;
        mr_err err;
        int r = tl_acquire(g->txn.locks, t->id, t->prio, &lk, &req, out, &err);
        if (r == TL_WAIT)
            t->locks_pending++;
        else if (r != TL_GRANTED)
            ok = false;
    }
    free(w);
    return ok;
}

/* Commit record: u64 transaction id, u32 nwrites, then per write u8 op (1 put, 2 delete), u32
 * key length, key, u32 value length, value. */
static int encode_writes(uint64_t txn, const mv_write *w, size_t nw, uint8_t **out, size_t *len,
                         mr_err *err)
{
    size_t cap = 12;
    for (size_t i = 0; i < nw; i++) {
        /* (client writes passed nd_valid_txn; the node's own must fit the store too) */
        if (!w[i].key_len || w[i].key_len > MV_MAX_KEY || w[i].len > MV_MAX_VALUE)
            return mr_errf(err, MR_EINVAL,
                           "write %zu: a key of %zu or a value of %zu bytes is "
                           "outside the store's limits",
                           i, w[i].key_len, w[i].len);
        cap += 9 + w[i].key_len + w[i].len;
    }
    uint8_t *b = malloc(cap), *p = b;
    if (!b)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    put64(p, txn);
    put32(p + 8, (uint32_t)nw);
    p += 12;
    for (size_t i = 0; i < nw; i++) {
        bool del = w[i].op == MV_DELETE;
        size_t kl = w[i].key_len, vl = del ? 0 : w[i].len;
        *p++ = del ? MV_DELETE : MV_PUT;
        put32(p, (uint32_t)kl);
        memcpy(p + 4, w[i].key, kl);
        p += 4 + kl;
        put32(p, (uint32_t)vl);
        if (vl)
            memcpy(p + 4, w[i].value, vl);
        p += 4 + vl;
    }
    *out = b;
    *len = (size_t)(p - b);
    return MR_OK;
}

/* A client's commit writes (checked by nd_valid_txn) as the store's. *out malloc'd. */
static int client_writes(const nd_txn_req *rq, mv_write **out, mr_err *err)
{
    mv_write *w = calloc(rq->nwrites ? rq->nwrites : 1, sizeof *w);
    if (!w)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    for (size_t i = 0; i < rq->nwrites; i++) {
        const Meridian__Write *cw = rq->writes[i];
        w[i].op = cw->has_value ? MV_PUT : MV_DELETE;
        w[i].key = cw->key.data;
        w[i].key_len = cw->key.len;
        w[i].value = cw->has_value ? cw->value.data : NULL;
        w[i].len = cw->has_value ? cw->value.len : 0;
    }
    *out = w;
    return MR_OK;
}

/* Decodes a commit body into writes borrowing from `b`; *w is malloc'd. MR_EINVAL for a
 * malformed body, MR_ENOMEM. */
int decode_writes(const uint8_t *b, size_t len, mv_write **w, size_t *n)
{
    if (len < 4)
        return MR_EINVAL;
    uint32_t cnt = get32(b);
    if (cnt > len / 9 + 1)
        return MR_EINVAL;
    mv_write *ws = calloc(cnt ? cnt : 1, sizeof *ws);
    if (!ws)
        return MR_ENOMEM;
    size_t off = 4;
    for (uint32_t i = 0; i < cnt; i++) {
        if (off + 5 > len)
            goto bad;
        ws[i].op = b[off] == MV_DELETE ? MV_DELETE : MV_PUT;
        uint32_t kl = get32(b + off + 1);
        off += 5;
        if (kl > len - off || off + kl + 4 > len)
            goto bad;
        ws[i].key = b + off;
        ws[i].key_len = kl;
        off += kl;
        uint32_t vl = get32(b + off);
        off += 4;
        if (vl > len - off)
            goto bad;
        ws[i].value = b + off;
        ws[i].len = vl;
        off += vl;
    }
    *w = ws;
    *n = cnt;
    return MR_OK;
bad:
    free(ws);
    return MR_EINVAL;
}

/* After the commit record applied at ts: wait until TT.after(ts), then release. */
void nd_txn_commit_wait(nd_node *n, nd_txn *t)
{
    int64_t wait = tt_wait_ns(n->clock, t->commit_ts);
    /* Negative control for the tests: MERIDIAN_TEST_BREAK=no-commit-wait
     * answers before TT.after(s), which a lying clock within the bound turns
     * into stale reads elsewhere. */
    if (wait <= 0 || nd_test_break(n, ND_BREAK_NO_COMMIT_WAIT))
        return commit_done(n, t->g, t);
    t->state = TXN_WAITING;
    if (!t->timer) {
        t->timer = malloc(sizeof *t->timer);
        if (!t->timer)
            return; /* no timer: the tick ends the wait (commit_wait_ticks) */
        uv_timer_init(n->loop, t->timer);
    }
    t->timer->data = t;
    uv_timer_start(t->timer, on_commit_wait, (uint64_t)((wait + MR_NS_PER_MS - 1) / MR_NS_PER_MS),
                   0);
}

static void commit_done(nd_node *n, nd_group *g, nd_txn *t)
{
    n->stats.proposals++;
    /* commit_wait_ns: commit wait as Spanner counts it (§4.1.2), from the proposal that
     * assigned s until TT.after(s) held, overlapping replication. When the record applied
     * after that (replication took longer than the wait), the time since TT.after(s) began to
     * hold -- TT.now().earliest - s ago -- is replication's, not commit wait's. */
    int64_t now = mr_monotonic_ns(), wait = 0;
    if (t->wait_from) {
        int64_t since = tt_now(n->clock).earliest - t->commit_ts; /* > 0: TT.after(s) */
        wait = now - t->wait_from - (since > 0 ? since : 0);
        if (wait < 0)
            wait = 0;
    }
    nd_txn_reply(n, t, nd_commit_reply(g->id, t->commit_ts, false, wait));
    /* The coordinator tells the participants only now, after commit wait
     * (Spanner §4.2.1): they then apply at s and release their locks. */
    if (t->co)
        nd_send_decisions(n, g, t->id, t->co, true, t->commit_ts);
    nd_txn_finish(n, g, t);
}

/* Commit waits that could not get a timer end on the tick, never early. */
static void commit_wait_ticks(nd_node *n, nd_group *g)
{
    for (;;) { /* from the top each time: finishing one may end others */
        nd_txn *t = g->txn.txns;
        while (t && !(t->state == TXN_WAITING && !t->timer && tt_after(n->clock, t->commit_ts)))
            t = t->next;
        if (!t)
            return;
        commit_done(n, g, t);
    }
}

static void on_commit_wait(uv_timer_t *h)
{
    nd_txn *t = h->data;
    if (!tt_after(t->n->clock, t->commit_ts)) {
        uv_timer_start(h, on_commit_wait, 1, 0); /* the bound grew: a little more */
        return;
    }
    commit_done(t->n, t->g, t);
}

/* Records a read lock taken here, for PREPARE (end NULL: a point read). False without
 * memory. */
static bool txn_note_span(nd_txn *t, const uint8_t *key, size_t klen, const uint8_t *end,
                          size_t elen)
{
    size_t need = t->spans_len + 8 + klen + elen;
    if (need > t->spans_cap) {
        size_t cap = need * 2;
        uint8_t *b = realloc(t->spans, cap);
        if (!b)
            return false;
        t->spans = b;
        t->spans_cap = cap;
    }
    uint8_t *p = t->spans + t->spans_len;
    put32(p, (uint32_t)klen);
    memcpy(p + 4, key, klen);
    put32(p + 4 + klen, end ? (uint32_t)elen : UINT32_MAX);
    if (elen)
        memcpy(p + 8 + klen, end, elen);
    t->spans_len = need;
    return true;
}

/* This node leads g with a valid lease and has applied everything its
 * predecessors chose. */
bool nd_leads_with_log(nd_node *n, nd_group *g)
{
    px_status st;
    px_node_status(g->px, &st);
    return st.state == PX_LEADER && g->rep.last_state == PX_LEADER &&
           px_node_lease_valid(g->px, tt_now(n->clock)) && g->lead.ready;
}

/* on_txn, step 1: the group, if this node leads it with a valid lease and has applied its
 * predecessors' log; otherwise the client is answered and NULL returned. */
static nd_group *txn_serving_group(nd_node *n, const net_message *m, const nd_txn_req *rq)
{
    nd_group *g = nd_find_group(n, rq->group);
    if (!g) {
        nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__NO_GROUP,
                       "this node holds no replica of the group");
        return NULL;
    }
    px_status st;
    px_node_status(g->px, &st);
    if (st.state != PX_LEADER || !px_node_lease_valid(g->px, tt_now(n->clock))) {
        const char *leader =
            st.leader && st.leader <= PX_MAX_NODE_ID ? n->peers[st.leader].addr : "";
        nd_send_reply(n, m->reply_to,
                      nd_enc_error(MERIDIAN__ERROR_CODE__NOT_LEADER, "not the leader of this group",
                                   false, leader, 0));
        return NULL;
    }
    /* A new leader first applies what its predecessors chose: until then its
     * MVCC store may miss committed writes that no lock here protects. */
    if (g->rep.last_state != PX_LEADER || !g->lead.ready) {
        nd_send_reply(n, m->reply_to, aborted("new leader still applying its predecessors' log"));
        return NULL;
    }
    return g;
}

/* on_txn, step 2: requests answered without touching the transaction (t may be NULL): lost
 * read locks, a request in flight, a participant already prepared, a decision already
 * made, a tablet about to split. True if the client was answered. */
static bool txn_answered_early(nd_node *n, const net_message *m, nd_group *g, nd_txn *t,
                               const nd_txn_req *rq, uint64_t coord)
{
    uint64_t id = rq->txn;
    bool commit = rq->op == ND_TXN_COMMIT;
    /* Reads take locks at the leader that served them. A commit for a
     * transaction that read elsewhere (a previous leader, or before this
     * leader's term) has lost its read locks: abort it. */
    if (commit && rq->nreads > 0 && (!t || t->nreads != rq->nreads)) {
        if (coord && coord != g->id)
            nd_send_vote(n, g, id, coord, false, 0);
        else if (coord == g->id)
            nd_refuse_2pc(n, g, id, rq->participants, rq->nparts);
        nd_send_reply(n, m->reply_to, aborted("the reads' locks were lost (leadership moved)"));
        return true;
    }
    /* (An abort is not: it ends the request in flight too -- a read parked here whose
     * transaction was wounded elsewhere, mer_txn_wounded.) */
    if (t && t->has_reply && rq->op != ND_TXN_ABORT) {
        nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__BUSY,
                       "the transaction has a request in flight");
        return true;
    }
    if (commit && coord && coord != g->id && nd_prepared_find(g, id)) {
        nd_send_reply(n, m->reply_to, nd_commit_reply(g->id, nd_prepared_find(g, id)->ts, true, 0));
        return true;
    }
    co_decision dec;
    if (commit && coord == g->id && nd_decision_lookup(g, id, &dec)) {
        nd_send_reply(n, m->reply_to,
                      dec.commit ? nd_commit_reply(g->id, dec.ts, false, 0)
                                 : aborted("the transaction was aborted"));
        return true;
    }
    /* A tablet about to split takes no new transactions (nd_split.c): the
     * running ones end first, so none holds locks across the split. */
    if (!t && g->split.state >= ND_SPLIT_BARRIER && rq->op != ND_TXN_ABORT) {
        if (commit && coord && coord != g->id)
            nd_send_vote(n, g, id, coord, false, 0);
        else if (commit && coord == g->id)
            nd_refuse_2pc(n, g, id, rq->participants, rq->nparts);
        nd_send_reply(n, m->reply_to, aborted("the tablet is splitting; retry"));
        return true;
    }
    return false;
}

/* on_txn: the client aborts (t NULL: unknown here; its locks, if any, go). */
static void txn_on_abort(nd_node *n, const net_message *m, nd_group *g, nd_txn *t, uint64_t id)
{
    if (t) {
        if (txn_sealed(t->state))
            return nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__COMMITTING,
                                  "too late to abort");
        nd_reply_ack(n, m->reply_to);
        nd_txn_abort(n, g, t, "aborted by the client", NULL);
    } else {
        tl_out out = {0};
        tl_release(g->txn.locks, id, &out);
        nd_handle_out(n, g, &out);
        tl_out_free(&out);
        nd_reply_ack(n, m->reply_to);
    }
}

/* on_txn: a read (or a scan with "end") under a shared lock (exclusive: for update). False if the
 * client was answered before any lock was asked for (nothing in out). */
static bool txn_on_read(nd_node *n, const net_message *m, nd_group *g, nd_txn *t,
                        const nd_txn_req *rq, tl_out *out)
{
    mr_err err;
    if (!nd_span_in_range(g, rq->key, rq->klen, rq->scan, rq->end, rq->elen)) {
        t->has_reply = false;
        nd_reply_wrong_range(n, m->reply_to, g, rq->key, rq->klen);
        return false;
    }
    free(t->key);
    free(t->end);
    /* A scan of [key, end) (end empty: to the end of the range) under a shared range lock, so
     * no other transaction can insert into the range (no phantoms). */
    t->klen = rq->klen;
    t->elen = rq->elen;
    t->scan = rq->scan;
    t->key = malloc(t->klen + 1);
    t->end = malloc(t->elen + 1);
    t->limit = (long)rq->limit;
    if (!t->key || !t->end) {
        free(t->key);
        free(t->end);
        t->key = t->end = NULL;
        t->klen = t->elen = 0;
        nd_txn_reply(
            n, t, nd_enc_error(MERIDIAN__ERROR_CODE__NO_MEMORY, "out of memory", false, NULL, 0));
        return false;
    }
    if (t->klen)
        memcpy(t->key, rq->key, t->klen);
    if (t->elen)
        memcpy(t->end, rq->end, t->elen);
    /* A read still parked when its client stops waiting is answered a little before then
     * (nd_txn_tick), so the client hears "aborted" rather than nothing. */
    t->read_deadline = 0;
    if (rq->wait_ms) {
        int64_t wait = (int64_t)rq->wait_ms * MR_NS_PER_MS;
        int64_t margin = wait / 10 < ND_READ_MARGIN ? wait / 10 : ND_READ_MARGIN;
        t->read_deadline = mr_monotonic_ns() + wait - margin;
    }
    /* A read for update takes the exclusive lock its write will need (docs/goodput.md 2.4:
     * two shared holders that both write would end in a wound at commit). PREPARE still
     * records it as a read span: a new leader re-takes it shared, which serializability
     * needs, and the write's exclusive lock from the writes. */
    tl_lock lk = {.mode = rq->for_update ? TL_EXCLUSIVE : TL_SHARED,
                  .range = t->scan,
                  .start = t->key,
                  .start_len = t->klen,
                  .end = t->scan && t->elen ? t->end : NULL,
                  .end_len = t->scan ? t->elen : 0};
    uint64_t req;
    /* MERIDIAN_TEST_BREAK=no-read-locks (negative control): read unlocked. */
    int r = nd_test_break(n, ND_BREAK_NO_READ_LOCKS)
                ? TL_GRANTED
                : tl_acquire(g->txn.locks, rq->txn, rq->prio, &lk, &req, out, &err);
    t->nreads++;
    /* A read lock PREPARE does not carry would not be taken again by a new leader. */
    if ((r == TL_GRANTED || r == TL_WAIT) &&
        !txn_note_span(t, t->key, t->klen, t->scan ? t->end : NULL, t->elen)) {
        nd_txn_abort(n, g, t, "out of memory", out);
    } else if (r == TL_GRANTED) {
        nd_txn_reply(n, t, txn_read(g, t));
    } else if (r == TL_WAIT) {
        t->state = TXN_READ_WAIT;
    } else if (r == TL_WOUNDED) {
        nd_txn_abort(n, g, t, "wounded by an older transaction", out);
    } else {
        txn_invalid(n, t, mr_err_msg(&err));
    }
    return true;
}

/* on_txn: the commit: the buffered writes as a commit record, their exclusive locks (the
 * coordinator of a two-phase commit also records its participants). False if the client
 * was answered before any lock was asked for (nothing in out). */
static bool txn_on_commit(nd_node *n, const net_message *m, nd_group *g, nd_txn *t,
                          const nd_txn_req *rq, uint64_t coord, tl_out *out)
{
    mr_err err;
    for (size_t i = 0; i < rq->nwrites; i++) {
        const ProtobufCBinaryData *k = &rq->writes[i]->key;
        if (!nd_in_range(g, k->data, k->len)) {
            t->has_reply = false;
            nd_reply_wrong_range(n, m->reply_to, g, k->data, k->len);
            return false;
        }
    }
    free(t->body);
    t->body = NULL;
    mv_write *w = NULL;
    if (client_writes(rq, &w, &err) != MR_OK ||
        encode_writes(rq->txn, w, rq->nwrites, &t->body, &t->blen, &err) != MR_OK) {
        txn_invalid(n, t, mr_err_msg(&err));
    } else if (coord == g->id && nd_coordinate(g, t, rq->participants, rq->nparts, &err) != MR_OK) {
        txn_invalid(n, t, mr_err_msg(&err));
    } else {
        t->commit_at = mr_monotonic_ns();
        /* The deadline binds where the commit timestamp is decided: here if this group is
         * the only one or the coordinator; a participant's prepare timestamp is below the
         * commit timestamp anyway. */
        t->commit_before = !coord || coord == g->id ? rq->commit_before : 0;
        if (!lock_writes(g, t, out))
            nd_txn_abort(n, g, t, "wounded by an older transaction", out);
        else if (t->locks_pending == 0)
            nd_txn_locked(n, g, t);
    }
    free(w);
    return true;
}

/* ND_MSG_TXN at the leader: validate, answer what needs no transaction, then abort, read or
 * commit (nd_validate.h checks every field first). */
static void on_txn(nd_node *n, const net_message *m, const Meridian__TxnRequest *o)
{
    /* Every field checked before anything here acts on it (nd_validate.h): ids outside the
     * cluster's own, ages within the client window, keys and values every replica can store. */
    nd_txn_req rq;
    mr_err err;
    if (nd_valid_txn(o, mr_realtime_ns(), &rq, &err) != MR_OK)
        return nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__INVALID, mr_err_msg(&err));
    nd_group *g = txn_serving_group(n, m, &rq);
    if (!g)
        return;
    uint64_t id = rq.txn;
    int64_t prio = rq.prio;
    /* Inherited prepared transactions hold their locks before anyone is served. */
    if (!g->txn.prepared_locked)
        nd_lock_prepared(n, g);
    if (n->fatal)
        return;
    if (rq.op == ND_TXN_STATUS)
        return nd_on_status(n, m, g, id, rq.prio);
    nd_txn *t = nd_txn_find(g, id);
    /* A commit spanning groups (two-phase commit) names its coordinator. */
    bool commit = rq.op == ND_TXN_COMMIT;
    bool multi = commit && rq.nparts > 1;
    uint64_t coord = multi ? rq.coordinator : 0;
    if (multi && !nd_coordinator_known(n, coord, g->id, rq.participants, rq.nparts))
        return nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__INVALID,
                              "a commit with several participants needs a coordinator: a data "
                              "group among them, this one included");
    if (txn_answered_early(n, m, g, t, &rq, coord))
        return;
    if (rq.op == ND_TXN_ABORT)
        return txn_on_abort(n, m, g, t, id);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t)
            return nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__NO_MEMORY, "out of memory");
        t->id = id;
        t->prio = prio;
        t->g = g;
        t->n = n;
        t->next = g->txn.txns;
        g->txn.txns = t;
    }
    t->last_active = mr_monotonic_ns();
    t->reply_to = m->reply_to;
    t->has_reply = true;
    if (coord && !txn_sealed(t->state))
        t->coord = coord;
    if (t->wounded || tl_state(g->txn.locks, id) == TL_WOUNDED_STATE) {
        if (coord == g->id)
            nd_refuse_2pc(n, g, id, rq.participants, rq.nparts);
        return nd_txn_abort(n, g, t, "wounded by an older transaction", NULL);
    }
    if (t->state != TXN_IDLE)
        return txn_invalid(n, t, "the transaction is committing");
    tl_out out = {0};
    bool locked = rq.op == ND_TXN_READ ? txn_on_read(n, m, g, t, &rq, &out)
                                       : txn_on_commit(n, m, g, t, &rq, coord, &out);
    if (!locked)
        return;
    nd_handle_out(n, g, &out);
    tl_out_free(&out);
}

void nd_txn_on_message(nd_node *n, const net_message *m)
{
    pr_arena a;
    pr_arena_init(&a);
    mr_err err;
    const ProtobufCMessage *o = nd_request_decode(m, &a, &err);
    if (!o)
        nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__INVALID, mr_err_msg(&err));
    else if (m->type == ND_MSG_SNAPREAD)
        nd_on_snapread(n, m, (const Meridian__SnapReadRequest *)o);
    else
        on_txn(n, m, (const Meridian__TxnRequest *)o);
    pr_arena_free(&a);
}

/* The meta group records the cluster: "\0node/<id>" -> {addr, zone, region} and
 * "\0group/<id>" -> {kind, replicas, start, end}, under system keys (nd_meta_key), written
 * once by its first leader from the bootstrap description, as an ordinary transaction
 * through its log. */
static void record_cluster(nd_node *n, nd_group *g)
{
    g->lead.meta_checked = true;
    mv_version v;
    mr_err err;
    char first[32];
    int rc = mv_get(g->mv, first, nd_meta_key(first, sizeof first, "node", 1), MV_TS_MAX, &v, &err);
    if (rc == MR_OK) {
        free((void *)v.value);
        return; /* already recorded */
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/cluster.json", n->data_dir);
    json_error_t je;
    json_t *desc = json_load_file(path, 0, &je);
    if (!desc)
        return;
    /* Keys "\0node/<id>" and "\0group/<id>", values the description's entries as JSON text. */
    enum { MAX_RECORDS = 64 + 5000 + 2 };
    json_t *lists[2] = {json_object_get(desc, "nodes"), json_object_get(desc, "groups")};
    static const char *const prefix[2] = {"node", "group"};
    size_t total = json_array_size(lists[0]) + json_array_size(lists[1]);
    mv_write *w = calloc(total ? total : 1, sizeof *w);
    char(*keys)[32] = calloc(total ? total : 1, sizeof *keys);
    char **vals = calloc(total ? total : 1, sizeof *vals);
    size_t nw = 0;
    bool ok = w && keys && vals && total <= MAX_RECORDS;
    for (int k = 0; ok && k < 2; k++) {
        size_t i;
        json_t *e;
        json_array_foreach(lists[k], i, e)
        {
            size_t klen =
                nd_meta_key(keys[nw], sizeof keys[nw], prefix[k],
                            (unsigned long long)json_integer_value(json_object_get(e, "id")));
            if (!(vals[nw] = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS))) {
                ok = false;
                break;
            }
            w[nw] = (mv_write){.op = MV_PUT,
                               .key = keys[nw],
                               .key_len = klen,
                               .value = vals[nw],
                               .len = strlen(vals[nw])};
            nw++;
        }
    }
    json_decref(desc);
    /* a system id: no client's has bit 62 set (nd_validate.h) */
    if (ok && nd_txn_system_write(n, g, ND_TXN_SYSTEM | g->id, w, nw) == MR_OK)
        MR_INFO("node", "meta group: recording the cluster's nodes and groups");
    for (size_t i = 0; vals && i < nw; i++)
        free(vals[i]);
    free(vals);
    free(keys);
    free(w);
}

int nd_txn_system_write(nd_node *n, nd_group *g, uint64_t id, const mv_write *w, size_t nw)
{
    if (!(id & ND_TXN_SYSTEM))
        return MR_EINVAL; /* a client's id */
    mr_err err;
    nd_txn *t = calloc(1, sizeof *t);
    if (!t || encode_writes(id, w, nw, &t->body, &t->blen, &err) != MR_OK) {
        free(t);
        return MR_EINVAL;
    }
    t->id = id;
    t->prio = INT64_MIN + 1; /* older than any client transaction */
    t->g = g;
    t->n = n;
    t->next = g->txn.txns;
    g->txn.txns = t;
    tl_out out = {0};
    lock_writes(g, t, &out); /* the oldest transaction there is: never wounded */
    if (t->locks_pending == 0)
        nd_txn_locked(n, g, t);
    nd_handle_out(n, g, &out);
    tl_out_free(&out);
    return MR_OK;
}

bool nd_txn_leads(nd_node *n, nd_group *g)
{
    return nd_leads_with_log(n, g);
}

bool nd_txn_known(nd_group *g, uint64_t id)
{
    return nd_txn_find(g, id) != NULL;
}

void nd_txn_abort_open(nd_node *n, nd_group *g, const char *why)
{
    /* From the top each time: an abort's lock releases may end others. */
    for (;;) {
        nd_txn *t = g->txn.txns;
        while (t && (txn_sealed(t->state) || t->prio == INT64_MIN + 1))
            t = t->next;
        if (!t)
            return;
        nd_txn_abort(n, g, t, why, NULL);
    }
}

/* Why t must be aborted now, or NULL. */
static const char *expired(nd_group *g, const nd_txn *t, int64_t now)
{
    if (t->state == TXN_READ_WAIT && t->read_deadline && now > t->read_deadline) {
        /* Its client is about to give up: granting it later would hold a lock for no one
         * until the idle timeout (docs/goodput.md 2.3). */
        g->txn.wait_timeouts++;
        return "aborted: lock wait timeout (the read waited as long as its client does)";
    }
    if ((t->state == TXN_IDLE || (t->state == TXN_READ_WAIT && !t->read_deadline)) &&
        now - t->last_active > ND_TXN_IDLE)
        return "the client went silent";
    if (t->coord && (t->state == TXN_LOCKING || t->state == TXN_VOTING) &&
        now - t->commit_at > ND_VOTE_TIMEOUT)
        return "two-phase commit timed out waiting for the participants";
    if (t->state == TXN_VOTING && t->push_due && now >= t->push_due) {
        g->txn.pushed++;
        return "wounded by an older transaction (its votes did not come in time)";
    }
    return NULL;
}

static void expire_txns(nd_node *n, nd_group *g, int64_t now)
{
    for (;;) { /* from the top each time: an abort's releases may end others */
        const char *why = NULL;
        nd_txn *t = g->txn.txns;
        while (t && !(why = expired(g, t, now)))
            t = t->next;
        if (!t)
            return;
        nd_txn_abort(n, g, t, why, NULL);
    }
}

void nd_txn_tick(nd_node *n, nd_group *g)
{
    int64_t now = mr_monotonic_ns();
    nd_serve_snapwaits(n, g, true);
    if (g->read.snapwaits)
        nd_ask_for_safe_time(n, g, false); /* in case a question or its answer was lost */
    commit_wait_ticks(n, g);
    nd_gc_step(n, g, now);
    px_status st;
    px_node_status(g->px, &st);
    if (st.state != PX_LEADER)
        return;
    /* Transactions whose client vanished never hold locks for ever, nor does
     * a two-phase commit whose votes do not come, nor a read its client gave up on. */
    expire_txns(n, g, now);
    propose_held(n, g, now);
    if (nd_leads_with_log(n, g)) {
        nd_forget_step(n, g, now);
        nd_tick_2pc(n, g, now);
    }
    /* A new leader settles its predecessors' log with a record of its own
     * (see nd_group.lead.ready), retried if it was lost or voided. */
    if (!g->lead.ready && now - g->lead.asked > 100 * MR_NS_PER_MS &&
        px_node_lease_valid(g->px, tt_now(n->clock))) {
        mr_err err;
        g->lead.asked = now;
        g->lead.seq = ++n->next_seq;
        (void)nd_propose_raw(n, g, g->lead.seq, ND_OP_SAFE, NULL, 0, &err);
    }
    /* An idle leader moves safe time forward so followers can serve fresh reads. */
    if (now - g->lead.last_propose > ND_SAFE_IDLE && px_node_lease_valid(g->px, tt_now(n->clock)))
        nd_propose_safe(n, g);
    if (g->id == ND_META_GROUP && !g->lead.meta_checked && nd_leads_with_log(n, g))
        record_cluster(n, g);
}

void nd_txn_leadership_lost(nd_node *n, nd_group *g)
{
    /* Locks live only at the leader. A transaction whose commit record was
     * proposed may still commit under the next leader: its outcome is unknown
     * here, never "aborted". */
    for (nd_txn **p = &g->txn.txns; *p;) {
        nd_txn *t = *p;
        if (t->state == TXN_WAITING) {
            /* Chosen and applied: only commit wait remains, which needs no lease. */
            p = &t->next;
            continue;
        }
        if (t->state == TXN_COMMITTING || t->state == TXN_PREPARING)
            nd_txn_reply(n, t,
                         nd_enc_error(MERIDIAN__ERROR_CODE__UNKNOWN,
                                      "leadership lost while committing: the outcome is unknown",
                                      false, NULL, 0));
        else
            nd_txn_reply(n, t, aborted("leadership moved"));
        *p = t->next;
        if (t->timer) {
            t->timer->data = NULL;
            uv_close((uv_handle_t *)t->timer, on_timer_closed);
        }
        txn_free(t);
    }
    tl_free(g->txn.locks);
    g->txn.locks = tl_new();
    g->txn.prepared_locked = false;
    nd_votes_clear(g);
    nd_deliveries_clear(g);
    g->gc.nforget_ready = 0; /* the next leader asks again */
    g->gc.forget_cursor = 0;
}
