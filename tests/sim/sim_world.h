/* The simulated world of meridian-sim and meridian-sim-txn: H hosts, each running one replica
 * of every one of G Paxos groups of the real core (tablet/paxos), under simulated true time,
 * network, disks and per-host TrueTime clocks, one event per step, from a seed; faults
 * (message loss, duplication, delay, partitions, crashes and restarts, slow disks,
 * abdications, membership changes); and the checks of the Paxos invariants after every
 * step (see sim_world.c).
 *
 * A workload plugs in through sim_app: it makes the proposals, applies what is chosen to its
 * own state machine per replica, adds its bytes to snapshots, and says when the run is done.
 * meridian-sim (sim.c) runs the chain workload (opaque proposals, a hash chain per replica);
 * meridian-sim-txn (sim_txn.c) runs transactions over an MVCC store per replica. */
#ifndef SIM_WORLD_H
#define SIM_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/mr_util.h"
#include "tablet/paxos/px.h"

#define MAX_HOSTS   6 /* 5 replicas and a spare for membership changes */
#define MAX_GROUPS  8
#define TRACE_LINES 300
#define T0          INT64_C(1800000000000000000) /* simulated epoch: 2027 */
#define MS          MR_NS_PER_MS
#define LIVE_NS     (15 * MR_NS_PER_S)

typedef struct world world;
typedef struct sim_app sim_app;

/* ---------------------------------------------------------------- run parameters */

typedef struct sim_opts {
    int seeds;
    uint64_t seed;
    bool one_seed;
    int replicas, groups;
    long steps;
    px_mutant mutant;
    const char *mutant_name;
    bool trace;
    int64_t bound;    /* declared TrueTime bound; 0: random per seed */
    void *app_opts;   /* the workload's own options */
    char replay[256]; /* the workload's extra replay arguments */
} sim_opts;

/* ---------------------------------------------------------------- randomness */

uint64_t rnd(void);
int64_t rnd_range(int64_t lo, int64_t hi); /* inclusive */
bool chance(double p);

/* ---------------------------------------------------------------- the world */

typedef enum {
    EV_DELIVER,
    EV_TICK,
    EV_DISK,
    EV_CLIENT,
    EV_FAULT,
    EV_RESTART,
    EV_CRASH,
    EV_APP /* the workload's own timer: app_kind, app_id */
} sim_ev_kind;

typedef struct sim_ev {
    int64_t t;
    uint64_t seq;
    sim_ev_kind kind;
    int host, from, group;
    uint64_t gen;
    uint8_t *bytes; /* DELIVER: owned */
    int app_kind;   /* EV_APP */
    uint64_t app_id;
    size_t len;
} sim_ev;

typedef struct dent {
    bool present;
    px_entry e;
    uint8_t *data; /* owned */
} dent;

/* What one replica has on disk. */
typedef struct sim_durable {
    px_ballot promise;
    uint64_t commit;
    px_snapshot_meta meta;
    uint8_t *snap;
    uint32_t snap_len;
    dent *ents; /* index slot - 1 */
    size_t nents;
} sim_durable;

typedef enum { W_PERSIST, W_SEND, W_NOTIFY } witem_kind;

/* A pending disk write, a send waiting behind writes, or a PERSISTED notification. */
typedef struct witem {
    witem_kind kind;
    int group, to;
    px_persist p;
    uint8_t *buf; /* copy of entry or snapshot bytes, or the encoded message */
    size_t len;
    uint64_t seq;
} witem;

/* The chain every replica keeps whatever the workload: applied slot and a hash over the
 * applied entries; snapshots start with it, so installs are checked against the chosen log. */
typedef struct sim_chain {
    uint64_t applied, hash;
} sim_chain;

typedef struct replica {
    px_node *node;
    sim_chain app;
    sim_durable d;
} replica;

typedef struct host {
    bool up;
    uint64_t gen;
    int64_t clock_err;
    bool slow_disk;
    bool disk_scheduled;
    bool crash_armed; /* crash soon after the next phase-1 promise this host sends */
    bool pinned;      /* clock_err stays put (a workload's choice), instead of wandering; it
                       * may then lie beyond the bound (see world.clocks_lie) */
    witem *q;
    size_t nq, qcap;
    replica r[MAX_GROUPS];
} host;

typedef struct chosen_rec {
    bool present, voided;
    uint8_t kind;
    int64_t ts;
    uint64_t vhash;
} chosen_rec;

typedef struct proposal {
    bool chosen;
    bool queued;      /* the last submission was accepted into a leader's queue */
    int host;         /* ... of this leader */
    px_ballot ballot; /* ... in this ballot */
    int tries;
    int64_t last_submit;
    uint64_t phash; /* hash of the workload's payload behind the 16-byte header */
} proposal;

typedef struct lease_rec {
    px_ballot ballot;
    int host;
    int64_t start, end, smax;
} lease_rec;

typedef struct group_state {
    px_config_at cfgs[64]; /* configurations by effect slot, as the chosen log defines them */
    int ncfgs;
    px_config proposed_cfgs[64]; /* every configuration a leader accepted to propose */
    int nproposed_cfgs;
    chosen_rec *chosen; /* index slot - 1 */
    size_t nchosen;
    uint64_t *prefix; /* prefix[s] = hash of chosen 1..s; prefix[0] = 0 */
    size_t nprefix;
    proposal *props;
    size_t nprops, propcap;
    lease_rec *leases;
    size_t nleases, leasecap;
} group_state;

