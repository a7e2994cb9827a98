/* The linearizability checker (Wing & Gong's search with Lowe's cache, per key) on hand-made
 * register histories with known verdicts, and on seeded random histories from a real
 * register map plus stale-read mutations that must fail. */
#include <stdlib.h>

#include "jepsen/linear.h"
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

/* invoke / complete an op on key "x" (or k) */
#define I(p, f, v)        CHECK(ev(&h, p, "invoke", f, "\"x\"", v) == 0)
#define C(p, t, f, v)     CHECK(ev(&h, p, t, f, "\"x\"", v) == 0)
#define IK(p, k, f, v)    CHECK(ev(&h, p, "invoke", f, k, v) == 0)
#define CK(p, k, t, f, v) CHECK(ev(&h, p, t, f, k, v) == 0)
#define OP(p, f, inv, t, v)                                                                        \
    do {                                                                                           \
        I(p, f, inv);                                                                              \
        C(p, t, f, v);                                                                             \
    } while (0)

static jp_validity check(void)
{
    mr_err err;
    jp_result_free(&r);
    if (jp_check_register(&h, NULL, &r, &err) != MR_OK) {
        fprintf(stderr, "check failed: %s\n", mr_err_msg(&err));
        return (jp_validity)-1;
    }
    if (r.valid == JP_INVALID && r.n == 0)
        return (jp_validity)-1; /* invalid must come with an anomaly */
    return r.valid;
}

TEST(stale_read_after_completed_write)
{
    reset();
    OP(0, "write", "1", "ok", "1");
    OP(1, "read", "null", "ok", "1");
    OP(0, "write", "2", "ok", "2");
    OP(1, "read", "null", "ok", "1"); /* the write of 2 completed before this read began */
    CHECK_EQ(check(), JP_INVALID);
    CHECK_EQ(jp_result_count(&r, "nonlinearizable"), 1);
    CHECK_EQ(r.anomalies[0].ops[0], 7); /* the blocked op is the stale read */
    CHECK(strstr(r.anomalies[0].detail, "key x"));
    /* the same read concurrent with the second write is fine */
    reset();
    OP(0, "write", "1", "ok", "1");
    I(0, "write", "2");
    OP(1, "read", "null", "ok", "1");
    OP(2, "read", "null", "ok", "2");
    C(0, "ok", "write", "2");
    CHECK_EQ(check(), JP_VALID);
    reset();
}

TEST(initial_nil_and_never_written)
{
    reset();
    OP(0, "read", "null", "ok", "null");
    OP(0, "write", "3", "ok", "3");
    OP(1, "read", "null", "ok", "3");
    CHECK_EQ(check(), JP_VALID);
    reset();
    OP(0, "read", "null", "ok", "7"); /* nobody wrote 7 */
    CHECK_EQ(check(), JP_INVALID);
    reset();
}

TEST(concurrent_overlaps_that_can_be_ordered)
{
    reset();
    /* two overlapping writes and reads that see them in one consistent order */
    I(0, "write", "1");
    I(1, "write", "2");
    I(2, "read", "null");
    I(3, "read", "null");
    C(2, "ok", "read", "2");
    C(0, "ok", "write", "1");
    C(1, "ok", "write", "2");
    C(3, "ok", "read", "1");
    OP(2, "read", "null", "ok", "1");
    CHECK_EQ(check(), JP_VALID);
    /* but after both writes completed, reads may not flip between the two values */
    OP(3, "read", "null", "ok", "2");
    CHECK_EQ(check(), JP_INVALID);
    reset();
}

TEST(reads_disagree_on_order)
{
    reset();
    /* Knossos's classic: reads that overlap only the two writes, in different processes,
     * observe 1 then 2 then 1 sequentially */
    I(0, "write", "1");
    I(1, "write", "2");
    OP(2, "read", "null", "ok", "1");
    OP(2, "read", "null", "ok", "2");
    OP(2, "read", "null", "ok", "1");
    C(0, "ok", "write", "1");
    C(1, "ok", "write", "2");
    CHECK_EQ(check(), JP_INVALID);
    reset();
}

