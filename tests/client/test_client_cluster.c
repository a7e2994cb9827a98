/* Integration: libmeridian against a real three-node cluster (separate
 * processes, mutual TLS, client certificate) with three data groups split at
 * "h" and "q": get/put/delete/scan, read-your-writes, scans across pages and
 * groups, the read-only modes, transactions over several groups (two-phase
 * commit), wound-wait surfacing as MERIDIAN_ABORTED, meridian_run retrying
 * it, commit deadlines and commit wait, a leader killed under a stream of
 * transactions, and the bank example run as a process, also while the
 * coordinator group's leader is killed. */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/mr_util.h"
#include "meridian.h"
#include "tests/support/cluster.h"
#include "launch/proc.h"
#include "tests/test.h"

#define NNODES 3

static bool cluster_up;
static bool keep_dir;         /* a node crashed: keep its log for whoever looks */
static int64_t horizon_probe; /* a commit timestamp of read_only_modes */
static char addrs[256];

static void stop_cluster(void)
{
    if (cluster_up)
        tc_teardown(keep_dir || getenv("MERIDIAN_TEST_KEEP") != NULL);
    cluster_up = false;
}

static int crashed_node(void);

static bool ensure_cluster(void)
{
    if (cluster_up) {
        /* After a node crash the rest would only wait for a quorum. */
        int c = crashed_node();
        if (c >= 0 || keep_dir)
            fprintf(stderr, "  a node crashed earlier%s: skipping\n", c >= 0 ? " (now seen)" : "");
        return !keep_dir;
    }
    if (tc_setup(NNODES, "meridian-client") != 0)
        return false;
    for (int i = 0; i < NNODES; i++)
        tc_start(i);
    cluster_up = true;
    atexit(stop_cluster);
    sleep_ms(500);
    char *out = NULL;
    int rc = tc_meridian(&out, "init --host 127.0.0.1:%d --certs %s --data-groups 3 --split-at h,q",
                         tc.ports[0], tc.certs);
    free(out);
    if (rc != 0)
        return false;
    for (int g = 2; g <= 4; g++)
        if (tc_wait_leader(g, -1, 30000) < 0)
            return false;
    /* Only one seed on purpose: the rest is learned (range map, leader hints). */
    snprintf(addrs, sizeof addrs, "127.0.0.1:%d", tc.ports[1]);
    return true;
}

static meridian *connect_to(const char *seeds)
{
    meridian_options o = {.addrs = seeds, .certs_dir = tc.certs, .timeout_ms = 5000};
    meridian *db = NULL;
    int rc = meridian_open(&o, &db);
    if (rc != MERIDIAN_OK) {
        fprintf(stderr, "  open: %s: %s\n", meridian_errstr(rc), meridian_errmsg(db));
        meridian_close(db);
        return NULL;
    }
    return db;
}

static meridian *connect_db(void)
{
    return connect_to(addrs);
}

/* Every node as a seed. */
static meridian *connect_all(void)
{
    char all[256];
    snprintf(all, sizeof all, "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", tc.ports[0], tc.ports[1],
             tc.ports[2]);
    return connect_to(all);
}

/* ---- small helpers over the API ---- */

static int put1(meridian *db, const char *k, const char *v, int64_t *ts)
{
    meridian_txn *t;
    int rc = meridian_begin(db, &t);
    if (rc == MERIDIAN_OK)
        rc = v ? meridian_put(t, k, strlen(k), v, strlen(v)) : meridian_delete(t, k, strlen(k));
    if (rc != MERIDIAN_OK) {
        meridian_rollback(t);
        return rc;
    }
    return meridian_commit(t, ts);
}

/* The value of k in t as a NUL-terminated string (malloc'd), or NULL with *rc. */
static char *get_str(meridian_txn *t, const char *k, int *rc)
{
    void *v;
    size_t n;
    *rc = meridian_get(t, k, strlen(k), &v, &n);
    if (*rc != MERIDIAN_OK)
        return NULL;
    char *s = malloc(n + 1);
    memcpy(s, v ? v : "", n);
    s[n] = '\0';
    meridian_free(v);
    return s;
}

/* A read-only transaction's view of one key: "" when not found. */
static char *ro_get(meridian *db, meridian_bound b, int64_t ns, const char *k, int *rc,
                    int64_t *read_ts)
{
    meridian_txn *t;
    *rc = meridian_begin_ro(db, b, ns, &t);
    if (*rc != MERIDIAN_OK)
        return NULL;
    char *s = get_str(t, k, rc);
    if (*rc == MERIDIAN_NOTFOUND)
        s = strdup("");
    if (read_ts)
        *read_ts = meridian_read_ts(t);
    meridian_commit(t, NULL);
    return s;
}

typedef struct rows {
    int n;
    char keys[64][32];
    char vals[64][32];
    int stop_after; /* fn returns 1 after this many (0 = never) */
} rows;

static int collect(void *arg, const void *k, size_t kl, const void *v, size_t vl)
{
    rows *r = arg;
    if (r->n < 64) {
        snprintf(r->keys[r->n], 32, "%.*s", (int)kl, (const char *)k);
        snprintf(r->vals[r->n], 32, "%.*s", (int)vl, (const char *)v);
    }
    r->n++;
    return r->stop_after && r->n >= r->stop_after;
}

/* ---- tests ---- */

TEST(crud)
{
    CHECK(ensure_cluster());
    meridian *db = connect_db();
    CHECK(db);
    int64_t ts1 = 0, ts2 = 0;
    CHECK_EQ(put1(db, "crud/a", "1", &ts1), MERIDIAN_OK);
    /* Commit wait: the timestamp is in the past when the commit returns. */
    CHECKF(ts1 > 0 && ts1 < mr_realtime_ns(), "commit ts %lld", (long long)ts1);
    CHECK_EQ(put1(db, "crud/b", "two", &ts2), MERIDIAN_OK);
    CHECK(ts2 > ts1);
    meridian_txn *t;
    CHECK_EQ(meridian_begin(db, &t), MERIDIAN_OK);
    int rc;
    char *a = get_str(t, "crud/a", &rc);
    CHECK_EQ(rc, MERIDIAN_OK);
    CHECK_STR(a, "1");
    free(a);
    CHECK(get_str(t, "crud/none", &rc) == NULL);
    CHECK_EQ(rc, MERIDIAN_NOTFOUND);
    CHECK_EQ(meridian_delete(t, "crud/a", 6), MERIDIAN_OK);
    CHECK_EQ(meridian_put(t, "crud/c", 6, "", 0), MERIDIAN_OK); /* empty value */
    int64_t ts3 = 0;
    CHECK_EQ(meridian_commit(t, &ts3), MERIDIAN_OK);
    CHECK(ts3 > ts2);
    rows r = {0};
    CHECK_EQ(meridian_begin(db, &t), MERIDIAN_OK);
    CHECK_EQ(meridian_scan(t, "crud/", 5, "crud0", 5, 0, collect, &r), MERIDIAN_OK);
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_OK);
    CHECK_EQ(r.n, 2);
    CHECK_STR(r.keys[0], "crud/b");
    CHECK_STR(r.vals[0], "two");
    CHECK_STR(r.keys[1], "crud/c");
    CHECK_STR(r.vals[1], "");
    /* Another connection sees the same (a strong read at a replica). */
    meridian *db2 = connect_db();
    CHECK(db2);
    char *b = ro_get(db2, MERIDIAN_STRONG, 0, "crud/b", &rc, NULL);
    CHECK_EQ(rc, MERIDIAN_OK);
    CHECK_STR(b, "two");
    free(b);
    char *gone = ro_get(db2, MERIDIAN_STRONG, 0, "crud/a", &rc, NULL);
    CHECK_STR(gone, ""); /* deleted */
    free(gone);
    meridian_close(db2);
    meridian_close(db);
}

