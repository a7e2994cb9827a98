/* `meridian demo`: a local cluster on loopback in a fresh temporary directory (certificates,
 * a private chronyd pair as the clock when chronyd is installed, N nodes in their zones,
 * started by the launcher, launch/cluster.h, with this binary as the node binary), a small
 * sample schema with data, and the SQL shell over it. Everything it started, and the
 * directory, goes away when it ends: normally, on an error, or on SIGINT, SIGTERM or SIGHUP
 * (--keep keeps the directory). Notices go to stderr; with -e or -f stdout carries only the
 * results, and the exit status is the shell's. */
#include <getopt.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/sql_shell.h"
#include "common/mr_log.h"
#include "common/mr_util.h"
#include "launch/chronyd.h"
#include "launch/cluster.h"
#include "meridian.h"

/* The sample: Spanner's classic singers, albums and songs (names invented). Albums are
 * interleaved in their singer and songs in their album, so a singer's row, albums and songs
 * are one directory (stored together, split and placed together); deleting a singer
 * deletes them too. */
static const char demo_schema[] = "CREATE TABLE singers (\n"
                                  "  singer_id INTEGER PRIMARY KEY,\n"
                                  "  first_name TEXT NOT NULL,\n"
                                  "  last_name TEXT NOT NULL,\n"
                                  "  country TEXT\n"
                                  ");\n"
                                  "CREATE TABLE albums (\n"
                                  "  singer_id INTEGER NOT NULL,\n"
                                  "  album_id INTEGER NOT NULL,\n"
                                  "  title TEXT NOT NULL,\n"
                                  "  released INTEGER,\n"
                                  "  PRIMARY KEY (singer_id, album_id)\n"
                                  ") INTERLEAVE IN PARENT singers ON DELETE CASCADE;\n"
                                  "CREATE TABLE songs (\n"
                                  "  singer_id INTEGER NOT NULL,\n"
                                  "  album_id INTEGER NOT NULL,\n"
                                  "  track INTEGER NOT NULL,\n"
                                  "  title TEXT NOT NULL,\n"
                                  "  seconds INTEGER,\n"
                                  "  PRIMARY KEY (singer_id, album_id, track)\n"
                                  ") INTERLEAVE IN PARENT albums ON DELETE CASCADE;\n";

static const char demo_data[] = "INSERT INTO singers VALUES\n"
                                "  (1, 'Marta', 'Ilves', 'EE'),\n"
                                "  (2, 'Tomasz', 'Wren', 'PL'),\n"
                                "  (3, 'Aiko', 'Morrow', 'JP'),\n"
                                "  (4, 'Lucas', 'Ferreira', 'BR');\n"
                                "INSERT INTO albums VALUES\n"
                                "  (1, 1, 'Northern Light', 2019),\n"
                                "  (1, 2, 'Salt and Pine', 2022),\n"
                                "  (2, 1, 'Paper Harbours', 2016),\n"
                                "  (3, 1, 'Quiet Machines', 2021),\n"
                                "  (3, 2, 'Glass Orchard', 2023),\n"
                                "  (4, 1, 'Rio Slow', 2018);\n"
                                "INSERT INTO songs VALUES\n"
                                "  (1, 1, 1, 'First Frost', 214),\n"
                                "  (1, 1, 2, 'Harbour Lamps', 187),\n"
                                "  (1, 2, 1, 'Pine Needle Waltz', 242),\n"
                                "  (2, 1, 1, 'Paper Boats', 201),\n"
                                "  (2, 1, 2, 'Low Tide', 233),\n"
                                "  (2, 1, 3, 'Gull Song', 176),\n"
                                "  (3, 1, 1, 'Idle Hum', 305),\n"
                                "  (3, 2, 1, 'Orchard in Glass', 268),\n"
                                "  (3, 2, 2, 'Blue Hour', 199),\n"
                                "  (4, 1, 1, 'Saudade Lane', 251);\n";

static volatile sig_atomic_t demo_signal;

static void on_signal(int sig)
{
    demo_signal = sig;
}

