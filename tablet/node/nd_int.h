/* Internals of the node shared by its modules (one job per file: see docs/architecture.md,
 * "Nodes"). Not a public interface. */
#ifndef ND_INT_H
#define ND_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/mr_codec.h"
#include "net/frame.h"
#include "net/transport.h"
#include "proto/pr.h"
#include "tablet/lock/tl.h"
#include "tablet/logstore/ls.h"
#include "tablet/mvcc/mv.h"
#include "tablet/node/nd.h"
#include "tablet/node/nd_http.h"
#include "tablet/node/nd_test.h"
#include "tablet/node/nd_metrics.h"
#include "tablet/paxos/px.h"
#include "truetime/tt.h"

#define ND_TICK_MS         10
#define ND_PROPOSE_TIMEOUT (10 * MR_NS_PER_S)
#define ND_META_GROUP      1
#define ND_DATA_GROUP      2
#define ND_MAX_REPLICAS    5

/* The meta group's record of a node or group: "\0<kind>/<id>" (kind "node" or "group"), under a
 * system key (first byte 0) so that it lies in the meta group's range and no client can write
 * it. Writes the key into buf (not NUL-terminated: it starts with one) and returns its length. */
static inline size_t nd_meta_key(char *buf, size_t cap, const char *kind, unsigned long long id)
{
    int l = snprintf(buf + 1, cap - 1, "%s/%llu", kind, id);
    buf[0] = '\0';
    return l < 0 ? 0 : (size_t)l + 1 < cap ? (size_t)l + 1 : cap - 1;
}

typedef struct nd_peer {
    px_node_id id;
    char addr[128];
    char zone[64];
    char region[64];
    int64_t last_seen;    /* monotonic ns of the last message from it */
    uint8_t clock_status; /* its clock, as of its last frame */
    int64_t clock_eps;
} nd_peer;

/* An ND_MSG_PX frame is a PxBundle (proto/meridian.proto); this bounds its bytes besides the
 * msgs: from, clock_status and epsilon_ns at their widest varints (nd_peer.h). */
#define ND_PX_HDR 23
/* A peer's messages of one loop iteration go out in frames of at most this many bytes (the
 * transport's limit); each Paxos message is far smaller (px_options.max_msg_bytes). */
#define ND_PX_FRAME_MAX NET_FRAME_DEFAULT_MAX
/* Where the next ND_MSG_PX frame of a queue of [u32 len][px_msg] items (buf, len bytes) ends
 * when it starts at off: as many whole items as fit max_payload once encoded as a PxBundle
 * (ND_PX_HDR and nd_px_item_bytes each), at least one. *count gets their number. */
size_t nd_bundle_cut(const uint8_t *buf, size_t len, size_t off, size_t max_payload,
                     uint32_t *count);

/* A byte string the node owns: a key or a range's bound. p is malloc'd (never NULL once set,
 * even for len 0). Keys are any bytes (client keys: the first is not 0), ordered as bytes. */
typedef struct nd_bytes {
    uint8_t *p;
    size_t len;
} nd_bytes;

/* Sets b to a copy of len bytes at p (freeing what it held). MR_OK or MR_ENOMEM. */
int nd_bytes_set(nd_bytes *b, const void *p, size_t len);
void nd_bytes_free(nd_bytes *b);
/* A bytes field borrowing b. */
static inline ProtobufCBinaryData nd_bytes_bin(const nd_bytes *b)
{
    return (ProtobufCBinaryData){.len = b->len, .data = b->p};
}

/* The chain state machine: count, last timestamp, running FNV-1a hash. */
typedef struct nd_chain {
    uint64_t count;
    int64_t last_ts;
    uint64_t hash;
    uint64_t slot; /* last applied slot */
    /* A register (read / write / compare-and-set through the log): the
     * consistency harness's linearizable workload over one group. */
    uint8_t *reg;
    uint32_t reg_len;
    bool reg_set;
} nd_chain;

