/* Tests of the durable Paxos log (tablet/logstore/ls.h): round trips, restart
 * recovery, group commit (one fsync per batch, exactly the synced state
 * surviving kill -9), truncation behind snapshots, corruption detection,
 * malformed input, and a full disk or quota. */
#include "tablet/logstore/ls.h"
#include "common/mr_crc32c.h"
#include "tests/logstore/faultvfs.h"
#include "tests/test.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sched.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- Helpers ---- */

static char dir[64];
static char db[128];

static void tmp_setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/ls-test-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    snprintf(db, sizeof db, "%s/log.db", dir);
}

static void tmp_cleanup(void)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        char p[400];
        while ((de = readdir(d))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* A deterministic value for (group, slot, version), of varying length. */
static size_t make_val(char *buf, size_t cap, uint64_t group, uint64_t slot, int version)
{
    int n = snprintf(buf, cap, "value g=%llu s=%llu v=%d ", (unsigned long long)group,
                     (unsigned long long)slot, version);
    size_t len = (size_t)n + (slot * 7 + (uint64_t)version) % 50;
    for (size_t i = (size_t)n; i < len && i < cap; i++)
        buf[i] = (char)('a' + (i + slot) % 26);
    return len < cap ? len : cap;
}

static ls_entry mk_entry(char *buf, size_t cap, uint64_t group, uint64_t slot, int version)
{
    ls_entry e = {.slot = slot,
                  .ballot = {(uint64_t)version + 1, 3},
                  .ts = (int64_t)(1000 * slot + (uint64_t)version),
                  .kind = (uint32_t)(slot % 3)};
    e.len = make_val(buf, cap, group, slot, version);
    e.value = buf;
    return e;
}

/* Checks an entry read back equals mk_entry(group, slot, version). */
static int entry_is(const ls_entry *got, uint64_t group, uint64_t slot, int version)
{
    char buf[256];
    ls_entry want = mk_entry(buf, sizeof buf, group, slot, version);
    return got->slot == want.slot && got->ballot.round == want.ballot.round &&
           got->ballot.node == want.ballot.node && got->ts == want.ts && got->kind == want.kind &&
           got->len == want.len && memcmp(got->value, want.value, want.len) == 0;
}

static int put(ls_store *s, uint64_t group, uint64_t slot, int version, mr_err *err)
{
    char buf[256];
    ls_entry e = mk_entry(buf, sizeof buf, group, slot, version);
    return ls_put_entry(s, group, &e, err);
}

#define OPEN(s)                                                                                    \
    do {                                                                                           \
        mr_err oe_;                                                                                \
        int orc_ = ls_open(db, NULL, &(s), &oe_);                                                  \
        CHECKF(orc_ == 0, "ls_open: %s", mr_err_msg(&oe_));                                        \
    } while (0)

#define OK(call)                                                                                   \
    do {                                                                                           \
        mr_err ke_;                                                                                \
        mr_err_clear(&ke_);                                                                        \
        int krc_ = (call);                                                                         \
        CHECKF(krc_ == 0, "%s -> %s: %s", #call, mr_strerror(krc_), ke_.msg);                      \
    } while (0)
/* OK() passes its own mr_err as `E` to the call. */
#define E (&ke_)

/* ---- CRC32C ---- */

TEST(crc32c_vectors)
{
    CHECK_EQ(mr_crc32c(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ(mr_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    unsigned char zeros[32] = {0}, ones[32];
    memset(ones, 0xff, sizeof ones);
    /* RFC 3720 B.4 test vectors. */
    CHECK_EQ(mr_crc32c(0, zeros, 32), 0x8A9136AAu);
    CHECK_EQ(mr_crc32c(0, ones, 32), 0x62A8AB43u);
    /* Hardware and table paths agree at every alignment and length, and
     * incremental use equals one pass. */
    unsigned char buf[300];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 131 + 7);
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; n + off <= sizeof buf; n += 13) {
            uint32_t a = mr_crc32c(0, buf + off, n), b = mr_crc32c_sw(0, buf + off, n);
            CHECK_EQ(a, b);
            CHECK_EQ(mr_crc32c(mr_crc32c(0, buf + off, n / 2), buf + off + n / 2, n - n / 2), a);
        }
}

/* ---- Round trips ---- */

TEST(roundtrip)
{
    tmp_setup();
    ls_store *s;
    OPEN(s);
    OK(ls_set_promise(s, 7, (ls_ballot){5, 2}, E));
    OK(ls_put_meta(s, 7, "lease", "abc", 3, E));
    OK(ls_put_meta(s, 7, "empty", NULL, 0, E));
    for (uint64_t slot = 1; slot <= 20; slot++)
        OK(put(s, 7, slot, 0, E));
    char zero_buf[1];
    ls_entry z = {.slot = 21, .ballot = {1, 1}, .ts = -5, .value = zero_buf, .len = 0};
    OK(ls_put_entry(s, 7, &z, E));
    OK(put(s, 7, 3, 1, E)); /* a re-accept overwrites */
    OK(ls_set_chosen(s, 7, 10, E));
    OK(ls_put_config(s, 7, 1, "cfg1", 4, E));
    CHECK_EQ(ls_pending(s), 27);

    /* Reads see this handle's staged writes before the sync... */
    ls_entry e;
    OK(ls_get_entry(s, 7, 3, &e, E));
    CHECK(entry_is(&e, 7, 3, 1));
    free((void *)e.value);
    OK(ls_sync(s, E));
    CHECK_EQ(ls_pending(s), 0);
    OK(ls_sync(s, E)); /* nothing staged: a no-op */

    /* ...and after it. */
    OK(ls_get_entry(s, 7, 2, &e, E));
    CHECK(entry_is(&e, 7, 2, 0));
    free((void *)e.value);
    OK(ls_get_entry(s, 7, 21, &e, E));
    CHECK_EQ(e.len, 0);
    CHECK_EQ(e.ts, -5);
    free((void *)e.value);
    mr_err err;
    CHECK_EQ(ls_get_entry(s, 7, 22, &e, &err), MR_ENOTFOUND);
    CHECK_EQ(ls_get_entry(s, 8, 1, &e, &err), MR_ENOTFOUND);

    ls_entry *r;
    size_t n;
    OK(ls_read_range(s, 7, 5, 9, &r, &n, E));
    CHECK_EQ(n, 5);
    for (size_t i = 0; i < n; i++)
        CHECK(entry_is(&r[i], 7, 5 + i, 0));
    free(r);
    OK(ls_read_range(s, 7, 9, 5, &r, &n, E));
    CHECK_EQ(n, 0);
    CHECK(r == NULL);

    void *v;
    size_t vlen;
    OK(ls_get_meta(s, 7, "lease", &v, &vlen, E));
    CHECK_EQ(vlen, 3);
    CHECK(memcmp(v, "abc", 3) == 0);
    free(v);
    OK(ls_get_meta(s, 7, "empty", &v, &vlen, E));
    CHECK_EQ(vlen, 0);
    free(v);
    CHECK_EQ(ls_get_meta(s, 7, "nope", &v, &vlen, &err), MR_ENOTFOUND);

    ls_group_state g;
    OK(ls_load_group(s, 7, &g, E));
    CHECK(g.has_promise);
    CHECK_EQ(g.promised.round, 5);
    CHECK_EQ(g.promised.node, 2);
    CHECK_EQ(g.chosen, 10);
    CHECK(!g.has_snapshot);
    CHECK_EQ(g.n_entries, 21);
    CHECK_EQ(g.n_configs, 1);
    CHECK_EQ(g.n_meta, 2);
    CHECK_STR(g.meta[0].key, "empty");
    CHECK_STR(g.meta[1].key, "lease");
    ls_group_state_free(&g);
    OK(ls_verify(s, E));
    ls_close(s);
    tmp_cleanup();
}

/* Counts entries in a scan and stops at a limit, to check early exit. */
typedef struct scan_ctx {
    int seen;
    int stop_at;
    uint64_t last;
} scan_ctx;

static int scan_cb(void *arg, const ls_entry *e)
{
    scan_ctx *c = arg;
    if (c->seen && e->slot <= c->last)
        return MR_EPROTO; /* out of order */
    c->last = e->slot;
    c->seen++;
    return c->seen == c->stop_at ? 42 : 0;
}

TEST(scan_iterates_in_order)
{
    tmp_setup();
    ls_store *s;
    OPEN(s);
    for (int slot = 100; slot > 0; slot -= 3)
        OK(put(s, 1, (uint64_t)slot, 0, E));
    OK(put(s, 2, 50, 0, E)); /* another group is not seen */
    OK(ls_sync(s, E));
    scan_ctx c = {0, 0, 0};
    OK(ls_scan(s, 1, 0, UINT64_MAX, scan_cb, &c, E));
    CHECK_EQ(c.seen, 34);
    scan_ctx c2 = {0, 5, 0};
    mr_err err;
    CHECK_EQ(ls_scan(s, 1, 10, 60, scan_cb, &c2, &err), 42);
    CHECK_EQ(c2.seen, 5);
    /* The statement was reset: a new scan works. */
    scan_ctx c3 = {0, 0, 0};
    OK(ls_scan(s, 1, 10, 60, scan_cb, &c3, E));
    CHECK_EQ(c3.seen, 17);
    ls_close(s);
    tmp_cleanup();
}

/* ---- Restart recovery ---- */

TEST(restart_recovery_many_groups)
{
    tmp_setup();
    const uint64_t groups[] = {0, 1, 42, (uint64_t)INT64_MAX + 5, UINT64_MAX};
    const int ng = 5;
    ls_store *s;
    OPEN(s);
    for (int gi = 0; gi < ng; gi++) {
        uint64_t g = groups[gi];
        OK(ls_set_promise(s, g, (ls_ballot){(uint64_t)gi + 1, (uint64_t)gi}, E));
        for (uint64_t slot = 1; slot <= 30; slot++)
            OK(put(s, g, slot, gi, E));
        OK(ls_set_chosen(s, g, 25, E));
        OK(ls_put_config(s, g, 1, "c", 1, E));
        OK(ls_install_snapshot(s, g, 10, "m", 1, "snapshot-bytes", 14, E));
    }
    OK(ls_sync(s, E)); /* one commit for all groups */
    ls_close(s);

    OPEN(s);
    uint64_t *list;
    size_t n;
    OK(ls_list_groups(s, &list, &n, E));
    CHECK_EQ(n, 5);
    free(list);
    for (int gi = 0; gi < ng; gi++) {
        ls_group_state g;
        OK(ls_load_group(s, groups[gi], &g, E));
        CHECK_EQ(g.group, groups[gi]);
        CHECK(g.has_promise);
        CHECK_EQ(g.promised.round, gi + 1);
        CHECK_EQ(g.promised.node, gi);
        CHECK_EQ(g.chosen, 25);
        CHECK(g.has_snapshot);
        CHECK_EQ(g.snap_slot, 10);
        CHECK_EQ(g.snap_len, 14);
        CHECK(memcmp(g.snap, "snapshot-bytes", 14) == 0);
        CHECK_EQ(g.snap_meta_len, 1);
        CHECK_EQ(g.n_entries, 30);
        for (size_t i = 0; i < g.n_entries; i++)
            CHECK(entry_is(&g.entries[i], groups[gi], i + 1, gi));
        ls_group_state_free(&g);
    }
    ls_group_state g;
    OK(ls_load_group(s, 99, &g, E)); /* never written: empty */
    CHECK(!g.has_promise && !g.has_snapshot && g.n_entries == 0 && g.chosen == 0);
    ls_group_state_free(&g);
    ls_close(s);
    tmp_cleanup();
}

TEST(unsynced_writes_lost_on_close)
{
    tmp_setup();
    ls_store *s;
    OPEN(s);
    OK(put(s, 1, 1, 0, E));
    OK(ls_set_promise(s, 1, (ls_ballot){1, 1}, E));
    OK(ls_sync(s, E));
    OK(put(s, 1, 2, 0, E));
    OK(ls_set_promise(s, 1, (ls_ballot){9, 1}, E));
    OK(ls_set_chosen(s, 1, 2, E));
    ls_close(s); /* like a crash: staged writes are discarded */
    OPEN(s);
    ls_group_state g;
    OK(ls_load_group(s, 1, &g, E));
    CHECK_EQ(g.n_entries, 1);
    CHECK_EQ(g.promised.round, 1);
    CHECK_EQ(g.chosen, 0);
    ls_group_state_free(&g);
    /* ls_rollback discards a batch explicitly, too. */
    OK(put(s, 1, 3, 0, E));
    ls_rollback(s);
    CHECK_EQ(ls_pending(s), 0);
    ls_entry e;
    mr_err err;
    CHECK_EQ(ls_get_entry(s, 1, 3, &e, &err), MR_ENOTFOUND);
    ls_close(s);
    tmp_cleanup();
}

/* ---- Group commit ---- */

TEST(group_commit_one_fsync_per_batch)
{
    CHECK(faultvfs_install() == 0);
    tmp_setup();
    ls_store *s;
    OPEN(s);
    /* Warm the WAL up: its first commit also syncs the new WAL header. */
    OK(put(s, 1, 1, 0, E));
    OK(ls_sync(s, E));

    faultvfs.syncs = 0;
    OK(put(s, 1, 2, 0, E));
    CHECK_EQ(faultvfs.syncs, 0); /* staging never syncs */
    OK(ls_sync(s, E));
    long per_commit = faultvfs.syncs;
    /* synchronous=FULL: the commit itself reached the disk. NORMAL would be 0. */
    CHECK(per_commit >= 1);

    /* 1000 writes over 10 groups, then one sync: the same fsyncs as one write. */
    faultvfs.syncs = 0;
    for (uint64_t g = 10; g < 20; g++)
        for (uint64_t slot = 1; slot <= 100; slot++)
            OK(put(s, g, slot, 0, E));
    CHECK_EQ(faultvfs.syncs, 0);
    CHECK_EQ(ls_pending(s), 1000);
    OK(ls_sync(s, E));
    CHECKF(faultvfs.syncs == per_commit, "batch of 1000: %ld syncs, one write: %ld", faultvfs.syncs,
           per_commit);
    printf("  %ld fsync(s) per commit, for 1 write and for 1000 writes over 10 groups\n",
           per_commit);
    ls_close(s);

    OPEN(s);
    for (uint64_t g = 10; g < 20; g++) {
        ls_entry *r;
        size_t n;
        OK(ls_read_range(s, g, 0, UINT64_MAX, &r, &n, E));
        CHECK_EQ(n, 100);
        free(r);
    }
    ls_close(s);
    tmp_cleanup();
    faultvfs_uninstall();
}

/* Child side of the crash tests: writes batch b (1-based) = slots
 * 10(b-1)+1 .. 10b of groups 1 and 2, plus a promise of round b. */
static int write_batch(ls_store *s, int b, mr_err *err)
{
    int rc = 0;
    for (uint64_t g = 1; g <= 2 && !rc; g++) {
        for (int i = 1; i <= 10 && !rc; i++)
            rc = put(s, g, (uint64_t)(10 * (b - 1) + i), b, err);
        if (!rc)
            rc = ls_set_promise(s, g, (ls_ballot){(uint64_t)b, 1}, err);
        if (!rc)
            rc = ls_set_chosen(s, g, (uint64_t)(10 * b), err);
    }
    return rc;
}

/* Checks the store holds exactly batches 1..k, each complete. */
static int holds_exactly(ls_store *s, int k, char *why, size_t wlen)
{
    mr_err err;
    for (uint64_t g = 1; g <= 2; g++) {
        ls_group_state st;
        if (ls_load_group(s, g, &st, &err)) {
            snprintf(why, wlen, "load: %s", mr_err_msg(&err));
            return 0;
        }
        int ok = st.n_entries == (size_t)(10 * k) && st.chosen == (uint64_t)(10 * k) &&
                 (k == 0 ? !st.has_promise : st.promised.round == (uint64_t)k);
        for (size_t i = 0; ok && i < st.n_entries; i++)
            ok = entry_is(&st.entries[i], g, i + 1, (int)(i / 10) + 1);
        if (!ok)
            snprintf(why, wlen, "group %llu: %zu entries, chosen %llu, promise %llu; want batch %d",
                     (unsigned long long)g, st.n_entries, (unsigned long long)st.chosen,
                     (unsigned long long)st.promised.round, k);
        ls_group_state_free(&st);
        if (!ok)
            return 0;
    }
    return 1;
}

/* The child: `synced` batches each followed by ls_sync (reporting each on the
 * pipe), then `staged` more batches without a sync, then waits to be killed. */
static void crash_child(int fd, int synced, int staged)
{
    ls_store *s;
    mr_err err;
    if (ls_open(db, NULL, &s, &err))
        _exit(2);
    int b = 1;
    for (; b <= synced; b++) {
        if (write_batch(s, b, &err) || ls_sync(s, &err))
            _exit(3);
        if (write(fd, &b, sizeof b) != sizeof b)
            _exit(4);
    }
    for (; b <= synced + staged; b++)
        if (write_batch(s, b, &err))
            _exit(5);
    int done_mark = -1;
    if (write(fd, &done_mark, sizeof done_mark) != sizeof done_mark)
        _exit(4);
    for (;;)
        pause();
}

TEST(crash_kill9_keeps_exactly_synced)
{
    tmp_setup();
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        crash_child(p[1], 5, 3);
    }
    close(p[1]);
    int last = 0, v;
    while (read(p[0], &v, sizeof v) == sizeof v && v != -1)
        last = v;
    CHECK_EQ(last, 5);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    close(p[0]);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    ls_store *s;
    OPEN(s);
    char why[256] = "";
    CHECKF(holds_exactly(s, 5, why, sizeof why), "%s", why);
    OK(ls_verify(s, E));
    /* The recovered store takes new writes. */
    mr_err err;
    CHECK(write_batch(s, 6, &err) == 0);
    OK(ls_sync(s, E));
    ls_close(s);
    OPEN(s);
    CHECKF(holds_exactly(s, 6, why, sizeof why), "%s", why);
    ls_close(s);
    tmp_cleanup();
}

/* A kill at an arbitrary moment: the store must hold some whole number of
 * batches k with last_reported <= k <= last_reported + 1 (the child may
 * have synced one more batch than it managed to report). */
TEST(crash_kill9_mid_stream_is_atomic)
{
    for (int round = 0; round < 4; round++) {
        tmp_setup();
        int p[2];
        CHECK(pipe(p) == 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            crash_child(p[1], 1000000, 0);
        }
        close(p[1]);
        int last = 0, v;
        int want = 3 + 4 * round; /* kill after a varying number of batches */
        while (last < want && read(p[0], &v, sizeof v) == sizeof v)
            last = v;
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        /* Reports already in the pipe are syncs that completed. */
        fcntl(p[0], F_SETFL, O_NONBLOCK);
        while (read(p[0], &v, sizeof v) == sizeof v)
            last = v;
        close(p[0]);
        ls_store *s;
        OPEN(s);
        char why[256] = "";
        int ok =
            holds_exactly(s, last, why, sizeof why) || holds_exactly(s, last + 1, why, sizeof why);
        ls_close(s);
        tmp_cleanup();
        CHECKF(ok, "round %d, last reported %d: %s", round, last, why);
    }
}

/* ---- Truncation and snapshots ---- */

TEST(truncate_behind_snapshot)
{
    tmp_setup();
    ls_store *s;
    OPEN(s);
    for (uint64_t slot = 1; slot <= 100; slot++)
        OK(put(s, 5, slot, 0, E));
    OK(ls_put_config(s, 5, 1, "A", 1, E));
    OK(ls_put_config(s, 5, 30, "B", 1, E));
    OK(ls_put_config(s, 5, 70, "C", 1, E));
    OK(ls_sync(s, E));
    mr_err err;
    /* No snapshot: the log is the only copy, so truncation is refused. */
    CHECK_EQ(ls_truncate_prefix(s, 5, 10, &err), MR_EINVAL);
    CHECK(strstr(err.msg, "snapshot") != NULL);
    OK(ls_install_snapshot(s, 5, 50, "meta", 4, "state@50", 8, E));
    CHECK_EQ(ls_truncate_prefix(s, 5, 60, &err), MR_EINVAL); /* beyond the snapshot */
    OK(ls_truncate_prefix(s, 5, 50, E));
    /* An older snapshot would leave a hole behind the truncation. */
    CHECK_EQ(ls_install_snapshot(s, 5, 40, NULL, 0, "old", 3, &err), MR_EINVAL);
    OK(ls_sync(s, E));
    ls_close(s);

    OPEN(s);
    ls_group_state g;
    OK(ls_load_group(s, 5, &g, E));
    CHECK(g.has_snapshot);
    CHECK_EQ(g.snap_slot, 50);
    CHECK(g.snap_len == 8 && memcmp(g.snap, "state@50", 8) == 0);
    CHECK(g.snap_meta_len == 4 && memcmp(g.snap_meta, "meta", 4) == 0);
    CHECK_EQ(g.n_entries, 50);
    CHECK_EQ(g.entries[0].slot, 51);
    CHECK(entry_is(&g.entries[49], 5, 100, 0));
    /* Config A was superseded by B (in force at 50) and goes; B and C stay. */
    CHECK_EQ(g.n_configs, 2);
    CHECK_EQ(g.configs[0].slot, 30);
    CHECK_EQ(g.configs[1].slot, 70);
    ls_group_state_free(&g);
    /* A newer snapshot replaces it; the same slot again is accepted too. */
    OK(ls_install_snapshot(s, 5, 90, NULL, 0, "state@90", 8, E));
    OK(ls_install_snapshot(s, 5, 90, NULL, 0, "state@90", 8, E));
    OK(ls_truncate_prefix(s, 5, 90, E));
    OK(ls_sync(s, E));
    OK(ls_load_group(s, 5, &g, E));
    CHECK_EQ(g.snap_slot, 90);
    CHECK_EQ(g.snap_meta_len, 0);
    CHECK_EQ(g.n_entries, 10);
    ls_group_state_free(&g);
    ls_close(s);
    tmp_cleanup();
}

TEST(drop_group)
{
    tmp_setup();
    ls_store *s;
    OPEN(s);
    for (uint64_t g = 1; g <= 3; g++) {
        OK(put(s, g, 1, 0, E));
        OK(ls_put_meta(s, g, "k", "v", 1, E));
        OK(ls_install_snapshot(s, g, 1, NULL, 0, "x", 1, E));
    }
    OK(ls_sync(s, E));
    OK(ls_drop_group(s, 2, E));
    OK(ls_sync(s, E));
    uint64_t *list;
    size_t n;
    OK(ls_list_groups(s, &list, &n, E));
    CHECK_EQ(n, 2);
    CHECK(list[0] == 1 && list[1] == 3);
    free(list);
    ls_close(s);
    tmp_cleanup();
}

/* ---- Corruption ---- */

/* Runs SQL on the closed store through a separate SQLite connection. */
static int raw_sql(const char *sql)
{
    sqlite3 *h;
    if (sqlite3_open(db, &h) != SQLITE_OK) {
        sqlite3_close(h);
        return -1;
    }
    int rc = sqlite3_exec(h, sql, NULL, NULL, NULL);
    sqlite3_close(h);
    return rc == SQLITE_OK ? 0 : -1;
}

static int fill_for_corruption(void)
{
    ls_store *s;
    mr_err err;
    if (ls_open(db, NULL, &s, &err))
        return -1;
    int rc = 0;
    for (uint64_t slot = 1; slot <= 10 && !rc; slot++)
        rc = put(s, 3, slot, 0, &err);
    if (!rc)
        rc = ls_set_promise(s, 3, (ls_ballot){4, 1}, &err);
    if (!rc)
        rc = ls_put_meta(s, 3, "k", "meta-value", 10, &err);
    if (!rc)
        rc = ls_install_snapshot(s, 3, 0, "m", 1, "snapshot", 8, &err);
    if (!rc)
        rc = ls_put_config(s, 3, 1, "config", 6, &err);
    if (!rc)
        rc = ls_sync(s, &err);
    ls_close(s);
    return rc;
}

TEST(corruption_via_sqlite_detected)
{
    tmp_setup();
    CHECK(fill_for_corruption() == 0);
    /* Change one byte of slot 4's value, and slot 6's ballot, behind the store's back. */
    CHECK(raw_sql("UPDATE ls_entry SET val = CAST('X' AS BLOB) || substr(val, 2) "
                  "WHERE grp = 3 AND slot = 4;"
                  "UPDATE ls_entry SET b_round = b_round + 1 WHERE grp = 3 AND slot = 6;") == 0);
    ls_store *s;
    OPEN(s);
    ls_entry e;
    mr_err err;
    CHECK_EQ(ls_get_entry(s, 3, 4, &e, &err), MR_ECORRUPT);
    CHECKF(strstr(err.msg, "slot 4") && strstr(err.msg, "checksum"), "message: %s", err.msg);
    CHECK_EQ(ls_get_entry(s, 3, 6, &e, &err), MR_ECORRUPT);
    /* Intact neighbours are still served; a range over the damage is not. */
    OK(ls_get_entry(s, 3, 5, &e, E));
    CHECK(entry_is(&e, 3, 5, 0));
    free((void *)e.value);
    ls_entry *r = NULL;
    size_t n = 99;
    CHECK_EQ(ls_read_range(s, 3, 1, 10, &r, &n, &err), MR_ECORRUPT);
    CHECK(r == NULL && n == 0);
    ls_group_state g;
    CHECK_EQ(ls_load_group(s, 3, &g, &err), MR_ECORRUPT);
    CHECK(strstr(err.msg, "load group 3") != NULL);
    CHECK_EQ(ls_load_group(s, 3, &g, NULL), MR_ECORRUPT); /* codes do not depend on err */
    CHECK_EQ(ls_verify(s, &err), MR_ECORRUPT);
    ls_close(s);

    /* Every other kind of record is checked too. */
    const char *edits[] = {
        "UPDATE ls_group SET p_round = 5 WHERE grp = 3",
        "UPDATE ls_meta SET val = CAST('meta-valuX' AS BLOB) WHERE grp = 3",
        "UPDATE ls_snapshot SET val = CAST('snapshoX' AS BLOB) WHERE grp = 3",
        "UPDATE ls_snapshot SET last_slot = 1 WHERE grp = 3",
        "UPDATE ls_config SET val = CAST('configX' AS BLOB) WHERE grp = 3",
        "UPDATE ls_entry SET slot = 11 WHERE grp = 3 AND slot = 10", /* a moved row */
        "UPDATE ls_entry SET grp = 4 WHERE grp = 3 AND slot = 10",
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        tmp_cleanup();
        tmp_setup();
        CHECK(fill_for_corruption() == 0);
        CHECK(raw_sql(edits[i]) == 0);
        OPEN(s);
        int rc = ls_verify(s, &err);
        ls_close(s);
        CHECKF(rc == MR_ECORRUPT, "edit \"%s\" not detected: %s", edits[i], mr_strerror(rc));
    }
    tmp_cleanup();
}

/* Flips one byte of `pat` wherever it occurs in `path`. Returns the count. */
static int flip_in_file(const char *path, const char *pat)
{
    FILE *f = fopen(path, "r+b");
    if (!f)
        return 0;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size);
    int found = 0;
    if (buf && fread(buf, 1, (size_t)size, f) == (size_t)size) {
        size_t plen = strlen(pat);
        for (long i = 0; i + (long)plen <= size; i++) {
            if (memcmp(buf + i, pat, plen) == 0) {
                fseek(f, i + (long)plen / 2, SEEK_SET);
                fputc(buf[i + (long)plen / 2] ^ 0x01, f);
                found++;
            }
        }
    }
    free(buf);
    fclose(f);
    return found;
}

TEST(corruption_raw_byte_flip_detected)
{
    tmp_setup();
    ls_store *s;
    OPEN(s);
    const char *canary = "CANARY-0123456789-abcdefghijklmnopqrstuvwxyz";
    for (uint64_t slot = 1; slot <= 5; slot++)
        OK(put(s, 9, slot, 0, E));
    ls_entry e = {.slot = 6, .ballot = {2, 2}, .ts = 66, .value = canary, .len = strlen(canary)};
    OK(ls_put_entry(s, 9, &e, E));
    OK(ls_sync(s, E));
    ls_close(s); /* the last close checkpoints the WAL into the main file */

    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", db);
    int flipped = flip_in_file(db, canary) + flip_in_file(wal, canary);
    CHECK(flipped >= 1);

    OPEN(s);
    mr_err err;
    CHECK_EQ(ls_get_entry(s, 9, 6, &e, &err), MR_ECORRUPT);
    CHECK(strstr(err.msg, "slot 6") != NULL);
    OK(ls_get_entry(s, 9, 5, &e, E));
    free((void *)e.value);
    CHECK_EQ(ls_verify(s, &err), MR_ECORRUPT);
    ls_close(s);
    tmp_cleanup();
}

/* ---- Malformed input ---- */

TEST(malformed_inputs_rejected)
{
    tmp_setup();
    mr_err err;
    ls_store *s;
    CHECK_EQ(ls_open(NULL, NULL, &s, &err), MR_EINVAL);
    CHECK_EQ(ls_open("", NULL, &s, &err), MR_EINVAL);
    ls_options bad = {.max_bytes = -1};
    CHECK_EQ(ls_open(db, &bad, &s, &err), MR_EINVAL);
    CHECK_EQ(ls_sync(NULL, &err), MR_EINVAL);
    CHECK_EQ(put(NULL, 1, 1, 0, &err), MR_EINVAL);
    ls_close(NULL);
    ls_rollback(NULL);

    OPEN(s);
    /* A good staged write, then bad calls: none may spoil the batch. */
    OK(put(s, 1, 1, 0, E));
    char buf[8] = "x";
    ls_entry e = {.slot = (uint64_t)INT64_MAX + 1, .value = buf, .len = 1};
    CHECK_EQ(ls_put_entry(s, 1, &e, &err), MR_EINVAL);
    e = (ls_entry){.slot = 2, .value = NULL, .len = 5};
    CHECK_EQ(ls_put_entry(s, 1, &e, &err), MR_EINVAL);
    e = (ls_entry){.slot = 2, .value = buf, .len = (size_t)LS_MAX_VALUE + 1};
    CHECK_EQ(ls_put_entry(s, 1, &e, &err), MR_EINVAL);
    e = (ls_entry){.slot = 2, .ballot = {UINT64_MAX, 0}, .value = buf, .len = 1};
    CHECK_EQ(ls_put_entry(s, 1, &e, &err), MR_EINVAL);
    CHECK_EQ(ls_put_entry(s, 1, NULL, &err), MR_EINVAL);
    /* A batch with one bad entry stages none of them. */
    ls_entry two[2] = {{.slot = 7, .value = buf, .len = 1}, {.slot = 8, .value = NULL, .len = 3}};
    CHECK_EQ(ls_put_entries(s, 1, two, 2, &err), MR_EINVAL);
    CHECK_EQ(ls_put_meta(s, 1, "", "v", 1, &err), MR_EINVAL);
    CHECK_EQ(ls_put_meta(s, 1, NULL, "v", 1, &err), MR_EINVAL);
    char longkey[LS_MAX_KEYLEN + 2];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    CHECK_EQ(ls_put_meta(s, 1, longkey, "v", 1, &err), MR_EINVAL);
    CHECK_EQ(ls_put_config(s, 1, 1, NULL, 2, &err), MR_EINVAL);
    CHECK_EQ(ls_install_snapshot(s, 1, (uint64_t)INT64_MAX + 1, NULL, 0, "x", 1, &err), MR_EINVAL);
    CHECK_EQ(ls_set_chosen(s, 1, UINT64_MAX, &err), MR_EINVAL);
    CHECK_EQ(ls_get_entry(s, 1, 1, NULL, &err), MR_EINVAL);
    CHECK_EQ(ls_scan(s, 1, 0, 10, NULL, NULL, &err), MR_EINVAL);
    CHECK_EQ(ls_load_group(s, 1, NULL, &err), MR_EINVAL);
    /* Hard state that moves backwards is a caller bug. */
    OK(ls_set_promise(s, 1, (ls_ballot){5, 5}, E));
    CHECK_EQ(ls_set_promise(s, 1, (ls_ballot){5, 4}, &err), MR_EINVAL);
    OK(ls_set_promise(s, 1, (ls_ballot){5, 5}, E));
    OK(ls_set_chosen(s, 1, 10, E));
    CHECK_EQ(ls_set_chosen(s, 1, 9, &err), MR_EINVAL);
    CHECK(strstr(err.msg, "below") != NULL);
    OK(ls_sync(s, E));
    ls_entry got;
    OK(ls_get_entry(s, 1, 1, &got, E));
    free((void *)got.value);
    CHECK_EQ(ls_get_entry(s, 1, 7, &got, &err), MR_ENOTFOUND);
    ls_close(s);
    tmp_cleanup();
}

TEST(open_rejects_foreign_files)
{
    tmp_setup();
    mr_err err;
    ls_store *s, *s2;
    /* Not a database at all. */
    int fd = open(db, O_WRONLY | O_CREAT, 0644);
    CHECK(fd >= 0);
    char junk[8192];
    memset(junk, 0x5a, sizeof junk);
    CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk);
    close(fd);
    CHECK_EQ(ls_open(db, NULL, &s, &err), MR_ECORRUPT);
    CHECK(strstr(err.msg, db) != NULL);
    unlink(db);
    /* Someone else's SQLite database. */
    CHECK(raw_sql("CREATE TABLE t(x); INSERT INTO t VALUES(1);") == 0);
    CHECK_EQ(ls_open(db, NULL, &s, &err), MR_EINVAL);
    CHECK(strstr(err.msg, "not a Meridian log store") != NULL);
    unlink(db);
    /* A store of another format version (1: little-endian integers) is refused, with the
     * file and both versions named, before anything in it is read. */
    CHECK(fill_for_corruption() == 0);
    CHECK(raw_sql("PRAGMA user_version = 1;") == 0);
    CHECK_EQ(ls_open(db, NULL, &s, &err), MR_EINVAL);
    CHECKF(strstr(err.msg, db) && strstr(err.msg, "format version 1, this build reads version 2"),
           "%s", err.msg);
    CHECK(raw_sql("PRAGMA user_version = 3;") == 0);
    CHECK_EQ(ls_open(db, NULL, &s, &err), MR_EINVAL);
    CHECKF(strstr(err.msg, "format version 3, this build reads version 2"), "%s", err.msg);
    unlink(db);
    /* A directory. */
    CHECK(ls_open(dir, NULL, &s, &err) != 0);
    /* Two handles on one store: the second is refused while the first lives. */
    OPEN(s);
    CHECK_EQ(ls_open(db, NULL, &s2, &err), MR_EUNAVAIL);
    ls_close(s);
    OPEN(s2);
    ls_close(s2);
    tmp_cleanup();
}

