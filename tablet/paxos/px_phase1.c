/* Phase 1 (Paxos Made Simple §2.2): the candidate's PREPARE and the acceptors' PROMISE,
 * once per leader change for every slot above the commit point. */
#include "tablet/paxos/px_int.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- phase 1, candidate side */

void pxi_reports_clear(px_node *n)
{
    for (size_t i = 0; i < n->nreports; i++)
        free(n->reports[i].data);
    n->nreports = 0;
}

void pxi_report_add(px_node *n, px_node_id from, const px_entry *e)
{
    if (n->nreports == n->reports_cap) {
        size_t cap = n->reports_cap ? 2 * n->reports_cap : 64;
        report *r = realloc(n->reports, cap * sizeof *r);
        if (!r) {
            n->oom = true;
            return;
        }
        n->reports = r;
        n->reports_cap = cap;
    }
    uint8_t *copy = malloc(e->len ? e->len : 1);
    if (!copy) {
        n->oom = true;
        return;
    }
    if (e->len)
        memcpy(copy, e->data, e->len);
    report *r = &n->reports[n->nreports++];
    r->slot = e->slot;
    r->node = from;
    r->ballot = e->ballot;
    r->ts = e->ts;
    r->kind = e->kind;
    r->len = e->len;
    r->data = copy;
    if (e->slot >= n->recovery_end)
        n->recovery_end = e->slot + 1;
}

void pxi_queue_clear(px_node *n)
{
    for (size_t i = 0; i < n->qlen; i++)
        free(n->queue[(n->qhead + i) % n->qcap].data);
    n->qhead = n->qlen = 0;
}

void pxi_send_prepare(px_node *n, px_node_id to)
{
    px_msg *m = pxi_msg_to(n, to, PX_MSG_PREPARE);
    m->ballot = n->promised;
    m->slot = n->commit + 1;
    m->commit = n->commit;
    m->lease_seq = pxi_lease_request(n);
}

/* Phase 1a, once per leader change, for every slot above our commit point. */
void pxi_campaign(px_node *n)
{
    uint64_t round = n->max_seen.round > n->promised.round ? n->max_seen.round : n->promised.round;
    px_ballot b = {round + 1, n->o.self};
    pxi_set_state(n, PX_CANDIDATE);
    pxi_reports_clear(n);
    n->promised = b;
    n->max_seen = b;
    n->leader_hint = 0;
    pxi_persist(n, PX_PERSIST_PROMISE)->promise = b;
    n->promised_set = 1ull << n->o.self;
    n->ballot_first_seq = n->lease_seq + 1;
    memset(n->vote_start, 0, sizeof n->vote_start);
    memset(n->peer_commit, 0, sizeof n->peer_commit);
    n->recovery_end = n->commit + 1;
    n->proposed_upto = n->commit;
    n->lease_end = 0;
    /* Our own accepted values are a report like any other. */
    for (uint64_t s = n->commit + 1; s <= pxi_log_last(n); s++) {
        rec *r = pxi_rec_at(n, s);
        if (r && r->present && r->chosen) {
            n->recovery_end = s + 1;
        } else if (r && r->present) {
            px_entry e = pxi_rec_entry(s, r);
            pxi_report_add(n, n->o.self, &e);
        }
    }
    uint64_t m = pxi_window_mask(n) & ~(1ull << n->o.self);
    if (!m)
        pxi_lease_request(n);
    for (px_node_id id = 1; id <= PX_MAX_NODE_ID; id++)
        if (m & (1ull << id))
            pxi_send_prepare(n, id);
    n->last_hb = n->now.earliest;
    pxi_reset_election(n);
    pxi_maybe_lead(n); /* a one-member configuration */
}

/* Before a campaign (Raft's pre-vote, dissertation §9.6, with leases): ask the members
 * whether they would vote for the ballot we would campaign with; campaign only once a
 * quorum would. Asking changes nothing anywhere. A replica that still hears a leader holds
 * its lease vote for it and says no, so a replica that was cut off (a partition) or stopped
 * (SIGSTOP: on resume its first tick comes before it reads the leader's messages) does not
 * raise its ballot: with a higher ballot it would refuse the leader's messages and so depose
 * a healthy leader on its return (issue 19: every heal made the other groups' leaders step
 * down, failing what they had in flight). again: re-ask the members that have not said yes
 * (every heartbeat/4, as a candidate re-asks: a vote for a dead leader runs out soon). */
