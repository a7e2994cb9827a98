/* bench-sql: the SQL benchmark of issue 18. Through Meridian's SQL engine (msql sessions over
 * libmeridian, on a local cluster the launcher starts), it measures a point select, a point
 * insert, a point update, a 100-row range scan and a two-table join (bs.h has the statements),
 * each with N concurrent sessions (one thread per session, each its own connection) for a fixed
 * time or a fixed number of operations per session; then the same statements, schema and data
 * on PostgreSQL (SERIALIZABLE, a private server) and on SQLite (a WAL file database,
 * synchronous=FULL), and the point select and insert through libmeridian directly on the very
 * keys the SQL rows live at (the SQL layer's overhead), all in one run: ops/s, p50 and p99
 * latency, and the ratios.
 *
 * Usage: bench-sql --meridian PATH [--systems meridian-sql,meridian-kv,postgres,sqlite]
 *            [--cases select,insert,update,scan,join] [--sessions 1,8] [--seconds 10 | --ops N]
 *            [--accounts 10000] [--owners 100] [--nodes 3] [--timeout-ms 5000]
 *            [--schema-lease 1s]  (the SQL catalog's; '0': off, a version read per statement)
 *            [--no-prepare]  (meridian-sql prepares every statement's text, the argument in it,
 *                             instead of preparing once per session and binding ?1)
 *            [--pg-bin DIR] [--keep DIR]
 *
 * Every operation's result is checked (a select returns 1 row, a scan 100, a join 10), and so
 * is every cell's effect (the rows inserted are counted back, the balances summed before and
 * after the updates): a wrong answer or a failed operation makes the exit status 1, so the
 * smoke test (bench/sql/CMakeLists.txt) can assert correctness. Speed is only reported. */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_lat.h"
#include "bench/sql/bs.h"
#include "common/mr_log.h"
#include "common/mr_util.h"

#define MAX_LIST    8
#define MAX_SYSTEMS 4

const char *const bs_case_names[BS_CASES] = {"select", "insert", "update", "scan", "join"};

const char *const bs_case_sql[BS_CASES] = {
    [BS_SELECT] = "SELECT balance, name FROM accounts WHERE id = ?1",
    [BS_INSERT] = "INSERT INTO ins VALUES (?1, 0, 1000, 'ins-' || ?1)",
    [BS_UPDATE] = "UPDATE accounts SET balance = balance + 1 WHERE id = ?1",
    [BS_SCAN] = "SELECT id, balance FROM accounts WHERE id >= ?1 AND id < ?1 + 100",
    [BS_JOIN] = "SELECT a.id, o.name FROM accounts a JOIN owners o ON o.id = a.owner "
                "WHERE a.id >= ?1 AND a.id < ?1 + 10",
};

void bs_sql(bs_case k, int64_t a, char *buf, size_t len)
{
    long long x = (long long)a;
    switch (k) {
    case BS_SELECT:
        snprintf(buf, len, "SELECT balance, name FROM accounts WHERE id = %lld", x);
        break;
    case BS_INSERT:
        snprintf(buf, len, "INSERT INTO ins VALUES (%lld, 0, 1000, 'ins-%lld')", x, x);
        break;
    case BS_UPDATE:
        snprintf(buf, len, "UPDATE accounts SET balance = balance + 1 WHERE id = %lld", x);
        break;
    case BS_SCAN:
        snprintf(buf, len, "SELECT id, balance FROM accounts WHERE id >= %lld AND id < %lld", x,
                 x + BS_SCAN_ROWS);
        break;
    case BS_JOIN:
        snprintf(buf, len,
                 "SELECT a.id, o.name FROM accounts a JOIN owners o ON o.id = a.owner "
                 "WHERE a.id >= %lld AND a.id < %lld",
                 x, x + BS_JOIN_ROWS);
        break;
    default:
        snprintf(buf, len, "-- no such case");
    }
}

static const int64_t expected_rows[BS_CASES] = {1, 0, 0, BS_SCAN_ROWS, BS_JOIN_ROWS};

typedef struct cell cell;

typedef struct worker {
    cell *c;
    int idx;
    void *client;
    uint64_t rng;
    int open_rc;
    char open_err[MR_ERRMSG_MAX];
    uint64_t ops, committed, failed, unknown, wrong;
    char last_error[240];
    bench_lat lat;
    pthread_t th;
} worker;

