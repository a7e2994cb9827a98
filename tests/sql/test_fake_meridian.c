/* The in-memory libmeridian (fake_meridian.h) keeps the promises the SQL
 * engine's unit tests rely on: own writes read back and merged into scans,
 * atomic commits at increasing timestamps, read-only transactions at one
 * timestamp, binary keys, the failure hooks, the counters, and meridian_run's
 * retries. */
#include <stdlib.h>
#include <string.h>

#include "tests/sql/fake_meridian.h"
#include "tests/test.h"

static meridian *open_db(void)
{
    meridian_options o = {.addrs = "fake:1", .insecure = 1};
    meridian *db = NULL;
    if (meridian_open(&o, &db) != MERIDIAN_OK) {
        meridian_close(db);
        return NULL;
    }
    return db;
}

static int put1(meridian *db, const char *k, const char *v, int64_t *ts)
{
    meridian_txn *t;
    int rc = meridian_begin(db, &t);
    if (rc != MERIDIAN_OK)
        return rc;
    rc = v ? meridian_put(t, k, strlen(k), v, strlen(v)) : meridian_delete(t, k, strlen(k));
    if (rc != MERIDIAN_OK) {
        meridian_rollback(t);
        return rc;
    }
    return meridian_commit(t, ts);
}

/* The value of k read by t as a string ("" when empty), "-" when not found, or "!" on error. */
static char got[256];
static const char *get1(meridian_txn *t, const char *k)
{
    void *v = NULL;
    size_t n = 0;
    int rc = meridian_get(t, k, strlen(k), &v, &n);
    if (rc == MERIDIAN_NOTFOUND)
        snprintf(got, sizeof got, "-");
    else if (rc != MERIDIAN_OK)
        snprintf(got, sizeof got, "!");
    else
        snprintf(got, sizeof got, "%.*s", (int)n, v ? (const char *)v : "");
    meridian_free(v);
    return got;
}

/* Scan rows collected as "k=v," into buf; stops after `stop_after` rows when set. */
typedef struct collect {
    char buf[1024];
    int rows, stop_after;
    meridian_txn *write_into; /* when set: put "zz" during the first row */
} collect;

static int on_row(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
    collect *c = arg;
    size_t o = strlen(c->buf);
    snprintf(c->buf + o, sizeof c->buf - o, "%.*s=%.*s,", (int)klen, (const char *)k, (int)vlen,
             (const char *)v);
    c->rows++;
    if (c->write_into && c->rows == 1)
        meridian_put(c->write_into, "zz", 2, "9", 1);
    return c->stop_after && c->rows >= c->stop_after;
}

static const char *scan(meridian_txn *t, const char *from, const char *to, size_t limit, collect *c)
{
    memset(c->buf, 0, sizeof c->buf);
    c->rows = 0;
    int rc =
        meridian_scan(t, from, from ? strlen(from) : 0, to, to ? strlen(to) : 0, limit, on_row, c);
    return rc == MERIDIAN_OK ? c->buf : "!";
}