/* ---- Full disk ---- */

TEST(full_quota_reports_efull_and_keeps_synced)
{
    tmp_setup();
    ls_options opt = {.max_bytes = 96 * 1024};
    ls_store *s;
    mr_err err;
    CHECK(ls_open(db, &opt, &s, &err) == 0);
    for (uint64_t slot = 1; slot <= 20; slot++)
        OK(put(s, 1, slot, 0, E));
    OK(ls_sync(s, E));
    /* Grow one batch until the quota is hit. */
    static char big[4000];
    memset(big, 'B', sizeof big);
    int rc = 0;
    uint64_t slot = 21;
    for (; slot < 200 && rc == 0; slot++) {
        ls_entry e = {.slot = slot, .ballot = {1, 1}, .value = big, .len = sizeof big};
        rc = ls_put_entry(s, 1, &e, &err);
    }
    CHECKF(rc == MR_EFULL, "got %s: %s", mr_strerror(rc), err.msg);
    CHECKF(strstr(err.msg, "full") && strstr(err.msg, "rolled back"), "message: %s", err.msg);
    /* Further writes in the failed batch are refused; the sync reports the loss. */
    CHECK_EQ(put(s, 1, 500, 0, NULL), MR_EFULL);
    CHECK_EQ(ls_sync(s, &err), MR_EFULL);
    CHECK(strstr(err.msg, "nothing in it is durable") != NULL);
    CHECK(strstr(err.msg, "full") != NULL);
    /* The store goes on: a small batch fits again. */
    OK(put(s, 1, 21, 0, E));
    OK(ls_sync(s, E));
    ls_close(s);

    OPEN(s);
    ls_entry *r;
    size_t n;
    OK(ls_read_range(s, 1, 0, UINT64_MAX, &r, &n, E));
    CHECK_EQ(n, 21);
    for (size_t i = 0; i < n; i++)
        CHECK(entry_is(&r[i], 1, i + 1, 0));
    free(r);
    OK(ls_verify(s, E));
    ls_close(s);
    tmp_cleanup();
}

