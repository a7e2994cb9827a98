/* Availability from a history's times (jepsen/avail.h): synthetic histories with known
 * windows, gaps and fault intervals, every figure checked. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "jepsen/avail.h"
#include "tests/test.h"

#define MS 1000000LL

static jp_history h;
static jp_avail a;

static void reset(void)
{
    jp_history_free(&h);
    jp_history_init(&h);
    jp_avail_free(&a);
}

/* One operation at `ms` (process -1: the nemesis). 0 or -1. */
static int rec(int64_t process, jp_type type, const char *f, int64_t ms)
{
    mr_err err;
    if (jp_history_record(&h, process < 0 ? JP_NEMESIS : process, type, f, NULL, NULL,
                          ms < 0 ? -1 : ms * MS, &err) != MR_OK) {
        fprintf(stderr, "history refused: %s\n", mr_err_msg(&err));
        return -1;
    }
    return 0;
}

#define OP(p, type, f, ms) CHECK(rec(p, type, f, ms) == 0)
#define NEM(f, ms)         CHECK(rec(-1, JP_INFO, f, ms) == 0)
#define TXN(p, inv, type, done)                                                                    \
    do {                                                                                           \
        OP(p, JP_INVOKE, "txn", inv);                                                              \
        OP(p, type, "txn", done);                                                                  \
    } while (0)

static int measure(void)
{
    mr_err err;
    int rc = jp_avail_measure(&h, &a, &err);
    if (rc != MR_OK)
        fprintf(stderr, "measure: %s\n", mr_err_msg(&err));
    return rc;
}

/* 10 s of history: commits at 0.1 0.5 1.2 1.3 2.6, a kill 3.0-5.5 s that stalls everything
 * until 6.2, commits 6.3 7.1 8.05, a partition 8.1-8.4, commits 8.5 9.9; a fail at 7.0 and an
 * info at 10.0 (the last client event). */
static int build_basic(void)
{
    reset();
    if (rec(0, JP_INVOKE, "txn", 0) || rec(0, JP_OK, "txn", 100) || rec(0, JP_INVOKE, "txn", 150) ||
        rec(0, JP_OK, "txn", 500) || rec(0, JP_INVOKE, "txn", 600) || rec(0, JP_OK, "txn", 1200) ||
        rec(1, JP_INVOKE, "txn", 1250) || rec(1, JP_OK, "txn", 1300) ||
        rec(0, JP_INVOKE, "txn", 1300) || rec(0, JP_OK, "txn", 2600) ||
        rec(0, JP_INVOKE, "txn", 2700) || rec(-1, JP_INFO, "start-kill", 3000) ||
        rec(-1, JP_INFO, "stop-kill", 5500) || rec(0, JP_OK, "txn", 6200) ||
        rec(1, JP_INVOKE, "txn", 6250) || rec(1, JP_OK, "txn", 6300) ||
        rec(1, JP_INVOKE, "txn", 6400) || rec(1, JP_FAIL, "txn", 7000) ||
        rec(1, JP_INVOKE, "txn", 7050) || rec(1, JP_OK, "txn", 7100) ||
        rec(0, JP_INVOKE, "txn", 7200) || rec(0, JP_OK, "txn", 8050) ||
        rec(-1, JP_INFO, "start-partition", 8100) || rec(-1, JP_INFO, "stop-partition", 8400) ||
        rec(0, JP_INVOKE, "txn", 8420) || rec(0, JP_OK, "txn", 8500) ||
        rec(0, JP_INVOKE, "txn", 8600) || rec(0, JP_OK, "txn", 9900) ||
        rec(1, JP_INVOKE, "txn", 9950) || rec(1, JP_INFO, "txn", 10000))
        return -1;
    return measure();
}

