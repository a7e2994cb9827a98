/* meridian-jepsen: the consistency harness's cluster runner. Starts a real Meridian cluster
 * (each node in its own network namespace, or on loopback), drives a workload's concurrent clients
 * against it while a nemesis injects faults, heals, records everything as a Jepsen history, checks
 * it, and writes the run directory. Exit status: 0 valid, 1 invalid, 2 unknown or harness error
 * (bad arguments included). */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/mr_log.h"
#include "common/mr_util.h"
#include "jepsen/harness/hj_cluster.h"
#include "jepsen/harness/hj_nemesis.h"
#include "jepsen/harness/hj_report.h"
#include "jepsen/harness/hj_run.h"
#include "jepsen/harness/hj_store.h"
#include "jepsen/harness/hj_workload.h"

#ifndef HJ_SOURCE_DIR
#define HJ_SOURCE_DIR "."
#endif

enum { EXIT_VALID = 0, EXIT_INVALID = 1, EXIT_UNKNOWN = 2 };

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: meridian-jepsen --workload W --nemesis KINDS --time SECONDS\n"
        "                       [--nodes K] [--rate R] [--seed S] [--concurrency C]\n"
        "                       [--groups G] [--objects N] [--quiet SECONDS] [--out DIR]\n"
        "                       [--meridian PATH] [--net auto|netns|loopback]\n"
        "                       [--clock-bound DUR] [--break NAME[,NAME...]]\n"
        "                       [--store-check DUR] [--lose-commit-answers PCT]\n"
        "\n"
        "Starts K real `meridian start` nodes (certificates from `meridian cert`; --lease 1s;\n"
        "MERIDIAN_TEST_FAULTS=1), runs `meridian init --data-groups G` (with --split-at\n"
        "r01,r02,... for the transactional workloads), then C client processes issue\n"
        "operations at about R ops/s for SECONDS while the nemesis injects faults; then every\n"
        "fault is healed and the clients go on for a quiet period. The history is checked and\n"
        "written to the run directory with the results, a summary, a latency plot and the\n"
        "node logs.\n"
        "\n"
        "  --workload W      register: a linearizable register per data group (read, write,\n"
        "                    cas over the group's log), checked for linearizability per key;\n"
        "                    bank: transfers in read-write transactions and strong read-only\n"
        "                    reads of every account (total conserved, no negative balance);\n"
        "                    list-append: Elle transactions of appends and reads, checked\n"
        "                    against strict serializability; set: adds, then final reads (lost,\n"
        "                    unexpected). The last three use libmeridian, one connection per\n"
        "                    client thread; sql-bank: the bank through SQL (a table of\n"
        "                    accounts split over tablets; BEGIN; SELECT; UPDATE; UPDATE;\n"
        "                    COMMIT in one SQL session per thread); sql-bank-autocommit: its\n"
        "                    broken variant (transfers as two autocommit UPDATEs), a negative\n"
        "                    control that must come out invalid\n"
        "  --nemesis KINDS   comma-separated: kill (kill -9 one or two nodes, restart),\n"
        "                    pause (SIGSTOP/SIGCONT), partition (random halves, one node\n"
        "                    or a group's leader isolated, or a majorities ring with 4+\n"
        "                    nodes), clock (offset clock readings within +-bound),\n"
        "                    fast-leader (data group leaders read their clocks 0.95 x bound\n"
        "                    fast), lying-leader (16 x bound fast: beyond the bound; only\n"
        "                    real-time order may suffer), split (split the tablet holding a "
        "workload key there;\n"
        "                    transactional workloads); or none. One fault at a time (1-2 s\n"
        "                    rest, 2-4 s fault),\n"
        "                    every kind once per round, rounds in a seeded random order\n"
        "  --time SECONDS    length of the faulty period (>= 1)\n"
        "  --nodes K         nodes, 1..%d (default 5)\n"
        "  --rate R          target operations per second over all clients (default 50)\n"
        "  --seed S          seed of the clients' and the nemesis's choices (default: time)\n"
        "  --concurrency C   client processes (default 10)\n"
        "  --groups G        data groups (default 3); registers = groups; the transactional\n"
        "                    workloads spread their keys over G ranges (--keys is the same)\n"
        "  --objects N       bank accounts (default 5) / list-append keys in use at once\n"
        "                    (default 5)\n"
        "  --quiet SECONDS   healed period at the end, clients still running (default 5)\n"
        "  --out DIR         run directory (default %s/jepsen/runs/<time>-<workload>)\n"
        "  --meridian PATH   the meridian binary (default $MERIDIAN_BIN, else the one built\n"
        "                    beside this program, else `meridian` on PATH)\n"
        "  --net MODE        netns: every node in its own network namespace on a bridge,\n"
        "                    partitions by nftables (needs root, ip, nft); loopback: every\n"
        "                    node on 127.0.0.1, partitions by the nodes' fault RPC; auto\n"
        "                    (default): netns when available, else loopback with a notice\n"
        "  --clock-bound DUR the nodes' declared clock bound, --clock fixed:DUR (default 1ms);\n"
        "                    the clock nemeses lie within it (lying-leader beyond it)\n"
        "  --break NAMES     negative controls: the nodes run with MERIDIAN_TEST_BREAK=NAMES:\n"
        "                    stale-reads (register reads from any replica; reads go to any\n"
        "                    node), no-read-locks (transactional reads unlocked), no-commit-wait\n"
        "                    (commits answered before TT.after(s)), no-safe-wait (snapshot\n"
        "                    reads without waiting for safe time), no-ts-floor (a group's\n"
        "                    timestamps need not exceed the commit timestamps it applied).\n"
        "                    The run must come out invalid (see jepsen/harness/README.md for\n"
        "                    the matching nemesis)\n"
        "  --store-check DUR the nodes keep decisions and old versions for DUR (their\n"
        "                    --decision-retention and --retention); once the clients stop,\n"
        "                    every replica must come back to no decision row and no system-key\n"
        "                    version within 3 x DUR + 30 s, else the run fails (exit 1)\n"
        "  --lose-commit-answers PCT\n"
        "                    transactional workloads: libmeridian drops PCT%% of the commit\n"
        "                    answers as if lost on the way back\n"
        "                    (MERIDIAN_TEST_LOSE_COMMIT_ANSWERS) and learns the outcome from\n"
        "                    the coordinator group's status, which must tell the truth\n"
        "\n"
        "Exit status: 0 valid, 1 invalid, 2 unknown or harness error.\n",
        HJ_MAX_NODES, HJ_SOURCE_DIR);
}

