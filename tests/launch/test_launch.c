/* Integration: the cluster launcher itself (launch/cluster.h) with the options no other suite
 * takes: a private chronyd pair as the nodes' clock, the harness's one-based layout, the
 * nodes' environment, SIGTERM and restart of the same node. */
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "launch/chronyd.h"
#include "launch/cluster.h"
#include "launch/proc.h"
#include "tablet/node/nd.h"
#include "tests/test.h"

static const char *const env[] = {"MERIDIAN_TEST_FAULTS=1", "MERIDIAN_TEST_BREAK", NULL};

/* 0 when node 0 leads meta and the data group within 30 s; its status in *st. */
static int lead(lc_cluster *c, json_t **st)
{
    int leader[3];
    mr_err err;
    if (lc_wait_leaders(c, leader, 3, 30000, &err) != MR_OK) {
        fprintf(stderr, "  %s\n", mr_err_msg(&err));
        return -1;
    }
    return lc_rpc(c->tls, c->nodes[0].addr, ND_MSG_STATUS, "{}", 5000, st, &err) == MR_OK ? 0 : -1;
}

TEST(chrony_clock_term_and_restart)
{
    if (!chronyd_path())
        SKIP("chronyd is not installed");
    CHECK(proc_meridian_bin() != NULL);
    setenv("MERIDIAN_TEST_BREAK", "stale-reads", 1); /* ours only: the env option removes it */
    lc_cluster c;
    lc_opts o = {.prefix = "meridian-launch",
                 .nodes = 1,
                 .one_based = true,
                 .chrony = true,
                 .region = "local",
                 .lease = "1s",
                 .env = env};
    mr_err err;
    mr_err_clear(&err);
    int rc = lc_setup(&c, &o, &err);
    if (rc == MR_OK && (rc = lc_start_all(&c, &err)) == MR_OK &&
        (rc = lc_wait_up(&c, 30000, &err)) == MR_OK)
        rc = lc_init(&c, 1, 0, NULL, &err);
    unsetenv("MERIDIAN_TEST_BREAK");
    json_t *st = NULL;
    bool up = rc == MR_OK && lead(&c, &st) == 0;
    if (rc != MR_OK)
        fprintf(stderr, "  %s\n", mr_err_msg(&err));
    const char *cs = json_string_value(json_object_get(json_object_get(st, "clock"), "status"));
    char clock[32];
    snprintf(clock, sizeof clock, "%s", cs ? cs : "?");
    json_t *sw = json_object_get(st, "test_switches");
    bool only_faults =
        json_array_size(sw) == 1 && strcmp(json_string_value(json_array_get(sw, 0)), "faults") == 0;
    char log[LC_PATH + 32];
    snprintf(log, sizeof log, "%s/n1.log", c.dir);
    bool one_based = access(log, R_OK) == 0 && strcmp(c.nodes[0].data + strlen(c.dir), "/n1") == 0;
    json_decref(st);
    st = NULL;
    bool clean = up && lc_node_term(&c, 0, 10000);
    bool again = clean && lc_node_start(&c, 0, &err) == MR_OK && lead(&c, &st) == 0;
    json_decref(st);
    int starts = c.nodes[0].starts;
    char dir[LC_PATH];
    snprintf(dir, sizeof dir, "%s", c.dir);
    lc_destroy(&c, !(up && again));
    CHECKF(up, "the chrony-clocked node never led its groups");
    CHECKF(strcmp(clock, "synchronized") == 0, "clock %s", clock);
    CHECKF(only_faults, "the node's test switches are not exactly [faults]");
    CHECK(one_based);
    CHECKF(clean, "SIGTERM did not stop the node with status 0");
    CHECKF(again, "the restarted node never led its groups");
    CHECK_EQ(starts, 2);
    CHECKF(access(dir, F_OK) != 0, "%s was not removed", dir);
}

TEST_MAIN(TEST_CASE(chrony_clock_term_and_restart))