TEST(enospc_at_commit_reports_efull)
{
    CHECK(faultvfs_install() == 0);
    tmp_setup();
    ls_store *s;
    OPEN(s);
    for (uint64_t slot = 1; slot <= 10; slot++)
        OK(put(s, 1, slot, 0, E));
    OK(ls_sync(s, E));
    /* In WAL mode pages reach the file at commit: that is where ENOSPC shows. */
    for (uint64_t slot = 11; slot <= 20; slot++)
        OK(put(s, 1, slot, 0, E));
    faultvfs.fail_writes = 1;
    mr_err err;
    CHECK_EQ(ls_sync(s, NULL), MR_EFULL);
    OK(put(s, 1, 11, 0, E));
    CHECK_EQ(ls_sync(s, &err), MR_EFULL);
    CHECKF(strstr(err.msg, "not durable") != NULL, "message: %s", err.msg);
    faultvfs.fail_writes = 0;
    /* Not fatal: space came back, writing goes on. */
    OK(put(s, 1, 11, 1, E));
    OK(ls_sync(s, E));
    ls_close(s);
    OPEN(s);
    ls_group_state g;
    OK(ls_load_group(s, 1, &g, E));
    CHECK_EQ(g.n_entries, 11);
    CHECK(entry_is(&g.entries[10], 1, 11, 1));
    ls_group_state_free(&g);
    ls_close(s);
    tmp_cleanup();
    faultvfs_uninstall();
}

