/* The list-append checker on hand-made histories, one per anomaly it names (Elle's and
 * Adya's definitions), on valid histories with concurrency, info and fail, and on seeded random
 * histories from a real serial store plus mutations that must be caught. */
#include <stdlib.h>

#include "jepsen/elle.h"
#include "tests/jepsen/gen.h"
#include "tests/jepsen/hist_util.h"
#include "tests/test.h"

static jp_history h;
static jp_result r;

static void reset(void)
{
    jp_history_free(&h);
    jp_history_init(&h);
    jp_result_free(&r);
}

#define I(p, v)    CHECK(ev(&h, p, "invoke", "txn", NULL, v) == 0)
#define C(p, t, v) CHECK(ev(&h, p, t, "txn", NULL, v) == 0)
/* A transaction that runs alone: invoke, then its completion. */
#define T(p, inv, t, v)                                                                            \
    do {                                                                                           \
        I(p, inv);                                                                                 \
        C(p, t, v);                                                                                \
    } while (0)
#define A(k, v) "[\"append\",\"" k "\"," #v "]"
#define R(k, l) "[\"r\",\"" k "\"," l "]"

static int check(void)
{
    mr_err err;
    jp_result_free(&r);
    if (jp_check_list_append(&h, NULL, &r, &err) != MR_OK) {
        fprintf(stderr, "check failed: %s\n", mr_err_msg(&err));
        return -1;
    }
    return 0;
}

TEST(valid_serial)
{
    reset();
    T(0, "[" A("x", 1) "]", "ok", "[" A("x", 1) "]");
    T(1, "[" R("x", "null") "," A("x", 2) "," A("y", 1) "]", "ok",
      "[" R("x", "[1]") "," A("x", 2) "," A("y", 1) "]");
    T(0, "[" R("x", "null") "," R("y", "null") "]", "ok",
      "[" R("x", "[1,2]") "," R("y", "[1]") "]");
    CHECK(check() == 0);
    CHECK(names_are(&r, NULL));
    CHECK_EQ(r.ops_checked, 3);
    reset();
}

TEST(valid_concurrent_info_fail)
{
    reset();
    /* a read concurrent with an append may or may not see it */
    I(0, "[" A("x", 1) "]");
    I(1, "[" R("x", "null") "]");
    I(2, "[" R("x", "null") "]");
    C(1, "ok", "[" R("x", "[]") "]");
    C(2, "ok", "[" R("x", "[1]") "]");
    C(0, "ok", "[" A("x", 1) "]");
    /* an info append that happened (observed later), one that did not (never observed) */
    I(3, "[" A("x", 2) "]");
    C(3, "info", "[" A("x", 2) "]");
    I(4, "[" A("y", 1) "]");
    C(4, "info", "[" A("y", 1) "]");
    /* a failed append is never observed */
    T(5, "[" A("x", 3) "]", "fail", "[" A("x", 3) "]");
    /* an invoke that never completes (counts as info) */
    I(6, "[" A("z", 1) "]");
    T(7, "[" R("x", "null") "," R("y", "null") "," R("z", "null") "]", "ok",
      "[" R("x", "[1,2]") "," R("y", "[]") "," R("z", "[1]") "]");
    CHECK(check() == 0);
    CHECK(names_are(&r, NULL));
    reset();
}

TEST(g0)
{
    reset();
    /* two concurrent transactions write x and y in opposite orders (Adya's G0) */
    I(0, "[" A("x", 1) "," A("y", 1) "]");
    I(1, "[" A("x", 2) "," A("y", 2) "]");
    C(0, "ok", "[" A("x", 1) "," A("y", 1) "]");
    C(1, "ok", "[" A("x", 2) "," A("y", 2) "]");
    T(2, "[" R("x", "null") "," R("y", "null") "]", "ok",
      "[" R("x", "[1,2]") "," R("y", "[2,1]") "]");
    CHECK(check() == 0);
    CHECK(names_are(&r, "G0", NULL));
    size_t ops[2] = {2, 3};
    CHECK(anomaly_ops(&r, "G0", 2, ops));
    reset();
}

TEST(g0_realtime)
{
    reset();
    /* appends one after the other in real time, but the version order says 2 then 1 */
    T(0, "[" A("x", 1) "]", "ok", "[" A("x", 1) "]");
    T(1, "[" A("x", 2) "]", "ok", "[" A("x", 2) "]");
    T(2, "[" R("x", "null") "]", "ok", "[" R("x", "[2,1]") "]");
    CHECK(check() == 0);
    CHECK(names_are(&r, "G0-realtime", NULL));
    reset();
}

TEST(g1c)
{
    reset();
    /* each transaction reads the other's write: circular information flow */
    I(0, "[" A("x", 1) "," R("y", "null") "]");
    I(1, "[" A("y", 1) "," R("x", "null") "]");
    C(0, "ok", "[" A("x", 1) "," R("y", "[1]") "]");
    C(1, "ok", "[" A("y", 1) "," R("x", "[1]") "]");
    CHECK(check() == 0);
    CHECK(names_are(&r, "G1c", NULL));
    reset();
}

TEST(g_single)
{
    reset();
    /* read skew: T0 misses T1's x but sees its y */
    I(0, "[" R("x", "null") "," R("y", "null") "]");
    I(1, "[" A("x", 1) "," A("y", 1) "]");
    C(1, "ok", "[" A("x", 1) "," A("y", 1) "]");
    C(0, "ok", "[" R("x", "[]") "," R("y", "[1]") "]");
    T(2, "[" R("x", "null") "]", "ok", "[" R("x", "[1]") "]");
    CHECK(check() == 0);
    CHECK(names_are(&r, "G-single", NULL));
    reset();
}

