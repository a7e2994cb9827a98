/* The SQL engine on a real three-node cluster (TLS, one data group: the catalog, keys
 * starting with 0x01, lives in the meta group and the rows, 0x02..., in the data group, so
 * every write transaction that reads the catalog commits across both by two-phase commit):
 * the catalog's and the rows' groups, DDL seen
 * by other sessions, writes, reads at every bound, interleaved tables, an
 * explicit transaction over two tables, a data group's leader killed before
 * and during statements (a clear error or success, never half a statement),
 * and concurrent transfers that keep a total.
 *
 * Skipped while libmeridian refuses binary keys (the wire work before it). */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sql/sq_key.h"
#include "sql/sql.h"
#include "tests/sql/sql_test_util.h"
#include "tests/support/cluster.h"
#include "tests/test.h"

#define NNODES 3

static int cluster_up;
static char addrs[256];

static void sleep_ms(int ms)
{
    struct timespec d = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
}

static void stop_cluster(void)
{
    if (cluster_up)
        tc_teardown(getenv("MERIDIAN_TEST_KEEP") != NULL);
    cluster_up = 0;
}

static int binary_keys(void)
{
    static const uint8_t k[] = {0x02, 0x15, 0x00, 0x01};
    return meridian_check_key(k, sizeof k, NULL, 0) == MERIDIAN_OK;
}

static int ensure_cluster(void)
{
    if (cluster_up)
        return 1;
    /* libmeridian writes to sockets a killed node closed: without this, SIGPIPE
     * ends the process (as it would any application's) */
    signal(SIGPIPE, SIG_IGN);
    if (tc_setup(NNODES, "meridian-sql") != 0)
        return 0;
    /* group 1 (meta): the catalog (0x01 keys); group 2: rows (0x02) */
    for (int i = 0; i < NNODES; i++)
        tc_start(i);
    cluster_up = 1;
    atexit(stop_cluster);
    if (tc_init(1) != 0)
        return 0;
    for (int g = 1; g <= 2; g++)
        if (tc_wait_leader(g, -1, 30000) < 0)
            return 0;
    snprintf(addrs, sizeof addrs, "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", tc.ports[0],
             tc.ports[1], tc.ports[2]);
    return 1;
}

typedef struct conn {
    meridian *db;
    msql *s;
} conn;

static int sql_connect(conn *c)
{
    meridian_options o = {.addrs = addrs, .certs_dir = tc.certs, .timeout_ms = 5000};
    c->db = NULL;
    c->s = NULL;
    if (meridian_open(&o, &c->db) != MERIDIAN_OK) {
        fprintf(stderr, "  open: %s\n", meridian_errmsg(c->db));
        meridian_close(c->db);
        return 0;
    }
    if (msql_open(c->db, &c->s) != MSQL_OK) {
        fprintf(stderr, "  msql_open: %s\n", msql_errmsg(c->s));
        msql_close(c->s);
        meridian_close(c->db);
        return 0;
    }
    msql_set_retry_deadline(c->s, 20000);
    return 1;
}

static void disconnect(conn *c)
{
    msql_close(c->s);
    meridian_close(c->db);
}

#define READY()                                                                                    \
    do {                                                                                           \
        if (!binary_keys())                                                                        \
            SKIP("libmeridian still refuses binary keys (the wire work is not merged)");           \
        CHECK(ensure_cluster());                                                                   \
    } while (0)

/* Runs a setup statement, retrying what the cluster says may be retried (a
 * loaded machine makes large transactions lose to 2PC timeouts). */
static const char *q_retry(msql *s, const char *sql)
{
    const char *r = q(s, sql);
    for (int i = 0; i < 5 && (sqt_code == MSQL_RETRY || sqt_code == MSQL_UNAVAILABLE); i++) {
        sleep_ms(500);
        r = q(s, sql);
    }
    return r;
}