TEST(fsync_failure_stops_the_handle)
{
    CHECK(faultvfs_install() == 0);
    tmp_setup();
    ls_store *s;
    OPEN(s);
    OK(put(s, 1, 1, 0, E));
    OK(ls_sync(s, E));
    OK(put(s, 1, 2, 0, E));
    faultvfs.fail_syncs = 1;
    mr_err err;
    CHECK_EQ(ls_sync(s, &err), MR_EIO);
    faultvfs.fail_syncs = 0;
    /* Whether batch 2 reached the disk is unknown: the handle refuses to guess. */
    CHECK_EQ(put(s, 1, 3, 0, &err), MR_EIO);
    CHECK(strstr(err.msg, "reopen") != NULL);
    CHECK_EQ(ls_sync(s, &err), MR_EIO);
    ls_close(s);
    OPEN(s);
    ls_entry e;
    OK(ls_get_entry(s, 1, 1, &e, E)); /* synced state is intact */
    free((void *)e.value);
    OK(ls_verify(s, E));
    ls_close(s);
    tmp_cleanup();
    faultvfs_uninstall();
}

/* ---- Out of memory inside SQLite ---- */

static sqlite3_mem_methods real_mem;
static long oom_count, oom_at; /* fail the oom_at-th allocation (0: never) */