TEST(g_nonadjacent)
{
    reset();
    /* T1 -rw-> T2 -wr-> T3 -rw-> T4 -wr-> T1: two anti-dependencies, never adjacent */
    I(1, "[" R("a", "null") "," R("d", "null") "]");
    I(2, "[" A("a", 1) "," A("b", 1) "]");
    I(3, "[" R("b", "null") "," R("c", "null") "]");
    I(4, "[" A("c", 1) "," A("d", 1) "]");
    C(2, "ok", "[" A("a", 1) "," A("b", 1) "]");
    C(4, "ok", "[" A("c", 1) "," A("d", 1) "]");
    C(1, "ok", "[" R("a", "[]") "," R("d", "[1]") "]");
    C(3, "ok", "[" R("b", "[1]") "," R("c", "[]") "]");
    T(5, "[" R("a", "null") "," R("c", "null") "]", "ok", "[" R("a", "[1]") "," R("c", "[1]") "]");
    CHECK(check() == 0);
    CHECK(names_are(&r, "G-nonadjacent", NULL));
    reset();
}

TEST(g2_item)
{
    reset();
    /* write skew: each reads both keys empty and appends to a different one */
    I(0, "[" R("x", "null") "," R("y", "null") "," A("x", 1) "]");
    I(1, "[" R("x", "null") "," R("y", "null") "," A("y", 1) "]");
    C(0, "ok", "[" R("x", "[]") "," R("y", "[]") "," A("x", 1) "]");
    C(1, "ok", "[" R("x", "[]") "," R("y", "[]") "," A("y", 1) "]");
    T(2, "[" R("x", "null") "," R("y", "null") "]", "ok", "[" R("x", "[1]") "," R("y", "[1]") "]");
    CHECK(check() == 0);
    CHECK(names_are(&r, "G2-item", NULL));
    reset();
}

TEST(g_single_realtime_stale_read)
{
    reset();
    /* the append completed before the read began, yet the read misses it */
    T(0, "[" A("x", 1) "]", "ok", "[" A("x", 1) "]");
    T(1, "[" R("x", "null") "]", "ok", "[" R("x", "[]") "]");
    T(2, "[" R("x", "null") "]", "ok", "[" R("x", "[1]") "]");
    CHECK(check() == 0);
    CHECK(names_are(&r, "G-single-realtime", NULL));
    size_t ops[2] = {1, 3};
    CHECK(anomaly_ops(&r, "G-single-realtime", 2, ops));
    reset();
}

TEST(g_single_process)
{
    reset();
    /* the same, within one process: it fails to read its own earlier write */
    T(0, "[" A("x", 1) "]", "ok", "[" A("x", 1) "]");
    T(0, "[" R("x", "null") "]", "ok", "[" R("x", "[]") "]");
    T(1, "[" R("x", "null") "]", "ok", "[" R("x", "[1]") "]");
    CHECK(check() == 0);
    CHECK(names_are(&r, "G-single-process", NULL));
    reset();
}

TEST(g0_process)
{
    reset();
    /* one process appends 2 then 1, yet the version order says 1 before 2 */
    T(0, "[" A("x", 2) "]", "ok", "[" A("x", 2) "]");
    T(0, "[" A("x", 1) "]", "ok", "[" A("x", 1) "]");
    T(1, "[" R("x", "null") "]", "ok", "[" R("x", "[1,2]") "]");
    CHECK(check() == 0);
    /* process order implies real-time order: the cycle is named by the more basic one */
    CHECK(names_are(&r, "G0-process", NULL));
    reset();
}

TEST(g1c_realtime_future_read)
{
    reset();
    /* a read sees an append that was invoked only after the read completed */
    T(0, "[" R("x", "null") "]", "ok", "[" R("x", "[1]") "]");
    T(1, "[" A("x", 1) "]", "ok", "[" A("x", 1) "]");
    CHECK(check() == 0);
    CHECK(names_are(&r, "G1c-realtime", NULL));
    size_t ops[2] = {1, 3};
    CHECK(anomaly_ops(&r, "G1c-realtime", 2, ops));
    reset();
    T(0, "[" R("x", "null") "]", "ok", "[" R("x", "[1]") "]");
    T(0, "[" A("x", 1) "]", "ok", "[" A("x", 1) "]");
    CHECK(check() == 0);
    CHECK(names_are(&r, "G1c-process", NULL));
    reset();
}

/* T1 -rw(a)-> T2 -(realtime or process)-> T3 -rw(c)-> T4 -wr(d)-> T1, where only T2 -> T3
 * is ordered in time; every other pair overlaps. */
static int nonadjacent_via_time(int same_process)
{
    int p3 = same_process ? 2 : 3;
    int ok = 1;
    ok &= ev(&h, 1, "invoke", "txn", NULL, "[" R("a", "null") "," R("d", "null") "]") == 0;
    ok &= ev(&h, 2, "invoke", "txn", NULL, "[" A("a", 1) "]") == 0;
    ok &= ev(&h, 4, "invoke", "txn", NULL, "[" A("c", 1) "," A("d", 1) "]") == 0;
    ok &= ev(&h, 2, "ok", "txn", NULL, "[" A("a", 1) "]") == 0;
    ok &= ev(&h, p3, "invoke", "txn", NULL, "[" R("c", "null") "]") == 0;
    ok &= ev(&h, 4, "ok", "txn", NULL, "[" A("c", 1) "," A("d", 1) "]") == 0;
    ok &= ev(&h, p3, "ok", "txn", NULL, "[" R("c", "[]") "]") == 0;
    ok &= ev(&h, 1, "ok", "txn", NULL, "[" R("a", "[]") "," R("d", "[1]") "]") == 0;
    ok &= ev(&h, 5, "invoke", "txn", NULL, "[" R("a", "null") "," R("c", "null") "]") == 0;
    ok &= ev(&h, 5, "ok", "txn", NULL, "[" R("a", "[1]") "," R("c", "[1]") "]") == 0;
    return ok ? 0 : -1;
}

