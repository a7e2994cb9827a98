/* bench-logstore: the durable Paxos log against the physical floor of this
 * disk. Measures, in one run: raw write+fdatasync, SQLite alone (WAL,
 * synchronous=FULL; and NORMAL for contrast), the store unbatched (one sync
 * per entry) and with group commit (8/64/256 entries per sync). Prints
 * ops/s and p50/p99 latency per durable commit. See RESULTS.md. */
#include "common/mr_util.h"
#include "tablet/logstore/ls.h"
#include "bench/logstore/bench.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static double seconds = 2.0; /* per measurement */
static size_t value_size = 512;
static char dir[256];

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

void bench_lat_add(bench_lat *l, int64_t ns)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 4096;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v)
            bench_die("latency samples", "out of memory");
    }
    l->v[l->n++] = ns;
}

void bench_lat_finish(bench_lat *l, bench_result *r)
{
    qsort(l->v, l->n, sizeof *l->v, cmp_i64);
    r->p50 = l->n ? l->v[l->n / 2] : 0;
    r->p99 = l->n ? l->v[(l->n * 99) / 100] : 0;
    free(l->v);
    memset(l, 0, sizeof *l);
}

static bench_result raw_fsync(int overwrite, double secs);

/* The disk of a shared machine changes speed from second to second, so each
 * line is compared with a floor measured right after it (half a second of
 * raw append+fdatasync), not with one taken minutes earlier. */
void bench_print(const bench_result *r)
{
    bench_result f = raw_fsync(0, 0.5);
    double floor_per_s = f.items / f.secs;
    char a[32], b[32];
    double cps = r->commits / r->secs, ips = r->items / r->secs;
    printf("%-44s %9.0f %11.0f %10s %10s %8.0f %7.2fx\n", r->name, cps, ips,
           mr_format_duration(r->p50, a, sizeof a), mr_format_duration(r->p99, b, sizeof b),
           floor_per_s, floor_per_s > 0 ? ips / floor_per_s : 0.0);
    fflush(stdout);
}

void bench_die(const char *what, const char *msg)
{
    fprintf(stderr, "bench-logstore: %s: %s\n", what, msg);
    exit(1);
}

