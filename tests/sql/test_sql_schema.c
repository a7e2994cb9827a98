/* Schema objects over the fake store: INTERLEAVE IN PARENT (one directory per
 * parent row, ON DELETE CASCADE as a range delete, NO ACTION refusing),
 * CREATE [UNIQUE] INDEX (built for the rows already there, kept in the same
 * transaction as the rows, used for lookups, UNIQUE enforced, dropped with its
 * entries), UNIQUE constraints, views, SHOW statements, DDL errors. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "sql/sq_key.h"
#include "tests/sql/fake_meridian.h"
#include "tests/sql/sql_test_util.h"
#include "tests/test.h"

static msql *fresh(void)
{
    return sqt_fresh(-1);
}

#define EXPECT SQT_EXPECT

/* The id the catalog gave a table (its descriptor at 0x01 0x03 name). */
static int64_t table_id(const char *name)
{
    meridian_txn *t = NULL;
    if (meridian_begin_ro(sqt_db, MERIDIAN_STRONG, 0, &t) != MERIDIAN_OK)
        return -1;
    char key[64];
    key[0] = 0x01;
    key[1] = 0x03;
    size_t n = strlen(name);
    memcpy(key + 2, name, n);
    void *v = NULL;
    size_t vl = 0;
    int64_t id = -1;
    if (meridian_get(t, key, n + 2, &v, &vl) == MERIDIAN_OK) {
        json_t *j = json_loadb(v, vl, 0, NULL);
        id = json_integer_value(json_object_get(j, "id"));
        json_decref(j);
    }
    meridian_free(v);
    meridian_rollback(t);
    return id;
}

typedef struct keys {
    int n;
} keys;

static int count_cb(void *arg, const void *k, size_t kl, const void *v, size_t vl)
{
    (void)k, (void)kl, (void)v, (void)vl;
    ((keys *)arg)->n++;
    return 0;
}

/* Keys in the store whose first bytes are 0x02 int(id) int(first) (a root
 * table's row and everything under it). */
static int directory_size(int64_t id, int64_t first)
{
    sq_buf b = {0};
    uint8_t p = 0x02;
    sq_buf_put(&b, &p, 1);
    sq_key_append_int(&b, id, 0);
    sq_key_append_int(&b, first, 0);
    uint8_t end[64];
    memcpy(end, b.p, b.len);
    end[b.len - 1]++;
    meridian_txn *t = NULL;
    keys k = {0};
    if (meridian_begin_ro(sqt_db, MERIDIAN_STRONG, 0, &t) == MERIDIAN_OK)
        meridian_scan(t, b.p, b.len, end, b.len, 0, count_cb, &k);
    meridian_rollback(t);
    sq_buf_free(&b);
    return k.n;
}

