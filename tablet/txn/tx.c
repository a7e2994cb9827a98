/* The timing rules of Spanner §4 (see tx.h): safe time, read timestamps, commit
 * timestamps, commit wait and the GC horizon, as arithmetic on TrueTime intervals. */
#include "tablet/txn/tx.h"

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* a - b, clamped to [INT64_MIN, INT64_MAX]; b >= 0. */
static int64_t sub_sat(int64_t a, int64_t b)
{
    return a < INT64_MIN + b ? INT64_MIN : a - b;
}

/* a + 1 without overflow. */
static int64_t inc_sat(int64_t a)
{
    return a == INT64_MAX ? INT64_MAX : a + 1;
}

int64_t tx_tm_safe(const int64_t *prepare_ts, size_t n)
{
    int64_t m = TX_TS_INF;
    for (size_t i = 0; i < n; i++)
        m = min64(m, prepare_ts[i]);
    /* The smallest prepared transaction may commit exactly at its prepare timestamp, so a
     * read there must wait for its decision; one below it is safe. */
    return m == TX_TS_INF ? TX_TS_INF : sub_sat(m, 1);
}

int64_t tx_safe_time(int64_t paxos_safe, int64_t tm_safe)
{
    return min64(paxos_safe, tm_safe);
}

static int64_t replica_safe(const tx_replica_time *r)
{
    return tx_safe_time(r->paxos_safe, r->tm_safe);
}

bool tx_read_visible(tt_interval now, int64_t t)
{
    return tt_interval_after(now, t);
}

bool tx_can_serve(int64_t s_read, tt_interval now, const tx_replica_time *r)
{
    return s_read <= replica_safe(r) && tx_read_visible(now, s_read);
}

tx_serve tx_read_plan(const tx_read_bound *b, tt_interval now, const tx_replica_time *r,
                      int64_t *s_read)
{
    *s_read = 0;
    int64_t safe = replica_safe(r), ts;
    switch (b->mode) {
    case TX_READ_STRONG:
        /* LastTS (§4.2.2) only when no prepared transaction could commit below now.latest. */
        if (r->leader_caught_up && r->tm_safe == TX_TS_INF && r->paxos_safe > 0)
            ts = r->paxos_safe;
        else
            ts = now.latest;
        break;
    case TX_READ_EXACT_STALENESS:
        if (b->staleness_ns < 0)
            return TX_SERVE_INVALID;
        ts = max64(sub_sat(now.latest, b->staleness_ns), 1);
        break;
    case TX_READ_BOUNDED:
        if (b->staleness_ns < 0)
            return TX_SERVE_INVALID;
        /* The freshest timestamp this replica can serve without waiting, if fresh enough. */
        ts = min64(safe, sub_sat(now.earliest, 1));
        if (ts < 1 || ts < sub_sat(now.latest, b->staleness_ns))
            return TX_SERVE_BEHIND;
        *s_read = ts;
        return TX_SERVE_NOW;
    case TX_READ_AT:
        if (b->ts < 1)
            return TX_SERVE_INVALID;
        ts = b->ts;
        break;
    default:
        return TX_SERVE_INVALID;
    }
    *s_read = ts;
    return tx_can_serve(ts, now, r) ? TX_SERVE_NOW : TX_SERVE_WAIT;
}

int64_t tx_commit_ts(tt_interval now, int64_t last_assigned, const int64_t *prepare_ts, size_t n)
{
    int64_t s = max64(now.latest, inc_sat(last_assigned));
    for (size_t i = 0; i < n; i++)
        s = max64(s, prepare_ts[i]);
    return s;
}

int64_t tx_prepare_ts(tt_interval now, int64_t last_assigned)
{
    return tx_commit_ts(now, last_assigned, NULL, 0);
}

bool tx_ts_in_lease(int64_t s, int64_t lease_start, int64_t lease_end)
{
    return s >= lease_start && s < lease_end;
}

bool tx_commit_wait_done(tt_interval now, int64_t s)
{
    return tt_interval_after(now, s);
}

int64_t tx_commit_wait_left(tt_interval now, int64_t s)
{
    if (tx_commit_wait_done(now, s))
        return 0;
    /* earliest + d > s  <=>  d >= s - earliest + 1; here s >= earliest. */
    if (now.earliest < 0 && s > INT64_MAX + now.earliest)
        return INT64_MAX;
    return inc_sat(s - now.earliest);
}

int64_t tx_gc_horizon(tt_interval now, int64_t retention_ns, int64_t safe)
{
    if (retention_ns < 0)
        retention_ns = 0;
    return max64(min64(sub_sat(now.earliest, retention_ns), safe), 0);
}