static void *oom_malloc(int n)
{
    if (oom_at && ++oom_count == oom_at)
        return NULL;
    return real_mem.xMalloc(n);
}

static void *oom_realloc(void *p, int n)
{
    if (oom_at && ++oom_count == oom_at)
        return NULL;
    return real_mem.xRealloc(p, n);
}

static int oom_install(void)
{
    static sqlite3_mem_methods m;
    if (sqlite3_shutdown() != SQLITE_OK ||
        sqlite3_config(SQLITE_CONFIG_GETMALLOC, &real_mem) != SQLITE_OK)
        return -1;
    m = real_mem;
    m.xMalloc = oom_malloc;
    m.xRealloc = oom_realloc;
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &m) != SQLITE_OK)
        return -1;
    return sqlite3_initialize() == SQLITE_OK ? 0 : -1;
}

static void oom_uninstall(void)
{
    sqlite3_shutdown();
    sqlite3_config(SQLITE_CONFIG_MALLOC, &real_mem);
    sqlite3_initialize();
    oom_at = 0;
}

/* Open, stage a batch, sync, read, close with the oom_at-th SQLite allocation
 * failing. Returns 1 when the sync reported success. Never crashes or leaks. */
static int oom_scenario(void)
{
    ls_store *s;
    mr_err err;
    int synced = 0;
    if (ls_open(db, NULL, &s, &err))
        return 0;
    int rc = 0;
    for (uint64_t slot = 1; slot <= 5 && !rc; slot++)
        rc = put(s, 1, slot, 0, &err);
    if (!rc)
        rc = ls_set_promise(s, 1, (ls_ballot){2, 1}, &err);
    if (!rc && ls_sync(s, &err) == 0)
        synced = 1;
    ls_group_state g;
    if (ls_load_group(s, 1, &g, &err) == 0)
        ls_group_state_free(&g);
    ls_close(s);
    return synced;
}

