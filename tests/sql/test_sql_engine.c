/* The SQL engine over the in-memory libmeridian (fake_meridian.h): tables,
 * types and constraints as SQLite applies them, transactions, savepoints,
 * failures of the store and what the session makes of them, the catalog
 * shared between sessions. */
#include <stdlib.h>
#include <string.h>

#include "common/mr_util.h"
#include "tests/sql/fake_meridian.h"
#include "tests/sql/sql_test_util.h"
#include "tests/test.h"

static msql *session(void)
{
    return sqt_session(2000);
}

/* A fresh store (with a short schema lease) and a session over it. */
static msql *fresh(void)
{
    return sqt_fresh(2000);
}

#define EXPECT SQT_EXPECT

TEST(create_insert_select)
{
    msql *s = fresh();
    CHECK(s);
    EXPECT(s, "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c REAL)", "");
    EXPECT(s, "INSERT INTO t VALUES(2, 'two', 2.5), (1, 'one', 1)", "");
    EXPECT(s, "SELECT * FROM t", "1|one|1.0\n2|two|2.5\n");
    EXPECT(s, "SELECT b FROM t WHERE a = 2", "two\n");
    EXPECT(s, "SELECT count(*), sum(c) FROM t", "2|3.5\n");
    EXPECT(s, "SHOW TABLES", "t\n");
    EXPECT(s, "SHOW CREATE TABLE t", "t|CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c REAL)\n");
    EXPECT(s, "SELECT * FROM nosuch", "ERR 1: no such table: nosuch");
    msql_close(s);
}

TEST(affinity_and_types)
{
    msql *s = fresh();
    CHECK(s);
    EXPECT(s, "CREATE TABLE t(k INTEGER PRIMARY KEY, i INTEGER, r REAL, n NUMERIC, x TEXT, b BLOB)",
           "");
    EXPECT(s, "INSERT INTO t VALUES(1, '7', '3', '4.0', 5, '9')", "");
    EXPECT(s, "SELECT typeof(i), typeof(r), typeof(n), typeof(x), typeof(b), i, r, n, x, b FROM t",
           "integer|real|integer|text|text|7|3.0|4|5|9\n");
    EXPECT(s, "INSERT INTO t VALUES('x', 1, 1, 1, 1, 1)", "ERR 1: datatype mismatch");
    EXPECT(s, "CREATE TABLE s(a INT PRIMARY KEY, b TEXT) STRICT", "");
    EXPECT(s, "INSERT INTO s VALUES(1, 2)", "");
    EXPECT(s, "INSERT INTO s VALUES('x', 'y')", "ERR 1: cannot store TEXT value in INT column s.a");
    EXPECT(s, "SELECT a, typeof(b) FROM s", "1|text\n");
    msql_close(s);
}

TEST(constraints)
{
    msql *s = fresh();
    CHECK(s);
    EXPECT(s,
           "CREATE TABLE t(a INT, b TEXT NOT NULL DEFAULT 'dflt', c INT CHECK (c > 0), "
           "PRIMARY KEY (a, b))",
           "");
    EXPECT(s, "INSERT INTO t(a, c) VALUES(1, 5)", "");
    EXPECT(s, "SELECT * FROM t", "1|dflt|5\n");
    EXPECT(s, "INSERT INTO t VALUES(2, NULL, 1)", "ERR 1: NOT NULL constraint failed: t.b");
    EXPECT(s, "INSERT INTO t VALUES(2, 'x', 0)", "ERR 1: CHECK constraint failed: c > 0");
    EXPECT(s, "INSERT INTO t VALUES(1, 'dflt', 7)", "ERR 1: UNIQUE constraint failed: t.a, t.b");
    /* nothing of a failed multi-row statement stays */
    EXPECT(s, "INSERT INTO t VALUES(3, 'a', 1), (4, 'b', -1)",
           "ERR 1: CHECK constraint failed: c > 0");
    EXPECT(s, "SELECT count(*) FROM t", "1\n");
    EXPECT(s, "INSERT OR IGNORE INTO t VALUES(1, 'dflt', 9), (5, 'e', 5)", "");
    EXPECT(s, "SELECT * FROM t", "1|dflt|5\n5|e|5\n");
    EXPECT(s, "INSERT OR REPLACE INTO t VALUES(1, 'dflt', 9)", "");
    EXPECT(s, "REPLACE INTO t VALUES(5, 'e', 6)", "");
    EXPECT(s, "SELECT * FROM t", "1|dflt|9\n5|e|6\n");
    /* OR FAIL keeps the rows before the failure */
    EXPECT(s, "INSERT OR FAIL INTO t VALUES(6, 'f', 1), (1, 'dflt', 1), (7, 'g', 1)",
           "ERR 1: UNIQUE constraint failed: t.a, t.b");
    EXPECT(s, "SELECT a FROM t", "1\n5\n6\n");
    msql_close(s);
}