#define EXPECT_RETRY(s, sql, want)                                                                 \
    do {                                                                                           \
        const char *got_ = q_retry((s), (sql));                                                    \
        CHECKF(strcmp(got_, (want)) == 0, "%s\n  got:  [%s]\n  want: [%s]", (sql), got_, (want));  \
    } while (0)

#define EXPECT(s, sql, want)                                                                       \
    do {                                                                                           \
        const char *got_ = q((s), (sql));                                                          \
        CHECKF(strcmp(got_, (want)) == 0, "%s\n  got:  [%s]\n  want: [%s]", (sql), got_, (want));  \
    } while (0)

TEST(ddl_and_writes)
{
    READY();
    conn a, b;
    CHECK(sql_connect(&a));
    CHECK(sql_connect(&b));
    EXPECT(
        a.s,
        "CREATE TABLE acct(id INTEGER PRIMARY KEY, owner TEXT NOT NULL, bal INT CHECK (bal >= 0))",
        "");
    EXPECT(b.s, "INSERT INTO acct(owner, bal) VALUES('ann', 100), ('bob', 50)", "");
    CHECK(msql_commit_ts(b.s) > 0);
    EXPECT(a.s, "SELECT * FROM acct", "1|ann|100\n2|bob|50\n");
    EXPECT(a.s, "UPDATE acct SET bal = bal - 200 WHERE id = 1",
           "ERR 1: CHECK constraint failed: bal >= 0");
    EXPECT(a.s, "UPDATE acct SET bal = bal - 20 WHERE id = 1", "");
    EXPECT(b.s, "SELECT bal FROM acct WHERE id = 1", "80\n");
    uint64_t before = msql_rows_read(b.s);
    EXPECT(b.s, "SELECT owner FROM acct WHERE id = 2", "bob\n");
    CHECK_EQ(msql_rows_read(b.s) - before, 1);
    EXPECT(a.s, "CREATE INDEX acct_owner ON acct(owner)", "");
    EXPECT(b.s, "SELECT id FROM acct WHERE owner = 'bob'", "2\n");
    EXPECT(a.s, "DELETE FROM acct WHERE owner = 'bob'", "");
    EXPECT(b.s, "SELECT count(*) FROM acct", "1\n");
    disconnect(&a);
    disconnect(&b);
}

TEST(read_bounds)
{
    READY();
    conn a;
    CHECK(sql_connect(&a));
    EXPECT(a.s, "CREATE TABLE rb(k INT PRIMARY KEY, v TEXT)", "");
    EXPECT(a.s, "INSERT INTO rb VALUES(1, 'first')", "");
    int64_t ts1 = msql_commit_ts(a.s);
    sleep_ms(50);
    EXPECT(a.s, "UPDATE rb SET v = 'second' WHERE k = 1", "");
    char sql[200];
    snprintf(sql, sizeof sql, "BEGIN READ ONLY AS OF TIMESTAMP %lld; SELECT v FROM rb; COMMIT",
             (long long)ts1);
    EXPECT(a.s, sql, "first\n");
    EXPECT(a.s, "BEGIN READ ONLY; SELECT v FROM rb; COMMIT", "second\n");
    EXPECT(a.s, "BEGIN READ ONLY WITH STRONG; SELECT v FROM rb; COMMIT", "second\n");
    const char *r = q(a.s, "BEGIN READ ONLY WITH MAX STALENESS '10s'; SELECT v FROM rb; COMMIT");
    CHECKF(strcmp(r, "first\n") == 0 || strcmp(r, "second\n") == 0, "%s", r);
    r = q(a.s, "BEGIN READ ONLY WITH EXACT STALENESS '5ms'; SELECT v FROM rb; COMMIT");
    CHECKF(strcmp(r, "first\n") == 0 || strcmp(r, "second\n") == 0, "%s", r);
    /* long before the table: no catalog then, so no table */
    r = q(a.s, "BEGIN READ ONLY WITH EXACT STALENESS '1h'; SELECT v FROM rb");
    CHECKF(strncmp(r, "ERR", 3) == 0, "%s", r);
    q(a.s, "ROLLBACK");
    disconnect(&a);
}