/* The kind byte after a proposal's [u32 node][u64 seq] header. */
enum {
    ND_OP_OPAQUE = 0,
    ND_OP_WRITE = 1, /* register */
    ND_OP_READ = 2,
    ND_OP_CAS = 3,
    ND_OP_TXN = 4,  /* a transaction's commit record: its writes at the slot's timestamp */
    ND_OP_SAFE = 5, /* empty: an idle leader moves safe time forward */
    /* Two-phase commit (nd_txn_apply.c, nd_2pc.c): */
    ND_OP_PREPARE = 6, /* participant: [u64 txn][u64 coordinator][u32 spans len][read spans]
                        * [u32 nwrites][writes]; prepared at the slot's timestamp */
    ND_OP_DECIDE = 7,  /* participant: [u64 txn][u8 commit][i64 ts]: apply or drop the prepared
                        * writes */
    ND_OP_COMMIT2 = 8, /* coordinator: [u64 txn][u32 nparts][u64 parts][u32 nwrites][writes]:
                        * its writes and the commit decision at the slot's timestamp */
    ND_OP_ABORT2 = 9,  /* coordinator: [u64 txn]: the decision is abort (unless already made) */
    ND_OP_SPLIT = 10,  /* [u64 child group][u32 key length][key]: at the end of this slot the
                        * keys from key on move to the child group (nd_split.c) */
    ND_OP_FORGET = 11, /* coordinator: [u64 0][i64 cutoff][u32 n][n x u64 txn]: the decisions
                        * of these transactions made at or before cutoff are collected */
    /* A commit deadline (TxnRequest.commit_before): the record must commit at a slot timestamp
     * below `before`; the stamp is known only once the slot is chosen, so every replica checks
     * it when applying (nd_txn_apply.c), alike. */
    ND_OP_TXN_BEFORE = 12,     /* [u64 txn][i64 before][u32 nwrites][writes]: ND_OP_TXN below
                                * before, else skipped (aborted) */
    ND_OP_COMMIT2_BEFORE = 13, /* [u64 txn][i64 before][as COMMIT2]: COMMIT2 below before,
                                * else the abort decision (as ABORT2) */
};
/* Records nd_txn_apply.c applies (every kind above but OPAQUE/register ops, SAFE and SPLIT). */
static inline bool nd_op_is_txn(uint8_t kind)
{
    return kind == ND_OP_TXN || (kind >= ND_OP_PREPARE && kind <= ND_OP_ABORT2) ||
           kind == ND_OP_FORGET || kind == ND_OP_TXN_BEFORE || kind == ND_OP_COMMIT2_BEFORE;
}
/* The kind a record with a commit deadline otherwise is (the others: themselves). */
static inline uint8_t nd_op_base(uint8_t kind)
{
    return kind == ND_OP_TXN_BEFORE       ? ND_OP_TXN
           : kind == ND_OP_COMMIT2_BEFORE ? ND_OP_COMMIT2
                                          : kind;
}
/* The answer to a transaction aborted for its commit deadline (TxnRequest.commit_before). */
#define ND_DEADLINE_PASSED "commit deadline passed"

#define ND_PROP_HDR 13

/* How long a decision row is kept (--decision-retention); see nd_gc.c, "collecting
 * decisions". */
#define ND_DEFAULT_DECISION_RETENTION (600LL * MR_NS_PER_S)

typedef struct nd_pending {
    uint64_t group, seq;
    net_reply_to reply_to;
    int64_t start, deadline;
} nd_pending;

typedef struct nd_txn nd_txn;
typedef struct nd_snapwait nd_snapwait;
typedef struct nd_prepared nd_prepared;
typedef struct nd_vote nd_vote;
typedef struct nd_delivery nd_delivery;
typedef struct nd_local nd_local;
typedef struct nd_read_timer nd_read_timer;
typedef struct nd_deferred nd_deferred;

