/* Internal to tablet/paxos: the replica's state and the functions its files share.
 * Not part of the interface (px.h); nothing outside tablet/paxos includes it. */
#ifndef PX_INT_H
#define PX_INT_H

#include "tablet/paxos/px.h"

#define LEASE_RING  64
#define LEARN_CHUNK 256
#define MAX_CFGS    32
#define SLOT_SANITY (1ull << 24)

typedef struct rec {
    bool present, chosen;
    bool voided; /* committed with a timestamp not above an earlier slot's: a no-op */
    px_ballot ballot;
    int64_t ts;
    uint8_t kind;
    uint32_t len;
    uint8_t *data;     /* owned */
    uint64_t acks;     /* leader: members that accepted it in the current ballot */
    uint64_t self_seq; /* leader: persist batch of its own acceptance */
} rec;

typedef struct report {
    uint64_t slot;
    px_node_id node;
    px_ballot ballot;
    int64_t ts;
    uint8_t kind;
    uint32_t len;
    uint8_t *data; /* owned */
} report;

typedef struct prop {
    uint8_t *data; /* owned */
    uint32_t len;
} prop;

struct px_node {
    px_options o;
    px_state state;
    bool started;
    bool ineligible; /* the host says it may not lead (an unhealthy clock) */
    uint64_t rng;
    tt_interval now;

    /* acceptor state (promised is durable) */
    px_ballot promised;
    px_ballot max_seen;
    px_node_id leader_hint;
    px_ballot vote_ballot;  /* lease vote: who holds it ... */
    int64_t vote_until;     /* ... until TT.after(vote_until) on our clock */
    int64_t led_vote_until; /* our own vote as far as a lease of ours counted it */
    int64_t vote_floor;     /* the vote's earlier ballots of the same node hold until then */
    int64_t grace_until;    /* after a restart: no vote for a new node before TT.after(this) */
    int64_t election_deadline;
    /* before campaigning (px_phase1.c, pxi_probe): who said it would vote for probe_ballot */
    bool probing;
    uint64_t probe_seq, probe_set;
    px_ballot probe_ballot;
    int64_t probe_sent;

    /* log */
    uint64_t log_start; /* slot of log[0] */
    rec *log;
    size_t log_len, log_cap;
    uint64_t commit, applied, snap_requested;
    int64_t last_ts;   /* largest timestamp anywhere in our log */
    int64_t commit_ts; /* largest timestamp of a non-void entry at or below commit */
    px_snapshot_meta snap_meta;
    uint8_t *snap;
    uint32_t snap_len;
    /* follower: a snapshot arriving in chunks (px_learn.c), from rx_from */
    uint8_t *rx_snap;
    uint32_t rx_have, rx_total;
    px_node_id rx_from;
    px_snapshot_meta rx_meta;
    px_config_at cfgs[MAX_CFGS];
    uint32_t ncfgs;

    /* candidate / leader */
    uint64_t promised_set;
    report *reports;
    size_t nreports, reports_cap;
    uint64_t recovery_end; /* slots below are recovered, at or above are new */
    uint64_t proposed_upto;
    int64_t lease_end;
    uint64_t lease_seq, ballot_first_seq;
    int64_t lease_sent[LEASE_RING];
    int64_t vote_start[PX_MAX_NODE_ID + 1];
    uint64_t peer_commit[PX_MAX_NODE_ID + 1];
    int64_t last_hb;
    int64_t s_max;
    int64_t min_next; /* every stamp assigned from now on exceeds it: ts_floor, raised by
                       * px_node_promise and px_node_raise_ts_floor */
    uint64_t snap_sent_slot[PX_MAX_NODE_ID + 1]; /* the snapshot last sent to each peer ... */
    uint32_t snap_next[PX_MAX_NODE_ID + 1];      /* ... its next chunk ... */
    int64_t snap_sent_at[PX_MAX_NODE_ID + 1];    /* ... and when its last went (TT earliest) */
    prop *queue;
    size_t qhead, qlen, qcap;
    bool cfg_wanted;
    px_config cfg_next;
    uint64_t cfg_slot; /* slot of our pending CONFIG entry, 0 if none */

    /* persistence */
    uint64_t persist_seq, durable_seq;
    bool batch_has_persist;

    /* the current batch */
    px_action *acts;
    size_t nacts, acts_cap;
    void **grave; /* freed at the start of the next call */
    size_t ngrave, grave_cap;
    bool oom;
    uint64_t *accept_slots; /* slots proposed in this step (arena) */
    size_t naccept, accept_cap;
};