TEST(interleaved_and_two_tables)
{
    READY();
    conn a;
    CHECK(sql_connect(&a));
    EXPECT(a.s, "CREATE TABLE cust(id INT PRIMARY KEY, name TEXT)", "");
    EXPECT(a.s,
           "CREATE TABLE ord(id INT, n INT, total INT, PRIMARY KEY (id, n)) INTERLEAVE IN PARENT "
           "cust ON DELETE CASCADE",
           "");
    EXPECT(a.s, "CREATE TABLE audit(seq INTEGER PRIMARY KEY, what TEXT)", "");
    EXPECT(
        a.s,
        "BEGIN; INSERT INTO cust VALUES(1, 'ann'), (2, 'bob'); INSERT INTO ord VALUES(1, 1, 10), "
        "(1, 2, 20), (2, 1, 5); INSERT INTO audit(what) VALUES('load'); COMMIT",
        "");
    EXPECT(a.s, "SELECT c.name, sum(o.total) FROM cust c JOIN ord o USING (id) GROUP BY c.name",
           "ann|30\nbob|5\n");
    EXPECT(a.s,
           "BEGIN; DELETE FROM cust WHERE id = 1; INSERT INTO audit(what) VALUES('drop ann'); "
           "ROLLBACK; SELECT count(*) FROM ord",
           "3\n");
    EXPECT(a.s, "DELETE FROM cust WHERE id = 1; SELECT * FROM ord", "2|1|5\n");
    EXPECT(a.s, "SELECT what FROM audit", "load\n");
    disconnect(&a);
}

/* The id the catalog gave a table (its descriptor's "id"). */
static int64_t table_id(meridian *db, const char *name)
{
    meridian_txn *t = NULL;
    if (meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t) != MERIDIAN_OK)
        return -1;
    char key[64] = {0x01, 0x03};
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

/* The group holding the key a table's rows start at (its 0x02 prefix and id), or -1. */
static int rows_group(meridian *db, const char *table)
{
    int64_t id = table_id(db, table);
    if (id <= 0)
        return -1;
    sq_buf k = {0};
    uint8_t p = 0x02;
    sq_buf_put(&k, &p, 1);
    sq_key_append_int(&k, id, 0);
    meridian_range *rr = NULL;
    size_t nr = 0;
    int g = -1;
    if (meridian_ranges(db, k.p, k.len, NULL, 0, 1, &rr, &nr) == MERIDIAN_OK && nr > 0)
        g = (int)rr[0].group;
    meridian_free_ranges(rr, nr);
    sq_buf_free(&k);
    return g;
}

/* The catalog lives in the meta group (group 1: keys below 0x02), a table's rows in a data
 * group: the range map says so for the catalog's keys and a row's, and a write that reads the
 * catalog's version under lock and writes a row commits across the two. */
TEST(catalog_in_meta_group)
{
    READY();
    conn a;
    CHECK(sql_connect(&a));
    EXPECT(a.s, "CREATE TABLE cm(k INT PRIMARY KEY, v TEXT)", "");
    static const uint8_t catalog[] = {0x01, 0x01};
    meridian_range *rr = NULL;
    size_t nr = 0;
    CHECK_EQ(meridian_ranges(a.db, catalog, sizeof catalog, NULL, 0, 1, &rr, &nr), MERIDIAN_OK);
    CHECK(nr >= 2);
    if (nr >= 2) {
        CHECK_EQ(rr[0].group, 1);
        CHECK_EQ(rr[0].slen, 0);
        CHECK(rr[0].elen == 1 && ((const uint8_t *)rr[0].end)[0] == 0x02);
        CHECK(rr[1].group >= 2);
    }
    meridian_free_ranges(rr, nr);
    CHECK(table_id(a.db, "cm") > 0); /* the descriptor, read at its key 0x01 0x03 "cm" */
    CHECK(rows_group(a.db, "cm") >= 2);
    EXPECT_RETRY(a.s, "INSERT INTO cm VALUES(1, 'one'), (2, 'two')", "");
    EXPECT(a.s, "SELECT v FROM cm ORDER BY k", "one\ntwo\n");
    const char *t = q(a.s, "SHOW TABLETS FOR TABLE cm");
    CHECKF(strstr(t, "cm|(start of cm)|+inf|"), "%s", t);
    disconnect(&a);
}

