/* The Multi-Paxos core of a tablet replica: a pure state machine, step(event) -> actions.
 *
 * The core does no I/O and reads no clock. The host (the libuv+SQLite node, the simulator,
 * the benchmark) feeds it events -- a message arrived, time passed (with the node's current
 * TrueTime interval), a client proposal, persistence completed, a snapshot from the
 * application -- and performs the actions it returns: persist state, send messages, apply
 * chosen entries, take or install snapshots. Same shape as canonical/raft's `struct raft_io`
 * and fixture, but as a value-returning step function.
 *
 * Protocol (Lamport, "Paxos Made Simple" §2-3; Spanner, Corbett et al., OSDI 2012, §4.1):
 *  - Ballots are ordered by (round, node). A would-be leader runs phase 1 once, for every
 *    slot above its commit point; phase 2 then runs per slot, pipelined (up to `alpha` slots
 *    beyond the commit point in flight), and one slot carries a batch of proposals.
 *  - Every replica learns chosen slots (commit point piggybacked on accepts and heartbeats,
 *    explicit LEARN messages for laggards, a snapshot past log truncation).
 *  - Leader leases in TrueTime: a promise or heartbeat ack is a lease vote that the replica
 *    keeps until TT.after(vote.latest + lease) on its own clock; the leader counts a vote
 *    from the TT.earliest of the moment it *sent* the request, so its lease provably holds in
 *    true time while TT.now().latest < lease_end. Leases of successive leaders are disjoint.
 *  - Timestamps: the leader stamps each new slot with max(TT.now().latest, last + 1), only
 *    while that stamp is below its lease end; stamps travel in the log, so a successor
 *    continues above them; an abdicating leader waits TT.after(s_max) before it releases
 *    its lease. A value Paxos still chooses after newer slots (re-proposed from a minority)
 *    with a stamp not above an earlier slot's is void: applied as a no-op everywhere.
 *  - Membership: see px_config below and the comment at the top of px_config.c.
 *
 * DURABILITY RULE (the contract every host must keep):
 *   Persist actions of a node are made durable in the order they are emitted. A SEND action
 *   may be performed only once every persist action emitted so far by that node (in the
 *   same batch or in earlier ones) is durable. APPLY / snapshot actions may be performed at
 *   once. This lets a host group-commit one fsync over many nodes (groups) and batches.
 *   When a batch's persists are durable the host reports PX_EV_PERSISTED with the batch's
 *   `persist_seq`: safety does not depend on it, but the leader counts its own acceptance of
 *   a slot only once it is reported durable (a one-member group needs it to make progress).
 *
 * Memory: everything an action points to (entry bytes, messages, snapshot bytes) is owned by
 * the core and valid until the next call into the same px_node; copy what you keep. Events
 * point to caller-owned memory that the core copies before px_step returns. */
#ifndef PX_H
#define PX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/mr_err.h"
#include "truetime/tt.h"

/* ---- Identifiers, ballots, configurations ---- */

/* Node ids are 1..PX_MAX_NODE_ID (0 means "none"), so a set of nodes fits a uint64_t. */
#define PX_MAX_NODE_ID 63
/* At most this many voting members in one configuration. */
#define PX_MAX_NODES 9

typedef uint32_t px_node_id;

/* A ballot (proposal number): totally ordered by (round, node). Round 0 is "none". */
typedef struct px_ballot {
    uint64_t round;
    px_node_id node;
} px_ballot;

/* <0, 0, >0 like strcmp. */
int px_ballot_cmp(px_ballot a, px_ballot b);
static inline bool px_ballot_is_zero(px_ballot b)
{
    return b.round == 0;
}

/* A membership configuration: the voting members of a group. Changes are single add or
 * single remove (a replace is an add then a remove), so majorities of successive configs
 * always intersect. */
typedef struct px_config {
    uint32_t n;
    px_node_id nodes[PX_MAX_NODES];
} px_config;

