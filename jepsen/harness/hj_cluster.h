/* A real Meridian cluster for the harness: K `meridian start` processes on 127.0.0.1 (free
 * ports), certificates made by `meridian cert` in the run directory, `meridian init`, and the
 * blocking helpers the nemesis needs (kill -9 and restart, SIGSTOP/SIGCONT, the nodes'
 * test-only fault RPC).
 *
 * Everything runs on loopback: network namespaces are future work, so partitions are made by
 * the nodes themselves (ND_MSG_FAULT {"partition": [ids]} told to both sides), not iptables.
 *
 * Processes: nodes are started with fork/exec in their own process group (a terminal's
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
#include "net/tls.h"

#define HJ_MAX_NODES 9
#define HJ_PATH      1024

typedef struct hj_node {
    int port;
    char addr[32];           /* "127.0.0.1:port" */
    char data[HJ_PATH + 32]; /* data directory */
    char log[HJ_PATH + 32];  /* stdout+stderr, appended across restarts */
    pid_t pid;               /* -1 when not running */
    bool paused;             /* SIGSTOPped by the nemesis */
    int starts;              /* how many times started */
    int last_status;         /* wait status of its last exit, -1 if none */
} hj_node;

typedef struct hj_cluster_opts {
    const char *bin;  /* the meridian binary */
    const char *dir;  /* the run directory (exists) */
    int nodes;        /* 1..HJ_MAX_NODES */
    int groups;       /* data groups (keys) */
    bool stale_reads; /* MERIDIAN_TEST_BREAK=stale-reads */
} hj_cluster_opts;

typedef struct hj_cluster {
    char bin[HJ_PATH];
    char dir[HJ_PATH], certs[HJ_PATH + 8];
    char join[HJ_MAX_NODES * 24];
    int n, groups;
    bool stale_reads;
    int64_t epsilon_ns; /* the nodes' declared clock bound (--clock fixed:...) */
    char clock_spec[32];
    hj_node nodes[HJ_MAX_NODES];
    char **envp;      /* environ + the test switches; owned */
    net_tls_ctx *tls; /* client.root, for the blocking RPCs of the setup thread; owned */
} hj_cluster;

/* Makes certificates, picks ports, starts every node, runs `meridian init --data-groups`,
 * and waits until every group (meta 1, data 2..groups+1) has a leader with a lease.
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

/* Stops every node it started: SIGCONT, SIGTERM, up to 10 s for all, then SIGKILL. Frees the
 * environment and TLS context. Safe to call twice and after a failed setup. */
void hj_cluster_teardown(hj_cluster *c);

/* One blocking request (its own loop and transport) to addr; *reply gets the JSON answer
 * (caller json_decrefs). tls is a client context (each thread keeps its own). */
int hj_rpc(net_tls_ctx *tls, const char *addr, uint8_t type, const char *json, uint64_t timeout_ms,
           json_t **reply, mr_err *err);

/* Node i's leader view: fills leader[g] = i for every group g it leads with a lease. */
int hj_node_leads(hj_cluster *c, net_tls_ctx *tls, int i, int *leader, int ngroups, mr_err *err);

/* Runs argv to completion (at most timeout_ms, then SIGKILL), output appended to log_path.
 * Returns the exit status, or -1. */
int hj_run_cmd(char *const argv[], const char *log_path, int timeout_ms);

#endif
