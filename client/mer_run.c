/* meridian_run: a read-write transaction retried on retryable failures with
 * jittered exponential backoff until a deadline. The first attempt's start
 * time stays the priority of every retry, so under wound-wait a transaction
 * that keeps losing grows older than its rivals and eventually wins. */
#include <string.h>
#include <time.h>

#include "client/mer_int.h"
#include "common/mr_util.h"

#define MER_RUN_DEFAULT_MS 30000
/* The first retry waits about one transaction's time on hot keys (a read and a two-phase
 * commit: 15-25 ms on bench-contention's 5 keys at 3 clients), not less: the rival that
 * wounded or refused it is still holding the key sooner than that. Measured alternately, five
 * runs each (docs/goodput.md section 8): base 20 ms committed 21-23 % more than 5 ms at 3, 12
 * and 48 clients alike (12 of 15 cells higher), 48-client p99 566-740 ms against 584-882 ms;
 * no backoff at all was worse than 5 ms (section 2.5). */
#define MER_RUN_BASE_MS 20
#define MER_RUN_CAP_MS  1000

int64_t mer_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms, uint64_t r)
{
    int64_t d = base_ms > 0 ? base_ms : 1;
    for (unsigned i = 0; i < attempt && d < cap_ms; i++)
        d *= 2;
    if (d > cap_ms)
        d = cap_ms;
    /* "Equal jitter": half fixed, so the delay still grows; half random, so
     * rivals that collided do not collide again in step. */
    int64_t half = d / 2;
    return d - half + (half > 0 ? (int64_t)(r % (uint64_t)(half + 1)) : 0);
}

static bool retryable(int rc)
{
    return rc == MERIDIAN_ABORTED || rc == MERIDIAN_UNAVAILABLE;
}

int meridian_run(meridian *db, int64_t deadline_ms, meridian_txn_fn fn, void *arg, int64_t *ts)
{
    if (ts)
        *ts = 0;
    if (!db)
        return MERIDIAN_INVALID;
    mer_clear(db);
    if (!fn || deadline_ms < 0)
        return mer_fail(db, MERIDIAN_INVALID, "meridian_run: %s",
                        fn ? "negative deadline" : "fn is NULL");
    int64_t start = mr_monotonic_ns();
    int64_t end = start + (deadline_ms ? deadline_ms : MER_RUN_DEFAULT_MS) * MR_NS_PER_MS;
    int64_t prio = mr_realtime_ns();
    for (unsigned attempt = 0;; attempt++) {
        meridian_txn *t;
        int rc = mer_begin_prio(db, prio, &t);
        if (rc != MERIDIAN_OK)
            return rc;
        t->in_run = true;
        rc = fn(t, arg);
        if (rc == MERIDIAN_OK) {
            rc = mer_commit(t, ts);
        } else {
            /* Keep the callback's message: rollback's requests may overwrite it. */
            char msg[sizeof db->errmsg];
            memcpy(msg, db->errmsg, sizeof msg);
            mer_rollback(t);
            memcpy(db->errmsg, msg, sizeof msg);
        }
        if (rc == MERIDIAN_OK || !retryable(rc))
            return rc;
        int64_t delay = mer_backoff_ms(attempt, MER_RUN_BASE_MS, MER_RUN_CAP_MS, mer_rand(db));
        if (mr_monotonic_ns() + delay * MR_NS_PER_MS > end) {
            char last[sizeof db->errmsg];
            memcpy(last, db->errmsg, sizeof last);
            return mer_fail(db, MERIDIAN_TIMEOUT,
                            "meridian_run: gave up after %u attempts in %lld ms; last: %s: %.400s",
                            attempt + 1, (long long)((mr_monotonic_ns() - start) / MR_NS_PER_MS),
                            meridian_errstr(rc), last);
        }
        struct timespec d = {delay / 1000, (delay % 1000) * 1000000L};
        nanosleep(&d, NULL);
    }
}