/* True if `id` is a member. */
bool px_config_has(const px_config *c, px_node_id id);
/* Checks ids are in range, distinct, 1 <= n <= PX_MAX_NODES. 0 or MR_EINVAL with err. */
int px_config_validate(const px_config *c, mr_err *err);

/* ---- Log entries ---- */

typedef enum {
    PX_ENTRY_NOOP = 0, /* fills a hole left by a previous leader; no timestamp */
    PX_ENTRY_DATA = 1, /* a batch of client proposals (see px_batch_*) */
    PX_ENTRY_CONFIG =
        2, /* a new px_config (encoded by px_config_encode), in effect at slot+alpha */
} px_entry_kind;

typedef struct px_entry {
    uint64_t slot;    /* >= 1 */
    px_ballot ballot; /* ballot in which this replica accepted it */
    int64_t ts;       /* timestamp assigned by the leader in its lease (ns); 0 for NOOP */
    uint8_t kind;     /* px_entry_kind */
    uint32_t len;
    const uint8_t *data; /* len bytes; owned by whoever produced the struct (see header) */
} px_entry;

/* Batch payload of a DATA entry: a sequence of [u32 big-endian length][bytes].
 * px_batch_next walks it: start with *off = 0; returns 1 and sets *p and *plen for the next
 * proposal, 0 at the end, -1 if malformed. */
int px_batch_next(const uint8_t *data, uint32_t len, uint32_t *off, const uint8_t **p,
                  uint32_t *plen);

/* A config entry's payload: u32 n, then n u32 node ids, big-endian. */
#define PX_CONFIG_WIRE_MAX (4 + 4 * PX_MAX_NODES)
uint32_t px_config_encode(const px_config *c, uint8_t *buf /* PX_CONFIG_WIRE_MAX */);
int px_config_decode(const uint8_t *buf, uint32_t len, px_config *c, mr_err *err);

/* ---- Snapshots ---- */

/* Up to this many configurations travel with a snapshot (the one in force right after
 * the snapshot and changes already chosen that take effect later). */
#define PX_SNAP_CONFIGS 4

typedef struct px_config_at {
    uint64_t effect_slot; /* first slot governed by this config */
    px_config config;
} px_config_at;

typedef struct px_snapshot_meta {
    uint64_t slot;   /* last slot included (0 = no snapshot) */
    int64_t last_ts; /* largest timestamp among included entries */
    uint32_t nconfigs;
    px_config_at configs[PX_SNAP_CONFIGS]; /* ascending effect_slot */
} px_snapshot_meta;

/* ---- Persist actions: the durable state of one replica of one group ---- */

typedef enum {
    /* The promised ballot (phase 1b). Replaces the previous one. */
    PX_PERSIST_PROMISE = 1,
    /* An accepted entry (phase 2b) or a learned chosen one: insert or replace the entry at
     * entry.slot. A replica never holds two entries for one slot. */
    PX_PERSIST_ENTRY,
    /* The commit point: every slot <= commit is chosen. Never decreases. */
    PX_PERSIST_COMMIT,
    /* A snapshot: meta + opaque application bytes. Replaces the previous snapshot. Entries
     * with slot <= meta.slot stay until a PX_PERSIST_TRUNCATE says otherwise. */
    PX_PERSIST_SNAPSHOT,
    /* Entries with slot <= upto may be deleted (they are covered by the snapshot). */
    PX_PERSIST_TRUNCATE,
} px_persist_kind;

typedef struct px_persist {
    px_persist_kind kind;
    px_ballot promise;     /* PROMISE */
    px_entry entry;        /* ENTRY */
    uint64_t commit;       /* COMMIT */
    px_snapshot_meta meta; /* SNAPSHOT */
    const uint8_t *snap;   /* SNAPSHOT: application bytes */
    uint32_t snap_len;
    uint64_t upto; /* TRUNCATE */
} px_persist;