static void demo_usage(FILE *f)
{
    fprintf(
        f,
        "usage: meridian demo [--nodes N] [--zones Z1,Z2,...] [--keep]\n"
        "                     [-e SQL] [-f FILE] [--format " SF_FORMAT_NAMES "]\n"
        "                     [--header | --no-header] [--continue-on-error]\n\n"
        "Starts a local cluster on loopback in a fresh temporary directory: certificates,\n"
        "a private pair of chronyd daemons as the clock (when chronyd is installed; else\n"
        "a declared bound, said so), N nodes (default 3) in their zones (default one\n"
        "zone each: zonea, zoneb, ...; --zones gives the names, reused in turn), and a\n"
        "sample schema with data (singers, albums, songs). Then it prints how to connect\n"
        "from another terminal and opens the SQL shell (see 'meridian sql --help'); with\n"
        "-e or -f it runs them instead, prints only their results on stdout and exits\n"
        "with the shell's status. Every process it started and the directory are removed\n"
        "when it ends, also on Ctrl-C or an error; --keep keeps the directory.\n\n"
        "  --nodes N            1..%d nodes (3 replicas, or N when fewer)\n"
        "  --zones LIST         zone names, comma-separated\n"
        "  --keep               keep the directory (data, logs, certificates)\n" SQLSH_OPTIONS_HELP,
        LC_MAX_NODES);
}