TEST(read_your_writes_and_scan_merge)
{
    fake_meridian_reset();
    meridian *db = open_db();
    CHECK(db);
    int64_t ts1 = 0;
    meridian_txn *t;
    CHECK(meridian_begin(db, &t) == MERIDIAN_OK);
    CHECK(meridian_put(t, "a", 1, "1", 1) == MERIDIAN_OK);
    CHECK(meridian_put(t, "c", 1, "3", 1) == MERIDIAN_OK);
    CHECK(meridian_put(t, "e", 1, "5", 1) == MERIDIAN_OK);
    CHECK(meridian_put(t, "g", 1, "", 0) == MERIDIAN_OK);
    CHECK_STR(get1(t, "c"), "3");
    CHECK(meridian_commit(t, &ts1) == MERIDIAN_OK);
    CHECK(ts1 > 0);
    CHECK_EQ(fake_meridian_last_ts(), ts1);

    CHECK(meridian_begin(db, &t) == MERIDIAN_OK);
    CHECK(meridian_put(t, "b", 1, "2", 1) == MERIDIAN_OK);
    CHECK(meridian_delete(t, "c", 1) == MERIDIAN_OK);
    CHECK(meridian_put(t, "e", 1, "55", 2) == MERIDIAN_OK);
    CHECK(meridian_put(t, "e", 1, "555", 3) == MERIDIAN_OK); /* the last write counts */
    CHECK_STR(get1(t, "c"), "-");
    CHECK_STR(get1(t, "e"), "555");
    CHECK_STR(get1(t, "g"), "");
    int64_t vts = -1;
    void *v = NULL;
    size_t n = 0;
    CHECK(meridian_get_version(t, "a", 1, &v, &n, &vts) == MERIDIAN_OK);
    meridian_free(v);
    CHECK_EQ(vts, ts1);
    CHECK(meridian_get_version(t, "e", 1, &v, &n, &vts) == MERIDIAN_OK);
    meridian_free(v);
    CHECK_EQ(vts, 0); /* its own write */
    collect c = {0};
    CHECK_STR(scan(t, NULL, NULL, 0, &c), "a=1,b=2,e=555,g=,");
    CHECK_STR(scan(t, "b", "g", 0, &c), "b=2,e=555,");
    CHECK_STR(scan(t, "bb", NULL, 1, &c), "e=555,");
    c.stop_after = 2;
    CHECK_STR(scan(t, NULL, NULL, 0, &c), "a=1,b=2,");
    c.stop_after = 0;
    /* a callback writing into the transaction it scans: the scan goes on, and sees it */
    c.write_into = t;
    CHECK_STR(scan(t, NULL, NULL, 0, &c), "a=1,b=2,e=555,g=,zz=9,");
    c.write_into = NULL;
    meridian_txn *other;
    CHECK(meridian_begin(db, &other) == MERIDIAN_OK);
    CHECK_STR(scan(other, NULL, NULL, 0, &c), "a=1,c=3,e=5,g=,"); /* nothing leaked */
    meridian_rollback(other);
    int64_t ts2 = 0;
    CHECK(meridian_commit(t, &ts2) == MERIDIAN_OK);
    CHECK(ts2 > ts1);
    CHECK(meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t) == MERIDIAN_OK);
    CHECK_STR(scan(t, NULL, NULL, 0, &c), "a=1,b=2,e=555,g=,zz=9,");
    CHECK(meridian_commit(t, NULL) == MERIDIAN_OK);
    CHECK_EQ(fake_meridian_live_keys(), 5);
    CHECK_EQ(fake_meridian_stats_get().open_txns, 0);
    meridian_close(db);
}

TEST(binary_keys)
{
    fake_meridian_reset();
    meridian *db = open_db();
    CHECK(db);
    meridian_txn *t;
    CHECK(meridian_begin(db, &t) == MERIDIAN_OK);
    const uint8_t k1[] = {0x15, 0x00, 0xFF, 0x00, 0x01}, k2[] = {0x15, 0x00, 0xFF}, k3[] = {0xFF},
                  val[] = {0x00, 0x80, 0xFF};
    CHECK(meridian_put(t, k1, sizeof k1, val, sizeof val) == MERIDIAN_OK);
    CHECK(meridian_put(t, k2, sizeof k2, "x", 1) == MERIDIAN_OK);
    CHECK(meridian_put(t, k3, sizeof k3, "y", 1) == MERIDIAN_OK);
    const uint8_t sys[] = {0x00, 0x01};
    CHECK(meridian_put(t, sys, sizeof sys, "z", 1) == MERIDIAN_INVALID);
    CHECK(strstr(meridian_errmsg(db), "0x00"));
    CHECK(meridian_put(t, "", 0, "z", 1) == MERIDIAN_INVALID);
    static char big[MERIDIAN_KEY_MAX + 1];
    memset(big, 'k', sizeof big);
    CHECK(meridian_put(t, big, sizeof big, "z", 1) == MERIDIAN_INVALID);
    CHECK(meridian_put(t, big, MERIDIAN_KEY_MAX, "z", 1) == MERIDIAN_OK);
    CHECK(meridian_commit(t, NULL) == MERIDIAN_OK); /* misuse did not doom it */
    CHECK(meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t) == MERIDIAN_OK);
    void *v = NULL;
    size_t n = 0;
    CHECK(meridian_get(t, k1, sizeof k1, &v, &n) == MERIDIAN_OK);
    int same = n == sizeof val && memcmp(v, val, n) == 0;
    meridian_free(v);
    CHECK(same);
    /* keys order as bytes: k2 (a prefix) < k1 < 'k...' < 0xFF */
    collect c = {0};
    CHECK(meridian_scan(t, NULL, 0, NULL, 0, 0, on_row, &c) == MERIDIAN_OK);
    CHECK_EQ(c.rows, 4);
    CHECK(meridian_scan(t, k2, sizeof k2, k3, sizeof k3, 0, on_row, &c) == MERIDIAN_OK);
    CHECK_EQ(c.rows, 7);
    CHECK(meridian_check_key(sys, sizeof sys, NULL, 0) == MERIDIAN_INVALID);
    CHECK(meridian_check_key(k1, sizeof k1, NULL, 0) == MERIDIAN_OK);
    CHECK(meridian_check_value(val, sizeof val, NULL, 0) == MERIDIAN_OK);
    CHECK(meridian_commit(t, NULL) == MERIDIAN_OK);
    meridian_close(db);
}

