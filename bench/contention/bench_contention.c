/* bench-contention: hot keys under growing client counts (issue 19). N client threads (3, 12,
 * 48 by default) run read-modify-write transactions on K hot keys (5, and 200 for contrast):
 * read two distinct keys, append a unique token to one or both (the consistency harness's
 * list-append shape), in a closed loop for a fixed time, each transaction retried by its
 * system's runner with the same backoff until a deadline. Systems: Meridian over
 * libmeridian's meridian_run on a local cluster the launcher starts (no faults), and
 * PostgreSQL with SERIALIZABLE transactions on the same rows (when built with libpq), in one
 * run so the ratios compare like with like on the same machine.
 *
 * Usage: bench-contention --meridian PATH [--systems meridian,postgres] [--clients 3,12,48]
 *            [--keys 5,200] [--seconds 20] [--nodes 3] [--groups 3] [--lease 1s]
 *            [--timeout-ms 5000] [--deadline-ms 10000] [--pg-bin DIR] [--json FILE]
 *            [--keep DIR] [--seed S]
 *
 * Per cell (system, N, K): committed transactions per second, transactions that gave up,
 * aborted attempts (retries) by reason, latency p50 / p99 / max of committed transactions
 * (first attempt to commit, retries included). Results: bench/RESULTS.md. */
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_lat.h"
#include "bench/contention/bc.h"
#include "common/mr_log.h"
#include "common/mr_util.h"

#define MAX_LIST 16

typedef struct worker {
    struct cell *cell;
    int idx;
    bc_client *c;
    uint64_t rng;
    int open_rc;
    char open_err[MR_ERRMSG_MAX];
    uint64_t commits, failed, attempts, reasons[BC_REASONS];
    bench_lat lat;
    char last_error[200];
    pthread_t th;
} worker;

typedef struct cell {
    const bc_system *sys;
    int id, clients, nkeys;
    char **keys;
    int64_t seconds, deadline_ms;
    int64_t end;
    pthread_barrier_t ready, go;
    worker *w;
    /* results */
    uint64_t commits, failed, attempts, reasons[BC_REASONS];
    double per_s, p50_ms, p99_ms, max_ms;
    char last_error[200];
} cell;

static void *worker_main(void *arg)
{
    worker *w = arg;
    cell *c = w->cell;
    mr_err err;
    w->open_rc = c->sys->open(c->sys->sys, &w->c, &err);
    if (w->open_rc != MR_OK)
        snprintf(w->open_err, sizeof w->open_err, "%s", mr_err_msg(&err));
    pthread_barrier_wait(&c->ready);
    pthread_barrier_wait(&c->go);
    uint64_t seq = 0;
    while (w->open_rc == MR_OK && mr_monotonic_ns() < c->end) {
        int a = (int)(bench_rand(&w->rng) % (uint64_t)c->nkeys);
        int b = (int)(bench_rand(&w->rng) % (uint64_t)(c->nkeys - 1));
        if (b >= a)
            b++;
        char token[32];
        snprintf(token, sizeof token, "%d.%llu", w->idx, (unsigned long long)++seq);
        bc_txn t = {.keys = {c->keys[a], c->keys[b]},
                    .nappend = 1 + (int)(bench_rand(&w->rng) % 2),
                    .token = token};
        bc_outcome o;
        int64_t t0 = mr_monotonic_ns();
        int rc = c->sys->run(w->c, &t, c->deadline_ms, &o);
        int64_t t1 = mr_monotonic_ns();
        if (t1 > c->end)
            break; /* finished after the measured time: not counted */
        w->attempts += o.attempts;
        for (int r = 0; r < BC_REASONS; r++)
            w->reasons[r] += o.reasons[r];
        if (rc == MR_OK) {
            w->commits++;
            bench_lat_add(&w->lat, t1 - t0);
        } else {
            w->failed++;
            snprintf(w->last_error, sizeof w->last_error, "%s", o.last_error);
        }
    }
    return NULL;
}

