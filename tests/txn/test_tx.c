/* Unit tests of the transaction timing rules (tablet/txn/tx.h): safe time, read timestamps
 * by mode, commit timestamps and the lease, commit wait, the GC horizon. */
#include "tablet/txn/tx.h"
#include "tests/test.h"

#define T0 1800000000000000000LL
#define MS 1000000LL

static tt_interval at(int64_t mid, int64_t eps)
{
    return (tt_interval){mid - eps, mid + eps};
}

static tx_replica_time replica(int64_t paxos_safe, int64_t tm_safe)
{
    return (tx_replica_time){.paxos_safe = paxos_safe, .tm_safe = tm_safe};
}

TEST(tm_safe_without_prepared_is_infinite)
{
    CHECK(tx_tm_safe(NULL, 0) == TX_TS_INF);
    CHECK_EQ(tx_safe_time(T0, tx_tm_safe(NULL, 0)), T0);
}

TEST(tm_safe_is_one_below_the_smallest_prepare)
{
    int64_t p[] = {T0 + 50, T0 + 10, T0 + 30};
    CHECK_EQ(tx_tm_safe(p, 3), T0 + 9);
    int64_t one[] = {INT64_MIN};
    CHECK(tx_tm_safe(one, 1) == INT64_MIN); /* saturates, never wraps to +inf */
}

TEST(prepared_transaction_holds_safe_time_down)
{
    int64_t p[] = {T0 + 100};
    tx_replica_time r = replica(T0 + 500, tx_tm_safe(p, 1));
    CHECK_EQ(tx_safe_time(r.paxos_safe, r.tm_safe), T0 + 99);
    tt_interval late = at(T0 + 10 * MS, MS); /* everything here is in the past */
    CHECK(tx_can_serve(T0 + 99, late, &r));
    CHECK(!tx_can_serve(T0 + 100, late, &r)); /* it may still commit at its prepare timestamp */
    r.tm_safe = TX_TS_INF;                    /* decided */
    CHECK(tx_can_serve(T0 + 500, late, &r));
    CHECK(!tx_can_serve(T0 + 501, late, &r));
}

TEST(strong_read_uses_latest_and_waits_for_safe_time)
{
    tt_interval now = at(T0, 4 * MS);
    tx_read_bound b = {.mode = TX_READ_STRONG};
    tx_replica_time r = replica(T0, TX_TS_INF);
    int64_t ts;
    CHECK_EQ(tx_read_plan(&b, now, &r, &ts), TX_SERVE_WAIT);
    CHECK_EQ(ts, T0 + 4 * MS);
    /* Safe time reached the read timestamp, but it has not surely passed: still wait. */
    r.paxos_safe = T0 + 4 * MS;
    CHECK_EQ(tx_read_plan(&b, now, &r, &ts), TX_SERVE_WAIT);
    CHECK(!tx_can_serve(ts, now, &r));
    CHECK(!tx_can_serve(ts, at(T0 + 8 * MS, 4 * MS), &r)); /* earliest == ts */
    CHECK(tx_can_serve(ts, at(T0 + 8 * MS + 1, 4 * MS), &r));
    /* Once it has passed, safe time alone decides. */
    r.paxos_safe = T0 + 4 * MS - 1;
    CHECK(!tx_can_serve(ts, at(T0 + 20 * MS, 4 * MS), &r));
}

TEST(a_read_returns_only_the_past)
{
    CHECK(!tx_read_visible(at(T0, MS), T0 - MS)); /* earliest == t */
    CHECK(tx_read_visible(at(T0, MS), T0 - MS - 1));
    CHECK(!tx_read_visible(at(T0, MS), T0));
    /* A replica whose clock runs ahead still waits out its own uncertainty. */
    tx_replica_time r = replica(T0 + 50 * MS, TX_TS_INF);
    tx_read_bound b = {.mode = TX_READ_STRONG};
    int64_t ts;
    CHECK_EQ(tx_read_plan(&b, at(T0, MS), &r, &ts), TX_SERVE_WAIT);
    CHECK_EQ(ts, T0 + MS);
}