void pxi_probe(px_node *n, bool again)
{
    uint64_t m = pxi_window_mask(n) & ~(1ull << n->o.self);
    if (!m) {
        pxi_campaign(n); /* a one-member configuration */
        return;
    }
    if (!again) {
        pxi_reset_election(n); /* no quorum by then: ask again from scratch */
        uint64_t round =
            n->max_seen.round > n->promised.round ? n->max_seen.round : n->promised.round;
        n->probing = true;
        n->probe_seq++;
        n->probe_ballot = (px_ballot){round + 1, n->o.self};
        n->probe_set = 1ull << n->o.self;
    }
    n->probe_sent = n->now.earliest;
    for (px_node_id id = 1; id <= PX_MAX_NODE_ID; id++)
        if ((m & ~n->probe_set) & (1ull << id)) {
            px_msg *p = pxi_msg_to(n, id, PX_MSG_PROBE);
            p->ballot = n->probe_ballot;
            p->lease_seq = n->probe_seq;
            p->commit = n->commit;
        }
}

/* Would we vote for m->ballot now? Only the answer: no promise, no vote, nothing recorded. */
void pxi_on_probe(px_node *n, const px_msg *m)
{
    px_msg *r = pxi_msg_to(n, m->from, PX_MSG_PROBE_ACK);
    r->ballot = m->ballot;
    r->lease_seq = m->lease_seq;
    r->ok = px_ballot_cmp(m->ballot, n->promised) > 0 && pxi_vote_free_for(n, m->ballot);
    r->promised = n->promised;
    r->commit = n->commit;
}

void pxi_on_probe_ack(px_node *n, const px_msg *m)
{
    if (!n->probing || n->state != PX_FOLLOWER || m->lease_seq != n->probe_seq ||
        px_ballot_cmp(m->ballot, n->probe_ballot) != 0)
        return;
    if (!m->ok) {
        if (px_ballot_cmp(m->promised, n->max_seen) > 0)
            n->max_seen = m->promised; /* our campaign, if any, must outbid it */
        return;
    }
    n->probe_set |= 1ull << m->from;
    if (pxi_window_quorum(n, n->probe_set) && pxi_may_campaign(n))
        pxi_campaign(n);
}

void pxi_maybe_lead(px_node *n)
{
    if (n->state != PX_CANDIDATE || !pxi_window_quorum(n, n->promised_set))
        return;
    pxi_set_state(n, PX_LEADER);
    /* The lease now counts the self-vote given when the campaign began. */
    n->led_vote_until = max64(n->led_vote_until, n->vote_until);
    n->leader_hint = n->o.self;
    n->last_hb = INT64_MIN; /* heartbeat (lease renewal) at once */
    pxi_lease_recompute(n);
}

/* Phase 1b received by the candidate (or by a leader from a late or new member). */
void pxi_on_promise(px_node *n, const px_msg *m)
{
    if (px_ballot_cmp(m->ballot, n->promised) != 0 ||
        (n->state != PX_CANDIDATE && n->state != PX_LEADER))
        return;
    if (m->commit > n->peer_commit[m->from])
        n->peer_commit[m->from] = m->commit;
    if (!m->ok)
        return; /* lease still held elsewhere, or a higher ballot: handled by the caller */
    pxi_lease_vote(n, m->from, m->lease_seq);
    if (n->promised_set & (1ull << m->from)) {
        if (n->state == PX_LEADER)
            pxi_lease_recompute(n);
        return;
    }
    n->promised_set |= 1ull << m->from;
    if (m->meta.slot > n->commit && n->state == PX_CANDIDATE)
        pxi_install_snapshot(n, &m->meta, m->snap, m->snap_len);
    for (uint32_t i = 0; i < m->nentries; i++) {
        const px_entry *e = &m->entries[i];
        bool chosen = false;
        for (uint32_t j = 0; j < m->nslots; j++)
            if (m->slots[j] == e->slot)
                chosen = true;
        if (e->slot <= n->proposed_upto)
            continue; /* decided, or already proposed in our ballot from a full quorum */
        if (chosen) {
            rec *r = pxi_rec_at(n, e->slot);
            if (!r || !r->chosen)
                pxi_log_store(n, e->slot, e->ballot, e->ts, e->kind, e->data, e->len, true);
            if (e->slot >= n->recovery_end)
                n->recovery_end = e->slot + 1;
        } else {
            pxi_report_add(n, m->from, e);
        }
    }
    pxi_advance_commit(n);
    if (n->recovery_end <= n->commit)
        n->recovery_end = n->commit + 1;
    if (n->state == PX_LEADER)
        pxi_lease_recompute(n);
    pxi_maybe_lead(n);
}

