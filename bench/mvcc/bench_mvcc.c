/* bench-mvcc: the MVCC store of a tablet replica on this machine. Apply throughput with 1, 16
 * and 256 writes per commit (one applied Paxos entry per commit), point reads and scans at a
 * timestamp (latest, and in the past behind newer versions), GC rate, snapshot write and load.
 * Prints one line per measurement; see RESULTS.md for figures and how to reproduce them. */
#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/mr_err.h"
#include "common/mr_log.h"
#include "common/mr_util.h"
#include "tablet/mvcc/mv.h"

static long nkeys = 100000;
static size_t value_size = 100;
static char dir[256];
static unsigned char *value;

static void die(const char *what, const mr_err *e)
{
    fprintf(stderr, "bench-mvcc: %s: %s\n", what, mr_err_msg(e));
    exit(1);
}

static double now_s(void)
{
    return (double)mr_monotonic_ns() / 1e9;
}

/* CPU seconds of this process: wall time well above it is time spent waiting for the disk. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Key of row i: 't' | directory (4 bytes) | '/' | row (8 bytes), big-endian so byte order is
 * numeric order. Rows are spread over directories by a multiplicative hash, so applying rows in
 * order i = 0, 1, ... inserts at random places in the key space, like real traffic. */
static int sequential; /* 1: directory = row / 32, so rows arrive in key order */

static size_t make_key(long i, unsigned char *k)
{
    uint64_t h = sequential ? (uint64_t)i / 32 << 52 : (uint64_t)i * 0x9e3779b97f4a7c15ull;
    uint32_t d = (uint32_t)(h >> 52); /* 4096 directories */
    k[0] = 't';
    for (int b = 0; b < 4; b++)
        k[1 + b] = (unsigned char)(d >> (24 - 8 * b));
    k[5] = '/';
    for (int b = 0; b < 8; b++)
        k[6 + b] = (unsigned char)((uint64_t)i >> (56 - 8 * b));
    return 14;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static mv_store *open_store(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    mv_store *s;
    mr_err e;
    if (mv_open(path, NULL, &s, &e))
        die("open", &e);
    return s;
}

/* Applies rows [0, n) at commit timestamp base + slot, `batch` writes per commit. */
static void apply_rows(mv_store *s, long n, int batch, uint64_t *slot, int64_t base,
                       const char *label)
{
    mv_write *w = calloc((size_t)batch, sizeof *w);
    unsigned char(*keys)[16] = calloc((size_t)batch, 16);
    mr_err e;
    long commits = 0;
    double t0 = now_s(), c0 = cpu_s();
    for (long i = 0; i < n; i += batch) {
        int m = 0;
        for (; m < batch && i + m < n; m++) {
            size_t kl = make_key(i + m, keys[m]);
            w[m] = (mv_write){MV_PUT, keys[m], kl, value, value_size};
        }
        ++*slot;
        if (mv_apply(s, *slot, base + (int64_t)*slot, w, (size_t)m, &e))
            die("apply", &e);
        commits++;
    }
    double dt = now_s() - t0, dc = cpu_s() - c0;
    if (label)
        printf("apply  %-28s %9.0f writes/s %9.0f commits/s  (%ld writes, %.2f s, cpu %.2f s)\n",
               label, (double)n / dt, (double)commits / dt, n, dt, dc);
    free(w);
    free(keys);
}

static void point_reads(mv_store *s, int64_t ts, long n, const char *label)
{
    unsigned char k[16];
    mr_err e;
    long found = 0;
    double t0 = now_s(), c0 = cpu_s();
    for (long i = 0; i < n; i++) {
        size_t kl = make_key((long)(rnd() % (uint64_t)nkeys), k);
        mv_version v;
        int rc = mv_get(s, k, kl, ts, &v, &e);
        if (rc == 0) {
            found++;
            free(v.value);
        } else if (rc != MR_ENOTFOUND) {
            die("get", &e);
        }
    }
    double dt = now_s() - t0;
    printf("get    %-28s %9.0f reads/s   (%ld reads, %ld found, %.2f s, cpu %.2f s)\n", label,
           (double)n / dt, n, found, dt, cpu_s() - c0);
}

static int count_fn(void *arg, const mv_version *v)
{
    ++*(long *)arg;
    return 0;
}

static void scans(mv_store *s, int64_t ts, long nscans, uint64_t limit, const char *label)
{
    unsigned char k[16];
    mr_err e;
    long rows = 0;
    double t0 = now_s(), c0 = cpu_s();
    for (long i = 0; i < nscans; i++) {
        size_t kl = make_key((long)(rnd() % (uint64_t)nkeys), k);
        mv_scan_opts o = {.start = nscans > 1 ? k : NULL,
                          .start_len = nscans > 1 ? kl : 0,
                          .ts = ts,
                          .limit = limit};
        if (mv_scan(s, &o, count_fn, &rows, NULL, &e))
            die("scan", &e);
    }
    double dt = now_s() - t0;
    printf("scan   %-28s %9.0f rows/s    (%ld scans, %ld rows, %.2f s, cpu %.2f s)\n", label,
           (double)rows / dt, nscans, rows, dt, cpu_s() - c0);
}

/* The benchmark's keys are "t" + 4-byte directory + "/" + 8-byte row. */
static size_t dir_prefix(void *arg, const void *key, size_t len)
{
    (void)arg;
    (void)key;
    return len < 5 ? len : 5;
}

static void remove_dir(void)
{
    const char *names[] = {"a1.db", "a16.db", "a256.db", "copy.db", "seq.db", "child.db"};
    const char *sfx[] = {"", "-wal", "-shm", "-journal"};
    char path[600];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 4; j++) {
            snprintf(path, sizeof path, "%s/%s%s", dir, names[i], sfx[j]);
            unlink(path);
        }
    rmdir(dir);
}

