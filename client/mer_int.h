/* libmeridian internals: the range map and routing (mer_route.c, pure), the
 * write buffer (mer_wbuf.c, pure), error mapping and backoff (mer_err.c,
 * mer_run.c, pure), and the connection's request engine (mer_conn.c: a
 * private libuv loop, a dial-only transport, batches of routed requests). */
#ifndef MER_INT_H
#define MER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/mr_err.h"
#include "meridian.h"
#include "net/tls.h"
#include "net/transport.h"
#include "proto/pr.h"
#include "proto/pr_msg.h"

#define MER_KEY_MAX   MERIDIAN_KEY_MAX
#define MER_VALUE_MAX MERIDIAN_VALUE_MAX
/* Rows asked for per scan request (the node's default page, too). */
#define MER_SCAN_PAGE 1000

/* ---- the range map (pure) ---- */

typedef struct mer_node {
    uint32_t id;
    char *addr; /* "host:port" */
    char *zone;
    int64_t down_until; /* monotonic ns: skipped by routing until then (unreachable) */
    uint64_t proven;    /* the transport generation on which it last answered */
    bool failed;        /* it failed us since it last answered (mer_rmap_mark_down) */
} mer_node;

typedef struct mer_group {
    uint64_t id;
    uint32_t *replicas; /* node ids */
    size_t nreplicas;
    char *leader; /* "host:port" hint, "" when unknown */
} mer_group;

/* A byte string (keys are any bytes): p malloc'd (non-NULL even when len is 0). */
typedef struct mer_bytes {
    uint8_t *p;
    size_t len;
} mer_bytes;

typedef struct mer_range {
    mer_bytes start; /* inclusive; empty = the first key */
    mer_bytes end;   /* exclusive; empty = +infinity */
    size_t group;    /* index into mer_rmap.groups */
} mer_range;

typedef struct mer_rmap {
    mer_range *ranges; /* sorted, contiguous, covering every key */
    size_t nranges;
    mer_group *groups;
    size_t ngroups;
    mer_node *nodes;
    size_t nnodes;
} mer_rmap;

/* Builds a map from a MSG_RANGES answer (checked: sorted, contiguous, from
 * "" to +infinity, known nodes). On success *m owns everything (mer_rmap_free). */
int mer_rmap_from_reply(mer_rmap *m, const Meridian__RangeMap *reply, mr_err *err);
/* Checks a comma-separated list of "host:port" seed addresses. */
int mer_seeds_check(const char *addrs, mr_err *err);
void mer_rmap_free(mer_rmap *m);
/* Moves src into dst (freeing dst's old contents), keeping the down marks of
 * nodes with the same address. */
void mer_rmap_replace(mer_rmap *dst, mer_rmap *src);

/* The range holding key (never NULL for a valid map). */
const mer_range *mer_rmap_find(const mer_rmap *m, const void *key, size_t klen);
/* The id of the group holding key. */
uint64_t mer_rmap_group_of(const mer_rmap *m, const void *key, size_t klen);
/* The group with id gid, or NULL. */
mer_group *mer_rmap_group(const mer_rmap *m, uint64_t gid);
/* The node with this address; with add, a new node (id 0) is made for an
 * address the map did not know (a leader hint). NULL if none / no memory. */
mer_node *mer_rmap_node_at(mer_rmap *m, const char *addr, bool add);
void mer_rmap_set_leader(mer_rmap *m, uint64_t gid, const char *addr);
void mer_rmap_mark_down(mer_rmap *m, const char *addr, int64_t until);

/* Where to send a request for group gid, best first: with leader_first the
 * leader hint, then the other replicas; else the replicas starting at a
 * rotation `rot` (spreading snapshot reads). Nodes marked down at `now` are
 * left out, unless all are. Returns how many addresses were written to out
 * (borrowed from m). */
size_t mer_rmap_candidates(const mer_rmap *m, uint64_t gid, bool leader_first, unsigned rot,
                           int64_t now, const char **out, size_t cap);

/* ---- the write buffer (pure): a sorted array of the transaction's writes ---- */

typedef struct mer_write {
    uint8_t *key;
    size_t klen;
    uint8_t *val; /* NULL for a delete */
    size_t vlen;
} mer_write;

typedef struct mer_wbuf {
    mer_write *w;
    size_t n, cap;
} mer_wbuf;

/* Records a put (val) or a delete (val NULL), replacing an earlier write of
 * key. Copies both. MR_OK or MR_ENOMEM. */
int mer_wbuf_set(mer_wbuf *b, const void *key, size_t klen, const void *val, size_t vlen);
const mer_write *mer_wbuf_get(const mer_wbuf *b, const void *key, size_t klen);
/* The index of the first write whose key is >= key (b->n if none). */
size_t mer_wbuf_lower_bound(const mer_wbuf *b, const void *key, size_t klen);
void mer_wbuf_free(mer_wbuf *b);

/* ---- errors (pure) ---- */

/* The MERIDIAN_* code for a node's error code (ABORTED, NOT_LEADER, ...). */
int mer_code_of_error(Meridian__ErrorCode code);
/* The MERIDIAN_* code for an internal MR_* code. */
int mer_code_of_mr(int mr);
/* Sets the connection's message (printf-style) and returns code. */
int mer_fail(meridian *db, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void mer_clear(meridian *db);

/* Checks a key (1..4096 bytes, the first not 0) or a value (0..1 MiB of any
 * bytes). MERIDIAN_OK, or MERIDIAN_INVALID with the reason in why. */
int mer_check_bytes(const void *p, size_t len, bool is_key, char *why, size_t whylen);

/* ---- backoff (pure) ---- */

/* The delay before retry number `attempt` (0-based): exponential from base_ms
 * up to cap_ms, "equal jitter" (half fixed, half random from r). */
int64_t mer_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms, uint64_t r);
uint64_t mer_rand(meridian *db);