TEST(snapshots)
{
    fake_meridian_reset();
    meridian *db = open_db();
    CHECK(db);
    int64_t ts1, ts2, ts3;
    CHECK(put1(db, "k", "v1", &ts1) == MERIDIAN_OK);
    CHECK(put1(db, "k", "v2", &ts2) == MERIDIAN_OK);
    CHECK(put1(db, "k", NULL, &ts3) == MERIDIAN_OK);
    CHECK(ts1 < ts2 && ts2 < ts3);
    meridian_txn *t;
    CHECK(meridian_begin_ro(db, MERIDIAN_AT_TIMESTAMP, ts1, &t) == MERIDIAN_OK);
    CHECK_STR(get1(t, "k"), "v1");
    int64_t rts = 0;
    CHECK(meridian_commit(t, &rts) == MERIDIAN_OK);
    CHECK_EQ(rts, ts1);
    CHECK(meridian_begin_ro(db, MERIDIAN_AT_TIMESTAMP, ts2 + 1, &t) == MERIDIAN_OK);
    CHECK_STR(get1(t, "k"), "v2");
    meridian_rollback(t);
    CHECK(meridian_begin_ro(db, MERIDIAN_AT_TIMESTAMP, ts1 - 1, &t) == MERIDIAN_OK);
    CHECK_STR(get1(t, "k"), "-");
    meridian_rollback(t);
    /* a strong snapshot is fixed by its first read */
    CHECK(put1(db, "k", "v4", NULL) == MERIDIAN_OK);
    CHECK(meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t) == MERIDIAN_OK);
    CHECK_EQ(meridian_read_ts(t), 0);
    CHECK_STR(get1(t, "k"), "v4");
    int64_t fixed = meridian_read_ts(t);
    CHECK(fixed > ts3);
    int64_t ts5;
    CHECK(put1(db, "k", "v5", &ts5) == MERIDIAN_OK);
    CHECK(ts5 > fixed);
    CHECK_STR(get1(t, "k"), "v4");
    CHECK(meridian_put(t, "k", 1, "x", 1) == MERIDIAN_INVALID);
    CHECK(meridian_commit(t, NULL) == MERIDIAN_OK);
    /* an hour of exact staleness reads before everything */
    CHECK(meridian_begin_ro(db, MERIDIAN_EXACT_STALENESS, 3600LL * 1000000000, &t) == MERIDIAN_OK);
    CHECK_STR(get1(t, "k"), "-");
    meridian_rollback(t);
    CHECK(meridian_begin_ro(db, MERIDIAN_MAX_STALENESS, 1000000000, &t) == MERIDIAN_OK);
    CHECK_STR(get1(t, "k"), "v5");
    meridian_rollback(t);
    /* a future timestamp: later commits land after it */
    int64_t future = fake_meridian_last_ts() + 1000000000;
    CHECK(meridian_begin_ro(db, MERIDIAN_AT_TIMESTAMP, future, &t) == MERIDIAN_OK);
    CHECK_STR(get1(t, "k"), "v5");
    int64_t ts6;
    CHECK(put1(db, "k", "v6", &ts6) == MERIDIAN_OK);
    CHECK(ts6 > future);
    CHECK_STR(get1(t, "k"), "v5");
    meridian_rollback(t);
    CHECK(meridian_begin_ro(db, MERIDIAN_AT_TIMESTAMP, 0, &t) == MERIDIAN_INVALID);
    CHECK(meridian_begin_ro(db, (meridian_bound)9, 0, &t) == MERIDIAN_INVALID);
    CHECK_EQ(fake_meridian_stats_get().open_txns, 0);
    meridian_close(db);
}