/* Runs one cell: keys, clients, the measured time, the figures. */
static int run_cell(cell *c, mr_err *err)
{
    int rc = c->sys->prepare(c->sys->sys, (const char *const *)c->keys, c->nkeys, err);
    if (rc != MR_OK)
        return rc;
    c->w = calloc((size_t)c->clients, sizeof *c->w);
    if (!c->w)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    pthread_barrier_init(&c->ready, NULL, (unsigned)c->clients + 1);
    pthread_barrier_init(&c->go, NULL, (unsigned)c->clients + 1);
    int started = 0;
    for (int i = 0; i < c->clients; i++) {
        c->w[i] = (worker){.cell = c, .idx = i, .rng = (uint64_t)(c->id * 1000 + i) * 7919 + 1};
        if (pthread_create(&c->w[i].th, NULL, worker_main, &c->w[i]) != 0)
            break;
        started++;
    }
    if (started < c->clients) {
        /* The barriers count every client: without all threads nobody may wait on them. */
        fprintf(stderr, "bench-contention: could not start %d threads\n", c->clients);
        exit(1);
    }
    pthread_barrier_wait(&c->ready); /* every connection open (or failed) */
    c->end = mr_monotonic_ns() + c->seconds * MR_NS_PER_S;
    pthread_barrier_wait(&c->go);
    for (int i = 0; i < c->clients; i++)
        pthread_join(c->w[i].th, NULL);
    pthread_barrier_destroy(&c->ready);
    pthread_barrier_destroy(&c->go);
    for (int i = 0; i < c->clients; i++) {
        worker *w = &c->w[i];
        if (w->open_rc != MR_OK && rc == MR_OK)
            rc = mr_errf(err, w->open_rc, "client %d: %s", i, w->open_err);
        c->commits += w->commits;
        c->failed += w->failed;
        c->attempts += w->attempts;
        for (int r = 0; r < BC_REASONS; r++)
            c->reasons[r] += w->reasons[r];
        if (w->last_error[0])
            snprintf(c->last_error, sizeof c->last_error, "%s", w->last_error);
    }
    bench_lat_summary ls = bench_lat_summarize(&c->w[0].lat, (size_t)c->clients, sizeof *c->w);
    for (int i = 0; i < c->clients; i++)
        c->sys->close(c->w[i].c);
    free(c->w);
    c->w = NULL;
    c->per_s = (double)c->commits / (double)c->seconds;
    c->p50_ms = ls.p50_ms;
    c->p99_ms = ls.p99_ms;
    c->max_ms = ls.max_ms;
    return rc;
}

static int parse_list(const char *s, int *out, int *n)
{
    return bench_parse_list(s, out, n, MAX_LIST, 100000);
}

static void print_cell(const cell *c)
{
    uint64_t aborted = c->attempts - c->commits;
    printf("%-9s %7d %5d %12.1f %8llu %7llu %9llu %9.1f %9.1f %9.1f ", c->sys->name, c->clients,
           c->nkeys, c->per_s, (unsigned long long)c->commits, (unsigned long long)c->failed,
           (unsigned long long)aborted, c->p50_ms, c->p99_ms, c->max_ms);
    bool any = false;
    for (int r = 0; r < BC_REASONS; r++)
        if (c->reasons[r]) {
            printf("%s%s %llu", any ? ", " : "", bc_reason_names[r],
                   (unsigned long long)c->reasons[r]);
            any = true;
        }
    printf("%s\n", any ? "" : "-");
    if (c->last_error[0])
        printf("          last failure: %s\n", c->last_error);
    fflush(stdout);
}

static void print_header(void)
{
    printf("%-9s %7s %5s %12s %8s %7s %9s %9s %9s %9s %s\n", "system", "clients", "keys",
           "committed/s", "commits", "failed", "retries", "p50_ms", "p99_ms", "max_ms",
           "retries by reason");
}