/* ---- the request engine (mer_conn.c) ---- */

/* How a call may be retried inside one API call. */
enum {
    MER_CALL_LEADER = 1u << 0,  /* goes to the group's leader (follows not_leader hints) */
    MER_CALL_RESEND = 1u << 1,  /* safe to send again after a timeout or a lost connection */
    MER_CALL_BEHIND = 1u << 2,  /* "behind" answers move on to another replica */
    MER_CALL_ANYNODE = 1u << 3, /* any node (the range map), no group */
};

typedef struct mer_call {
    /* in: */
    uint8_t type;
    uint64_t group; /* the group the request is for (its "group" field) */
    unsigned flags;
    unsigned rot;        /* where in the replica list to start (spreads snapshot reads) */
    unsigned max_rounds; /* rounds over the replicas for behind/no_group; 0 = until timeout */
    uint8_t *req;        /* the encoded request (mer_call_set_request; mer_call_free frees) */
    size_t req_len;
    const char *op; /* for logs: what the request is ("read", "commit", ...) */
    uint64_t txn;   /* for logs: the transaction, 0 = none */
    /* out: */
    int rc; /* MR_OK (reply set) or the transport's error of the last attempt */
    /* The final answer (a body, or an error the caller must judge), decoded into arena. */
    const Meridian__Reply *reply;
    pr_arena arena;
    char addr[128]; /* who gave it */
    char why[MR_ERRMSG_MAX];
    /* engine state: */
    int state;
    bool probing; /* the attempt in flight is a probe of c->addr (see issue()) */
    unsigned attempts, hops;
    size_t cand, ncand; /* the candidate tried (index into the routing order), of how many */
    int64_t retry_at;   /* monotonic ns */
    char next[128];     /* a leader hint to try next, "" = none */
} mer_call;

/* Sends every call (in parallel) and runs the loop until each has a final
 * answer or gave up within the connection's timeout. Handles not_leader,
 * behind, busy-before-sending and unreachable nodes per the flags. */
void mer_calls_run(meridian *db, mer_call *calls, size_t n);
void mer_call_reset(mer_call *c);
/* Encodes m as c's request. MR_OK, MR_ENOMEM. */
int mer_call_set_request(mer_call *c, const ProtobufCMessage *m);
/* Frees c's request and reply. */
void mer_call_free(mer_call *c);
/* Is c's answer an error of this code? */
static inline bool mer_call_error(const mer_call *c, Meridian__ErrorCode code)
{
    return c->reply && pr_reply_code(c->reply) == code;
}

/* Asks any node for the range map and installs it. MERIDIAN_* code. */
int mer_refresh_map(meridian *db);

/* ---- the handles ---- */

struct meridian {
    uv_loop_t loop;
    net_transport *tr;
    net_tls_ctx *tls;
    uv_timer_t wake; /* ends a loop run when a delayed retry is due */
    bool loop_ready;
    char *addrs;
    int64_t timeout_ms;
    bool strong_any; /* meridian_options.strong_any_replica */
    int64_t last_io; /* monotonic ns of the last loop run: idle connections are recycled */
    mer_rmap map;
    uint64_t rng;
    unsigned open_txns;
    meridian_txn *txns; /* the open read-write transactions (a notice names one) */
    uint64_t tr_gen;    /* counts transports opened (node.proven refers to it) */
    /* Test-only: the percentage of commit answers dropped as if lost on the way back, so the
     * outcome is learned with op status (MERIDIAN_TEST_LOSE_COMMIT_ANSWERS; 0: off). */
    unsigned lose_commit_pct;
    int64_t commit_wait_ns; /* of the last successful commit (meridian_commit_wait_ns) */
    char errmsg[MR_ERRMSG_MAX + 256];
};

typedef struct mer_tgroup {
    uint64_t gid;
    uint32_t nreads; /* reads answered ok by this group's leader */
    bool wrote;
} mer_tgroup;

typedef enum { MER_TXN_ACTIVE = 0, MER_TXN_FAILED, MER_TXN_DONE } mer_txn_state;

struct meridian_txn {
    meridian *db;
    uint32_t magic;
    bool ro;
    bool in_run; /* created by meridian_run: it commits or rolls back, not the callback */
    mer_txn_state state;
    int failed_code; /* why it failed (returned by later calls) */
    uint64_t id;
    int64_t prio;
    meridian_bound bound;
    int64_t bound_ns;
    int64_t read_ts;
    mer_wbuf wb;
    mer_tgroup *groups;
    size_t ngroups, capgroups;
    int64_t commit_before; /* read-write: commit below this timestamp or abort (0: no limit) */
    uint64_t wounded_at;   /* a group that wounded it (TxnNotice; 0: none heard of) */
    meridian_txn *next;    /* db->txns */
};

#define MER_TXN_MAGIC 0x4d545852u

/* A fresh read-write transaction with a given priority (meridian_run keeps
 * the first attempt's across retries). */
int mer_begin_prio(meridian *db, int64_t prio, meridian_txn **out);
/* A group's leader says transaction txn was wounded there (TxnNotice, mer_conn.c): if it is
 * open here, abort it at its other groups now and fail its next operation. */
void mer_txn_wounded(meridian *db, uint64_t txn, uint64_t gid, const char *why);
/* Commit and rollback without the in_run guard. */
int mer_commit(meridian_txn *t, int64_t *ts);
void mer_rollback(meridian_txn *t);

#endif
