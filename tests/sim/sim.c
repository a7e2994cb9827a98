/* meridian-sim: runs groups of 3 or 5 replicas of the real Paxos core (tablet/paxos) in one
 * process under simulated true time, network, disks and clocks, one event per step, from
 * a seed, and checks the protocol's invariants after every step (the world and its checks
 * are in sim_world.c).
 *
 * The workload here is the chain: clients make opaque proposals to the leader of each
 * group and retry until they are chosen; every replica applies them to a hash chain. After
 * the fault phase every proposal must be chosen within LIVE_NS. Negative controls:
 * --mutant NAME runs a broken protocol that must be caught. The transactional workload is
 * meridian-sim-txn (sim_txn.c). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sim/sim_world.h"

static void submit(world *w, int g, uint64_t id)
{
    int h = leader_of(w, g);
    proposal *p = &w->g[g].props[id];
    if (h < 0) {
        p->last_submit = w->now;
        p->queued = false;
        p->tries++;
        return;
    }
    sim_submit_at(w, g, id, h, NULL, 0);
}

/* A client resubmits when its proposal was not queued, when the leader changed (a deposed
 * leader drops its queue), or after a long timeout (a void entry, a lost proposal). */
static bool should_retry(world *w, int g, const proposal *p)
{
    if (p->chosen)
        return false;
    int64_t age = w->now - p->last_submit;
    if (!p->queued)
        return age > 100 * MS;
    if (age > 3000 * MS * (p->tries < 4 ? p->tries : 4))
        return true; /* backing off: a slow leader must not drown in duplicates */
    if (age < 200 * MS || !w->hosts[p->host].up)
        return age >= 200 * MS;
    px_status st;
    px_node_status(w->hosts[p->host].r[g].node, &st);
    return st.state != PX_LEADER || px_ballot_cmp(st.ballot, p->ballot) != 0;
}

static void chain_client(world *w, int g)
{
    group_state *gs = &w->g[g];
    if (!w->healed) {
        uint64_t id = sim_new_proposal(w, g, NULL, 0);
        int l = leader_of(w, g);
        if (l >= 0)
            trace(w, "client g%d proposes p%" PRIu64 " to leader h%d", g, id, l + 1);
        else
            trace(w, "client g%d proposes p%" PRIu64 " (no leader yet: will retry)", g, id);
        submit(w, g, id);
    }
    int retried = 0;
    for (size_t i = 0; i < gs->nprops && retried < 16; i++)
        if (should_retry(w, g, &gs->props[i])) {
            submit(w, g, i);
            retried++;
        }
    sim_ev ev = {.t = w->now + rnd_range(5 * MS, 40 * MS), .kind = EV_CLIENT, .group = g};
    push_ev(w, ev);
}

/* Membership change: with `replicas` members add a host that is not one (the spare or a
 * removed one); with one more, remove a member other than the leader. */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: meridian-sim --seeds N [--seed S] [--replicas 3|5] [--groups G] [--steps K]\n"
            "                    [--bound DUR] [--mutant NAME] [--trace]\n"
            "Runs G Paxos groups of 3 or 5 replicas of the real core under simulated time,\n"
            "network, disks and clocks, one event per step, with faults for K steps, then\n"
            "heals and checks liveness. Seeds S, S+1, ..., S+N-1 (S defaults to 1).\n"
            "  --seeds N      number of seeds (default 1 with --seed, else required)\n"
            "  --seed S       first seed; alone, replays exactly that seed\n"
            "  --replicas R   3 or 5 (default 3)\n"
            "  --groups G     groups per run, 1..%d (default 2)\n"
            "  --steps K      fault-phase events per seed (default 4000)\n"
            "  --bound DUR    TrueTime bound of every host (default: random per seed, 0.5-8ms)\n"
            "  --mutant NAME  a deliberately broken protocol that must be caught:\n"
            "                 short-quorum, no-persist-promise, no-lease-wait, no-repropose\n"
            "  --trace        print every event as it happens\n"
            "Prints, last, 'seeds: N, violations: V, liveness failures: L'; exit status 1 if\n"
            "V or L is non-zero, 2 on bad arguments.\n",
            MAX_GROUPS);
}

int main(int argc, char **argv)
{
    static const sim_app chain = {.prog = "meridian-sim", .client = chain_client};
    sim_opts o = {.seeds = 0, .seed = 1, .replicas = 3, .groups = 2, .steps = 4000};
    return sim_main(argc, argv, &chain, &o, NULL, usage);
}