/* A table's key range split in two tablets (at the key of k = 50): SHOW
 * TABLETS shows both, with the boundary decoded, and a transaction writing
 * both halves commits across the two groups. */
TEST(tablets_and_a_split_table)
{
    READY();
    conn a;
    CHECK(sql_connect(&a));
    EXPECT(a.s, "CREATE TABLE tb(k INT PRIMARY KEY, v TEXT)", "");
    EXPECT_RETRY(a.s,
                 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) "
                 "INSERT INTO tb SELECT i, 'v' || i FROM n",
                 "");
    int64_t id = table_id(a.db, "tb");
    CHECK(id > 0);
    sq_buf k = {0};
    uint8_t p = 0x02;
    sq_buf_put(&k, &p, 1);
    sq_key_append_int(&k, id, 0);
    size_t pfxlen = k.len;
    sq_key_append_int(&k, 50, 0);
    char json[512];
    int n = snprintf(json, sizeof json, "{\"key\": {\"hex\": \"");
    for (size_t i = 0; i < k.len; i++)
        n += snprintf(json + n, sizeof json - (size_t)n, "%02x", k.p[i]);
    snprintf(json + n, sizeof json - (size_t)n, "\"}}");
    int split = 0, g = rows_group(a.db, "tb");
    CHECK(g >= 2);
    for (int attempt = 0; attempt < 100 && !split; attempt++) {
        int leader = tc_find_leader(g, -1);
        json_t *r = leader >= 0 ? tc_request(leader, 44 /* SPLIT_AT */, json) : NULL;
        split = r && json_is_true(json_object_get(r, "ok"));
        json_decref(r);
        if (!split)
            sleep_ms(200);
    }
    CHECK(split);
    /* the new range in the map, with a leader */
    size_t nr = 0;
    for (int attempt = 0; attempt < 150; attempt++) {
        meridian_range *rr = NULL;
        uint8_t end[32];
        memcpy(end, k.p, pfxlen);
        end[pfxlen - 1]++;
        if (meridian_ranges(a.db, k.p, pfxlen, end, pfxlen, 1, &rr, &nr) == MERIDIAN_OK &&
            nr == 2 && rr[1].leader[0]) {
            meridian_free_ranges(rr, nr);
            break;
        }
        meridian_free_ranges(rr, nr);
        sleep_ms(200);
    }
    sq_buf_free(&k);
    CHECK_EQ(nr, 2);
    const char *r = q(a.s, "SHOW TABLETS FOR TABLE tb");
    printf("%s", r);
    CHECKF(strstr(r, "tb|(start of tb)|(50)|") && strstr(r, "tb|(50)|+inf|"), "%s", r);
    /* one transaction over both tablets */
    EXPECT(a.s,
           "BEGIN; UPDATE tb SET v = 'low' WHERE k = 10; UPDATE tb SET v = 'high' WHERE k = 90; "
           "COMMIT",
           "");
    EXPECT(a.s, "SELECT k, v FROM tb WHERE k IN (10, 90)", "10|low\n90|high\n");
    EXPECT(a.s, "SELECT count(*), sum(k) FROM tb", "100|5050\n");
    uint64_t before = msql_rows_read(a.s);
    EXPECT(a.s, "SELECT count(*) FROM tb WHERE k >= 45 AND k < 55", "10\n");
    CHECK_EQ(msql_rows_read(a.s) - before, 10);
    disconnect(&a);
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Not a benchmark (bench/ has those): the cost of a SQL point select next to a
 * strong read-only get of the same row through libmeridian, printed. A SQL
 * statement reads the catalog version first, so it makes two round trips. */