/* SQLite's faultsim idea: rerun with the Nth allocation failing, every N. */
TEST(oom_at_every_sqlite_allocation)
{
    CHECK(oom_install() == 0);
    /* This test is about memory, not durability: no fsyncs, to keep it short
     * on a slow disk (the VFS goes on top after SQLite's re-initialization). */
    CHECK(faultvfs_install() == 0);
    faultvfs.skip_syncs = 1;
    /* Count the allocations of one clean run, then fail each in turn (every
     * one of the first 300, then a stride, to keep the test short). */
    tmp_setup();
    oom_count = 0;
    oom_at = LONG_MAX;
    int clean = oom_scenario();
    long total = oom_count;
    tmp_cleanup();
    CHECK(clean == 1);
    CHECK(total > 10);
    int failures_seen = 0;
    for (long n = 1; n <= total; n += n < 300 ? 1 : 7) {
        tmp_setup();
        oom_count = 0;
        oom_at = n;
        int synced = oom_scenario();
        oom_at = 0;
        if (!synced)
            failures_seen++;
        /* Whatever failed, the file opens cleanly and a reported sync holds. */
        ls_store *s;
        mr_err err;
        int orc = ls_open(db, NULL, &s, &err);
        CHECKF(orc == 0, "allocation %ld: reopen: %s", n, err.msg);
        ls_group_state g;
        int lrc = ls_load_group(s, 1, &g, &err);
        int ok = lrc == 0 && (!synced || (g.n_entries == 5 && g.promised.round == 2)) &&
                 (g.n_entries == 0 || g.n_entries == 5);
        if (lrc == 0)
            ls_group_state_free(&g);
        ls_close(s);
        tmp_cleanup();
        CHECKF(ok, "allocation %ld: synced=%d, load %s, %zu entries", n, synced, mr_strerror(lrc),
               lrc ? (size_t)0 : g.n_entries);
    }
    CHECK(failures_seen > 0);
    printf("  %ld SQLite allocations in the scenario, %d runs failed cleanly\n", total,
           failures_seen);
    faultvfs_uninstall();
    oom_uninstall();
}

