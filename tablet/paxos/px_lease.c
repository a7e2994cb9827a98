/* Leader leases in TrueTime (Spanner §4.1.1): votes, their expiry, the lease end. */
#include "tablet/paxos/px_int.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- leases (Spanner §4.1.1) */

/* A vote counted from the TT.earliest at which the request was sent holds, in true time,
 * at least until that instant + lease: the voter keeps it until TT.after(its receive-time
 * latest + lease). The lease is the q-th most recent vote of every window configuration. */
void pxi_lease_recompute(px_node *n)
{
    const px_config *w[MAX_CFGS];
    uint32_t k = pxi_window_cfgs(n, w, MAX_CFGS);
    int64_t end = k ? INT64_MAX : 0;
    for (uint32_t i = 0; i < k; i++) {
        int64_t v[PX_MAX_NODES];
        uint32_t m = w[i]->n;
        for (uint32_t j = 0; j < m; j++)
            v[j] = n->vote_start[w[i]->nodes[j]];
        for (uint32_t a = 1; a < m; a++) /* insertion sort, descending */
            for (uint32_t b = a; b > 0 && v[b] > v[b - 1]; b--) {
                int64_t t = v[b];
                v[b] = v[b - 1];
                v[b - 1] = t;
            }
        uint32_t q = pxi_quorum(n, w[i]);
        int64_t vq = v[q - 1];
        end = vq == 0 ? 0 : min64(end, vq + n->o.lease_ns);
    }
    n->lease_end = end;
}

bool pxi_lease_valid(const px_node *n)
{
    return n->state == PX_LEADER && n->lease_end > 0 && n->now.latest < n->lease_end;
}

/* Records that `from` voted for our ballot in answer to request `seq`. */
void pxi_lease_vote(px_node *n, px_node_id from, uint64_t seq)
{
    if (seq < n->ballot_first_seq || seq > n->lease_seq || n->lease_seq - seq >= LEASE_RING)
        return;
    n->vote_start[from] = max64(n->vote_start[from], n->lease_sent[seq % LEASE_RING]);
}

/* A new lease request: remembers when (TT.earliest) it leaves, and renews our own vote. */
uint64_t pxi_lease_request(px_node *n)
{
    uint64_t seq = ++n->lease_seq;
    n->lease_sent[seq % LEASE_RING] = n->now.earliest;
    n->vote_ballot = n->promised;
    n->vote_until = n->now.latest + n->o.lease_ns;
    n->vote_start[n->o.self] = n->now.earliest;
    if (n->state == PX_LEADER)
        n->led_vote_until = n->vote_until;
    return seq;
}

/* May this replica give its lease vote (and promise) to `b`? Not while a vote for another
 * node may still hold, nor during the post-restart grace (Spanner §4.1.1: disjointness). */
bool pxi_vote_free_for(const px_node *n, px_ballot b)
{
    if (n->o.mutant == PX_MUTANT_NO_LEASE_WAIT)
        return true;
    if (n->vote_ballot.node != b.node && !tt_interval_after(n->now, n->vote_until))
        return false;
    if (n->promised.node != b.node && !tt_interval_after(n->now, n->grace_until))
        return false;
    return true;
}

/* Refused only for the post-restart grace: a replica that restarted refuses a node it did not
 * promise for a lease, yet that node (a higher ballot than ours, the group's leader or its
 * candidate) is alive and asking. Such a replica must not campaign against it when the grace
 * ends: its higher ballot would depose a healthy leader (issue 19, the heal). */
bool pxi_heard_during_grace(const px_node *n, px_ballot b)
{
    return n->state == PX_FOLLOWER && px_ballot_cmp(b, n->promised) > 0 &&
           n->promised.node != b.node && !tt_interval_after(n->now, n->grace_until);
}

void pxi_grant_vote(px_node *n, px_ballot b)
{
    /* Moving a live vote to a newer ballot of the same node: the old one may
     * still back that node's earlier lease, which a RELEASE of the new
     * ballot's failed campaign must not cut short (sim seed 115). */
    if (n->vote_ballot.node == b.node && px_ballot_cmp(n->vote_ballot, b) != 0)
        n->vote_floor = max64(n->vote_floor, n->vote_until);
    else if (n->vote_ballot.node != b.node)
        n->vote_floor = INT64_MIN; /* the old vote had run out (pxi_vote_free_for) */
    n->vote_ballot = b;
    n->vote_until = n->now.latest + n->o.lease_ns;
}
