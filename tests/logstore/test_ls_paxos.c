/* Tests of the px <-> log store bridge (tablet/logstore/ls_paxos.h): a batch
 * of persist actions staged and synced once, loaded back as px_durable. */
#include "tablet/logstore/ls_paxos.h"
#include "tests/test.h"

#include <stdlib.h>
#include <unistd.h>

static char dir[64];
static char db[128];

static void tmp_setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/ls-px-test-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    snprintf(db, sizeof db, "%s/log.db", dir);
}

static void tmp_cleanup(void)
{
    char p[160];
    const char *sfx[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", db, sfx[i]);
        unlink(p);
    }
    rmdir(dir);
}

static px_action persist_action(px_persist p)
{
    px_action a;
    memset(&a, 0, sizeof a);
    a.kind = PX_ACT_PERSIST;
    a.persist = p;
    return a;
}

static px_action entry_action(uint64_t slot, uint64_t round, int64_t ts, const char *data)
{
    px_persist p;
    memset(&p, 0, sizeof p);
    p.kind = PX_PERSIST_ENTRY;
    p.entry = (px_entry){.slot = slot,
                         .ballot = {round, 2},
                         .ts = ts,
                         .kind = PX_ENTRY_DATA,
                         .len = (uint32_t)strlen(data),
                         .data = (const uint8_t *)data};
    return persist_action(p);
}

TEST(meta_codec_roundtrip)
{
    px_snapshot_meta m = {.slot = 77, .last_ts = -123456789, .nconfigs = 2};
    m.configs[0] = (px_config_at){.effect_slot = 10, .config = {3, {1, 2, 3}}};
    m.configs[1] = (px_config_at){.effect_slot = 80, .config = {4, {1, 2, 3, 63}}};
    unsigned char buf[LS_PX_META_MAX];
    size_t n = ls_px_meta_encode(&m, buf);
    px_snapshot_meta back;
    mr_err err;
    CHECK_EQ(ls_px_meta_decode(buf, n, &back, &err), 0);
    CHECK_EQ(back.slot, 77);
    CHECK_EQ(back.last_ts, -123456789);
    CHECK_EQ(back.nconfigs, 2);
    CHECK_EQ(back.configs[1].effect_slot, 80);
    CHECK_EQ(back.configs[1].config.n, 4);
    CHECK_EQ(back.configs[1].config.nodes[3], 63);
    /* Every truncation and a trailing byte are rejected, never misread. */
    for (size_t cut = 0; cut < n; cut++)
        CHECK_EQ(ls_px_meta_decode(buf, cut, &back, &err), MR_ECORRUPT);
    unsigned char longer[LS_PX_META_MAX + 1];
    memcpy(longer, buf, n);
    longer[n] = 0;
    CHECK_EQ(ls_px_meta_decode(longer, n + 1, &back, &err), MR_ECORRUPT);
    /* Version 2, integers big-endian. */
    CHECK_EQ(buf[0], 2);
    static const unsigned char slot77[8] = {0, 0, 0, 0, 0, 0, 0, 77};
    CHECK(memcmp(buf + 1, slot77, 8) == 0);
    /* Another version (1 was little-endian) is refused by name, never misread. */
    buf[0] = 1;
    CHECK_EQ(ls_px_meta_decode(buf, n, &back, &err), MR_ECORRUPT);
    CHECKF(strstr(err.msg, "format version 1, this build reads version 2"), "%s", err.msg);
    buf[0] = 9;
    CHECK_EQ(ls_px_meta_decode(buf, n, &back, &err), MR_ECORRUPT);
}