TEST(cas_semantics)
{
    reset();
    OP(0, "write", "1", "ok", "1");
    OP(1, "cas", "[1,2]", "ok", "[1,2]");
    OP(2, "read", "null", "ok", "2");
    OP(0, "cas", "[5,6]", "fail", "[5,6]"); /* a failed cas did not happen */
    OP(2, "read", "null", "ok", "2");
    OP(1, "cas", "[null,9]", "fail", "[null,9]");
    CHECK_EQ(check(), JP_VALID);
    /* a cas that succeeded although the register did not hold its old value */
    OP(1, "cas", "[1,3]", "ok", "[1,3]");
    CHECK_EQ(check(), JP_INVALID);
    reset();
    /* cas from nil on a fresh register */
    OP(0, "cas", "[null,4]", "ok", "[null,4]");
    OP(1, "read", "null", "ok", "4");
    CHECK_EQ(check(), JP_VALID);
    reset();
    /* two concurrent cas from the same value cannot both succeed */
    OP(0, "write", "1", "ok", "1");
    I(1, "cas", "[1,2]");
    I(2, "cas", "[1,3]");
    C(1, "ok", "cas", "[1,2]");
    C(2, "ok", "cas", "[1,3]");
    CHECK_EQ(check(), JP_INVALID);
    reset();
}

TEST(info_write_may_or_may_not_happen)
{
    reset();
    OP(0, "write", "1", "ok", "1");
    I(1, "write", "2");
    C(1, "info", "write", "2");
    OP(2, "read", "null", "ok", "1"); /* not yet */
    OP(3, "read", "null", "ok", "2"); /* took effect late, after its info */
    OP(3, "read", "null", "ok", "2");
    CHECK_EQ(check(), JP_VALID);
    /* but once seen it cannot un-happen */
    OP(2, "read", "null", "ok", "1");
    CHECK_EQ(check(), JP_INVALID);
    reset();
    /* never happening at all is also fine */
    OP(0, "write", "1", "ok", "1");
    I(1, "write", "2");
    C(1, "info", "write", "2");
    OP(2, "read", "null", "ok", "1");
    I(4, "cas", "[7,8]"); /* an info cas whose precondition never holds */
    C(4, "info", "cas", "[7,8]");
    I(5, "write", "9"); /* never completes: counts as info */
    OP(2, "read", "null", "ok", "1");
    CHECK_EQ(check(), JP_VALID);
    /* an info op may not take effect before its invocation */
    reset();
    OP(0, "write", "1", "ok", "1");
    OP(2, "read", "null", "ok", "2");
    I(1, "write", "2");
    C(1, "info", "write", "2");
    CHECK_EQ(check(), JP_INVALID);
    reset();
}

TEST(info_and_failed_reads_constrain_nothing)
{
    reset();
    OP(0, "write", "1", "ok", "1");
    OP(1, "read", "null", "fail", "null");
    I(2, "read", "null");
    C(2, "info", "read", "null");
    OP(3, "read", "null", "ok", "1");
    CHECK_EQ(check(), JP_VALID);
    CHECK_EQ(r.ops_checked, 4);
    reset();
}

