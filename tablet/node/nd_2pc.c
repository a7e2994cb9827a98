/* Two-phase commit between groups: votes, decisions, their delivery, and status questions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mr_log.h"
#include "common/mr_util.h"
#include "coordinator/co.h"
#include "tablet/node/nd_int.h"
#include "tablet/node/nd_peer.h"
#include "tablet/node/nd_txn_int.h"
#include "tablet/node/nd_validate.h"
#include "tablet/txn/tx.h"

bool nd_px_is_leader(const nd_group *g)
{
    px_status st;
    px_node_status(g->px, &st);
    return st.state == PX_LEADER;
}

/* One-way message to every replica of group gid (only its leader acts),
 * encoded once; a replica on this node gets it from the loop, not from inside
 * this call. */
void nd_send_to_group(nd_node *n, uint64_t gid, uint8_t type, const ProtobufCMessage *m)
{
    uint8_t *buf;
    size_t len;
    mr_err err;
    int rc = nd_peer_descriptor(type) == m->descriptor
                 ? nd_peer_encode(m, &buf, &len, &err)
                 : mr_errf(&err, MR_EINVAL, "not the schema message of its type");
    if (rc != MR_OK) {
        MR_ERROR("node", "cannot encode message type %u for group %llu: %s", type,
                 (unsigned long long)gid, mr_err_msg(&err));
        return;
    }
    const px_config *c = nd_group_replicas(n, gid);
    if (c) {
        for (uint32_t k = 0; k < c->n; k++) {
            px_node_id id = c->nodes[k];
            if (id == n->self) {
                nd_local *l = malloc(sizeof *l);
                if (!l || !(l->buf = malloc(len ? len : 1))) {
                    free(l);
                    continue;
                }
                memcpy(l->buf, buf, len);
                l->len = len;
                l->type = type;
                l->next = NULL;
                if (n->local_tail)
                    n->local_tail->next = l;
                else
                    n->local = l;
                n->local_tail = l;
            } else if (id <= PX_MAX_NODE_ID && n->peers[id].addr[0]) {
                net_transport_send(n->tr, n->peers[id].addr, type, buf, (uint32_t)len, &err);
            }
        }
    }
    free(buf);
}

bool nd_txn_run_local(nd_node *n)
{
    nd_local *l = n->local;
    if (!l)
        return false;
    n->local = n->local_tail = NULL;
    while (l) {
        nd_local *next = l->next;
        net_message m = {.type = l->type,
                         .len = (uint32_t)l->len,
                         .payload = l->buf,
                         .peer = "local",
                         .peer_name = "",
                         .peer_is_node = 1};
        if (n->closing || n->fatal)
            ;
        else if (m.type == ND_MSG_SPLIT)
            nd_split_on_message(n, &m);
        else
            nd_txn_on_2pc(n, &m);
        free(l->buf);
        free(l);
        l = next;
    }
    return true;
}

void nd_txn_free_local(nd_node *n)
{
    while (n->local) {
        nd_local *l = n->local;
        n->local = l->next;
        free(l->buf);
        free(l);
    }
    n->local_tail = NULL;
}

void nd_send_vote(nd_node *n, nd_group *g, uint64_t txn, uint64_t coord, bool ok, int64_t ts)
{
    Meridian__TwoPhase m = MERIDIAN__TWO_PHASE__INIT;
    m.txn = txn;
    m.group = coord;
    m.has_from = true;
    m.from = g->id;
    m.has_ok = true;
    m.ok = ok;
    m.has_ts = true;
    m.ts = ts;
    nd_send_to_group(n, coord, ND_MSG_PREPARED, &m.base);
}

void nd_send_decision(nd_node *n, uint64_t txn, uint64_t to, uint64_t coord, bool commit,
                      int64_t ts)
{
    Meridian__TwoPhase m = MERIDIAN__TWO_PHASE__INIT;
    m.txn = txn;
    m.group = to;
    m.has_coord = true;
    m.coord = coord;
    m.has_commit = true;
    m.commit = commit;
    m.has_ts = true;
    m.ts = ts;
    nd_send_to_group(n, to, ND_MSG_DECISION, &m.base);
}