TEST(update_delete)
{
    msql *s = fresh();
    CHECK(s);
    EXPECT(s, "CREATE TABLE t(a INT PRIMARY KEY, b INT)", "");
    EXPECT(s, "INSERT INTO t VALUES(1, 10), (2, 20), (3, 30)", "");
    EXPECT(s, "UPDATE t SET b = b + 1 WHERE a >= 2", "");
    EXPECT(s, "SELECT * FROM t", "1|10\n2|21\n3|31\n");
    /* a key change moves the row */
    EXPECT(s, "UPDATE t SET a = 10 WHERE a = 1", "");
    EXPECT(s, "SELECT * FROM t", "2|21\n3|31\n10|10\n");
    EXPECT(s, "UPDATE t SET a = 3 WHERE a = 2", "ERR 1: UNIQUE constraint failed: t.a");
    EXPECT(s, "DELETE FROM t WHERE b > 30", "");
    EXPECT(s, "SELECT * FROM t", "2|21\n10|10\n");
    EXPECT(s, "DELETE FROM t", "");
    EXPECT(s, "SELECT count(*) FROM t", "0\n");
    CHECK_EQ(fake_meridian_live_keys(), 3); /* the catalog: version, id counter, one descriptor */
    msql_close(s);
}

TEST(transactions)
{
    msql *s = fresh();
    CHECK(s);
    EXPECT(s, "CREATE TABLE t(a INT PRIMARY KEY, b INT)", "");
    EXPECT(s, "BEGIN; INSERT INTO t VALUES(1, 1); SELECT * FROM t", "1|1\n");
    CHECK(msql_in_transaction(s));
    msql *o = session();
    CHECK(o);
    EXPECT(o, "SELECT count(*) FROM t", "0\n"); /* not committed yet */
    EXPECT(s, "INSERT INTO t VALUES(2, 2), (1, 5)", "ERR 1: UNIQUE constraint failed: t.a");
    CHECK(msql_in_transaction(s)); /* the statement failed; the transaction goes on */
    EXPECT(s, "SELECT * FROM t", "1|1\n");
    EXPECT(s, "COMMIT", "");
    CHECK(!msql_in_transaction(s));
    CHECK(msql_commit_ts(s) > 0);
    EXPECT(o, "SELECT * FROM t", "1|1\n");
    EXPECT(s, "BEGIN; DELETE FROM t; ROLLBACK; SELECT count(*) FROM t", "1\n");
    EXPECT(s, "COMMIT", "ERR 1: cannot commit - no transaction is active");
    /* savepoints */
    EXPECT(s,
           "BEGIN; INSERT INTO t VALUES(2, 2); SAVEPOINT a; INSERT INTO t VALUES(3, 3); "
           "ROLLBACK TO a; INSERT INTO t VALUES(4, 4); RELEASE a; COMMIT; SELECT a FROM t",
           "1\n2\n4\n");
    EXPECT(s, "RELEASE nope", "ERR 1: no such savepoint: nope");
    /* read-only transactions refuse writes */
    EXPECT(s, "BEGIN READ ONLY; SELECT count(*) FROM t", "3\n");
    EXPECT(s, "INSERT INTO t VALUES(9, 9)", "ERR 1: cannot write in a read-only transaction");
    EXPECT(s, "COMMIT", "");
    EXPECT(s, "SELECT meridian_commit_ts() > 0", "1\n");
    msql_close(o);
    msql_close(s);
}