TEST(windows_and_gaps)
{
    CHECK(build_basic() == MR_OK);
    CHECK_EQ(a.t0, 0);
    CHECK_EQ(a.t_end, 10000 * MS);
    CHECK_EQ(a.commits, 11);
    CHECK_EQ(a.windows, 10);
    static const size_t want[10] = {2, 2, 1, 0, 0, 0, 2, 1, 2, 1};
    for (int w = 0; w < 10; w++)
        CHECKF(a.per_window[w] == want[w], "window %d: %zu commits, want %zu", w, a.per_window[w],
               want[w]);
    CHECK_EQ(a.live_windows, 7);
    CHECK_EQ(a.longest_gap, 3600 * MS);
    CHECK_EQ(a.gap_from, 2600 * MS);
    CHECK_EQ(a.gap_to, 6200 * MS);
}

TEST(faulty_and_quiet_windows)
{
    CHECK(build_basic() == MR_OK);
    /* kill 3.0-5.5 touches windows 3, 4, 5 (not 2: it starts where 2 ends); the partition
     * 8.1-8.4 window 8. */
    static const unsigned char want[10] = {0, 0, 0, 1, 1, 1, 0, 0, 1, 0};
    for (int w = 0; w < 10; w++)
        CHECKF(a.faulty[w] == want[w], "window %d faulty %d, want %d", w, a.faulty[w], want[w]);
    CHECK_EQ(a.faulty_windows, 4);
    CHECK_EQ(a.faulty_commits, 2);
    CHECK_EQ(a.quiet_windows, 6);
    CHECK_EQ(a.quiet_commits, 9);
    CHECK(a.faulty_per_s > 0.499 && a.faulty_per_s < 0.501);
    CHECK(a.quiet_per_s > 1.499 && a.quiet_per_s < 1.501);
}

TEST(per_fault_and_kind)
{
    CHECK(build_basic() == MR_OK);
    CHECK_EQ(a.nfaults, 2);
    const jp_avail_fault *k = &a.faults[0], *p = &a.faults[1];
    CHECK_STR(k->kind, "kill");
    CHECK_EQ(k->start, 3000 * MS);
    CHECK_EQ(k->stop, 5500 * MS);
    CHECK_EQ(k->first_ok, 3200 * MS);
    CHECK_EQ(k->max_gap, 3600 * MS);
    CHECK_EQ(k->gap_from, 2600 * MS);
    CHECK_STR(p->kind, "partition");
    CHECK_EQ(p->first_ok, 400 * MS);
    CHECK_EQ(p->max_gap, 450 * MS); /* 8.05 -> 8.5 overlaps 8.1-8.4; 8.5 -> 9.9 does not */
    CHECK_EQ(a.nkinds, 2);
    const jp_avail_kind *kk = jp_avail_kind_get(&a, "kill");
    const jp_avail_kind *pk = jp_avail_kind_get(&a, "partition");
    CHECK(kk && pk && !jp_avail_kind_get(&a, "pause"));
    CHECK_EQ(kk->faults, 1);
    CHECK_EQ(kk->max_gap, 3600 * MS);
    CHECK_EQ(kk->mean_gap, 3600 * MS);
    CHECK_EQ(kk->max_first_ok, 3200 * MS);
    CHECK_EQ(kk->windows, 3);
    CHECK_EQ(kk->live_windows, 0);
    CHECK_EQ(kk->commits, 0);
    CHECK_EQ(pk->windows, 1);
    CHECK_EQ(pk->live_windows, 1);
    CHECK_EQ(pk->commits, 2);
    CHECK(pk->commits_per_s > 1.999 && pk->commits_per_s < 2.001);
}

/* A fault that heal-all ends, two of one kind (mean and max), a fault never healed (until the
 * end) after which nothing commits, and a trailing part of a second left out of the windows. */
