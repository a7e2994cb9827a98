/* The run context shared by the harness's parts: the history being recorded (one lock, so
 * that the order of the lines is the order in which the harness observed the events, as
 * jepsen/README.md requires), the run's time origin, and a small seeded RNG.
 *
 * Threads: the clients record from the main (libuv) thread, the nemesis from its own thread;
 * hj_record is the only entry point to the history while both run. */
#ifndef HJ_RUN_H
#define HJ_RUN_H

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/mr_err.h"
#include "jepsen/history.h"

typedef struct hj_run {
    jp_history hist; /* owned; freed by hj_run_free */
    pthread_mutex_t mu;
    int64_t t0;      /* monotonic ns at the start of the run; history times are relative */
    int64_t t0_wall; /* the same instant, CLOCK_REALTIME ns (for the summary) */
    int record_errs; /* operations the history refused (a harness bug); 0 expected */
    mr_err first_err;
} hj_run;

void hj_run_init(hj_run *r);
void hj_run_free(hj_run *r);

/* Nanoseconds since r->t0 (monotonic). */
int64_t hj_elapsed(const hj_run *r);

/* Appends one operation stamped with the current time, under the lock. `key` is copied
 * (may be NULL), `value` stolen (NULL: null). A refused operation is counted and logged, the
 * run goes on; the first error is kept for the summary. */
void hj_record(hj_run *r, int64_t process, jp_type type, const char *f, const json_t *key,
               json_t *value);

/* Set by SIGINT/SIGTERM (the handler only sets it); every loop of the harness checks it. */
extern volatile sig_atomic_t hj_interrupted;

/* The range boundaries that give each of `groups` data groups its own key range, for
 * `meridian init --split-at`: "r01,r02,...,r<groups-1>" (empty for one group). The
 * transactional workloads name their keys "r<range>/..." accordingly (hj_txn_key). */
void hj_split_at(int groups, char *buf, size_t len);

/* splitmix64: a small seeded generator per component (not thread-shared). */
typedef struct hj_rng {
    uint64_t s;
} hj_rng;
uint64_t hj_rng_next(hj_rng *g);
/* Uniform in [0, n) (n > 0). */
uint64_t hj_rng_below(hj_rng *g, uint64_t n);
/* Uniform in [lo, hi]. */
int64_t hj_rng_range(hj_rng *g, int64_t lo, int64_t hi);

#endif