TEST(g_nonadjacent_realtime_and_process)
{
    reset();
    CHECK(nonadjacent_via_time(0) == 0);
    CHECK(check() == 0);
    CHECK(names_are(&r, "G-nonadjacent-realtime", NULL));
    CHECK(strstr(r.anomalies[0].detail, "-realtime->"));
    reset();
    CHECK(nonadjacent_via_time(1) == 0);
    CHECK(check() == 0);
    CHECK(names_are(&r, "G-nonadjacent-process", NULL));
    reset();
}

/* T1 -rw(x)-> T2 -rw(y)-> T3 -(realtime or process)-> T1; T2 overlaps both. */
static int g2_via_time(int same_process)
{
    int p1 = same_process ? 3 : 1;
    int ok = 1;
    ok &= ev(&h, 2, "invoke", "txn", NULL, "[" R("y", "null") "," A("x", 1) "]") == 0;
    ok &= ev(&h, 3, "invoke", "txn", NULL, "[" A("y", 1) "]") == 0;
    ok &= ev(&h, 3, "ok", "txn", NULL, "[" A("y", 1) "]") == 0;
    ok &= ev(&h, p1, "invoke", "txn", NULL, "[" R("x", "null") "]") == 0;
    ok &= ev(&h, p1, "ok", "txn", NULL, "[" R("x", "[]") "]") == 0;
    ok &= ev(&h, 2, "ok", "txn", NULL, "[" R("y", "[]") "," A("x", 1) "]") == 0;
    ok &= ev(&h, 5, "invoke", "txn", NULL, "[" R("x", "null") "," R("y", "null") "]") == 0;
    ok &= ev(&h, 5, "ok", "txn", NULL, "[" R("x", "[1]") "," R("y", "[1]") "]") == 0;
    return ok ? 0 : -1;
}

TEST(g2_item_realtime_and_process)
{
    reset();
    CHECK(g2_via_time(0) == 0);
    CHECK(check() == 0);
    CHECK(names_are(&r, "G2-item-realtime", NULL));
    reset();
    CHECK(g2_via_time(1) == 0);
    CHECK(check() == 0);
    CHECK(names_are(&r, "G2-item-process", NULL));
    reset();
}

TEST(g2_item_plus_stale_read)
{
    reset();
    /* Write skew run one after the other: T1 starts after T0 ended, yet misses T0's append
     * to x, and T0 missed T1's append to y. One component, two named cycles. */
    T(0, "[" R("y", "null") "," A("x", 1) "]", "ok", "[" R("y", "[]") "," A("x", 1) "]");
    T(1, "[" R("x", "null") "," A("y", 1) "]", "ok", "[" R("x", "[]") "," A("y", 1) "]");
    T(2, "[" R("x", "null") "," R("y", "null") "]", "ok", "[" R("x", "[1]") "," R("y", "[1]") "]");
    CHECK(check() == 0);
    /* T1 -rw(x)-> T0 -rw(y)-> T1 is a data-only G2-item; the stale read of x after T0
     * completed is also a G-single-realtime. */
    CHECK(jp_result_count(&r, "G2-item") == 1);
    CHECK(jp_result_count(&r, "G-single-realtime") == 1);
    reset();
}

TEST(realtime_is_transitive_but_reduced)
{
    /* T0 ends before T1 begins, T1 ends before T2 begins: T2's stale read of T0's append is a
     * cycle only through the chain T0 -> T1 -> T2, since the reduction keeps no T0 -> T2 edge */
    reset();
    T(0, "[" A("x", 1) "]", "ok", "[" A("x", 1) "]");
    T(1, "[" A("y", 1) "]", "ok", "[" A("y", 1) "]");
    T(2, "[" R("x", "null") "]", "ok", "[" R("x", "[]") "]");
    T(3, "[" R("x", "null") "]", "ok", "[" R("x", "[1]") "]");
    CHECK(check() == 0);
    CHECK(names_are(&r, "G-single-realtime", NULL));
    size_t ops[3] = {1, 3, 5};
    CHECK(anomaly_ops(&r, "G-single-realtime", 3, ops));
    /* a serial history of 2000 transactions has about one real-time edge per transaction, not
     * one per pair (two million) */
    reset();
    for (int i = 0; i < 2000; i++) {
        char v[64];
        snprintf(v, sizeof v, "[[\"append\",\"k%d\",%d]]", i % 7, i);
        I(i % 3, v);
        C(i % 3, "ok", v);
    }
    CHECK(check() == 0);
    CHECK_EQ(r.valid, JP_VALID);
    const char *e = r.notes ? strstr(r.notes, "keys, ") : NULL;
    CHECK(e);
    long edges = strtol(e + 6, NULL, 10);
    /* (no reads: only process edges, to each process's next, and real-time edges) */
    CHECKF(edges < 3 * 2000, "%ld edges for 2000 serial transactions", edges);
    reset();
}

