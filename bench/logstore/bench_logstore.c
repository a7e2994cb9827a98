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

/* The disk of a shared machine changes speed from second to second, so each
 * line is compared with a floor measured right after it (half a second of
 * raw append+fdatasync), not with one taken minutes earlier. */
/* ---- Interleaved measurement ---- */

/* The floor file stays open for the whole run. */
static int floor_fd = -1;
static char *floor_buf;
static off_t floor_off;

static void floor_open(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/floor.dat", dir);
    floor_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (floor_fd < 0)
        bench_die("open", strerror(errno));
    unlink(path); /* gone when closed */
    floor_buf = calloc(1, value_size);
}

/* One floor operation: append value_size bytes and fdatasync, as a WAL commit does. */
static void floor_op(int fd, off_t *off, char *buf)
{
    buf[0]++;
    if (pwrite(fd, buf, value_size, *off) != (ssize_t)value_size)
        bench_die("pwrite", strerror(errno));
    *off += (off_t)value_size;
    if (fdatasync(fd) != 0)
        bench_die("fdatasync", strerror(errno));
}

/* The disk of a shared machine changes speed from second to second (other
 * processes' fsyncs join the same journal commits). So every line runs in
 * SLICES slices, each followed by FLOOR_SLICE seconds of the raw floor, and
 * is compared with the floor measured in between: both see the same mix. */
#define SLICES      4
#define FLOOR_SLICE 0.25

void bench_measure(const bench_runner *br, double secs)
{
    bench_lat l = {0};
    bench_result r = {.name = br->name};
    long floor_ops = 0;
    double floor_secs = 0;
    for (int k = 0; k < SLICES; k++) {
        int64_t t0 = mr_monotonic_ns(), end = t0 + (int64_t)(secs / SLICES * 1e9);
        int64_t now = t0;
        while (now < end) {
            r.items += br->step(br->st, &l, &r.commits);
            now = mr_monotonic_ns();
        }
        if (br->drain)
            r.items += br->drain(br->st, &l, &r.commits);
        r.secs += (double)(mr_monotonic_ns() - t0) / 1e9;
        int64_t f0 = mr_monotonic_ns(), fend = f0 + (int64_t)(FLOOR_SLICE * 1e9);
        while (mr_monotonic_ns() < fend) {
            floor_op(floor_fd, &floor_off, floor_buf);
            floor_ops++;
        }
        floor_secs += (double)(mr_monotonic_ns() - f0) / 1e9;
    }
    bench_lat_finish(&l, &r);
    double floor_per_s = floor_ops / floor_secs;
    char a[32], b[32];
    double cps = r.commits / r.secs, ips = r.items / r.secs;
    printf("%-44s %9.0f %11.0f %10s %10s %8.0f %7.2fx\n", r.name, cps, ips,
           mr_format_duration(r.p50, a, sizeof a), mr_format_duration(r.p99, b, sizeof b),
           floor_per_s, floor_per_s > 0 ? ips / floor_per_s : 0.0);
    fflush(stdout);
}

void bench_die(const char *what, const char *msg)
{
    fprintf(stderr, "bench-logstore: %s: %s\n", what, msg);
    exit(1);
}

/* ---- Raw file ---- */

typedef struct raw_state {
    int fd;
    int overwrite;
    off_t off;
    long n;
    char *buf;
} raw_state;

static long raw_step(void *arg, bench_lat *l, long *commits)
{
    raw_state *st = arg;
    int64_t t = mr_monotonic_ns();
    if (st->overwrite) {
        off_t off = (off_t)((st->n % 64) * (long)value_size);
        st->buf[0]++;
        if (pwrite(st->fd, st->buf, value_size, off) != (ssize_t)value_size ||
            fdatasync(st->fd) != 0)
            bench_die("pwrite+fdatasync", strerror(errno));
    } else {
        floor_op(st->fd, &st->off, st->buf);
    }
    st->n++;
    bench_lat_add(l, mr_monotonic_ns() - t);
    (*commits)++;
    return 1;
}

static void raw_line(int overwrite)
{
    char path[300];
    snprintf(path, sizeof path, "%s/raw.dat", dir);
    raw_state st = {.overwrite = overwrite, .buf = calloc(1, value_size)};
    st.fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (st.fd < 0 || !st.buf)
        bench_die("open", strerror(errno));
    if (overwrite) {
        /* Preallocated and synced: only data blocks change, no file-size metadata. */
        for (int i = 0; i < 64; i++)
            if (pwrite(st.fd, st.buf, value_size, (off_t)(i * (long)value_size)) < 0)
                bench_die("pwrite", strerror(errno));
        fsync(st.fd);
    }
    bench_runner br = {overwrite ? "raw pwrite+fdatasync, overwrite"
                                 : "raw write+fdatasync, append",
                       &st, raw_step, NULL};
    bench_measure(&br, seconds);
    close(st.fd);
    unlink(path);
    free(st.buf);
}

/* ---- SQLite alone: one INSERT per autocommit transaction in WAL mode ---- */