TEST(heal_all_open_faults_and_partial_window)
{
    reset();
    TXN(0, 0, JP_OK, 200);
    NEM("start-pause", 500);
    NEM("heal-all", 1500);     /* ends the pause (no stop-pause) */
    TXN(0, 1600, JP_OK, 1700); /* pause: first commit 1.2 s after it, gap 0.2 -> 1.7 */
    NEM("start-pause", 2000);
    NEM("stop-pause", 2500);
    TXN(0, 2550, JP_OK, 2600); /* second pause: gap 1.7 -> 2.6 = 0.9 */
    NEM("start-clock", 3000);  /* never stopped: active to the end, no commit after it */
    TXN(0, 3100, JP_FAIL, 4200);
    OP(1, JP_INVOKE, "txn", 4300); /* never completes: counts as a client event */
    CHECK(measure() == MR_OK);
    CHECK_EQ(a.t_end, 4300 * MS);
    CHECK_EQ(a.windows, 4); /* 4.0-4.3 is left out */
    CHECK_EQ(a.commits, 3);
    CHECK_EQ(a.live_windows, 3);        /* 0, 1, 2 */
    CHECK_EQ(a.longest_gap, 1700 * MS); /* 2.6 -> t_end 4.3 */
    CHECK_EQ(a.nfaults, 3);
    CHECK_EQ(a.faults[0].stop, 1500 * MS);
    CHECK_EQ(a.faults[0].first_ok, 1200 * MS);
    CHECK_EQ(a.faults[0].max_gap, 1500 * MS);
    CHECK_EQ(a.faults[1].max_gap, 900 * MS);
    CHECK_EQ(a.faults[2].stop, 4300 * MS);
    CHECK_EQ(a.faults[2].first_ok, -1);
    const jp_avail_kind *p = jp_avail_kind_get(&a, "pause"), *c = jp_avail_kind_get(&a, "clock");
    CHECK(p && c);
    CHECK_EQ(p->faults, 2);
    CHECK_EQ(p->max_gap, 1500 * MS);
    CHECK_EQ(p->mean_gap, 1200 * MS);
    CHECK_EQ(p->max_first_ok, 1200 * MS);
    CHECK_EQ(p->windows, 3); /* 0 (0.5-1.0), 1 (1.0-1.5), 2 (2.0-2.5) */
    CHECK_EQ(p->commits, 3);
    CHECK_EQ(c->max_first_ok, -1);
    CHECK_EQ(c->windows, 1); /* window 3; 4.0-4.3 is no window */
    CHECK_EQ(a.faulty_windows, 4);
    CHECK_EQ(a.quiet_windows, 0);
    CHECK(a.quiet_per_s == 0);
}

TEST(no_commit_at_all)
{
    reset();
    TXN(0, 0, JP_FAIL, 2500);
    CHECK(measure() == MR_OK);
    CHECK_EQ(a.windows, 2);
    CHECK_EQ(a.live_windows, 0);
    CHECK_EQ(a.longest_gap, 2500 * MS);
    CHECK_EQ(a.nfaults, 0);
    CHECK_EQ(a.nkinds, 0);
}

TEST(untimed_histories_refused)
{
    reset();
    mr_err err;
    CHECK_EQ(jp_avail_measure(&h, &a, &err), MR_EINVAL); /* empty */
    CHECK(strstr(mr_err_msg(&err), "time") != NULL);
    jp_avail_free(&a);
    TXN(0, -1, JP_OK, -1);
    NEM("start-kill", 100); /* a timed nemesis alone does not make a span */
    CHECK_EQ(jp_avail_measure(&h, &a, &err), MR_EINVAL);
    jp_avail_free(&a);
    jp_avail_free(&a); /* twice is fine */
}

