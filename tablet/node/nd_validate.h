/* What a client may ask of a node, checked in one place before anything touches the lock table
 * or the log (issue 16, "acknowledged means stored"): a record the node proposes must be one
 * every replica can apply, and no request may reach into the node's own transactions, stamp a
 * leader's timestamps ahead of its clock, or take an age no real transaction has.
 *
 * Pure functions over parsed JSON (jansson) and numbers: the node's state and clock come in as
 * arguments. Each returns 0 or MR_EINVAL with a message a client can act on; the node answers
 * {ok: false, error: "invalid", message}. The limits are part of the wire protocol (nd.h). */
#ifndef ND_VALIDATE_H
#define ND_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/mr_err.h"
#include "tablet/node/nd.h" /* the limits: ND_TXN_CLIENT_MAX, ND_PRIO_WINDOW, ... */

/* A client key: 1..MV_MAX_KEY bytes of UTF-8 without NUL (keys starting with NUL are the
 * tablet's system records). */
int nd_valid_key(const void *key, size_t len, mr_err *err);
/* A value (or register value): 0..MV_MAX_VALUE bytes. */
int nd_valid_value(size_t len, mr_err *err);
/* Is id a transaction id a client may use? */
bool nd_txn_id_client(uint64_t id);
/* A wound-wait priority within ND_PRIO_WINDOW of now_ns (the node's clock). */
int nd_valid_prio(int64_t prio, int64_t now_ns, mr_err *err);
/* A read timestamp: >= 0 and at most ND_READ_AHEAD_MAX past now_latest. */
int nd_valid_read_ts(int64_t ts, int64_t now_latest, mr_err *err);

typedef enum { ND_TXN_READ = 1, ND_TXN_COMMIT, ND_TXN_ABORT, ND_TXN_STATUS } nd_txn_op;

/* An ND_MSG_TXN request, checked. Strings and arrays borrow from the JSON object. */
typedef struct nd_txn_req {
    uint64_t group, txn;
    int64_t prio; /* status: 0 when absent (it has no use there) */
    nd_txn_op op;
    const char *key; /* read: the key, or where a scan starts ("" = the range's start) */
    size_t klen;
    const char *end; /* read: NULL for a point read, else the scan's end ("" = unbounded) */
    uint64_t limit;  /* read with end: rows at most */
    json_t *writes;  /* commit: [{key, value} | {key, delete: true}], each checked */
    uint32_t nreads;
    uint64_t coordinator; /* commit: 0 = none */
    json_t *participants; /* commit: NULL, or group ids (>= 1), at most CO_MAX_PARTS */
} nd_txn_req;

/* Checks every field of an ND_MSG_TXN request: exact JSON types, the id outside the reserved
 * ranges, the priority against the node's clock (now_ns), keys and values. */
int nd_valid_txn(json_t *o, int64_t now_ns, nd_txn_req *out, mr_err *err);

typedef enum { ND_READ_STRONG = 0, ND_READ_AT, ND_READ_EXACT, ND_READ_BOUNDED } nd_read_mode;

/* An ND_MSG_SNAPREAD request, checked (the timestamp against the clock is left to
 * nd_valid_read_ts, once the node knows it). */
typedef struct nd_snap_req {
    uint64_t group;
    const char *key; /* "" only for a scan: from the range's start */
    size_t klen;
    const char *end; /* NULL: to the range's end (a scan with a limit) or a point read */
    uint64_t limit;  /* 0: a point read; else a scan of at most this many rows */
    nd_read_mode mode;
    int64_t ts;        /* ND_READ_AT */
    int64_t staleness; /* ND_READ_EXACT, ND_READ_BOUNDED */
} nd_snap_req;

int nd_valid_snapread(json_t *o, nd_snap_req *out, mr_err *err);

/* ND_MSG_REGISTER: {group, op: read | write (value) | cas (expected, value)}. */
typedef struct nd_reg_req {
    uint64_t group;
    const char *op;
    json_t *value, *expected; /* borrowed; NULL when the op takes none */
} nd_reg_req;

int nd_valid_register(json_t *o, nd_reg_req *out, mr_err *err);

/* ND_MSG_PROPOSE: [u64 group][bytes]: a group id >= 1 and at most MV_MAX_VALUE bytes. */
int nd_valid_propose(const uint8_t *p, size_t len, uint64_t *group, mr_err *err);

/* ND_MSG_INIT: {data_groups?: 1..max_groups (default 1), replicas?: 1..max_replicas (default
 * 3), split_at?: data_groups - 1 client keys, strictly increasing}. split_at borrows from o
 * (NULL when absent). */
typedef struct nd_init_req {
    int data_groups, replicas;
    json_t *split_at;
} nd_init_req;

int nd_valid_init(json_t *o, int max_groups, int max_replicas, nd_init_req *out, mr_err *err);

/* ND_MSG_SPLIT_AT: {key}, a client key. *key borrows from o. */
int nd_valid_split_at(json_t *o, const char **key, mr_err *err);

#endif
