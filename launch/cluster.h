/* The cluster launcher: K `meridian start` processes with certificates made by `meridian cert`,
 * free ports (or addresses the caller chose, in network namespaces it made), optionally a
 * private chronyd pair as their clock, `meridian init`, waits for the nodes and their leaders,
 * and stop (SIGTERM, kill -9), pause and restart by PID. One launcher for the integration tests
 * (tests/support/cluster.h), the harness (jepsen/harness/hj_cluster.h) and bench-node: each
 * caller's needs are options, not copies.
 *
 * Files in the run directory: certs/ (ca, node, client.root), certs/lib/ (ca.crt, client.crt,
 * client.key for libmeridian, when asked), n<i>/ (a node's data), n<i>.log (its stdout and
 * stderr, appended across restarts), setup.log (the cert and init commands and their output).
 * Node numbers in file names, zones and messages start at 0 (tests, bench: n0, zonea) or at 1
 * (the harness: n1, zone-1).
 *
 * Processes are started by proc_spawn_in (launch/proc.h): own process group, killed when the
 * starting thread dies. Only the PIDs started here are ever signalled. Not thread-safe: one
 * thread at a time per cluster (the harness's nemesis and setup threads take turns). */
#ifndef LAUNCH_CLUSTER_H
#define LAUNCH_CLUSTER_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/mr_err.h"
#include "launch/chronyd.h"
#include "net/tls.h"

#define LC_MAX_NODES 9
#define LC_PATH      1024

typedef struct lc_node {
    int port;
    char ip[24];             /* "127.0.0.1" or the caller's address */
    char addr[40];           /* "ip:port" */
    char ns[20];             /* the network namespace it runs in; "" none */
    char data[LC_PATH + 32]; /* data directory */
    char log[LC_PATH + 32];  /* stdout+stderr, appended across restarts */
    pid_t pid;               /* -1 when not running */
    bool paused;             /* SIGSTOPped */
    int starts;              /* how many times started */
    int last_status;         /* wait status of its last exit, -1 if none */
} lc_node;

/* What differs between callers. Strings are borrowed: they must outlive the cluster. The
 * start options (region .. env) are read at every lc_node_start, so a caller may change them
 * in c->o between starts. */
typedef struct lc_opts {
    const char *bin;    /* the meridian binary; NULL: $MERIDIAN_BIN */
    const char *dir;    /* the run directory (exists, kept); NULL: a fresh /tmp/PREFIX.XXXXXX */
    const char *prefix; /* for the fresh directory; NULL: "meridian-cluster" */
    int nodes;          /* 1..LC_MAX_NODES */
    bool one_based;     /* n1.., zone-1.. (the harness's run directory) instead of n0.., zonea.. */
    /* Node i listens on ips[i]:fixed_port inside namespace ns[i] (both set by the caller, who
     * made them); NULL: 127.0.0.1 on a free port, in our namespace. */
    const char *ips[LC_MAX_NODES];
    const char *ns[LC_MAX_NODES];
    int fixed_port;
    /* Node i's --zone (at most 20 bytes); NULL: zonea, zoneb, ... (zone-1, ... one_based). */
    const char *zones[LC_MAX_NODES];
    bool insecure;      /* no certificates: --insecure everywhere */
    bool client_dir;    /* certs/lib for libmeridian */
    bool http;          /* node 0 serves --http on a free port (c->http_port) */
    bool chrony;        /* the nodes' clock is a private chronyd pair (launch/chronyd.h) */
    const char *region; /* --region; NULL: not given */
    const char *lease;  /* --lease */
    const char *clock;  /* --clock (ignored with chrony) */
    const char *clock_cap;
    const char *retention;          /* --retention */
    const char *decision_retention; /* --decision-retention */
    const char *split_size;         /* --split-size */
    /* Changes to our environment for the nodes, NULL-terminated: "NAME=VALUE" sets, "NAME"
     * removes. Everything else in environ (as it is at each start) is inherited. */
    const char *const *env;
    /* Waits and commands give up early when *stop becomes non-zero (the harness's Ctrl-C). */
    const volatile sig_atomic_t *stop;
} lc_opts;