TEST(per_key_independence)
{
    reset();
    IK(0, "\"x\"", "write", "1");
    IK(1, "\"y\"", "write", "1");
    CK(0, "\"x\"", "ok", "write", "1");
    CK(1, "\"y\"", "ok", "write", "1");
    IK(0, "\"x\"", "read", "null");
    CK(0, "\"x\"", "ok", "read", "1");
    IK(1, "7", "read", "null"); /* integer keys are their own namespace */
    CK(1, "7", "ok", "read", "null");
    IK(1, "\"7\"", "read", "null");
    CK(1, "\"7\"", "ok", "read", "null");
    CHECK_EQ(check(), JP_VALID);
    IK(2, "\"y\"", "read", "null");
    CK(2, "\"y\"", "ok", "read", "2");
    CHECK_EQ(check(), JP_INVALID);
    CHECK_EQ(r.n, 1);
    CHECK(strstr(r.anomalies[0].detail, "key y"));
    reset();
    /* an op with no key belongs to the single anonymous register */
    CHECK(ev(&h, 0, "invoke", "write", NULL, "5") == 0);
    CHECK(ev(&h, 0, "ok", "write", NULL, "5") == 0);
    CHECK(ev(&h, 0, "invoke", "read", NULL, "null") == 0);
    CHECK(ev(&h, 0, "ok", "read", NULL, "5") == 0);
    CHECK_EQ(check(), JP_VALID);
    reset();
}

TEST(nothing_completed_is_unknown)
{
    reset();
    I(0, "write", "1");
    C(0, "info", "write", "1");
    CHECK_EQ(check(), JP_UNKNOWN);
    reset();
}

TEST(cache_budget_gives_unknown)
{
    /* a history whose search needs more than a tiny cache answers unknown, not a guess */
    reset();
    gen_opts o = {.model = GEN_REGISTER, .seed = 9, .nops = 400, .nprocs = 8, .nkeys = 2};
    gen_out g;
    CHECK(gen_history(&o, &h, &g) == 0);
    gen_out_free(&g);
    jp_linear_opts lo = {.max_cache_bytes = 4096};
    mr_err err;
    CHECK(jp_check_register(&h, &lo, &r, &err) == MR_OK);
    CHECK_EQ(r.valid, JP_UNKNOWN);
    CHECK(r.unknown_reason && strstr(r.unknown_reason, "cache"));
    reset();
}

TEST(many_unobserved_info_writes_do_not_blow_up)
{
    /* forty timed-out writes nobody ever read, then a stale read: invalid, found at once
     * rather than after exploring every subset of the info writes */
    reset();
    OP(0, "write", "1", "ok", "1");
    OP(0, "write", "2", "ok", "2");
    for (int i = 0; i < 40; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", 100 + i);
        I(10 + i, "write", v);
        C(10 + i, "info", "write", v);
    }
    OP(1, "read", "null", "ok", "1");
    jp_linear_opts lo = {.max_cache_bytes = 1 << 20};
    mr_err err;
    CHECK(jp_check_register(&h, &lo, &r, &err) == MR_OK);
    CHECK_EQ(r.valid, JP_INVALID);
    /* and an observed info write is still considered */
    reset();
    OP(0, "write", "1", "ok", "1");
    I(1, "write", "5");
    C(1, "info", "write", "5");
    I(2, "cas", "[5,6]");
    C(2, "info", "cas", "[5,6]");
    OP(3, "read", "null", "ok", "6");
    CHECK_EQ(check(), JP_VALID);
    reset();
}

/* ---- cross-check against an exhaustive search on tiny histories ---- */

typedef struct bop {
    int kind; /* 0 read, 1 write, 2 cas */
    int a_nil, a, b;
    int must;      /* ok: must take effect; info: may */
    int used;      /* fail ops and unknown reads take no part */
    int call, ret; /* event positions; ret = INT32_MAX for info */
} bop;

/* Is there an order of all `must` ops (and any of the others) that respects real time and
 * the register? Plain depth-first enumeration, obviously correct and exponential. */
static int brute(const bop *o, int n, unsigned placed, int nil, int v, int left)
{
    if (left == 0)
        return 1;
    for (int i = 0; i < n; i++) {
        if (!o[i].used || (placed >> i & 1))
            continue;
        int blocked = 0;
        for (int j = 0; j < n; j++)
            blocked |= o[j].used && o[j].must && !(placed >> j & 1) && o[j].ret < o[i].call;
        if (blocked)
            continue;
        int nnil = nil, nv = v;
        if (o[i].kind == 0) {
            if (o[i].a_nil != nil || (!nil && o[i].a != v))
                continue;
        } else if (o[i].kind == 1) {
            nnil = 0;
            nv = o[i].a;
        } else {
            if (o[i].a_nil != nil || (!nil && o[i].a != v))
                continue;
            nnil = 0;
            nv = o[i].b;
        }
        if (brute(o, n, placed | 1u << i, nnil, nv, left - o[i].must))
            return 1;
    }
    return 0;
}