TEST(commit_hooks)
{
    fake_meridian_reset();
    meridian *db = open_db();
    CHECK(db);
    meridian_txn *t;
    /* aborted: nothing applied */
    fake_meridian_fail_commit(MERIDIAN_ABORTED, 1, true);
    CHECK(meridian_begin(db, &t) == MERIDIAN_OK);
    CHECK(meridian_put(t, "a", 1, "1", 1) == MERIDIAN_OK);
    CHECK(meridian_put(t, "b", 1, "1", 1) == MERIDIAN_OK);
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_ABORTED);
    CHECK(strstr(meridian_errmsg(db), "test hook"));
    CHECK_EQ(fake_meridian_live_keys(), 0);
    /* the hook was used up */
    CHECK(put1(db, "a", "1", NULL) == MERIDIAN_OK);
    /* unknown, not applied; then unknown, applied (both keys: atomic) */
    fake_meridian_fail_commit(MERIDIAN_UNKNOWN, 1, false);
    CHECK(meridian_begin(db, &t) == MERIDIAN_OK);
    CHECK(meridian_put(t, "b", 1, "2", 1) == MERIDIAN_OK);
    CHECK(meridian_put(t, "c", 1, "2", 1) == MERIDIAN_OK);
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_UNKNOWN);
    CHECK_EQ(fake_meridian_live_keys(), 1);
    fake_meridian_fail_commit(MERIDIAN_UNKNOWN, 1, true);
    CHECK(meridian_begin(db, &t) == MERIDIAN_OK);
    CHECK(meridian_put(t, "b", 1, "2", 1) == MERIDIAN_OK);
    CHECK(meridian_put(t, "c", 1, "2", 1) == MERIDIAN_OK);
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_UNKNOWN);
    CHECK_EQ(fake_meridian_live_keys(), 3);
    /* an empty transaction never reaches a node: the hook waits for a real commit */
    fake_meridian_fail_commit(MERIDIAN_UNAVAILABLE, 1, false);
    CHECK(meridian_begin(db, &t) == MERIDIAN_OK);
    int64_t ts = -1;
    CHECK(meridian_commit(t, &ts) == MERIDIAN_OK);
    CHECK_EQ(ts, 0);
    CHECK_EQ(put1(db, "d", "1", NULL), MERIDIAN_UNAVAILABLE);
    CHECK_EQ(fake_meridian_live_keys(), 3);
    fake_meridian_stats s = fake_meridian_stats_get();
    CHECK_EQ(s.failed_commits, 4);
    CHECK_EQ(s.commits, 2);
    CHECK_EQ(s.open_txns, 0);
    meridian_close(db);
}