static json_t *cell_json(const cell *c)
{
    json_t *reasons = json_object();
    for (int r = 0; r < BC_REASONS; r++)
        json_object_set_new(reasons, bc_reason_names[r], json_integer((json_int_t)c->reasons[r]));
    return json_pack("{s:s, s:i, s:i, s:I, s:f, s:I, s:I, s:I, s:f, s:f, s:f, s:o, s:s}", "system",
                     c->sys->name, "clients", c->clients, "keys", c->nkeys, "seconds",
                     (json_int_t)c->seconds, "committed_per_s", c->per_s, "commits",
                     (json_int_t)c->commits, "failed", (json_int_t)c->failed, "retries",
                     (json_int_t)(c->attempts - c->commits), "p50_ms", c->p50_ms, "p99_ms",
                     c->p99_ms, "max_ms", c->max_ms, "retries_by_reason", reasons, "last_failure",
                     c->last_error);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench-contention --meridian PATH [--systems meridian,postgres] "
                    "[--clients 3,12,48] [--keys 5,200]\n"
                    "           [--seconds 20] [--nodes 3] [--groups 3] [--lease 1s] [--timeout-ms "
                    "5000] [--deadline-ms 10000]\n"
                    "           [--pg-bin DIR] [--json FILE] [--keep DIR]\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"meridian", required_argument, NULL, 'm'},
                                         {"systems", required_argument, NULL, 'S'},
                                         {"clients", required_argument, NULL, 'c'},
                                         {"keys", required_argument, NULL, 'k'},
                                         {"seconds", required_argument, NULL, 's'},
                                         {"nodes", required_argument, NULL, 'n'},
                                         {"groups", required_argument, NULL, 'g'},
                                         {"lease", required_argument, NULL, 'l'},
                                         {"timeout-ms", required_argument, NULL, 't'},
                                         {"deadline-ms", required_argument, NULL, 'd'},
                                         {"pg-bin", required_argument, NULL, 'p'},
                                         {"json", required_argument, NULL, 'j'},
                                         {"keep", required_argument, NULL, 'K'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *meridian = NULL, *systems = NULL, *pg_bin = NULL, *json_path = NULL;
    const char *keep = NULL, *lease = "1s";
    int clients[MAX_LIST] = {3, 12, 48}, nclients = 3;
    int keys[MAX_LIST] = {5, 200}, nkeys = 2;
    long seconds = 20, nodes = 3, groups = 3, timeout_ms = 5000, deadline_ms = 10000;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'm':
            meridian = optarg;
            break;
        case 'S':
            systems = optarg;
            break;
        case 'c':
            if (parse_list(optarg, clients, &nclients) != 0) {
                fprintf(stderr, "bench-contention: --clients needs counts like 3,12,48\n");
                return 2;
            }
            break;
        case 'k':
            if (parse_list(optarg, keys, &nkeys) != 0) {
                fprintf(stderr, "bench-contention: --keys needs counts like 5,200\n");
                return 2;
            }
            break;
        case 's':
            seconds = strtol(optarg, NULL, 10);
            break;
        case 'n':
            nodes = strtol(optarg, NULL, 10);
            break;
        case 'g':
            groups = strtol(optarg, NULL, 10);
            break;
        case 'l':
            lease = optarg;
            break;
        case 't':
            timeout_ms = strtol(optarg, NULL, 10);
            break;
        case 'd':
            deadline_ms = strtol(optarg, NULL, 10);
            break;
        case 'p':
            pg_bin = optarg;
            break;
        case 'j':
            json_path = optarg;
            break;
        case 'K':
            keep = optarg;
            break;
        default:
            usage();
            return 2;
        }
    }
    bool want_mer = !systems || strstr(systems, "meridian");
    bool want_pg = !systems || strstr(systems, "postgres");
    for (int i = 0; i < nkeys; i++)
        if (keys[i] < 2) {
            fprintf(stderr, "bench-contention: a transaction reads two distinct keys: --keys "
                            "needs at least 2\n");
            return 2;
        }
    if ((want_mer && !meridian) || seconds < 1 || seconds > 3600 || nodes < 1 || nodes > 9 ||
        groups < 1 || groups > 60 || timeout_ms < 100 || deadline_ms < 100 ||
        (!want_mer && !want_pg) || optind < argc) {
        usage();
        fprintf(stderr, "bench-contention: --meridian is required for the meridian system; "
                        "--seconds 1..3600, --nodes 1..9, --groups 1..60\n");
        return 2;
    }
#ifndef BC_HAVE_PG
    if (want_pg && systems) {
        fprintf(stderr, "bench-contention: built without libpq: no postgres system\n");
        return 2;
    }
    want_pg = false;
