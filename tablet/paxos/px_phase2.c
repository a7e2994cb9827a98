/* Phase 2 (Paxos Made Simple §2.2, §3): proposing slots in a pipelined window, batching,
 * timestamps inside the lease, ACCEPT / ACCEPTED, choosing. */
#include "tablet/paxos/px_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/mr_codec.h"

/* ---------------------------------------------------------------- phase 2 */

bool pxi_self_counts(const px_node *n, const rec *r)
{
    return r->self_seq == 0 || n->durable_seq >= r->self_seq;
}

void pxi_check_chosen(px_node *n, uint64_t slot)
{
    rec *r = pxi_rec_at(n, slot);
    if (!r || !r->present || r->chosen || px_ballot_cmp(r->ballot, n->promised) != 0)
        return;
    uint64_t acks = r->acks;
    if (!pxi_self_counts(n, r))
        acks &= ~(1ull << n->o.self);
    if (pxi_has_quorum(n, pxi_cfg_at(n, slot), acks))
        r->chosen = true;
}

void pxi_propose_slot(px_node *n, uint64_t s, int64_t ts, uint8_t kind, const uint8_t *data,
                      uint32_t len)
{
    rec *r = pxi_log_store(n, s, n->promised, ts, kind, data, len, false);
    if (!r)
        return;
    r->acks = 1ull << n->o.self;
    r->self_seq = n->persist_seq;
    if (n->naccept == n->accept_cap) {
        size_t cap = n->accept_cap ? 2 * n->accept_cap : 64;
        uint64_t *a = realloc(n->accept_slots, cap * sizeof *a);
        if (!a) {
            n->oom = true;
            return;
        }
        n->accept_slots = a;
        n->accept_cap = cap;
    }
    n->accept_slots[n->naccept++] = s;
}

/* Sends ACCEPTs for `slots` to every member of their configurations that has not acked: per
 * member as many messages as it takes to keep each under max_msg_bytes, and no more than
 * `budget` bytes in all (0 = no limit: new slots always go out). */
void pxi_send_accepts(px_node *n, const uint64_t *slots, size_t ns, size_t budget)
{
    if (!ns)
        return;
    uint64_t dests = 0;
    for (size_t i = 0; i < ns; i++)
        dests |= pxi_cfg_mask(pxi_cfg_at(n, slots[i]));
    dests &= ~(1ull << n->o.self);
    for (px_node_id id = 1; id <= PX_MAX_NODE_ID; id++) {
        if (!(dests & (1ull << id)))
            continue;
        size_t i = 0, sent = 0;
        while (i < ns && (!budget || sent < budget)) {
            px_entry *es = pxi_arena(n, (ns - i) * sizeof *es);
            if (!es)
                return;
            uint32_t k = 0;
            size_t bytes = PX_MSG_FIXED_BYTES;
            for (; i < ns && k < PX_MSG_MAX_ENTRIES; i++) {
                rec *r = pxi_rec_at(n, slots[i]);
                if (!(r && r->present && !(r->acks & (1ull << id)) &&
                      px_config_has(pxi_cfg_at(n, slots[i]), id)))
                    continue;
                size_t z = PX_MSG_ENTRY_BYTES + r->len;
                if (k && bytes + z > n->o.max_msg_bytes)
                    break; /* the next message takes it */
                es[k++] = pxi_rec_entry(slots[i], r);
                bytes += z;
            }
            if (!k)
                break;
            px_msg *m = pxi_msg_to(n, id, PX_MSG_ACCEPT);
            m->ballot = n->promised;
            m->commit = n->commit;
            m->entries = es;
            m->nentries = k;
            sent += bytes;
        }
    }
}

/* The value for recovered slot s (phase 1 result): the highest-ballot value reported by a
 * member of config_at(s), else a no-op (Paxos Made Simple §2.2, P2c). */