TEST(read_at_timestamp)
{
    msql *s = fresh();
    CHECK(s);
    EXPECT(s, "CREATE TABLE t(a INT PRIMARY KEY)", "");
    EXPECT(s, "INSERT INTO t VALUES(1)", "");
    int64_t ts = msql_commit_ts(s);
    CHECK(ts > 0);
    EXPECT(s, "INSERT INTO t VALUES(2)", "");
    char sql[128];
    snprintf(sql, sizeof sql, "BEGIN READ ONLY AS OF TIMESTAMP %lld; SELECT * FROM t; COMMIT",
             (long long)ts);
    EXPECT(s, sql, "1\n");
    EXPECT(s, "BEGIN READ ONLY WITH MAX STALENESS '10s'; SELECT count(*) FROM t; COMMIT", "2\n");
    EXPECT(s, "BEGIN READ ONLY WITH EXACT STALENESS 'soon'",
           "ERR 1: bad staleness 'soon': a duration such as '10s' or '250ms'");
    EXPECT(s, "BEGIN READ ONLY WITH SOMETHING", "ERR 1: near \"SOMETHING\": syntax error");
    msql_close(s);
}

TEST(point_select_reads_one_row)
{
    msql *s = fresh();
    CHECK(s);
    EXPECT(s, "CREATE TABLE t(a INT, b TEXT, c INT, PRIMARY KEY (a, b))", "");
    EXPECT(s,
           "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) "
           "INSERT INTO t SELECT i % 10, 'k' || i, i FROM n",
           "");
    uint64_t before = msql_rows_read(s);
    EXPECT(s, "SELECT c FROM t WHERE a = 3 AND b = 'k13'", "13\n");
    CHECK_EQ(msql_rows_read(s) - before, 1);
    before = msql_rows_read(s);
    EXPECT(s, "SELECT count(*) FROM t WHERE a = 3", "20\n");
    CHECK_EQ(msql_rows_read(s) - before, 20);
    before = msql_rows_read(s);
    EXPECT(s, "SELECT count(*) FROM t WHERE a IN (3, 4) AND b > 'k5'", "10\n");
    CHECK_EQ(msql_rows_read(s) - before, 10);
    q(s, "EXPLAIN QUERY PLAN SELECT c FROM t WHERE a = 3 AND b > 'x'");
    CHECKF(strstr(sqt_out, "SCAN t VIRTUAL TABLE INDEX ") && strstr(sqt_out, ":key: a=? AND b>?"),
           "%s", sqt_out);
    msql_close(s);
}

