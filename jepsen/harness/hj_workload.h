/* A workload: concurrent logical client processes on the harness's libuv loop that issue
 * operations against the cluster and record each as invoke -> ok / fail / info, plus the
 * checker that judges the resulting history: the register (hj_register.c, raw requests on the
 * loop), and bank, list-append and set over libmeridian transactions (hj_txn.h: worker
 * threads).
 *
 * Outcome rules shared by every workload (Jepsen's): `ok` the operation happened; `fail` it
 * certainly did not (refused before it could apply, e.g. not_leader, or a cas whose
 * expected value did not match); `info` unknown (timeout, connection lost after sending, an
 * error the node may have raised after proposing): the process is then retired and the
 * logical client continues under a fresh process id (old + concurrency). */
#ifndef HJ_WORKLOAD_H
#define HJ_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/mr_err.h"
#include "jepsen/harness/hj_cluster.h"
#include "jepsen/harness/hj_run.h"
#include "jepsen/result.h"

typedef struct hj_client_env {
    uv_loop_t *loop;
    hj_run *run;
    const hj_cluster *cluster;
    int concurrency; /* logical processes */
    double rate;     /* target ops/s over all processes */
    int keys;        /* data groups: register k lives in group 2 + k; the transactional
                        workloads spread their keys over this many ranges */
    int objects;     /* bank accounts, list-append keys in use at once (0: default) */
    uint64_t seed;
    bool reads_anywhere;    /* reads go to a random node (the stale-reads negative control) */
    const char *breaks;     /* the nodes' MERIDIAN_TEST_BREAK list ("" none), for workloads
                               that shape their operations to a control */
    const int *leader;      /* initial leader node index per group id (0..keys+1) */
    uint64_t op_timeout_ms; /* past it an operation is info */
} hj_client_env;

typedef struct hj_workload {
    const char *name;
    const char *model; /* meridian-check --model, to re-check history.jsonl by hand */
    /* Starts the clients on env->loop; *state is freed by free_state. */
    int (*start)(const hj_client_env *env, void **state, mr_err *err);
    /* No new operations; once every in-flight one completed (or timed out) and every handle
     * is closed, on_done(ud) runs on the loop. */
    void (*stop)(void *state, void (*on_done)(void *ud), void *ud);
    /* After on_done. */
    void (*free_state)(void *state);
    /* Judges the history; r is initialized here (caller frees it). */
    int (*check)(const jp_history *h, jp_result *r, mr_err *err);
    /* The data groups (bit g: group g) the operation whose invoke is `invoke` touched, with
     * `ranges` key ranges (group 2 + r holds range r until a split): the availability's
     * per-group figures (jepsen/avail.h). NULL: not known per operation. */
    uint64_t (*op_groups)(const jp_op *invoke, int ranges);
} hj_workload;

/* The group of key id `id` (its range id mod ranges, hj_txn_key), as a mask; 0 when out of
 * reach of the mask. */
uint64_t hj_key_group(long long id, int ranges);

/* The workload named `name`, or NULL. */
const hj_workload *hj_workload_find(const char *name);

extern const hj_workload hj_register_workload;
/* hj_bank.c, hj_append.c, hj_set.c: only in builds with libmeridian (HJ_HAVE_LIBMERIDIAN). */
extern const hj_workload hj_bank_workload;
/* The bank checker over accounts "0".."n-1", each opened with `opening` (hj_bank.c; the bank
 * and sql-bank workloads' check). */
int hj_bank_check_accounts(const jp_history *h, int n, int64_t opening, jp_result *r, mr_err *err);
extern const hj_workload hj_append_workload;
extern const hj_workload hj_set_workload;
/* hj_sqlbank.c: the bank through the SQL engine (sql/sql.h), and its broken variant (each
 * transfer two autocommit statements: a negative control); with libmeridian and sql/. */
extern const hj_workload hj_sqlbank_workload;
extern const hj_workload hj_sqlbank_autocommit_workload;
/* The split nemesis's key for sql-bank account id (the engine's row key, as hex). */
int hj_sqlbank_split_key(long long id, char *json, size_t jlen, char *label, size_t llen);

#endif
