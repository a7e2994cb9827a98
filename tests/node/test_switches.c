/* Test switches (tablet/node/nd_test.h): read once from the environment, named
 * where status and /metrics show them, and an unknown name refuses to start. */
#include <stdlib.h>

#include "tablet/node/nd_test.h"
#include "tests/test.h"

static void clear_env(void)
{
    unsetenv("MERIDIAN_TEST_BREAK");
    unsetenv("MERIDIAN_TEST_FAULTS");
    unsetenv("MERIDIAN_TEST_SNAPSHOT_EVERY");
    unsetenv("MERIDIAN_CLOCK_OFFSET");
    unsetenv("MERIDIAN_CLOCK_UNHEALTHY");
    unsetenv("MERIDIAN_TEST_REPLY_MAX");
    unsetenv("MERIDIAN_TEST_PX_MSG_MAX");
}

TEST(none_by_default)
{
    clear_env();
    nd_test_switches s;
    mr_err err;
    CHECK_EQ(nd_test_switches_load(&s, &err), MR_OK);
    const char *names[16];
    CHECK_EQ(nd_test_switches_names(&s, names, 16), 0);
    json_t *a = nd_test_switches_json(&s);
    CHECK(json_is_array(a) && json_array_size(a) == 0);
    json_decref(a);
}

TEST(every_switch_is_named)
{
    clear_env();
    setenv("MERIDIAN_TEST_BREAK", "no-commit-wait,stale-reads", 1);
    setenv("MERIDIAN_TEST_FAULTS", "1", 1);
    setenv("MERIDIAN_TEST_SNAPSHOT_EVERY", "10", 1);
    setenv("MERIDIAN_CLOCK_OFFSET", "5ms", 1);
    nd_test_switches s;
    mr_err err;
    CHECK_EQ(nd_test_switches_load(&s, &err), MR_OK);
    CHECK(s.breaks == (ND_BREAK_NO_COMMIT_WAIT | ND_BREAK_STALE_READS));
    CHECK(s.faults);
    CHECK_EQ(s.snapshot_every, 10);
    const char *names[16];
    CHECK_EQ(nd_test_switches_names(&s, names, 16), 5);
    CHECK_STR(names[0], "stale-reads");
    CHECK_STR(names[1], "no-commit-wait");
    CHECK_STR(names[2], "faults");
    CHECK_STR(names[3], "snapshot-every");
    CHECK_STR(names[4], "clock-offset");
    /* Read once: changing the environment later changes nothing loaded. */
    unsetenv("MERIDIAN_TEST_BREAK");
    CHECK(s.breaks & ND_BREAK_NO_COMMIT_WAIT);
    clear_env();
}

TEST(unknown_or_malformed_switches_refuse)
{
    clear_env();
    nd_test_switches s;
    mr_err err;
    setenv("MERIDIAN_TEST_BREAK", "no-commit-wait,no-such-thing", 1);
    CHECK_EQ(nd_test_switches_load(&s, &err), MR_EINVAL);
    CHECK(strstr(mr_err_msg(&err), "no-such-thing") != NULL);
    clear_env();
    setenv("MERIDIAN_TEST_SNAPSHOT_EVERY", "ten", 1);
    CHECK_EQ(nd_test_switches_load(&s, &err), MR_EINVAL);
    clear_env();
    setenv("MERIDIAN_TEST_REPLY_MAX", "100", 1); /* under 256 bytes */
    CHECK_EQ(nd_test_switches_load(&s, &err), MR_EINVAL);
    clear_env();
    setenv("MERIDIAN_TEST_PX_MSG_MAX", "99999999999", 1); /* over the default */
    CHECK_EQ(nd_test_switches_load(&s, &err), MR_EINVAL);
    clear_env();
    setenv("MERIDIAN_TEST_REPLY_MAX", "65536", 1);
    setenv("MERIDIAN_TEST_PX_MSG_MAX", "4096", 1);
    CHECK_EQ(nd_test_switches_load(&s, &err), MR_OK);
    CHECK_EQ(s.reply_max, 65536);
    CHECK_EQ(s.px_msg_max, 4096);
    const char *names[16];
    CHECK_EQ(nd_test_switches_names(&s, names, 16), 2);
    CHECK_STR(names[0], "reply-max");
    CHECK_STR(names[1], "px-msg-max");
    clear_env();
    setenv("MERIDIAN_TEST_FAULTS", "yes", 1); /* only "1" turns faults on */
    CHECK_EQ(nd_test_switches_load(&s, &err), MR_OK);
    CHECK(!s.faults);
    clear_env();
}

TEST_MAIN(TEST_CASE(none_by_default), TEST_CASE(every_switch_is_named),
          TEST_CASE(unknown_or_malformed_switches_refuse))