TEST(commit_deadline)
{
    fake_meridian_reset();
    meridian *db = open_db();
    CHECK(db);
    CHECK(put1(db, "a", "1", NULL) == MERIDIAN_OK);
    int64_t before = fake_meridian_last_ts();
    meridian_txn *t;
    /* far ahead: commits below it */
    CHECK(meridian_begin(db, &t) == MERIDIAN_OK);
    CHECK(meridian_put(t, "b", 1, "1", 1) == MERIDIAN_OK);
    CHECK(meridian_set_commit_before(t, before + 3600 * 1000000000LL) == MERIDIAN_OK);
    int64_t ts = 0;
    CHECK(meridian_commit(t, &ts) == MERIDIAN_OK);
    CHECK(ts > before && ts < before + 3600 * 1000000000LL);
    CHECK_EQ(meridian_commit_wait_ns(db), 0);
    /* passed (the last timestamp handed out): aborted, nothing applied, retryable */
    CHECK(meridian_begin(db, &t) == MERIDIAN_OK);
    CHECK(meridian_put(t, "c", 1, "1", 1) == MERIDIAN_OK);
    CHECK(meridian_set_commit_before(t, fake_meridian_last_ts()) == MERIDIAN_OK);
    CHECK_EQ(meridian_commit(t, &ts), MERIDIAN_ABORTED);
    CHECK(strstr(meridian_errmsg(db), "commit deadline passed"));
    CHECK_EQ(ts, 0);
    CHECK_EQ(fake_meridian_live_keys(), 2);
    /* 0 clears it */
    CHECK(meridian_begin(db, &t) == MERIDIAN_OK);
    CHECK(meridian_put(t, "c", 1, "1", 1) == MERIDIAN_OK);
    CHECK(meridian_set_commit_before(t, 1) == MERIDIAN_OK);
    CHECK(meridian_set_commit_before(t, 0) == MERIDIAN_OK);
    CHECK(meridian_commit(t, NULL) == MERIDIAN_OK);
    CHECK_EQ(fake_meridian_live_keys(), 3);
    /* misuse */
    CHECK(meridian_begin(db, &t) == MERIDIAN_OK);
    CHECK_EQ(meridian_set_commit_before(t, -1), MERIDIAN_INVALID);
    meridian_rollback(t);
    CHECK(meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t) == MERIDIAN_OK);
    CHECK_EQ(meridian_set_commit_before(t, 1), MERIDIAN_INVALID);
    meridian_rollback(t);
    CHECK_EQ(meridian_set_commit_before(NULL, 1), MERIDIAN_INVALID);
    CHECK_EQ(meridian_commit_wait_ns(NULL), 0);
    fake_meridian_stats s = fake_meridian_stats_get();
    CHECK_EQ(s.deadline_aborts, 1);
    CHECK_EQ(s.open_txns, 0);
    meridian_close(db);
}

TEST(read_hooks_and_counters)
{
    fake_meridian_reset();
    meridian *db = open_db();
    CHECK(db);
    CHECK(put1(db, "a", "1", NULL) == MERIDIAN_OK);
    CHECK(put1(db, "b", "2", NULL) == MERIDIAN_OK);
    CHECK(put1(db, "c", "3", NULL) == MERIDIAN_OK);
    fake_meridian_stats_reset();
    meridian_txn *t;
    CHECK(meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t) == MERIDIAN_OK);
    CHECK_STR(get1(t, "a"), "1");
    CHECK_STR(get1(t, "x"), "-");
    collect c = {0};
    CHECK_STR(scan(t, "b", NULL, 0, &c), "b=2,c=3,");
    meridian_rollback(t);
    fake_meridian_stats s = fake_meridian_stats_get();
    CHECK_EQ(s.gets, 2);
    CHECK_EQ(s.scans, 1);
    CHECK_EQ(s.rows, 3);
    CHECK_EQ(s.begins_ro, 1);
    CHECK_EQ(s.begins, 0);
    CHECK_EQ(s.rollbacks, 1);

    /* a failed read dooms a read-write transaction: its commit fails alike, nothing applied */
    fake_meridian_fail_read(MERIDIAN_ABORTED, 1);
    CHECK(meridian_begin(db, &t) == MERIDIAN_OK);
    CHECK(meridian_put(t, "d", 1, "4", 1) == MERIDIAN_OK);
    CHECK_STR(scan(t, NULL, NULL, 0, &c), "!");
    CHECK_STR(get1(t, "a"), "!");
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_ABORTED);
    CHECK_EQ(fake_meridian_live_keys(), 3);
    /* not a read-only one */
    fake_meridian_fail_read(MERIDIAN_UNAVAILABLE, 1);
    CHECK(meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t) == MERIDIAN_OK);
    void *v = NULL;
    size_t n;
    CHECK_EQ(meridian_get(t, "a", 1, &v, &n), MERIDIAN_UNAVAILABLE);
    CHECK_STR(get1(t, "a"), "1");
    CHECK(meridian_commit(t, NULL) == MERIDIAN_OK);
    s = fake_meridian_stats_get();
    CHECK_EQ(s.gets, 3); /* the failed reads never reached the store */
    CHECK_EQ(s.scans, 1);
    fake_meridian_reset();
    CHECK_EQ(fake_meridian_live_keys(), 0);
    CHECK_EQ(fake_meridian_stats_get().gets, 0);
    meridian_close(db);
}