void nd_push(nd_node *n, nd_group *g, nd_txn *t)
{
    int64_t now = mr_monotonic_ns();
    if (t->pushed_at && now - t->pushed_at < ND_PUSH_EVERY)
        return;
    t->pushed_at = now;
    g->txn.pushes++;
    Meridian__TwoPhase m = MERIDIAN__TWO_PHASE__INIT;
    m.txn = t->id;
    m.group = t->coord;
    m.has_from = true;
    m.from = g->id;
    m.has_wound = m.wound = true;
    nd_send_to_group(n, t->coord, ND_MSG_TXN_QUERY, &m.base);
}

/* A participant's acknowledgement that it logged the decision. */
void nd_send_ack(nd_node *n, uint64_t txn, uint64_t coord, uint64_t from)
{
    Meridian__TwoPhase m = MERIDIAN__TWO_PHASE__INIT;
    m.txn = txn;
    m.group = coord;
    m.has_from = true;
    m.from = from;
    m.has_ack = true;
    m.ack = true;
    nd_send_to_group(n, coord, ND_MSG_DECISION, &m.base);
}

/* The decision to every participant but the coordinator itself. A commit is
 * resent until acknowledged (nd_txn_tick); an abort goes once: a prepared
 * participant that misses it asks (ND_MSG_TXN_QUERY). */
void nd_send_decisions(nd_node *n, nd_group *g, uint64_t txn, const co_votes *co, bool commit,
                       int64_t ts)
{
    for (uint32_t i = 0; i < co->nparts; i++)
        if (co->parts[i] != g->id)
            nd_send_decision(n, txn, co->parts[i], g->id, commit, ts);
    if (!commit)
        return;
    nd_delivery *d = calloc(1, sizeof *d);
    if (!d)
        return;
    d->txn = txn;
    d->d.commit = true;
    d->d.ts = ts;
    d->d.nparts = co->nparts;
    memcpy(d->d.parts, co->parts, sizeof co->parts);
    for (uint32_t i = 0; i < co->nparts; i++)
        if (co->parts[i] == g->id)
            d->acked |= 1ull << i;
    d->next_send = mr_monotonic_ns() + ND_DELIVER_EVERY;
    d->next = g->txn.delivering;
    g->txn.delivering = d;
}

void nd_deliveries_clear(nd_group *g)
{
    while (g->txn.delivering) {
        nd_delivery *d = g->txn.delivering;
        g->txn.delivering = d->next;
        free(d);
    }
}

void nd_votes_clear(nd_group *g)
{
    while (g->txn.votes) {
        nd_vote *v = g->txn.votes;
        g->txn.votes = v->next;
        free(v);
    }
}

/* Coordinator leader: logs "aborted" as txn's decision, so that a participant whose vote or
 * question comes after the abort was sent finds it at once (the abort decision itself goes
 * only once: nd_send_decisions). Nothing is proposed when a decision is logged already (it
 * would be applied as nothing: the first decision wins). */
void nd_propose_abort2(nd_node *n, nd_group *g, uint64_t txn)
{
    co_decision d;
    if (nd_decision_lookup(g, txn, &d))
        return;
    mr_err err;
    uint8_t body[8];
    put64(body, txn);
    (void)nd_propose_raw(n, g, 0, ND_OP_ABORT2, body, sizeof body, &err); /* asked again later */
}

/* Coordinator leader: keeps a vote (or a question) about a transaction it has no decision for
 * yet, bounded, until the client's commit comes (nd_coordinate) or an ABORT2 applies (then it
 * is answered: nd_txn_apply.c). A repeated question replaces nothing: one entry per sender. */
static void keep_vote(nd_group *g, uint64_t txn, uint64_t from, bool ok, int64_t ts)
{
    size_t count = 0;
    for (nd_vote *v = g->txn.votes; v; v = v->next) {
        if (v->txn == txn && v->from == from) {
            v->at = mr_monotonic_ns();
            return;
        }
        count++;
    }
    nd_vote *v = count < 4096 ? calloc(1, sizeof *v) : NULL;
    if (!v)
        return;
    *v = (nd_vote){txn, from, ok, ts, mr_monotonic_ns(), g->txn.votes};
    g->txn.votes = v;
}