TEST(unobserved_appends_follow_everything_observed)
{
    /* nobody else ever reads x: the append still precedes the later read of [] in real time,
     * and, never observed, it must come after every observed element */
    reset();
    T(0, "[" A("x", 1) "]", "ok", "[" A("x", 1) "]");
    T(1, "[" R("x", "null") "]", "ok", "[" R("x", "[]") "]");
    CHECK(check() == 0);
    CHECK(names_are(&r, "G-single-realtime", NULL));
    /* the same order with the append concurrent to the read is fine, as are unobserved info
     * and ok appends racing with the last reads */
    reset();
    I(0, "[" A("x", 1) "]");
    T(1, "[" R("x", "null") "]", "ok", "[" R("x", "[]") "]");
    C(0, "ok", "[" A("x", 1) "]");
    T(2, "[" R("x", "null") "]", "ok", "[" R("x", "[1]") "]");
    I(3, "[" A("x", 2) "]");
    I(4, "[" A("x", 3) "]");
    T(5, "[" R("x", "null") "]", "ok", "[" R("x", "[1]") "]");
    C(3, "info", "[" A("x", 2) "]");
    C(4, "ok", "[" A("x", 3) "]");
    CHECK(check() == 0);
    CHECK(names_are(&r, NULL));
    /* but an ok append that finished before a read began, unobserved by it, is stale */
    T(6, "[" R("x", "null") "]", "ok", "[" R("x", "[1]") "]");
    CHECK(check() == 0);
    CHECK(names_are(&r, "G-single-realtime", NULL));
    reset();
}

TEST(future_read)
{
    reset();
    T(0, "[" R("x", "null") "," A("x", 1) "]", "ok", "[" R("x", "[1]") "," A("x", 1) "]");
    CHECK(check() == 0);
    CHECK(names_are(&r, "future-read", NULL));
    reset();
}

TEST(elle_paper_example)
{
    /* The example history of the Elle paper (Kingsbury & Alvaro 2020, also
     * histories/paper-example.edn in jepsen-io/elle), with the four transactions concurrent:
     * T2 -wr(255)-> T3 -ww(256)-> T4 -rw(255)-> T2, a G-single. T4's append of 3 to 256 is
     * read by nobody, so it follows every observed element. */
    reset();
    static const char *txns[4][2] = {
        {"[[\"append\",253,1],[\"append\",253,3],[\"append\",253,4],[\"append\",255,2],"
         "[\"append\",255,3],[\"append\",255,4],[\"append\",255,5],[\"append\",256,1],"
         "[\"append\",256,2]]",
         NULL},
        {"[[\"append\",255,8],[\"r\",253,null]]", "[[\"append\",255,8],[\"r\",253,[1,3,4]]]"},
        {"[[\"append\",256,4],[\"r\",255,null],[\"r\",256,null],[\"r\",253,null]]",
         "[[\"append\",256,4],[\"r\",255,[2,3,4,5,8]],[\"r\",256,[1,2,4]],[\"r\",253,[1,3,4]]]"},
        {"[[\"append\",250,10],[\"r\",253,null],[\"r\",255,null],[\"append\",256,3]]",
         "[[\"append\",250,10],[\"r\",253,[1,3,4]],[\"r\",255,[2,3,4,5]],[\"append\",256,3]]"},
    };
    for (int i = 0; i < 4; i++)
        I(i, txns[i][0]);
    for (int i = 0; i < 4; i++)
        C(i, "ok", txns[i][1] ? txns[i][1] : txns[i][0]);
    CHECK(check() == 0);
    CHECK(names_are(&r, "G-single", NULL));
    size_t ops[3] = {5, 6, 7};
    CHECK(anomaly_ops(&r, "G-single", 3, ops));
    reset();
}

/* ---- soundness against an exhaustive search on tiny histories ---- */

#define BK 2 /* keys */
#define BT 5 /* transactions at most */
#define BM 3 /* micro-ops per transaction at most */

typedef struct bmop {
    int append, key, v;
    int nread, read[16]; /* the result (ok reads), -1 = unknown */
} bmop;

typedef struct btxn {
    bmop m[BM];
    int nm;
    char out; /* 'o', 'i', 'f' */
    int call, ret;
} btxn;

typedef struct bstate {
    int len[BK], l[BK][24];
} bstate;

/* Applies t to st; with `check`, its reads must match what it reported. */
static int bapply(const btxn *t, bstate *st, int check)
{
    for (int j = 0; j < t->nm; j++) {
        const bmop *m = &t->m[j];
        if (m->append) {
            st->l[m->key][st->len[m->key]++] = m->v;
        } else if (check && m->nread >= 0) {
            if (m->nread != st->len[m->key] ||
                memcmp(m->read, st->l[m->key], (size_t)m->nread * sizeof(int)) != 0)
                return 0;
        }
    }
    return 1;
}

/* Is there a serial order of all ok transactions and any of the info ones, respecting real
 * time, in which every ok read sees exactly the state? (Strict serializability.) */
static int bbrute(const btxn *t, int n, unsigned placed, bstate st, int left)
{
    if (left == 0)
        return 1;
    for (int i = 0; i < n; i++) {
        if (t[i].out == 'f' || (placed >> i & 1))
            continue;
        int blocked = 0;
        for (int j = 0; j < n; j++)
            blocked |= t[j].out == 'o' && !(placed >> j & 1) && t[j].ret < t[i].call;
        if (blocked)
            continue;
        bstate ns = st;
        if (!bapply(&t[i], &ns, t[i].out == 'o'))
            continue;
        if (bbrute(t, n, placed | 1u << i, ns, left - (t[i].out == 'o')))
            return 1;
    }
    return 0;
}

