/* Heartbeats (lease renewal) and learning: commit points, LEARN and SNAPSHOT for laggards,
 * RELEASE of an abdicated lease. */
#include "tablet/paxos/px_int.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- heartbeats and learning */

void pxi_send_learn(px_node *n, px_node_id to)
{
    uint64_t from = n->peer_commit[to] + 1;
    if (from > n->commit)
        return;
    if (from < n->log_start) {
        if (n->snap_meta.slot == 0)
            return;
        /* A snapshot travels in chunks that each fit one message, PXI_STEP_MSGS of them
         * per step (each heartbeat and acknowledgement moves it on: paced by the peer,
         * bounded in the transport's queue), in order (the peer reassembles them). After
         * the last one, it starts over only a heartbeat period later, not on every commit
         * while the peer installs it; a peer that lost a chunk fills the gap then. */
        uint32_t chunk = n->o.max_msg_bytes - PX_MSG_FIXED_BYTES;
        uint32_t nchunks = n->snap_len ? (n->snap_len - 1) / chunk + 1 : 1;
        if (n->snap_sent_slot[to] != n->snap_meta.slot ||
            (n->snap_next[to] >= nchunks &&
             n->now.earliest - n->snap_sent_at[to] >= n->o.heartbeat_ns)) {
            n->snap_sent_slot[to] = n->snap_meta.slot;
            n->snap_next[to] = 0;
        }
        for (int k = 0; k < PXI_STEP_MSGS && n->snap_next[to] < nchunks; k++) {
            uint32_t off = n->snap_next[to]++ * chunk;
            px_msg *m = pxi_msg_to(n, to, PX_MSG_SNAPSHOT);
            m->ballot = n->promised;
            m->commit = n->commit;
            m->meta = n->snap_meta;
            m->snap = n->snap_len ? n->snap + off : n->snap;
            m->snap_len = n->snap_len - off < chunk ? n->snap_len - off : chunk;
            m->snap_off = off;
            m->snap_total = n->snap_len;
            if (n->snap_next[to] == nchunks)
                n->snap_sent_at[to] = n->now.earliest;
        }
        return;
    }
    /* Up to LEARN_CHUNK slots, in messages under max_msg_bytes, PXI_STEP_MSGS of them at
     * most: the peer's next acknowledgement asks for the rest. */
    uint64_t to_slot = n->commit < from + LEARN_CHUNK - 1 ? n->commit : from + LEARN_CHUNK - 1;
    uint64_t s = from;
    for (int msgs = 0; s <= to_slot && msgs < PXI_STEP_MSGS; msgs++) {
        px_entry *es = pxi_arena(n, (size_t)(to_slot - s + 1) * sizeof *es);
        if (!es)
            return;
        uint32_t k = 0;
        size_t bytes = PX_MSG_FIXED_BYTES;
        for (; s <= to_slot; s++) {
            rec *r = pxi_rec_at(n, s);
            if (!(r && r->present))
                continue;
            size_t z = PX_MSG_ENTRY_BYTES + r->len;
            if (k && bytes + z > n->o.max_msg_bytes)
                break;
            es[k++] = pxi_rec_entry(s, r);
            bytes += z;
        }
        px_msg *m = pxi_msg_to(n, to, PX_MSG_LEARN);
        m->ballot = n->promised;
        /* The commit point this message vouches for: a follower takes an entry as chosen
         * only up to it, and the slots after the last entry come in the next message. */
        m->commit = s > to_slot ? n->commit : s - 1;
        m->entries = es;
        m->nentries = k;
    }
}

void pxi_heartbeat(px_node *n)
{
    n->last_hb = n->now.earliest;
    uint64_t members = pxi_window_mask(n) & ~(1ull << n->o.self);
    uint64_t seq = pxi_lease_request(n);
    pxi_lease_recompute(n);
    for (px_node_id id = 1; id <= PX_MAX_NODE_ID; id++) {
        if (!(members & (1ull << id)))
            continue;
        if (!(n->promised_set & (1ull << id))) {
            pxi_send_prepare(n, id); /* a new member, or one that missed phase 1 */
        } else {
            px_msg *m = pxi_msg_to(n, id, PX_MSG_HEARTBEAT);
            m->ballot = n->promised;
            m->commit = n->commit;
            m->lease_seq = seq;
        }
        if (n->peer_commit[id] < n->commit)
            pxi_send_learn(n, id);
    }
    /* Retransmit unacknowledged accepts (messages may be lost). */
    size_t cnt = 0;
    uint64_t *ss = NULL;
    if (n->proposed_upto > n->commit) {
        ss = pxi_arena(n, (size_t)(n->proposed_upto - n->commit) * sizeof *ss);
        for (uint64_t s = n->commit + 1; ss && s <= n->proposed_upto; s++) {
            rec *r = pxi_rec_at(n, s);
            if (r && r->present && !r->chosen)
                ss[cnt++] = s;
        }
    }
    pxi_send_accepts(n, ss, cnt, PXI_STEP_MSGS * (size_t)n->o.max_msg_bytes);
}