TEST(strong_read_at_a_caught_up_leader_uses_last_ts)
{
    tt_interval now = at(T0, 4 * MS);
    tx_read_bound b = {.mode = TX_READ_STRONG};
    tx_replica_time r = replica(T0 - 7 * MS, TX_TS_INF);
    r.leader_caught_up = true;
    int64_t ts;
    CHECK_EQ(tx_read_plan(&b, now, &r, &ts), TX_SERVE_NOW);
    CHECK_EQ(ts, T0 - 7 * MS);
    /* The last commit may still be in its commit wait: LastTS not yet in the past. */
    r.paxos_safe = T0 - 2 * MS;
    CHECK_EQ(tx_read_plan(&b, now, &r, &ts), TX_SERVE_WAIT);
    CHECK_EQ(ts, T0 - 2 * MS);
    /* With a prepared transaction, LastTS could precede its commit: back to latest. */
    int64_t p[] = {T0 - 5 * MS};
    r.tm_safe = tx_tm_safe(p, 1);
    CHECK_EQ(tx_read_plan(&b, now, &r, &ts), TX_SERVE_WAIT);
    CHECK_EQ(ts, T0 + 4 * MS);
}

TEST(exact_staleness)
{
    tt_interval now = at(T0, 2 * MS);
    tx_read_bound b = {.mode = TX_READ_EXACT_STALENESS, .staleness_ns = 10 * MS};
    tx_replica_time r = replica(T0 - 8 * MS, TX_TS_INF);
    int64_t ts;
    CHECK_EQ(tx_read_plan(&b, now, &r, &ts), TX_SERVE_NOW);
    CHECK_EQ(ts, T0 - 8 * MS); /* latest - D, equal to safe time */
    r.paxos_safe = T0 - 9 * MS;
    CHECK_EQ(tx_read_plan(&b, now, &r, &ts), TX_SERVE_WAIT);
    b.staleness_ns = -1;
    CHECK_EQ(tx_read_plan(&b, now, &r, &ts), TX_SERVE_INVALID);
    CHECK_EQ(ts, 0);
}

TEST(bounded_staleness_fresh_enough_or_behind)
{
    tt_interval now = at(T0, 2 * MS);
    tx_read_bound b = {.mode = TX_READ_BOUNDED, .staleness_ns = 10 * MS};
    tx_replica_time r = replica(T0 - 8 * MS, TX_TS_INF);
    int64_t ts;
    CHECK_EQ(tx_read_plan(&b, now, &r, &ts), TX_SERVE_NOW);
    CHECK_EQ(ts, T0 - 8 * MS); /* at safe time: no waiting */
    r.paxos_safe = T0 - 8 * MS - 1;
    CHECK_EQ(tx_read_plan(&b, now, &r, &ts), TX_SERVE_BEHIND);
    CHECK_EQ(ts, 0);
    /* A prepared transaction holds safe time, and so the bounded read, down. */
    r.paxos_safe = T0;
    int64_t p[] = {T0 - 20 * MS};
    r.tm_safe = tx_tm_safe(p, 1);
    CHECK_EQ(tx_read_plan(&b, now, &r, &ts), TX_SERVE_BEHIND);
    /* Safe time ahead of the clock: the freshest timestamp already in the past. */
    r = replica(T0 + MS, TX_TS_INF);
    b.staleness_ns = 10 * MS;
    CHECK_EQ(tx_read_plan(&b, now, &r, &ts), TX_SERVE_NOW);
    CHECK_EQ(ts, T0 - 2 * MS - 1);
    CHECK(tx_read_visible(now, ts));
    /* Nothing applied at all: behind, whatever the bound. */
    r = replica(0, TX_TS_INF);
    b.staleness_ns = INT64_MAX;
    CHECK_EQ(tx_read_plan(&b, now, &r, &ts), TX_SERVE_BEHIND);
}

TEST(read_at_a_timestamp)
{
    tt_interval now = at(T0 + 5 * MS, 2 * MS);
    tx_replica_time r = replica(T0, TX_TS_INF);
    tx_read_bound b = {.mode = TX_READ_AT, .ts = T0};
    int64_t ts;
    CHECK_EQ(tx_read_plan(&b, now, &r, &ts), TX_SERVE_NOW);
    CHECK_EQ(ts, T0);
    b.ts = T0 + 1; /* beyond safe time */
    CHECK_EQ(tx_read_plan(&b, now, &r, &ts), TX_SERVE_WAIT);
    r.paxos_safe = T0 + 10 * MS; /* within safe time, but in the future */
    b.ts = T0 + 3 * MS;
    CHECK_EQ(tx_read_plan(&b, now, &r, &ts), TX_SERVE_WAIT);
    b.ts = 0;
    CHECK_EQ(tx_read_plan(&b, now, &r, &ts), TX_SERVE_INVALID);
    b.mode = (tx_read_mode)42;
    CHECK_EQ(tx_read_plan(&b, now, &r, &ts), TX_SERVE_INVALID);
}