/* A replica's state, grouped by the module that owns it (see docs/architecture.md, "Nodes"):
 * identity and the tablet at the top, then one sub-struct per subsystem. */

/* Replication (nd_replica.c, nd_loop.c): driving the core. */
typedef struct nd_group_rep {
    uint64_t persist_seq;                  /* > 0: report PX_EV_PERSISTED after the next sync */
    int in_batch;                          /* handling an action batch of this core (nd_step) */
    nd_deferred *deferred, *deferred_tail; /* proposals made meanwhile */
    bool want_snapshot;
    uint64_t snapshot_slot;
    px_state last_state; /* to count lease changes */
} nd_group_rep;

/* Leadership of this term (nd_loop.c, nd_chain.c, nd_txn.c, nd_read.c). */
typedef struct nd_group_lead {
    uint32_t inflight;    /* leader: its transactional proposals not yet applied */
    int64_t last_propose; /* monotonic ns of the last proposal from this leader */
    bool meta_checked;    /* meta group leader: cluster records checked/written */
    /* A new leader serves only once a SAFE record it proposed in this term has
     * been applied: every value a predecessor may still get chosen (phase-1
     * recovery can grow as late promises arrive) is then applied or, stamped
     * below it, voided. seq names that record (its proposal sequence). */
    uint64_t seq;
    bool ready;
    int64_t asked; /* monotonic ns of the last such proposal */
} nd_group_lead;

/* Transactions and two-phase commit (nd_txn.c, nd_txn_apply.c, nd_2pc.c). */
typedef struct nd_group_txn {
    tl_table *locks;         /* leader only: the lock table */
    nd_txn *txns;            /* leader: transactions known here */
    nd_prepared *prepared;   /* every replica: prepared, undecided transactions (from the log) */
    bool prepared_locked;    /* leader: their locks are taken in this term's lock table */
    nd_vote *votes;          /* coordinator leader: votes that came before the client's commit */
    nd_delivery *delivering; /* coordinator leader: commit decisions not yet acknowledged */
    /* Counters since the node started (status: "txn"): what contention cost this group. */
    uint64_t queries;         /* participant leader: questions asked to a coordinator */
    uint64_t late_aborts;     /* participant leader: aborts that came while PREPARE was in flight */
    uint64_t pushes;          /* leader: wounds sent to a prepared lock holder's coordinator */
    uint64_t pushed;          /* coordinator leader: transactions aborted by such a wound */
    uint64_t push_waits;      /* coordinator leader: pushes that waited for a voting one */
    uint64_t notices;         /* leader: clients told of a wound at once (TxnNotice) */
    uint64_t wait_timeouts;   /* leader: parked reads answered "lock wait timeout" */
    uint64_t deadline_aborts; /* leader (coordinator): commits aborted for their commit_before */
} nd_group_txn;

/* Snapshot reads and safe time (nd_read.c). */
typedef struct nd_group_read {
    nd_snapwait *snapwaits;  /* reads waiting for safe time */
    int64_t safe_ts;         /* largest applied timestamp */
    uint64_t last_data_slot; /* the last applied slot holding transactional records */
    int64_t grant_ts;        /* follower: the leader promised no write at or below it ... */
    uint64_t grant_slot;     /* ... after this slot (ND_MSG_SAFE_GRANT) */
    int64_t safe_asked;      /* follower: when it last asked the leader for safe time */
    nd_read_timer *timer;    /* reads waiting for TT.after(s_read) */
} nd_group_read;

/* Collecting (nd_gc.c): decision rows through the log, and MVCC versions. */
typedef struct nd_group_gc {
    uint64_t decisions;     /* every replica: decision rows in the store (live ones) */
    uint64_t forgotten;     /* every replica: decision rows collected since it started */
    uint64_t forget_cursor; /* coordinator leader: the next txn id its collection looks at */
    int64_t last_forget;    /* coordinator leader: monotonic ns of its last collection step */
    /* Coordinator leader: decisions every participant acknowledged again after the
     * retention (collected by the next step). */
    uint64_t *forget_ready;
    size_t nforget_ready, cap_forget_ready;
    int64_t last_mvcc; /* monotonic ns of the last MVCC garbage collection step */
    bool mvcc_busy;    /* the last MVCC GC step stopped inside a pass: go on soon */
} nd_group_gc;