TEST(point_select_cost)
{
    READY();
    conn a;
    CHECK(sql_connect(&a));
    EXPECT(a.s, "CREATE TABLE pt(k INT PRIMARY KEY, v TEXT)", "");
    EXPECT(a.s, "INSERT INTO pt VALUES(7, 'seven')", "");
    int64_t id = table_id(a.db, "pt");
    sq_buf k = {0};
    uint8_t p = 0x02;
    sq_buf_put(&k, &p, 1);
    sq_key_append_int(&k, id, 0);
    sq_key_append_int(&k, 7, 0);
    enum { N = 200 };
    msql_stmt *st = NULL;
    CHECK_EQ(msql_prepare(a.s, "SELECT v FROM pt WHERE k = 7", -1, &st, NULL), MSQL_OK);
    int64_t t0 = now_ns();
    for (int i = 0; i < N; i++) {
        CHECK_EQ(msql_step(st), MSQL_ROW);
        CHECK_EQ(msql_step(st), MSQL_DONE);
    }
    int64_t sql_ns = (now_ns() - t0) / N;
    msql_finalize(st);
    t0 = now_ns();
    for (int i = 0; i < N; i++) {
        meridian_txn *t = NULL;
        CHECK_EQ(meridian_begin_ro(a.db, MERIDIAN_STRONG, 0, &t), MERIDIAN_OK);
        void *v = NULL;
        size_t vl = 0;
        int rc = meridian_get(t, k.p, k.len, &v, &vl);
        meridian_free(v);
        meridian_rollback(t);
        CHECK_EQ(rc, MERIDIAN_OK);
    }
    int64_t get_ns = (now_ns() - t0) / N;
    /* with the opt-in schema cache: one round trip */
    msql_set_schema_cache(a.s, 1000);
    CHECK_EQ(msql_prepare(a.s, "SELECT v FROM pt WHERE k = 7", -1, &st, NULL), MSQL_OK);
    t0 = now_ns();
    for (int i = 0; i < N; i++) {
        CHECK_EQ(msql_step(st), MSQL_ROW);
        CHECK_EQ(msql_step(st), MSQL_DONE);
    }
    int64_t cached_ns = (now_ns() - t0) / N;
    msql_finalize(st);
    msql_set_schema_cache(a.s, 0);
    sq_buf_free(&k);
    printf("  point select: SQL %.1f us (%.1f us with a 1 s schema cache), libmeridian get %.1f "
           "us: %.2fx (%.2fx)\n",
           sql_ns / 1000.0, cached_ns / 1000.0, get_ns / 1000.0,
           get_ns ? (double)sql_ns / (double)get_ns : 0.0,
           get_ns ? (double)cached_ns / (double)get_ns : 0.0);
    disconnect(&a);
}

/* A data group's leader is killed; statements then either succeed once the
 * group has a new leader or fail with a clear error, and never half-apply. */
