/* A Meridian node: hosts many Paxos group replicas on one libuv loop, with
 * one SQLite log store for all of them (one fsync covers every group's
 * persists of a loop iteration), one transport connection per peer node
 * (every group's messages to that peer travel in one frame per iteration, so
 * heartbeats and lease renewals are batched per node pair), and a TrueTime
 * clock whose health gates leadership. docs/architecture.md ("Nodes") says
 * which file does what.
 *
 * The protocol a node speaks, with clients and with other nodes, is declared
 * and described once: proto/meridian.proto (the messages of each type, what
 * each request answers, the errors, the keys). This header keeps the
 * numbering of the types for the node's code and the limits it checks. */
#ifndef ND_H
#define ND_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/mr_err.h"

/* Message types on the transport (net_message.type): the schema's MsgType (nd_peer.c checks
 * every value at compile time); the message each carries is in proto/meridian.proto. */
enum {
    ND_MSG_PX = 1,          /* one-way, node to node */
    ND_MSG_INFO = 10,       /* request */
    ND_MSG_INIT = 12,       /* request (meridian init) */
    ND_MSG_BOOTSTRAP = 14,  /* request, node to node */
    ND_MSG_PROPOSE = 16,    /* request */
    ND_MSG_STATUS = 18,     /* request */
    ND_MSG_REPLY = 20,      /* every reply */
    ND_MSG_FAULT = 22,      /* test-only request */
    ND_MSG_REGISTER = 24,   /* request */
    ND_MSG_TXN = 26,        /* request at a group's leader */
    ND_MSG_SNAPREAD = 28,   /* request at any replica */
    ND_MSG_SAFE_REQ = 30,   /* one-way, node to node */
    ND_MSG_RANGES = 32,     /* request at any node */
    ND_MSG_PREPARED = 34,   /* one-way, node to node */
    ND_MSG_DECISION = 36,   /* one-way, node to node */
    ND_MSG_TXN_QUERY = 38,  /* one-way, node to node */
    ND_MSG_SAFE_GRANT = 40, /* one-way, node to node */
    ND_MSG_SPLIT = 42,      /* one-way, node to node */
    ND_MSG_SPLIT_AT = 44,   /* request at any node */
    ND_MSG_TXN_NOTICE = 46, /* one-way, leader to client */
};

/* The limits a node checks every client request against (nd_validate.h; the protocol,
 * proto/meridian.proto, states them for clients). */
#define ND_KEY_MAX           4096                /* a client key's bytes (MERIDIAN_KEY_MAX) */
#define ND_VALUE_MAX         (16u * 1024 * 1024) /* a value's bytes (the store's MV_MAX_VALUE) */
#define ND_SCAN_ROWS         10000
#define ND_SCAN_BYTES        (4u << 20)
#define ND_TXN_SYSTEM        (1ull << 62)
#define ND_TXN_CLIENT_MAX    (ND_TXN_SYSTEM - 1)
#define ND_PRIO_WINDOW       (3600LL * 1000000000LL)             /* 1 h */
#define ND_READ_AHEAD_MAX    (1000LL * 1000000LL)                /* 1 s */
#define ND_STALENESS_MAX     (10LL * 366 * 86400 * 1000000000LL) /* ten years */
#define ND_ROW_LIMIT_DEFAULT 1000
#define ND_ROW_LIMIT_MAX     100000

/* The key layout (docs/architecture.md, "The range map"): keys starting with byte 0 are the
 * cluster's own (the meta group's records of the cluster, the tablets' transaction records),
 * no client's; the meta group (1) holds ["", ND_META_END): its records and the SQL catalog
 * (keys starting with 0x01); the data groups tile [ND_META_END, +infinity). */
#define ND_META_END     "\x02"
#define ND_META_END_LEN 1

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
