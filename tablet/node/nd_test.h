/* Test switches: deliberately unsafe behaviours (the negative controls of the
 * tests and of the consistency harness) and fault hooks, read once from the
 * environment when a node opens, never per request. A node that honours any
 * of them says so: a warning per switch at start, `test_switches` in `status`
 * (and a warning line in `meridian status`), and meridian_test_switch{name}
 * in /metrics. An unknown name refuses to start the node.
 *
 *   MERIDIAN_TEST_BREAK=LIST     comma-separated broken protocol variants:
 *     stale-reads     register reads answered from any replica's state at once
 *     no-safe-wait    snapshot reads served at once, without waiting for safe time
 *     no-read-locks   transactional reads take no shared locks
 *     no-commit-wait  commits answered before TT.after(s)
 *     no-ts-floor     a group's timestamps need not exceed the commit timestamps it applied
 *   MERIDIAN_TEST_FAULTS=1       the fault RPC (ND_MSG_FAULT) is served
 *   MERIDIAN_TEST_SNAPSHOT_EVERY=N  Paxos snapshots every N slots (logs compact sooner)
 *   MERIDIAN_TEST_REPLY_MAX=BYTES   replies capped lower than the frame limit (256 or more),
 *                                   so tests page scans and refuse replies with little data
 *   MERIDIAN_TEST_PX_MSG_MAX=BYTES  Paxos messages capped lower (4096 or more), so snapshots
 *                                   travel in many chunks and catch-up in many LEARNs
 *   MERIDIAN_CLOCK_OFFSET=DUR    (read by truetime) the clock lies by DUR
 *   MERIDIAN_CLOCK_UNHEALTHY=1   (read by truetime) the clock says it is unhealthy */
#ifndef ND_TEST_H
#define ND_TEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/mr_err.h"

typedef enum {
    ND_BREAK_STALE_READS = 1u << 0,
    ND_BREAK_NO_SAFE_WAIT = 1u << 1,
    ND_BREAK_NO_READ_LOCKS = 1u << 2,
    ND_BREAK_NO_COMMIT_WAIT = 1u << 3,
    ND_BREAK_NO_TS_FLOOR = 1u << 4,
} nd_break;

typedef struct nd_test_switches {
    unsigned breaks;         /* nd_break bits */
    bool faults;             /* MERIDIAN_TEST_FAULTS=1 */
    uint64_t snapshot_every; /* 0 = not set */
    uint32_t reply_max;      /* 0 = not set */
    uint32_t px_msg_max;     /* 0 = not set */
    bool clock_offset;       /* MERIDIAN_CLOCK_OFFSET set */
    bool clock_unhealthy;    /* MERIDIAN_CLOCK_UNHEALTHY set */
} nd_test_switches;

/* Reads the environment into *s; MR_EINVAL names a switch it does not know. */
int nd_test_switches_load(nd_test_switches *s, mr_err *err);

/* The names of the switches that are on, in a fixed order; returns how many
 * (at most cap are stored). */
size_t nd_test_switches_names(const nd_test_switches *s, const char **names, size_t cap);

/* The switches that are on as a JSON array of names (empty when none). */
json_t *nd_test_switches_json(const nd_test_switches *s);

#endif