TEST(leader_killed)
{
    READY();
    conn a;
    CHECK(sql_connect(&a));
    EXPECT(a.s, "CREATE TABLE kl(k INT PRIMARY KEY, v INT)", "");
    EXPECT(a.s, "INSERT INTO kl VALUES(0, 0)", "");
    /* a transaction with many rows, the leader killed before its COMMIT */
    CHECK_EQ(msql_exec(a.s, "BEGIN"), MSQL_OK);
    for (int i = 1; i <= 200; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "INSERT INTO kl VALUES(%d, %d)", i, i);
        CHECKF(msql_exec(a.s, sql) == MSQL_OK, "%s", msql_errmsg(a.s));
    }
    int g = rows_group(a.db, "kl");
    CHECK(g >= 2);
    int victim = tc_find_leader(g, -1);
    CHECK(victim >= 0);
    tc_kill(victim);
    msql_stmt *st = NULL;
    CHECK_EQ(msql_prepare(a.s, "COMMIT", -1, &st, NULL), MSQL_OK);
    int rc = msql_step(st);
    msql_finalize(st);
    printf("  COMMIT with the leader gone: %d %s\n", rc, rc == MSQL_DONE ? "" : msql_errmsg(a.s));
    CHECKF(rc == MSQL_DONE || rc == MSQL_RETRY || rc == MSQL_UNAVAILABLE || rc == MSQL_UNKNOWN,
           "%d %s", rc, msql_errmsg(a.s));
    CHECK(rc == MSQL_DONE || strlen(msql_errmsg(a.s)) > 0);
    CHECK(tc_wait_leader(g, victim, 30000) >= 0);
    const char *r = q(a.s, "SELECT count(*) FROM kl");
    if (rc == MSQL_DONE)
        CHECKF(strcmp(r, "201\n") == 0, "%s", r);
    else if (rc != MSQL_UNKNOWN)
        CHECKF(strcmp(r, "1\n") == 0, "%s", r);
    else
        CHECKF(strcmp(r, "1\n") == 0 || strcmp(r, "201\n") == 0, "%s", r);
    /* an autocommit statement across the failover: retried inside, all or nothing */
    tc_start(victim);
    CHECK(tc_wait_leader(g, -1, 30000) >= 0);
    victim = tc_find_leader(g, -1);
    tc_kill(victim);
    r = q(a.s, "UPDATE kl SET v = v + 1");
    printf("  UPDATE across a failover: %s", r[0] ? r : "ok\n");
    CHECKF(r[0] == 0 || sqt_code == MSQL_UNAVAILABLE || sqt_code == MSQL_RETRY ||
               sqt_code == MSQL_UNKNOWN,
           "%s", r);
    CHECK(tc_wait_leader(g, victim, 30000) >= 0);
    const char *sum = q(a.s, "SELECT count(DISTINCT v - k) FROM kl");
    CHECKF(strcmp(sum, "1\n") == 0, "rows updated partly: %s", sum);
    tc_start(victim);
    disconnect(&a);
}

/* The data group's leader is killed from another thread while statements run
 * (UPDATEs of every row, scans): each statement either completes or fails with
 * a clear code, and an UPDATE is never half applied. */
typedef struct killer {
    int delay_ms, victim, group;
} killer;

static void *kill_later(void *arg)
{
    killer *k = arg;
    sleep_ms(k->delay_ms);
    k->victim = tc_find_leader(k->group, -1);
    if (k->victim >= 0)
        tc_kill(k->victim);
    return NULL;
}

TEST(killed_mid_statement)
{
    READY();
    conn a;
    CHECK(sql_connect(&a));
    msql_set_retry_deadline(a.s, 3000);
    EXPECT(a.s, "CREATE TABLE big(k INT PRIMARY KEY, v INT)", "");
    EXPECT_RETRY(a.s,
                 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) "
                 "INSERT INTO big SELECT i, i FROM n",
                 "");
    killer k = {.delay_ms = 40, .victim = -1, .group = rows_group(a.db, "big")};
    CHECK(k.group >= 2);
    pthread_t th;
    pthread_create(&th, NULL, kill_later, &k);
    int ok = 0, failed = 0;
    char first[300] = "";
    int64_t until = now_ns() + 2500LL * 1000000;
    while (now_ns() < until) {
        const char *r = q(a.s, "UPDATE big SET v = v + 1");
        if (sqt_code == MSQL_OK) {
            ok++;
        } else {
            CHECKF(sqt_code == MSQL_UNAVAILABLE || sqt_code == MSQL_RETRY ||
                       sqt_code == MSQL_UNKNOWN,
                   "%d %s", sqt_code, r);
            CHECKF(strlen(r) > 10, "%s", r);
            if (!failed++)
                snprintf(first, sizeof first, "%s", r);
        }
        r = q(a.s, "SELECT count(*) FROM big");
        CHECKF(sqt_code != MSQL_OK || strcmp(r, "3000\n") == 0, "%s", r);
        CHECKF(sqt_code == MSQL_OK || sqt_code == MSQL_UNAVAILABLE || sqt_code == MSQL_RETRY,
               "%d %s", sqt_code, r);
    }
    pthread_join(th, NULL);
    printf("  %d UPDATEs of 3000 rows done, %d failed cleanly around the kill%s%s\n", ok, failed,
           failed ? ", first: " : "", first);
    CHECK(k.victim >= 0);
    CHECK(tc_wait_leader(k.group, k.victim, 30000) >= 0);
    msql_set_retry_deadline(a.s, 20000);
    const char *r = q(a.s, "SELECT count(*), count(DISTINCT v - k) FROM big");
    CHECKF(strcmp(r, "3000|1\n") == 0, "an UPDATE half applied: %s", r);
    tc_start(k.victim);
    CHECK(tc_wait_leader(k.group, -1, 30000) >= 0);
    disconnect(&a);
}

