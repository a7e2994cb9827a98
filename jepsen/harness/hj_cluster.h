/* A real Meridian cluster for the harness: the cluster launcher (launch/cluster.h) starts K
 * `meridian start` processes with certificates in the run directory and runs `meridian init`;
 * this module adds the network namespaces and the blocking helpers the nemesis needs (kill -9
 * and restart, SIGSTOP/SIGCONT, partitions, the nodes' test-only fault RPC).
 *
 * Two network modes:
 *  - netns: each node in a network namespace of its own ("mj<pid>n<i>"), joined by a veth
 *    pair ("mj<pid>h<i>" / "mj<pid>p<i>") to a bridge ("mjb<pid>") in the harness's
 *    namespace, which holds 10.A.B.254 (clients reach the nodes over it); node i listens on
 *    10.A.B.i:7100. Partitions are nftables rules inside the namespaces (input from and output
 *    to the other side dropped), so Paxos traffic and every connection between the two sides
 *    is cut; the harness's own client traffic (from 10.A.B.254) is not. Needs root, `ip` and
 *    `nft`. Teardown removes exactly the names made here (they carry the harness's pid).
 *  - loopback: every node on 127.0.0.1 (free ports); partitions are made by the nodes
 *    themselves (ND_MSG_FAULT {set_partition, partition: [ids]} told to both sides). The fallback
 * when namespaces are not available. The nodes' clock is `fixed:BOUND` (CLOCK_REALTIME is shared by
 * every namespace, so a clock fault is a lie in a node's own reading, through the fault RPC, in
 * both modes).
 *
 * Processes: nodes are started by the launcher in their own process group (a terminal's
 * Ctrl-C reaches only the harness, which tears down) and with PR_SET_PDEATHSIG=SIGKILL bound
 * to the thread that started them, so they die with the harness even if it crashes. Only the
 * PIDs started here are ever signalled. */
#ifndef HJ_CLUSTER_H
#define HJ_CLUSTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/mr_err.h"
#include "launch/cluster.h"
#include "net/tls.h"

#define HJ_MAX_NODES  LC_MAX_NODES
#define HJ_MAX_GROUPS 100 /* data groups */
#define HJ_PATH       LC_PATH

/* A node: ip is the namespace's 10.A.B.i in netns mode, ns its namespace ("" otherwise). */
typedef lc_node hj_node;

typedef enum { HJ_NET_AUTO = 0, HJ_NET_NETNS, HJ_NET_LOOPBACK } hj_net_mode;

typedef struct hj_cluster_opts {
    const char *bin;        /* the meridian binary */
    const char *dir;        /* the run directory (exists) */
    int nodes;              /* 1..HJ_MAX_NODES */
    int groups;             /* data groups */
    const char *breaks;     /* MERIDIAN_TEST_BREAK for the nodes (comma list), NULL: none */
    hj_net_mode net;        /* auto: netns when possible, else loopback with a notice */
    int64_t clock_bound_ns; /* the nodes' declared clock bound; 0: 1 ms */
    const char *split_at;   /* `meridian init --split-at` (range boundaries), NULL: none */
    /* The nodes' --decision-retention and --retention (store growth checks), 0: defaults. */
    int64_t retention_ns;
} hj_cluster_opts;

typedef struct hj_cluster {
    lc_cluster lc; /* the launcher: processes, certificates, init */
    char dir[HJ_PATH];
    const char *certs;        /* lc's */
    const char *client_certs; /* ca.crt, client.crt, client.key for libmeridian (lc's) */
    const char *addrs;        /* every node's address, comma-separated (lc's) */
    hj_node *nodes;           /* lc's */
    int n, groups;
    char breaks[128];
    char split_at[256];
    bool netns;           /* the network mode in use */
    char net_notice[256]; /* why loopback was chosen in auto mode ("" otherwise) */
    char bridge[20];      /* netns: "mjb<pid>" */
    bool bridge_made;     /* made by this harness */
    char ns[HJ_MAX_NODES][20], ip[HJ_MAX_NODES][24];     /* netns: each node's, before launch */
    bool ns_made[HJ_MAX_NODES], veth_made[HJ_MAX_NODES]; /* made here (teardown removes them) */
    pid_t reaper_pid; /* netns: the child that cleans up if the harness dies; 0 none */
    int reaper_fd;    /* its pipe (write end) */
    char ip_bin[64], nft_bin[64];
    int64_t epsilon_ns; /* the nodes' declared clock bound (--clock fixed:...) */
    char clock_spec[32], clock_cap[32];
    char retention[32]; /* --retention and --decision-retention for the nodes, "": defaults */
    char break_env[160];
    const char *env[4]; /* the nodes' environment changes (launcher option) */
    net_tls_ctx *tls;   /* client.root, for the blocking RPCs of the setup thread (lc's) */
} hj_cluster;

/* Sets up the network (netns, or loopback), makes certificates, starts every node, runs
 * `meridian init --data-groups [--split-at]`, and waits until every group (meta 1, data
 * 2..groups+1) has a leader with a lease.
 * leader[g] (g in 0..groups+1, sized by the caller) gets the node index leading group g.
 * On failure the nodes already started are still to be stopped with hj_cluster_teardown. */
int hj_cluster_setup(hj_cluster *c, const hj_cluster_opts *o, int *leader, mr_err *err);

/* Starts node i (again), with the same arguments and data directory. */
int hj_node_start(hj_cluster *c, int i, mr_err *err);
/* kill -9 and reap. */
void hj_node_kill(hj_cluster *c, int i);
/* SIGSTOP / SIGCONT. */
void hj_node_pause(hj_cluster *c, int i, bool pause);
/* Reaps node i if it exited on its own (no signal); returns true when it is running. */
bool hj_node_alive(hj_cluster *c, int i);

/* Stops every node it started: SIGCONT, SIGTERM, up to 10 s for all, then SIGKILL; then removes
 * the namespaces, veth pairs and bridge it made. Frees the TLS context. Safe to call twice and
 * after a failed setup. */
void hj_cluster_teardown(hj_cluster *c);

/* One blocking request (its own loop and transport) to addr; *reply gets the JSON answer
 * (caller json_decrefs). tls is a client context (each thread keeps its own). */
int hj_rpc(net_tls_ctx *tls, const char *addr, uint8_t type, const char *json, uint64_t timeout_ms,
           json_t **reply, mr_err *err);

/* Node i's leader view: fills leader[g] = i for every group g it leads with a lease. */
int hj_node_leads(hj_cluster *c, net_tls_ctx *tls, int i, int *leader, int ngroups, mr_err *err);

/* Partitions: node i drops every packet from and to the nodes in peers[0..n) (netns mode,
 * nftables in i's namespace, replacing any earlier cut; n = 0 heals). 0 or -1 (logged). */
int hj_net_cut(hj_cluster *c, int i, const int *peers, int n);

/* Runs argv to completion (at most timeout_ms, then SIGKILL), output appended to log_path.
 * Returns the exit status, or -1. */
int hj_run_cmd(char *const argv[], const char *log_path, int timeout_ms);

#endif
