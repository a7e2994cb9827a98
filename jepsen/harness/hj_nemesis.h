/* The nemesis: faults injected into the cluster on a seeded random schedule, one at a time
 * (rest, start, hold a few seconds, heal), in rounds that take every enabled kind once in a
 * random order, each recorded in the history as a nemesis
 * operation "start-<kind>" / "stop-<kind>" with what was done:
 *
 *   kill       kill -9 one or two nodes, restart them when healing
 *   pause      SIGSTOP one node, SIGCONT when healing
 *   partition  random halves or one isolated node: nftables rules in the nodes' network
 *              namespaces (netns mode), or the nodes' test-only fault RPC ({"partition":
 *              [ids]} on both sides, loopback mode); healing removes them
 *   clock      offset the clock reading of some nodes by up to +-epsilon (fault RPC
 *              clock_offset_ns, within the declared bound), 0 heals
 *   fast-leader  the leader of one random data group reads its clock 95% of epsilon fast
 *              (a lying clock the declared bound still covers: what commit wait is for), 0
 *              heals
 *   lying-leader  the leader of the first data group (libmeridian's coordinator for every
 *              transaction that writes it) reads its clock 16 x epsilon fast: a clock beyond
 *              its declared bound, which may cost real-time order but never serializability
 *              (leases move off it first if it leads every data group). A group that
 *              applied the liar's timestamps stamps above them, inside its lease: with 18 x
 *              epsilon below 3/4 of the lease (1 s here: epsilon up to 40 ms) nobody waits
 *              for that; 0 heals
 *   split      split the tablet holding one of the workload's keys at that key
 *              (ND_MSG_SPLIT_AT, to each node until the group's leader takes it); a split
 *              is for good, so healing only records how many groups there are
 *
 * It runs on its own thread (its actions block: fork/exec, waitpid, RPCs with private loops),
 * and records through hj_record. hj_nemesis_finish heals everything and returns; the thread
 * stays alive (nodes it restarted are tied to it by PR_SET_PDEATHSIG) until hj_nemesis_free,
 * which must come after hj_cluster_teardown. */
#ifndef HJ_NEMESIS_H
#define HJ_NEMESIS_H

#include <stdint.h>

#include "common/mr_err.h"
#include "jepsen/harness/hj_cluster.h"
#include "jepsen/harness/hj_run.h"

enum {
    HJ_NEM_KILL = 1u << 0,
    HJ_NEM_PAUSE = 1u << 1,
    HJ_NEM_PARTITION = 1u << 2,
    HJ_NEM_CLOCK = 1u << 3,
    HJ_NEM_FAST_LEADER = 1u << 4,
    HJ_NEM_SPLIT = 1u << 5,
    HJ_NEM_LYING_LEADER = 1u << 6,
    HJ_NEM_KINDS = 7,
};

/* "kill", "pause", "partition", "clock", "fast-leader", "split", "lying-leader" by bit
 * index. */
const char *hj_nemesis_kind_name(int bit);
/* Parses "kill,pause,partition,clock,fast-leader" (or "none"); 0 or -1 with the bad name in err. */
int hj_nemesis_parse(const char *list, unsigned *kinds, mr_err *err);

typedef struct hj_nemesis_opts {
    unsigned kinds; /* HJ_NEM_* bits; 0: no faults (the thread only waits) */
    uint64_t seed;
    int64_t rest_min_ns, rest_max_ns; /* between faults */
    int64_t hold_min_ns, hold_max_ns; /* how long a fault lasts */
    /* split: keys are the workload's, "rNN/<split_kind>/<id>" (hj_txn_key) with id below
     * split_ids */
    const char *split_kind;
    int split_ids;
    /* split, when set: the key of id instead (the RPC's JSON object, e.g. {"key":{"hex":..}},
     * and a readable label for the history); 0, or -1 when there is none (skipped). */
    int (*split_key)(long long id, char *json, size_t jlen, char *label, size_t llen);
    /* Called from the nemesis thread once hj_nemesis_finish's healing is done. */
    void (*on_healed)(void *ud);
    void *ud;
} hj_nemesis_opts;

typedef struct hj_nemesis hj_nemesis;

/* Starts the thread. *out is freed by hj_nemesis_free. */
int hj_nemesis_start(hj_cluster *c, hj_run *r, const hj_nemesis_opts *o, hj_nemesis **out,
                     mr_err *err);
/* Asks the thread to stop injecting, heal the fault in progress and then everything (SIGCONT
 * all, restart dead nodes, heal partitions, reset clocks); on_healed runs when done. Returns
 * at once. */
void hj_nemesis_finish(hj_nemesis *n);
/* Faults started per kind (bit index), and nodes that exited on their own. */
int hj_nemesis_count(const hj_nemesis *n, int bit);
int hj_nemesis_crashes(const hj_nemesis *n);
/* Lets the thread exit and joins it. Call after hj_cluster_teardown. */
void hj_nemesis_free(hj_nemesis *n);

#endif