/* A real full filesystem: a 320 KiB tmpfs mounted in a private mount
 * namespace of a child process (gone when it exits, even on a crash).
 * Needs root (CAP_SYS_ADMIN); skipped otherwise. Exit codes: 0 pass,
 * 77 skip, others fail (see below). */
static int real_enospc_child(void)
{
    if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return 77;
    if (mount("tmpfs", dir, "tmpfs", 0, "size=320k") != 0)
        return 77;
    ls_store *s;
    mr_err err;
    if (ls_open(db, NULL, &s, &err))
        return 10;
    static char big[3000];
    memset(big, 'F', sizeof big);
    int synced = 0, rc = 0;
    uint64_t slot = 1;
    for (int b = 0; b < 1000 && !rc; b++) {
        for (int i = 0; i < 4 && !rc; i++, slot++) {
            ls_entry e = {.slot = slot, .ballot = {1, 1}, .value = big, .len = sizeof big};
            rc = ls_put_entry(s, 1, &e, &err);
        }
        if (!rc)
            rc = ls_sync(s, &err);
        if (!rc)
            synced = b + 1;
    }
    if (rc != MR_EFULL) {
        fprintf(stderr, "  expected MR_EFULL, got %s: %s\n", mr_strerror(rc), err.msg);
        return 11;
    }
    fprintf(stderr, "  tmpfs full after %d synced batches: %s\n", synced, err.msg);
    ls_close(s);
    if (ls_open(db, NULL, &s, &err)) {
        fprintf(stderr, "  reopen on a full disk: %s\n", err.msg);
        return 12;
    }
    ls_entry *r;
    size_t n;
    int ok = ls_read_range(s, 1, 0, UINT64_MAX, &r, &n, &err) == 0 && n == (size_t)synced * 4;
    if (ok)
        free(r);
    else
        fprintf(stderr, "  %zu entries after reopen, want %d\n", n, synced * 4);
    ls_close(s);
    return ok ? 0 : 13;
}

