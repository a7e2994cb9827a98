/* tests/mvcc: the MVCC store with SQLite's Nth allocation failing (SQLite's own faultsim idea).
 * For every N up to the number of allocations a workload makes, the workload runs with
 * allocation N (and, in the persistent variant, every later one) failing. Whatever each call
 * returns, nothing may crash or leak, and afterwards the store must hold exactly the batches
 * that reported success: same applied slot, same reads, counters equal to a recount. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tablet/mvcc/mv.h"
#include "launch/proc.h"
#include "tests/test.h"

/* ---- a failing allocator under SQLite ---- */

static sqlite3_mem_methods g_real;
static long g_count;     /* allocations since arming */
static long g_fail_at;   /* 0: never fail */
static int g_persistent; /* fail every allocation from g_fail_at on */
static long g_failed;

static int should_fail(void)
{
    if (!g_fail_at)
        return 0;
    g_count++;
    if (g_count == g_fail_at || (g_persistent && g_count > g_fail_at)) {
        g_failed++;
        return 1;
    }
    return 0;
}

static void *f_malloc(int n)
{
    return should_fail() ? NULL : g_real.xMalloc(n);
}

static void *f_realloc(void *p, int n)
{
    return should_fail() ? NULL : g_real.xRealloc(p, n);
}

static void f_free(void *p)
{
    g_real.xFree(p);
}

static int f_size(void *p)
{
    return g_real.xSize(p);
}

static int f_roundup(int n)
{
    return g_real.xRoundup(n);
}

static int f_init(void *a)
{
    return g_real.xInit(a);
}

static void f_shutdown(void *a)
{
    g_real.xShutdown(a);
}

static void arm(long at, int persistent)
{
    g_count = 0;
    g_failed = 0;
    g_persistent = persistent;
    g_fail_at = at;
}

static void disarm(void)
{
    g_fail_at = 0;
}

/* ---- the workload and its model ---- */

static char g_dir[256];

/* Batch b writes key (b*3+i) % 11 for i < 3 and deletes key b % 11 when b % 4 == 3. */
static int batch(uint64_t b, mv_write *w, char keys[][16], char vals[][32])
{
    int n = 0;
    for (int i = 0; i < 3; i++, n++) {
        snprintf(keys[n], 16, "key%02d", (int)((b * 3 + (uint64_t)i) % 11));
        snprintf(vals[n], 32, "v%llu.%d", (unsigned long long)b, i);
        w[n] = (mv_write){MV_PUT, keys[n], strlen(keys[n]), vals[n], strlen(vals[n])};
    }
    if (b % 4 == 3) {
        snprintf(keys[n], 16, "key%02d", (int)(b % 11));
        w[n] = (mv_write){MV_DELETE, keys[n], strlen(keys[n]), NULL, 0};
        n++;
    }
    return n;
}

/* The value of key k at ts (= batch number * 10) given which batches were applied, into
 * out[32]. */
static int model_get(const int *applied, uint64_t nb, int k, int64_t ts, char *out)
{
    int found = 0;
    for (uint64_t b = 1; b <= nb && (int64_t)b * 10 <= ts; b++) {
        if (!applied[b])
            continue;
        mv_write w[4];
        char keys[4][16], vals[4][32];
        int n = batch(b, w, keys, vals);
        char want[16];
        snprintf(want, sizeof want, "key%02d", k);
        for (int i = 0; i < n; i++)
            if (strcmp(keys[i], want) == 0) {
                found = w[i].op == MV_PUT;
                if (found)
                    memcpy(out, vals[i], sizeof vals[i]);
            }
    }
    return found;
}

static int check_store(mv_store *s, const int *applied, uint64_t nb, uint64_t last)
{
    if (mv_applied_slot(s) != last)
        return -1;
    for (int k = 0; k < 11; k++)
        for (int64_t ts = 10; ts <= (int64_t)nb * 10; ts += 10) {
            char key[16], want[32], got[64];
            snprintf(key, sizeof key, "key%02d", k);
            int exp = model_get(applied, nb, k, ts, want);
            mv_version v;
            int rc = mv_get(s, key, strlen(key), ts, &v, NULL);
            if (rc == 0) {
                snprintf(got, sizeof got, "%.*s", (int)v.len, (char *)v.value);
                free(v.value);
            }
            if (exp ? rc != 0 || strcmp(got, want) != 0 : rc != MR_ENOTFOUND) {
                fprintf(stderr, "key %s at %lld: rc %d\n", key, (long long)ts, rc);
                return -1;
            }
        }
    return mv_verify(s, NULL) == 0 ? 0 : -1;
}

static int sink(void *arg, const void *buf, size_t len)
{
    return 0;
}

