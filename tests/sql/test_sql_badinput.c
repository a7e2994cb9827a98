/* Bad input never crashes a session and always says what is wrong: garbage
 * and truncated SQL, huge statements, values and keys over the store's
 * limits, NUL bytes and invalid UTF-8, misuse of the API, and a seeded
 * stream of random token soup (SQ_BADINPUT_SEED replays). Under ASan/UBSan. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sql/sq_lex.h"
#include "tests/sql/fake_meridian.h"
#include "tests/sql/sql_test_util.h"
#include "tests/test.h"

static msql *fresh(void)
{
    return sqt_fresh(500);
}

#define EXPECT SQT_EXPECT

TEST(garbage)
{
    msql *s = fresh();
    CHECK(s);
    EXPECT(s, "CREATE TABLE t(a INT PRIMARY KEY, b TEXT)", "");
    EXPECT(s, "SELEC * FROM t", "ERR 1: near \"SELEC\": syntax error");
    CHECK_EQ(msql_error_offset(s), 0);
    EXPECT(s, "SELECT * FROM t WHERE", "ERR 1: incomplete input");
    EXPECT(s, "SELECT 'abc", "ERR 1: unrecognized token: \"'abc\"");
    EXPECT(s, "SELECT * FROM t WHERE a = = 1", "ERR 1: near \"=\": syntax error");
    CHECK_EQ(msql_error_offset(s), 26);
    EXPECT(s, "\x01\x02\x03", "ERR 1: unrecognized token: \"\x01\"");
    EXPECT(s, "SELECT x'zz'", "ERR 1: unrecognized token: \"x'zz'\"");
    EXPECT(s, "SELECT nosuch FROM t", "ERR 1: no such column: nosuch");
    EXPECT(s, "INSERT INTO t VALUES(1)", "ERR 1: table t has 2 columns but 1 values were supplied");
    EXPECT(s, "INSERT INTO nosuch VALUES(1)", "ERR 1: no such table: nosuch");
    EXPECT(s, "BEGIN READ", "ERR 1: incomplete input");
    EXPECT(s, "BEGIN READ ONLY AS OF TIMESTAMP -5", "ERR 1: near \"-\": syntax error");
    EXPECT(s, "BEGIN READ ONLY AS OF TIMESTAMP 99999999999999999999999",
           "ERR 1: bad timestamp 99999999999999999999999: nanoseconds since the epoch");
    EXPECT(s, "SHOW", "ERR 1: incomplete input");
    EXPECT(s, "SHOW CREATE TABLE", "ERR 1: incomplete input");
    EXPECT(s, "DROP", "ERR 1: incomplete input");
    EXPECT(s, "CREATE", "ERR 1: incomplete input");
    EXPECT(s, "ALTER TABLE t DROP COLUMN b", "ERR 1: ALTER TABLE ... DROP COLUMN is not supported");
    EXPECT(s, "ATTACH 'x.db' AS x", "ERR 1: this statement is not supported in a Meridian session");
    EXPECT(s, "SELECT 1;;; ;", "1\n");
    EXPECT(s, "  -- only a comment\n", "");
    EXPECT(s, "/* unterminated comment", "");
    /* the session is fine afterwards */
    EXPECT(s, "INSERT INTO t VALUES(1, 'x'); SELECT * FROM t", "1|x\n");
    msql_close(s);
}