/* Coordinator leader: a participant acknowledged the commit decision. */
static void on_ack(nd_group *g, uint64_t txn, uint64_t from)
{
    for (nd_delivery **pd = &g->txn.delivering; *pd; pd = &(*pd)->next) {
        nd_delivery *d = *pd;
        if (d->txn != txn)
            continue;
        for (uint32_t i = 0; i < d->d.nparts; i++)
            if (d->d.parts[i] == from)
                d->acked |= 1ull << i;
        if (d->acked == (1ull << d->d.nparts) - 1) {
            *pd = d->next;
            if (d->confirm)
                nd_forget_ready_add(g, d->txn);
            free(d);
        }
        return;
    }
}

/* Coordinator leader: a participant's vote (or its repeated question, which
 * carries the same vote). */
static void on_vote(nd_node *n, nd_group *g, uint64_t txn, uint64_t from, bool ok, int64_t ts,
                    bool query)
{
    co_decision d;
    if (nd_decision_lookup(g, txn, &d)) {
        nd_send_decision(n, txn, from, g->id, d.commit, d.ts);
        return;
    }
    nd_txn *t = nd_txn_find(g, txn);
    if (t && t->co) {
        co_verdict v = co_vote(t->co, from, ok, ts);
        if (v == CO_ABORT && !txn_sealed(t->state))
            nd_txn_abort(n, g, t, "a participant could not prepare", NULL);
        else if (v == CO_COMMIT && t->state == TXN_VOTING)
            nd_txn_locked(n, g, t);
        return;
    }
    if (query && nd_decision_forgotten(g, txn)) {
        /* A collected decision. A commit is collected only once every
         * participant acknowledged it (nd_forget_step), and a participant asks
         * only while prepared: so this one was an abort (or the question is
         * an old one, from before the participant decided: then it is
         * ignored there). */
        nd_send_decision(n, txn, from, g->id, false, 0);
        return;
    }
    /* Before the client's commit: keep it until the commit comes, or the abort below applies
     * (which then answers it). */
    keep_vote(g, txn, from, ok, ts);
    if (query &&
        (!t || txn_sealed(t->state) || mr_monotonic_ns() - t->last_active > ND_QUERY_EVERY)) {
        /* Asked, and this leader knows nothing of it (the client's commit never reached it,
         * or a previous leader lost it), or its client has been silent here for longer than
         * a commit takes to arrive: abort for good (the first decision logged wins). A
         * transaction still reading here a moment ago is left to its commit. */
        if (t && !txn_sealed(t->state))
            nd_txn_abort(n, g, t, "aborted: a participant asked and the commit never came", NULL);
        nd_propose_abort2(n, g, txn);
    }
}

/* Coordinator leader: participant group `from` asks to wound txn, which is prepared there and
 * holds up an older transaction (nd_push). Aborting an undecided transaction is always
 * allowed; a decided one finishes without waiting for anyone, so the decision is repeated. */
static void on_wound(nd_node *n, nd_group *g, uint64_t txn, uint64_t from)
{
    co_decision d;
    if (nd_decision_lookup(g, txn, &d)) {
        nd_send_decision(n, txn, from, g->id, d.commit, d.ts);
        return;
    }
    nd_txn *t = nd_txn_find(g, txn);
    if (t && txn_sealed(t->state))
        return; /* COMMIT2 is in the log: the decision follows */
    /* (No vote is kept for `from`: a wound carries no prepare timestamp. It hears of the
     * abort from nd_send_decisions, or when it asks.) */
    if (t) {
        nd_push_coordinator(n, g, t);
        return;
    }
    g->txn.pushed++;
    nd_propose_abort2(n, g, txn);
}