TEST(json_and_summary)
{
    CHECK(build_basic() == MR_OK);
    json_t *j = jp_avail_to_json(&a);
    CHECK(j != NULL);
    int ok =
        json_integer_value(json_object_get(j, "windows")) == 10 &&
        json_integer_value(json_object_get(j, "live_windows")) == 7 &&
        json_integer_value(json_object_get(j, "commits")) == 11 &&
        json_real_value(json_object_get(j, "longest_gap_s")) > 3.599 &&
        json_real_value(json_object_get(j, "longest_gap_s")) < 3.601 &&
        json_array_size(json_object_get(j, "per_window")) == 10 &&
        json_integer_value(json_array_get(json_object_get(j, "per_window"), 6)) == 2 &&
        json_integer_value(json_object_get(json_object_get(j, "faulty"), "windows")) == 4 &&
        json_real_value(json_object_get(json_object_get(j, "quiet"), "commits_per_s")) > 1.499 &&
        json_array_size(json_object_get(j, "faults")) == 2;
    json_t *kill = json_object_get(json_object_get(j, "per_kind"), "kill");
    ok = ok && kill && json_integer_value(json_object_get(kill, "faults")) == 1 &&
         json_real_value(json_object_get(kill, "max_first_commit_s")) > 3.199 &&
         json_integer_value(json_object_get(kill, "live_windows")) == 0;
    json_t *f0 = json_array_get(json_object_get(j, "faults"), 0);
    ok = ok && json_real_value(json_object_get(f0, "start_s")) > 2.999 &&
         json_real_value(json_object_get(f0, "start_s")) < 3.001 &&
         json_integer_value(json_object_get(f0, "index")) == 11;
    json_decref(j);
    CHECK(ok);

    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    CHECK(m != NULL);
    jp_avail_print(&a, m);
    fclose(m);
    int good = strstr(text, "availability: 7/10 one-second windows with a commit (70%), longest "
                            "gap 3.60 s (2.60-6.20 s), 11 commits\n") &&
               strstr(text, "availability: committed/s 0.50 in 4 faulty windows, 1.50 in 6 quiet "
                            "windows\n") &&
               strstr(text, "  fault kill          1x: longest gap 3.60 s (mean 3.60 s), first "
                            "commit after a start within 3.20 s; 0.00 committed/s in its 3 "
                            "windows (0 with a commit)\n") &&
               strstr(text, "  fault partition");
    if (!good)
        fprintf(stderr, "%s", text);
    free(text);
    CHECK(good);
}

/* Per group: an add of value v touches group 2 + v % 2 (two ranges); a read both. */
static uint64_t two_groups(const jp_op *invoke, void *ud)
{
    (void)ud;
    if (strcmp(invoke->f, "read") == 0)
        return 3u << 2;
    return json_is_integer(invoke->value) ? 1ull << (2 + json_integer_value(invoke->value) % 2) : 0;
}

/* An add of v by process p, invoked 10 ms before it completes at `ms`. */
static int add(int64_t p, long long v, int64_t ms)
{
    mr_err err;
    if (jp_history_record(&h, p, JP_INVOKE, "add", NULL, json_integer(v), (ms - 10) * MS, &err) ||
        jp_history_record(&h, p, JP_OK, "add", NULL, json_integer(v), ms * MS, &err)) {
        fprintf(stderr, "history refused: %s\n", mr_err_msg(&err));
        return -1;
    }
    return 0;
}

/* A fault start naming the groups it hit and those it left without a majority, recorded at
 * `ms`, its injection begun at `inject_ms` (-1: not said). */
static int fault_start(const char *f, const char *affected, const char *unavailable, int64_t ms,
                       int64_t inject_ms)
{
    mr_err err;
    json_error_t je;
    json_t *v = json_pack_ex(&je, 0, "{s:o, s:o}", "affected_groups", json_loads(affected, 0, NULL),
                             "unavailable_groups", json_loads(unavailable, 0, NULL));
    if (v && inject_ms >= 0)
        json_object_set_new(v, "inject_ns", json_integer(inject_ms * MS));
    if (!v || jp_history_record(&h, JP_NEMESIS, JP_INFO, f, NULL, v, ms * MS, &err)) {
        fprintf(stderr, "history refused\n");
        return -1;
    }
    return 0;
}