typedef struct sqlite_state {
    sqlite3 *db;
    sqlite3_stmt *ins;
    long n;
    char *buf;
} sqlite_state;

static long sqlite_step(void *arg, bench_lat *l, long *commits)
{
    sqlite_state *st = arg;
    int64_t t = mr_monotonic_ns();
    sqlite3_bind_int64(st->ins, 1, st->n++);
    sqlite3_bind_blob(st->ins, 2, st->buf, (int)value_size, SQLITE_STATIC);
    if (sqlite3_step(st->ins) != SQLITE_DONE)
        bench_die("sqlite insert", sqlite3_errmsg(st->db));
    sqlite3_reset(st->ins);
    bench_lat_add(l, mr_monotonic_ns() - t);
    (*commits)++;
    return 1;
}

static void sqlite_line(const char *sync_mode)
{
    char path[300];
    snprintf(path, sizeof path, "%s/sqlite-%s.db", dir, sync_mode);
    sqlite_state st = {.buf = calloc(1, value_size)};
    if (sqlite3_open(path, &st.db) != SQLITE_OK)
        bench_die("sqlite open", sqlite3_errmsg(st.db));
    char sql[200];
    snprintf(sql, sizeof sql,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;"
             "CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB);",
             sync_mode);
    if (sqlite3_exec(st.db, sql, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(st.db, "INSERT INTO t(k, v) VALUES(?, ?)", -1, &st.ins, NULL) !=
            SQLITE_OK)
        bench_die("sqlite setup", sqlite3_errmsg(st.db));
    char name[64];
    snprintf(name, sizeof name, "SQLite alone, WAL, synchronous=%s", sync_mode);
    bench_runner br = {name, &st, sqlite_step, NULL};
    bench_measure(&br, seconds);
    sqlite3_finalize(st.ins);
    sqlite3_close(st.db);
    free(st.buf);
    char p2[320];
    unlink(path);
    snprintf(p2, sizeof p2, "%s-wal", path);
    unlink(p2);
    snprintf(p2, sizeof p2, "%s-shm", path);
    unlink(p2);
}

/* ---- The store: `batch` entries (over `groups` groups) per ls_sync ---- */

typedef struct store_state {
    ls_store *s;
    int batch, groups;
    uint64_t slot[64];
    char *buf;
} store_state;

static long store_step(void *arg, bench_lat *l, long *commits)
{
    store_state *st = arg;
    mr_err err;
    int64_t t = mr_monotonic_ns();
    for (int i = 0; i < st->batch; i++) {
        int g = i % st->groups;
        ls_entry e = {.slot = ++st->slot[g],
                      .ballot = {1, 1},
                      .ts = t,
                      .kind = 1,
                      .value = st->buf,
                      .len = value_size};
        st->buf[0] = (char)i;
        if (ls_put_entry(st->s, (uint64_t)g, &e, &err))
            bench_die("ls_put_entry", mr_err_msg(&err));
    }
    if (ls_sync(st->s, &err))
        bench_die("ls_sync", mr_err_msg(&err));
    bench_lat_add(l, mr_monotonic_ns() - t);
    (*commits)++;
    return st->batch;
}

static void store_line(int batch, int groups)
{
    char path[300];
    snprintf(path, sizeof path, "%s/store-%d-%d.db", dir, batch, groups);
    store_state st = {.batch = batch, .groups = groups, .buf = calloc(1, value_size)};
    mr_err err;
    if (ls_open(path, NULL, &st.s, &err))
        bench_die("ls_open", mr_err_msg(&err));
    char name[64];
    if (batch == 1)
        snprintf(name, sizeof name, "logstore, 1 entry per sync");
    else if (groups == 1)
        snprintf(name, sizeof name, "logstore, group commit of %d entries", batch);
    else
        snprintf(name, sizeof name, "logstore, %d entries over %d groups/sync", batch, groups);
    bench_runner br = {name, &st, store_step, NULL};
    bench_measure(&br, seconds);
    ls_close(st.s);
    free(st.buf);
    char p2[320];
    unlink(path);
    snprintf(p2, sizeof p2, "%s-wal", path);
    unlink(p2);
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
    floor_open();
    raw_line(0);
    raw_line(1);
    sqlite_line("FULL");
    sqlite_line("NORMAL");
    int batches[] = {1, 8, 64, 256};
    for (int i = 0; i < 4; i++)
        store_line(batches[i], 1);
    store_line(256, 64);
#ifdef BENCH_PAXOS
    bench_replicated(dir, 3, seconds, value_size);
    bench_replicated(dir, 5, seconds, value_size);
#else
    printf("(replicated proposals: skipped, built without the Paxos core)\n");
#endif
    printf("commits/s: durable commits (syncs; for paxos, summed over replicas); items/s: "
           "entries, rows or proposals\np50/p99: latency of one commit (a whole batch), for "
           "paxos of one proposal (propose -> applied at the leader)\nfloor/s: raw "
           "append+fdatasync/s in 4 x 0.25 s slices interleaved with the line's 4 slices; "
           "x floor: items/s over it\n");
    close(floor_fd);
    free(floor_buf);
    rmdir(dir);
    return 0;
}