TEST(store_failures)
{
    msql *s = fresh();
    CHECK(s);
    EXPECT(s, "CREATE TABLE t(a INT PRIMARY KEY)", "");
    /* an autocommit write retries an abort by itself */
    fake_meridian_fail_commit(MERIDIAN_ABORTED, 2, false);
    EXPECT(s, "INSERT INTO t VALUES(1)", "");
    EXPECT(s, "SELECT * FROM t", "1\n");
    /* inside BEGIN the abort is the user's to retry, and nothing applied */
    EXPECT(s, "BEGIN; INSERT INTO t VALUES(2)", "");
    fake_meridian_fail_commit(MERIDIAN_ABORTED, 1, false);
    q(s, "COMMIT");
    CHECK_EQ(sqt_code, MSQL_RETRY);
    CHECK(!msql_in_transaction(s));
    EXPECT(s, "SELECT * FROM t", "1\n");
    /* outcome unknown: its own code, naming the transaction */
    fake_meridian_fail_commit(MERIDIAN_UNKNOWN, 1, true);
    q(s, "INSERT INTO t VALUES(3)");
    CHECK_EQ(sqt_code, MSQL_UNKNOWN);
    char id[32];
    snprintf(id, sizeof id, "%llu", (unsigned long long)msql_last_txn_id(s));
    CHECK(strstr(msql_errmsg(s), id) != NULL);
    EXPECT(s, "SELECT * FROM t", "1\n3\n");
    /* unavailable */
    /* an autocommit read retries by itself while it has returned nothing */
    fake_meridian_fail_read(MERIDIAN_UNAVAILABLE, 1);
    EXPECT(s, "SELECT * FROM t", "1\n3\n");
    msql_set_retry_deadline(s, 300);
    fake_meridian_fail_read(MERIDIAN_UNAVAILABLE, 1000000);
    q(s, "SELECT * FROM t");
    CHECKF(sqt_code == MSQL_UNAVAILABLE, "%s", sqt_out);
    fake_meridian_fail_read(0, 0);
    msql_set_retry_deadline(s, 2000);
    fake_meridian_fail_commit(MERIDIAN_UNAVAILABLE, 1000000, false);
    q(s, "INSERT INTO t VALUES(4)");
    CHECKF(sqt_code == MSQL_UNAVAILABLE, "%s", sqt_out);
    fake_meridian_fail_commit(0, 0, false);
    EXPECT(s, "SELECT * FROM t", "1\n3\n");
    /* a read failing inside BEGIN ends the transaction */
    EXPECT(s, "BEGIN; INSERT INTO t VALUES(5)", "");
    fake_meridian_fail_read(MERIDIAN_ABORTED, 1);
    q(s, "SELECT * FROM t");
    CHECK_EQ(sqt_code, MSQL_RETRY);
    CHECK(!msql_in_transaction(s));
    EXPECT(s, "SELECT * FROM t", "1\n3\n");
    msql_close(s);
}

TEST(schema_shared_between_sessions)
{
    msql *a = fresh();
    msql *b = session();
    CHECK(a && b);
    EXPECT(a, "CREATE TABLE t(x INT PRIMARY KEY)", "");
    EXPECT(b, "INSERT INTO t VALUES(1)", ""); /* b learns of t at prepare */
    EXPECT(a, "CREATE TABLE u(y INT PRIMARY KEY)", "");
    EXPECT(b, "SELECT * FROM t", "1\n"); /* version moved: b reloads and goes on */
    EXPECT(b, "DROP TABLE t", "");
    EXPECT(a, "SELECT * FROM t", "ERR 1: no such table: t");
    /* DDL on what the session has not seen yet */
    EXPECT(a, "CREATE TABLE w(z INT PRIMARY KEY)", "");
    EXPECT(b, "CREATE INDEX w_z ON w(z)", "");
    EXPECT(a, "CREATE TABLE v(z INT PRIMARY KEY)", "");
    EXPECT(b, "DROP TABLE v", "");
    EXPECT(a, "DROP TABLE w", "");
    EXPECT(a, "SHOW TABLES", "u\n");
    EXPECT(b, "SHOW TABLES", "u\n");
    msql_close(a);
    msql_close(b);
}

/* Another session changes the schema while a statement of this one is still
 * being stepped: the reload waits for it (a clear retryable error meanwhile),
 * the running statement finishes untouched, and the reload happens after. */
