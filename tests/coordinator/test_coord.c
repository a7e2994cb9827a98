/* Unit tests of the two-phase commit bookkeeping (coordinator/co.h). */
#include <string.h>

#include "coordinator/co.h"
#include "tests/test.h"

TEST(init_validates_participants)
{
    co_votes v;
    mr_err e;
    uint64_t one[] = {2};
    CHECK_EQ(co_init(&v, 2, one, 1, &e), MR_EINVAL); /* one group: no 2PC */
    uint64_t noself[] = {3, 4};
    CHECK_EQ(co_init(&v, 2, noself, 2, &e), MR_EINVAL);
    CHECK(strstr(mr_err_msg(&e), "not a participant") != NULL);
    uint64_t dup[] = {2, 3, 3};
    CHECK_EQ(co_init(&v, 2, dup, 3, &e), MR_EINVAL);
    uint64_t zero[] = {2, 0};
    CHECK_EQ(co_init(&v, 2, zero, 2, &e), MR_EINVAL);
    uint64_t many[CO_MAX_PARTS + 1];
    for (int i = 0; i <= CO_MAX_PARTS; i++)
        many[i] = (uint64_t)i + 2;
    CHECK_EQ(co_init(&v, 2, many, CO_MAX_PARTS + 1, &e), MR_EINVAL);
    CHECK_EQ(co_init(&v, 2, many, CO_MAX_PARTS, &e), MR_OK);
}

TEST(all_yes_commits_above_every_prepare)
{
    co_votes v;
    mr_err e;
    uint64_t parts[] = {3, 2, 4};
    CHECK_EQ(co_init(&v, 2, parts, 3, &e), MR_OK);
    CHECK_EQ(co_verdict_of(&v), CO_WAITING);
    CHECK_EQ(co_vote(&v, 3, true, 500), CO_WAITING);
    CHECK_EQ(co_vote(&v, 3, true, 900), CO_WAITING); /* a repeat changes nothing */
    CHECK_EQ(v.max_prepare_ts, 500);
    CHECK_EQ(co_vote(&v, 7, true, 10000), CO_WAITING); /* not a participant: ignored */
    CHECK_EQ(co_vote(&v, 2, false, 0), CO_WAITING);    /* the coordinator does not vote */
    CHECK_EQ(co_vote(&v, 4, true, 700), CO_COMMIT);
    CHECK_EQ(v.max_prepare_ts, 700);
}

TEST(one_no_aborts)
{
    co_votes v;
    mr_err e;
    uint64_t parts[] = {2, 3, 4};
    CHECK_EQ(co_init(&v, 2, parts, 3, &e), MR_OK);
    CHECK_EQ(co_vote(&v, 3, true, 5), CO_WAITING);
    CHECK_EQ(co_vote(&v, 4, false, 0), CO_ABORT);
    CHECK_EQ(co_vote(&v, 4, true, 6), CO_ABORT); /* a no is final */
}

TEST(decision_record_round_trip_and_corruption)
{
    co_decision d = {.commit = true, .ts = 1800000000123456789LL, .nparts = 3, .parts = {2, 9, 4}};
    uint8_t buf[CO_DECISION_MAX];
    size_t len = co_decision_encode(&d, buf);
    CHECK_EQ(len, 13u + 24u);
    co_decision back;
    mr_err e;
    CHECK_EQ(co_decision_decode(buf, len, &back, &e), MR_OK);
    CHECK(back.commit);
    CHECK_EQ(back.ts, d.ts);
    CHECK_EQ(back.nparts, 3u);
    CHECK_EQ(back.parts[1], 9u);
    /* Integers big-endian (common/mr_codec.h): nparts, then the first participant. */
    static const uint8_t want[12] = {0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 2};
    CHECK(memcmp(buf + 9, want, sizeof want) == 0);
    CHECK_EQ(co_decision_decode(buf, len - 1, &back, &e), MR_ECORRUPT);
    buf[0] = 7;
    CHECK_EQ(co_decision_decode(buf, len, &back, &e), MR_ECORRUPT);
    buf[0] = 0;
    buf[9] = 200; /* participant count beyond the limit */
    CHECK_EQ(co_decision_decode(buf, len, &back, &e), MR_ECORRUPT);
    co_decision ab = {.commit = false};
    len = co_decision_encode(&ab, buf);
    CHECK_EQ(co_decision_decode(buf, len, &back, &e), MR_OK);
    CHECK(!back.commit);
}

TEST_MAIN(TEST_CASE(init_validates_participants), TEST_CASE(all_yes_commits_above_every_prepare),
          TEST_CASE(one_no_aborts), TEST_CASE(decision_record_round_trip_and_corruption))