void nd_push_coordinator(nd_node *n, nd_group *g, nd_txn *t)
{
    if (t->state == TXN_VOTING) {
        /* Its locks are all held and it waits only for votes, which come after a PREPARE's log
         * write: aborting it would throw the whole commit away for a wait of milliseconds. It
         * can be in a cycle of waits only through a participant still taking locks, so it is
         * aborted (nd_txn.c, expired) if the votes are not in by the grace. */
        if (!t->push_due) {
            t->push_due =
                t->commit_at + (n->voting_grace_ns ? n->voting_grace_ns : ND_VOTING_GRACE);
            g->txn.push_waits++;
        }
        return;
    }
    uint64_t id = t->id;
    g->txn.pushed++;
    nd_txn_abort(n, g, t, "wounded by an older transaction (at a participant)", NULL);
    nd_propose_abort2(n, g, id); /* (t is gone) */
}

/* Participant leader: the coordinator's decision. */
static void on_decision(nd_node *n, nd_group *g, uint64_t txn, uint64_t coord, bool commit,
                        int64_t ts)
{
    nd_prepared *p = nd_prepared_find(g, txn);
    nd_txn *t = nd_txn_find(g, txn);
    if (p) {
        if (t && t->state == TXN_DECIDING)
            return; /* logging it already */
        uint8_t body[17];
        put64(body, txn);
        body[8] = commit ? 1 : 0;
        put64(body + 9, (uint64_t)ts);
        mr_err err;
        if (nd_propose_raw(n, g, 0, ND_OP_DECIDE, body, sizeof body, &err) == MR_OK && t)
            t->state = TXN_DECIDING;
        return;
    }
    if (t && !commit && t->state == TXN_PREPARING) {
        /* PREPARE is on its way through the log: once it applies, log the abort at once
         * (nd_txn_apply.c) rather than hold the locks until we ask the coordinator. */
        if (!t->abort_decided)
            g->txn.late_aborts++;
        t->abort_decided = true;
        return;
    }
    if (t && !commit && !txn_sealed(t->state))
        nd_txn_abort(n, g, t, "aborted: the coordinator decided so", NULL);
    if (commit) /* not prepared here, so already decided and logged: say so */
        nd_send_ack(n, txn, coord, g->id);
}

void nd_txn_on_2pc(nd_node *n, const net_message *m)
{
    pr_arena a;
    pr_arena_init(&a);
    const Meridian__TwoPhase *o = (const Meridian__TwoPhase *)nd_peer_receive(n, m, &a);
    if (!o) {
        pr_arena_free(&a);
        return;
    }
    nd_group *g = nd_find_group(n, o->group);
    if (!g || !nd_leads_with_log(n, g)) {
        pr_arena_free(&a);
        return; /* not for a leader here: the sender retries elsewhere */
    }
    nd_lock_prepared(n, g);
    if (m->type == ND_MSG_TXN_QUERY && o->has_wound && o->wound)
        on_wound(n, g, o->txn, o->from);
    else if (m->type == ND_MSG_PREPARED)
        on_vote(n, g, o->txn, o->from, o->ok, o->ts, false);
    else if (m->type == ND_MSG_TXN_QUERY)
        on_vote(n, g, o->txn, o->from, true, o->ts, true);
    else if (o->ack)
        on_ack(g, o->txn, o->from);
    else
        on_decision(n, g, o->txn, o->coord, o->commit, o->ts);
    pr_arena_free(&a);
}

/* A new leader takes the locks of the prepared transactions it inherited
 * (from the log: writes exclusive, reads shared) before serving anyone, and
 * asks their coordinators for the outcome. */