TEST(batch_persist_and_load)
{
    tmp_setup();
    ls_store *s;
    mr_err err;
    CHECKF(ls_open(db, NULL, &s, &err) == 0, "%s", err.msg);

    px_persist promise = {.kind = PX_PERSIST_PROMISE, .promise = {3, 2}};
    px_persist commit = {.kind = PX_PERSIST_COMMIT, .commit = 2};
    px_action acts[6];
    acts[0] = persist_action(promise);
    acts[1] = entry_action(1, 3, 100, "one");
    acts[2] = entry_action(2, 3, 200, "two");
    memset(&acts[3], 0, sizeof acts[3]);
    acts[3].kind = PX_ACT_SEND; /* ignored by the store */
    acts[4] = entry_action(3, 3, 300, "three");
    acts[5] = persist_action(commit);
    px_batch b = {.actions = acts, .n = 6, .persist_seq = 1};
    CHECKF(ls_px_persist(s, 9, &b, &err) == 0, "%s", err.msg);
    CHECK_EQ(ls_pending(s), 0);
    ls_close(s);

    CHECKF(ls_open(db, NULL, &s, &err) == 0, "%s", err.msg);
    ls_px_state st;
    CHECKF(ls_px_load(s, 9, &st, &err) == 0, "%s", err.msg);
    CHECK_EQ(st.d.promise.round, 3);
    CHECK_EQ(st.d.promise.node, 2);
    CHECK_EQ(st.d.commit, 2);
    CHECK_EQ(st.d.meta.slot, 0);
    CHECK_EQ(st.d.nentries, 3);
    CHECK_EQ(st.d.entries[2].slot, 3);
    CHECK_EQ(st.d.entries[2].ts, 300);
    CHECK_EQ(st.d.entries[2].kind, PX_ENTRY_DATA);
    CHECK_EQ(st.d.entries[2].ballot.round, 3);
    CHECK(st.d.entries[2].len == 5 && memcmp(st.d.entries[2].data, "three", 5) == 0);
    ls_px_state_free(&st);

    /* Snapshot + truncate in one batch, with a re-accept at a higher ballot. */
    px_persist snap = {.kind = PX_PERSIST_SNAPSHOT,
                       .meta = {.slot = 2, .last_ts = 200, .nconfigs = 1},
                       .snap = (const uint8_t *)"APP",
                       .snap_len = 3};
    snap.meta.configs[0] = (px_config_at){.effect_slot = 1, .config = {3, {1, 2, 3}}};
    px_persist trunc = {.kind = PX_PERSIST_TRUNCATE, .upto = 2};
    px_action acts2[3] = {persist_action(snap), persist_action(trunc),
                          entry_action(3, 4, 301, "THREE")};
    px_batch b2 = {.actions = acts2, .n = 3, .persist_seq = 2};
    CHECKF(ls_px_persist(s, 9, &b2, &err) == 0, "%s", err.msg);
    CHECKF(ls_px_load(s, 9, &st, &err) == 0, "%s", err.msg);
    CHECK_EQ(st.d.meta.slot, 2);
    CHECK_EQ(st.d.meta.nconfigs, 1);
    CHECK_EQ(st.d.meta.configs[0].config.n, 3);
    CHECK(st.d.snap_len == 3 && memcmp(st.d.snap, "APP", 3) == 0);
    CHECK_EQ(st.d.nentries, 1);
    CHECK_EQ(st.d.entries[0].ballot.round, 4);
    CHECK(memcmp(st.d.entries[0].data, "THREE", 5) == 0);
    ls_px_state_free(&st);

    /* A truncation past the snapshot is a core bug: refused, batch rolled back. */
    px_persist bad = {.kind = PX_PERSIST_TRUNCATE, .upto = 3};
    px_action acts3[2] = {entry_action(4, 4, 400, "four"), persist_action(bad)};
    px_batch b3 = {.actions = acts3, .n = 2, .persist_seq = 3};
    CHECK_EQ(ls_px_persist(s, 9, &b3, &err), MR_EINVAL);
    CHECK(strstr(err.msg, "group 9: persist action 1") != NULL);
    CHECK_EQ(ls_pending(s), 0);
    CHECKF(ls_px_load(s, 9, &st, &err) == 0, "%s", err.msg);
    CHECK_EQ(st.d.nentries, 1); /* slot 4 did not survive the rollback */
    ls_px_state_free(&st);

    /* An unknown persist kind is refused. */
    px_persist weird = {.kind = (px_persist_kind)99};
    px_action a4 = persist_action(weird);
    px_batch b4 = {.actions = &a4, .n = 1};
    CHECK_EQ(ls_px_persist(s, 9, &b4, &err), MR_EINVAL);
    CHECK_EQ(ls_px_persist(s, 9, NULL, &err), MR_EINVAL);

    /* Snapshot metadata that passes the store's checksum but does not decode. */
    CHECK(ls_install_snapshot(s, 10, 5, "junk", 4, "x", 1, &err) == 0);
    CHECK(ls_sync(s, &err) == 0);
    CHECK_EQ(ls_px_load(s, 10, &st, &err), MR_ECORRUPT);
    CHECK(strstr(err.msg, "snapshot metadata") != NULL);

    /* A group never written loads empty. */
    CHECKF(ls_px_load(s, 11, &st, &err) == 0, "%s", err.msg);
    CHECK(st.d.nentries == 0 && st.d.commit == 0 && st.d.promise.round == 0);
    ls_px_state_free(&st);
    ls_close(s);
    tmp_cleanup();
}

/* Many groups staged, one sync: the host-side group commit. */
TEST(many_groups_one_sync)
{
    tmp_setup();
    ls_store *s;
    mr_err err;
    CHECKF(ls_open(db, NULL, &s, &err) == 0, "%s", err.msg);
    for (uint64_t g = 1; g <= 50; g++) {
        px_action acts[2] = {entry_action(1, 1, 10, "a"), entry_action(2, 1, 20, "b")};
        CHECKF(ls_px_stage(s, g, acts, 2, &err) == 0, "%s", err.msg);
    }
    CHECK_EQ(ls_pending(s), 100);
    CHECKF(ls_sync(s, &err) == 0, "%s", err.msg);
    ls_close(s);
    CHECKF(ls_open(db, NULL, &s, &err) == 0, "%s", err.msg);
    for (uint64_t g = 1; g <= 50; g++) {
        ls_px_state st;
        CHECKF(ls_px_load(s, g, &st, &err) == 0, "%s", err.msg);
        CHECK_EQ(st.d.nentries, 2);
        ls_px_state_free(&st);
    }
    ls_close(s);
    tmp_cleanup();
}

TEST_MAIN(TEST_CASE(meta_codec_roundtrip), TEST_CASE(batch_persist_and_load),
          TEST_CASE(many_groups_one_sync))
