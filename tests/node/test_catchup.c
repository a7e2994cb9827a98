/* Integration: a replica that comes back while its group keeps compacting
 * its log catches up and serves every committed value. Three TLS nodes take a
 * snapshot every 10 slots (MERIDIAN_TEST_SNAPSHOT_EVERY, which also keeps the
 * least log behind it); a follower is killed with -9, 60 transactions commit,
 * the follower restarts: it must serve all of them at the last commit
 * timestamp, like a replica that never went down. (Whether it catches up by
 * the leader's log or by a snapshot, which carries the MVCC store since this
 * stage, depends on what the leader still holds; the check is the same.) */
#include <stdlib.h>
#include <string.h>

#include "common/mr_util.h"
#include "tablet/node/nd.h"
#include "tests/support/cluster.h"
#include "launch/proc.h"
#include "tests/test.h"

#define NNODES 3
#define GROUP  2
#define BEFORE 5  /* commits the follower sees */
#define AFTER  60 /* commits while it is down */

/* One single-key commit at the group's leader; its timestamp, or 0. */
static int64_t put(int key, int *leader)
{
    char req[256];
    snprintf(req, sizeof req,
             "{\"group\":%d,\"txn\":%d,\"prio\":%lld,\"op\":\"commit\",\"nreads\":0,"
             "\"writes\":[{\"key\":\"k%03d\",\"value\":\"v%03d\"}]}",
             GROUP, 500000 + key, (long long)mr_realtime_ns(), key, key);
    for (int tries = 0; tries < 40; tries++) {
        json_t *r = tc_request(*leader, ND_MSG_TXN, req);
        int64_t ts = json_is_true(json_object_get(r, "ok"))
                         ? (int64_t)json_integer_value(json_object_get(r, "ts"))
                         : 0;
        json_decref(r);
        if (ts)
            return ts;
        sleep_ms(100);
        int l = tc_wait_leader(GROUP, -1, 5000);
        if (l >= 0)
            *leader = l;
    }
    return 0;
}

/* The rows of a snapshot scan at node i at ts, or NULL. */
static json_t *scan_at(int i, int64_t ts)
{
    char req[160];
    snprintf(req, sizeof req, "{\"group\":%d,\"key\":\"k\",\"end\":\"l\",\"ts\":%lld}", GROUP,
             (long long)ts);
    json_t *r = tc_request(i, ND_MSG_SNAPREAD, req);
    json_t *rows = json_is_true(json_object_get(r, "ok")) ? json_object_get(r, "rows") : NULL;
    json_incref(rows);
    json_decref(r);
    return rows;
}

static void catchup_body(const char *px_msg_max)
{
    CHECK_EQ(tc_setup(NNODES, "catchup"), 0);
    setenv("MERIDIAN_TEST_SNAPSHOT_EVERY", "10", 1);
    if (px_msg_max)
        setenv("MERIDIAN_TEST_PX_MSG_MAX", px_msg_max, 1);
    else
        unsetenv("MERIDIAN_TEST_PX_MSG_MAX");
    for (int i = 0; i < NNODES; i++)
        tc_start(i);
    CHECK_EQ(tc_init(1), 0);
    int leader = tc_wait_leader(GROUP, -1, 20000);
    CHECK(leader >= 0);
    for (int k = 0; k < BEFORE; k++)
        CHECK(put(k, &leader) > 0);
    int down = (leader + 1) % NNODES;
    tc_kill(down);
    int64_t last = 0;
    for (int k = BEFORE; k < BEFORE + AFTER; k++) {
        last = put(k, &leader);
        CHECKF(last > 0, "commit %d failed", k);
    }
    tc_start(down);
    /* The restarted replica serves the read at `last` once it has caught up. */
    json_t *rows = NULL;
    for (int tries = 0; tries < 100 && (!rows || json_array_size(rows) != BEFORE + AFTER);
         tries++) {
        json_decref(rows);
        rows = scan_at(down, last);
        if (!rows || json_array_size(rows) != BEFORE + AFTER)
            sleep_ms(200);
    }
    CHECKF(rows && json_array_size(rows) == BEFORE + AFTER,
           "the restarted replica serves %zu of %d rows at the last commit",
           rows ? json_array_size(rows) : 0, BEFORE + AFTER);
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *row = json_array_get(rows, i);
        char want[32];
        snprintf(want, sizeof want, "v%03zu", i);
        CHECK_STR(json_string_value(json_object_get(row, "value")), want);
    }
    json_decref(rows);
    /* It took part in the compaction path: its status shows the same applied
     * data as a replica that never went down. */
    json_t *other = scan_at(leader, last);
    CHECK(other && json_array_size(other) == BEFORE + AFTER);
    json_decref(other);
    for (int i = 0; i < NNODES; i++)
        CHECKF(tc_term(i), "node %d did not stop cleanly", i);
}

TEST(snapshot_catchup_carries_the_tablet)
{
    catchup_body(NULL);
    tc_teardown(test_failed_flag);
}

/* The same with 4 KiB Paxos messages: the snapshot comes in chunks and the log
 * in many LEARNs, through the real transport and bundles. */
TEST(catchup_in_small_messages)
{
    catchup_body("4096");
    tc_teardown(test_failed_flag);
}

TEST_MAIN(TEST_CASE(snapshot_catchup_carries_the_tablet), TEST_CASE(catchup_in_small_messages))