static inline int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static inline int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Message size caps (px_options.max_msg_bytes). The leader keeps the bytes of its slots in
 * flight (proposed, not yet chosen) within half a message, and one slot within that: a
 * follower knows the commit point up to one window behind, so what a PROMISE reports (every
 * accepted entry above the candidate's commit point) fits one message, and an election never
 * fails for the size of a promise. PXI_STEP_MSGS: the most messages an ACCEPT retransmit or a
 * LEARN catch-up queues for one peer in one step (the rest follows on later heartbeats). */
static inline uint32_t pxi_window_bytes(const px_node *n)
{
    return n->o.max_msg_bytes / 2 - PX_MSG_FIXED_BYTES;
}
static inline uint32_t pxi_max_entry(const px_node *n)
{
    return pxi_window_bytes(n) - PX_MSG_ENTRY_BYTES - 8;
}
#define PXI_STEP_MSGS 2

/* memory and actions */
void pxi_grave_push(px_node *n, void *p);
void pxi_grave_flush(px_node *n);
void *pxi_arena(px_node *n, size_t size);
px_action *pxi_act(px_node *n, px_action_kind kind);
px_persist *pxi_persist(px_node *n, px_persist_kind kind);
px_msg *pxi_msg_to(px_node *n, px_node_id to, px_msg_type type);
uint64_t pxi_rnd(px_node *n);

/* named states */
void pxi_set_state(px_node *n, px_state to);

/* the log */
rec *pxi_rec_at(px_node *n, uint64_t slot);
rec *pxi_rec_get(px_node *n, uint64_t slot);
uint64_t pxi_log_last(const px_node *n);
px_entry pxi_rec_entry(uint64_t slot, const rec *r);
rec *pxi_log_store(px_node *n, uint64_t slot, px_ballot b, int64_t ts, uint8_t kind,
                   const uint8_t *data, uint32_t len, bool chosen);
void pxi_log_drop_below(px_node *n, uint64_t slot);

/* configurations */
void pxi_add_config(px_node *n, uint64_t effect, const px_config *c);
const px_config *pxi_cfg_at(const px_node *n, uint64_t slot);
uint32_t pxi_window_cfgs(const px_node *n, const px_config **out, uint32_t max);
uint64_t pxi_cfg_mask(const px_config *c);
uint64_t pxi_window_mask(const px_node *n);
uint32_t pxi_quorum(const px_node *n, const px_config *c);
bool pxi_has_quorum(const px_node *n, const px_config *c, uint64_t set);
bool pxi_window_quorum(const px_node *n, uint64_t set);

/* leases (Spanner §4.1.1) */
void pxi_lease_recompute(px_node *n);
bool pxi_lease_valid(const px_node *n);
void pxi_abandon_campaign(px_node *n);
void pxi_lease_vote(px_node *n, px_node_id from, uint64_t seq);
uint64_t pxi_lease_request(px_node *n);
bool pxi_vote_free_for(const px_node *n, px_ballot b);
void pxi_grant_vote(px_node *n, px_ballot b);
bool pxi_heard_during_grace(const px_node *n, px_ballot b);

/* commit, apply, snapshots */
void pxi_apply_upto_commit(px_node *n);
void pxi_commit_one(px_node *n, rec *r);
void pxi_advance_commit(px_node *n);
void pxi_build_meta(px_node *n, uint64_t slot, px_snapshot_meta *m);
void pxi_install_snapshot(px_node *n, const px_snapshot_meta *meta, const uint8_t *snap,
                          uint32_t len);
int pxi_take_snapshot(px_node *n, uint64_t slot, const uint8_t *data, uint32_t len, mr_err *err);

/* phase 1, candidate side */
void pxi_reports_clear(px_node *n);
void pxi_report_add(px_node *n, px_node_id from, const px_entry *e);
void pxi_queue_clear(px_node *n);
void pxi_send_prepare(px_node *n, px_node_id to);
void pxi_campaign(px_node *n);
void pxi_probe(px_node *n, bool again);
void pxi_on_probe(px_node *n, const px_msg *m);
void pxi_on_probe_ack(px_node *n, const px_msg *m);
void pxi_maybe_lead(px_node *n);
void pxi_on_promise(px_node *n, const px_msg *m);

/* phase 1, acceptor side */
void pxi_step_down(px_node *n, px_ballot seen);
void pxi_raise_promise(px_node *n, px_ballot b);
void pxi_on_prepare(px_node *n, const px_msg *m);

/* phase 2 */
bool pxi_self_counts(const px_node *n, const rec *r);
void pxi_check_chosen(px_node *n, uint64_t slot);
void pxi_propose_slot(px_node *n, uint64_t s, int64_t ts, uint8_t kind, const uint8_t *data,
                      uint32_t len);
void pxi_send_accepts(px_node *n, const uint64_t *slots, size_t ns, size_t budget);
const report *pxi_best_report(const px_node *n, uint64_t s);
bool pxi_config_pending(const px_node *n);
void pxi_pump(px_node *n);
void pxi_learn_commit(px_node *n, px_ballot b, uint64_t commit);
void pxi_on_accept(px_node *n, const px_msg *m);
void pxi_on_accepted(px_node *n, const px_msg *m);

/* heartbeats and learning */
void pxi_send_learn(px_node *n, px_node_id to);
void pxi_heartbeat(px_node *n);
void pxi_on_heartbeat(px_node *n, const px_msg *m);
void pxi_on_heartbeat_ack(px_node *n, const px_msg *m);
void pxi_on_learn(px_node *n, const px_msg *m);
void pxi_on_release(px_node *n, const px_msg *m);

/* timers */
void pxi_reset_election(px_node *n);
bool pxi_may_campaign(const px_node *n);
void pxi_on_tick(px_node *n);

/* input validation */
int pxi_check_ballot(px_ballot b, const char *what, mr_err *err);
int pxi_validate_msg(const px_node *n, const px_msg *m, mr_err *err);

/* entry points */
void pxi_batch_begin(px_node *n);
void pxi_batch_end(px_node *n, px_batch *out);

#endif