TEST(schema_change_under_a_running_statement)
{
    msql *a = fresh();
    msql *b = session();
    CHECK(a && b);
    EXPECT(a, "CREATE TABLE t(x INT PRIMARY KEY); INSERT INTO t VALUES(1), (2), (3)", "");
    msql_stmt *st = NULL;
    CHECK_EQ(msql_prepare(a, "SELECT x FROM t", -1, &st, NULL), MSQL_OK);
    CHECK_EQ(msql_step(st), MSQL_ROW);
    EXPECT(b, "CREATE TABLE u(y INT PRIMARY KEY)", "");
    q(a, "SELECT count(*) FROM t");
    CHECK_EQ(sqt_code, MSQL_RETRY);
    CHECKF(strstr(sqt_out, "another statement of this session is still running"), "%s", sqt_out);
    q(a, "INSERT INTO u VALUES(5)");
    CHECK_EQ(sqt_code, MSQL_RETRY);
    int n = 1, rc;
    while ((rc = msql_step(st)) == MSQL_ROW)
        n++;
    CHECK_EQ(rc, MSQL_DONE);
    CHECK_EQ(n, 3);
    msql_finalize(st);
    EXPECT(a, "INSERT INTO u VALUES(5); SELECT * FROM u", "5\n");
    msql_close(a);
    msql_close(b);
}

static uint64_t refreshes_of(msql *s)
{
    uint64_t r = 0;
    msql_lease_stats(s, &r, NULL);
    return r;
}

/* Store reads counted from count_from(s) on, less s's window refreshes (one
 * is due every three quarters of a lease: on a slow machine one may fall
 * between; the rest is what the statements read). */
static msql *counted;
static uint64_t counted_refreshes;

static void count_from(msql *s)
{
    counted = s;
    counted_refreshes = refreshes_of(s);
    fake_meridian_stats_reset();
}

static uint64_t reads(void)
{
    return fake_meridian_stats_get().gets - (refreshes_of(counted) - counted_refreshes);
}

/* The catalog version record as stored. */
static const char *version_record(void)
{
    static char buf[128];
    meridian_txn *t = NULL;
    void *v = NULL;
    size_t n = 0;
    buf[0] = 0;
    if (meridian_begin_ro(sqt_db, MERIDIAN_STRONG, 0, &t) == MERIDIAN_OK &&
        meridian_get(t, "\x01\x01", 2, &v, &n) == MERIDIAN_OK && n < sizeof buf) {
        memcpy(buf, v, n);
        buf[n] = 0;
    }
    meridian_free(v);
    meridian_rollback(t);
    return buf;
}

static void put_version_record(const char *text)
{
    meridian_txn *t = NULL;
    int64_t ts;
    CHECK_EQ(meridian_begin(sqt_db, &t), MERIDIAN_OK);
    CHECK_EQ(meridian_put(t, "\x01\x01", 2, text, strlen(text)), MERIDIAN_OK);
    CHECK_EQ(meridian_commit(t, &ts), MERIDIAN_OK);
}

/* With a window (sql/README.md, "Schema leases") a point select is one
 * round trip: the row, no version read; a transaction whose timestamp is past
 * the window reads the version at it and reruns on the new schema. */
TEST(lease_point_select)
{
    msql *a = fresh();
    msql *b = session();
    CHECK(a && b);
    EXPECT(a, "SET CLUSTER SETTING schema_lease = '300ms'", "");
    EXPECT(a, "SHOW CLUSTER SETTING schema_lease", "300ms\n");
    EXPECT(a, "CREATE TABLE t(x INT PRIMARY KEY); INSERT INTO t VALUES(1)", "");
    CHECK(strstr(version_record(), " 300") && !strstr(version_record(), "pending"));
    count_from(a);
    EXPECT(a, "SELECT * FROM t WHERE x = 1", "1\n");
    CHECK_EQ(reads(), 1); /* the row only */
    CHECK_EQ(fake_meridian_stats_get().begins_ro, 1);
    count_from(a);
    EXPECT(a, "BEGIN READ ONLY; SELECT * FROM t WHERE x = 1; COMMIT", "1\n");
    CHECK_EQ(reads(), 1);
    /* a's window stays as it was (no refresh on its clock): b's change waits
     * out the lease, so it commits past the window's end */
    msql_test_flags(a, MSQL_TEST_NO_REFRESH);
    int64_t t0 = mr_monotonic_ns();
    EXPECT(b, "ALTER TABLE t ADD COLUMN y INT DEFAULT 7", "");
    CHECK(mr_monotonic_ns() - t0 >= 300 * MR_NS_PER_MS); /* it waited the lease */
    uint64_t fb0, fb1;
    msql_lease_stats(a, NULL, &fb0);
    fake_meridian_stats_reset();
    EXPECT(a, "SELECT * FROM t WHERE x = 1", "1|7\n");
    msql_lease_stats(a, NULL, &fb1);
    CHECK_EQ(fb1, fb0 + 1);                     /* the read's timestamp was past the window */
    CHECK(fake_meridian_stats_get().gets >= 3); /* row, version at T, row again */
    /* scans take the same check before any row reaches SQLite */
    msql_test_flags(a, 0);
    EXPECT(a, "SELECT 1", "1\n");
    EXPECT(b, "ALTER TABLE t ADD COLUMN z INT DEFAULT 8", "");
    msql_test_flags(a, MSQL_TEST_NO_REFRESH);
    EXPECT(a, "SELECT * FROM t", "1|7|8\n");
    msql_test_flags(a, 0);
    /* b refreshed after its change: it has a window again */
    count_from(b);
    EXPECT(b, "SELECT * FROM t WHERE x = 1", "1|7|8\n");
    CHECK_EQ(reads(), 1);
    msql_close(a);
    msql_close(b);
}