struct cell {
    const bs_system *sys;
    bs_case k;
    int sessions;
    int64_t naccounts, seconds, ops_per_session, insert_base;
    int64_t start, end, finish;
    pthread_barrier_t ready, go;
    worker *w;
    /* results */
    uint64_t ops, committed, failed, unknown, wrong;
    double per_s, p50_ms, p99_ms, mean_ms;
    bool check_failed;
    char last_error[240];
};

/* The argument of the next operation: a row id (select, update), the first id of a range
 * (scan, join), or a fresh id (insert). */
static int64_t next_arg(worker *w, uint64_t seq)
{
    cell *c = w->c;
    switch (c->k) {
    case BS_INSERT:
        return c->insert_base + (int64_t)w->idx * 1000000000LL + (int64_t)seq;
    case BS_SCAN:
        return (int64_t)(bench_rand(&w->rng) % (uint64_t)(c->naccounts - BS_SCAN_ROWS + 1));
    case BS_JOIN:
        return (int64_t)(bench_rand(&w->rng) % (uint64_t)(c->naccounts - BS_JOIN_ROWS + 1));
    default:
        return (int64_t)(bench_rand(&w->rng) % (uint64_t)c->naccounts);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    cell *c = w->c;
    mr_err err;
    w->open_rc = c->sys->open(c->sys->sys, &w->client, &err);
    if (w->open_rc != MR_OK)
        snprintf(w->open_err, sizeof w->open_err, "%s", mr_err_msg(&err));
    pthread_barrier_wait(&c->ready);
    pthread_barrier_wait(&c->go);
    for (uint64_t seq = 0; w->open_rc == MR_OK; seq++) {
        if (c->ops_per_session ? seq >= (uint64_t)c->ops_per_session : mr_monotonic_ns() >= c->end)
            break;
        int64_t a = next_arg(w, seq);
        bs_result r = {0};
        int64_t t0 = mr_monotonic_ns();
        int rc = c->sys->op(w->client, c->k, a, &r);
        int64_t t1 = mr_monotonic_ns();
        bool counted = c->ops_per_session || t1 <= c->end; /* finished in the measured time */
        if (rc == MR_OK) {
            w->committed++;
            if (r.rows != expected_rows[c->k]) {
                w->wrong++;
                snprintf(w->last_error, sizeof w->last_error,
                         "%s with argument %" PRId64 " returned %" PRId64 " rows, not %" PRId64,
                         bs_case_names[c->k], a, r.rows, expected_rows[c->k]);
            }
            if (counted) {
                w->ops++;
                bench_lat_add(&w->lat, t1 - t0);
            }
        } else {
            w->failed++;
            w->unknown += r.unknown;
            snprintf(w->last_error, sizeof w->last_error, "%s", r.msg);
        }
    }
    return NULL;
}

/* Checks a write cell's effect: the rows inserted are there, the balances grew by the updates
 * committed (a write of unknown outcome may or may not count). */
static int check_effect(cell *c, int64_t sum_before, mr_err *err)
{
    int64_t n = 0, lo = (int64_t)c->committed, hi = (int64_t)(c->committed + c->unknown);
    int rc = MR_OK;
    if (c->k == BS_INSERT) {
        rc = c->sys->count_ins(c->sys->sys, c->insert_base, c->insert_base + 1000000000000LL, &n,
                               err);
        if (rc == MR_OK && (n < lo || n > hi))
            rc = mr_errf(err, MR_EIO, "%" PRId64 " rows inserted, %" PRId64 " found", lo, n);
    } else if (c->k == BS_UPDATE) {
        rc = c->sys->sum_balance(c->sys->sys, &n, err);
        if (rc == MR_OK && (n - sum_before < lo || n - sum_before > hi))
            rc =
                mr_errf(err, MR_EIO, "%" PRId64 " updates committed, the balances grew by %" PRId64,
                        lo, n - sum_before);
    }
    return rc;
}

static int run_cell(cell *c, mr_err *err)
{
    int64_t sum_before = 0;
    int rc = MR_OK;
    if (c->k == BS_UPDATE && (rc = c->sys->sum_balance(c->sys->sys, &sum_before, err)) != MR_OK)
        return rc;
    c->w = calloc((size_t)c->sessions, sizeof *c->w);
    if (!c->w)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    pthread_barrier_init(&c->ready, NULL, (unsigned)c->sessions + 1);
    pthread_barrier_init(&c->go, NULL, (unsigned)c->sessions + 1);
    for (int i = 0; i < c->sessions; i++) {
        c->w[i] = (worker){.c = c, .idx = i, .rng = (uint64_t)(c->k * 1000 + i) * 7919 + 17};
        if (pthread_create(&c->w[i].th, NULL, worker_main, &c->w[i]) != 0) {
            /* The barriers count every session: without all threads nobody may wait. */
            fprintf(stderr, "bench-sql: could not start %d threads\n", c->sessions);
            exit(1);
        }
    }
    pthread_barrier_wait(&c->ready); /* every connection open (or failed) */
    c->start = mr_monotonic_ns();
    c->end = c->start + c->seconds * MR_NS_PER_S;
    pthread_barrier_wait(&c->go);
    for (int i = 0; i < c->sessions; i++)
        pthread_join(c->w[i].th, NULL);
    c->finish = mr_monotonic_ns();
    pthread_barrier_destroy(&c->ready);
    pthread_barrier_destroy(&c->go);
    for (int i = 0; i < c->sessions; i++) {
        worker *w = &c->w[i];
        if (w->open_rc != MR_OK && rc == MR_OK)
            rc = mr_errf(err, w->open_rc, "session %d: %s", i, w->open_err);
        c->ops += w->ops;
        c->committed += w->committed;
        c->failed += w->failed;
        c->unknown += w->unknown;
        c->wrong += w->wrong;
        if (w->last_error[0])
            snprintf(c->last_error, sizeof c->last_error, "%s", w->last_error);
    }
    bench_lat_summary ls = bench_lat_summarize(&c->w[0].lat, (size_t)c->sessions, sizeof *c->w);
    for (int i = 0; i < c->sessions; i++)
        c->sys->close(c->w[i].client);
    free(c->w);
    c->w = NULL;
    int64_t span = c->ops_per_session ? c->finish - c->start : c->seconds * MR_NS_PER_S;
    c->per_s = span > 0 ? (double)c->ops * 1e9 / (double)span : 0;
    c->p50_ms = ls.p50_ms;
    c->p99_ms = ls.p99_ms;
    c->mean_ms = ls.mean_ms;
    if (rc == MR_OK) {
        mr_err e2;
        if (check_effect(c, sum_before, &e2) != MR_OK) {
            c->check_failed = true;
            snprintf(c->last_error, sizeof c->last_error, "check: %s", mr_err_msg(&e2));
        }
    }
    return rc;
}

static int parse_list(const char *s, int *out, int *n)
{
    return bench_parse_list(s, out, n, MAX_LIST, 256);
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* Which names of `all` the comma list s holds; false on an unknown name. */
static bool parse_names(const char *s, const char *const *all, int n, bool *want)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (int i = 0; i < n; i++)
        want[i] = false;
    int found = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int i = 0;
        while (i < n && strcmp(all[i], t) != 0)
            i++;
        if (i == n) {
            fprintf(stderr, "bench-sql: unknown name '%s'\n", t);
            return false;
        }
        want[i] = true;
        found++;
    }
    return found > 0;
}