/* Splitting (nd_split.c), leader only. */
typedef struct nd_group_split {
    int state;          /* ND_SPLIT_* */
    nd_bytes key;       /* where the tablet splits (p NULL: not chosen) */
    uint64_t child;     /* the new group, numbered by the meta group */
    int64_t since;      /* monotonic ns the state began */
    int64_t sent;       /* monotonic ns of the last request to the meta group */
    int64_t next;       /* monotonic ns of the next size check */
    uint64_t sys_bytes; /* the system keys' bytes when last counted */
    uint64_t alloc_txn; /* meta group leader: its numbering transaction in flight */
} nd_group_split;

typedef struct nd_group {
    uint64_t id;
    px_config config;
    px_node *px;
    nd_chain sm;
    mv_store *mv; /* the tablet: MVCC store of this replica, DATA/g<id>.mv */
    /* The keys this group holds: [start, end), an empty end = +infinity (the meta group's is
     * ["", ND_META_END)); has_range is false only for a group the map does not know. */
    bool has_range;
    nd_bytes range_start, range_end;
    nd_group_rep rep;
    nd_group_lead lead;
    nd_group_txn txn;
    nd_group_read read;
    nd_group_gc gc;
    nd_group_split split;
} nd_group;

enum {
    ND_SPLIT_IDLE = 0,
    ND_SPLIT_ALLOC,    /* asked the meta group for the child's id */
    ND_SPLIT_BARRIER,  /* no new transactions; waiting for the running ones to end */
    ND_SPLIT_PROPOSED, /* the SPLIT record is proposed */
};

/* A split copies half the tablet on every replica inside the apply (about 1.6 s for 52 MB,
 * bench-mvcc), stalling the node's loop: small enough to stay well inside a 2 s lease. */
#define ND_DEFAULT_SPLIT_BYTES (32LL * 1024 * 1024)

/* One entry of the cluster's range map (every data group, hosted here or not). */
typedef struct nd_range {
    uint64_t group;
    nd_bytes start, end; /* an empty end = +infinity */
    px_config replicas;
    int64_t floor_ts; /* split off another group at this timestamp (0: not) */
    uint64_t parent;  /* the group it was split off (0: none) */
    bool absent;      /* a replica here, but this node missed the split (it caught up on
                       * the parent by snapshot): no copy of its data, so not started */
} nd_range;

typedef struct nd_stats {
    uint64_t proposals, proposals_failed, fsyncs, lease_acquired, lease_lost, px_in, px_out;
    uint64_t malformed, refused;
    nd_hist proposal_latency, fsync_latency;
} nd_stats;

/* A node of the cluster being initialized, as its INFO and BOOTSTRAP answers left it. */
typedef struct nd_init_node {
    char addr[128], zone[64], region[64];
    bool answered, initialized, bootstrapped;
    uint32_t proto_version;
    char error[256];
} nd_init_node;

/* Encoded px messages waiting for the next sync, per destination node. */
typedef struct nd_outq {
    uint8_t *buf;
    size_t len, cap;
    uint32_t count;
} nd_outq;

struct nd_node {
    uv_loop_t *loop;
    char *data_dir, *listen, *advertise, *zone, *region, *join, *clock_spec;
    int64_t lease_ns;
    int64_t retention_ns;
    int64_t decision_retention_ns;
    int64_t split_bytes;
    px_config meta_replicas;
    tt_clock *clock;
    ls_store *store;
    net_tls_ctx *tls;
    net_transport *tr;