/* ---------------------------------------------------------------- phase 1, acceptor side */

void pxi_step_down(px_node *n, px_ballot seen)
{
    if (px_ballot_cmp(seen, n->max_seen) > 0)
        n->max_seen = seen;
    if (n->state != PX_FOLLOWER && px_ballot_cmp(seen, n->promised) > 0) {
        if (n->state == PX_CANDIDATE)
            pxi_abandon_campaign(n); /* a leader keeps its voters' lease votes: they vouch */
        pxi_set_state(n, PX_FOLLOWER);
    }
}

/* Adopts a higher ballot seen in an accept, heartbeat or learn: a promise never to accept
 * anything lower, durable before any reply (Paxos Made Simple §2.2, P1a). */
void pxi_raise_promise(px_node *n, px_ballot b)
{
    pxi_step_down(n, b);
    n->promised = b;
    pxi_persist(n, PX_PERSIST_PROMISE)->promise = b;
}

void pxi_on_prepare(px_node *n, const px_msg *m)
{
    int c = px_ballot_cmp(m->ballot, n->promised);
    /* A rival candidate with a higher ballot: yield at once (abandon the campaign, giving our
     * self-vote back, which no lease counted) and judge its request as a follower. Otherwise
     * rivals that campaign together each hold their own vote and refuse the other until
     * their campaigns time out; so they settle in one round trip, the higher ballot leading. */
    if (c > 0 && n->state == PX_CANDIDATE)
        pxi_step_down(n, m->ballot);
    bool grant = c > 0 || (c == 0 && n->state == PX_FOLLOWER);
    if (grant && c > 0 && !pxi_vote_free_for(n, m->ballot)) {
        grant = false;
        /* A leader re-runs phase 1 with members that missed it (a restarted one). */
        if (pxi_heard_during_grace(n, m->ballot))
            pxi_reset_election(n);
    }
    uint64_t from = m->slot > n->log_start ? m->slot : n->log_start;
    size_t cnt = 0, bytes = PX_MSG_FIXED_BYTES;
    for (uint64_t s = from; grant && s <= pxi_log_last(n); s++) {
        rec *x = pxi_rec_at(n, s);
        if (x && x->present) {
            cnt++;
            bytes += PX_MSG_ENTRY_BYTES + 8 + x->len;
        }
    }
    bool with_snap = m->slot < n->log_start && n->snap_meta.slot > 0;
    if (with_snap)
        bytes += n->snap_len;
    /* A partial report would be unsafe (P2c needs every accepted value), and a promise must
     * fit one message: a candidate that far behind must catch up first, so refuse. */
    if (cnt > PX_MSG_MAX_ENTRIES || bytes > n->o.max_msg_bytes)
        grant = false;
    if (px_ballot_cmp(m->ballot, n->max_seen) > 0)
        n->max_seen = m->ballot;
    if (grant) {
        if (c > 0) {
            pxi_step_down(n, m->ballot);
            n->promised = m->ballot;
            /* P1b: the promise is durable before the reply leaves (durability rule). */
            if (n->o.mutant != PX_MUTANT_NO_PERSIST_PROMISE)
                pxi_persist(n, PX_PERSIST_PROMISE)->promise = m->ballot;
        }
        pxi_grant_vote(n, m->ballot);
        n->leader_hint = m->from;
        pxi_reset_election(n);
    }
    px_entry *es = NULL;
    uint64_t *cs = NULL;
    size_t k = 0, nch = 0;
    if (grant) {
        es = pxi_arena(n, cnt * sizeof *es);
        cs = pxi_arena(n, cnt * sizeof *cs);
        if (!es || !cs)
            return;
        for (uint64_t s = from; s <= pxi_log_last(n) && k < cnt; s++) {
            rec *x = pxi_rec_at(n, s);
            if (x && x->present) {
                es[k++] = pxi_rec_entry(s, x);
                if (x->chosen)
                    cs[nch++] = s;
            }
        }
    }
    px_msg *r = pxi_msg_to(n, m->from, PX_MSG_PROMISE);
    r->ballot = m->ballot;
    r->lease_seq = m->lease_seq;
    r->ok = grant;
    r->promised = n->promised;
    r->commit = n->commit;
    r->log_start = n->log_start;
    if (!grant)
        return;
    if (with_snap) {
        r->meta = n->snap_meta;
        r->snap = n->snap;
        r->snap_len = n->snap_len;
        r->snap_total = n->snap_len;
    }
    r->entries = es;
    r->nentries = (uint32_t)k;
    r->slots = cs;
    r->nslots = (uint32_t)nch;
}