TEST(commit_ts_is_the_max_of_latest_last_and_prepares)
{
    tt_interval now = at(T0, 3 * MS);
    CHECK_EQ(tx_commit_ts(now, 0, NULL, 0), T0 + 3 * MS);
    CHECK_EQ(tx_commit_ts(now, T0 + 3 * MS, NULL, 0), T0 + 3 * MS + 1); /* strictly above */
    CHECK_EQ(tx_commit_ts(now, T0 + 9 * MS, NULL, 0), T0 + 9 * MS + 1);
    int64_t p[] = {T0 + MS, T0 + 20 * MS, T0 + 5 * MS};
    CHECK_EQ(tx_commit_ts(now, T0 + 9 * MS, p, 3), T0 + 20 * MS);
    CHECK_EQ(tx_commit_ts(now, INT64_MAX, NULL, 0), INT64_MAX); /* saturates */
    CHECK_EQ(tx_prepare_ts(now, T0 + 9 * MS), T0 + 9 * MS + 1);
    CHECK_EQ(tx_prepare_ts(now, 0), T0 + 3 * MS);
}

TEST(commit_ts_must_lie_inside_the_lease)
{
    int64_t start = T0, end = T0 + 10 * MS;
    CHECK(tx_ts_in_lease(T0, start, end));
    CHECK(tx_ts_in_lease(end - 1, start, end));
    CHECK(!tx_ts_in_lease(end, start, end)); /* the end is already the next leader's */
    CHECK(!tx_ts_in_lease(T0 - 1, start, end));
    CHECK(tx_ts_in_lease(5, 0, end)); /* start not tracked */
}

TEST(commit_wait)
{
    int64_t s = T0 + 3 * MS;
    CHECK(!tx_commit_wait_done(at(T0, 3 * MS), s));
    CHECK_EQ(tx_commit_wait_left(at(T0, 3 * MS), s), 6 * MS + 1);
    /* earliest == s: s may still be the present */
    CHECK(!tx_commit_wait_done(at(s + 3 * MS, 3 * MS), s));
    CHECK_EQ(tx_commit_wait_left(at(s + 3 * MS, 3 * MS), s), 1);
    CHECK(tx_commit_wait_done(at(s + 3 * MS + 1, 3 * MS), s));
    CHECK_EQ(tx_commit_wait_left(at(s + 3 * MS + 1, 3 * MS), s), 0);
    /* Waiting exactly the time it says is enough on a clock whose bound did not grow. */
    tt_interval now = at(T0 - 17, 2 * MS);
    int64_t d = tx_commit_wait_left(now, s);
    CHECK(tx_commit_wait_done((tt_interval){now.earliest + d, now.latest + d}, s));
    CHECK(!tx_commit_wait_done((tt_interval){now.earliest + d - 1, now.latest + d - 1}, s));
    CHECK_EQ(tx_commit_wait_left((tt_interval){INT64_MIN, 0}, INT64_MAX), INT64_MAX);
}

TEST(gc_horizon)
{
    tt_interval now = at(T0, 2 * MS);
    int64_t hour = 3600LL * 1000 * MS;
    /* retention is the limit when safe time is recent */
    CHECK_EQ(tx_gc_horizon(now, hour, T0), T0 - 2 * MS - hour);
    /* safe time is the limit on a lagging replica, or with a prepared transaction */
    CHECK_EQ(tx_gc_horizon(now, 0, T0 - 50 * MS), T0 - 50 * MS);
    int64_t p[] = {T0 - 80 * MS};
    CHECK_EQ(tx_gc_horizon(now, 0, tx_safe_time(T0, tx_tm_safe(p, 1))), T0 - 80 * MS - 1);
    CHECK_EQ(tx_gc_horizon(now, -5, T0 + hour), T0 - 2 * MS); /* negative retention = 0 */
    CHECK_EQ(tx_gc_horizon(at(10, 2), hour, T0), 0);          /* never below 0 */
    CHECK_EQ(tx_gc_horizon(now, INT64_MAX, T0), 0);
}

TEST_MAIN(TEST_CASE(tm_safe_without_prepared_is_infinite),
          TEST_CASE(tm_safe_is_one_below_the_smallest_prepare),
          TEST_CASE(prepared_transaction_holds_safe_time_down),
          TEST_CASE(strong_read_uses_latest_and_waits_for_safe_time),
          TEST_CASE(a_read_returns_only_the_past),
          TEST_CASE(strong_read_at_a_caught_up_leader_uses_last_ts), TEST_CASE(exact_staleness),
          TEST_CASE(bounded_staleness_fresh_enough_or_behind), TEST_CASE(read_at_a_timestamp),
          TEST_CASE(commit_ts_is_the_max_of_latest_last_and_prepares),
          TEST_CASE(commit_ts_must_lie_inside_the_lease), TEST_CASE(commit_wait),
          TEST_CASE(gc_horizon))