    bool initialized;
    char cluster_id[64];
    px_node_id self;
    nd_peer peers[PX_MAX_NODE_ID + 1]; /* by id; id 0 unused */
    nd_group **groups;                 /* by increasing id; each group at a fixed address */
    size_t ngroups;
    nd_range *ranges; /* sorted by start */
    size_t nranges;

    nd_outq out[PX_MAX_NODE_ID + 1];
    bool dirty;
    bool fatal;

    nd_pending *pending;
    size_t npending, cap_pending;
    uint64_t next_seq;

    /* an INIT in progress (nd_cluster.c) */
    net_reply_to init_reply;
    bool init_running;
    size_t init_waiting;
    nd_init_node *init_nodes; /* this node first, then the --join list */
    size_t ninit_nodes;
    int init_data_groups;
    int init_replicas;
    ProtobufCBinaryData *init_split; /* the data groups' boundaries: data_groups - 1 increasing
                                      * keys (each malloc'd) */

    nd_local *local, *local_tail; /* 2PC messages to groups hosted here, run from flush */
    int64_t last_ping;
    int64_t last_tick;       /* monotonic ns of the last tick: a late one says the loop was busy */
    uint64_t partitioned;    /* test-only: bit i set = drop Paxos frames to and from node i */
    int64_t hold_prepare_ns; /* test-only: PREPARE records are proposed this late (nd_txn.c) */
    int64_t voting_grace_ns; /* test-only: ND_VOTING_GRACE instead when 0 (nd_2pc.c) */
    nd_stats stats;
    nd_test_switches test; /* read once at open (nd_test.h) */
    nd_http *http;

    uv_timer_t tick;
    uv_prepare_t prep;
    uv_check_t check;
    int handles_open;
    bool closing;
    void (*on_closed)(void *);
    void *closed_ud;
};

static inline uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Short names for the common codec (common/mr_codec.h, big-endian), used throughout the node's
 * records and messages. */
static inline void put32(uint8_t *p, uint32_t v)
{
    mr_put_u32(p, v);
}

static inline void put64(uint8_t *p, uint64_t v)
{
    mr_put_u64(p, v);
}

static inline uint32_t get32(const uint8_t *p)
{
    return mr_get_u32(p);
}

static inline uint64_t get64(const uint8_t *p)
{
    return mr_get_u64(p);
}

/* Replies (nd_dispatch.c). Every reply is a Reply (proto/meridian.proto): an Error or a body.
 * One is encoded when it is made (a reply may be held, e.g. until a read's timestamp has
 * passed) and sent later; nothing encoded ever exceeds nd_reply_max(): a reply over it
 * becomes Error{TOO_LARGE}. */
typedef struct nd_enc {
    uint8_t *buf; /* malloc'd; NULL only when even an error could not be encoded */
    size_t len;
} nd_enc;

/* r encoded (never over nd_reply_max: TOO_LARGE instead). */
nd_enc nd_enc_reply(const Meridian__Reply *r);
/* An error reply: leader (a "host:port" hint, "" for unknown) and owner are set when
 * non-NULL / non-zero. */
nd_enc nd_enc_error(Meridian__ErrorCode code, const char *msg, bool retryable, const char *leader,
                    uint64_t owner);
/* A reply with only a body: body_case and the body (a message borrowed for the call). */
nd_enc nd_enc_body(Meridian__Reply__BodyCase body_case, const ProtobufCMessage *body);
/* Sends e (consumed) as the answer to `to`. */
void nd_send_reply(nd_node *n, net_reply_to to, nd_enc e);
/* Frees an encoded reply that will not be sent. */
static inline void nd_enc_free(nd_enc e)
{
    free(e.buf);
}
void nd_reply(nd_node *n, net_reply_to to, const Meridian__Reply *r);
void nd_reply_body(nd_node *n, net_reply_to to, Meridian__Reply__BodyCase body_case,
                   const ProtobufCMessage *body);