/* schema_lease 0: no window, every transaction reads the version first; a
 * marker left by a schema change that died keeps windows away until the next
 * change takes its place and clears it. */
TEST(lease_off_and_left_marker)
{
    msql *a = fresh();
    CHECK(a);
    EXPECT(a, "CREATE TABLE t(x INT PRIMARY KEY); INSERT INTO t VALUES(1)", "");
    EXPECT(a, "SET CLUSTER SETTING schema_lease = '0'", "");
    EXPECT(a, "SHOW CLUSTER SETTING schema_lease", "0\n");
    fake_meridian_stats_reset();
    EXPECT(a, "SELECT * FROM t WHERE x = 1", "1\n");
    CHECK_EQ(fake_meridian_stats_get().gets, 2); /* the version, then the row */
    int64_t t0 = mr_monotonic_ns();
    EXPECT(a, "SET CLUSTER SETTING schema_lease = '50ms'", "");
    CHECK(mr_monotonic_ns() - t0 < 50 * MR_NS_PER_MS); /* the old lease was 0: no wait */
    EXPECT(a, "SHOW CLUSTER SETTING schema_lease", "50ms\n");
    EXPECT(a, "SET CLUSTER SETTING schema_lease = 'soon'",
           "ERR 1: bad schema_lease: a duration from '1ms' to '60s' such as '250ms', or '0' "
           "(leases off)");
    EXPECT(a, "SET CLUSTER SETTING schema_lease = '-1s'",
           "ERR 1: bad schema_lease: a duration from '1ms' to '60s' such as '250ms', or '0' "
           "(leases off)");
    EXPECT(a, "SET CLUSTER SETTING nosuch = '1s'",
           "ERR 1: unknown cluster setting (there is one: schema_lease)");
    EXPECT(a, "SHOW CLUSTER SETTING nosuch",
           "ERR 1: unknown cluster setting nosuch (there is one: schema_lease)");
    EXPECT(a, "SET CLUSTER SETTING schema_lease", "ERR 1: incomplete input");
    EXPECT(a, "BEGIN; SET CLUSTER SETTING schema_lease = '1s'",
           "ERR 1: schema changes run in transactions of their own: COMMIT or ROLLBACK first");
    EXPECT(a, "ROLLBACK", "");
    /* a change that fails clears its marker */
    EXPECT(a, "CREATE TABLE t(x INT)", "ERR 1: table t already exists");
    CHECK(strstr(version_record(), "pending") == NULL);
    /* a change that died after writing its marker */
    char rec[128];
    snprintf(rec, sizeof rec, "%s", version_record());
    CHECK(strcmp(rec + strlen(rec) - 3, " 50") == 0);
    char marked[160];
    snprintf(marked, sizeof marked, "%s pending 12345", rec);
    put_version_record(marked);
    msql *b = session();
    CHECK(b);
    count_from(b);
    EXPECT(b, "SELECT * FROM t WHERE x = 1", "1\n");
    CHECK_EQ(reads(), 2); /* no window under a marker */
    /* the next change waits for the marker to go, then takes its place */
    t0 = mr_monotonic_ns();
    EXPECT(a, "CREATE INDEX t_x ON t(x)", "");
    CHECK(mr_monotonic_ns() - t0 >= 3 * 50 * MR_NS_PER_MS);
    CHECK(strstr(version_record(), "pending") == NULL);
    /* b's first statement finds the new version (and reloads), its next one
     * learns the window (a refresh) and reads the row, as does the one after */
    EXPECT(b, "SELECT * FROM t WHERE x = 1", "1\n");
    count_from(b);
    EXPECT(b, "SELECT * FROM t WHERE x = 1", "1\n");
    CHECK_EQ(reads(), 1);
    count_from(b);
    EXPECT(b, "SELECT * FROM t WHERE x = 1", "1\n");
    CHECK_EQ(reads(), 1);
    /* a record that is not one (b's window would keep it from reading it) */
    msql_test_flags(b, MSQL_TEST_NO_LEASE);
    put_version_record("7 50 pending x");
    EXPECT(b, "SELECT * FROM t WHERE x = 1", "ERR 1: the catalog version key holds garbage");
    put_version_record("7");
    EXPECT(a, "SHOW CLUSTER SETTING schema_lease", "0\n"); /* legacy: leases off */
    EXPECT(a, "SET CLUSTER SETTING schema_lease = '2s'; SHOW CLUSTER SETTING schema_lease", "2s\n");
    CHECK(strcmp(version_record(), "8 2000") == 0);
    msql_close(a);
    msql_close(b);
}