/* Group 2 (even values, process 0) and group 3 (odd, process 1) commit every 100 ms from 100
 * to 7000 ms, except: a kill at 1000 ms hits group 2, which commits again at 2500 ms (last
 * before: 900 ms), while group 3 pauses 1205-1505 ms; a partition at 4000 ms hits nobody and
 * leaves group 3 without a majority (no commit 4000-6000 ms), group 2 unharmed; its injection
 * began at 3900 ms. */
static int build_groups(void)
{
    reset();
    long long v = 0;
    for (int64_t t = 100; t <= 7000; t += 100) {
        if (t == 1000 && (fault_start("start-kill", "[2]", "[]", 1000, -1) ||
                          rec(-1, JP_INFO, "stop-kill", 3000) != 0))
            return -1;
        if (t == 4000 && (fault_start("start-partition", "[]", "[3]", 4000, 3900) ||
                          rec(-1, JP_INFO, "stop-partition", 6000) != 0))
            return -1;
        if (!(t >= 1000 && t < 2500) && add(0, 2 * v, t))
            return -1;
        if (!(t > 1200 && t < 1500) && !(t > 4000 && t < 6000) && add(1, 2 * v + 1, t + 5))
            return -1;
        v++;
    }
    mr_err err;
    int rc = jp_avail_measure_groups(&h, two_groups, NULL, &a, &err);
    if (rc != MR_OK)
        fprintf(stderr, "measure: %s\n", mr_err_msg(&err));
    return rc;
}

TEST(per_group_blips)
{
    CHECK(build_groups() == MR_OK);
    CHECK_EQ(a.groups, (uint64_t)0xc);
    CHECK_EQ(a.nfaults, 2);
    const jp_avail_fault *k = &a.faults[0], *p = &a.faults[1];
    CHECK_EQ(k->affected, (uint64_t)4);
    CHECK_EQ(k->inject, 1000 * MS);
    CHECK_EQ(k->until, 3900 * MS); /* when the next fault's injection began */
    CHECK_EQ(k->blip_group, 2);
    CHECK_EQ(k->blip, 1500 * MS); /* from the injection (1000) to its next commit (2500) */
    CHECK_EQ(k->recovered, 1500 * MS);
    CHECK_EQ(k->untouched_group, 3);
    CHECK_EQ(k->untouched_gap, 300 * MS); /* 1205 -> 1505 */
    /* The partition hit nobody; group 3, without a majority, counts in neither figure. */
    CHECK_EQ(p->affected, (uint64_t)0);
    CHECK_EQ(p->inject, 3900 * MS);
    CHECK_EQ(p->unavailable, (uint64_t)8);
    CHECK_EQ(p->blip_group, -1);
    CHECK_EQ(p->blip, -1);
    CHECK_EQ(p->untouched_group, 2);
    CHECK_EQ(p->untouched_gap, 100 * MS);
    const jp_avail_kind *kk = jp_avail_kind_get(&a, "kill"),
                        *pk = jp_avail_kind_get(&a, "partition");
    CHECK(kk && pk);
    CHECK_EQ(kk->max_blip, 1500 * MS);
    CHECK_EQ(kk->mean_blip, 1500 * MS);
    CHECK_EQ(kk->max_recovered, 1500 * MS);
    CHECK_EQ(kk->max_untouched_gap, 300 * MS);
    CHECK_EQ(pk->max_blip, -1);
    CHECK_EQ(pk->max_untouched_gap, 100 * MS);

    json_t *j = jp_avail_to_json(&a);
    json_t *f0 = json_array_get(json_object_get(j, "faults"), 0);
    json_t *pj = json_object_get(json_object_get(j, "per_kind"), "partition");
    int ok = j && json_array_size(json_object_get(j, "groups")) == 2 &&
             json_integer_value(json_object_get(f0, "blip_group")) == 2 &&
             json_real_value(json_object_get(f0, "blip_s")) > 1.499 &&
             json_real_value(json_object_get(f0, "recovery_s")) < 1.501 &&
             json_is_null(json_object_get(pj, "max_blip_s")) &&
             json_real_value(json_object_get(pj, "max_untouched_gap_s")) > 0.099;
    json_decref(j);
    CHECK(ok);

    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    CHECK(m != NULL);
    jp_avail_print(&a, m);
    fclose(m);
    int good = strstr(text, "  blips kill          1x: hit groups' longest gap 1.50 s (mean 1.50 "
                            "s), committing again within 1.50 s of a start; other groups' "
                            "longest gap 0.30 s\n") &&
               strstr(text, "  blips partition     1x: no group hit; other groups' longest gap "
                            "0.10 s\n") &&
               strstr(text, "without a majority until the heal: 3\n");
    if (!good)
        fprintf(stderr, "%s", text);
    free(text);
    CHECK(good);

    /* Without a groups function, nothing per group. */
    jp_avail_free(&a);
    mr_err err;
    CHECK(jp_avail_measure(&h, &a, &err) == MR_OK);
    CHECK_EQ(a.groups, (uint64_t)0);
    CHECK_EQ(a.faults[0].blip_group, -1);
}