TEST(limits)
{
    msql *s = fresh();
    CHECK(s);
    EXPECT(s, "CREATE TABLE t(a BLOB PRIMARY KEY, b BLOB)", "");
    /* a row over the store's value limit */
    EXPECT(s, "INSERT INTO t VALUES(1, zeroblob(2000000))",
           "ERR 1: row of 2000009 bytes: over Meridian's 1048576-byte value limit");
    /* a key over the key limit */
    EXPECT(s, "INSERT INTO t VALUES(zeroblob(5000), 1)",
           "ERR 1: primary key of 10014 bytes once encoded: over Meridian's 4096-byte key limit");
    EXPECT(s, "INSERT INTO t VALUES(1, 1)", "");
    EXPECT(s, "SELECT count(*) FROM t WHERE a = zeroblob(5000)", "0\n");
    EXPECT(s, "SELECT count(*) FROM t WHERE a > zeroblob(5000)", "0\n");
    EXPECT(s, "SELECT count(*) FROM t WHERE a < zeroblob(5000)", "1\n");
    EXPECT(s, "DELETE FROM t", "");
    EXPECT(s, "SELECT count(*) FROM t", "0\n");
    /* a huge statement: 400 KB of terms */
    size_t n = 400000;
    char *big = malloc(n + 64);
    CHECK(big);
    strcpy(big, "SELECT 0");
    size_t at = strlen(big);
    while (at + 4 < n) {
        memcpy(big + at, "+1", 2);
        at += 2;
    }
    big[at] = 0;
    const char *r = q(s, big);
    CHECKF(strncmp(r, "ERR 1: ", 7) == 0 || strcmp(r, "199996\n") == 0, "%.100s", r);
    /* deep nesting */
    at = 0;
    strcpy(big, "SELECT ");
    at = strlen(big);
    for (int i = 0; i < 5000; i++)
        big[at++] = '(';
    big[at++] = '1';
    for (int i = 0; i < 5000; i++)
        big[at++] = ')';
    big[at] = 0;
    r = q(s, big);
    CHECKF(strstr(r, "ERR 1: ") == r, "%.100s", r);
    free(big);
    /* a NUL inside the given length ends the statement text for SQLite */
    msql_stmt *st = NULL;
    CHECK(msql_prepare(s, "SELECT 1\0garbage", 16, &st, NULL) != MSQL_OK || st);
    msql_finalize(st);
    /* invalid UTF-8 in a literal is stored as given */
    EXPECT(s, "INSERT INTO t VALUES(2, 'a\xff\xfe')", "");
    EXPECT(s, "SELECT length(CAST(b AS BLOB)) FROM t", "3\n");
    msql_close(s);
}

TEST(statement_timeout)
{
    msql *s = fresh();
    CHECK(s);
    EXPECT(s, "CREATE TABLE t(a INT PRIMARY KEY)", "");
    msql_set_statement_timeout(s, 200);
    const char *endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x FROM c) "
                          "SELECT count(*) FROM c";
    EXPECT(s, endless, "ERR 1: interrupted: the statement ran over 200 ms");
    /* a write interrupted changes nothing */
    EXPECT(s,
           "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) INSERT INTO t "
           "SELECT x FROM c",
           "ERR 1: interrupted: the statement ran over 200 ms");
    EXPECT(s, "SELECT count(*) FROM t", "0\n");
    EXPECT(s, "BEGIN; INSERT INTO t VALUES(1)", "");
    EXPECT(s, endless, "ERR 1: interrupted: the statement ran over 200 ms");
    CHECK(msql_in_transaction(s)); /* the transaction goes on */
    EXPECT(s, "COMMIT; SELECT * FROM t", "1\n");
    msql_set_statement_timeout(s, 0);
    msql_close(s);
}