/* The floor: append `value_size` bytes and fdatasync, as a WAL commit does. */
static bench_result raw_fsync(int overwrite, double secs)
{
    char path[300];
    snprintf(path, sizeof path, "%s/raw.dat", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        bench_die("open", strerror(errno));
    char *buf = calloc(1, value_size);
    if (overwrite) {
        /* Preallocated and synced: only data blocks change, no file-size metadata. */
        for (int i = 0; i < 64; i++)
            if (pwrite(fd, buf, value_size, (off_t)(i * value_size)) < 0)
                bench_die("pwrite", strerror(errno));
        fsync(fd);
    }
    bench_lat l = {0};
    bench_result r = {.name = overwrite ? "raw pwrite+fdatasync, overwrite"
                                        : "raw write+fdatasync, append"};
    int64_t t0 = mr_monotonic_ns(), end = t0 + (int64_t)(secs * 1e9), now = t0;
    off_t off = 0;
    while (now < end) {
        buf[0] = (char)r.commits;
        if (pwrite(fd, buf, value_size, overwrite ? (off_t)((r.commits % 64) * value_size) : off) !=
            (ssize_t)value_size)
            bench_die("pwrite", strerror(errno));
        off += (off_t)value_size;
        if (fdatasync(fd) != 0)
            bench_die("fdatasync", strerror(errno));
        int64_t t = mr_monotonic_ns();
        bench_lat_add(&l, t - now);
        now = t;
        r.commits++;
        r.items++;
    }
    r.secs = (double)(now - t0) / 1e9;
    bench_lat_finish(&l, &r);
    free(buf);
    close(fd);
    unlink(path);
    return r;
}

/* SQLite alone: one INSERT per autocommit transaction in WAL mode. */
static bench_result sqlite_alone(const char *sync_mode)
{
    char path[300];
    snprintf(path, sizeof path, "%s/sqlite-%s.db", dir, sync_mode);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        bench_die("sqlite open", sqlite3_errmsg(db));
    char sql[200];
    snprintf(sql, sizeof sql,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;"
             "CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB);",
             sync_mode);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        bench_die("sqlite setup", sqlite3_errmsg(db));
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "INSERT INTO t(k, v) VALUES(?, ?)", -1, &st, NULL);
    char *buf = calloc(1, value_size);
    static char name[64];
    snprintf(name, sizeof name, "SQLite alone, WAL, synchronous=%s", sync_mode);
    bench_result r = {.name = name};
    bench_lat l = {0};
    int64_t t0 = mr_monotonic_ns(), end = t0 + (int64_t)(seconds * 1e9), now = t0;
    while (now < end) {
        sqlite3_bind_int64(st, 1, r.commits);
        sqlite3_bind_blob(st, 2, buf, (int)value_size, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            bench_die("sqlite insert", sqlite3_errmsg(db));
        sqlite3_reset(st);
        int64_t t = mr_monotonic_ns();
        bench_lat_add(&l, t - now);
        now = t;
        r.commits++;
        r.items++;
    }
    r.secs = (double)(now - t0) / 1e9;
    bench_lat_finish(&l, &r);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(buf);
    char p2[320];
    unlink(path);
    snprintf(p2, sizeof p2, "%s-wal", path);
    unlink(p2);
    snprintf(p2, sizeof p2, "%s-shm", path);
    unlink(p2);
    return r;
}

/* The store: `batch` entries (spread over `groups` groups) per ls_sync. */
static bench_result store_run(int batch, int groups)
{
    char path[300];
    snprintf(path, sizeof path, "%s/store-%d-%d.db", dir, batch, groups);
    ls_store *s;
    mr_err err;
    if (ls_open(path, NULL, &s, &err))
        bench_die("ls_open", mr_err_msg(&err));
    char *buf = calloc(1, value_size);
    static char names[8][64];
    static int ni;
    char *name = names[ni++ % 8];
    if (batch == 1)
        snprintf(name, 64, "logstore, 1 entry per sync");
    else if (groups == 1)
        snprintf(name, 64, "logstore, group commit of %d entries", batch);
    else
        snprintf(name, 64, "logstore, %d entries over %d groups/sync", batch, groups);
    bench_result r = {.name = name};
    bench_lat l = {0};
    uint64_t slot[64] = {0};
    int64_t t0 = mr_monotonic_ns(), end = t0 + (int64_t)(seconds * 1e9), now = t0;
    while (now < end) {
        for (int i = 0; i < batch; i++) {
            int g = i % groups;
            ls_entry e = {.slot = ++slot[g],
                          .ballot = {1, 1},
                          .ts = now,
                          .kind = 1,
                          .value = buf,
                          .len = value_size};
            buf[0] = (char)i;
            if (ls_put_entry(s, (uint64_t)g, &e, &err))
                bench_die("ls_put_entry", mr_err_msg(&err));
        }
        if (ls_sync(s, &err))
            bench_die("ls_sync", mr_err_msg(&err));
        int64_t t = mr_monotonic_ns();
        bench_lat_add(&l, t - now);
        now = t;
        r.commits++;
        r.items += batch;
    }
    r.secs = (double)(now - t0) / 1e9;
    bench_lat_finish(&l, &r);
    ls_close(s);
    free(buf);
    char p2[320];
    unlink(path);
    snprintf(p2, sizeof p2, "%s-wal", path);
    unlink(p2);
    return r;
}

static void usage(void)
{
    printf("usage: bench-logstore [--dir DIR] [--seconds S] [--value BYTES]\n"
           "  --dir      directory on the disk to measure (default: a new one under /tmp)\n"
           "  --seconds  duration of each measurement (default 2)\n"
           "  --value    bytes per entry/row/write (default 512)\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
                                         {"seconds", required_argument, NULL, 's'},
                                         {"value", required_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *user_dir = NULL;
    int c;
    long long v;
    while ((c = getopt_long(argc, argv, "d:s:v:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            user_dir = optarg;
            break;
        case 's':
            if (mr_parse_int(optarg, 1, 3600, &v)) {
                fprintf(stderr, "bench-logstore: --seconds wants 1..3600\n");
                return 2;
            }
            seconds = (double)v;
            break;
        case 'v':
            if (mr_parse_int(optarg, 1, 16 << 20, &v)) {
                fprintf(stderr, "bench-logstore: --value wants 1..16777216\n");
                return 2;
            }
            value_size = (size_t)v;
            break;
        case 'h':
            usage();
            return 0;
        default:
            usage();
            return 2;
        }
    }
    if (user_dir) {
        snprintf(dir, sizeof dir, "%s/bench-logstore-XXXXXX", user_dir);
    } else {
        snprintf(dir, sizeof dir, "/tmp/bench-logstore-XXXXXX");
    }
    if (!mkdtemp(dir))
        bench_die("mkdtemp", strerror(errno));

    printf("bench-logstore: dir %s, %zu-byte values, %.0f s per line, SQLite %s\n", dir, value_size,
           seconds, sqlite3_libversion());
    printf("%-44s %9s %11s %10s %10s %8s %8s\n", "measurement", "commits/s", "items/s", "p50",
           "p99", "floor/s", "x floor");
    bench_result r = raw_fsync(0, seconds);
    bench_print(&r);
    r = raw_fsync(1, seconds);
    bench_print(&r);
    r = sqlite_alone("FULL");
    bench_print(&r);
    r = sqlite_alone("NORMAL");
    bench_print(&r);
    int batches[] = {1, 8, 64, 256};
    for (int i = 0; i < 4; i++) {
        r = store_run(batches[i], 1);
        bench_print(&r);
    }
    r = store_run(256, 64);
    bench_print(&r);
#ifdef BENCH_PAXOS
    bench_replicated(dir, 3, seconds, value_size);
    bench_replicated(dir, 5, seconds, value_size);
#else
    printf("(replicated proposals: skipped, built without the Paxos core)\n");
#endif
    printf("commits/s: durable commits (syncs; for paxos, summed over replicas); items/s: "
           "entries, rows or proposals\np50/p99: latency of one commit (a whole batch), for "
           "paxos of one proposal (propose -> applied at the leader)\nfloor/s: raw "
           "append+fdatasync/s measured for 0.5 s right after the line; x floor: items/s over "
           "it\n");
    rmdir(dir);
    return 0;
}