const report *pxi_best_report(const px_node *n, uint64_t s)
{
    if (n->o.mutant == PX_MUTANT_NO_REPROPOSE)
        return NULL;
    const px_config *c = pxi_cfg_at(n, s);
    const report *best = NULL;
    for (size_t i = 0; i < n->nreports; i++) {
        const report *r = &n->reports[i];
        if (r->slot == s && px_config_has(c, r->node) &&
            (!best || px_ballot_cmp(r->ballot, best->ballot) > 0))
            best = r;
    }
    return best;
}

bool pxi_config_pending(const px_node *n)
{
    if (n->cfg_slot)
        return true;
    for (uint32_t i = 0; i < n->ncfgs; i++)
        if (n->cfgs[i].effect_slot > n->commit + 1)
            return true;
    return false;
}

/* Fills slots up to commit + alpha: recovered values first, then new proposals, each new
 * slot stamped max(TT.now().latest, last + 1) inside the lease (Spanner §4.1.2). */
void pxi_pump(px_node *n)
{
    if (n->state != PX_LEADER)
        return;
    n->naccept = 0;
    size_t inflight = 0; /* bytes of the slots proposed and not yet chosen */
    for (uint64_t s = n->commit + 1; s <= n->proposed_upto; s++) {
        rec *r = pxi_rec_at(n, s);
        if (r && r->present && !r->chosen)
            inflight += PX_MSG_ENTRY_BYTES + 8 + r->len;
    }
    while (n->proposed_upto < n->commit + n->o.alpha) {
        uint64_t s = n->proposed_upto + 1;
        const px_config *c = pxi_cfg_at(n, s);
        if (!pxi_has_quorum(n, c, n->promised_set))
            break; /* wait for promises from the new members (sent on heartbeat) */
        rec *r = pxi_rec_at(n, s);
        if (s < n->recovery_end) {
            if (!(r && r->present && r->chosen)) {
                const report *b = pxi_best_report(n, s);
                if (b)
                    pxi_propose_slot(n, s, b->ts, b->kind, b->data, b->len);
                else
                    pxi_propose_slot(n, s, 0, PX_ENTRY_NOOP, NULL, 0);
            }
            n->proposed_upto = s;
            continue;
        }
        if (!pxi_lease_valid(n))
            break;
        int64_t ts = max64(max64(n->now.latest, n->last_ts + 1), n->min_next + 1);
        if (ts >= n->lease_end)
            break; /* the stamp must lie inside our lease; wait for renewal */
        if (n->cfg_wanted && !pxi_config_pending(n)) {
            uint8_t buf[PX_CONFIG_WIRE_MAX];
            uint32_t l = px_config_encode(&n->cfg_next, buf);
            pxi_propose_slot(n, s, ts, PX_ENTRY_CONFIG, buf, l);
            n->cfg_wanted = false;
            n->cfg_slot = s;
        } else if (n->qlen) {
            /* Up to max_batch proposals, only as many bytes as the window has room for
             * (PX_EV_PROPOSE refused any proposal that cannot fit an empty one). */
            size_t room = inflight < pxi_window_bytes(n) ? pxi_window_bytes(n) - inflight : 0;
            if (room > pxi_max_entry(n))
                room = pxi_max_entry(n);
            size_t k = 0, total = 0;
            while (k < n->qlen && k < n->o.max_batch) {
                size_t z = 4 + n->queue[(n->qhead + k) % n->qcap].len;
                if (total + z > room)
                    break;
                total += z;
                k++;
            }
            if (!k)
                break; /* the window is full: wait for chosen slots */
            inflight += PX_MSG_ENTRY_BYTES + 8 + total;
            uint8_t *buf = pxi_arena(n, total);
            if (!buf)
                break;
            size_t off = 0;
            for (size_t i = 0; i < k; i++) {
                prop *p = &n->queue[(n->qhead + i) % n->qcap];
                mr_put_u32(buf + off, p->len);
                memcpy(buf + off + 4, p->data, p->len);
                off += 4 + p->len;
                free(p->data);
            }
            n->qhead = (n->qhead + k) % n->qcap;
            n->qlen -= k;
            pxi_propose_slot(n, s, ts, PX_ENTRY_DATA, buf, (uint32_t)total);
        } else {
            break;
        }
        n->s_max = max64(n->s_max, ts);
        n->proposed_upto = s;
    }
    for (size_t i = 0; i < n->naccept; i++)
        pxi_check_chosen(n, n->accept_slots[i]);
    pxi_send_accepts(n, n->accept_slots, n->naccept, 0);
    n->naccept = 0;
    pxi_advance_commit(n);
}