#endif
    mr_log_set_level(MR_LOG_ERROR);
    printf("bench-contention: %ld s per cell, closed loop; a transaction reads 2 of K hot keys "
           "and appends to 1 or 2 of them;\n  retries with backoff 20 ms doubling to 1 s (equal "
           "jitter) until %ld ms. meridian: %ld nodes, %ld data groups, lease %s, request "
           "timeout %ld ms\n",
           seconds, deadline_ms, nodes, groups, lease, timeout_ms);
    json_t *out = json_object();
    json_t *cells_json = json_array();
    json_object_set_new(out, "seconds", json_integer(seconds));
    json_object_set_new(out, "nodes", json_integer(nodes));
    json_object_set_new(out, "groups", json_integer(groups));
    json_object_set_new(out, "lease", json_string(lease));
    json_object_set_new(out, "timeout_ms", json_integer(timeout_ms));
    json_object_set_new(out, "deadline_ms", json_integer(deadline_ms));
    int total_cells = nclients * nkeys;
    cell *results[2] = {calloc((size_t)total_cells, sizeof(cell)),
                        calloc((size_t)total_cells, sizeof(cell))};
    bool ran[2] = {false, false};
    int status = 0, cell_id = 0;
    for (int s = 0; s < 2; s++) {
        if ((s == 0 && !want_mer) || (s == 1 && !want_pg))
            continue;
        bc_system sys = {0};
        mr_err err;
        int rc;
        if (s == 0) {
            bc_meridian_opts mo = {.bin = meridian,
                                   .nodes = (int)nodes,
                                   .groups = (int)groups,
                                   .lease = lease,
                                   .timeout_ms = timeout_ms,
                                   .dir = keep};
            rc = bc_meridian_start(&mo, &sys, &err);
        } else {
#ifdef BC_HAVE_PG
            rc = bc_pg_start(pg_bin, &sys, &err);
#else
            rc = mr_errf(&err, MR_EUNAVAIL, "built without libpq");
#endif
        }
        if (rc != MR_OK) {
            fprintf(stderr, "bench-contention: %s: %s\n", s == 0 ? "meridian" : "postgres",
                    mr_err_msg(&err));
            status = 1;
            continue;
        }
        if (s == 0)
            printf("meridian cluster: %s (node logs n<i>.log; %s)\n", bc_meridian_dir(&sys),
                   keep ? "kept" : "removed at the end unless --keep DIR");
        ran[s] = true;
        print_header();
        int k = 0;
        for (int ki = 0; ki < nkeys; ki++)
            for (int ci = 0; ci < nclients; ci++, k++) {
                cell *c = &results[s][k];
                *c = (cell){.sys = &sys,
                            .id = ++cell_id,
                            .clients = clients[ci],
                            .nkeys = keys[ki],
                            .seconds = seconds,
                            .deadline_ms = deadline_ms};
                c->keys = calloc((size_t)c->nkeys, sizeof *c->keys);
                for (int i = 0; c->keys && i < c->nkeys; i++) {
                    char buf[64];
                    if (s == 0)
                        bc_meridian_key(&sys, c->id, i, buf, sizeof buf);
                    else
                        snprintf(buf, sizeof buf, "c%d/%d", c->id, i);
                    c->keys[i] = strdup(buf);
                }
                rc = run_cell(c, &err);
                if (rc != MR_OK) {
                    fprintf(stderr, "bench-contention: %s, %d clients, %d keys: %s\n", sys.name,
                            c->clients, c->nkeys, mr_err_msg(&err));
                    status = 1;
                }
                print_cell(c);
                json_array_append_new(cells_json, cell_json(c));
                for (int i = 0; c->keys && i < c->nkeys; i++)
                    free(c->keys[i]);
                free(c->keys);
                c->keys = NULL;
                c->sys = NULL; /* sys goes out of scope below */
            }
        if (s == 0)
            bc_meridian_stop(&sys);
#ifdef BC_HAVE_PG
        else
            bc_pg_stop(&sys);
#endif
    }
    /* Ratios and the criterion, per K: N clients against the fewest. */
    printf("\n%-7s %5s %14s %14s %16s\n", "clients", "keys", "meridian/s", "postgres/s",
           "meridian/postgres");
    for (int k = 0; k < total_cells; k++) {
        const cell *m = ran[0] ? &results[0][k] : NULL, *p = ran[1] ? &results[1][k] : NULL;
        const cell *any = m ? m : p;
        if (!any)
            break;
        printf("%-7d %5d ", any->clients, any->nkeys);
        m ? printf("%14.1f ", m->per_s) : printf("%14s ", "-");
        p ? printf("%14.1f ", p->per_s) : printf("%14s ", "-");
        if (m && p && p->per_s > 0)
            printf("%16.3f\n", m->per_s / p->per_s);
        else
            printf("%16s\n", "-");
    }
    for (int s = 0; s < 2; s++) {
        if (!ran[s])
            continue;
        for (int ki = 0; ki < nkeys; ki++) {
            const cell *base = &results[s][ki * nclients];
            for (int ci = 1; ci < nclients; ci++) {
                const cell *c = &results[s][ki * nclients + ci];
                printf("%s, %d keys: %d clients commit %.1f/s against %.1f/s with %d (%.2fx): %s\n",
                       s == 0 ? "meridian" : "postgres", c->nkeys, c->clients, c->per_s,
                       base->per_s, base->clients, base->per_s > 0 ? c->per_s / base->per_s : 0.0,
                       c->per_s >= base->per_s ? "no collapse"
                                               : "COLLAPSE (fewer than with fewer "
                                                 "clients)");
            }
        }
    }
    json_object_set_new(out, "cells", cells_json);
    if (json_path && json_dump_file(out, json_path, JSON_INDENT(2)) != 0) {
        fprintf(stderr, "bench-contention: cannot write %s\n", json_path);
        status = 1;
    }
    json_decref(out);
    free(results[0]);
    free(results[1]);
    return status;
}