/* Groups 2 and 3 commit every 100 ms until 3000 ms; a clock fault at 2000 ms hits nobody;
 * then one client scans (no group) from 3000 to 3500 ms, the last client event. The groups'
 * last gap ends where their operations end (3000 ms), not at the end of the scan: the
 * clients' final reads are no group's stall (they counted 0.4-0.5 s in every run's last
 * fault). With `still_open`, group 3's last add (invoked at 2495 ms) never completes: its gap runs
 * to the end (3500 ms). */
static int build_tail(bool still_open)
{
    reset();
    long long v = 0;
    mr_err err;
    for (int64_t t = 100; t <= 3000; t += 100, v++) {
        if (t == 2000 && fault_start("start-clock", "[]", "[]", 2000, -1))
            return -1;
        if (add(0, 2 * v, t))
            return -1;
        if (t < 2500 && add(1, 2 * v + 1, t + 5))
            return -1;
        if (t == 2500 && still_open &&
            jp_history_record(&h, 1, JP_INVOKE, "add", NULL, json_integer(2 * v + 1), 2495 * MS,
                              &err))
            return -1;
        if (t >= 2500 && !still_open && add(1, 2 * v + 1, t + 5))
            return -1;
    }
    if (rec(5, JP_INVOKE, "scan", 3000) || rec(5, JP_OK, "scan", 3500))
        return -1;
    int rc = jp_avail_measure_groups(&h, two_groups, NULL, &a, &err);
    if (rc != MR_OK)
        fprintf(stderr, "measure: %s\n", mr_err_msg(&err));
    return rc;
}

TEST(group_gaps_end_with_the_group_operations)
{
    CHECK(build_tail(false) == MR_OK);
    CHECK_EQ(a.t_end, 3500 * MS);
    CHECK_EQ(a.nfaults, 1);
    CHECK_EQ(a.faults[0].blip_group, -1);
    CHECK_EQ(a.faults[0].untouched_gap, 100 * MS);
    CHECK(build_tail(true) == MR_OK);
    CHECK_EQ(a.faults[0].untouched_group, 3);
    CHECK_EQ(a.faults[0].untouched_gap, (3500 - 2405) * MS);
}

static void cleanup(void)
{
    jp_history_free(&h);
    jp_avail_free(&a);
}

int main(int argc, char **argv)
{
    jp_history_init(&h);
    static const test_case cases[] = {
        TEST_CASE(windows_and_gaps),
        TEST_CASE(faulty_and_quiet_windows),
        TEST_CASE(per_fault_and_kind),
        TEST_CASE(heal_all_open_faults_and_partial_window),
        TEST_CASE(no_commit_at_all),
        TEST_CASE(untimed_histories_refused),
        TEST_CASE(json_and_summary),
        TEST_CASE(per_group_blips),
        TEST_CASE(group_gaps_end_with_the_group_operations),
    };
    int rc = test_run(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
    cleanup();
    return rc;
}