static int scan_fn(void *arg, const mv_version *v)
{
    return 0;
}

static void remove_store(const char *path)
{
    char p[600];
    const char *sfx[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        remove(p);
    }
}

/* Runs the workload with the fault armed; records which batches succeeded. Returns how many
 * allocations it made (when nothing failed). */
static long run_once(long at, int persistent, int *ok, long *calls_failed)
{
    char path[512];
    snprintf(path, sizeof path, "%s/f%ld_%d.db", g_dir, at, persistent);
    mv_store *s;
    if (mv_open(path, NULL, &s, NULL))
        return -1;
    const uint64_t nb = 12;
    int applied[13] = {0};
    uint64_t last = 0;
    /* The first half applied without faults, so there is something to read and collect. */
    for (uint64_t b = 1; b <= nb / 2; b++) {
        mv_write w[4];
        char keys[4][16], vals[4][32];
        int n = batch(b, w, keys, vals);
        if (mv_apply(s, b, (int64_t)b * 10, w, (size_t)n, NULL))
            return -1;
        applied[b] = 1;
        last = b;
    }
    arm(at, persistent);
    for (uint64_t b = nb / 2 + 1; b <= nb; b++) {
        mv_write w[4];
        char keys[4][16], vals[4][32];
        int n = batch(b, w, keys, vals);
        int rc = mv_apply(s, b, (int64_t)b * 10, w, (size_t)n, NULL);
        if (rc == 0) {
            applied[b] = 1;
            last = b;
        } else {
            ++*calls_failed;
        }
    }
    mv_version v;
    if (mv_get(s, "key01", 5, 1000, &v, NULL) == 0)
        free(v.value);
    mv_scan_opts so = {.ts = 1000};
    uint64_t cnt;
    int r = mv_scan(s, &so, scan_fn, NULL, &cnt, NULL);
    *calls_failed += r != 0;
    *calls_failed += mv_snapshot_write(s, MV_SNAP_ALL, sink, NULL, NULL) != 0;
    /* GC below every read the check makes, so the model stays valid. */
    *calls_failed += mv_gc(s, 5, 3, NULL, NULL) != 0;
    long made = g_count;
    disarm();
    *ok = check_store(s, applied, nb, last) == 0;
    mv_close(s);
    /* And the same after a reopen: what is on disk agrees with what the handle believed. */
    if (*ok) {
        if (mv_open(path, NULL, &s, NULL) == 0) {
            *ok = check_store(s, applied, nb, last) == 0;
            mv_close(s);
        } else {
            *ok = 0;
        }
    }
    remove_store(path);
    return made;
}

static void fault_loop(int persistent)
{
    CHECK(tmpdir_make(g_dir, sizeof g_dir, "mvcc-faults") == 0);
    int ok = 0;
    long failed_calls = 0;
    /* A dry run counts the allocations the armed part makes. */
    long total = run_once(1L << 40, 0, &ok, &failed_calls);
    CHECKF(ok && total > 10, "dry run: ok %d, %ld allocations", ok, total);
    CHECK_EQ(failed_calls, 0);
    long tried = 0, with_errors = 0;
    for (long at = 1; at <= total; at++) {
        failed_calls = 0;
        long made = run_once(at, persistent, &ok, &failed_calls);
        CHECKF(made >= 0, "setup failed at %ld", at);
        CHECKF(ok, "store inconsistent after allocation %ld failed (persistent %d)", at,
               persistent);
        tried++;
        with_errors += failed_calls > 0;
    }
    /* The faults must have been felt, or this test proves nothing. */
    CHECKF(with_errors > tried / 4, "only %ld of %ld runs saw an error", with_errors, tried);
    tmpdir_remove(g_dir);
}

TEST(nth_allocation_fails_once)
{
    fault_loop(0);
}

TEST(nth_allocation_and_all_later_fail)
{
    fault_loop(1);
}

int main(int argc, char **argv)
{
    /* Route SQLite's allocations through the failing allocator, before SQLite starts. */
    sqlite3_config(SQLITE_CONFIG_GETMALLOC, &g_real);
    static sqlite3_mem_methods m;
    m = g_real;
    m.xMalloc = f_malloc;
    m.xRealloc = f_realloc;
    m.xFree = f_free;
    m.xSize = f_size;
    m.xRoundup = f_roundup;
    m.xInit = f_init;
    m.xShutdown = f_shutdown;
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &m) != SQLITE_OK) {
        fprintf(stderr, "cannot install the failing allocator\n");
        return 1;
    }
    static const test_case cases[] = {
        TEST_CASE(nth_allocation_fails_once),
        TEST_CASE(nth_allocation_and_all_later_fail),
    };
    int rc = test_run(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
    sqlite3_shutdown();
    return rc;
}
