/* Test support: a real cluster of `meridian start` processes on loopback with
 * mutual TLS, started by the cluster launcher (launch/cluster.h), and the
 * requests tests make to it. One cluster per test process (the state is global). */
#ifndef TEST_CLUSTER_H
#define TEST_CLUSTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "launch/cluster.h"

#define TC_MAX_NODES 5

typedef struct tcluster {
    int n;
    char dir[200], certs[300], join[512];
    int ports[TC_MAX_NODES];
    int http_port;            /* node 0 serves /metrics here */
    pid_t pids[TC_MAX_NODES]; /* a test may set -1 for a node it reaped itself */
    const char *clock;        /* --clock for every node; NULL = the default (fixed:1ms) */
    const char *clock_cap;    /* --clock-cap; NULL = 10ms */
    const char *split_at;     /* init --split-at (data groups' boundaries); NULL = the default */
    const char *split_size;   /* start --split-size; NULL = the default (32MiB) */
    /* start --decision-retention; NULL = the default */
    const char *decision_retention;
    lc_cluster lc; /* the launcher's state; the fields above mirror it */
} tcluster;

extern tcluster tc;

/* Runs `meridian FMT...` (words split on spaces); stdout into *out when non-NULL. */
int tc_meridian(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Makes the directory, certificates and ports for n nodes; the nodes get
 * MERIDIAN_TEST_FAULTS=1 and the rest of our environment as it is at each start. 0 or -1. */
int tc_setup(int n, const char *prefix);
/* Starts node i (lease 1 s, MVCC retention 3 s, fault RPC enabled); node 0
 * gets --http. */
void tc_start(int i);
/* Waits for every node to answer, then init through node 0 with `data_groups`
 * data groups. 0 on success. */
int tc_init(int data_groups);

/* One request of `type` (payload: its encoded message, or any bytes) to node i with the
 * certificate `cert` ("client.root" or "node"); the reply's JSON view (tests/support/wire.h),
 * or NULL. */
json_t *tc_request_as(int i, const char *cert, uint8_t type, const void *payload, uint32_t len);
/* The same, preceded on the same connection by a one-way message (type 0: none). */
json_t *tc_exchange(int i, const char *cert, uint8_t oneway_type, const void *oneway,
                    uint32_t oneway_len, uint8_t type, const void *payload, uint32_t len);
/* A request written in the schema's JSON mapping (tests/support/wire.h), sent binary. */
json_t *tc_request(int i, uint8_t type, const char *json);

/* The meta group's record `name` ("node/2", "group/3": stored under "\0" name, a system key)
 * read at node i (strongly), as a system read with the node certificate: the reply's JSON
 * view, or NULL. */
json_t *tc_meta_record(int i, const char *name);

json_t *tc_status(int i);
json_t *tc_group_of(json_t *status, int gid);
/* The node leading gid with a valid lease (skipping node `skip`), or -1. */
int tc_find_leader(int gid, int skip);
int tc_wait_leader(int gid, int skip, int timeout_ms);

/* kill -9 / SIGTERM-and-wait. tc_term returns true if the node exited 0. */
void tc_kill(int i);
bool tc_term(int i);
/* Kills every node still running; removes the directory unless keep. */
void tc_teardown(bool keep);

#endif