/* Rows as bytes, for binary keys. */
typedef struct brows {
    int n;
    size_t kl[16], vl[16];
    uint8_t k[16][8], v[16][8];
} brows;

static int collect_bytes(void *arg, const void *k, size_t kl, const void *v, size_t vl)
{
    brows *r = arg;
    if (r->n < 16 && kl <= 8 && vl <= 8) {
        memcpy(r->k[r->n], k, kl);
        memcpy(r->v[r->n], v, vl);
        r->kl[r->n] = kl;
        r->vl[r->n] = vl;
    }
    r->n++;
    return 0;
}

static bool row_is(const brows *r, int i, const void *k, size_t kl, const void *v, size_t vl)
{
    return i < r->n && r->kl[i] == kl && memcmp(r->k[i], k, kl) == 0 && r->vl[i] == vl &&
           memcmp(r->v[i], v, vl) == 0;
}

/* Keys and values are byte strings end to end (issue 17): NULs inside, 0xff bytes, a key that
 * is a prefix of another, across the groups' boundary at "h"; a key starting with 0 is the
 * cluster's and refused before anything is sent. */
TEST(binary_keys)
{
    CHECK(ensure_cluster());
    meridian *db = connect_db();
    CHECK(db);
    static const struct {
        const char *k;
        size_t kl;
        const char *v;
        size_t vl;
    } kv[] = {
        {"g\xff\xff", 3, "\0", 1}, /* group 2, just below "h" */
        {"h", 1, "a\0b", 3},       /* group 3: the boundary itself */
        {"h\0", 2, "", 0},         /* a NUL after a prefix */
        {"h\0\xff", 3, "\xff\xfe", 2},
        {"h\x01", 2, "x", 1},
    };
    meridian_txn *t;
    CHECK_EQ(meridian_begin(db, &t), MERIDIAN_OK);
    for (size_t i = 0; i < 5; i++)
        CHECK_EQ(meridian_put(t, kv[i].k, kv[i].kl, kv[i].v, kv[i].vl), MERIDIAN_OK);
    /* The library refuses the cluster's keys itself. */
    CHECK_EQ(meridian_put(t, "\0h", 2, "v", 1), MERIDIAN_INVALID);
    CHECK(strstr(meridian_errmsg(db), "byte 0") != NULL);
    char why[128];
    CHECK_EQ(meridian_check_key("\0", 1, why, sizeof why), MERIDIAN_INVALID);
    CHECK_EQ(meridian_check_key("h\0", 2, why, sizeof why), MERIDIAN_OK);
    int64_t ts = 0;
    CHECK_EQ(meridian_commit(t, &ts), MERIDIAN_OK); /* two groups: two-phase commit */
    /* Point reads, read-only and under locks. */
    for (size_t i = 0; i < 5; i++) {
        void *v = NULL;
        size_t vl = 0;
        CHECK_EQ(meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t), MERIDIAN_OK);
        int rc = meridian_get(t, kv[i].k, kv[i].kl, &v, &vl);
        meridian_commit(t, NULL);
        CHECKF(rc == MERIDIAN_OK && vl == kv[i].vl && (!vl || memcmp(v, kv[i].v, vl) == 0),
               "key %zu: rc %d, %zu bytes", i, rc, vl);
        meridian_free(v);
    }
    void *v = NULL;
    size_t vl = 0;
    CHECK_EQ(meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t), MERIDIAN_OK);
    CHECK_EQ(meridian_get(t, "h\0\0", 3, &v, &vl), MERIDIAN_NOTFOUND); /* not "h\0" */
    meridian_commit(t, NULL);
    /* A scan in key order across both groups, prefixes first. */
    brows r = {0};
    CHECK_EQ(meridian_begin_ro(db, MERIDIAN_AT_TIMESTAMP, ts, &t), MERIDIAN_OK);
    CHECK_EQ(meridian_scan(t, "g\xff", 2, "h\x02", 2, 0, collect_bytes, &r), MERIDIAN_OK);
    meridian_commit(t, NULL);
    CHECK_EQ(r.n, 5);
    for (int i = 0; i < 5; i++)
        CHECKF(row_is(&r, i, kv[i].k, kv[i].kl, kv[i].v, kv[i].vl), "row %d", i);
    /* A locked scan merges the transaction's own binary writes in order. */
    CHECK_EQ(meridian_begin(db, &t), MERIDIAN_OK);
    CHECK_EQ(meridian_put(t, "h\0\0", 3, "n", 1), MERIDIAN_OK);
    CHECK_EQ(meridian_delete(t, "h\0\xff", 3), MERIDIAN_OK);
    brows w = {0};
    CHECK_EQ(meridian_scan(t, "h", 1, "h\x02", 2, 0, collect_bytes, &w), MERIDIAN_OK);
    meridian_rollback(t);
    CHECK_EQ(w.n, 4);
    CHECK(row_is(&w, 0, "h", 1, "a\0b", 3));
    CHECK(row_is(&w, 1, "h\0", 2, "", 0));
    CHECK(row_is(&w, 2, "h\0\0", 3, "n", 1));
    CHECK(row_is(&w, 3, "h\x01", 2, "x", 1));
    meridian_close(db);
}