/* Splits LIST into at most LC_MAX_NODES zone names in buf (each [A-Za-z0-9_-], 1..20 bytes). */
static int parse_zones(const char *list, char names[][24], int *n)
{
    *n = 0;
    for (const char *p = list;; p++) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len > 20 || *n == LC_MAX_NODES)
            return -1;
        for (size_t i = 0; i < len; i++)
            if (!(p[i] == '-' || p[i] == '_' || (p[i] >= '0' && p[i] <= '9') ||
                  (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z')))
                return -1;
        snprintf(names[(*n)++], 24, "%.*s", (int)len, p);
        p += len;
        if (!*p)
            return 0;
    }
}

static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...)
{
    va_list ap;
    fputs("demo: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Starts the cluster: setup (with chrony when asked), nodes, init, leaders. MR_OK, or a
 * failure in err (lc_destroy cleans up either way). */
static int demo_cluster(lc_cluster *c, const lc_opts *lo, mr_err *err)
{
    /* The launcher's own clock reading warns while chronyd synchronizes: not news here. */
    bool quiet = !getenv("MERIDIAN_LOG");
    if (quiet)
        mr_log_set_level(MR_LOG_ERROR);
    int rc = lc_setup(c, lo, err);
    if (quiet)
        mr_log_set_level(MR_LOG_WARN);
    if (rc != MR_OK)
        return rc;
    progress("directory %s", c->dir);
    if (lo->chrony)
        progress("chronyd pid %d (upstream), pid %d (the nodes' source), synchronized",
                 (int)c->chrony.upstream, (int)c->chrony.node);
    if ((rc = lc_start_all(c, err)) != MR_OK)
        return rc;
    for (int i = 0; i < c->n; i++)
        progress("node %d (%s) at %s, pid %d, log %s", i, lo->zones[i], c->nodes[i].addr,
                 (int)c->nodes[i].pid, c->nodes[i].log);
    if ((rc = lc_wait_up(c, 60000, err)) != MR_OK)
        return rc;
    if ((rc = lc_init(c, 1, c->n < 3 ? c->n : 3, NULL, err)) != MR_OK)
        return rc;
    int leader[2];
    return lc_wait_leaders(c, leader, 2, 60000, err);
}

int cmd_demo(int argc, char **argv)
{
    sqlsh_opts so;
    int rc = sqlsh_take_opts("demo", &argc, argv, &so);
    if (rc)
        return rc;
    static const struct option opts[] = {{"nodes", required_argument, NULL, 'n'},
                                         {"zones", required_argument, NULL, 'z'},
                                         {"keep", no_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    long long nodes = 3;
    const char *zone_list = NULL;
    bool keep = false;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            if (mr_parse_int(optarg, 1, LC_MAX_NODES, &nodes) != 0)
                return cmd_usage_error("demo", "--nodes needs an integer in 1..%d", LC_MAX_NODES);
            break;
        case 'z':
            zone_list = optarg;
            break;
        case 'k':
            keep = true;
            break;
        case 'h':
            demo_usage(stdout);
            return CMD_EXIT_OK;
        case ':':
            return cmd_usage_error("demo", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cmd_usage_error("demo", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cmd_usage_error("demo", "unexpected argument '%s'", argv[optind]);
    char zones[LC_MAX_NODES][24];
    int nzones = 0;
    if (zone_list && parse_zones(zone_list, zones, &nzones) != 0)
        return cmd_usage_error("demo",
                               "--zones '%s': give 1..%d names of 1..20 letters, digits, '-' "
                               "or '_', comma-separated",
                               zone_list, LC_MAX_NODES);
    if (!zone_list) {
        nzones = (int)nodes;
        for (int i = 0; i < nzones; i++)
            snprintf(zones[i], sizeof zones[i], "zone%c", 'a' + i);
    }
    char self[LC_PATH];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        return cmd_fail("demo", "cannot find this program's own path (/proc/self/exe)");
    self[len] = '\0';
    if (!getenv("MERIDIAN_LOG"))
        mr_log_set_level(MR_LOG_WARN);

    /* From here on every exit goes through the cleanup below. */
    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term, old_hup, old_pipe;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigaction(SIGPIPE, &ign, &old_pipe); /* a closed stdout is an error, not a lost cleanup */

    lc_opts lo = {
        .bin = self, .prefix = "meridian-demo", .nodes = (int)nodes, .stop = &demo_signal};
    for (int i = 0; i < nodes; i++)
        lo.zones[i] = zones[i % nzones];
    lo.chrony = chronyd_path() != NULL;
    if (!lo.chrony) {
        lo.clock = "fixed:1ms";
        progress("chronyd is not installed: the nodes read the system clock with a declared "
                 "bound of 1 ms (fixed:1ms), not a measured one");
    }
    progress("starting %d node%s on loopback", (int)nodes, nodes == 1 ? "" : "s");
    int64_t t0 = mr_monotonic_ns();
    lc_cluster *c = calloc(1, sizeof *c);
    meridian *db = NULL;
    msql *s = NULL;
    mr_err err;
    mr_err_clear(&err);
    int status = CMD_EXIT_FAIL;
    if (!c) {
        fprintf(stderr, "meridian demo: out of memory\n");
        goto restore;
    }
    rc = demo_cluster(c, &lo, &err);
    if (rc != MR_OK && lo.chrony && strstr(mr_err_msg(&err), "chronyd") && !demo_signal) {
        /* chronyd is there but would not run here (no permission, ...): fall back. */
        progress("the private chronyd did not start (%s): falling back to the system clock "
                 "with a declared bound of 1 ms (fixed:1ms)",
                 mr_err_msg(&err));
        lc_destroy(c, false);
        lo.chrony = false;
        lo.clock = "fixed:1ms";
        mr_err_clear(&err);
        rc = demo_cluster(c, &lo, &err);
    }
    if (rc != MR_OK) {
        if (!demo_signal)
            fprintf(stderr, "meridian demo: cannot start the cluster: %s\n", mr_err_msg(&err));
        goto out;
    }
    progress("cluster up in %.1f s: %d node%s, %d replica%s of one data group",
             (double)(mr_monotonic_ns() - t0) / 1e9, c->n, c->n == 1 ? "" : "s",
             c->n < 3 ? c->n : 3, c->n == 1 ? "" : "s");

    meridian_options mo = {.addrs = c->addrs, .certs_dir = c->certs};
    rc = meridian_open(&mo, &db);
    if (rc != MERIDIAN_OK) {
        fprintf(stderr, "meridian demo: cannot connect to the cluster: %s\n",
                db ? meridian_errmsg(db) : "out of memory");
        goto out;
    }
    if ((rc = msql_open(db, &s)) != MSQL_OK) { /* s, when set, says why */
        fprintf(stderr, "meridian demo: cannot open an SQL session: %s\n",
                s ? msql_errmsg(s) : "out of memory");
        goto out;
    }
    /* Every schema change waits out the schema lease (1 s on a new catalog): the
     * load runs under a short one and sets the default back after (a wait of
     * that short lease; the new catalog's first change waits for nothing). */
    if (msql_exec(s, "SET CLUSTER SETTING schema_lease = '10ms'") != MSQL_OK ||
        msql_exec(s, demo_schema) != MSQL_OK || msql_exec(s, demo_data) != MSQL_OK ||
        msql_exec(s, "SET CLUSTER SETTING schema_lease = '1s'") != MSQL_OK) {
        fprintf(stderr, "meridian demo: cannot load the sample data: %s\n", msql_errmsg(s));
        goto out;
    }
    if (demo_signal)
        goto out;
    progress("loaded the sample: singers (4 rows), albums (6) interleaved in singers, songs "
             "(10) in albums");
    progress("connect from another terminal with:\n  %s sql --host %s --certs %s", self, c->addrs,
             c->certs);
    if (so.ninputs == 0 && isatty(STDIN_FILENO))
        progress("try: SELECT * FROM singers;  \\dt lists the tables, \\q quits (and stops the "
                 "cluster)");
    status = sqlsh_run(s, &so, &demo_signal);
out:
    msql_close(s);
    meridian_close(db);
    if (c) {
        lc_destroy(c, keep);
        if (!c->dir[0])
            ;
        else if (keep)
            progress("stopped; kept %s (data, logs, certificates)", c->dir);
        else
            progress("stopped every node%s and removed %s", lo.chrony ? " and chronyd" : "",
                     c->dir);
        free(c);
    }
restore:
    if (demo_signal) {
        progress("interrupted (signal %d)", (int)demo_signal);
        status = 128 + demo_signal;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    return status;
}