TEST(api_misuse)
{
    msql *s = fresh();
    CHECK(s);
    msql_stmt *st = NULL;
    CHECK_EQ(msql_prepare(NULL, "SELECT 1", -1, &st, NULL), MSQL_ERROR);
    CHECK_EQ(msql_prepare(s, NULL, -1, &st, NULL), MSQL_ERROR);
    CHECK_EQ(msql_step(NULL), MSQL_ERROR);
    CHECK_EQ(msql_column_count(NULL), 0);
    CHECK(msql_column_value(NULL, 0) == NULL);
    msql_finalize(NULL);
    CHECK_EQ(msql_exec(NULL, "SELECT 1"), MSQL_ERROR);
    CHECK(strcmp(msql_errmsg(NULL), "") == 0);
    msql *none = (msql *)&st;
    CHECK_EQ(msql_open(NULL, &none), MSQL_ERROR);
    CHECK(none == NULL);
    CHECK_EQ(msql_prepare(s, "SELECT 1, 2", -1, &st, NULL), MSQL_OK);
    CHECK(msql_column_value(st, 0) == NULL || 1);
    CHECK_EQ(msql_step(st), MSQL_ROW);
    CHECK(msql_column_value(st, 5) == NULL);
    CHECK(msql_column_value(st, -1) == NULL);
    CHECK_EQ(msql_step(st), MSQL_DONE);
    CHECK_EQ(msql_step(st), MSQL_ROW); /* stepping after DONE runs it again, as SQLite does */
    msql_finalize(st);
    /* an error, then stepping the failed statement again */
    CHECK_EQ(msql_exec(s, "CREATE TABLE t(a INT PRIMARY KEY); INSERT INTO t VALUES(1)"), MSQL_OK);
    CHECK_EQ(msql_prepare(s, "INSERT INTO t VALUES(1)", -1, &st, NULL), MSQL_OK);
    CHECK_EQ(msql_step(st), MSQL_ERROR);
    CHECK(strstr(msql_errmsg(s), "UNIQUE constraint failed: t.a"));
    CHECK_EQ(msql_step(st), MSQL_ERROR); /* run again, as SQLite does after an error */
    CHECK(strstr(msql_errmsg(s), "UNIQUE constraint failed: t.a"));
    msql_finalize(st);
    msql_close(s);
}

static uint64_t rng;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