/* The durable state a host hands back to a restarting replica (see px_node_restore). */
typedef struct px_durable {
    px_ballot promise;
    uint64_t commit;
    px_snapshot_meta meta;
    const uint8_t *snap; /* borrowed during the call */
    uint32_t snap_len;
    const px_entry *entries; /* borrowed during the call; any order */
    size_t nentries;
} px_durable;

/* ---- Messages (see px_msg.h for the wire codec) ---- */
#include "tablet/paxos/px_msg.h"

/* ---- Events ---- */

typedef enum {
    PX_EV_TICK = 1,  /* time passed; drives heartbeats, elections, leases */
    PX_EV_RECEIVE,   /* a message arrived */
    PX_EV_PROPOSE,   /* a client proposal (leader only) */
    PX_EV_PERSISTED, /* every persist up to batch `seq` is durable */
    PX_EV_SNAPSHOT,  /* the application's snapshot, answering PX_ACT_TAKE_SNAPSHOT */
    PX_EV_CONFIG,    /* propose a membership change (leader only) */
    PX_EV_ABDICATE,  /* step down voluntarily (leader only) */
    PX_EV_CAMPAIGN,  /* start an election now (if allowed) */
} px_event_kind;

typedef struct px_event {
    px_event_kind kind;
    const px_msg *msg;   /* RECEIVE (caller-owned) */
    const uint8_t *data; /* PROPOSE: one proposal; SNAPSHOT: app bytes (caller-owned) */
    uint32_t len;
    uint64_t seq;     /* PERSISTED */
    uint64_t slot;    /* SNAPSHOT: the applied slot the bytes reflect */
    px_config config; /* CONFIG: the wanted configuration */
} px_event;

/* ---- Actions ---- */

typedef enum {
    PX_ACT_PERSIST = 1,      /* make `persist` durable (see the durability rule) */
    PX_ACT_SEND,             /* send `msg` to node `to` (after the persists, see above) */
    PX_ACT_APPLY,            /* apply chosen `entry` (unless `voided`), in slot order */
    PX_ACT_TAKE_SNAPSHOT,    /* snapshot the app as of applied `slot`; answer PX_EV_SNAPSHOT */
    PX_ACT_INSTALL_SNAPSHOT, /* replace the app state with `snap` (as of meta.slot) */
} px_action_kind;

typedef struct px_action {
    px_action_kind kind;
    px_persist persist;    /* PERSIST */
    px_node_id to;         /* SEND */
    px_msg msg;            /* SEND */
    px_entry entry;        /* APPLY */
    bool voided;           /* APPLY: chosen, but apply it as a no-op: its timestamp is not
                            * above an earlier slot's (see pxi_commit_one in px_log.c) */
    uint64_t slot;         /* TAKE_SNAPSHOT */
    px_snapshot_meta meta; /* INSTALL_SNAPSHOT */
    const uint8_t *snap;   /* INSTALL_SNAPSHOT */
    uint32_t snap_len;
} px_action;

/* The result of one step. Owned by the node; valid until the next call into it. */
typedef struct px_batch {
    const px_action *actions;
    size_t n;
    uint64_t persist_seq; /* >0 if the batch holds persists: report PX_EV_PERSISTED(seq) */
} px_batch;

/* ---- Node ---- */

/* Deliberately broken protocol variants for the simulator's negative controls. Never set
 * outside tests. */
typedef enum {
    PX_MUTANT_NONE = 0,
    PX_MUTANT_SHORT_QUORUM,       /* quorums one short of a majority */
    PX_MUTANT_NO_PERSIST_PROMISE, /* phase-1 promise replied without being persisted */
    PX_MUTANT_NO_LEASE_WAIT,      /* lease votes and the abdication wait are not waited out */
    PX_MUTANT_NO_REPROPOSE,       /* a new leader ignores values reported in phase 1 */
} px_mutant;

