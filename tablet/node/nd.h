/* A Meridian node: hosts many Paxos group replicas on one libuv loop, with
 * one SQLite log store for all of them (one fsync covers every group's
 * persists of a loop iteration), one transport connection per peer node
 * (every group's messages to that peer travel in one frame per iteration, so
 * heartbeats and lease renewals are batched per node pair), and a TrueTime
 * clock whose health gates leadership.
 *
 * Cluster formation: every node starts with the same --join list; `meridian
 * init` asks one node to bootstrap: it collects every listed node's address,
 * zone and region, numbers them, and sends each the cluster description
 * (cluster id, nodes, the meta group and the first data group), which each
 * node writes to DATA/cluster.json before it starts its replicas. A node
 * that already has a cluster.json refuses to bootstrap again.
 *
 * The replicated state machine of a group is, for this stage, a chain: the
 * count of applied proposals, the last timestamp and a running hash of every
 * proposal in order, so replicas can be compared byte for byte (status). The
 * tablet's MVCC store replaces it in the next stage. */
#ifndef ND_H
#define ND_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/mr_err.h"

/* Message types on the transport (net_message.type): the schema's MsgType
 * (proto/meridian.proto; nd_peer.c checks every value at compile time).
 * Node-to-node messages are the schema's, encoded by protobuf-c (nd_peer.h):
 * PX, BOOTSTRAP, SAFE_REQ, SAFE_GRANT, PREPARED, DECISION, TXN_QUERY, SPLIT;
 * the fields named below are those messages' fields. Senders fill the
 * generated structs and receivers read the decoded ones (no JSON between). Client-facing requests
 * and every reply are still JSON, as described here; they move to the schema
 * next (issue 17). */
enum {
    ND_MSG_PX = 1,          /* one-way, node to node: PxBundle {from, clock_status, epsilon_ns,
                             * msgs: px_msg encodings} */
    ND_MSG_INFO = 10,       /* request: {} -> {addr, zone, region, initialized, cluster} */
    ND_MSG_INIT = 12,       /* request from `meridian init`: {} -> {ok, cluster, nodes} */
    ND_MSG_BOOTSTRAP = 14,  /* request, node to node: ClusterDescription {cluster, nodes, groups,
                             * self} -> {ok} (JSON) */
    ND_MSG_PROPOSE = 16,    /* request: [u64 group][bytes] -> {ok, slot, ts} | {error, leader} */
    ND_MSG_STATUS = 18,     /* request: {} -> status JSON */
    ND_MSG_REPLY = 20,      /* every reply: JSON */
    ND_MSG_REGISTER = 24,   /* request: {group, op: read|write|cas, value?, expected?} ->
                             * {ok, slot, ts, value? | cas?} once applied (a linearizable
                             * register per group, for the consistency harness) */
    ND_MSG_TXN = 26,        /* request at the group's leader, see "Transactions" below */
    ND_MSG_SNAPREAD = 28,   /* request: {group, key, end?, limit?, ts? | max_staleness_ns? |
                             * exact_staleness_ns?} at any replica, lock-free */
    ND_MSG_SAFE_GRANT = 40, /* one-way, leader to follower: SafeGrant {group, ts, slot}: no
                             * write will be stamped at or below ts after slot */
    ND_MSG_SAFE_REQ = 30,   /* one-way, node to node: SafeRequest {group, node}: a follower
                             * with a strong read waiting asks the leader for a SAFE_GRANT */
    ND_MSG_RANGES = 32,     /* request at any node: {} -> the range map, see below */
    ND_MSG_PREPARED = 34,   /* one-way, participant leader -> every replica of the coordinator
                             * group: TwoPhase {txn, group: coordinator, from: participant group,
                             * ok, ts: prepare timestamp | message} */
    ND_MSG_DECISION = 36,   /* one-way, coordinator leader -> every replica of a participant
                             * group: TwoPhase {txn, group: participant, coord, commit, ts};
                             * and back,
                             * {txn, group: coordinator, from, ack: true} once logged */
    ND_MSG_TXN_QUERY = 38,  /* one-way, participant leader -> coordinator replicas: TwoPhase
                             * {txn, group, from, ts}: a prepared transaction waited too long
                             * for its decision */
    ND_MSG_SPLIT = 42,      /* one-way, node to node, tablet splits (nd_split.c): Split {op: alloc,
                             * group, start, end, key} parent leader -> meta group replicas;
                             * {op: allocated, group, start, end, key, child} back to the
                             * parent's replicas; {op: notice, group, key, child, floor_ts}
                             * parent leader -> nodes without a replica of it */
    ND_MSG_SPLIT_AT = 44,   /* request, any node: {key} -> {ok, group, key} once the leader of
                             * the group holding key has begun splitting it there (the new
                             * range shows in ND_MSG_RANGES when done; a leader that loses its
                             * lease drops it: ask again); or {error: not_leader, leader},
                             * busy (a split in progress), boundary (the key already starts
                             * a range), invalid (not a key) */
    ND_MSG_FAULT = 22,      /* test-only request: {clock_offset_ns?, clock_unhealthy?,
                             * partition?: [node ids to cut off, both ways; [] heals]} -> state;
                             * refused unless the node runs with MERIDIAN_TEST_FAULTS=1 */
};