void nd_lock_prepared(nd_node *n, nd_group *g)
{
    if (!g->txn.locks)
        return;
    for (nd_prepared *p = g->txn.prepared; p; p = p->next) {
        if (nd_txn_find(g, p->txn))
            continue;
        nd_txn *t = calloc(1, sizeof *t);
        mv_write *w = NULL;
        size_t nw = 0;
        int rc = t ? nd_prepared_writes(p, &w, &nw) : MR_ENOMEM;
        if (rc != MR_OK) {
            free(t);
            if (rc == MR_EINVAL)
                continue; /* (checked when it was applied: cannot happen) */
            /* Serving without its locks would let others overwrite what it may commit. */
            mr_err err;
            mr_errf(&err, MR_ENOMEM, "group %llu: out of memory", (unsigned long long)g->id);
            return nd_fatal(n, "taking a prepared transaction's locks", &err);
        }
        t->id = p->txn;
        t->prio = INT64_MIN + 2; /* prepared: older than anyone, and never wounded */
        t->coord = p->coord;
        t->commit_ts = p->ts;
        t->state = TXN_PREPARED;
        t->g = g;
        t->n = n;
        t->last_active = mr_monotonic_ns();
        t->next = g->txn.txns;
        g->txn.txns = t;
        tl_out out = {0};
        mr_err err;
        uint64_t req;
        for (size_t i = 0; i < nw; i++) {
            tl_lock lk = {.mode = TL_EXCLUSIVE, .start = w[i].key, .start_len = w[i].key_len};
            tl_acquire(g->txn.locks, t->id, t->prio, &lk, &req, &out, &err);
        }
        uint32_t slen = get32(p->val + 16);
        const uint8_t *s = p->val + 20, *end = s + slen;
        while (end - s >= 8) {
            uint32_t kl = get32(s);
            if (kl > (size_t)(end - s) - 8)
                break;
            const uint8_t *k = s + 4;
            uint32_t el = get32(s + 4 + kl);
            s += 8 + kl;
            bool point = el == UINT32_MAX;
            if (!point && el > (size_t)(end - s))
                break;
            tl_lock lk = {.mode = TL_SHARED,
                          .range = !point,
                          .start = k,
                          .start_len = kl,
                          .end = point || el == 0 ? NULL : s,
                          .end_len = point ? 0 : el};
            tl_acquire(g->txn.locks, t->id, t->prio, &lk, &req, &out, &err);
            s += point ? 0 : el;
        }
        free(w);
        if (tl_prepare(g->txn.locks, t->id, &err) != MR_OK && tl_known(g->txn.locks, t->id))
            MR_ERROR("node", "group=%llu txn=%llu: prepared locks not all granted: %s",
                     (unsigned long long)g->id, (unsigned long long)t->id, mr_err_msg(&err));
        nd_handle_out(n, g, &out);
        tl_out_free(&out);
        p->last_query = 0; /* ask now */
    }
    g->txn.prepared_locked = true;
}

/* A participant prepares only for a coordinator that exists and lists it: a
 * prepared transaction asks its coordinator until it learns the outcome, so a
 * bad one would hold its locks for ever. */
bool nd_coordinator_known(const nd_node *n, uint64_t coord, uint64_t self, const uint64_t *parts,
                          size_t nparts)
{
    bool listed_coord = false, listed_self = false;
    for (size_t i = 0; i < nparts; i++) {
        listed_coord |= parts[i] == coord;
        listed_self |= parts[i] == self;
    }
    bool data_group = false;
    for (size_t k = 0; k < n->nranges; k++)
        data_group |= n->ranges[k].group == coord;
    return coord && listed_coord && listed_self && data_group;
}

/* The coordinator refuses a commit before it took the participant list: it
 * tells every participant now, so a prepared one does not hold its locks until
 * it asks. */
void nd_refuse_2pc(nd_node *n, nd_group *g, uint64_t txn, const uint64_t *parts, size_t nparts)
{
    for (size_t i = 0; i < nparts; i++)
        if (parts[i] && parts[i] != g->id)
            nd_send_decision(n, txn, parts[i], g->id, false, 0);
    nd_propose_abort2(n, g, txn); /* a participant that missed it finds it when it asks */
}

/* The coordinator's leader takes the client's commit: the participant list,
 * and the votes that came first. */