static int bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "meridian-jepsen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nRun 'meridian-jepsen --help' for usage.\n");
    va_end(ap);
    return EXIT_UNKNOWN;
}

typedef struct args {
    const char *workload, *nemesis, *out, *meridian, *brk;
    long long time_s, nodes, concurrency, keys, quiet_s, objects;
    double rate;
    uint64_t seed;
    bool seed_set, keys_set;
    hj_net_mode net;
    int64_t clock_bound_ns;
    int64_t store_check_ns; /* --store-check, 0: off */
    const char *lose;       /* --lose-commit-answers, NULL: off */
} args;

static const char *const break_names[] = {"stale-reads", "no-read-locks", "no-commit-wait",
                                          "no-safe-wait", "no-ts-floor"};

/* Every name of a comma list is a known switch. */
static bool breaks_known(const char *list, char *bad, size_t len)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    bool any = false;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        bool known = false;
        for (size_t i = 0; i < sizeof break_names / sizeof break_names[0]; i++)
            known |= strcmp(t, break_names[i]) == 0;
        if (!known) {
            snprintf(bad, len, "%s", t);
            return false;
        }
        any = true;
    }
    snprintf(bad, len, "%s", list);
    return any;
}

static bool has_break(const char *list, const char *name)
{
    if (!list)
        return false;
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

static int parse_args(int argc, char **argv, args *a)
{
    static const struct option opts[] = {
        {"workload", required_argument, NULL, 'w'},
        {"nemesis", required_argument, NULL, 'n'},
        {"time", required_argument, NULL, 't'},
        {"nodes", required_argument, NULL, 'k'},
        {"rate", required_argument, NULL, 'r'},
        {"seed", required_argument, NULL, 's'},
        {"concurrency", required_argument, NULL, 'c'},
        {"keys", required_argument, NULL, 'g'},
        {"groups", required_argument, NULL, 'g'},
        {"objects", required_argument, NULL, 'O'},
        {"net", required_argument, NULL, 'N'},
        {"clock-bound", required_argument, NULL, 'B'},
        {"quiet", required_argument, NULL, 'q'},
        {"out", required_argument, NULL, 'o'},
        {"meridian", required_argument, NULL, 'm'},
        {"break", required_argument, NULL, 'b'},
        {"store-check", required_argument, NULL, 'S'},
        {"lose-commit-answers", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *a = (args){.nodes = 5, .concurrency = 10, .keys = 3, .quiet_s = 5, .rate = 50, .time_s = -1};
    opterr = 0;
    int ch;
    long long v;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'w':
            a->workload = optarg;
            break;
        case 'n':
            a->nemesis = optarg;
            break;
        case 't':
            if (mr_parse_int(optarg, 1, 86400, &a->time_s) != 0)
                return bad_usage("--time needs whole seconds in 1..86400, not '%s'", optarg);
            break;
        case 'k':
            if (mr_parse_int(optarg, 1, HJ_MAX_NODES, &a->nodes) != 0)
                return bad_usage("--nodes needs an integer in 1..%d, not '%s'", HJ_MAX_NODES,
                                 optarg);
            break;
        case 'r': {
            char *end;
            errno = 0;
            a->rate = strtod(optarg, &end);
            if (*end || errno || !(a->rate > 0 && a->rate <= 100000))
                return bad_usage("--rate needs a number of ops/s in (0, 100000], not '%s'", optarg);
            break;
        }
        case 's':
            if (mr_parse_int(optarg, 0, LLONG_MAX, &v) != 0)
                return bad_usage("--seed needs a non-negative integer, not '%s'", optarg);
            a->seed = (uint64_t)v;
            a->seed_set = true;
            break;
        case 'c':
            if (mr_parse_int(optarg, 1, 1000, &a->concurrency) != 0)
                return bad_usage("--concurrency needs an integer in 1..1000, not '%s'", optarg);
            break;
        case 'g':
            if (mr_parse_int(optarg, 1, HJ_MAX_GROUPS, &a->keys) != 0)
                return bad_usage("--groups (--keys) needs an integer in 1..%d, not '%s'",
                                 HJ_MAX_GROUPS, optarg);
            a->keys_set = true;
            break;
        case 'O':
            if (mr_parse_int(optarg, 2, 1000, &a->objects) != 0)
                return bad_usage("--objects needs an integer in 2..1000, not '%s'", optarg);
            break;
        case 'N':
            if (strcmp(optarg, "auto") == 0)
                a->net = HJ_NET_AUTO;
            else if (strcmp(optarg, "netns") == 0)
                a->net = HJ_NET_NETNS;
            else if (strcmp(optarg, "loopback") == 0)
                a->net = HJ_NET_LOOPBACK;
            else
                return bad_usage("--net takes auto, netns or loopback, not '%s'", optarg);
            break;
        case 'B':
            if (mr_parse_duration(optarg, &a->clock_bound_ns) != 0 ||
                a->clock_bound_ns < 100 * 1000 || a->clock_bound_ns > 5 * MR_NS_PER_S)
                return bad_usage("--clock-bound needs a duration in 100us..5s, not '%s'", optarg);
            break;
        case 'S':
            if (mr_parse_duration(optarg, &a->store_check_ns) != 0 ||
                a->store_check_ns < MR_NS_PER_S || a->store_check_ns > 3600 * MR_NS_PER_S)
                return bad_usage("--store-check needs a duration in 1s..1h, not '%s'", optarg);
            break;
        case 'L':
            if (mr_parse_int(optarg, 0, 100, &v) != 0)
                return bad_usage("--lose-commit-answers needs a percentage in 0..100, not '%s'",
                                 optarg);
            a->lose = optarg;
            break;
        case 'q':
            if (mr_parse_int(optarg, 0, 3600, &a->quiet_s) != 0)
                return bad_usage("--quiet needs whole seconds in 0..3600, not '%s'", optarg);
            break;
        case 'o':
            a->out = optarg;
            break;
        case 'm':
            a->meridian = optarg;
            break;
        case 'b': {
            char bad[256];
            if (!breaks_known(optarg, bad, sizeof bad))
                return bad_usage("--break takes stale-reads, no-read-locks, no-commit-wait, "
                                 "no-safe-wait, no-ts-floor (comma-separated), not '%s'",
                                 bad);
            a->brk = optarg;
            break;
        }
        case 'h':
            usage(stdout);
            return -1;
        case ':':
            return bad_usage("option '%s' needs a value", argv[optind - 1]);
        default:
            return bad_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return bad_usage("unexpected argument '%s'", argv[optind]);
    if (!a->workload)
        return bad_usage("--workload is required (register, bank, list-append, set, sql-bank, "
                         "sql-bank-autocommit)");
    if (!hj_workload_find(a->workload))
        return bad_usage("unknown workload '%s' (register, bank, list-append, set, sql-bank, "
                         "sql-bank-autocommit%s)",
                         a->workload,
                         hj_workload_find("bank") ? ""
                                                  : "; this build has no libmeridian, so only "
                                                    "register");
    if (!a->nemesis)
        return bad_usage("--nemesis is required (kill,pause,partition,clock or none)");
    if (a->time_s < 0)
        return bad_usage("--time is required");
    return 0;
}

/* $MERIDIAN_BIN, else cmd/meridian beside this program's build directory, else PATH. */
static int find_meridian(const char *given, char *out, size_t len)
{
    if (given) {
        snprintf(out, len, "%s", given);
        return access(out, X_OK) == 0 ? 0 : -1;
    }
    const char *env = getenv("MERIDIAN_BIN");
    if (env && *env) {
        snprintf(out, len, "%s", env);
        return access(out, X_OK) == 0 ? 0 : -1;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            if (snprintf(out, len, "%s/../../cmd/meridian", self) < (int)len &&
                access(out, X_OK) == 0)
                return 0;
        }
    }
    const char *p = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", p ? p : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        if (snprintf(out, len, "%s/meridian", d) < (int)len && access(out, X_OK) == 0)
            return 0;
    }
    return -1;
}

static int mkdirs(const char *path)
{
    char buf[HJ_PATH];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* Whether `meridian init` takes --split-at (range boundaries between data groups). */
static bool init_supports_split(const char *bin, const char *dir)
{
    char path[HJ_PATH + 32];
    snprintf(path, sizeof path, "%s/.init-help", dir);
    char *argv[] = {(char *)bin, "init", "--help", NULL};
    hj_run_cmd(argv, path, 10000);
    FILE *f = fopen(path, "r");
    bool yes = false;
    char line[512];
    while (f && fgets(line, sizeof line, f))
        yes |= strstr(line, "--split-at") != NULL;
    if (f)
        fclose(f);
    unlink(path);
    return yes;
}

/* True when path does not exist or is an empty directory. */
static bool dir_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT;
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = false;
    closedir(d);
    return empty;
}

/* ---- the run on the loop ---- */

typedef struct driver {
    uv_loop_t *loop;
    const hj_workload *wl;
    hj_run *run;
    void *wl_state;
    hj_nemesis *nem;
    uv_timer_t deadline, quiet, poll;
    uv_async_t healed_async;
    atomic_bool healed;
    bool clients_done, stopping_clients, finishing, interrupted, closed;
    int quiet_s;
} driver;

static void on_handle_closed(uv_handle_t *h) {}

static void maybe_end(driver *d)
{
    if (d->clients_done && atomic_load(&d->healed) && !d->closed) {
        d->closed = true;
        uv_close((uv_handle_t *)&d->deadline, on_handle_closed);
        uv_close((uv_handle_t *)&d->quiet, on_handle_closed);
        uv_close((uv_handle_t *)&d->poll, on_handle_closed);
        uv_close((uv_handle_t *)&d->healed_async, on_handle_closed);
    }
}

static void on_clients_done(void *ud)
{
    driver *d = ud;
    d->clients_done = true;
    maybe_end(d);
}

static void stop_clients(driver *d)
{
    if (d->stopping_clients)
        return;
    d->stopping_clients = true;
    printf("  %7.2f s  stopping clients\n", (double)hj_elapsed(d->run) / 1e9);
    fflush(stdout);
    d->wl->stop(d->wl_state, on_clients_done, d);
}

static void on_quiet_over(uv_timer_t *h)
{
    stop_clients(h->data);
}

static void on_healed_async(uv_async_t *h)
{
    driver *d = h->data;
    if (!atomic_load(&d->healed))
        return;
    printf("  %7.2f s  every fault healed: %d s quiet period\n", (double)hj_elapsed(d->run) / 1e9,
           d->quiet_s);
    fflush(stdout);
    if (d->interrupted)
        stop_clients(d);
    else if (!d->stopping_clients)
        uv_timer_start(&d->quiet, on_quiet_over, (uint64_t)d->quiet_s * 1000, 0);
    maybe_end(d);
}

/* Nemesis thread. */
static void on_healed(void *ud)
{
    driver *d = ud;
    atomic_store(&d->healed, true);
    uv_async_send(&d->healed_async);
}

static void on_deadline(uv_timer_t *h)
{
    driver *d = h->data;
    if (!d->finishing) {
        d->finishing = true;
        printf("  %7.2f s  faulty period over: healing\n", (double)hj_elapsed(d->run) / 1e9);
        fflush(stdout);
        hj_nemesis_finish(d->nem);
    }
}

static void on_poll(uv_timer_t *h)
{
    driver *d = h->data;
    if (hj_interrupted && !d->interrupted) {
        d->interrupted = true;
        fprintf(stderr, "meridian-jepsen: interrupted: healing, stopping clients, tearing down\n");
        on_deadline(&d->deadline);
        stop_clients(d);
    }
}

static void on_signal(int sig)
{
    hj_interrupted = 1;
}

int main(int argc, char **argv)
{
    args a;
    int prc = parse_args(argc, argv, &a);
    if (prc)
        return prc < 0 ? EXIT_VALID : prc;
    const hj_workload *wl = hj_workload_find(a.workload);
    unsigned kinds;
    mr_err err;
    mr_err_clear(&err);
    if (hj_nemesis_parse(a.nemesis, &kinds, &err) != 0)
        return bad_usage("%s", mr_err_msg(&err));
    if ((kinds & HJ_NEM_PARTITION) && a.nodes < 2)
        return bad_usage("the partition nemesis needs at least 2 nodes");
    if ((kinds & HJ_NEM_SPLIT) && wl && strcmp(wl->name, "register") == 0)
        return bad_usage("the split nemesis splits at keys: use a transactional workload "
                         "(bank, list-append, set), not register");
    char bin[HJ_PATH];
    if (find_meridian(a.meridian, bin, sizeof bin) != 0)
        return bad_usage("no meridian binary%s%s (give --meridian PATH or set MERIDIAN_BIN)",
                         a.meridian ? " at " : "", a.meridian ? a.meridian : "");
    if (!a.seed_set)
        a.seed = (uint64_t)mr_realtime_ns() % 1000000000ull;

    char dir[HJ_PATH];
    if (a.out) {
        snprintf(dir, sizeof dir, "%s", a.out);
    } else {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        char stamp[32];
        strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
        snprintf(dir, sizeof dir, "%s/jepsen/runs/%s-%s", HJ_SOURCE_DIR, stamp, wl->name);
    }
    if (!dir_empty(dir)) {
        fprintf(stderr, "meridian-jepsen: run directory %s exists and is not empty\n", dir);
        return EXIT_UNKNOWN;
    }
    if (mkdirs(dir) != 0) {
        fprintf(stderr, "meridian-jepsen: cannot create %s: %s\n", dir, strerror(errno));
        return EXIT_UNKNOWN;
    }
    char cmdline[2048];
    size_t off = 0;
    for (int i = 0; i < argc && off < sizeof cmdline; i++)
        off += (size_t)snprintf(cmdline + off, sizeof cmdline - off, "%s%s", i ? " " : "", argv[i]);
    if (!a.seed_set && off < sizeof cmdline)
        snprintf(cmdline + off, sizeof cmdline - off, " (seed %llu chosen)",
                 (unsigned long long)a.seed);

    /* libmeridian reads it at meridian_open, in every client thread's connection. */
    if (a.lose && setenv("MERIDIAN_TEST_LOSE_COMMIT_ANSWERS", a.lose, 1) != 0) {
        fprintf(stderr, "meridian-jepsen: setenv: %s\n", strerror(errno));
        return EXIT_UNKNOWN;
    }
    /* The transport logs every connection at info: keep the harness's own output readable
     * (MERIDIAN_LOG=info brings them back). */
    if (!getenv("MERIDIAN_LOG"))
        mr_log_set_level(MR_LOG_WARN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Transactional workloads spread their keys over the groups' ranges: r01, r02, ... are
     * the boundaries, when `meridian init` takes them (--split-at). */
    bool txn = strcmp(wl->name, "register") != 0;
    char split[256] = "";
    bool can_split = txn && init_supports_split(bin, dir);
    if (txn && !a.keys_set)
        a.keys = can_split ? 3 : 1;
    if (txn && a.keys > 1) {
        if (can_split)
            hj_split_at((int)a.keys, split, sizeof split);
        else
            printf("notice: `meridian init` has no --split-at: every key lands in the first "
                   "data group's range\n");
    }

    printf("meridian-jepsen: %s, %lld nodes, %lld data groups, nemesis %s%s%s, seed %llu\n"
           "run directory: %s\n",
           wl->name, a.nodes, a.keys, a.nemesis, a.brk ? ", NEGATIVE CONTROL --break " : "",
           a.brk ? a.brk : "", (unsigned long long)a.seed, dir);
    fflush(stdout);

    int exit_code = EXIT_UNKNOWN;
    hj_run run;
    hj_run_init(&run);
    hj_cluster cluster;
    hj_nemesis *nem = NULL;
    int leader[128];
    hj_cluster_opts co = {.bin = bin,
                          .dir = dir,
                          .nodes = (int)a.nodes,
                          .groups = (int)a.keys,
                          .breaks = a.brk,
                          .net = a.net,
                          .clock_bound_ns = a.clock_bound_ns,
                          .split_at = split,
                          .retention_ns = a.store_check_ns};
    int setup_rc = hj_cluster_setup(&cluster, &co, leader, &err);
    if (cluster.net_notice[0])
        printf("notice: %s\n", cluster.net_notice);
    if (setup_rc != MR_OK) {
        fprintf(stderr, "meridian-jepsen: cluster setup failed: %s\n", mr_err_msg(&err));
        hj_cluster_teardown(&cluster);
        hj_run_free(&run);
        return EXIT_UNKNOWN;
    }
    if (cluster.netns)
        printf("network: one namespace per node (mj%dn1..%lld), veth pairs on bridge %s, nodes "
               "at %s; partitions by nftables\n",
               (int)getpid(), a.nodes, cluster.bridge, cluster.addrs);
    else
        printf("network: loopback (127.0.0.1); partitions by the nodes' test-only fault RPC\n");
    printf("cluster up: %lld nodes, %lld data groups%s%s, clock %s, every group has a leader\n",
           a.nodes, a.keys, split[0] ? " split at " : "", split, cluster.clock_spec);
    fflush(stdout);

    uv_loop_t loop;
    uv_loop_init(&loop);
    driver d = {.loop = &loop, .wl = wl, .run = &run, .quiet_s = (int)a.quiet_s};
    atomic_init(&d.healed, false);
    uv_timer_init(&loop, &d.deadline);
    uv_timer_init(&loop, &d.quiet);
    uv_timer_init(&loop, &d.poll);
    uv_async_init(&loop, &d.healed_async, on_healed_async);
    d.deadline.data = d.quiet.data = d.poll.data = d.healed_async.data = &d;

    run.t0 = mr_monotonic_ns();
    run.t0_wall = mr_realtime_ns();
    hj_client_env env = {.loop = &loop,
                         .run = &run,
                         .cluster = &cluster,
                         .concurrency = (int)a.concurrency,
                         .rate = a.rate,
                         .keys = (int)a.keys,
                         .seed = a.seed,
                         .reads_anywhere = has_break(a.brk, "stale-reads"),
                         .breaks = a.brk ? a.brk : "",
                         .objects = (int)a.objects,
                         .leader = leader,
                         .op_timeout_ms = 5000};
    hj_nemesis_opts no = {.kinds = kinds,
                          .seed = a.seed ^ 0x6e656d65736973ull,
                          .rest_min_ns = 1 * MR_NS_PER_S,
                          .rest_max_ns = 2 * MR_NS_PER_S,
                          .hold_min_ns = 2 * MR_NS_PER_S,
                          .hold_max_ns = 4 * MR_NS_PER_S,
                          .on_healed = on_healed,
                          .ud = &d};
    /* The split nemesis cuts between the workload's own keys (hj_txn_key). */
    int objects = a.objects > 0 ? (int)a.objects : 5; /* the workloads' default */
    if (strcmp(wl->name, "bank") == 0) {
        no.split_kind = "bank";
        no.split_ids = objects;
    } else if (strncmp(wl->name, "sql-bank", 8) == 0) {
#ifdef HJ_HAVE_SQL
        no.split_key = hj_sqlbank_split_key; /* the engine's row keys, known after setup */
#endif
        no.split_ids = objects;
    } else if (strcmp(wl->name, "list-append") == 0) {
        no.split_kind = "la";
        no.split_ids = 4 * objects;
    } else {
        no.split_kind = "set";
        no.split_ids = 100;
    }
    bool ran = false;
    if (wl->start(&env, &d.wl_state, &err) != MR_OK) {
        fprintf(stderr, "meridian-jepsen: clients: %s\n", mr_err_msg(&err));
    } else if (hj_nemesis_start(&cluster, &run, &no, &nem, &err) != MR_OK) {
        fprintf(stderr, "meridian-jepsen: nemesis: %s\n", mr_err_msg(&err));
        d.nem = NULL;
        atomic_store(&d.healed, true);
        stop_clients(&d);
        uv_run(&loop, UV_RUN_DEFAULT);
    } else {
        d.nem = nem;
        ran = true;
        /* The loop's clock was read at uv_loop_init: a workload setup that took seconds
         * (sql-bank's splits) would otherwise come out of --time. */
        uv_update_time(&loop);
        uv_timer_start(&d.deadline, on_deadline, (uint64_t)a.time_s * 1000, 0);
        uv_timer_start(&d.poll, on_poll, 100, 100);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    if (!d.closed) {
        /* The clients never started: close the driver's handles. */
        uv_close((uv_handle_t *)&d.deadline, on_handle_closed);
        uv_close((uv_handle_t *)&d.quiet, on_handle_closed);
        uv_close((uv_handle_t *)&d.poll, on_handle_closed);
        uv_close((uv_handle_t *)&d.healed_async, on_handle_closed);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&loop);
    if (d.wl_state)
        wl->free_state(d.wl_state);

    json_t *store = NULL;
    bool store_bounded = true;
    if (ran && a.store_check_ns && !d.interrupted && !hj_interrupted) {
        int wait_s = (int)(3 * a.store_check_ns / MR_NS_PER_S) + 30;
        printf("run over after %.1f s: measuring the stores, then waiting up to %d s for them "
               "to come back\n",
               (double)hj_elapsed(&run) / 1e9, wait_s);
        fflush(stdout);
        store = hj_store_check(&cluster, wait_s, &store_bounded);
    }
    printf("run over after %.1f s: tearing the cluster down\n", (double)hj_elapsed(&run) / 1e9);
    fflush(stdout);
    hj_cluster_teardown(&cluster);
    hj_report_info info = {.dir = dir,
                           .cmdline = cmdline,
                           .workload = wl,
                           .nodes = (int)a.nodes,
                           .keys = (int)a.keys,
                           .concurrency = (int)a.concurrency,
                           .time_s = (int)a.time_s,
                           .quiet_s = (int)a.quiet_s,
                           .rate = a.rate,
                           .seed = a.seed,
                           .kinds = kinds,
                           .breaks = a.brk,
                           .interrupted = d.interrupted || hj_interrupted,
                           .record_errs = run.record_errs,
                           .start_wall_ns = run.t0_wall,
                           .cluster = &cluster,
                           .store = store};
    if (nem) {
        for (int b = 0; b < HJ_NEM_KINDS; b++)
            info.fault_counts[b] = hj_nemesis_count(nem, b);
        info.crashes = hj_nemesis_crashes(nem);
    }
    hj_nemesis_free(nem);
    if (ran) {
        jp_validity v;
        if (hj_report_write(&info, &run.hist, &v, &err) != MR_OK)
            fprintf(stderr, "meridian-jepsen: %s\n", mr_err_msg(&err));
        else
            exit_code = info.interrupted  ? EXIT_UNKNOWN
                        : v == JP_VALID   ? EXIT_VALID
                        : v == JP_INVALID ? EXIT_INVALID
                                          : EXIT_UNKNOWN;
        if (exit_code == EXIT_VALID && !store_bounded)
            exit_code = EXIT_INVALID; /* the stores grew: "store: NOT BOUNDED" in the summary */
        printf("run directory: %s\n", dir);
    }
    json_decref(store);
    hj_run_free(&run);
    return exit_code;
}