TEST(read_your_writes)
{
    CHECK(ensure_cluster());
    meridian *db = connect_db();
    CHECK(db);
    CHECK_EQ(put1(db, "ryw/1", "one", NULL), MERIDIAN_OK);
    CHECK_EQ(put1(db, "ryw/3", "three", NULL), MERIDIAN_OK);
    CHECK_EQ(put1(db, "ryw/5", "five", NULL), MERIDIAN_OK);
    meridian_txn *t;
    CHECK_EQ(meridian_begin(db, &t), MERIDIAN_OK);
    CHECK_EQ(meridian_put(t, "ryw/2", 5, "two", 3), MERIDIAN_OK);
    CHECK_EQ(meridian_put(t, "ryw/3", 5, "THREE", 5), MERIDIAN_OK);
    CHECK_EQ(meridian_delete(t, "ryw/5", 5), MERIDIAN_OK);
    CHECK_EQ(meridian_put(t, "ryw/9", 5, "nine", 4), MERIDIAN_OK);
    int rc;
    char *v = get_str(t, "ryw/3", &rc);
    CHECK_STR(v, "THREE");
    free(v);
    CHECK(get_str(t, "ryw/5", &rc) == NULL);
    CHECK_EQ(rc, MERIDIAN_NOTFOUND);
    /* The scan merges stored rows with the buffered writes, in order. */
    rows r = {0};
    CHECK_EQ(meridian_scan(t, "ryw/", 4, NULL, 0, 0, collect, &r), MERIDIAN_OK);
    CHECKF(r.n == 4, "%d rows", r.n);
    CHECK_STR(r.keys[0], "ryw/1");
    CHECK_STR(r.keys[1], "ryw/2");
    CHECK_STR(r.vals[2], "THREE");
    CHECK_STR(r.keys[3], "ryw/9");
    /* With a limit, and stopped early by the callback. */
    rows lim = {0};
    CHECK_EQ(meridian_scan(t, "ryw/", 4, "ryw0", 4, 2, collect, &lim), MERIDIAN_OK);
    CHECK_EQ(lim.n, 2);
    rows stop = {.stop_after = 3};
    CHECK_EQ(meridian_scan(t, "ryw/", 4, "ryw0", 4, 0, collect, &stop), MERIDIAN_OK);
    CHECK_EQ(stop.n, 3);
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_OK);
    /* Committed: everyone sees it now. */
    char *nine = ro_get(db, MERIDIAN_STRONG, 0, "ryw/9", &rc, NULL);
    CHECK_STR(nine, "nine");
    free(nine);
    char *five = ro_get(db, MERIDIAN_STRONG, 0, "ryw/5", &rc, NULL);
    CHECK_STR(five, "");
    free(five);
    /* Rolled back: nothing of it stays. */
    CHECK_EQ(meridian_begin(db, &t), MERIDIAN_OK);
    CHECK_EQ(meridian_put(t, "ryw/rolled", 10, "x", 1), MERIDIAN_OK);
    v = get_str(t, "ryw/1", &rc); /* takes a lock, which rollback releases */
    free(v);
    meridian_rollback(t);
    char *rolled = ro_get(db, MERIDIAN_STRONG, 0, "ryw/rolled", &rc, NULL);
    CHECK_STR(rolled, "");
    free(rolled);
    CHECK_EQ(put1(db, "ryw/1", "after", NULL), MERIDIAN_OK); /* the lock is gone */
    meridian_close(db);
}

static int fill(meridian_txn *t, void *arg)
{
    int n = *(int *)arg;
    for (int i = 0; i < n; i++) {
        char k[32], v[32];
        snprintf(k, sizeof k, "page/%05d", i);
        snprintf(v, sizeof v, "%d", i);
        int rc = meridian_put(t, k, strlen(k), v, strlen(v));
        if (rc != MERIDIAN_OK)
            return rc;
    }
    return MERIDIAN_OK;
}

typedef struct order_check {
    int n, bad;
    char last[32];
} order_check;

static int in_order(void *arg, const void *k, size_t kl, const void *v, size_t vl)
{
    order_check *c = arg;
    char key[32];
    snprintf(key, sizeof key, "%.*s", (int)kl, (const char *)k);
    if (strncmp(key, "page/", 5) != 0)
        return 1; /* past the prefix: stop the scan here */
    char want[32];
    snprintf(want, sizeof want, "page/%05d", c->n);
    c->bad += strcmp(key, want) != 0 || (c->n && strcmp(c->last, key) >= 0);
    snprintf(c->last, sizeof c->last, "%s", key);
    c->n++;
    return 0;
}

TEST(scan_pages)
{
    CHECK(ensure_cluster());
    meridian *db = connect_db();
    CHECK(db);
    int n = 2500; /* more than two of the node's 1000-row pages */
    CHECK_EQ(meridian_run(db, 30000, fill, &n, NULL), MERIDIAN_OK);
    meridian_txn *t;
    order_check c = {0};
    CHECK_EQ(meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t), MERIDIAN_OK);
    CHECK_EQ(meridian_scan(t, "page/", 5, "page0", 5, 0, in_order, &c), MERIDIAN_OK);
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_OK);
    CHECK_EQ(c.n, n);
    CHECK_EQ(c.bad, 0);
    /* Locked, to the end of the key space, with a buffered write inside. */
    c = (order_check){0};
    CHECK_EQ(meridian_begin(db, &t), MERIDIAN_OK);
    CHECK_EQ(meridian_put(t, "page/02500", 10, "x", 1), MERIDIAN_OK);
    CHECK_EQ(meridian_scan(t, "page/", 5, NULL, 0, 0, in_order, &c), MERIDIAN_OK);
    meridian_rollback(t);
    CHECK_EQ(c.n, n + 1);
    CHECK_EQ(c.bad, 0);
    /* A limit that ends mid-page. */
    c = (order_check){0};
    CHECK_EQ(meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t), MERIDIAN_OK);
    CHECK_EQ(meridian_scan(t, "page/", 5, NULL, 0, 1234, in_order, &c), MERIDIAN_OK);
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_OK);
    CHECK_EQ(c.n, 1234);
    CHECK_EQ(c.bad, 0);
    meridian_close(db);
}

TEST(read_only_modes)
{
    CHECK(ensure_cluster());
    meridian *db = connect_db();
    CHECK(db);
    int64_t ts1, ts2;
    CHECK_EQ(put1(db, "ro/k", "v1", &ts1), MERIDIAN_OK);
    sleep_ms(300);
    CHECK_EQ(put1(db, "ro/k", "v2", &ts2), MERIDIAN_OK);
    int rc;
    int64_t at;
    /* Strong: sees every commit acknowledged before it began. */
    char *v = ro_get(db, MERIDIAN_STRONG, 0, "ro/k", &rc, &at);
    CHECK_EQ(rc, MERIDIAN_OK);
    CHECK_STR(v, "v2");
    CHECK(at >= ts2);
    free(v);
    /* At a timestamp: the version then. */
    v = ro_get(db, MERIDIAN_AT_TIMESTAMP, ts2 - 1, "ro/k", &rc, &at);
    CHECK_STR(v, "v1");
    CHECK_EQ(at, ts2 - 1);
    free(v);
    v = ro_get(db, MERIDIAN_AT_TIMESTAMP, ts1 - 1, "ro/k", &rc, NULL);
    CHECK_STR(v, "");
    free(v);
    /* Exact staleness: halfway between the two commits. */
    int64_t mid = ts1 + (ts2 - ts1) / 2;
    v = ro_get(db, MERIDIAN_EXACT_STALENESS, mr_realtime_ns() - mid, "ro/k", &rc, &at);
    CHECK_EQ(rc, MERIDIAN_OK);
    CHECK_STR(v, "v1");
    CHECKF(at > ts1 && at < ts2, "exact staleness read at %lld, not in (%lld, %lld)", (long long)at,
           (long long)ts1, (long long)ts2);
    free(v);
    /* Bounded staleness: some replica's recent state, consistent with its ts. */
    int64_t before = mr_realtime_ns();
    v = ro_get(db, MERIDIAN_MAX_STALENESS, 5 * MR_NS_PER_S, "ro/k", &rc, &at);
    CHECK_EQ(rc, MERIDIAN_OK);
    CHECK(at >= before - 5 * MR_NS_PER_S - 10 * MR_NS_PER_MS);
    CHECK_STR(v, at >= ts2 ? "v2" : "v1");
    free(v);
    /* Every read of one read-only transaction is at its first read's time. */
    meridian_txn *t;
    CHECK_EQ(meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t), MERIDIAN_OK);
    CHECK_EQ(meridian_read_ts(t), 0);
    char *first = get_str(t, "ro/k", &rc);
    int64_t fixed = meridian_read_ts(t);
    CHECK_EQ(put1(db, "ro/k", "v3", NULL), MERIDIAN_OK);
    char *again = get_str(t, "ro/k", &rc);
    CHECK_EQ(meridian_read_ts(t), fixed);
    int64_t cts = 0;
    CHECK_EQ(meridian_commit(t, &cts), MERIDIAN_OK);
    CHECK_EQ(cts, fixed);
    bool same = first && again && strcmp(first, "v2") == 0 && strcmp(again, "v2") == 0;
    free(first);
    free(again);
    CHECKF(same, "a read-only transaction saw a later commit");
    horizon_probe = ts1;
    meridian_close(db);
}