TEST(real_enospc_on_tmpfs)
{
    tmp_setup();
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(real_enospc_child());
    int status;
    waitpid(pid, &status, 0);
    tmp_cleanup();
    CHECKF(WIFEXITED(status), "child died (status %d)", status);
    if (WEXITSTATUS(status) == 77)
        SKIP("cannot mount a private tmpfs (needs root)");
    CHECKF(WEXITSTATUS(status) == 0, "child failed with %d", WEXITSTATUS(status));
}

TEST_MAIN(TEST_CASE(crc32c_vectors), TEST_CASE(roundtrip), TEST_CASE(scan_iterates_in_order),
          TEST_CASE(restart_recovery_many_groups), TEST_CASE(unsynced_writes_lost_on_close),
          TEST_CASE(group_commit_one_fsync_per_batch), TEST_CASE(crash_kill9_keeps_exactly_synced),
          TEST_CASE(crash_kill9_mid_stream_is_atomic), TEST_CASE(truncate_behind_snapshot),
          TEST_CASE(drop_group), TEST_CASE(corruption_via_sqlite_detected),
          TEST_CASE(corruption_raw_byte_flip_detected), TEST_CASE(malformed_inputs_rejected),
          TEST_CASE(open_rejects_foreign_files),
          TEST_CASE(full_quota_reports_efull_and_keeps_synced),
          TEST_CASE(enospc_at_commit_reports_efull), TEST_CASE(fsync_failure_stops_the_handle),
          TEST_CASE(real_enospc_on_tmpfs), TEST_CASE(oom_at_every_sqlite_allocation))