int main(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "n:v:h")) != -1) {
        if (opt == 'n')
            nkeys = atol(optarg);
        else if (opt == 'v')
            value_size = (size_t)atol(optarg);
        else {
            fprintf(stderr, "usage: bench-mvcc [-n KEYS] [-v VALUE_BYTES]\n");
            return opt == 'h' ? 0 : 2;
        }
    }
    if (nkeys < 1000 || value_size > MV_MAX_VALUE) {
        fprintf(stderr, "bench-mvcc: -n must be >= 1000 and -v at most %u\n", MV_MAX_VALUE);
        return 2;
    }
    mr_log_set_level(MR_LOG_WARN);
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/bench-mvcc.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("bench-mvcc: mkdtemp");
        return 1;
    }
    value = malloc(value_size ? value_size : 1);
    for (size_t i = 0; i < value_size; i++)
        value[i] = (unsigned char)rnd();
    printf("bench-mvcc: %ld keys of 14 bytes, %zu-byte values, SQLite %s, dir %s\n", nkeys,
           value_size, sqlite3_libversion(), dir);

    /* Apply, one fresh store per batch size (batch 1 capped: it is the slow case). */
    uint64_t slot = 0;
    char label[64];
    const int batches[] = {1, 16, 256};
    for (int b = 0; b < 3; b++) {
        snprintf(label, sizeof label, "a%d.db", batches[b]);
        mv_store *s = open_store(label);
        long n = batches[b] == 1 && nkeys > 20000 ? 20000 : nkeys;
        snprintf(label, sizeof label, "%d write(s)/commit", batches[b]);
        slot = 0;
        apply_rows(s, n, batches[b], &slot, 1000, label);
        mv_close(s);
    }

    {
        mv_store *q = open_store("seq.db");
        sequential = 1;
        slot = 0;
        apply_rows(q, nkeys, 256, &slot, 1000, "256/commit, keys in order");
        sequential = 0;
        mv_close(q);
    }

    /* Four versions of every key: the first load at ts ~1000+, three overwrites later. */
    mv_store *s = open_store("a256.db");
    int64_t first_era = 1000 + (int64_t)slot; /* every key has exactly one version here */
    apply_rows(s, nkeys, 256, &slot, 1000000, NULL);
    apply_rows(s, nkeys, 256, &slot, 2000000, NULL);
    apply_rows(s, nkeys, 256, &slot, 3000000, "overwrite (4 versions/key)");
    mv_size z;
    mv_size_estimate(s, &z);
    printf("size   %llu versions, %llu bytes counted\n", (unsigned long long)z.versions,
           (unsigned long long)z.bytes);

    point_reads(s, MV_TS_MAX, 200000, "latest");
    point_reads(s, first_era, 200000, "old ts (3 newer versions)");
    scans(s, MV_TS_MAX, 2000, 100, "latest, 100 keys each");
    scans(s, first_era, 2000, 100, "old ts, 100 keys each");
    scans(s, MV_TS_MAX, 1, 0, "latest, whole tablet");
    {
        mv_scan_opts o = {.ts = MV_TS_MAX, .reverse = 1};
        long rows = 0;
        mr_err e;
        double t0 = now_s();
        if (mv_scan(s, &o, count_fn, &rows, NULL, &e))
            die("scan", &e);
        double dt = now_s() - t0;
        printf("scan   %-28s %9.0f rows/s    (1 scans, %ld rows, %.2f s)\n",
               "latest, whole, reverse", (double)rows / dt, rows, dt);
    }

    /* Snapshot of every version, loaded into a fresh store. */
    {
        struct {
            void *p;
            size_t len;
        } m = {0};
        mr_err e;
        double t0 = now_s();
        if (mv_snapshot_mem(s, MV_SNAP_ALL, NULL, 0, &m.p, &m.len, &e))
            die("snapshot", &e);
        double dt = now_s() - t0;
        printf("snap   %-28s %9.1f MB/s      (%.1f MB, %.2f s)\n", "write (all versions)",
               (double)m.len / dt / 1e6, (double)m.len / 1e6, dt);
        mv_store *c = open_store("copy.db");
        t0 = now_s();
        if (mv_snapshot_load(c, m.p, m.len, &e))
            die("snapshot load", &e);
        dt = now_s() - t0;
        printf("snap   %-28s %9.1f MB/s      (%.1f MB, %.2f s)\n", "load", (double)m.len / dt / 1e6,
               (double)m.len / 1e6, dt);
        mv_close(c);
        free(m.p);
    }

    /* GC: a horizon above every write leaves one version per key. */
    {
        mv_gc_result g, tot = {0};
        mr_err e;
        long steps = 0;
        double t0 = now_s();
        do {
            if (mv_gc(s, 4000000, 10000, &g, &e))
                die("gc", &e);
            tot.examined += g.examined;
            tot.deleted += g.deleted;
            steps++;
        } while (!g.pass_done);
        double dt = now_s() - t0;
        printf("gc     %-28s %9.0f deleted/s %9.0f examined/s (%llu deleted, %ld steps, "
               "%.2f s)\n",
               "steps of 10000 rows", (double)tot.deleted / dt, (double)tot.examined / dt,
               (unsigned long long)tot.deleted, steps, dt);
        point_reads(s, MV_TS_MAX, 200000, "latest, after GC");
    }

    /* A tablet split: the key (directories are the first 5 bytes, "t" + 4), then the
     * split itself (the upper half written to a new store and synced, the lower half
     * cut and synced). */
    {
        mv_size before;
        mv_size_estimate(s, &before);
        mv_split_opts so = {.ts = MV_TS_MAX, .prefix = dir_prefix, .max_dir_bytes = 0};
        void *key = NULL;
        size_t klen = 0;
        mr_err e;
        double t0 = now_s(), c0 = cpu_s();
        if (mv_split_key(s, &so, &key, &klen, &e))
            die("split key", &e);
        double dt = now_s() - t0;
        printf("split  %-28s %9.2f s          (%llu versions, %.1f MB, cpu %.2f s)\n", "choose key",
               dt, (unsigned long long)before.versions, (double)before.bytes / 1e6,
               cpu_s() - c0);
        char child[600];
        snprintf(child, sizeof child, "%s/child.db", dir);
        t0 = now_s();
        c0 = cpu_s();
        if (mv_split(s, slot + 1, child, key, klen, &e))
            die("split", &e);
        dt = now_s() - t0;
        mv_size after;
        mv_size_estimate(s, &after);
        printf("split  %-28s %9.2f s          (%.1f MB moved, %.1f MB/s, cpu %.2f s)\n",
               "split in two", dt, (double)(before.bytes - after.bytes) / 1e6,
               (double)(before.bytes - after.bytes) / 1e6 / dt, cpu_s() - c0);
        free(key);
    }
    mv_close(s);
    remove_dir();
    free(value);
    return 0;
}
