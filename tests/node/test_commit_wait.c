/* Integration: commit wait is what makes a lying clock harmless. The leader's
 * clock reads 190 ms fast, within its declared 200 ms bound, so the timestamps
 * it assigns lie in the future. A client commits through the leader and at
 * once reads the key, strongly and lock-free, at a follower whose clock is
 * honest. With commit wait the leader answers only once TT.after(s), so the
 * read's timestamp (the follower's TT.now().latest) is past s and the write is
 * seen every time. The negative control answers without commit wait
 * (MERIDIAN_TEST_BREAK=no-commit-wait): the same sequence then reads stale
 * data, and the test must notice. */
#include <stdbool.h>
#include <stdlib.h>

#include "common/mr_util.h"
#include "tablet/node/nd.h"
#include "tests/support/cluster.h"
#include "launch/proc.h"
#include "tests/test.h"

#define NNODES 3
#define GROUP  2
#define ROUNDS 25

/* Runs ROUNDS write-then-read pairs; returns how many reads missed the write,
 * or -1 if the cluster did not cooperate. */
static int stale_reads(bool break_commit_wait)
{
    if (break_commit_wait)
        setenv("MERIDIAN_TEST_BREAK", "no-commit-wait", 1);
    else
        unsetenv("MERIDIAN_TEST_BREAK");
    if (tc_setup(NNODES, "meridian-cwait") != 0)
        return -1;
    tc.clock = "fixed:200ms"; /* wide, so the window outlasts a client's TLS handshake */
    tc.clock_cap = "1s";
    for (int i = 0; i < NNODES; i++)
        tc_start(i);
    unsetenv("MERIDIAN_TEST_BREAK");
    sleep_ms(500);
    if (tc_init(1) != 0)
        return -1;
    int leader = tc_wait_leader(GROUP, -1, 30000);
    if (leader < 0)
        return -1;
    int follower = (leader + 1) % NNODES;
    json_t *f = tc_request(leader, ND_MSG_FAULT, "{\"clock_offset_ns\": 190000000}");
    bool faulted = f && json_is_true(json_object_get(f, "ok"));
    json_decref(f);
    if (!faulted)
        return -1;
    int missed = 0, done = 0;
    for (int k = 0; k < ROUNDS; k++) {
        char req[256];
        snprintf(req, sizeof req,
                 "{\"group\":%d,\"txn\":%d,\"prio\":%lld,\"op\":\"commit\",\"nreads\":0,"
                 "\"writes\":[{\"key\":\"k%d\",\"value\":\"v%d\"}]}",
                 GROUP, 100 + k, (long long)mr_realtime_ns(), k, k);
        json_t *c = tc_request(leader, ND_MSG_TXN, req);
        bool ok = c && json_is_true(json_object_get(c, "ok"));
        json_decref(c);
        if (!ok)
            continue; /* leadership moved: skip the pair */
        snprintf(req, sizeof req, "{\"group\":%d,\"key\":\"k%d\"}", GROUP, k);
        json_t *r = tc_request(follower, ND_MSG_SNAPREAD, req);
        if (r && json_is_true(json_object_get(r, "ok"))) {
            done++;
            missed += !json_is_true(json_object_get(r, "found"));
        }
        json_decref(r);
    }
    printf("  %s: %d of %d reads right after a commit missed it\n",
           break_commit_wait ? "without commit wait" : "with commit wait", missed, done);
    return done >= ROUNDS / 2 ? missed : -1;
}

TEST(commit_wait_hides_a_lying_clock)
{
    int missed = stale_reads(false);
    tc_teardown(test_failed_flag || missed != 0);
    CHECKF(missed == 0, "%d stale reads with commit wait (or the cluster failed: -1)", missed);
}

TEST(skipping_commit_wait_is_caught)
{
    int missed = stale_reads(true);
    tc_teardown(test_failed_flag || missed <= 0);
    CHECKF(missed > 0, "no stale read without commit wait (%d): the test cannot fail", missed);
}

TEST_MAIN(TEST_CASE(commit_wait_hides_a_lying_clock), TEST_CASE(skipping_commit_wait_is_caught))
