/* Bound parameters and statement reuse over the fake store: each bind type, parameter counts,
 * msql_reset giving fresh results after other sessions' writes, reuse across BEGIN/COMMIT and
 * ROLLBACK, RETURNING rows per run, a statement prepared before another session's ALTER TABLE
 * ADD COLUMN / CREATE INDEX (right rows, the index used), and the binds that are refused. */
#include <stdlib.h>
#include <string.h>

#include "tests/sql/fake_meridian.h"
#include "tests/sql/sql_test_util.h"
#include "tests/test.h"

static msql *fresh(void)
{
    return sqt_fresh(-1);
}

#define EXPECT SQT_EXPECT

/* Steps st to its end and returns its rows as q() prints them ("ERR code: msg" on failure). */
static const char *run(msql *s, msql_stmt *st)
{
    size_t n = 0;
    sqt_out[0] = 0;
    int rc = sqt_rows(st, &n);
    if (rc != MSQL_DONE)
        sqt_append(&n, "ERR %d: %s", rc, msql_errmsg(s));
    return sqt_out;
}

#define EXPECT_RUN(s, st, want)                                                                    \
    do {                                                                                           \
        const char *got_ = run((s), (st));                                                         \
        CHECKF(strcmp(got_, (want)) == 0, "got:  [%s]\n  want: [%s]", got_, (want));               \
    } while (0)

static msql_stmt *prep(msql *s, const char *sql)
{
    msql_stmt *st = NULL;
    if (msql_prepare(s, sql, -1, &st, NULL) != MSQL_OK || !st) {
        fprintf(stderr, "prepare %s: %s\n", sql, msql_errmsg(s));
        exit(1);
    }
    return st;
}