TEST(interleave)
{
    msql *s = fresh();
    CHECK(s);
    EXPECT(s, "CREATE TABLE p(id INT PRIMARY KEY, name TEXT)", "");
    EXPECT(s,
           "CREATE TABLE c(id INT, seq INT, v TEXT, PRIMARY KEY (id, seq)) INTERLEAVE IN PARENT p "
           "ON DELETE CASCADE",
           "");
    EXPECT(s,
           "CREATE TABLE g(id INT, seq INT, k INT, PRIMARY KEY (id, seq, k)), INTERLEAVE IN PARENT "
           "c ON DELETE CASCADE",
           "");
    EXPECT(s, "INSERT INTO p VALUES(1, 'one'), (2, 'two'), (3, 'three')", "");
    EXPECT(s, "INSERT INTO c VALUES(1, 1, 'a'), (1, 2, 'b'), (2, 1, 'c'), (3, 9, 'd')", "");
    EXPECT(s, "INSERT INTO g VALUES(1, 1, 7), (1, 2, 8)", "");
    EXPECT(s, "SELECT * FROM p", "1|one\n2|two\n3|three\n");
    EXPECT(s, "SELECT * FROM c", "1|1|a\n1|2|b\n2|1|c\n3|9|d\n");
    EXPECT(s, "SELECT p.name, c.v FROM p JOIN c USING (id) WHERE id = 1", "one|a\none|b\n");
    /* parent 1's directory: itself, two children, two grandchildren */
    CHECK_EQ(directory_size(table_id("p"), 1), 5);
    uint64_t before = msql_rows_read(s);
    EXPECT(s, "SELECT count(*) FROM c WHERE id = 1", "2\n");
    /* the children's range: its two rows and their two interleaved rows of g */
    CHECK_EQ(msql_rows_read(s) - before, 4);
    EXPECT(s, "INSERT INTO c VALUES(4, 1, 'x')",
           "ERR 1: FOREIGN KEY constraint failed: no row in p (the parent c is interleaved in) for "
           "this key");
    EXPECT(s, "INSERT INTO g VALUES(2, 5, 1)",
           "ERR 1: FOREIGN KEY constraint failed: no row in c (the parent g is interleaved in) for "
           "this key");
    EXPECT(s, "UPDATE p SET id = 10 WHERE id = 1",
           "ERR 1: FOREIGN KEY constraint failed: the primary key of a p row with rows in "
           "interleaved table c cannot change");
    EXPECT(s, "UPDATE p SET id = 30 WHERE id = 3",
           "ERR 1: FOREIGN KEY constraint failed: the primary key of a p row with rows in "
           "interleaved table c cannot change");
    EXPECT(s, "DELETE FROM p WHERE id = 1", "");
    EXPECT(s, "SELECT * FROM c", "2|1|c\n3|9|d\n");
    EXPECT(s, "SELECT count(*) FROM g", "0\n");
    CHECK_EQ(directory_size(table_id("p"), 1), 0);
    EXPECT(s, "DROP TABLE p", "ERR 1: cannot drop table p: table c is interleaved in it");
    EXPECT(s, "SHOW CREATE TABLE g",
           "g|CREATE TABLE g(id INT, seq INT, k INT, PRIMARY KEY (id, seq, k)), INTERLEAVE IN "
           "PARENT c ON DELETE CASCADE\n");
    /* NO ACTION: a parent with children cannot go */
    EXPECT(s, "CREATE TABLE q(id INT PRIMARY KEY)", "");
    EXPECT(s, "CREATE TABLE r(id INT, x INT, PRIMARY KEY (id, x)) INTERLEAVE IN PARENT q", "");
    EXPECT(s, "INSERT INTO q VALUES(1), (2); INSERT INTO r VALUES(1, 1)", "");
    EXPECT(s, "DELETE FROM q",
           "ERR 1: FOREIGN KEY constraint failed: q has rows in interleaved table r (not ON DELETE "
           "CASCADE)");
    EXPECT(s, "SELECT * FROM q", "1\n2\n"); /* the failed DELETE removed nothing */
    EXPECT(s, "DELETE FROM r; DELETE FROM q; SELECT count(*) FROM q", "0\n");
    /* a child's key must begin with its parent's */
    EXPECT(s, "CREATE TABLE bad(x INT PRIMARY KEY) INTERLEAVE IN PARENT q",
           "ERR 1: table bad: INTERLEAVE IN PARENT q needs a primary key that begins with q's (id: "
           "same names, types and directions) and has more columns");
    EXPECT(s, "CREATE TABLE bad(id TEXT, y INT, PRIMARY KEY (id, y)) INTERLEAVE IN PARENT q",
           "ERR 1: table bad: INTERLEAVE IN PARENT q needs a primary key that begins with q's (id: "
           "same names, types and directions) and has more columns");
    EXPECT(s, "CREATE TABLE bad(id INT, y INT, PRIMARY KEY (id, y)) INTERLEAVE IN PARENT nosuch",
           "ERR 1: INTERLEAVE IN PARENT: no such table: nosuch");
    EXPECT(s, "CREATE TABLE bad(id INT PRIMARY KEY) INTERLEAVE IN PARENT",
           "ERR 1: incomplete input");
    /* children and parents dropped leaf first */
    EXPECT(s, "DROP TABLE g; DROP TABLE c; DROP TABLE p; DROP TABLE r; DROP TABLE q; SHOW TABLES",
           "");
    CHECK_EQ(fake_meridian_live_keys(), 2); /* the catalog's version and id counter */
    msql_close(s);
}