static void bmop_json(const bmop *m, int with_read, char *buf, size_t len)
{
    static const char *keys[BK] = {"x", "y"};
    if (m->append) {
        snprintf(buf, len, "[\"append\",\"%s\",%d]", keys[m->key], m->v);
        return;
    }
    if (!with_read || m->nread < 0) {
        snprintf(buf, len, "[\"r\",\"%s\",null]", keys[m->key]);
        return;
    }
    int o = snprintf(buf, len, "[\"r\",\"%s\",[", keys[m->key]);
    for (int i = 0; i < m->nread; i++)
        o += snprintf(buf + o, len - (size_t)o, "%s%d", i ? "," : "", m->read[i]);
    snprintf(buf + o, len - (size_t)o, "]]");
}

static void btxn_json(const btxn *t, int with_reads, char *buf, size_t len)
{
    int o = snprintf(buf, len, "[");
    for (int j = 0; j < t->nm; j++) {
        char mb[160];
        bmop_json(&t->m[j], with_reads, mb, sizeof mb);
        o += snprintf(buf + o, len - (size_t)o, "%s%s", j ? "," : "", mb);
    }
    snprintf(buf + o, len - (size_t)o, "]");
}

TEST(sound_against_exhaustive_search)
{
    /* Random tiny histories (up to 5 transactions over 2 keys, random overlaps, ok/info/fail),
     * read results from a random serial execution, sometimes corrupted. Whenever the checker
     * says invalid, no strictly serializable explanation may exist; and it should catch most
     * of the histories that have none. */
    uint64_t s = getenv("JP_SEED") ? strtoull(getenv("JP_SEED"), NULL, 10) : 77;
    int brute_invalid = 0, caught = 0, valid = 0;
    for (int round = 0; round < 3000; round++) {
        reset();
        int n = 2 + (int)(gen_rand(&s) % (BT - 1)), next = 1;
        btxn t[BT];
        memset(t, 0, sizeof t);
        for (int i = 0; i < n; i++) {
            t[i].nm = 1 + (int)(gen_rand(&s) % BM);
            int o = (int)(gen_rand(&s) % 20);
            t[i].out = o < 14 ? 'o' : o < 17 ? 'i' : 'f';
            for (int j = 0; j < t[i].nm; j++) {
                bmop *m = &t[i].m[j];
                m->append = (int)(gen_rand(&s) % 2);
                m->key = (int)(gen_rand(&s) % BK);
                m->v = next++;
                m->nread = -1;
            }
        }
        /* read results: a random serial order of the ok, some info and rarely a failed txn */
        int perm[BT];
        for (int i = 0; i < n; i++)
            perm[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(gen_rand(&s) % (uint64_t)(i + 1)), x = perm[i];
            perm[i] = perm[j];
            perm[j] = x;
        }
        bstate st;
        memset(&st, 0, sizeof st);
        for (int p = 0; p < n; p++) {
            btxn *x = &t[perm[p]];
            int run = x->out == 'o' || (x->out == 'i' && gen_rand(&s) % 2) ||
                      (x->out == 'f' && gen_rand(&s) % 8 == 0);
            if (!run)
                continue;
            for (int j = 0; j < x->nm; j++) {
                bmop *m = &x->m[j];
                if (m->append) {
                    st.l[m->key][st.len[m->key]++] = m->v;
                } else if (x->out == 'o') {
                    m->nread = st.len[m->key];
                    memcpy(m->read, st.l[m->key], (size_t)m->nread * sizeof(int));
                }
            }
        }
        if (gen_rand(&s) % 4 == 0) { /* corrupt one ok read */
            int i = (int)(gen_rand(&s) % (uint64_t)n), j = (int)(gen_rand(&s) % (uint64_t)t[i].nm);
            bmop *m = &t[i].m[j];
            if (m->nread > 0 && gen_rand(&s) % 2)
                m->nread--;
            else if (m->nread >= 0 && m->nread < 15)
                m->read[m->nread++] = 1 + (int)(gen_rand(&s) % (uint64_t)next);
        }
        /* a random interleaving of calls and returns */
        int state[BT] = {0}, pos = 0;
        for (int done = 0; done < n;) {
            int i = (int)(gen_rand(&s) % (uint64_t)n);
            if (state[i] == 2)
                continue;
            char v[512];
            if (state[i] == 0) {
                btxn_json(&t[i], 0, v, sizeof v);
                CHECK(ev(&h, i, "invoke", "txn", NULL, v) == 0);
                t[i].call = pos++;
            } else {
                btxn_json(&t[i], t[i].out == 'o', v, sizeof v);
                CHECK(ev(&h, i,
                         t[i].out == 'o'   ? "ok"
                         : t[i].out == 'i' ? "info"
                                           : "fail",
                         "txn", NULL, v) == 0);
                t[i].ret = t[i].out == 'i' ? INT32_MAX : pos;
                pos++;
                done++;
            }
            state[i]++;
        }
        int left = 0;
        for (int i = 0; i < n; i++)
            left += t[i].out == 'o';
        bstate empty;
        memset(&empty, 0, sizeof empty);
        int expect = bbrute(t, n, 0, empty, left);
        CHECK(check() == 0);
        if (left == 0)
            continue;
        if (r.valid == JP_INVALID && expect) {
            char *buf = NULL;
            size_t len = 0;
            FILE *f = open_memstream(&buf, &len);
            mr_err err;
            jp_history_write_jsonl(&h, f, &err);
            fclose(f);
            fprintf(stderr, "round %d: strictly serializable, yet judged invalid:\n%s", round, buf);
            jp_result_print(&r, stderr, 5);
            free(buf);
            CHECK(0);
        }
        valid += expect;
        brute_invalid += !expect;
        caught += !expect && r.valid == JP_INVALID;
    }
    fprintf(stderr, "  %d strictly serializable, %d not, of which the checker caught %d\n", valid,
            brute_invalid, caught);
    CHECKF(valid > 300 && brute_invalid > 300, "valid %d invalid %d", valid, brute_invalid);
    /* Elle is not complete in general, but on histories this small it has missed nothing */
    CHECK_EQ(caught, brute_invalid);
    reset();
}