static void val_text(char *buf, size_t len, int is_nil, int v)
{
    if (is_nil)
        snprintf(buf, len, "null");
    else
        snprintf(buf, len, "%d", v);
}

TEST(agrees_with_exhaustive_search)
{
    /* thousands of random tiny one-key histories with reads, writes and cas over a small value
     * domain, random overlaps, ok/info/fail outcomes: the Wing-Gong-Lowe search (with its
     * cache and its dropping of unobserved info writes) must agree with brute force */
    uint64_t s = 2024;
    int valid = 0, invalid = 0;
    for (int round = 0; round < 3000; round++) {
        reset();
        int n = 2 + (int)(gen_rand(&s) % 6);
        bop o[8];
        int state[8] = {0}, pos = 0;
        const char *type[8];
        for (int i = 0; i < n; i++) {
            o[i].kind = (int)(gen_rand(&s) % 3);
            o[i].a_nil = gen_rand(&s) % 4 == 0;
            o[i].a = 1 + (int)(gen_rand(&s) % 2);
            o[i].b = 1 + (int)(gen_rand(&s) % 2);
            if (o[i].kind == 1)
                o[i].a_nil = 0;
            int t = (int)(gen_rand(&s) % 10);
            type[i] = t < 7 ? "ok" : t < 9 ? "info" : "fail";
            o[i].must = type[i][0] == 'o';
            o[i].used = type[i][0] != 'f' && (o[i].kind != 0 || o[i].must);
        }
        for (int done = 0; done < n;) {
            int i = (int)(gen_rand(&s) % (uint64_t)n);
            if (state[i] == 2)
                continue;
            static const char *fs[] = {"read", "write", "cas"};
            char v[32], a[8], b[8];
            val_text(a, sizeof a, o[i].a_nil, o[i].a);
            val_text(b, sizeof b, 0, o[i].b);
            if (o[i].kind == 2)
                snprintf(v, sizeof v, "[%s,%s]", a, b);
            else
                snprintf(v, sizeof v, "%s", o[i].kind == 0 && state[i] == 0 ? "null" : a);
            if (state[i] == 0) {
                CHECK(ev(&h, i, "invoke", fs[o[i].kind], "\"k\"", v) == 0);
                o[i].call = pos++;
            } else {
                CHECK(ev(&h, i, type[i], fs[o[i].kind], "\"k\"", v) == 0);
                o[i].ret = type[i][0] == 'i' ? INT32_MAX : pos;
                pos++;
                done++;
            }
            state[i]++;
        }
        int left = 0;
        for (int i = 0; i < n; i++)
            left += o[i].used && o[i].must;
        int expect = brute(o, n, 0, 1, 0, left);
        jp_validity v = check();
        if (left == 0) {
            CHECK_EQ(v, JP_UNKNOWN); /* nothing completed ok */
            continue;
        }
        if ((v == JP_VALID) != expect || v == JP_UNKNOWN) {
            char *buf = NULL;
            size_t len = 0;
            FILE *f = open_memstream(&buf, &len);
            mr_err err;
            jp_history_write_jsonl(&h, f, &err);
            fclose(f);
            fprintf(stderr, "round %d: brute force says %s, checker %s:\n%s", round,
                    expect ? "valid" : "invalid", jp_validity_name(v), buf);
            free(buf);
            CHECK(0);
        }
        valid += expect;
        invalid += !expect;
    }
    /* both verdicts were exercised plenty */
    CHECKF(valid > 300 && invalid > 300, "valid %d invalid %d", valid, invalid);
    reset();
}