typedef struct px_options {
    uint64_t group;          /* group id carried in messages; foreign messages are rejected */
    px_node_id self;         /* this replica's id */
    px_config config;        /* bootstrap configuration (ignored if restored state has one) */
    int64_t lease_ns;        /* lease duration (default 2 s) */
    int64_t heartbeat_ns;    /* leader heartbeat / lease renewal period (default lease/4) */
    int64_t election_ns;     /* base election timeout, randomized up to 2x (default lease) */
    int64_t jitter_ns;       /* instead the random part: up to this much more; 0 = election_ns */
    uint32_t alpha;          /* pipeline window and config delay (default 16) */
    uint32_t max_batch;      /* proposals per slot; 1 disables batching (default 64) */
    uint32_t max_msg_bytes;  /* cap on one encoded message, so every message fits the host's
                              * frames: the leader keeps its slots in flight within half of it
                              * (so a PROMISE fits), ACCEPT retransmits, LEARN catch-up and
                              * SNAPSHOTs (in chunks) are cut to it; a proposal may take up to
                              * px_node_max_proposal (default and 0: PX_MSG_DEFAULT_MAX_BYTES) */
    uint32_t max_queue;      /* pending proposals before MR_EFULL (default 4096) */
    uint64_t snapshot_every; /* ask for a snapshot every N applied slots; 0 = never */
    uint64_t log_keep;       /* entries kept behind a snapshot for catch-up (default 2*alpha) */
    uint64_t seed;           /* randomness (election jitter); deterministic per seed */
    int64_t ts_floor;        /* every timestamp this replica assigns exceeds it (a group split
                              * off another starts above the split's timestamp); default 0 */
    px_mutant mutant;
} px_options;

/* Fills defaults for everything but group/self/config. */
void px_options_default(px_options *o);
/* Sets the lease and the timers that follow from it: heartbeats every lease/4 (renewals well
 * inside the lease) and an election timeout of one lease plus up to a quarter more at random:
 * a follower campaigns soon after the old leader's lease votes run out (they must, before
 * anyone can win), and rivals that campaign at once settle in one round trip (the lower
 * ballot yields, px_phase1.c), so the jitter need not spread them over a whole lease. */
void px_options_set_lease(px_options *o, int64_t lease_ns);

/* Named replica states (dqlite-style explicit machine; transitions asserted in px_node.c):
 *   FOLLOWER  -> CANDIDATE (election timeout, lease vote free)
 *   CANDIDATE -> LEADER (phase 1 promises from a majority)
 *   CANDIDATE -> FOLLOWER (higher ballot; or timeout: it takes back its self-vote, which no
 *                          lease counted, so dueling candidates cannot block each other)
 *   CANDIDATE -> CANDIDATE (PX_EV_CAMPAIGN again: a higher ballot)
 *   LEADER    -> ABDICATING (PX_EV_ABDICATE) | FOLLOWER (higher ballot seen)
 *   ABDICATING -> FOLLOWER (TT.after(s_max), lease released) */
typedef enum { PX_FOLLOWER = 0, PX_CANDIDATE, PX_LEADER, PX_ABDICATING, PX_NSTATES } px_state;

const char *px_state_name(px_state s);

typedef struct px_status {
    px_state state;
    px_ballot ballot;   /* promised ballot (the own ballot when leading) */
    px_node_id leader;  /* best guess of the current leader, 0 if unknown */
    bool lease_valid;   /* leader and TT.now().latest < lease_end (as of the last step) */
    int64_t lease_end;  /* true-time bound of the leader's lease (0 if none) */
    uint64_t commit;    /* highest chosen-prefix slot known */
    uint64_t applied;   /* highest slot handed to PX_ACT_APPLY */
    uint64_t next_slot; /* leader: next slot to fill */
    uint64_t log_start; /* first slot still in the log */
    int64_t last_ts;    /* largest timestamp seen in the log */
    int64_t s_max;      /* largest timestamp this node assigned as leader */
    size_t queued;      /* leader: proposals waiting for a slot */
} px_status;