static void usage(void)
{
    fprintf(
        stderr,
        "usage: bench-sql --meridian PATH [--systems meridian-sql,meridian-kv,postgres,sqlite]\n"
        "           [--cases select,insert,update,scan,join] [--sessions 1,8]\n"
        "           [--seconds 10 | --ops N] [--accounts 10000] [--owners 100] [--nodes 3]\n"
        "           [--timeout-ms 5000] [--schema-lease 1s] [--no-prepare] [--pg-bin DIR]\n"
        "           [--keep DIR]\n");
}

enum { SYS_SQL = 0, SYS_KV, SYS_PG, SYS_LITE };
static const char *const sys_names[MAX_SYSTEMS] = {"meridian-sql", "meridian-kv", "postgres",
                                                   "sqlite"};

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"meridian", required_argument, NULL, 'm'},
                                         {"systems", required_argument, NULL, 'y'},
                                         {"cases", required_argument, NULL, 'c'},
                                         {"sessions", required_argument, NULL, 'n'},
                                         {"seconds", required_argument, NULL, 's'},
                                         {"ops", required_argument, NULL, 'o'},
                                         {"accounts", required_argument, NULL, 'a'},
                                         {"owners", required_argument, NULL, 'w'},
                                         {"nodes", required_argument, NULL, 'N'},
                                         {"timeout-ms", required_argument, NULL, 't'},
                                         {"pg-bin", required_argument, NULL, 'p'},
                                         {"keep", required_argument, NULL, 'k'},
                                         {"schema-lease", required_argument, NULL, 'L'},
                                         {"no-prepare", no_argument, NULL, 'P'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *meridian = NULL, *pg_bin = NULL, *keep = NULL, *schema_lease = "1s";
    bool want_sys[MAX_SYSTEMS] = {true, true, true, true};
    bool want_case[BS_CASES] = {true, true, true, true, true};
    int sessions[MAX_LIST] = {1, 8}, nsessions = 2;
    long seconds = 10, ops = 0, accounts = 10000, owners = 100, nodes = 3, timeout_ms = 5000;
    int ch;
    bool ok = true, prepare = true;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'm':
            meridian = optarg;
            break;
        case 'y':
            ok = ok && parse_names(optarg, sys_names, MAX_SYSTEMS, want_sys);
            break;
        case 'c':
            ok = ok && parse_names(optarg, bs_case_names, BS_CASES, want_case);
            break;
        case 'n':
            ok = ok && parse_list(optarg, sessions, &nsessions) == 0;
            break;
        case 's':
            ok = ok && parse_long(optarg, 1, 3600, &seconds);
            break;
        case 'o':
            ok = ok && parse_long(optarg, 1, 100000000, &ops);
            break;
        case 'a':
            ok = ok && parse_long(optarg, BS_SCAN_ROWS, 10000000, &accounts);
            break;
        case 'w':
            ok = ok && parse_long(optarg, 1, 1000000, &owners);
            break;
        case 'N':
            ok = ok && parse_long(optarg, 1, 9, &nodes);
            break;
        case 't':
            ok = ok && parse_long(optarg, 100, 600000, &timeout_ms);
            break;
        case 'p':
            pg_bin = optarg;
            break;
        case 'k':
            keep = optarg;
            break;
        case 'L': {
            int64_t ns;
            ok = ok && strlen(optarg) < 24 &&
                 (strcmp(optarg, "0") == 0 || (mr_parse_duration(optarg, &ns) == 0 && ns >= 0));
            schema_lease = optarg;
            break;
        }
        case 'P':
            prepare = false;
            break;
        case 'h':
            usage();
            return 0;
        default:
            ok = false;
        }
    }
    if (!ok || optind != argc) {
        usage();
        return 2;
    }
    if ((want_sys[SYS_SQL] || want_sys[SYS_KV]) && !meridian) {
        fprintf(stderr, "bench-sql: --meridian PATH is required for the meridian systems\n");
        usage();
        return 2;
    }
    if (owners > accounts) {
        fprintf(stderr, "bench-sql: --owners must not exceed --accounts\n");
        return 2;
    }
    if (!getenv("MERIDIAN_LOG"))
        mr_log_set_level(MR_LOG_WARN);

    bs_system sys[MAX_SYSTEMS];
    bool have[MAX_SYSTEMS] = {false};
    memset(sys, 0, sizeof sys);
    bs_meridian *mer = NULL;
    mr_err err;
    int maxsess = 1;
    for (int i = 0; i < nsessions; i++)
        maxsess = sessions[i] > maxsess ? sessions[i] : maxsess;
    int status = 0;
    if (want_sys[SYS_SQL] || want_sys[SYS_KV]) {
        if (bs_meridian_start(meridian, (int)nodes, keep, timeout_ms, schema_lease, prepare, &mer,
                              &err) != MR_OK) {
            fprintf(stderr, "bench-sql: %s\n", mr_err_msg(&err));
            return 1;
        }
        bs_meridian_systems(mer, &sys[SYS_SQL], &sys[SYS_KV]);
        have[SYS_SQL] = want_sys[SYS_SQL];
        have[SYS_KV] = want_sys[SYS_KV];
        printf("meridian cluster: %s (%ld nodes, one data group on every node); meridian-sql %s\n",
               bs_meridian_dir(mer), nodes,
               prepare ? "prepares each statement once per session and binds ?1"
                       : "prepares every statement's text (--no-prepare)");
    }
    if (want_sys[SYS_PG]) {
#ifdef BS_HAVE_PG
        if (bs_pg_start(pg_bin, maxsess + 20, &sys[SYS_PG], &err) == MR_OK)
            have[SYS_PG] = true;
        else
            fprintf(stderr, "bench-sql: postgres left out: %s\n", mr_err_msg(&err));
#else
        (void)pg_bin;
        (void)maxsess;
        fprintf(stderr, "bench-sql: postgres left out: built without libpq\n");
#endif
    }
    if (want_sys[SYS_LITE]) {
        if (bs_sqlite_start(&sys[SYS_LITE], &err) == MR_OK)
            have[SYS_LITE] = true;
        else
            fprintf(stderr, "bench-sql: sqlite left out: %s\n", mr_err_msg(&err));
    }
    bs_data data = {.naccounts = accounts, .nowners = (int)owners};
    for (int s = 0; s < MAX_SYSTEMS; s++) {
        if (!have[s])
            continue;
        int64_t t0 = mr_monotonic_ns();
        if (sys[s].load(sys[s].sys, &data, &err) != MR_OK) {
            fprintf(stderr, "bench-sql: loading %s: %s\n", sys_names[s], mr_err_msg(&err));
            have[s] = false;
            status = 1;
        } else {
            printf("%s: loaded %ld accounts and %ld owners in %.1f s\n", sys_names[s], accounts,
                   owners, (double)(mr_monotonic_ns() - t0) / 1e9);
        }
    }
    if (ops)
        printf("\n%ld operations per session\n", ops);
    else
        printf("\n%ld s per cell\n", seconds);
    printf("%-8s %4s %-13s %10s %9s %9s %9s %7s\n", "case", "N", "system", "ops/s", "p50 ms",
           "p99 ms", "mean ms", "failed");

    cell cells[MAX_LIST][BS_CASES][MAX_SYSTEMS];
    memset(cells, 0, sizeof cells);
    int cell_no = 0;
    for (int n = 0; n < nsessions; n++) {
        for (int k = 0; k < BS_CASES; k++) {
            if (!want_case[k])
                continue;
            for (int s = 0; s < MAX_SYSTEMS; s++) {
                if (!have[s] || !sys[s].cases[k])
                    continue;
                cell *c = &cells[n][k][s];
                *c = (cell){.sys = &sys[s],
                            .k = (bs_case)k,
                            .sessions = sessions[n],
                            .naccounts = accounts,
                            .seconds = seconds,
                            .ops_per_session = ops,
                            .insert_base = 1000000000000LL * ++cell_no};
                int rc = run_cell(c, &err);
                if (rc != MR_OK) {
                    fprintf(stderr, "bench-sql: %s %s N=%d: %s\n", sys_names[s], bs_case_names[k],
                            sessions[n], mr_err_msg(&err));
                    status = 1;
                    c->sys = NULL;
                    continue;
                }
                printf("%-8s %4d %-13s %10.1f %9.2f %9.2f %9.2f %7" PRIu64 "\n", bs_case_names[k],
                       sessions[n], sys_names[s], c->per_s, c->p50_ms, c->p99_ms, c->mean_ms,
                       c->failed);
                if (c->failed || c->wrong || c->check_failed || c->ops == 0) {
                    fprintf(stderr,
                            "bench-sql: %s %s N=%d: %" PRIu64 " failed, %" PRIu64
                            " wrong answers%s%s: %s\n",
                            sys_names[s], bs_case_names[k], sessions[n], c->failed, c->wrong,
                            c->check_failed ? ", the check failed" : "",
                            c->ops == 0 ? ", no operation finished" : "", c->last_error);
                    status = 1;
                }
                fflush(stdout);
            }
        }
    }

    /* Ratios: meridian-sql against the others. */
    printf("\nratios (meridian-sql / other): throughput, p50 and mean latency\n");
    printf("%-8s %4s %-13s %12s %12s %12s\n", "case", "N", "other", "ops/s ratio", "p50 ratio",
           "mean ratio");
    for (int n = 0; n < nsessions; n++)
        for (int k = 0; k < BS_CASES; k++) {
            const cell *q = &cells[n][k][SYS_SQL];
            if (!q->sys)
                continue;
            for (int s = SYS_KV; s < MAX_SYSTEMS; s++) {
                const cell *o = &cells[n][k][s];
                if (!o->sys || o->per_s <= 0 || o->p50_ms <= 0)
                    continue;
                printf("%-8s %4d %-13s %12.3f %12.2f %12.2f\n", bs_case_names[k], sessions[n],
                       sys_names[s], q->per_s / o->per_s, q->p50_ms / o->p50_ms,
                       o->mean_ms > 0 ? q->mean_ms / o->mean_ms : 0.0);
            }
        }

    if (have[SYS_LITE] || sys[SYS_LITE].sys)
        bs_sqlite_stop(&sys[SYS_LITE]);
#ifdef BS_HAVE_PG
    if (sys[SYS_PG].sys)
        bs_pg_stop(&sys[SYS_PG]);
#endif
    bs_meridian_stop(mer);
    return status;
}