/* Learns chosen slots from a leader's commit point: a record accepted in the leader's own
 * ballot holds the value that leader proposed, which is the chosen one. */
void pxi_learn_commit(px_node *n, px_ballot b, uint64_t commit)
{
    uint64_t hi = commit < pxi_log_last(n) ? commit : pxi_log_last(n);
    for (uint64_t s = n->commit + 1; s <= hi; s++) {
        rec *r = pxi_rec_at(n, s);
        if (r && r->present && !r->chosen && px_ballot_cmp(r->ballot, b) == 0)
            r->chosen = true;
    }
    pxi_advance_commit(n);
}

void pxi_on_accept(px_node *n, const px_msg *m)
{
    int c = px_ballot_cmp(m->ballot, n->promised);
    if (c < 0 || (c == 0 && n->state != PX_FOLLOWER && m->from != n->o.self)) {
        px_msg *r = pxi_msg_to(n, m->from, PX_MSG_ACCEPTED);
        r->ballot = m->ballot;
        r->ok = false;
        r->promised = n->promised;
        r->commit = n->commit;
        return;
    }
    if (c > 0)
        pxi_raise_promise(n, m->ballot);
    n->leader_hint = m->from;
    pxi_reset_election(n);
    uint64_t *acked = pxi_arena(n, (m->nentries ? m->nentries : 1) * sizeof *acked);
    if (!acked)
        return;
    uint32_t k = 0;
    for (uint32_t i = 0; i < m->nentries; i++) {
        const px_entry *e = &m->entries[i];
        rec *r = pxi_rec_at(n, e->slot);
        if (e->slot < n->log_start || (r && r->present && r->chosen)) {
            acked[k++] = e->slot; /* already chosen here: same value (P2c) */
            continue;
        }
        if (e->slot - n->log_start >= SLOT_SANITY)
            continue; /* far behind: catch up by LEARN/SNAPSHOT first */
        if (pxi_log_store(n, e->slot, m->ballot, e->ts, e->kind, e->data, e->len, false))
            acked[k++] = e->slot;
    }
    pxi_learn_commit(n, m->ballot, m->commit);
    px_msg *r = pxi_msg_to(n, m->from, PX_MSG_ACCEPTED);
    r->ballot = m->ballot;
    r->ok = true;
    r->promised = n->promised;
    r->commit = n->commit;
    r->slots = acked;
    r->nslots = k;
}

void pxi_on_accepted(px_node *n, const px_msg *m)
{
    if (n->state != PX_LEADER || px_ballot_cmp(m->ballot, n->promised) != 0 || !m->ok)
        return;
    n->peer_commit[m->from] = max64((int64_t)n->peer_commit[m->from], (int64_t)m->commit);
    for (uint32_t i = 0; i < m->nslots; i++) {
        uint64_t s = m->slots[i];
        rec *r = pxi_rec_at(n, s);
        if (s <= n->commit || s > n->proposed_upto || !r || !r->present ||
            px_ballot_cmp(r->ballot, n->promised) != 0)
            continue;
        r->acks |= 1ull << m->from;
        pxi_check_chosen(n, s);
    }
    uint64_t before = n->commit;
    pxi_advance_commit(n);
    pxi_pump(n);
    /* Followers learn the commit point from the next accept or heartbeat. When
     * nothing more is in flight to carry it, tell them now: their applied state
     * (and the reads it serves) would otherwise lag a heartbeat behind. */
    if (n->commit > before && n->proposed_upto == n->commit)
        pxi_heartbeat(n);
}