static int run_put(meridian_txn *t, void *arg)
{
    int *calls = arg;
    (*calls)++;
    void *v = NULL;
    size_t n;
    int rc = meridian_get(t, "n", 1, &v, &n);
    if (rc != MERIDIAN_OK && rc != MERIDIAN_NOTFOUND)
        return rc;
    char buf[16];
    snprintf(buf, sizeof buf, "%d", (rc == MERIDIAN_OK ? atoi(v) : 0) + 1);
    meridian_free(v);
    return meridian_put(t, "n", 1, buf, strlen(buf));
}

static int run_misuse(meridian_txn *t, void *arg)
{
    int *rc = arg;
    *rc = meridian_commit(t, NULL);
    meridian_rollback(t); /* refused too: the runner owns t */
    return MERIDIAN_OK;
}

TEST(run_retries)
{
    fake_meridian_reset();
    meridian *db = open_db();
    CHECK(db);
    int calls = 0;
    int64_t ts = 0;
    fake_meridian_fail_commit(MERIDIAN_ABORTED, 2, false);
    CHECK_EQ(meridian_run(db, 5000, run_put, &calls, &ts), MERIDIAN_OK);
    CHECK_EQ(calls, 3);
    CHECK(ts > 0);
    fake_meridian_fail_read(MERIDIAN_UNAVAILABLE, 1);
    CHECK_EQ(meridian_run(db, 5000, run_put, &calls, NULL), MERIDIAN_OK);
    CHECK_EQ(calls, 5);
    meridian_txn *t;
    CHECK(meridian_begin(db, &t) == MERIDIAN_OK);
    CHECK_STR(get1(t, "n"), "2"); /* each run counted once */
    meridian_rollback(t);
    /* unknown is never retried */
    fake_meridian_fail_commit(MERIDIAN_UNKNOWN, 1, false);
    CHECK_EQ(meridian_run(db, 5000, run_put, &calls, NULL), MERIDIAN_UNKNOWN);
    CHECK_EQ(calls, 6);
    /* the deadline */
    fake_meridian_fail_commit(MERIDIAN_ABORTED, 1000000, false);
    CHECK_EQ(meridian_run(db, 30, run_put, &calls, NULL), MERIDIAN_TIMEOUT);
    CHECK(strstr(meridian_errmsg(db), "gave up"));
    fake_meridian_fail_commit(0, 0, false);
    int inner = -1;
    CHECK_EQ(meridian_run(db, 5000, run_misuse, &inner, NULL), MERIDIAN_OK);
    CHECK_EQ(inner, MERIDIAN_INVALID);
    CHECK_EQ(meridian_run(db, 5000, NULL, NULL, NULL), MERIDIAN_INVALID);
    CHECK_EQ(fake_meridian_stats_get().open_txns, 0);
    meridian_close(db);
}

TEST(misuse)
{
    meridian *db = NULL;
    CHECK_EQ(meridian_open(NULL, &db), MERIDIAN_INVALID);
    CHECK(db);
    meridian_close(db);
    meridian_options o = {0};
    CHECK_EQ(meridian_open(&o, &db), MERIDIAN_INVALID);
    CHECK(strstr(meridian_errmsg(db), "addrs"));
    meridian_close(db);
    CHECK(meridian_begin(NULL, NULL) == MERIDIAN_INVALID);
    CHECK(meridian_commit(NULL, NULL) == MERIDIAN_INVALID);
    meridian_rollback(NULL);
    CHECK_EQ(meridian_txn_id(NULL), 0);
    CHECK_STR(meridian_errstr(MERIDIAN_UNKNOWN), "outcome unknown");
    CHECK_STR(meridian_errstr(99), "unknown code");
}

TEST_MAIN(TEST_CASE(read_your_writes_and_scan_merge), TEST_CASE(binary_keys), TEST_CASE(snapshots),
          TEST_CASE(commit_hooks), TEST_CASE(commit_deadline), TEST_CASE(read_hooks_and_counters),
          TEST_CASE(run_retries), TEST_CASE(misuse))