struct world {
    const sim_opts *o;
    uint64_t seed;
    int64_t now; /* true time */
    long step;
    uint64_t evseq;
    sim_ev *heap;
    size_t nheap, heapcap;
    host hosts[MAX_HOSTS];
    int nhosts, ngroups;
    int replicas;
    long stat_chosen, stat_voided, stat_leases, stat_crashes, stat_configs;
    group_state g[MAX_GROUPS];
    int64_t bound; /* declared TrueTime bound (half-width) */
    /* A workload pinned some clock beyond the bound: leases are then judged in true time
     * from each host's own reading, and timestamps are no longer compared with true time
     * (a lying clock stamps ahead of it, and so may every group that applies its s). */
    bool clocks_lie;
    double loss, dup;
    bool blocked[MAX_HOSTS][MAX_HOSTS]; /* blocked[a][b]: a cannot reach b */
    bool healed;
    int64_t heal_time;
    px_options popts;
    char violation[512];
    bool failed_liveness;
    char trace[TRACE_LINES][200];
    long ntrace;
    const sim_app *app;
    void *app_state; /* the workload's, per seed */
};

/* ---------------------------------------------------------------- workloads */

/* What a workload provides. Every hook is optional. */
struct sim_app {
    const char *prog; /* program name for messages and replay lines */
    /* The world is set up (bound, options), hosts not started yet: allocate app_state, pin
     * clocks. */
    void (*init)(world *w);
    /* Replica (h, g) starts, before the core replays its durable state into it; or it
     * stops (a crash, or the end of the run). */
    void (*replica_start)(world *w, int h, int g);
    void (*replica_stop)(world *w, int h, int g);
    /* A chosen entry reaches replica (h, g), after the world checked it. */
    void (*apply)(world *w, int h, int g, const px_entry *e, bool voided);
    /* The workload's part of a snapshot of (h, g) at its applied slot (malloc'd, or NULL),
     * and installing one (the chain header already checked against the chosen log). */
    void (*snapshot)(world *w, int h, int g, uint8_t **buf, size_t *len);
    void (*install)(world *w, int h, int g, const px_snapshot_meta *m, const uint8_t *b,
                    size_t len);
    /* After every step of (h, g)'s core: leadership may have changed. */
    void (*stepped)(world *w, int h, int g);
    /* EV_CLIENT for group g (the workload schedules the next one), and EV_APP. */
    void (*client)(world *w, int g);
    void (*event)(world *w, const sim_ev *ev);
    /* After the heal: may the run stop? (Each group's leader holds a valid lease too.) */
    bool (*done)(world *w);
    /* The run ended without a violation: final checks (call violate), then stats. */
    void (*finish)(world *w, bool healthy);
    void (*free)(world *w);
    /* Prints the workload's totals over every seed, before the summary line. */
    void (*report)(void);
};

/* ---------------------------------------------------------------- the world's API */

void trace(world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void violate(world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void *xcalloc(size_t n, size_t sz);
void *xrealloc(void *p, size_t sz);
uint8_t *dup_bytes(const uint8_t *p, size_t n);
uint64_t fnv(uint64_t h, const void *p, size_t n);
void push_ev(world *w, sim_ev ev);
/* Host h's TrueTime: true time plus its error (within the bound), +- the bound. */
tt_interval host_tt(const world *w, int h);
/* Feeds an event to replica (h, g) and performs the batch; the core's return code. */
int step_node(world *w, int h, int g, const px_event *ev);
/* The up host leading g in the highest ballot, or -1. */
int leader_of(world *w, int g);

/* Proposals: a 16-byte header (group, id, check) the world validates when chosen, then the
 * workload's payload (its hash is checked too). */
#define PROP_BYTES 16
uint64_t sim_new_proposal(world *w, int g, const uint8_t *payload, size_t len);
/* The id in a proposal's header (at least PROP_BYTES bytes). */
static inline uint64_t sim_proposal_id(const uint8_t *p)
{
    uint64_t id = 0;
    for (int i = 7; i >= 0; i--)
        id = id << 8 | p[4 + i];
    return id;
}
/* Proposes `id` at host h; returns px_step's code (0: queued). */
int sim_submit_at(world *w, int g, uint64_t id, int h, const uint8_t *payload, size_t len);

/* Parses the common command line (--seeds, --seed, --replicas, --groups, --steps, --bound,
 * --mutant, --trace) into *o (holding the defaults) and runs every seed with `app`; `extra`
 * (may be NULL) handles the workload's own options: it returns 0 when it took the pair, 1
 * when it does not know the option, 2 on a bad value (having printed why). `usage` prints
 * the help. Returns the process exit status: 0, 1 on violations, 2 on bad arguments. */
int sim_main(int argc, char **argv, const sim_app *app, sim_opts *o,
             int (*extra)(sim_opts *o, const char *arg, const char *val), void (*usage)(FILE *f));

#endif