/* strong_any_replica: strong reads at followers wait for their safe time, so
 * each sees the commit acknowledged just before it, on every replica in turn. */
TEST(strong_reads_at_any_replica)
{
    CHECK(ensure_cluster());
    meridian *w = connect_db();
    char all[256];
    snprintf(all, sizeof all, "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", tc.ports[0], tc.ports[1],
             tc.ports[2]);
    meridian_options o = {
        .addrs = all, .certs_dir = tc.certs, .timeout_ms = 5000, .strong_any_replica = 1};
    meridian *r = NULL;
    CHECK_EQ(meridian_open(&o, &r), MERIDIAN_OK);
    CHECK(w);
    for (int i = 0; i < 30; i++) {
        char val[16];
        snprintf(val, sizeof val, "v%d", i);
        int64_t ts = 0;
        CHECK_EQ(put1(w, "any/k", val, &ts), MERIDIAN_OK);
        int rc;
        int64_t at = 0;
        char *v = ro_get(r, MERIDIAN_STRONG, 0, "any/k", &rc, &at);
        CHECKF(rc == MERIDIAN_OK && v && strcmp(v, val) == 0 && at >= ts,
               "read %d: %s at %lld after a commit at %lld", i, v ? v : "(none)", (long long)at,
               (long long)ts);
        free(v);
    }
    meridian_close(r);
    meridian_close(w);
}

/* Versions older than the retention (3 s here) are collected, every 5 s: a
 * read there is refused as stale, never answered wrong. */
TEST(below_the_horizon)
{
    CHECK(ensure_cluster());
    CHECK(horizon_probe > 0);
    meridian *db = connect_db();
    CHECK(db);
    int rc = MERIDIAN_OK;
    char *v = NULL;
    for (int i = 0; i < 40 && rc != MERIDIAN_STALE; i++) {
        free(v);
        v = ro_get(db, MERIDIAN_AT_TIMESTAMP, horizon_probe, "ro/k", &rc, NULL);
        /* Until collected, the version of then. */
        CHECKF(rc == MERIDIAN_STALE || (rc == MERIDIAN_OK && v && strcmp(v, "v1") == 0),
               "read at an old timestamp: %s %s", meridian_errstr(rc), v ? v : "");
        if (rc != MERIDIAN_STALE)
            sleep_ms(250);
    }
    free(v);
    CHECK_EQ(rc, MERIDIAN_STALE);
    meridian_txn *t;
    CHECK_EQ(meridian_begin_ro(db, MERIDIAN_AT_TIMESTAMP, horizon_probe, &t), MERIDIAN_OK);
    void *val;
    size_t vlen;
    CHECK_EQ(meridian_get(t, "ro/k", 4, &val, &vlen), MERIDIAN_STALE);
    bool says = strstr(meridian_errmsg(db), "horizon") != NULL;
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_OK);
    CHECK_STR(meridian_errmsg(db), "");
    CHECKF(says, "no reason given for a stale read");
    meridian_close(db);
}

TEST(wound_wait_aborts_younger)
{
    CHECK(ensure_cluster());
    meridian *db = connect_db();
    CHECK(db);
    CHECK_EQ(put1(db, "ww/k", "0", NULL), MERIDIAN_OK);
    meridian_txn *old, *young;
    CHECK_EQ(meridian_begin(db, &old), MERIDIAN_OK);
    sleep_ms(2);
    CHECK_EQ(meridian_begin(db, &young), MERIDIAN_OK);
    int rc;
    char *v = get_str(young, "ww/k", &rc); /* a shared lock */
    CHECK_EQ(rc, MERIDIAN_OK);
    free(v);
    /* The older writer wounds the younger reader instead of waiting. */
    CHECK_EQ(meridian_put(old, "ww/k", 4, "old", 3), MERIDIAN_OK);
    CHECK_EQ(meridian_commit(old, NULL), MERIDIAN_OK);
    /* Wounded while it waited for nothing there: the group told its client at once
     * (TxnNotice, ahead of old's commit answer on the same connection), so its next
     * operation fails, and so does its commit. */
    CHECK_EQ(meridian_put(young, "ww/k", 4, "young", 5), MERIDIAN_ABORTED);
    CHECK(strstr(meridian_errmsg(db), "wounded"));
    CHECK_EQ(meridian_commit(young, NULL), MERIDIAN_ABORTED);
    CHECK(strlen(meridian_errmsg(db)) > 0);
    char *now = ro_get(db, MERIDIAN_STRONG, 0, "ww/k", &rc, NULL);
    CHECK_STR(now, "old");
    free(now);
    /* A wounded transaction's next read fails too, and the transaction with it. */
    CHECK_EQ(meridian_begin(db, &old), MERIDIAN_OK);
    sleep_ms(2);
    CHECK_EQ(meridian_begin(db, &young), MERIDIAN_OK);
    v = get_str(young, "ww/k", &rc);
    free(v);
    CHECK_EQ(meridian_put(old, "ww/k", 4, "old2", 4), MERIDIAN_OK);
    CHECK_EQ(meridian_commit(old, NULL), MERIDIAN_OK);
    CHECK(get_str(young, "ww/other", &rc) == NULL);
    CHECK_EQ(rc, MERIDIAN_ABORTED);
    CHECK_EQ(meridian_put(young, "ww/x", 4, "1", 1), MERIDIAN_ABORTED);
    meridian_rollback(young);
    meridian_close(db);
}

typedef struct parked_read {
    meridian *db;
    int first_rc, rc;    /* of its read of "nw/a" (group 3), then of "zw/b" (group 4) */
    int64_t answered_at; /* monotonic ns the second read returned */
    int64_t age;
    char msg[300];
} parked_read;