TEST(token_soup)
{
    msql *s = fresh();
    CHECK(s);
    CHECK_EQ(msql_exec(s, "CREATE TABLE t(a INT PRIMARY KEY, b TEXT); CREATE TABLE u(x, y);"
                          "INSERT INTO t VALUES(1, 'a'), (2, 'b'); INSERT INTO u VALUES(1, 2)"),
             MSQL_OK);
    const char *env = getenv("SQ_BADINPUT_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    printf("  seed %llu (SQ_BADINPUT_SEED replays)\n", (unsigned long long)seed);
    rng = seed * 0x9E3779B97F4A7C15ULL + 7;
    static const char *tok[] = {
        "SELECT",     "*",      "FROM",      "t",       "u",        "WHERE",     "a",
        "b",          "x",      "=",         "<",       "(",        ")",         ",",
        "1",          "'s'",    "NULL",      "INSERT",  "INTO",     "VALUES",    "UPDATE",
        "SET",        "DELETE", "BEGIN",     "COMMIT",  "ROLLBACK", "SAVEPOINT", "RELEASE",
        "TO",         "sp",     "READ",      "ONLY",    "WITH",     "STALENESS", "'1s'",
        "AS",         "OF",     "TIMESTAMP", "SHOW",    "TABLES",   "CREATE",    "TABLE",
        "DROP",       "INDEX",  "ON",        "VIEW",    "v",        "PRIMARY",   "KEY",
        "INTERLEAVE", "IN",     "PARENT",    "CASCADE", "OR",       "REPLACE",   "IGNORE",
        ";",          "ORDER",  "BY",        "LIMIT",   "JOIN",     "x'00'",     "-",
        "+",          "2.5",    "IS",        "NOT",     "DEFAULT",  "CHECK",     "UNIQUE",
        "EXPLAIN",    "QUERY",  "PLAN",      "\"q\"",   "?",
    };
    int ok = 0, err = 0;
    for (int i = 0; i < 3000; i++) {
        char sql[512];
        size_t n = 0;
        int len = 1 + (int)rnd(14);
        for (int j = 0; j < len; j++)
            n += (size_t)snprintf(sql + n, sizeof sql - n, "%s ",
                                  tok[rnd(sizeof tok / sizeof *tok)]);
        const char *r = q(s, sql);
        if (strncmp(r, "ERR", 3) == 0) {
            err++;
            /* every failure says something */
            CHECKF(strlen(r) > 8, "%s -> %s", sql, r);
            CHECKF(sqt_code != MSQL_UNKNOWN, "%s -> %s", sql, r);
        } else {
            ok++;
        }
    }
    printf("  %d statements ran, %d failed cleanly\n", ok, err);
    /* the session still works, whatever state the soup left */
    q(s, "ROLLBACK");
    const char *r = q(s, "SELECT count(*) FROM sqlite_schema WHERE 0");
    CHECKF(strcmp(r, "0\n") == 0, "%s", r);
    msql_close(s);
}

/* Statements of the differential scripts, mutated (a token dropped, doubled,
 * swapped with the next, or replaced by another from the same script), run
 * after the script itself: deeper paths than token soup (the session's own
 * parsing of INSERT, UPSERT, RETURNING, triggers, ALTER, SHOW, BEGIN). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    if (p)
        p[n] = 0;
    fclose(f);
    return p;
}

typedef struct span {
    const char *p;
    int n;
} span;

TEST(mutated_scripts)
{
    static const char *names[] = {"indexes_triggers", "upsert_returning", "transactions",
                                  "constraints",      "conflict_modes",   "views_ctes",
                                  "composite_keys",   "dml_expressions"};
    const char *env = getenv("SQ_BADINPUT_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    printf("  seed %llu (SQ_BADINPUT_SEED replays)\n", (unsigned long long)seed);
    rng = seed * 0x2545F4914F6CDD1DULL + 11;
    int ran = 0;
    for (size_t f = 0; f < sizeof names / sizeof *names; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s.sql", SQL_DIFF_DIR, names[f]);
        char *sql = slurp(path);
        CHECKF(sql, "cannot read %s", path);
        msql *s = fresh();
        CHECK(s);
        msql_set_statement_timeout(s, 2000); /* a mutation can make a query endless */
        q(s, sql);                           /* the script's tables, views, triggers */
        q(s, "ROLLBACK");
        /* its tokens, and its statements as token ranges */
        const char *end = sql + strlen(sql), *p = sql;
        static span toks[20000];
        int nt = 0;
        sq_tok t;
        for (;;) {
            p = sq_lex(p, end, &t);
            if (t.type == SQ_TK_EOF || t.type == SQ_TK_BAD || nt == 20000)
                break;
            toks[nt].p = t.p;
            toks[nt].n = t.n;
            nt++;
        }
        int start = 0;
        for (int i = 0; i < nt; i++) {
            if (!(toks[i].n == 1 && toks[i].p[0] == ';') && i != nt - 1)
                continue;
            int stop = i; /* the statement is toks[start, stop) */
            for (int m = 0; m < 12 && stop > start; m++) {
                char buf[8192];
                size_t bn = 0;
                int kind = (int)rnd(4), at = start + (int)rnd((unsigned)(stop - start));
                for (int j = start; j < stop && bn < sizeof buf - 200; j++) {
                    span x = toks[j];
                    if (j == at) {
                        if (kind == 0)
                            continue; /* dropped */
                        if (kind == 1)
                            bn += (size_t)snprintf(buf + bn, sizeof buf - bn, "%.*s ", x.n, x.p);
                        if (kind == 2 && j + 1 < stop) {
                            span y = toks[j + 1];
                            bn += (size_t)snprintf(buf + bn, sizeof buf - bn, "%.*s %.*s ", y.n,
                                                   y.p, x.n, x.p);
                            j++;
                            continue;
                        }
                        if (kind == 3)
                            x = toks[rnd((unsigned)nt)];
                    }
                    bn += (size_t)snprintf(buf + bn, sizeof buf - bn, "%.*s ", x.n, x.p);
                }
                const char *r = q(s, buf);
                ran++;
                if (strncmp(r, "ERR", 3) == 0)
                    CHECKF(strlen(r) > 8 && sqt_code != MSQL_UNKNOWN, "%s -> %s", buf, r);
            }
            start = i + 1;
        }
        q(s, "ROLLBACK");
        const char *r = q(s, "SELECT 1");
        CHECKF(strcmp(r, "1\n") == 0, "%s after %s", r, names[f]);
        msql_close(s);
        free(sql);
    }
    printf("  %d mutated statements\n", ran);
}

TEST(cleanup)
{
    meridian_close(sqt_db);
    sqt_db = NULL;
}

TEST_MAIN(TEST_CASE(garbage), TEST_CASE(limits), TEST_CASE(statement_timeout),
          TEST_CASE(api_misuse), TEST_CASE(token_soup), TEST_CASE(mutated_scripts),
          TEST_CASE(cleanup))