TEST(big_component_ring)
{
    /* 100 concurrent transactions, T_i appending to keys k_i and k_(i+1): a reader sees each
     * key written by T_(i-1) before T_i, a single ww ring through all of them (a component
     * big enough for the per-class subgraph filter) */
    reset();
    enum { N = 100 };
    char v[N][96];
    for (int i = 0; i < N; i++) {
        snprintf(v[i], sizeof v[i], "[[\"append\",\"k%d\",1],[\"append\",\"k%d\",2]]", i,
                 (i + 1) % N);
        I(i, v[i]);
    }
    for (int i = 0; i < N; i++)
        C(i, "ok", v[i]);
    char *rd = NULL, *rr = NULL;
    size_t l1 = 0, l2 = 0;
    FILE *a = open_memstream(&rd, &l1), *b = open_memstream(&rr, &l2);
    for (int i = 0; i < N; i++) {
        fprintf(a, "%s[\"r\",\"k%d\",null]", i ? "," : "[", i);
        fprintf(b, "%s[\"r\",\"k%d\",[2,1]]", i ? "," : "[", i);
    }
    fputc(']', a);
    fputc(']', b);
    fclose(a);
    fclose(b);
    int ok = ev(&h, N, "invoke", "txn", NULL, rd) == 0 && ev(&h, N, "ok", "txn", NULL, rr) == 0;
    free(rd);
    free(rr);
    CHECK(ok);
    CHECK(check() == 0);
    CHECK(names_are(&r, "G0", NULL));
    CHECK_EQ(r.anomalies[0].nops, N);
    reset();
}

TEST(g1a_aborted_read)
{
    reset();
    T(0, "[" A("x", 1) "]", "fail", "[" A("x", 1) "]");
    T(1, "[" R("x", "null") "]", "ok", "[" R("x", "[1]") "]");
    CHECK(check() == 0);
    CHECK(names_are(&r, "G1a", NULL));
    size_t ops[2] = {1, 3};
    CHECK(anomaly_ops(&r, "G1a", 2, ops));
    reset();
}

TEST(g1b_intermediate_read)
{
    reset();
    T(0, "[" A("x", 1) "," A("x", 2) "]", "ok", "[" A("x", 1) "," A("x", 2) "]");
    T(1, "[" R("x", "null") "]", "ok", "[" R("x", "[1]") "]");
    CHECK(check() == 0);
    CHECK(jp_result_count(&r, "G1b") == 1);
    size_t ops[2] = {1, 3};
    CHECK(anomaly_ops(&r, "G1b", 2, ops));
    /* also when the reader's own append follows the intermediate version */
    reset();
    T(0, "[" A("x", 1) "," A("x", 2) "]", "ok", "[" A("x", 1) "," A("x", 2) "]");
    T(1, "[" A("x", 3) "," R("x", "null") "]", "ok", "[" A("x", 3) "," R("x", "[1,3]") "]");
    CHECK(check() == 0);
    CHECK(anomaly_ops(&r, "G1b", 2, ops));
    reset();
}

TEST(internal)
{
    reset();
    T(0, "[" A("x", 1) "]", "ok", "[" A("x", 1) "]");
    T(1, "[" R("x", "null") "," A("x", 2) "," R("x", "null") "]", "ok",
      "[" R("x", "[1]") "," A("x", 2) "," R("x", "[1]") "]");
    CHECK(check() == 0);
    CHECK(jp_result_count(&r, "internal") == 1);
    /* a read that misses the transaction's own append, with no earlier read */
    reset();
    T(0, "[" A("x", 1) "," R("x", "null") "]", "ok", "[" A("x", 1) "," R("x", "[]") "]");
    CHECK(check() == 0);
    CHECK(jp_result_count(&r, "internal") == 1);
    /* and the correct version of both passes */
    reset();
    T(0, "[" A("x", 1) "," R("x", "null") "]", "ok", "[" A("x", 1) "," R("x", "[1]") "]");
    T(1, "[" R("x", "null") "," A("x", 2) "," R("x", "null") "]", "ok",
      "[" R("x", "[1]") "," A("x", 2) "," R("x", "[1,2]") "]");
    CHECK(check() == 0);
    CHECK(names_are(&r, NULL));
    reset();
}

TEST(dirty_update)
{
    reset();
    T(0, "[" A("x", 1) "]", "fail", "[" A("x", 1) "]");
    T(1, "[" A("x", 2) "]", "ok", "[" A("x", 2) "]");
    T(2, "[" R("x", "null") "]", "ok", "[" R("x", "[1,2]") "]");
    CHECK(check() == 0);
    CHECK(jp_result_count(&r, "dirty-update") == 1);
    size_t ops[2] = {1, 3};
    CHECK(anomaly_ops(&r, "dirty-update", 2, ops));
    reset();
}