void nd_reply_error(nd_node *n, net_reply_to to, Meridian__ErrorCode code, const char *msg);
/* An Ack: done. */
void nd_reply_ack(nd_node *n, net_reply_to to);
/* The largest reply: the frame limit (the test switch MERIDIAN_TEST_REPLY_MAX lowers it). */
uint32_t nd_reply_max(void);
/* The error code for a store's MR_* code (MR_ESTALE: stale, MR_ENOMEM, else internal). */
Meridian__ErrorCode nd_code_of_mr(int mr);
/* Decodes a client request m as its type's message into a; NULL when it is not one (the
 * caller answers Error{INVALID} with err). */
const ProtobufCMessage *nd_request_decode(const net_message *m, pr_arena *a, mr_err *err);

/* A peer message found malformed: counted (stats.malformed) and logged with why. */
void nd_peer_malformed(nd_node *n, const net_message *m, const mr_err *why);
/* Decodes the node-to-node message m as its type's schema message into a
 * (nd_peer_decode); NULL when it is not one, counted and logged
 * (nd_peer_malformed). The caller frees a either way. */
const ProtobufCMessage *nd_peer_receive(nd_node *n, const net_message *m, pr_arena *a);
nd_group *nd_find_group(nd_node *n, uint64_t id);
/* Is key (klen bytes) inside g's range? Always false for the meta group. */
bool nd_in_range(const nd_group *g, const void *key, size_t klen);
/* Is key strictly inside [start, end) (an empty end = +infinity), so that a split
 * there leaves keys on both sides? */
bool nd_key_splits(const nd_bytes *start, const nd_bytes *end, const void *key, size_t klen);
/* A replica that cannot go on (a persist failed, its log cannot be followed):
 * logs why and stops the node, losing only what was not durable. */
void nd_fatal(nd_node *n, const char *what, const mr_err *err);
/* The group whose range holds key, or 0. */
uint64_t nd_group_of_key(const nd_node *n, const void *key, size_t klen);
/* Is the broken protocol variant b switched on for this node (nd_test.h)? */
static inline bool nd_test_break(const nd_node *n, nd_break b)
{
    return (n->test.breaks & b) != 0;
}
int nd_step(nd_node *n, nd_group *g, const px_event *ev, mr_err *err);
/* Proposes [node][seq][kind][body] to g's core (the one place proposals are
 * framed; seq 0 = nobody waits on it by sequence). Records the time for the
 * idle safe-time cadence. */
int nd_propose_raw(nd_node *n, nd_group *g, uint64_t seq, uint8_t kind, const uint8_t *body,
                   size_t blen, mr_err *err);
/* Proposes [node][seq][kind][body]; the client is answered when it applies. */
void nd_propose_op(nd_node *n, const net_message *m, uint64_t gid, uint8_t kind,
                   const uint8_t *body, size_t blen);

/* Records a split in DATA/cluster.json and the range map (nd_cluster.c). */
int nd_cluster_record_split(nd_node *n, uint64_t parent, const void *key, size_t klen,
                            uint64_t child, int64_t floor, bool absent, mr_err *err);
/* The replicas of group gid (data or meta), or NULL. */
const px_config *nd_group_replicas(const nd_node *n, uint64_t gid);

/* nd_dispatch.c */
/* The transport's message callback: checks who may send the type, routes it. */
void nd_dispatch(net_transport *t, const net_message *m, void *ud);
/* Lowers nd_reply_max (the test switch MERIDIAN_TEST_REPLY_MAX, read at open). */
void nd_reply_set_max(uint32_t max);

/* nd_loop.c */
/* Queues m for node `to` until the next flush (dropped if it cannot be queued). */
void nd_queue_send(nd_node *n, px_node_id to, const px_msg *m);
/* Makes staged persists durable (one fsync for every group), tells each core,
 * then sends the queued messages: one frame per peer. */