/* Transactions (ND_MSG_TXN, JSON; keys and values are UTF-8 strings for now).
 * Every request carries {group, txn: u63 id chosen by the client, unique,
 * prio: its start time in ns, older = smaller = wins under wound-wait}.
 *
 *   {op: "read", key, end?, limit?}   under shared locks at the leader, the latest
 *        committed version: {ok, found, value, version_ts} or with end (a scan of
 *        [key, end), a range lock on all of it): {ok, rows: [{key, value, version_ts}],
 *        more, resume?}, one page (see "Scans" below)
 *   {op: "commit", writes: [{key, value} | {key, delete: true}], nreads,
 *        coordinator?, participants?}
 *        nreads = reads this transaction made at this group (a commit whose read
 *        locks were lost to a leader change is aborted).
 *        One group: participants absent (or [group]) -> {ok, ts, group, commit_wait_ns}.
 *        Several groups (two-phase commit, Spanner 4.2.1): the client sends this to
 *        the leader of every group it read or wrote, each with that group's writes
 *        (possibly none), the same `coordinator` (one of them) and the same
 *        `participants` (every one of them, the coordinator included).
 *        The coordinator's leader answers the outcome: {ok: true, ts} once
 *        committed and commit wait is over, or {ok: false, error: "aborted"}.
 *        Other participants answer {ok: true, prepared: true, ts: prepare ts}
 *        once their PREPARE is logged, or {ok: false, error: "aborted"}; the
 *        client needs only the coordinator's answer.
 *   {op: "abort"}   releases what the transaction holds here: {ok}
 *   {op: "status"}  at the coordinator group's leader: {ok, state: "committed", ts}
 *        | {ok, state: "aborted"} | {ok, state: "pending"}; a transaction the
 *        coordinator never heard of is aborted for good first (so a client that
 *        got "unknown" learns the outcome). Decisions are kept for the node's
 *        --decision-retention R (default 10 min) and then collected: a question
 *        about a collected decision, or about an unknown transaction whose prio
 *        (its start time) is older than R/2 or missing, gets {ok: false, error:
 *        "forgotten"} (final: the outcome can no longer be told), never a guess.
 * Errors: {ok: false, error, message, retryable?, leader?}; error is one of
 *   not_leader (leader: "host:port" hint, may be ""), wrong_range (the key is
 *   not in this group's range: refresh the range map), aborted (retryable:
 *   wounded, leadership moved, ...), unknown (the outcome is not known here:
 *   ask with op "status"), busy, invalid, no_group.
 *
 * Scans (op read with end, and ND_MSG_SNAPREAD with end or limit) answer one page:
 * at most `limit` rows (default and cap ND_SCAN_ROWS) and about ND_SCAN_BYTES of
 * JSON (at least one row); more: true then says rows remain from `resume` (the
 * first key left out): ask again with key = resume (a snapshot read at the first
 * page's read_ts, so every page reads one snapshot; a transaction's range lock
 * already covers the rest). Any reply that would exceed the 16 MiB frame limit is
 * {ok: false, error: "too_large", message} instead.
 *
 * What a node accepts (nd_validate.h; anything else is answered {ok: false, error: "invalid",
 * message}, before it touches a lock or the log). JSON fields have exact types: a field that
 * is present with another type, or an integer out of its range, is invalid.
 *   txn    an integer in [1, ND_TXN_CLIENT_MAX], for every op: ids with bit 62 set are the
 *          cluster's own (ND_TXN_SYSTEM | group id: the meta group's cluster records;
 *          ND_TXN_SYSTEM | child << 1: its split numberings), and a client may not touch them.
 *   prio   read and commit: a start time in ns since the epoch within ND_PRIO_WINDOW of the
 *          node's clock (the node's own transactions are older than any client's); abort: an
 *          integer; status: none needed.
 *   keys   1..MV_MAX_KEY bytes of UTF-8 without NUL (keys that start with NUL are the
 *          tablet's system records); a scan may start at "" and its end, "" or a key above
 *          its start. values: at most MV_MAX_VALUE bytes.
 *   limit  1..ND_ROW_LIMIT_MAX rows; a scan without one returns at most ND_ROW_LIMIT_DEFAULT.
 * Snapshot reads (ND_MSG_SNAPREAD) take at most one of ts (>= 0), exact_staleness_ns and
 * max_staleness_ns (0..ND_STALENESS_MAX). A read at a ts ahead of the node's TT.now().latest
 * waits until that time has come (a leader promises no timestamp beyond its clock), and is
 * refused when more than ND_READ_AHEAD_MAX ahead.
 *
 * Range map (ND_MSG_RANGES, any node): {ok, ranges: [{start, end, group,
 * replicas: [node ids], leader: "host:port" or ""}], nodes: [{id, addr, zone,
 * region}]}. Ranges are sorted, contiguous and cover every key: the first
 * starts at "", end "" means +infinity. Group ND_META_GROUP (1) holds no user
 * keys. */