/* T: reads nw/a for update, then zw/b for update, which waits behind V. */
static void *t_thread(void *arg)
{
    parked_read *p = arg;
    meridian_txn *t;
    void *v;
    size_t n;
    p->first_rc = meridian_begin_aged(p->db, p->age, &t);
    if (p->first_rc == MERIDIAN_OK)
        p->first_rc = meridian_get_for_update(t, "nw/a", 4, &v, &n);
    if (p->first_rc != MERIDIAN_OK && p->first_rc != MERIDIAN_NOTFOUND) {
        meridian_rollback(t);
        return NULL;
    }
    p->rc = meridian_get_for_update(t, "zw/b", 4, &v, &n);
    p->answered_at = mr_monotonic_ns();
    snprintf(p->msg, sizeof p->msg, "%s", meridian_errmsg(p->db));
    if (p->rc == MERIDIAN_OK)
        meridian_free(v);
    meridian_rollback(t);
    return NULL;
}

/* Spanner's prompt notification of the wounded (docs/goodput.md section 9): T holds nw/a
 * (group 3) and waits at group 4 for zw/b, which V holds; U, older than T, wants nw/a and
 * wounds T there. Group 3 tells T's client at once (TxnNotice), which aborts T at group 4:
 * its parked read is answered "aborted" while V still holds zw/b. Before, group 3 could not
 * reach T until its next request there: T waited for V, then took zw/b, and learned of the
 * wound only at its commit, after group 4 had prepared it. */
TEST(wounded_transaction_hears_at_once)
{
    CHECK(ensure_cluster());
    meridian *dv = connect_db(), *du = connect_db();
    int64_t now = mr_realtime_ns(); /* ages: V oldest, then U, then T */
    parked_read p = {.db = connect_db(), .age = now - MR_NS_PER_S};
    CHECK(dv && du && p.db);
    void *v;
    size_t n;
    meridian_txn *vt, *ut;
    CHECK_EQ(meridian_begin_aged(dv, now - 3 * MR_NS_PER_S, &vt), MERIDIAN_OK);
    int rc = meridian_get_for_update(vt, "zw/b", 4, &v, &n);
    CHECK(rc == MERIDIAN_OK || rc == MERIDIAN_NOTFOUND);
    if (rc == MERIDIAN_OK)
        meridian_free(v);
    pthread_t th;
    pthread_create(&th, NULL, t_thread, &p);
    sleep_ms(500); /* T holds nw/a and waits for zw/b */
    CHECK_EQ(meridian_begin_aged(du, now - 2 * MR_NS_PER_S, &ut), MERIDIAN_OK);
    rc = meridian_get_for_update(ut, "nw/a", 4, &v, &n);
    CHECKF(rc == MERIDIAN_OK || rc == MERIDIAN_NOTFOUND, "U's read: %s", meridian_errmsg(du));
    if (rc == MERIDIAN_OK)
        meridian_free(v);
    int64_t wounded_at = mr_monotonic_ns();
    /* V holds zw/b for up to 3 s more, unless T's read is answered first. */
    for (int i = 0; i < 300 && !__atomic_load_n(&p.answered_at, __ATOMIC_ACQUIRE); i++)
        sleep_ms(10);
    int64_t v_done = mr_monotonic_ns();
    meridian_rollback(vt);
    pthread_join(th, NULL);
    meridian_rollback(ut);
    CHECKF(p.first_rc == MERIDIAN_OK || p.first_rc == MERIDIAN_NOTFOUND, "T's first read: %s",
           meridian_errstr(p.first_rc));
    printf("  T's parked read: %s after %lld ms (%s)\n", meridian_errstr(p.rc),
           (long long)((p.answered_at - wounded_at) / MR_NS_PER_MS), p.msg);
    CHECKF(p.rc == MERIDIAN_ABORTED, "T's parked read: %s (%s)", meridian_errstr(p.rc), p.msg);
    CHECKF(p.answered_at < v_done, "T's read was answered only after V let zw/b go");
    CHECKF(strstr(p.msg, "wounded"), "T's error does not say it was wounded: %s", p.msg);
    meridian_close(dv);
    meridian_close(du);
    meridian_close(p.db);
}

typedef struct wounded_once {
    meridian *db;
    meridian_txn *older;
    int calls;
} wounded_once;

/* Reads a counter and writes it back + 1; on the first call an older
 * transaction (begun before meridian_run) overwrites it meanwhile. */
static int incr_wounded(meridian_txn *t, void *arg)
{
    wounded_once *w = arg;
    w->calls++;
    int rc;
    char *v = get_str(t, "run/counter", &rc);
    if (!v)
        return rc;
    long n = atol(v);
    free(v);
    if (w->older) {
        meridian_put(w->older, "run/counter", 11, "100", 3);
        int crc = meridian_commit(w->older, NULL);
        w->older = NULL;
        if (crc != MERIDIAN_OK)
            return MERIDIAN_ERROR;
    }
    char nv[32];
    snprintf(nv, sizeof nv, "%ld", n + 1);
    return meridian_put(t, "run/counter", 11, nv, strlen(nv));
}

TEST(run_retries_wounded)
{
    CHECK(ensure_cluster());
    meridian *db = connect_db();
    CHECK(db);
    CHECK_EQ(put1(db, "run/counter", "1", NULL), MERIDIAN_OK);
    wounded_once w = {.db = db};
    CHECK_EQ(meridian_begin(db, &w.older), MERIDIAN_OK);
    sleep_ms(2);
    int64_t ts = 0;
    CHECK_EQ(meridian_run(db, 20000, incr_wounded, &w, &ts), MERIDIAN_OK);
    CHECKF(w.calls == 2, "callback ran %d times", w.calls);
    CHECK(ts > 0);
    int rc;
    char *v = ro_get(db, MERIDIAN_STRONG, 0, "run/counter", &rc, NULL);
    CHECK_STR(v, "101"); /* the retry read the older transaction's 100 */
    free(v);
    meridian_close(db);
}

static int incr(meridian_txn *t, void *arg)
{
    (void)arg;
    int rc;
    char *v = get_str(t, "failover/n", &rc);
    long n = 0;
    if (v)
        n = atol(v);
    else if (rc != MERIDIAN_NOTFOUND)
        return rc;
    free(v);
    char nv[32];
    snprintf(nv, sizeof nv, "%ld", n + 1);
    return meridian_put(t, "failover/n", 10, nv, strlen(nv));
}

