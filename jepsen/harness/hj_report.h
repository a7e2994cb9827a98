/* The run directory's outputs once the cluster is down: history.jsonl and history.edn, the
 * checker's results.json (overall and per key, every anomaly with the operations involved),
 * summary.txt (operations by function and outcome, faults injected, verdict) and latency.png
 * (gnuplot, latency over time with the fault windows shaded; skipped with a notice when
 * gnuplot is missing). */
#ifndef HJ_REPORT_H
#define HJ_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/mr_err.h"
#include "jepsen/harness/hj_cluster.h"
#include "jepsen/harness/hj_nemesis.h"
#include "jepsen/harness/hj_workload.h"
#include "jepsen/history.h"
#include "jepsen/result.h"

typedef struct hj_report_info {
    const char *dir;
    const char *cmdline;
    const hj_workload *workload;
    int nodes, keys, concurrency, time_s, quiet_s;
    double rate;
    uint64_t seed;
    unsigned kinds;
    const char *breaks; /* the nodes' MERIDIAN_TEST_BREAK (negative control), NULL: none */
    bool interrupted;
    int fault_counts[HJ_NEM_KINDS];
    int crashes;           /* nodes that exited without being killed */
    int record_errs;       /* operations the history refused */
    int64_t start_wall_ns; /* CLOCK_REALTIME at history time 0 */
    const hj_cluster *cluster;
    json_t *store; /* --store-check: hj_store_check's result (borrowed), NULL: not checked */
} hj_report_info;

/* Writes every output and prints the summary to stdout. *verdict gets the checker's
 * validity (unknown when the checker could not run: err then says why, and the other files
 * are still written). Returns 0, or an error for files that could not be written. */
int hj_report_write(const hj_report_info *info, const jp_history *h, jp_validity *verdict,
                    mr_err *err);

#endif
