/* Membership: configurations by effect slot, the window (commit, commit + alpha], and
 * majority quorums (Paxos Made Simple §2.2, §3).
 *
 * Membership change (why it is safe). A CONFIG entry chosen at slot c takes effect at slot
 * c + alpha (Lamport, "Paxos Made Simple" §3: "the leader can get alpha commands ahead").
 * The leader never proposes beyond commit + alpha, so the configuration of every slot it
 * proposes is already decided. Phase 2 for slot s needs a majority of config_at(s); phase 1
 * is per slot too: the leader proposes s only once its promise set holds a majority of
 * config_at(s) (it sends PREPARE with its same ballot to new members when they appear), and
 * it takes the value of s only from members of config_at(s). Leases and leadership need a
 * majority of every configuration governing the window (commit, commit + alpha]. Changes are
 * one add or one remove at a time (replace = add then remove) and only one is pending at a
 * time, so majorities of consecutive configurations intersect, which keeps leases of
 * successive leaders disjoint across a change. A leader refuses to remove itself (transfer
 * leadership first). */
#include "tablet/paxos/px_int.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- configurations */

void pxi_add_config(px_node *n, uint64_t effect, const px_config *c)
{
    for (uint32_t i = 0; i < n->ncfgs; i++)
        if (n->cfgs[i].effect_slot == effect)
            return;
    /* Forget configurations no slot at or above the commit point can use. */
    while (n->ncfgs >= 2 && n->cfgs[1].effect_slot <= n->commit + 1 &&
           n->cfgs[1].effect_slot <= n->snap_meta.slot + 1)
        memmove(n->cfgs, n->cfgs + 1, --n->ncfgs * sizeof *n->cfgs);
    if (n->ncfgs == MAX_CFGS)
        memmove(n->cfgs, n->cfgs + 1, --n->ncfgs * sizeof *n->cfgs);
    uint32_t i = n->ncfgs;
    while (i > 0 && n->cfgs[i - 1].effect_slot > effect) {
        n->cfgs[i] = n->cfgs[i - 1];
        i--;
    }
    n->cfgs[i].effect_slot = effect;
    n->cfgs[i].config = *c;
    n->ncfgs++;
}

/* The configuration governing `slot`: the latest one in effect at or before it. */
const px_config *pxi_cfg_at(const px_node *n, uint64_t slot)
{
    const px_config *c = &n->cfgs[0].config;
    for (uint32_t i = 0; i < n->ncfgs; i++)
        if (n->cfgs[i].effect_slot <= slot)
            c = &n->cfgs[i].config;
    return c;
}

/* Configurations governing the window (commit, commit + alpha]: at most a few. */
uint32_t pxi_window_cfgs(const px_node *n, const px_config **out, uint32_t max)
{
    uint32_t k = 0;
    uint64_t lo = n->commit + 1, hi = n->commit + n->o.alpha;
    for (uint32_t i = 0; i < n->ncfgs && k < max; i++) {
        uint64_t from = n->cfgs[i].effect_slot;
        uint64_t to = i + 1 < n->ncfgs ? n->cfgs[i + 1].effect_slot - 1 : UINT64_MAX;
        if (to >= lo && from <= hi)
            out[k++] = &n->cfgs[i].config;
    }
    if (k == 0 && n->ncfgs > 0)
        out[k++] = pxi_cfg_at(n, lo);
    return k;
}

uint64_t pxi_cfg_mask(const px_config *c)
{
    uint64_t m = 0;
    for (uint32_t i = 0; i < c->n; i++)
        m |= 1ull << c->nodes[i];
    return m;
}

uint64_t pxi_window_mask(const px_node *n)
{
    const px_config *w[MAX_CFGS];
    uint32_t k = pxi_window_cfgs(n, w, MAX_CFGS);
    uint64_t m = 0;
    for (uint32_t i = 0; i < k; i++)
        m |= pxi_cfg_mask(w[i]);
    return m;
}

/* A majority (Paxos Made Simple §2.2); the short-quorum mutant takes one less. */
uint32_t pxi_quorum(const px_node *n, const px_config *c)
{
    uint32_t q = c->n / 2 + 1;
    if (n->o.mutant == PX_MUTANT_SHORT_QUORUM && q > 1)
        q--;
    return q;
}

bool pxi_has_quorum(const px_node *n, const px_config *c, uint64_t set)
{
    return (uint32_t)__builtin_popcountll(set & pxi_cfg_mask(c)) >= pxi_quorum(n, c);
}

bool pxi_window_quorum(const px_node *n, uint64_t set)
{
    const px_config *w[MAX_CFGS];
    uint32_t k = pxi_window_cfgs(n, w, MAX_CFGS);
    for (uint32_t i = 0; i < k; i++)
        if (!pxi_has_quorum(n, w[i], set))
            return false;
    return k > 0;
}