TEST(indexes)
{
    msql *s = fresh();
    CHECK(s);
    EXPECT(s, "CREATE TABLE t(id INT PRIMARY KEY, email TEXT UNIQUE, city TEXT, age INT)", "");
    EXPECT(s,
           "INSERT INTO t VALUES(1, 'a@x', 'paris', 30), (2, 'b@x', 'oslo', 40), "
           "(3, NULL, 'paris', 50), (4, NULL, 'rome', 20)",
           "");
    EXPECT(s, "INSERT INTO t VALUES(5, 'a@x', 'rome', 1)",
           "ERR 1: UNIQUE constraint failed: t.email");
    EXPECT(s, "CREATE INDEX t_city ON t(city, age DESC)", "");
    EXPECT(s, "SELECT id FROM t WHERE city = 'paris'", "3\n1\n"); /* index order: age DESC */
    q(s, "EXPLAIN QUERY PLAN SELECT id FROM t WHERE city = 'paris' AND age > 35");
    CHECKF(strstr(sqt_out, "index t_city: city=? AND age>?"), "%s", sqt_out);
    uint64_t before = msql_rows_read(s);
    EXPECT(s, "SELECT id FROM t WHERE email = 'b@x'", "2\n");
    CHECK_EQ(msql_rows_read(s) - before, 2); /* the entry, then the row */
    EXPECT(s, "SELECT id FROM t WHERE city = 'paris' AND age > 35", "3\n");
    /* kept in the same transaction, read back through the index inside it */
    EXPECT(s,
           "BEGIN; UPDATE t SET city = 'oslo' WHERE id = 1; SELECT id FROM t WHERE city = 'oslo'",
           "2\n1\n");
    EXPECT(s, "SELECT id FROM t WHERE city = 'paris'", "3\n");
    EXPECT(s, "ROLLBACK; SELECT id FROM t WHERE city = 'paris'", "3\n1\n");
    EXPECT(s, "UPDATE t SET email = 'b@x' WHERE id = 1",
           "ERR 1: UNIQUE constraint failed: t.email");
    EXPECT(s, "INSERT OR REPLACE INTO t VALUES(9, 'b@x', 'lima', 9)", "");
    EXPECT(s, "SELECT id FROM t ORDER BY id", "1\n3\n4\n9\n"); /* row 2 was replaced */
    EXPECT(s, "CREATE UNIQUE INDEX t_city_u ON t(city)", "ERR 1: UNIQUE constraint failed: t.city");
    EXPECT(s, "CREATE UNIQUE INDEX t_age ON t(age)", "");
    EXPECT(s, "INSERT INTO t VALUES(10, NULL, NULL, 30)", "ERR 1: UNIQUE constraint failed: t.age");
    EXPECT(s, "SHOW INDEXES FROM t",
           "t_age|CREATE UNIQUE INDEX t_age ON t(age)\nt_city|CREATE INDEX t_city ON t(city, age "
           "DESC)\n");
    EXPECT(s, "DROP INDEX sqlite_autoindex_t_1",
           "ERR 1: index associated with UNIQUE or PRIMARY KEY constraint cannot be dropped");
    EXPECT(s, "DROP INDEX t_city; DROP INDEX t_age", "");
    EXPECT(s, "SELECT id FROM t WHERE city = 'paris'", "1\n3\n");
    EXPECT(s, "DELETE FROM t", "");
    /* catalog (version, ids, t) only: every entry went with its row or index */
    CHECK_EQ(fake_meridian_live_keys(), 3);
    EXPECT(s, "CREATE INDEX t_x ON t(nosuch)", "ERR 1: no such column: nosuch");
    EXPECT(s, "CREATE INDEX t_x ON t(lower(city))",
           "ERR 1: index t_x: indexes on expressions are not supported");
    EXPECT(s, "CREATE INDEX t_x ON t(city) WHERE age > 3",
           "ERR 1: partial indexes are not supported");
    msql_close(s);
}