TEST(bind_types)
{
    msql *s = fresh();
    CHECK(s);
    EXPECT(s, "CREATE TABLE t(k INTEGER PRIMARY KEY, i INT, r REAL, x TEXT, b BLOB, n)", "");
    msql_stmt *ins = prep(s, "INSERT INTO t VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
    CHECK_EQ(msql_bind_parameter_count(ins), 6);
    CHECK_EQ(msql_bind_int64(ins, 1, 1), MSQL_OK);
    CHECK_EQ(msql_bind_int64(ins, 2, INT64_MIN), MSQL_OK);
    CHECK_EQ(msql_bind_double(ins, 3, 2.5), MSQL_OK);
    CHECK_EQ(msql_bind_text(ins, 4, "h\xc3\xa9llo world", 6),
             MSQL_OK); /* 6 bytes: "h\xc3\xa9llo" */
    static const unsigned char blob[] = {0, 1, 0xff, 0};
    CHECK_EQ(msql_bind_blob(ins, 5, blob, 4), MSQL_OK);
    CHECK_EQ(msql_bind_null(ins, 6), MSQL_OK);
    EXPECT_RUN(s, ins, "");
    /* the same plan again with other values; an unbound-again parameter keeps its value */
    CHECK_EQ(msql_reset(ins), MSQL_OK);
    CHECK_EQ(msql_bind_int64(ins, 1, 2), MSQL_OK);
    CHECK_EQ(msql_bind_text(ins, 2, "42", -1), MSQL_OK); /* INT affinity: stored as 42 */
    CHECK_EQ(msql_bind_int64(ins, 6, 7), MSQL_OK);
    EXPECT_RUN(s, ins, "");
    /* cleared bindings are NULL */
    CHECK_EQ(msql_reset(ins), MSQL_OK);
    CHECK_EQ(msql_clear_bindings(ins), MSQL_OK);
    CHECK_EQ(msql_bind_int64(ins, 1, 3), MSQL_OK);
    EXPECT_RUN(s, ins, "");
    msql_finalize(ins);
    EXPECT(s, "SELECT k, i, typeof(i), r, x, hex(b), n FROM t ORDER BY k",
           "1|-9223372036854775808|integer|2.5|h\xc3\xa9llo|0001FF00|NULL\n"
           "2|42|integer|2.5|h\xc3\xa9llo|0001FF00|7\n"
           "3|NULL|null|NULL|NULL||NULL\n");
    /* named parameters */
    msql_stmt *sel = prep(s, "SELECT x FROM t WHERE k = :k OR k = $k2");
    CHECK_EQ(msql_bind_parameter_count(sel), 2);
    CHECK_EQ(msql_bind_parameter_index(sel, ":k"), 1);
    CHECK_EQ(msql_bind_parameter_index(sel, "$k2"), 2);
    CHECK_EQ(msql_bind_parameter_index(sel, ":nosuch"), 0);
    CHECK_EQ(msql_bind_int64(sel, 1, 3), MSQL_OK);
    CHECK_EQ(msql_bind_double(sel, 2, 1.0), MSQL_OK); /* 1.0 = 1 for the key */
    EXPECT_RUN(s, sel, "h\xc3\xa9llo\nNULL\n");
    msql_finalize(sel);
    msql_close(s);
}

TEST(reset_fresh_results)
{
    msql *s = fresh(), *o = sqt_session(-1);
    CHECK(s && o);
    EXPECT(s, "CREATE TABLE kv(k INT PRIMARY KEY, v TEXT)", "");
    for (int i = 0; i < 20; i++) {
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO kv VALUES(%d, 'v%d')", i, i);
        EXPECT(s, sql, "");
    }
    msql_stmt *sel = prep(s, "SELECT v FROM kv WHERE k = ?");
    CHECK_EQ(msql_bind_parameter_count(sel), 1);
    CHECK_EQ(msql_bind_int64(sel, 1, 5), MSQL_OK);
    uint64_t before = msql_rows_read(s);
    EXPECT_RUN(s, sel, "v5\n");
    CHECK_EQ(msql_rows_read(s) - before, 1); /* a point read, not a scan */
    /* another session writes; the reset statement reads a new snapshot */
    EXPECT(o, "UPDATE kv SET v = 'new' WHERE k = 5", "");
    CHECK_EQ(msql_reset(sel), MSQL_OK);
    EXPECT_RUN(s, sel, "new\n");
    /* a reset in the middle of the rows drops the rest and releases the snapshot */
    msql_stmt *all = prep(s, "SELECT k FROM kv WHERE k < ?1 ORDER BY k");
    CHECK_EQ(msql_bind_int64(all, 1, 3), MSQL_OK);
    CHECK_EQ(msql_step(all), MSQL_ROW);
    CHECK_EQ(msql_bind_int64(all, 1, 2), MSQL_ERROR); /* running: refused */
    CHECK_STR(msql_errmsg(s), "cannot bind a statement that is running: msql_reset it first");
    EXPECT(o, "DELETE FROM kv WHERE k = 0", "");
    CHECK_EQ(msql_reset(all), MSQL_OK);
    CHECK_EQ(msql_bind_int64(all, 1, 2), MSQL_OK);
    EXPECT_RUN(s, all, "1\n");
    /* many runs of one statement: each its own snapshot, each a point read */
    before = msql_rows_read(s);
    for (int i = 1; i < 20; i++) {
        CHECK_EQ(msql_reset(sel), MSQL_OK);
        CHECK_EQ(msql_bind_int64(sel, 1, i), MSQL_OK);
        char want[16];
        snprintf(want, sizeof want, "%s\n", i == 5 ? "new" : "");
        if (i != 5)
            snprintf(want, sizeof want, "v%d\n", i);
        EXPECT_RUN(s, sel, want);
    }
    CHECK_EQ(msql_rows_read(s) - before, 19);
    /* an autocommit write with RETURNING: fresh rows each run */
    msql_stmt *up = prep(s, "UPDATE kv SET v = v || ?2 WHERE k = ?1 RETURNING k, v");
    CHECK_EQ(msql_bind_int64(up, 1, 7), MSQL_OK);
    CHECK_EQ(msql_bind_text(up, 2, "+", -1), MSQL_OK);
    EXPECT_RUN(s, up, "7|v7+\n");
    CHECK_EQ(msql_reset(up), MSQL_OK);
    EXPECT_RUN(s, up, "7|v7++\n");
    CHECK_EQ(msql_reset(up), MSQL_OK);
    CHECK_EQ(msql_bind_int64(up, 1, 99), MSQL_OK);
    EXPECT_RUN(s, up, "");
    /* a failed autocommit write: the statement is reusable after a reset */
    msql_stmt *ins = prep(s, "INSERT INTO kv VALUES(?1, ?2)");
    CHECK_EQ(msql_bind_int64(ins, 1, 7), MSQL_OK);
    CHECK_EQ(msql_bind_text(ins, 2, "dup", -1), MSQL_OK);
    EXPECT_RUN(s, ins, "ERR 1: UNIQUE constraint failed: kv.k");
    EXPECT_RUN(s, ins, "ERR 1: UNIQUE constraint failed: kv.k"); /* stepped again: run again */
    CHECK_EQ(msql_bind_int64(ins, 1, 70), MSQL_OK);              /* over: binds allowed */
    EXPECT_RUN(s, ins, "");
    EXPECT(o, "SELECT v FROM kv WHERE k = 70", "dup\n");
    CHECK_EQ(msql_reset(ins), MSQL_OK);
    CHECK_EQ(msql_bind_int64(ins, 1, 71), MSQL_OK);
    EXPECT_RUN(s, ins, "");
    /* a finished autocommit write stepped again runs again (as SQLite), here with RETURNING */
    CHECK_EQ(msql_reset(up), MSQL_OK);
    CHECK_EQ(msql_bind_int64(up, 1, 71), MSQL_OK);
    EXPECT_RUN(s, up, "71|dup+\n");
    EXPECT_RUN(s, up, "71|dup++\n");
    /* and so does a finished read, with a new snapshot */
    CHECKF(msql_bind_int64(sel, 1, 71) == MSQL_OK, "%s", msql_errmsg(s));
    EXPECT_RUN(s, sel, "dup++\n");
    EXPECT(o, "UPDATE kv SET v = 'x' WHERE k = 71", "");
    EXPECT_RUN(s, sel, "x\n");
    msql_finalize(ins);
    msql_finalize(up);
    msql_finalize(all);
    msql_finalize(sel);
    msql_close(o);
    msql_close(s);
}

TEST(reuse_in_transactions)
{
    msql *s = fresh(), *o = sqt_session(-1);
    CHECK(s && o);
    EXPECT(s, "CREATE TABLE kv(k INT PRIMARY KEY, v INT)", "");
    msql_stmt *ins = prep(s, "INSERT INTO kv VALUES(?1, ?2)");
    msql_stmt *sel = prep(s, "SELECT count(*), sum(v) FROM kv WHERE k >= ?1");
    msql_stmt *begin = prep(s, "BEGIN"), *commit = prep(s, "COMMIT"),
              *rollback = prep(s, "ROLLBACK");
    CHECK_EQ(msql_bind_parameter_count(begin), 0);
    EXPECT_RUN(s, begin, "");
    for (int i = 1; i <= 3; i++) {
        CHECK_EQ(msql_reset(ins), MSQL_OK);
        CHECK_EQ(msql_bind_int64(ins, 1, i), MSQL_OK);
        CHECK_EQ(msql_bind_int64(ins, 2, i * 10), MSQL_OK);
        EXPECT_RUN(s, ins, "");
    }
    CHECK_EQ(msql_bind_int64(sel, 1, 0), MSQL_OK);
    EXPECT_RUN(s, sel, "3|60\n"); /* the transaction's own writes */
    EXPECT(o, "SELECT count(*) FROM kv", "0\n");
    EXPECT_RUN(s, commit, "");
    CHECK(!msql_in_transaction(s));
    EXPECT(o, "SELECT count(*), sum(v) FROM kv", "3|60\n");
    /* the same BEGIN and statements again, rolled back this time */
    CHECK_EQ(msql_reset(begin), MSQL_OK);
    EXPECT_RUN(s, begin, "");
    CHECK(msql_in_transaction(s));
    CHECK_EQ(msql_reset(ins), MSQL_OK);
    CHECK_EQ(msql_bind_int64(ins, 1, 4), MSQL_OK);
    EXPECT_RUN(s, ins, "");
    CHECK_EQ(msql_reset(sel), MSQL_OK);
    EXPECT_RUN(s, sel, "4|90\n"); /* ?2 keeps its last value, 30 */
    EXPECT_RUN(s, rollback, "");
    CHECK(!msql_in_transaction(s));
    CHECK_EQ(msql_reset(sel), MSQL_OK);
    EXPECT_RUN(s, sel, "3|60\n");
    /* out of the transaction, the reused INSERT commits on its own */
    CHECK_EQ(msql_reset(ins), MSQL_OK);
    EXPECT_RUN(s, ins, "");
    EXPECT(o, "SELECT v FROM kv WHERE k = 4", "30\n");
    /* RETURNING inside BEGIN (rows buffered in the statement): fresh rows each run */
    msql_stmt *ret = prep(s, "UPDATE kv SET v = v + ?2 WHERE k = ?1 RETURNING v");
    CHECK_EQ(msql_reset(begin), MSQL_OK);
    EXPECT_RUN(s, begin, "");
    CHECK_EQ(msql_bind_int64(ret, 1, 1), MSQL_OK);
    CHECK_EQ(msql_bind_int64(ret, 2, 5), MSQL_OK);
    EXPECT_RUN(s, ret, "15\n");
    CHECK_EQ(msql_reset(ret), MSQL_OK);
    EXPECT_RUN(s, ret, "20\n");
    CHECK_EQ(msql_step(ret), MSQL_ROW); /* a reset with a row not yet read drops it */
    CHECK_EQ(msql_reset(ret), MSQL_OK);
    CHECK_EQ(msql_bind_int64(ret, 2, 100), MSQL_OK);
    EXPECT_RUN(s, ret, "125\n");
    CHECK_EQ(msql_reset(commit), MSQL_OK);
    EXPECT_RUN(s, commit, "");
    EXPECT(o, "SELECT v FROM kv WHERE k = 1", "125\n");
    msql_finalize(ret);
    /* COMMIT reset and run with no transaction says so, as a fresh one would */
    CHECK_EQ(msql_reset(commit), MSQL_OK);
    EXPECT_RUN(s, commit, "ERR 1: cannot commit - no transaction is active");
    msql_finalize(begin);
    msql_finalize(commit);
    msql_finalize(rollback);
    msql_finalize(ins);
    msql_finalize(sel);
    msql_close(o);
    msql_close(s);
}

TEST(reuse_after_schema_change)
{
    msql *s = fresh(), *o = sqt_session(-1);
    CHECK(s && o);
    EXPECT(s, "CREATE TABLE t(k INT PRIMARY KEY, v TEXT)", "");
    for (int i = 0; i < 30; i++) {
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO t VALUES(%d, 'v%d')", i, i % 10);
        EXPECT(s, sql, "");
    }
    msql_stmt *sel = prep(s, "SELECT * FROM t WHERE v = ?1 ORDER BY k");
    msql_stmt *ins = prep(s, "INSERT INTO t(k, v) VALUES(?1, ?2)");
    CHECK_EQ(msql_bind_text(sel, 1, "v3", -1), MSQL_OK);
    uint64_t before = msql_rows_read(s);
    EXPECT_RUN(s, sel, "3|v3\n13|v3\n23|v3\n");
    CHECK_EQ(msql_rows_read(s) - before, 30); /* no index yet: a scan */
    /* another session changes the schema under the prepared statements */
    EXPECT(o, "ALTER TABLE t ADD COLUMN w INT DEFAULT 7", "");
    EXPECT(o, "CREATE INDEX t_v ON t(v)", "");
    CHECK_EQ(msql_reset(sel), MSQL_OK);
    before = msql_rows_read(s);
    EXPECT_RUN(s, sel, "3|v3|7\n13|v3|7\n23|v3|7\n"); /* SELECT * has the new column */
    CHECK_EQ(msql_column_count(sel), 3);
    CHECK_EQ(msql_rows_read(s) - before, 6); /* through the index: 3 entries, 3 rows */
    CHECK_EQ(msql_bind_int64(ins, 1, 100), MSQL_OK);
    CHECK_EQ(msql_bind_text(ins, 2, "v3", -1), MSQL_OK);
    EXPECT_RUN(s, ins, "");
    CHECK_EQ(msql_reset(sel), MSQL_OK);
    EXPECT_RUN(s, sel, "3|v3|7\n13|v3|7\n23|v3|7\n100|v3|7\n");
    /* the index entry of the row inserted by the old statement is there: found through it */
    before = msql_rows_read(o);
    EXPECT(o, "SELECT k FROM t WHERE v = 'v3' ORDER BY k", "3\n13\n23\n100\n");
    CHECK_EQ(msql_rows_read(o) - before, 8);
    /* a dropped column: the old plan cannot be remade and says why */
    EXPECT(o, "DROP TABLE t", "");
    CHECK_EQ(msql_reset(sel), MSQL_OK);
    const char *got = run(s, sel);
    CHECKF(strstr(got, "ERR 1: ") == got && strstr(got, "no such table: t"), "got [%s]", got);
    msql_finalize(ins);
    msql_finalize(sel);
    msql_close(o);
    msql_close(s);
}

TEST(binds_refused)
{
    msql *s = fresh();
    CHECK(s);
    EXPECT(s, "CREATE TABLE t(k INT PRIMARY KEY, v TEXT)", "");
    const char *none[] = {"SHOW TABLES",
                          "SHOW CREATE TABLE t",
                          "BEGIN",
                          "BEGIN READ ONLY WITH EXACT STALENESS '1s'",
                          "SAVEPOINT a",
                          "CREATE TABLE u(a INT PRIMARY KEY)",
                          "CREATE INDEX t_v ON t(v)",
                          "SET CLUSTER SETTING schema_lease = '20ms'"};
    for (size_t i = 0; i < sizeof none / sizeof *none; i++) {
        msql_stmt *st = prep(s, none[i]);
        CHECKF(msql_bind_parameter_count(st) == 0, "%s", none[i]);
        CHECKF(msql_bind_int64(st, 1, 1) == MSQL_ERROR, "%s", none[i]);
        CHECKF(strstr(msql_errmsg(s), "take no parameters (parameter 1)") != NULL, "%s: %s",
               none[i], msql_errmsg(s));
        CHECK_EQ(msql_bind_text(st, 1, "x", -1), MSQL_ERROR);
        CHECK_EQ(msql_bind_null(st, 1), MSQL_ERROR);
        msql_finalize(st);
    }
    /* the SHOW statement still runs after a refused bind */
    msql_stmt *show = prep(s, "SHOW TABLES");
    CHECK_EQ(msql_bind_int64(show, 1, 1), MSQL_ERROR);
    EXPECT_RUN(s, show, "t\n");
    CHECK_EQ(msql_reset(show), MSQL_OK);
    EXPECT_RUN(s, show, "t\n");
    msql_finalize(show);
    /* out of range, as SQLite says it */
    msql_stmt *st = prep(s, "SELECT v FROM t WHERE k = ?1");
    CHECK_EQ(msql_bind_int64(st, 0, 1), MSQL_ERROR);
    CHECK_STR(msql_errmsg(s), "column index out of range");
    CHECK_EQ(msql_bind_int64(st, 2, 1), MSQL_ERROR);
    CHECK_STR(msql_errmsg(s), "column index out of range");
    CHECK_EQ(msql_bind_blob(st, 1, "x", -1), MSQL_ERROR);
    CHECK_EQ(msql_bind_int64(st, 1, 1), MSQL_OK);
    CHECK_STR(msql_errmsg(s), "");
    EXPECT_RUN(s, st, "");
    msql_finalize(st);
    /* a statement with no parameters */
    st = prep(s, "SELECT 1");
    CHECK_EQ(msql_bind_parameter_count(st), 0);
    CHECK_EQ(msql_bind_int64(st, 1, 1), MSQL_ERROR);
    CHECK_STR(msql_errmsg(s), "column index out of range");
    msql_finalize(st);
    /* parameters in the clauses the session runs itself are refused when prepared; in the
     * statement's other clauses they work */
    EXPECT(s, "INSERT INTO t VALUES(?1, 'a') ON CONFLICT(k) DO UPDATE SET v = ?2",
           "ERR 1: parameters are not supported in ON CONFLICT DO UPDATE or RETURNING (bind them "
           "in the statement's other clauses)");
    EXPECT(s, "UPDATE t SET v = 'b' RETURNING v || ?1",
           "ERR 1: parameters are not supported in ON CONFLICT DO UPDATE or RETURNING (bind them "
           "in the statement's other clauses)");
    st = prep(s, "INSERT INTO t VALUES(?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v || "
                 "'!' RETURNING k, v");
    CHECK_EQ(msql_bind_parameter_count(st), 2);
    CHECK_EQ(msql_bind_int64(st, 1, 1), MSQL_OK);
    CHECK_EQ(msql_bind_text(st, 2, "a", -1), MSQL_OK);
    EXPECT_RUN(s, st, "1|a\n");
    CHECK_EQ(msql_reset(st), MSQL_OK);
    EXPECT_RUN(s, st, "1|a!\n");
    msql_finalize(st);
    /* NULL statements */
    CHECK_EQ(msql_bind_parameter_count(NULL), 0);
    CHECK_EQ(msql_bind_int64(NULL, 1, 1), MSQL_ERROR);
    CHECK_EQ(msql_reset(NULL), MSQL_ERROR);
    msql_close(s);
}

TEST(cleanup)
{
    meridian_close(sqt_db);
    sqt_db = NULL;
}

TEST_MAIN(TEST_CASE(bind_types), TEST_CASE(reset_fresh_results), TEST_CASE(reuse_in_transactions),
          TEST_CASE(reuse_after_schema_change), TEST_CASE(binds_refused), TEST_CASE(cleanup))