TEST(lost_update)
{
    reset();
    T(0, "[" A("x", 0) "]", "ok", "[" A("x", 0) "]");
    I(1, "[" R("x", "null") "," A("x", 1) "]");
    I(2, "[" R("x", "null") "," A("x", 2) "]");
    C(1, "ok", "[" R("x", "[0]") "," A("x", 1) "]");
    C(2, "ok", "[" R("x", "[0]") "," A("x", 2) "]");
    T(3, "[" R("x", "null") "]", "ok", "[" R("x", "[0,1,2]") "]");
    CHECK(check() == 0);
    CHECK(jp_result_count(&r, "lost-update") == 1);
    size_t ops[2] = {4, 5};
    CHECK(anomaly_ops(&r, "lost-update", 2, ops));
    reset();
}

TEST(duplicate_elements)
{
    reset();
    T(0, "[" A("x", 1) "]", "ok", "[" A("x", 1) "]");
    T(1, "[" R("x", "null") "]", "ok", "[" R("x", "[1,1]") "]");
    CHECK(check() == 0);
    CHECK(names_are(&r, "duplicate-elements", NULL));
    reset();
}

TEST(incompatible_order)
{
    reset();
    T(0, "[" A("x", 1) "]", "ok", "[" A("x", 1) "]");
    T(1, "[" A("x", 2) "]", "ok", "[" A("x", 2) "]");
    T(2, "[" R("x", "null") "]", "ok", "[" R("x", "[1,2]") "]");
    T(3, "[" R("x", "null") "]", "ok", "[" R("x", "[2,1]") "]");
    CHECK(check() == 0);
    CHECK(jp_result_count(&r, "incompatible-order") == 1);
    reset();
}

TEST(garbage_read)
{
    reset();
    T(0, "[" R("x", "null") "]", "ok", "[" R("x", "[7]") "]");
    CHECK(check() == 0);
    CHECK(names_are(&r, "garbage-read", NULL));
    reset();
}

TEST(nothing_ok_is_unknown)
{
    reset();
    T(0, "[" A("x", 1) "]", "info", "[" A("x", 1) "]");
    CHECK(check() == 0);
    CHECK_EQ(r.valid, JP_UNKNOWN);
    reset();
}

TEST(malformed_values)
{
    static const char *bad[][2] = {
        {"{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":5}", "array of micro-ops"},
        {"{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"put\",\"x\",1]]}",
         "micro-op 0"},
        {"{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",\"a\"]]}",
         "integer"},
        {"{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}", "unknown f"},
        {"{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1]]}\n"
         "{\"process\":0,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1]]}\n"
         "{\"process\":1,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1]]}",
         "second time"},
        {"{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",null]]}\n"
         "{\"process\":0,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",{}]]}",
         "line 2"},
        {"{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",null]]}\n"
         "{\"process\":0,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"r\",\"y\",[]]]}",
         "differs from its invoke"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        reset();
        mr_err err;
        CHECK(jp_history_parse_string(&h, bad[i][0], &err) == MR_OK);
        jp_result_free(&r);
        int rc = jp_check_list_append(&h, NULL, &r, &err);
        CHECKF(rc == MR_EINVAL, "case %zu accepted", i);
        CHECKF(strstr(mr_err_msg(&err), bad[i][1]) && strstr(mr_err_msg(&err), "line "),
               "case %zu: message \"%s\" lacks \"%s\"", i, mr_err_msg(&err), bad[i][1]);
    }
    reset();
}

static gen_opts la_opts(uint64_t seed, int nops)
{
    return (gen_opts){.model = GEN_LIST_APPEND,
                      .seed = seed,
                      .nops = nops,
                      .nprocs = 5,
                      .nkeys = 4,
                      .p_fail = 5,
                      .p_info = 5};
}

TEST(random_valid_and_mutations)
{
    int caught[3] = {0}, tried[3] = {0};
    for (uint64_t seed = 1; seed <= 40; seed++) {
        reset();
        gen_opts o = la_opts(seed, 150);
        gen_out g;
        CHECK(gen_history(&o, &h, &g) == 0);
        gen_out_free(&g);
        CHECK(check() == 0);
        CHECKF(r.valid == JP_VALID, "seed %llu: a history from a serial store was judged %s",
               (unsigned long long)seed, jp_validity_name(r.valid));
        if (r.valid != JP_VALID)
            jp_result_print(&r, stderr, 3);
        int (*muts[3])(const jp_history *, uint64_t, jp_history *) = {
            mutate_append_stale, mutate_append_abort, mutate_append_dup};
        for (int k = 0; k < 3; k++) {
            jp_history m;
            jp_history_init(&m);
            int got = muts[k](&h, seed * 7919, &m);
            CHECK(got >= 0);
            if (got == 1) {
                tried[k]++;
                jp_result mr;
                mr_err err;
                CHECK(jp_check_list_append(&m, NULL, &mr, &err) == MR_OK);
                caught[k] += mr.valid == JP_INVALID;
                if (mr.valid != JP_INVALID)
                    fprintf(stderr, "seed %llu mutation %d not caught\n", (unsigned long long)seed,
                            k);
                jp_result_free(&mr);
            }
            jp_history_free(&m);
        }
    }
    for (int k = 0; k < 3; k++) {
        CHECKF(tried[k] >= 10, "mutation %d applied only %d times", k, tried[k]);
        CHECK_EQ(caught[k], tried[k]);
    }
    reset();
}