/* A read-write transaction with a window reads no version and commits with
 * the window's end as its deadline; past the lease by the session's clock, at
 * COMMIT, it reads the version under its lock instead (and fails if another
 * session's schema change came in between, as it must: it ran with the old
 * schema); a deadline abort is retried (autocommit, after a refresh) or
 * MSQL_RETRY (BEGIN ... COMMIT). */
TEST(lease_read_write)
{
    msql *a = fresh();
    msql *b = session();
    CHECK(a && b);
    EXPECT(a, "SET CLUSTER SETTING schema_lease = '100ms'", "");
    EXPECT(a, "CREATE TABLE t(x INT PRIMARY KEY, y INT)", "");
    count_from(a);
    EXPECT(a, "INSERT INTO t VALUES(1, 1)", "");
    CHECK_EQ(reads(), 1); /* the key's uniqueness; no version */
    /* COMMIT after the lease: the version read under the lock, no deadline */
    uint64_t fb0, fb1;
    msql_lease_stats(a, NULL, &fb0);
    EXPECT(a, "BEGIN; INSERT INTO t VALUES(2, 2)", "");
    sqt_sleep_ms(130);
    EXPECT(a, "COMMIT", "");
    msql_lease_stats(a, NULL, &fb1);
    CHECK_EQ(fb1, fb0 + 1);
    EXPECT(a, "SELECT count(*) FROM t", "2\n");
    /* ... and a schema change that committed meanwhile fails the commit */
    EXPECT(a, "BEGIN; INSERT INTO t VALUES(3, 3)", "");
    EXPECT(b, "CREATE INDEX t_y ON t(y)", "");
    EXPECT(a, "COMMIT",
           "ERR 2: retryable: schema changed (catalog version 4, this transaction ran with 3)");
    EXPECT(a, "SELECT count(*) FROM t; SELECT x FROM t WHERE y = 3", "2\n");
    /* the negative control: without the deadline and that read, the row goes
     * in without its index entry */
    EXPECT(b, "DROP INDEX t_y", "");
    msql_test_flags(a, MSQL_TEST_NO_DEADLINE);
    EXPECT(a, "SELECT count(*) FROM t", "2\n");
    EXPECT(a, "BEGIN; INSERT INTO t VALUES(3, 3)", "");
    EXPECT(b, "CREATE INDEX t_y ON t(y)", "");
    EXPECT(a, "COMMIT", "");
    msql_test_flags(a, 0);
    EXPECT(a, "SELECT x FROM t WHERE x = 3", "3\n");
    EXPECT(a, "SELECT x FROM t WHERE y = 3", ""); /* through t_y: its entry is missing */
    EXPECT(a, "DELETE FROM t WHERE x = 3", "");
    /* a long lease, then the cluster's clock runs ahead of the session's:
     * commits come past the deadline */
    EXPECT(a, "SET CLUSTER SETTING schema_lease = '5s'", "");
    EXPECT(a, "SELECT count(*) FROM t", "2\n");
    fake_meridian_clock_skew(10 * MR_NS_PER_S);
    fake_meridian_stats_reset();
    EXPECT(a, "INSERT INTO t VALUES(4, 4)", "");
    CHECK_EQ(fake_meridian_stats_get().deadline_aborts, 1);
    CHECK_EQ(fake_meridian_stats_get().run_attempts, 2); /* retried with a new window */
    EXPECT(a, "SELECT x FROM t WHERE y = 4", "4\n");
    fake_meridian_clock_skew(20 * MR_NS_PER_S);
    EXPECT(a, "BEGIN; INSERT INTO t VALUES(5, 5); COMMIT",
           "ERR 2: commit: aborted: commit: commit deadline passed");
    EXPECT(a, "SELECT count(*) FROM t", "3\n");
    fake_meridian_stats_reset();
    EXPECT(a, "BEGIN; INSERT INTO t VALUES(5, 5); COMMIT", ""); /* a new window */
    CHECK_EQ(fake_meridian_stats_get().deadline_aborts, 0);
    EXPECT(a, "SELECT count(*) FROM t", "4\n");
    fake_meridian_clock_skew(0);
    msql_close(a);
    msql_close(b);
}