TEST(views_and_show)
{
    msql *s = fresh();
    CHECK(s);
    EXPECT(s, "CREATE TABLE t(a INT PRIMARY KEY, b INT)", "");
    EXPECT(s, "INSERT INTO t VALUES(1, 10), (2, 20), (3, 30)", "");
    EXPECT(s, "CREATE VIEW big AS SELECT a, b * 2 AS bb FROM t WHERE b > 10", "");
    EXPECT(s, "SELECT * FROM big", "2|40\n3|60\n");
    msql *o = NULL;
    CHECK(msql_open(sqt_db, &o) == MSQL_OK);
    EXPECT(o, "SELECT sum(bb) FROM big", "100\n");
    EXPECT(o, "SHOW VIEWS", "big\n");
    EXPECT(o, "SHOW CREATE VIEW big",
           "big|CREATE VIEW big AS SELECT a, b * 2 AS bb FROM t WHERE b > 10\n");
    EXPECT(o, "SELECT type, name, tbl_name FROM meridian_schema ORDER BY name",
           "view|big|big\ntable|t|t\n");
    EXPECT(s, "CREATE VIEW big AS SELECT 1", "ERR 1: view big already exists");
    EXPECT(s, "CREATE VIEW IF NOT EXISTS big AS SELECT 1", "");
    EXPECT(s, "CREATE VIEW v2 AS SELECT nosuch FROM t", "ERR 1: no such column: nosuch");
    EXPECT(s, "DROP TABLE big", "ERR 1: use DROP VIEW to delete view big");
    EXPECT(s, "DROP VIEW big", "");
    EXPECT(o, "SELECT * FROM big", "ERR 1: no such table: big");
    EXPECT(s, "DROP VIEW big", "ERR 1: no such view: big");
    EXPECT(s, "DROP VIEW IF EXISTS big", "");
    EXPECT(s, "SHOW CREATE TABLE nosuch", "ERR 1: no such table: nosuch");
    EXPECT(s, "SHOW NONSENSE", "ERR 1: near \"NONSENSE\": syntax error");
    EXPECT(s, "CREATE INDEX t_b ON t(b)", "");
    EXPECT(s, "SHOW TABLETS FOR TABLE t",
           "t|-inf|+inf|1|fake:1|fake:1\nt (index t_b)|-inf|+inf|1|fake:1|fake:1\n");
    EXPECT(s, "SHOW TABLETS FOR TABLE nosuch", "ERR 1: no such table: nosuch");
    EXPECT(s, "SHOW TABLETS FOR t", "ERR 1: near \"t\": syntax error");
    EXPECT(s, "DELETE FROM meridian_schema", "ERR 1: not authorized");
    msql_close(o);
    msql_close(s);
}

TEST(ddl_errors)
{
    msql *s = fresh();
    CHECK(s);
    EXPECT(s, "CREATE TABLE t(a INT PRIMARY KEY)", "");
    EXPECT(s, "CREATE TABLE t(b)", "ERR 1: table t already exists");
    EXPECT(s, "CREATE TABLE IF NOT EXISTS t(b)", "");
    EXPECT(s, "CREATE TABLE T2(a INT PRIMARY KEY, a INT)", "ERR 1: duplicate column name: a");
    EXPECT(s, "CREATE TABLE w(a) WITHOUT ROWID", "ERR 1: PRIMARY KEY missing on table w");
    EXPECT(s, "CREATE TEMP TABLE x(a)", "ERR 1: TEMP tables, views and triggers are not supported");
    EXPECT(s, "CREATE TABLE x AS SELECT 1", "ERR 1: CREATE TABLE ... AS SELECT is not supported");
    EXPECT(s, "CREATE TABLE k(a TEXT COLLATE NOCASE PRIMARY KEY)",
           "ERR 1: table k: primary key column a has collation NOCASE: Meridian keys order as "
           "BINARY, so key columns must use it");
    EXPECT(s, "CREATE TABLE k(meridian_key__ INT)",
           "ERR 1: table k: the column name meridian_key__ is reserved");
    EXPECT(s, "CREATE TABLE g(a INT, b INT AS (a + 1))",
           "ERR 1: table g: generated columns are not supported");
    EXPECT(s, "DROP TABLE nosuch", "ERR 1: no such table: nosuch");
    EXPECT(s, "DROP TABLE IF EXISTS nosuch", "");
    EXPECT(s, "BEGIN; CREATE TABLE z(a)",
           "ERR 1: schema changes run in transactions of their own: COMMIT or ROLLBACK first");
    EXPECT(s, "ROLLBACK; CREATE TABLE other.z(a)", "ERR 1: Meridian's tables live in schema main");
    q(s, "CREATE TABLE z(a INT PRIMARY KEY, b TEXT");
    CHECK_EQ(sqt_code, MSQL_ERROR);
    q(s, "CREATE TABLE z(a INT PRIMARY KEY, b TEXT REFERENCES)");
    CHECK_EQ(sqt_code, MSQL_ERROR);
    CHECK(msql_error_offset(s) > 0);
    EXPECT(s, "SHOW TABLES", "t\n");
    msql_close(s);
}

TEST(cleanup)
{
    meridian_close(sqt_db);
    sqt_db = NULL;
}

TEST_MAIN(TEST_CASE(interleave), TEST_CASE(indexes), TEST_CASE(views_and_show),
          TEST_CASE(ddl_errors), TEST_CASE(cleanup))