int nd_coordinate(nd_group *g, nd_txn *t, const uint64_t *parts, size_t np, mr_err *err)
{
    if (np > CO_MAX_PARTS)
        return mr_errf(err, MR_EINVAL, "at most %d participant groups", CO_MAX_PARTS);
    free(t->co);
    t->co = malloc(sizeof *t->co);
    if (!t->co)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    int rc = co_init(t->co, g->id, parts, np, err);
    if (rc != MR_OK) {
        free(t->co);
        t->co = NULL;
        return rc;
    }
    for (nd_vote **pv = &g->txn.votes; *pv;) {
        nd_vote *v = *pv;
        if (v->txn == t->id) {
            co_vote(t->co, v->from, v->ok, v->ts);
            *pv = v->next;
            free(v);
        } else {
            pv = &v->next;
        }
    }
    return MR_OK;
}

/* ND_MSG_TXN {op: "status"} at the coordinator group's leader. prio: the
 * transaction's start time as the client gave it (0 when it gave none). */
void nd_on_status(nd_node *n, const net_message *m, nd_group *g, uint64_t txn, int64_t prio)
{
    co_decision d;
    Meridian__TxnStatusReply r = MERIDIAN__TXN_STATUS_REPLY__INIT;
    if (nd_decision_lookup(g, txn, &d)) {
        r.state = d.commit ? MERIDIAN__TXN_STATUS_REPLY__STATE__COMMITTED
                           : MERIDIAN__TXN_STATUS_REPLY__STATE__ABORTED;
        if (d.commit) {
            r.has_ts = true;
            r.ts = d.ts;
        }
        return nd_reply_body(n, m->reply_to, MERIDIAN__REPLY__BODY_TXN_STATUS, &r.base);
    }
    nd_txn *t = nd_txn_find(g, txn);
    if (!t && nd_status_forgotten(n, g, txn, prio))
        return nd_reply_error(
            n, m->reply_to, MERIDIAN__ERROR_CODE__FORGOTTEN,
            "the outcome of this transaction is no longer kept (--decision-retention): "
            "it cannot be told");
    if (!t || (!t->co && t->state == TXN_IDLE)) {
        /* Unknown here (or never committed): make "aborted" the decision. */
        if (t)
            nd_txn_abort(n, g, t, "aborted: the client asked for its status", NULL);
        nd_propose_abort2(n, g, txn);
    }
    r.state = MERIDIAN__TXN_STATUS_REPLY__STATE__PENDING;
    nd_reply_body(n, m->reply_to, MERIDIAN__REPLY__BODY_TXN_STATUS, &r.base);
}

/* The leader's periodic two-phase commit duties: ask about prepared
 * transactions without a decision, resend unacknowledged commit decisions,
 * forget early votes whose commit never came. */
void nd_tick_2pc(nd_node *n, nd_group *g, int64_t now)
{
    if (!g->txn.prepared_locked)
        nd_lock_prepared(n, g);
    for (nd_prepared *p = g->txn.prepared; p; p = p->next) {
        nd_txn *t = nd_txn_find(g, p->txn);
        if ((t && t->state == TXN_DECIDING) || now - p->last_query < ND_QUERY_EVERY)
            continue;
        p->last_query = now;
        g->txn.queries++;
        Meridian__TwoPhase q = MERIDIAN__TWO_PHASE__INIT;
        q.txn = p->txn;
        q.group = p->coord;
        q.has_from = true;
        q.from = g->id;
        q.has_ts = true;
        q.ts = p->ts;
        nd_send_to_group(n, p->coord, ND_MSG_TXN_QUERY, &q.base);
    }
    for (nd_delivery **pd = &g->txn.delivering; *pd;) {
        nd_delivery *d = *pd;
        if (now < d->next_send) {
            pd = &d->next;
            continue;
        }
        if (++d->tries > 20) { /* the participants will ask */
            *pd = d->next;
            free(d);
            continue;
        }
        d->next_send = now + ND_DELIVER_EVERY;
        for (uint32_t i = 0; i < d->d.nparts; i++)
            if (!(d->acked & (1ull << i)))
                nd_send_decision(n, d->txn, d->d.parts[i], g->id, true, d->d.ts);
        pd = &d->next;
    }
    for (nd_vote **pv = &g->txn.votes; *pv;) {
        nd_vote *v = *pv;
        if (now - v->at > 30 * MR_NS_PER_S) {
            *pv = v->next;
            free(v);
        } else {
            pv = &v->next;
        }
    }
}