typedef struct px_node px_node;

/* Creates a replica with empty durable state. Caller frees with px_node_destroy.
 * Returns 0, or MR_EINVAL/MR_ENOMEM with err set. */
int px_node_create(const px_options *opts, px_node **out, mr_err *err);

/* Loads durable state (after a restart), before px_node_start. Copies what it needs.
 * Returns 0 or MR_ECORRUPT/MR_EINVAL with err set. */
int px_node_restore(px_node *n, const px_durable *d, mr_err *err);

/* Starts the node at local time `now`: a restarted replica refuses lease votes for one
 * lease (it may have voted before the crash, votes are not persisted). The batch holds
 * INSTALL_SNAPSHOT / APPLY actions replaying the durable state to the application. */
int px_node_start(px_node *n, tt_interval now, px_batch *out, mr_err *err);

/* Feeds one event at local TrueTime `now`. On success returns 0 and fills *out (owned by
 * the node, valid until the next call). Errors are values: MR_EINVAL (malformed or
 * out-of-range input; nothing changed), MR_ENOTLEADER, MR_EFULL, MR_EUNAVAIL (no lease
 * yet). *out is valid (possibly empty) even on error. */
int px_step(px_node *n, tt_interval now, const px_event *ev, px_batch *out, mr_err *err);

void px_node_status(const px_node *n, px_status *st);
/* The options the node runs with. */
const px_options *px_node_options(const px_node *n);

/* May the leader act (serve lease reads, assign timestamps) at local time `now`?
 * True iff it leads and TT.now().latest < lease_end, i.e. a quorum of votes provably holds. */
bool px_node_lease_valid(const px_node *n, tt_interval now);

/* MinNextTS (Spanner §4.2.1 and §4.1.3): the leader promises that every timestamp it
 * assigns from now on exceeds ts. A host uses it to serve a read at ts once what it
 * assigned so far has applied, and to commit above a set of prepare timestamps. ts must
 * lie inside the valid lease (a successor's stamps then exceed it too: its lease starts
 * after ours ends). MR_ENOTLEADER when not leading with a valid lease at `now`, MR_EINVAL
 * when ts is not below the lease end. */
int px_node_promise(px_node *n, tt_interval now, int64_t ts, mr_err *err);

/* Raises the timestamp floor: every timestamp this replica assigns from now on, as leader now
 * or after any later election, exceeds ts. Spanner keeps each group's Paxos write timestamps
 * monotonic (§4.1.2), so a host that applies a write at a timestamp other than its slot's --
 * a two-phase commit participant applying the coordinator's s (§4.2.1) -- raises the floor to
 * it, on every replica (a successor then stamps above it too) and again from its store after a
 * restart or a snapshot install. Without it a participant whose clock is behind the
 * coordinator's could stamp a later write below s, and only commit wait would hide that.
 * Unlike px_node_promise it needs neither leadership nor a lease: a floor past the lease end
 * holds new slots back until the lease reaches it (a clock beyond its bound costs liveness,
 * never order). Lower values are ignored. It touches no action: the batch from the last call
 * stays valid, so a host may call it while performing that batch's APPLY actions. */
void px_node_raise_ts_floor(px_node *n, int64_t ts);

/* May this replica campaign for leadership? A host whose clock cannot vouch for
 * timestamps (TrueTime unhealthy) says no: the node then never starts an
 * election (PX_EV_CAMPAIGN fails with MR_EUNAVAIL) until told yes again. It
 * still votes and follows. A current leader is not deposed by this: the host
 * sends PX_EV_ABDICATE. Default: eligible. */
void px_node_set_eligible(px_node *n, bool eligible);

/* The largest proposal PX_EV_PROPOSE accepts (a slot holding it alone fits one message). */
uint32_t px_node_max_proposal(const px_node *n);

/* Frees the node and everything it owns. NULL is fine. */
void px_node_destroy(px_node *n);

#endif