typedef struct lc_cluster {
    lc_opts o;
    char bin[LC_PATH];
    char dir[LC_PATH], certs[LC_PATH + 8];
    char client_certs[LC_PATH + 16]; /* certs/lib: ca.crt, client.crt, client.key */
    char setup_log[LC_PATH + 16];
    char join[LC_MAX_NODES * 48];  /* --join: every node's address */
    char addrs[LC_MAX_NODES * 48]; /* the same, for clients */
    int n;
    int http_port;      /* node 0's --http port when o.http */
    bool made_dir;      /* removed by lc_destroy */
    chrony_pair chrony; /* when o.chrony */
    bool chrony_running;
    char chrony_clock[320]; /* "chrony:SOCK" */
    lc_node nodes[LC_MAX_NODES];
    net_tls_ctx *tls; /* client.root (NULL insecure), for the launcher's own requests; owned */
} lc_cluster;

/* Lays out the cluster (directory, addresses, ports), makes the certificates (and certs/lib)
 * and starts the chronyd pair when asked. Starts no node. On failure lc_destroy still cleans
 * up. */
int lc_setup(lc_cluster *c, const lc_opts *o, mr_err *err);

/* Starts node i (again), with the same arguments and data directory; a line marks each start
 * in its log. */
int lc_node_start(lc_cluster *c, int i, mr_err *err);
/* kill -9 and reap. */
void lc_node_kill(lc_cluster *c, int i);
/* SIGTERM, up to timeout_ms for it to exit, then kill -9. True when it exited with status 0. */
bool lc_node_term(lc_cluster *c, int i, int timeout_ms);
/* SIGSTOP / SIGCONT. */
void lc_node_pause(lc_cluster *c, int i, bool pause);
/* Reaps node i if it exited on its own; true when it is running. */
bool lc_node_alive(lc_cluster *c, int i);
/* Starts every node. */
int lc_start_all(lc_cluster *c, mr_err *err);
/* SIGCONT and SIGTERM to every running node, up to timeout_ms for all, then kill -9. */
void lc_stop_all(lc_cluster *c, int timeout_ms);

/* Waits up to timeout_ms until every node answers INFO (init needs all of them). */
int lc_wait_up(lc_cluster *c, int timeout_ms, mr_err *err);
/* `meridian init` through node 0: data_groups data groups, replicas per group (0: the
 * default), --split-at split_at (NULL or "": none). Output in setup.log. */
int lc_init(lc_cluster *c, int data_groups, int replicas, const char *split_at, mr_err *err);

/* One blocking request (its own loop and transport) to addr: `json` is the request of `type`
 * in the wire protocol's JSON mapping (proto/pr_json.h: field names as in the schema), sent as
 * the binary message; *reply gets the answer's JSON view (pr_reply_view: {"ok": true, ...body}
 * or {"ok": false, "error", "message", ...}; caller json_decrefs). tls is a client context,
 * NULL for --insecure. */
int lc_rpc(net_tls_ctx *tls, const char *addr, uint8_t type, const char *json, uint64_t timeout_ms,
           json_t **reply, mr_err *err);
/* Node i's leader view (STATUS over tls, NULL: the cluster's): leader[g] = i for every group
 * g < ngroups it leads with a lease left. */
int lc_node_leads(lc_cluster *c, net_tls_ctx *tls, int i, int *leader, int ngroups, mr_err *err);
/* Waits up to timeout_ms until every group 1..ngroups-1 has a leader with a lease; leader[g]
 * (g < ngroups) gets the node leading g, -1 for none. */
int lc_wait_leaders(lc_cluster *c, int *leader, int ngroups, int timeout_ms, mr_err *err);

/* Stops every node still running (as lc_stop_all), the chronyd pair, frees the TLS context,
 * and removes a directory it made unless keep (or $MERIDIAN_KEEP_TMP). Safe twice. */
void lc_destroy(lc_cluster *c, bool keep);

#endif