TEST(stale_mutation_named)
{
    /* a stale read whose writer finished first is a named cycle */
    int named = 0, tried = 0;
    for (uint64_t seed = 100; seed < 120; seed++) {
        reset();
        gen_opts o = la_opts(seed, 100);
        o.p_fail = o.p_info = 0;
        gen_out g;
        CHECK(gen_history(&o, &h, &g) == 0);
        gen_out_free(&g);
        jp_history m;
        jp_history_init(&m);
        if (mutate_append_stale(&h, seed, &m) == 1) {
            tried++;
            jp_result mr;
            mr_err err;
            CHECK(jp_check_list_append(&m, NULL, &mr, &err) == MR_OK);
            /* a cycle through real time or process order, or a pure data cycle when the
             * reader also saw the writer's effect on another key (a stronger claim), or an
             * internal inconsistency when the truncated read follows one in the same txn */
            for (size_t i = 0; i < mr.n; i++)
                if (strstr(mr.anomalies[i].name, "-realtime") ||
                    strstr(mr.anomalies[i].name, "-process") ||
                    strcmp(mr.anomalies[i].name, "G-single") == 0 ||
                    strcmp(mr.anomalies[i].name, "internal") == 0) {
                    named++;
                    break;
                }
            jp_result_free(&mr);
        }
        jp_history_free(&m);
    }
    CHECK(tried >= 10);
    CHECK_EQ(named, tried);
    reset();
}

TEST(search_budget_still_names_a_cycle)
{
    /* with a search budget of one step every class search is cut short, yet the component
     * (the four-transaction G-nonadjacent cycle) still yields its named cycle, and the result
     * says the search was cut */
    reset();
    I(1, "[" R("a", "null") "," R("d", "null") "]");
    I(2, "[" A("a", 1) "," A("b", 1) "]");
    I(3, "[" R("b", "null") "," R("c", "null") "]");
    I(4, "[" A("c", 1) "," A("d", 1) "]");
    C(2, "ok", "[" A("a", 1) "," A("b", 1) "]");
    C(4, "ok", "[" A("c", 1) "," A("d", 1) "]");
    C(1, "ok", "[" R("a", "[]") "," R("d", "[1]") "]");
    C(3, "ok", "[" R("b", "[1]") "," R("c", "[]") "]");
    jp_elle_opts eo = {.search_budget = 1};
    mr_err err;
    CHECK(jp_check_list_append(&h, &eo, &r, &err) == MR_OK);
    CHECK(names_are(&r, "G-nonadjacent", NULL));
    CHECK(r.notes && strstr(r.notes, "search budget"));
    reset();
}

TEST(performance_sanity)
{
    /* a few thousand transactions: a functional bound, the timing lives in the bench */
    reset();
    gen_opts o = la_opts(4242, 4000);
    o.nprocs = 10;
    o.nkeys = 20;
    gen_out g;
    CHECK(gen_history(&o, &h, &g) == 0);
    gen_out_free(&g);
    CHECK(check() == 0);
    CHECK_EQ(r.valid, JP_VALID);
    CHECK_EQ(r.ops_checked, 4000);
    jp_history m;
    jp_history_init(&m);
    CHECK(mutate_append_stale(&h, 3, &m) == 1);
    jp_result mr;
    mr_err err;
    CHECK(jp_check_list_append(&m, NULL, &mr, &err) == MR_OK);
    CHECK_EQ(mr.valid, JP_INVALID);
    jp_result_free(&mr);
    jp_history_free(&m);
    reset();
}

/* Which anomaly names only real-time order (or a client's own order) makes cycles of. */
TEST(realtime_kinds)
{
    CHECK(jp_anomaly_is_realtime("G-single-realtime"));
    CHECK(jp_anomaly_is_realtime("G-nonadjacent-process"));
    CHECK(jp_anomaly_is_realtime("G0-realtime"));
    CHECK(!jp_anomaly_is_realtime("G-single"));
    CHECK(!jp_anomaly_is_realtime("G1c"));
    CHECK(!jp_anomaly_is_realtime("G2-item"));
    CHECK(!jp_anomaly_is_realtime("incompatible-order"));
    CHECK(!jp_anomaly_is_realtime("-realtime"));
    CHECK(!jp_anomaly_is_realtime(""));
}

TEST(cleanup)
{
    reset();
}

TEST_MAIN(TEST_CASE(valid_serial), TEST_CASE(valid_concurrent_info_fail), TEST_CASE(g0),
          TEST_CASE(g0_realtime), TEST_CASE(g1c), TEST_CASE(g_single), TEST_CASE(g_nonadjacent),
          TEST_CASE(g2_item), TEST_CASE(g_single_realtime_stale_read), TEST_CASE(g_single_process),
          TEST_CASE(g2_item_plus_stale_read), TEST_CASE(g0_process),
          TEST_CASE(g1c_realtime_future_read), TEST_CASE(g_nonadjacent_realtime_and_process),
          TEST_CASE(g2_item_realtime_and_process), TEST_CASE(realtime_is_transitive_but_reduced),
          TEST_CASE(unobserved_appends_follow_everything_observed), TEST_CASE(future_read),
          TEST_CASE(elle_paper_example), TEST_CASE(sound_against_exhaustive_search),
          TEST_CASE(big_component_ring), TEST_CASE(g1a_aborted_read),
          TEST_CASE(g1b_intermediate_read), TEST_CASE(internal), TEST_CASE(dirty_update),
          TEST_CASE(lost_update), TEST_CASE(duplicate_elements), TEST_CASE(incompatible_order),
          TEST_CASE(garbage_read), TEST_CASE(nothing_ok_is_unknown), TEST_CASE(malformed_values),
          TEST_CASE(random_valid_and_mutations), TEST_CASE(stale_mutation_named),
          TEST_CASE(search_budget_still_names_a_cycle), TEST_CASE(performance_sanity),
          TEST_CASE(realtime_kinds), TEST_CASE(cleanup))