void pxi_on_heartbeat(px_node *n, const px_msg *m)
{
    int c = px_ballot_cmp(m->ballot, n->promised);
    bool ok = c >= 0 && (c > 0 || n->state == PX_FOLLOWER);
    if (ok && !pxi_vote_free_for(n, m->ballot)) {
        ok = false;
        if (pxi_heard_during_grace(n, m->ballot))
            pxi_reset_election(n);
    }
    if (ok) {
        if (c > 0)
            pxi_raise_promise(n, m->ballot);
        pxi_grant_vote(n, m->ballot);
        n->leader_hint = m->from;
        pxi_reset_election(n);
        pxi_learn_commit(n, m->ballot, m->commit);
    } else if (px_ballot_cmp(m->ballot, n->max_seen) > 0) {
        n->max_seen = m->ballot;
    }
    px_msg *r = pxi_msg_to(n, m->from, PX_MSG_HEARTBEAT_ACK);
    r->ballot = m->ballot;
    r->ok = ok;
    r->promised = n->promised;
    r->lease_seq = m->lease_seq;
    r->commit = n->commit;
}

void pxi_on_heartbeat_ack(px_node *n, const px_msg *m)
{
    if (n->state != PX_LEADER || px_ballot_cmp(m->ballot, n->promised) != 0)
        return;
    n->peer_commit[m->from] = m->commit;
    if (m->ok) {
        pxi_lease_vote(n, m->from, m->lease_seq);
        pxi_lease_recompute(n);
    }
    if (m->commit < n->commit)
        pxi_send_learn(n, m->from);
    pxi_pump(n);
}

/* Reassembles a snapshot sent in chunks: in order, from one sender; a chunk that does not
 * continue the snapshot being assembled is ignored, except a first chunk of a different
 * snapshot, which starts over. A chunk already held (a resend) is skipped, so a resend after
 * a lost chunk fills the gap. Installed once complete, if still ahead of the commit point. */
static void pxi_on_snapshot_chunk(px_node *n, const px_msg *m)
{
    if (m->meta.slot <= n->commit) {
        if (n->rx_snap && n->rx_meta.slot <= n->commit) {
            free(n->rx_snap); /* caught up meanwhile */
            n->rx_snap = NULL;
        }
        return;
    }
    bool same = n->rx_snap && n->rx_from == m->from && n->rx_meta.slot == m->meta.slot &&
                n->rx_total == m->snap_total;
    if (!same) {
        if (m->snap_off != 0)
            return;
        free(n->rx_snap);
        n->rx_snap = malloc(m->snap_total ? m->snap_total : 1);
        if (!n->rx_snap)
            return;
        n->rx_from = m->from;
        n->rx_meta = m->meta;
        n->rx_total = m->snap_total;
        n->rx_have = 0;
    }
    if (m->snap_off != n->rx_have)
        return;
    if (m->snap_len)
        memcpy(n->rx_snap + n->rx_have, m->snap, m->snap_len);
    n->rx_have += m->snap_len;
    if (n->rx_have < n->rx_total)
        return;
    pxi_install_snapshot(n, &n->rx_meta, n->rx_snap, n->rx_total);
    free(n->rx_snap);
    n->rx_snap = NULL;
}

void pxi_on_learn(px_node *n, const px_msg *m)
{
    if (n->state != PX_FOLLOWER) {
        /* A leader learns only from its own quorums (see learn_commit); a higher ballot
         * means we are deposed. */
        if (px_ballot_cmp(m->ballot, n->promised) <= 0)
            return;
        pxi_step_down(n, m->ballot);
        if (n->state != PX_FOLLOWER)
            return;
    }
    if (m->type == PX_MSG_SNAPSHOT) {
        pxi_on_snapshot_chunk(n, m);
        return;
    }
    for (uint32_t i = 0; i < m->nentries; i++) {
        const px_entry *e = &m->entries[i];
        if (e->slot <= n->commit || e->slot < n->log_start || e->slot > m->commit)
            continue;
        rec *r = pxi_rec_at(n, e->slot);
        if (r && r->present && r->chosen)
            continue;
        pxi_log_store(n, e->slot, e->ballot, e->ts, e->kind, e->data, e->len, true);
    }
    pxi_advance_commit(n);
}

void pxi_on_release(px_node *n, const px_msg *m)
{
    if (px_ballot_cmp(n->vote_ballot, m->ballot) == 0 && m->from == m->ballot.node) {
        /* ok: a failed campaign gives back only this ballot's vote (an earlier
         * lease of the same node keeps its backing); otherwise an abdicated
         * leader releases everything. */
        n->vote_until = m->ok ? n->vote_floor : INT64_MIN;
        if (!m->ok)
            n->vote_floor = INT64_MIN;
    }
    if (n->leader_hint == m->from)
        n->leader_hint = 0;
}