TEST(leader_killed_under_load)
{
    CHECK(ensure_cluster());
    meridian *db = connect_all();
    CHECK(db);
    int ok = 0, unknown = 0, other = 0, victim = -1;
    int64_t t0 = mr_monotonic_ns();
    for (int i = 0; i < 40; i++) {
        if (i == 10) {
            victim = tc_find_leader(2, -1);
            if (victim >= 0)
                tc_kill(victim);
        }
        int rc = meridian_run(db, 30000, incr, NULL, NULL);
        ok += rc == MERIDIAN_OK;
        unknown += rc == MERIDIAN_UNKNOWN;
        if (rc != MERIDIAN_OK && rc != MERIDIAN_UNKNOWN) {
            other++;
            fprintf(stderr, "  run %d: %s: %s\n", i, meridian_errstr(rc), meridian_errmsg(db));
        }
    }
    double secs = (double)(mr_monotonic_ns() - t0) / 1e9;
    printf("  40 increments with the leader (node %d) killed after 10: %d ok, %d unknown, "
           "%.2f s\n",
           victim, ok, unknown, secs);
    CHECK(victim >= 0);
    CHECK_EQ(other, 0);
    int rc;
    char *v = ro_get(db, MERIDIAN_STRONG, 0, "failover/n", &rc, NULL);
    CHECK(v);
    long n = atol(v);
    free(v);
    /* Every acknowledged increment is there; unknown ones may or may not be. */
    CHECKF(n >= ok && n <= ok + unknown, "counter %ld after %d ok and %d unknown", n, ok, unknown);
    tc_start(victim);
    meridian_close(db);
}

TEST(bank_example)
{
    CHECK(ensure_cluster());
    char *out = NULL;
    char *help[] = {MERIDIAN_BANK_BIN, "--help", NULL};
    CHECK_EQ(proc_run(help, 10000, &out, NULL), 0);
    CHECK(out && strstr(out, "usage: bank"));
    free(out);
    out = NULL;
    char *bad[] = {MERIDIAN_BANK_BIN, "--accounts", "1", NULL};
    CHECK_EQ(proc_run(bad, 10000, NULL, NULL), 2);
    char all[512];
    snprintf(all, sizeof all, "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", tc.ports[0], tc.ports[1],
             tc.ports[2]);
    char *argv[] = {
        MERIDIAN_BANK_BIN, "--addrs", all,         "--certs", tc.certs, "--accounts", "6",
        "--transfers",     "25",      "--threads", "3",       NULL};
    int64_t t0 = mr_monotonic_ns();
    int st = proc_run(argv, 120000, &out, NULL);
    double secs = (double)(mr_monotonic_ns() - t0) / 1e9;
    printf("%s  (bank: 75 transfers on 3 threads in %.2f s)\n", out ? out : "", secs);
    bool conserved = out && strstr(out, "ok: total conserved");
    free(out);
    CHECK_EQ(st, 0);
    CHECK(conserved);
}

static int mg_init(meridian_txn *t, void *arg);
static int mg_move(meridian_txn *t, void *arg);

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Figures, not a benchmark (sanitized build, shared machine): one-key
 * read-modify-write transactions and strong one-key reads through the
 * library. Asserts only that they work and are not absurdly slow. */
TEST(latency_figures)
{
    CHECK(ensure_cluster());
    meridian *db = connect_all();
    CHECK(db);
    enum { N = 100 };
    int64_t rw[N], ro[N];
    for (int i = 0; i < N; i++) {
        int64_t t0 = mr_monotonic_ns();
        int rc = meridian_run(db, 10000, incr, NULL, NULL);
        rw[i] = mr_monotonic_ns() - t0;
        CHECK_EQ(rc, MERIDIAN_OK);
        t0 = mr_monotonic_ns();
        char *v = ro_get(db, MERIDIAN_STRONG, 0, "failover/n", &rc, NULL);
        ro[i] = mr_monotonic_ns() - t0;
        free(v);
        CHECK_EQ(rc, MERIDIAN_OK);
    }
    /* Three groups: two-phase commit (reads at three leaders, then the
     * commit to all three at once). */
    enum { M = 50 };
    int64_t mg[M];
    CHECK_EQ(meridian_run(db, 10000, mg_init, NULL, NULL), MERIDIAN_OK);
    for (int i = 0; i < M; i++) {
        long sum;
        int64_t t0 = mr_monotonic_ns();
        int rc = meridian_run(db, 10000, mg_move, &sum, NULL);
        mg[i] = mr_monotonic_ns() - t0;
        CHECK_EQ(rc, MERIDIAN_OK);
    }
    qsort(mg, M, sizeof mg[0], cmp_i64);
    printf("  three-group read-modify-write txn (2PC): p50 %.2f ms, p99 %.2f ms\n",
           (double)mg[M / 2] / 1e6, (double)mg[M * 99 / 100] / 1e6);
    qsort(rw, N, sizeof rw[0], cmp_i64);
    qsort(ro, N, sizeof ro[0], cmp_i64);
    printf("  read-modify-write txn: p50 %.2f ms, p99 %.2f ms; strong read: p50 %.2f ms, p99 "
           "%.2f ms\n",
           (double)rw[N / 2] / 1e6, (double)rw[N * 99 / 100] / 1e6, (double)ro[N / 2] / 1e6,
           (double)ro[N * 99 / 100] / 1e6);
    CHECK(rw[N / 2] < MR_NS_PER_S);
    meridian_close(db);
}

/* Reads a, k and z (one key per group), moves one unit from the first to
 * the others. */
static const char *mg_keys[3] = {"a-mg", "k-mg", "z-mg"};

static int mg_init(meridian_txn *t, void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++) {
        int rc = meridian_put(t, mg_keys[i], 4, "10", 2);
        if (rc != MERIDIAN_OK)
            return rc;
    }
    return MERIDIAN_OK;
}

static int mg_move(meridian_txn *t, void *arg)
{
    long *sum = arg;
    long v[3];
    *sum = 0;
    for (int i = 0; i < 3; i++) {
        int rc;
        char *s = get_str(t, mg_keys[i], &rc);
        if (!s)
            return rc;
        v[i] = atol(s);
        *sum += v[i];
        free(s);
    }
    v[0] -= 2;
    v[1] += 1;
    v[2] += 1;
    for (int i = 0; i < 3; i++) {
        char s[32];
        snprintf(s, sizeof s, "%ld", v[i]);
        int rc = meridian_put(t, mg_keys[i], 4, s, strlen(s));
        if (rc != MERIDIAN_OK)
            return rc;
    }
    return MERIDIAN_OK;
}

typedef struct mg_sum {
    long sum;
    int n;
} mg_sum;

static int mg_row(void *arg, const void *k, size_t kl, const void *v, size_t vl)
{
    mg_sum *m = arg;
    if (kl == 4 && !memcmp((const char *)k + 1, "-mg", 3)) {
        char s[32];
        snprintf(s, sizeof s, "%.*s", (int)vl, (const char *)v);
        m->sum += atol(s);
        m->n++;
    }
    return 0;
}