void nd_flush(nd_node *n);
/* Starts the tick, and the flushes before and after each poll for I/O. */
void nd_loop_start(nd_node *n, uv_loop_t *loop);

/* nd_replica.c */
/* Starts this node's replica of group gid. floor: the group was split off
 * another at that timestamp, and every timestamp it assigns exceeds it. */
int nd_start_group(nd_node *n, uint64_t gid, const px_config *config, int64_t floor, mr_err *err);
/* Starts the replicas the range map gives this node but it does not run yet
 * (groups split off a parent here): from the loop, never inside an apply. */
void nd_start_new_groups(nd_node *n);
/* Frees the proposals g deferred while handling a batch. */
void nd_free_deferred(nd_group *g);
/* ND_MSG_PX: a peer's bundle of Paxos messages, stepped into their cores. */
void nd_on_px(nd_node *n, const net_message *m);

/* nd_chain.c */
/* Applies one chosen entry of g (chain, register, or tablet records). */
void nd_chain_apply(nd_node *n, nd_group *g, const px_entry *e);
/* An entry of g was voided (applied as a no-op). */
void nd_chain_void(nd_node *n, nd_group *g, const px_entry *e);
/* g's state machine as one snapshot buffer (the caller frees it), or NULL. */
uint8_t *nd_chain_snapshot(nd_node *n, const nd_group *g, uint32_t *len);
/* Replaces g's state machine with a snapshot. */
int nd_chain_install(nd_node *n, nd_group *g, const uint8_t *snap, uint32_t len);
/* ND_MSG_PROPOSE: an opaque proposal. */
void nd_chain_on_propose(nd_node *n, const net_message *m);
/* ND_MSG_REGISTER: a register operation through the log. */
void nd_chain_on_register(nd_node *n, const net_message *m);

/* nd_range.c */
/* A group's replicas from a JSON array of node ids. */
int nd_config_from_json(json_t *arr, px_config *c, mr_err *err);
/* A key (or range bound) as DATA/cluster.json and the meta group's records keep it: a string
 * of hex digits (a new reference; NULL when out of memory). */
json_t *nd_key_json(const void *p, size_t len);
/* Reads such a key into out. MR_EINVAL when v is not one, MR_ENOMEM. */
int nd_key_from_json(const json_t *v, nd_bytes *out);
/* (Re)loads the range map from the cluster description's groups. */
int nd_range_load(nd_node *n, json_t *groups, mr_err *err);
void nd_range_free(nd_node *n);
/* ND_MSG_RANGES: the range map for clients. */
void nd_range_on_request(nd_node *n, const net_message *m);

/* nd_cluster.c */
/* Loads the cluster description (DATA/cluster.json) and starts the replicas. */
int nd_cluster_load(nd_node *n, json_t *desc, mr_err *err);
/* ND_MSG_INIT: bootstrap the cluster of the --join list (meridian init). */
void nd_cluster_on_init(nd_node *n, const net_message *m);
/* Frees the state of an INIT (done or abandoned). */
void nd_cluster_init_free(nd_node *n);
/* ND_MSG_BOOTSTRAP: become a member of the cluster described. */
void nd_cluster_on_bootstrap(nd_node *n, const net_message *m);

/* nd_status.c */
json_t *nd_status_json(nd_node *n);
/* ND_MSG_STATUS: the status document in a StatusReply. */
void nd_status_on_request(nd_node *n, const net_message *m);
/* The HTTP handler: /metrics and /healthz. */
int nd_status_http(void *ud, const char *path, nd_text *t, const char **ctype);

/* nd_fault.c */
/* ND_MSG_FAULT: test-only clock and partition faults. */
void nd_fault_on_request(nd_node *n, const net_message *m);

/* nd_split.c */
void nd_split_tick(nd_node *n, nd_group *g);
/* A SPLIT record (the whole proposal) applied at the end of slot at ts. */
void nd_split_apply(nd_node *n, nd_group *g, uint64_t slot, int64_t ts, const uint8_t *p,
                    uint32_t len);
