/* ND_MSG_PX bundles: a peer's queued Paxos messages are cut into frames under the limit. */
#include <stdlib.h>
#include <string.h>

#include "tablet/node/nd_int.h"
#include "tests/test.h"

/* Queues n items of the given payload lengths as [u32 len][bytes]. */
static size_t queue(uint8_t *buf, const uint32_t *lens, int n)
{
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        put32(buf + off, lens[i]);
        memset(buf + off + 4, i + 1, lens[i]);
        off += 4 + lens[i];
    }
    return off;
}

TEST(bundles_split_into_frames_under_the_limit)
{
    enum { MAX = 1000 };
    uint32_t lens[] = {300, 300, 300, 100, 900, 10, 10, 500};
    static uint8_t buf[4096];
    size_t len = queue(buf, lens, 8);
    size_t off = 0;
    uint32_t counts[8], frames = 0;
    while (off < len && frames < 8) {
        size_t end = nd_bundle_cut(buf, len, off, MAX, &counts[frames]);
        CHECK(end > off && counts[frames] >= 1);
        CHECK(ND_PX_HDR + (end - off) <= MAX);
        frames++;
        off = end;
    }
    CHECK_EQ(off, len);
    /* 300 300 300 | 100 (900 does not fit after it) | 900 10 10 | 500 */
    CHECK_EQ(frames, 4);
    CHECK(counts[0] == 3 && counts[1] == 1 && counts[2] == 3 && counts[3] == 1);
}

TEST(one_frame_when_everything_fits)
{
    uint32_t lens[] = {10, 20, 30};
    static uint8_t buf[256];
    size_t len = queue(buf, lens, 3);
    uint32_t count;
    CHECK_EQ(nd_bundle_cut(buf, len, 0, ND_PX_FRAME_MAX, &count), len);
    CHECK_EQ(count, 3);
    CHECK_EQ(nd_bundle_cut(buf, 0, 0, ND_PX_FRAME_MAX, &count), 0); /* an empty ping frame */
    CHECK_EQ(count, 0);
}

TEST_MAIN(TEST_CASE(bundles_split_into_frames_under_the_limit),
          TEST_CASE(one_frame_when_everything_fits))