TEST(multi_group_transactions)
{
    CHECK(ensure_cluster());
    meridian *db = connect_db();
    CHECK(db);
    int64_t ts0 = 0;
    CHECK_EQ(meridian_run(db, 20000, mg_init, NULL, &ts0), MERIDIAN_OK);
    CHECKF(ts0 > 0 && ts0 < mr_realtime_ns(), "two-phase commit ts %lld", (long long)ts0);
    long sum = 0;
    int64_t ts1 = 0;
    for (int i = 0; i < 5; i++)
        CHECK_EQ(meridian_run(db, 20000, mg_move, &sum, &ts1), MERIDIAN_OK);
    CHECK_EQ(sum, 30);
    CHECK(ts1 > ts0);
    /* One strong snapshot over the three groups: the last transfer whole. */
    meridian_txn *t;
    CHECK_EQ(meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t), MERIDIAN_OK);
    mg_sum m = {0};
    CHECK_EQ(meridian_scan(t, NULL, 0, NULL, 0, 0, mg_row, &m), MERIDIAN_OK);
    int64_t at = meridian_read_ts(t);
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_OK);
    CHECK_EQ(m.n, 3);
    CHECK_EQ(m.sum, 30);
    CHECK(at >= ts1);
    int rc;
    char *a = ro_get(db, MERIDIAN_STRONG, 0, "a-mg", &rc, NULL);
    CHECK_STR(a, "0"); /* 10 - 5 x 2 */
    free(a);
    /* The snapshot just before the last transfer: a whole earlier state. */
    CHECK_EQ(meridian_begin_ro(db, MERIDIAN_AT_TIMESTAMP, ts1 - 1, &t), MERIDIAN_OK);
    m = (mg_sum){0};
    CHECK_EQ(meridian_scan(t, NULL, 0, NULL, 0, 0, mg_row, &m), MERIDIAN_OK);
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_OK);
    CHECK_EQ(m.sum, 30);
    char *z = ro_get(db, MERIDIAN_AT_TIMESTAMP, ts1 - 1, "z-mg", &rc, NULL);
    CHECK_STR(z, "14");
    free(z);
    /* Wound-wait across groups: an older writer of z wounds a younger
     * reader of a and z; the younger cannot commit its two-group write. */
    meridian_txn *old, *young;
    CHECK_EQ(meridian_begin(db, &old), MERIDIAN_OK);
    sleep_ms(2);
    CHECK_EQ(meridian_begin(db, &young), MERIDIAN_OK);
    char *s1 = get_str(young, "a-mg", &rc);
    char *s2 = get_str(young, "z-mg", &rc);
    free(s1);
    free(s2);
    CHECK_EQ(rc, MERIDIAN_OK);
    CHECK_EQ(meridian_put(old, "z-mg", 4, "15", 2), MERIDIAN_OK);
    CHECK_EQ(meridian_put(old, "k-mg", 4, "14", 2), MERIDIAN_OK);
    CHECK_EQ(meridian_put(old, "a-mg", 4, "1", 1), MERIDIAN_OK);
    CHECK_EQ(meridian_commit(old, NULL), MERIDIAN_OK);
    /* The groups that wounded it said so at once (TxnNotice, on the handle's connections,
     * ahead of old's commit answer): its next operation fails, and its commit. */
    CHECK_EQ(meridian_put(young, "a-mg", 4, "999", 3), MERIDIAN_ABORTED);
    CHECK_EQ(meridian_commit(young, NULL), MERIDIAN_ABORTED);
    CHECK_EQ(meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t), MERIDIAN_OK);
    m = (mg_sum){0};
    CHECK_EQ(meridian_scan(t, NULL, 0, NULL, 0, 0, mg_row, &m), MERIDIAN_OK);
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_OK);
    CHECK_EQ(m.sum, 30);
    meridian_close(db);
}

/* Puts k1=v (and k2=v, when not NULL: another group, so a two-phase commit) in one
 * transaction with a commit deadline. */
static int put_before(meridian *db, const char *k1, const char *k2, const char *v, int64_t before,
                      int64_t *ts)
{
    meridian_txn *t;
    int rc = meridian_begin(db, &t);
    if (rc != MERIDIAN_OK)
        return rc;
    rc = meridian_put(t, k1, strlen(k1), v, strlen(v));
    if (rc == MERIDIAN_OK && k2)
        rc = meridian_put(t, k2, strlen(k2), v, strlen(v));
    if (rc == MERIDIAN_OK)
        rc = meridian_set_commit_before(t, before);
    if (rc != MERIDIAN_OK) {
        meridian_rollback(t);
        return rc;
    }
    return meridian_commit(t, ts);
}

/* The sum over the nodes of a group's status counter txn.<name> (each node counts what it
 * did as the group's leader), and the largest clock bound among them; -1 if a node did not
 * answer. */
static long long txn_counter_sum(int gid, const char *name, int64_t *max_eps)
{
    long long sum = 0;
    for (int i = 0; i < NNODES; i++) {
        json_t *st = tc_status(i);
        json_t *g = st ? tc_group_of(st, gid) : NULL;
        if (!g) {
            json_decref(st);
            return -1;
        }
        sum += json_integer_value(json_object_get(json_object_get(g, "txn"), name));
        int64_t eps =
            json_integer_value(json_object_get(json_object_get(st, "clock"), "epsilon_ns"));
        if (max_eps && eps > *max_eps)
            *max_eps = eps;
        json_decref(st);
    }
    return sum;
}

typedef struct deadline_run {
    int calls;
    int64_t far;
} deadline_run;

/* The first attempt's deadline has passed (1 ns after the epoch); later ones set a far one. */
static int put_with_deadline(meridian_txn *t, void *arg)
{
    deadline_run *d = arg;
    int rc = meridian_set_commit_before(t, d->calls++ ? d->far : 1);
    return rc == MERIDIAN_OK ? meridian_put(t, "b-dl-run", 8, "1", 1) : rc;
}

/* Commit deadlines (meridian_set_commit_before, TxnRequest.commit_before) at one group and
 * over two (the coordinator decides), and the commit wait the nodes report. */