/* This node's SPLIT proposal was voided. */
void nd_split_voided(nd_node *n, nd_group *g);
void nd_split_on_message(nd_node *n, const net_message *m);
/* ND_MSG_SPLIT_AT: split where asked. */
void nd_split_on_request(nd_node *n, const net_message *m);
/* Leadership ended: forget a split in progress (the next leader starts over). */
void nd_split_reset(nd_group *g);

/* The transaction modules (nd_txn.c, nd_txn_apply.c, nd_2pc.c, nd_read.c, nd_gc.c; their
 * shared internals are in nd_txn_int.h). */
/* Leads with a valid lease, and has applied its predecessors' log. */
bool nd_txn_leads(nd_node *n, nd_group *g);
/* Does the leader know transaction id (open, committing, prepared)? */
bool nd_txn_known(nd_group *g, uint64_t id);
/* Aborts every transaction not yet past its point of no return (retryable). */
void nd_txn_abort_open(nd_node *n, nd_group *g, const char *why);
/* Commits the writes w[nw] (copied) at the leader of g as the internal transaction `id` (the
 * oldest there is: never wounded). */
int nd_txn_system_write(nd_node *n, nd_group *g, uint64_t id, const mv_write *w, size_t nw);
/* One-way node-to-node message m (the schema message of `type`, nd_peer.h;
 * borrowed) to every replica of group gid (only its leader acts). */
void nd_send_to_group(nd_node *n, uint64_t gid, uint8_t type, const ProtobufCMessage *m);
int nd_txn_group_open(nd_node *n, nd_group *g, mr_err *err);
void nd_txn_group_close(nd_node *n, nd_group *g);
/* A chosen DATA slot at ts with its transactional records (each [u8 kind][body],
 * nd_op_is_txn(kind); every body starts with the u64 transaction id). */
void nd_txn_apply_slot(nd_node *n, nd_group *g, uint64_t slot, int64_t ts, const uint8_t **recs,
                       const uint32_t *lens, size_t nrec);
/* A transactional record of txn `id` was voided (applied as a no-op). */
void nd_txn_voided(nd_node *n, nd_group *g, uint8_t kind, uint64_t id);
/* The MVCC store was replaced by a snapshot: reload what nd_txn keeps from it. */
void nd_txn_reloaded(nd_node *n, nd_group *g);
/* Node-to-node two-phase commit messages (PREPARED, DECISION, TXN_QUERY). */
void nd_txn_on_2pc(nd_node *n, const net_message *m);
/* Delivers the queued 2PC messages addressed to this node; true if any ran. */
bool nd_txn_run_local(nd_node *n);
void nd_txn_free_local(nd_node *n);
/* Prepared, undecided transactions of g (status). */
size_t nd_txn_prepared_count(const nd_group *g);
/* The store's transaction records for status: decisions (live decision rows), forgotten
 * (collected here since start), system_versions and system_bytes (every version of a system
 * key, tombstones included), pages and free_pages (the SQLite file). */
void nd_txn_store_json(nd_group *g, json_t *ge);
/* The same as gauges per group for /metrics. */
void nd_txn_store_metrics(nd_node *n, nd_text *t);
/* After a batch of applies: serve reads whose safe time has come. */
void nd_txn_applied(nd_node *n, nd_group *g);
void nd_txn_tick(nd_node *n, nd_group *g);
void nd_txn_leadership_lost(nd_node *n, nd_group *g);
void nd_txn_on_message(nd_node *n, const net_message *m);
/* A follower's one-way request for a SAFE record (ND_MSG_SAFE_REQ). */
void nd_txn_on_safe_request(nd_node *n, const net_message *m);
/* The leader's answer: a timestamp promise (ND_MSG_SAFE_GRANT). */
void nd_txn_on_safe_grant(nd_node *n, const net_message *m);

#endif