TEST(without_primary_key)
{
    msql *s = fresh();
    CHECK(s);
    EXPECT(s, "CREATE TABLE t(a, b)", "");
    EXPECT(s, "INSERT INTO t VALUES(1, 2), (1, 2), (NULL, 3)", "");
    EXPECT(s, "SELECT count(*), count(a), sum(b) FROM t", "3|2|7\n");
    EXPECT(s, "UPDATE t SET a = 5 WHERE a IS NULL", "");
    EXPECT(s, "DELETE FROM t WHERE b = 2", "");
    EXPECT(s, "SELECT * FROM t", "5|3\n");
    /* INTEGER PRIMARY KEY takes max + 1 for NULL, as in SQLite */
    EXPECT(s, "CREATE TABLE r(id INTEGER PRIMARY KEY, v)", "");
    EXPECT(s,
           "INSERT INTO r(v) VALUES('a'), ('b'); INSERT INTO r VALUES(10, 'c'); "
           "INSERT INTO r(v) VALUES('d'); SELECT * FROM r",
           "1|a\n2|b\n10|c\n11|d\n");
    msql_close(s);
}

TEST(cleanup)
{
    meridian_close(sqt_db);
    sqt_db = NULL;
}

TEST_MAIN(TEST_CASE(create_insert_select), TEST_CASE(affinity_and_types), TEST_CASE(constraints),
          TEST_CASE(update_delete), TEST_CASE(transactions), TEST_CASE(read_at_timestamp),
          TEST_CASE(point_select_reads_one_row), TEST_CASE(store_failures),
          TEST_CASE(schema_shared_between_sessions),
          TEST_CASE(schema_change_under_a_running_statement), TEST_CASE(lease_point_select),
          TEST_CASE(lease_off_and_left_marker), TEST_CASE(lease_read_write),
          TEST_CASE(without_primary_key), TEST_CASE(cleanup))