TEST(commit_deadline)
{
    CHECK(ensure_cluster());
    meridian *db = connect_db();
    CHECK(db);
    CHECK_EQ(meridian_commit_wait_ns(db), 0); /* no commit yet */
    int64_t eps = 0;
    long long aborts0 = txn_counter_sum(2, "deadline_aborts", &eps);
    CHECK(aborts0 >= 0);
    CHECKF(eps > 0, "the test cluster's clocks declare a bound (%lld ns)", (long long)eps);
    int64_t far = mr_realtime_ns() + 3600 * MR_NS_PER_S;

    /* One group (keys below "h": group 2), a deadline an hour ahead: committed below it; its
     * commit wait was spent (TT.after(ts) needs about 2 epsilon from the stamp). */
    int64_t ts = 0;
    CHECK_EQ(put_before(db, "b-dl", NULL, "1", far, &ts), MERIDIAN_OK);
    int64_t wait = meridian_commit_wait_ns(db);
    CHECKF(ts > 0 && ts < far && ts < mr_realtime_ns(), "ts %lld", (long long)ts);
    CHECKF(wait >= eps && wait < MR_NS_PER_S, "commit wait %lld ns, epsilon %lld ns",
           (long long)wait, (long long)eps);
    printf("  one group: commit wait %.2f ms (epsilon %.2f ms)\n", (double)wait / 1e6,
           (double)eps / 1e6);

    /* Deadlines already passed: 1 ns after the epoch, and the timestamp of the last commit
     * (a later one is stamped above it): aborted with the reason, nothing stored. */
    int64_t ts2 = -1;
    CHECK_EQ(put_before(db, "b-dl2", NULL, "1", 1, &ts2), MERIDIAN_ABORTED);
    CHECKF(strstr(meridian_errmsg(db), "commit deadline passed"), "%s", meridian_errmsg(db));
    CHECK_EQ(ts2, 0);
    CHECK_EQ(meridian_commit_wait_ns(db), wait); /* the last successful commit's */
    CHECK_EQ(put_before(db, "b-dl", NULL, "2", ts, &ts2), MERIDIAN_ABORTED);
    CHECKF(strstr(meridian_errmsg(db), "commit deadline passed"), "%s", meridian_errmsg(db));
    int rc;
    char *v = ro_get(db, MERIDIAN_STRONG, 0, "b-dl2", &rc, NULL);
    CHECK_STR(v, ""); /* not found */
    free(v);
    v = ro_get(db, MERIDIAN_STRONG, 0, "b-dl", &rc, NULL);
    CHECK_STR(v, "1");
    free(v);

    /* Two groups (2 and 4; group 2 coordinates): the same. */
    int64_t ts3 = 0;
    CHECK_EQ(put_before(db, "c-dl", "x-dl", "1", far, &ts3), MERIDIAN_OK);
    wait = meridian_commit_wait_ns(db);
    CHECKF(ts3 > ts && ts3 < far && ts3 < mr_realtime_ns(), "ts %lld", (long long)ts3);
    CHECKF(wait >= eps && wait < MR_NS_PER_S, "two-phase commit wait %lld ns", (long long)wait);
    printf("  two groups: commit wait %.2f ms\n", (double)wait / 1e6);
    CHECK_EQ(put_before(db, "d-dl", "y-dl", "1", 1, &ts2), MERIDIAN_ABORTED);
    CHECKF(strstr(meridian_errmsg(db), "commit deadline passed"), "%s", meridian_errmsg(db));
    CHECK_EQ(put_before(db, "c-dl", "x-dl", "2", ts3, &ts2), MERIDIAN_ABORTED);
    CHECKF(strstr(meridian_errmsg(db), "commit deadline passed"), "%s", meridian_errmsg(db));
    const char *keys[] = {"d-dl", "y-dl", "c-dl", "x-dl"};
    const char *want[] = {"", "", "1", "1"};
    for (int i = 0; i < 4; i++) {
        v = ro_get(db, MERIDIAN_STRONG, 0, keys[i], &rc, NULL);
        CHECKF(v && strcmp(v, want[i]) == 0, "%s = %s, want \"%s\"", keys[i], v ? v : "(error)",
               want[i]);
        free(v);
    }
    /* The participant (group 4) let go of y-dl: a new write of it commits. */
    CHECK_EQ(put_before(db, "y-dl", NULL, "3", far, &ts2), MERIDIAN_OK);

    /* Each abort was counted once, by group 2's leader (single-group commits and the
     * coordinator's decisions). */
    long long aborts1 = txn_counter_sum(2, "deadline_aborts", NULL);
    CHECKF(aborts1 - aborts0 == 4, "deadline_aborts %lld -> %lld", aborts0, aborts1);

    /* meridian_run retries it like any abort; the callback owns the deadline. */
    deadline_run d = {.far = far};
    CHECK_EQ(meridian_run(db, 20000, put_with_deadline, &d, &ts2), MERIDIAN_OK);
    CHECKF(d.calls == 2, "callback ran %d times", d.calls);

    /* A read-only commit waits for nothing; a deadline is refused for it, and a negative one. */
    meridian_txn *t;
    CHECK_EQ(meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t), MERIDIAN_OK);
    CHECK_EQ(meridian_set_commit_before(t, far), MERIDIAN_INVALID);
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_OK);
    CHECK_EQ(meridian_commit_wait_ns(db), 0);
    CHECK_EQ(meridian_begin(db, &t), MERIDIAN_OK);
    CHECK_EQ(meridian_set_commit_before(t, -5), MERIDIAN_INVALID);
    meridian_rollback(t);
    meridian_close(db);
}

/* A node that exited on its own (a crash), reaped; -1 if none. */
static int crashed_node(void)
{
    for (int i = 0; i < tc.n; i++) {
        int ws;
        if (tc.pids[i] > 0 && waitpid(tc.pids[i], &ws, WNOHANG) == tc.pids[i]) {
            tc.pids[i] = -1;
            keep_dir = true;
            return i;
        }
    }
    return -1;
}

/* The test: multi-group bank transfers conserve the total while the
 * coordinator group's leader is killed mid-commit; the library retries (or
 * resolves the outcome) and the example completes. */
TEST(bank_with_coordinator_killed)
{
    CHECK(ensure_cluster());
    char all[512], log[400];
    snprintf(all, sizeof all, "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", tc.ports[0], tc.ports[1],
             tc.ports[2]);
    snprintf(log, sizeof log, "%s/bank-kill.log", tc.dir);
    char *argv[] = {MERIDIAN_BANK_BIN,
                    "--addrs",
                    all,
                    "--certs",
                    tc.certs,
                    "--accounts",
                    "8",
                    "--transfers",
                    "60",
                    "--threads",
                    "3",
                    "--spread",
                    "--prefix",
                    "kill",
                    NULL};
    pid_t pid = proc_spawn(argv, log);
    CHECK(pid > 0);
    sleep_ms(1500);
    int victim = tc_find_leader(2, -1); /* the coordinator of most transfers */
    if (victim >= 0)
        tc_kill(victim);
    sleep_ms(3000);
    if (victim >= 0)
        tc_start(victim);
    int st = -1, crashed = -1;
    for (int i = 0; i < 1800 && crashed < 0; i++) {
        int ws;
        if (waitpid(pid, &ws, WNOHANG) == pid) {
            st = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
            break;
        }
        crashed = crashed_node();
        sleep_ms(100);
    }
    if (st == -1)
        proc_stop(pid, SIGKILL, 1000);
    char *out = NULL, *cat[] = {"cat", log, NULL};
    proc_run(cat, 5000, &out, NULL);
    printf("%s", out ? out : "");
    bool conserved = out && strstr(out, "ok: total conserved");
    free(out);
    CHECK(victim >= 0);
    /* Not the library's doing, but nothing can pass without a quorum. */
    CHECKF(crashed < 0, "node %d died during the run: see %s/n%d.log", crashed, tc.dir, crashed);
    CHECK_EQ(st, 0);
    CHECK(conserved);
}

TEST(teardown)
{
    stop_cluster();
}

TEST_MAIN(TEST_CASE(crud), TEST_CASE(binary_keys), TEST_CASE(read_your_writes),
          TEST_CASE(scan_pages), TEST_CASE(read_only_modes), TEST_CASE(strong_reads_at_any_replica),
          TEST_CASE(wound_wait_aborts_younger), TEST_CASE(wounded_transaction_hears_at_once),
          TEST_CASE(run_retries_wounded), TEST_CASE(multi_group_transactions),
          TEST_CASE(commit_deadline), TEST_CASE(bank_example),
          TEST_CASE(bank_with_coordinator_killed), TEST_CASE(leader_killed_under_load),
          TEST_CASE(below_the_horizon), TEST_CASE(latency_figures), TEST_CASE(teardown))