/* Transfers between accounts from two sessions at once keep the total. */
typedef struct mover {
    int seed, done, retries, errors;
} mover;

static void *move_money(void *arg)
{
    mover *m = arg;
    conn c;
    if (!sql_connect(&c)) {
        m->errors = 1000;
        return NULL;
    }
    unsigned r = (unsigned)m->seed;
    for (int i = 0; i < 40; i++) {
        r = r * 1103515245 + 12345;
        int from = (int)(r >> 8) % 8, to = (int)(r >> 16) % 8;
        char sql[256];
        snprintf(
            sql, sizeof sql,
            "BEGIN; UPDATE bank SET bal = bal - 1 WHERE id = %d; UPDATE bank SET bal = bal + 1 "
            "WHERE id = %d; COMMIT",
            from, to);
        for (int attempt = 0; attempt < 50; attempt++) {
            int rc = msql_exec(c.s, sql);
            if (rc == MSQL_OK) {
                m->done++;
                break;
            }
            msql_exec(c.s, "ROLLBACK");
            if (rc == MSQL_RETRY) {
                m->retries++;
                continue;
            }
            m->errors++;
            break;
        }
    }
    disconnect(&c);
    return NULL;
}

TEST(concurrent_transfers)
{
    READY();
    conn a;
    CHECK(sql_connect(&a));
    EXPECT(a.s, "CREATE TABLE bank(id INT PRIMARY KEY, bal INT)", "");
    EXPECT(a.s,
           "INSERT INTO bank VALUES(0, 100), (1, 100), (2, 100), (3, 100), (4, 100), (5, 100), "
           "(6, 100), (7, 100)",
           "");
    mover m[3] = {{.seed = 1}, {.seed = 2}, {.seed = 3}};
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, move_money, &m[i]);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    int done = 0, errors = 0, retries = 0;
    for (int i = 0; i < 3; i++) {
        done += m[i].done;
        errors += m[i].errors;
        retries += m[i].retries;
    }
    printf("  %d transfers, %d retried aborts, %d errors\n", done, retries, errors);
    CHECK_EQ(errors, 0);
    CHECK(done > 0);
    EXPECT(a.s, "SELECT sum(bal) FROM bank", "800\n");
    disconnect(&a);
}

TEST(teardown)
{
    stop_cluster();
}

TEST_MAIN(TEST_CASE(ddl_and_writes), TEST_CASE(catalog_in_meta_group), TEST_CASE(read_bounds),
          TEST_CASE(interleaved_and_two_tables), TEST_CASE(tablets_and_a_split_table),
          TEST_CASE(point_select_cost), TEST_CASE(leader_killed), TEST_CASE(killed_mid_statement),
          TEST_CASE(concurrent_transfers), TEST_CASE(teardown))
