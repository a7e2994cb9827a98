/* What a client may ask of a node, checked in one place before anything touches the lock table
 * or the log (issue 16, "acknowledged means stored"): a record the node proposes must be one
 * every replica can apply, and no request may reach into the node's own transactions, stamp a
 * leader's timestamps ahead of its clock, or take an age no real transaction has.
 *
 * Pure functions over decoded requests (proto/meridian.proto; the schema fixes each field's
 * type, these check what it cannot: ranges, keys, the fields an op needs) and numbers: the
 * node's state and clock come in as arguments. Each returns 0 or MR_EINVAL with a message a
 * client can act on; the node answers Error{INVALID, message}. The limits are part of the wire
 * protocol (nd.h). The request structs borrow from the decoded message. */
#ifndef ND_VALIDATE_H
#define ND_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/mr_err.h"
#include "proto/pr.h"
#include "tablet/node/nd.h" /* the limits: ND_TXN_CLIENT_MAX, ND_PRIO_WINDOW, ... */

/* A client key: 1..ND_KEY_MAX bytes whose first is not 0 (keys starting with 0 are the
 * cluster's own: the tablets' system records, nd.h). */
int nd_valid_key(const void *key, size_t len, mr_err *err);
/* A value (or register value, or proposal): 0..ND_VALUE_MAX bytes. */
int nd_valid_value(size_t len, mr_err *err);
/* Is id a transaction id a client may use? */
bool nd_txn_id_client(uint64_t id);
/* A wound-wait priority within ND_PRIO_WINDOW of now_ns (the node's clock). */
int nd_valid_prio(int64_t prio, int64_t now_ns, mr_err *err);
/* A read timestamp: >= 0 and at most ND_READ_AHEAD_MAX past now_latest. */
int nd_valid_read_ts(int64_t ts, int64_t now_latest, mr_err *err);

typedef enum { ND_TXN_READ = 1, ND_TXN_COMMIT, ND_TXN_ABORT, ND_TXN_STATUS } nd_txn_op;

/* An ND_MSG_TXN request, checked. */
typedef struct nd_txn_req {
    uint64_t group, txn;
    int64_t prio; /* status: 0 when absent (it has no use there) */
    nd_txn_op op;
    /* read: the key, or where a scan starts (klen 0 = the range's start) */
    const uint8_t *key;
    size_t klen;
    bool scan;          /* read: a scan of [key, end) under a range lock */
    const uint8_t *end; /* scan: its end (elen 0 = unbounded) */
    size_t elen;
    uint64_t limit;   /* scan: rows at most */
    uint32_t wait_ms; /* read: how long the client waits (0: not said) */
    bool for_update;  /* read: under an exclusive lock */
    /* commit: the writes (each checked), borrowed from the request */
    Meridian__Write *const *writes;
    size_t nwrites;
    uint32_t nreads;
    uint64_t coordinator;         /* commit: 0 = none */
    const uint64_t *participants; /* commit: group ids (>= 1), at most CO_MAX_PARTS */
    size_t nparts;
    int64_t commit_before; /* commit: the commit timestamp must be below it (0 = no limit) */
} nd_txn_req;

/* Checks every field of an ND_MSG_TXN request: the op known, the id outside the reserved
 * ranges, the priority against the node's clock (now_ns), keys and values. */
int nd_valid_txn(const Meridian__TxnRequest *m, int64_t now_ns, nd_txn_req *out, mr_err *err);

typedef enum { ND_READ_STRONG = 0, ND_READ_AT, ND_READ_EXACT, ND_READ_BOUNDED } nd_read_mode;

/* An ND_MSG_SNAPREAD request, checked (the timestamp against the clock is left to
 * nd_valid_read_ts, once the node knows it). A read is a scan when it has an end, the scan
 * flag or a limit. */
typedef struct nd_snap_req {
    uint64_t group;
    const uint8_t *key; /* klen 0 only for a scan: from the range's start */
    size_t klen;
    const uint8_t *end; /* a scan's end; elen 0: to the range's end */
    size_t elen;
    uint64_t limit; /* 0: a point read; else a scan of at most this many rows */
    nd_read_mode mode;
    int64_t ts;        /* ND_READ_AT */
    int64_t staleness; /* ND_READ_EXACT, ND_READ_BOUNDED */
    /* a read of the cluster's own records: its keys may start with byte 0 (whether the
     * sender may ask, a node certificate at the meta group, is the node's to check) */
    bool system;
} nd_snap_req;

int nd_valid_snapread(const Meridian__SnapReadRequest *m, nd_snap_req *out, mr_err *err);

/* ND_MSG_REGISTER: {group, op: read | write (value) | cas (expected, value)}. */
int nd_valid_register(const Meridian__RegisterRequest *m, mr_err *err);

/* ND_MSG_PROPOSE: a group id >= 1 and at most ND_VALUE_MAX bytes. */
int nd_valid_propose(const Meridian__ProposeRequest *m, mr_err *err);

/* ND_MSG_INIT: {data_groups?: 1..max_groups (default 1), replicas?: 1..max_replicas (default
 * 3), split_at?: data_groups - 1 client keys above ND_META_END, strictly increasing}. split_at
 * borrows from m (nsplit 0 when absent). */
typedef struct nd_init_req {
    int data_groups, replicas;
    const ProtobufCBinaryData *split_at;
    size_t nsplit;
} nd_init_req;

int nd_valid_init(const Meridian__InitRequest *m, int max_groups, int max_replicas,
                  nd_init_req *out, mr_err *err);

/* ND_MSG_SPLIT_AT: {key}, a client key. */
int nd_valid_split_at(const Meridian__SplitAtRequest *m, mr_err *err);

/* ND_MSG_FAULT: partition node ids in 1..PX_MAX_NODE_ID. */
int nd_valid_fault(const Meridian__FaultRequest *m, mr_err *err);

#endif