TEST(malformed_values)
{
    static const char *bad[][2] = {
        {"{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":\"a\"}", "write"},
        {"{\"process\":0,\"type\":\"invoke\",\"f\":\"cas\",\"value\":[1]}", "[old, new]"},
        {"{\"process\":0,\"type\":\"invoke\",\"f\":\"incr\",\"value\":1}", "unknown f"},
        {"{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n"
         "{\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":[1]}",
         "line 2"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        reset();
        mr_err err;
        CHECK(jp_history_parse_string(&h, bad[i][0], &err) == MR_OK);
        int rc = jp_check_register(&h, NULL, &r, &err);
        CHECKF(rc == MR_EINVAL, "case %zu accepted", i);
        CHECKF(strstr(mr_err_msg(&err), bad[i][1]), "case %zu: \"%s\" lacks \"%s\"", i,
               mr_err_msg(&err), bad[i][1]);
    }
    reset();
}

TEST(random_valid_and_stale_mutations)
{
    int tried = 0, caught = 0;
    for (uint64_t seed = 1; seed <= 60; seed++) {
        reset();
        gen_opts o = {.model = GEN_REGISTER,
                      .seed = seed,
                      .nops = 120,
                      .nprocs = 2 + (int)(seed % 5),
                      .nkeys = 1 + (int)(seed % 3),
                      .p_fail = 5,
                      .p_info = 5};
        gen_out g;
        CHECK(gen_history(&o, &h, &g) == 0);
        jp_validity v = check();
        CHECKF(v == JP_VALID, "seed %llu: a history from a real register was judged %d",
               (unsigned long long)seed, (int)v);
        jp_history m;
        jp_history_init(&m);
        int got = mutate_register_stale(&h, &g, seed * 31, &m);
        gen_out_free(&g);
        CHECK(got >= 0);
        if (got == 1) {
            tried++;
            jp_result mr;
            mr_err err;
            CHECK(jp_check_register(&m, NULL, &mr, &err) == MR_OK);
            caught += mr.valid == JP_INVALID && jp_result_count(&mr, "nonlinearizable") == 1;
            jp_result_free(&mr);
        }
        jp_history_free(&m);
    }
    CHECKF(tried >= 30, "only %d mutations applied", tried);
    CHECK_EQ(caught, tried);
    reset();
}

TEST(performance_sanity)
{
    /* a few thousand operations over a few keys with ten processes */
    reset();
    gen_opts o = {.model = GEN_REGISTER,
                  .seed = 77,
                  .nops = 5000,
                  .nprocs = 10,
                  .nkeys = 5,
                  .p_fail = 3,
                  .p_info = 3};
    gen_out g;
    CHECK(gen_history(&o, &h, &g) == 0);
    gen_out_free(&g);
    CHECK_EQ(check(), JP_VALID);
    CHECK_EQ(r.ops_checked, 5000);
    reset();
}

TEST(cleanup)
{
    reset();
}

TEST_MAIN(TEST_CASE(stale_read_after_completed_write), TEST_CASE(initial_nil_and_never_written),
          TEST_CASE(concurrent_overlaps_that_can_be_ordered), TEST_CASE(reads_disagree_on_order),
          TEST_CASE(cas_semantics), TEST_CASE(info_write_may_or_may_not_happen),
          TEST_CASE(info_and_failed_reads_constrain_nothing), TEST_CASE(per_key_independence),
          TEST_CASE(nothing_completed_is_unknown), TEST_CASE(cache_budget_gives_unknown),
          TEST_CASE(many_unobserved_info_writes_do_not_blow_up),
          TEST_CASE(agrees_with_exhaustive_search), TEST_CASE(malformed_values),
          TEST_CASE(random_valid_and_stale_mutations), TEST_CASE(performance_sanity),
          TEST_CASE(cleanup))