#define ND_SCAN_ROWS         10000
#define ND_SCAN_BYTES        (4u << 20)
#define ND_TXN_SYSTEM        (1ull << 62)
#define ND_TXN_CLIENT_MAX    (ND_TXN_SYSTEM - 1)
#define ND_PRIO_WINDOW       (3600LL * 1000000000LL)             /* 1 h */
#define ND_READ_AHEAD_MAX    (1000LL * 1000000LL)                /* 1 s */
#define ND_STALENESS_MAX     (10LL * 366 * 86400 * 1000000000LL) /* ten years */
#define ND_ROW_LIMIT_DEFAULT 1000
#define ND_ROW_LIMIT_MAX     100000

typedef struct nd_config {
    const char *data_dir;
    const char *listen;    /* "ip:port" */
    const char *advertise; /* "host:port" peers use; NULL = listen */
    const char *zone;
    const char *region;
    const char *join;      /* comma-separated "host:port" list of the initial nodes; may be NULL */
    const char *certs_dir; /* ca.crt, node.crt, node.key; NULL with insecure */
    bool insecure;
    const char *clock_spec;
    const char *http;     /* "ip:port" for /metrics and /healthz; NULL = none */
    int64_t lease_ns;     /* 0 = 2 s */
    int64_t retention_ns; /* MVCC versions kept for reads in the past; 0 = 1 h */
    int64_t clock_cap_ns; /* bound above which the clock is unhealthy; 0 = 10 ms */
    int64_t split_bytes;  /* a tablet past this many bytes splits; 0 = 32 MiB */
    /* Transaction decisions are kept this long after they were made (and, for a two-phase
     * commit, until every participant acknowledged), then collected; 0 = 10 min. See
     * ND_DEFAULT_DECISION_RETENTION in nd_int.h for what a status question gets afterwards. */
    int64_t decision_retention_ns;
} nd_config;

typedef struct nd_node nd_node;

/* Opens the data directory (recovering every replica it holds), starts the
 * clock, the store and the transport on `loop`. */
int nd_open(uv_loop_t *loop, const nd_config *cfg, nd_node **out, mr_err *err);

/* Stops: leaders abdicate (best effort), then every handle closes; on_closed
 * runs from the loop once the node is freed. */
void nd_close(nd_node *n, void (*on_closed)(void *ud), void *ud);

/* The port the transport listens on. */
int nd_port(const nd_node *n);

#endif
