/* Shared pieces of bench-logstore: results, latency samples, printing. */
#ifndef BENCH_LOGSTORE_H
#define BENCH_LOGSTORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct bench_result {
    const char *name;
    long commits; /* durable commits (syncs asked for) */
    long items;   /* entries / rows / proposals made durable */
    double secs;
    int64_t p50, p99; /* latency per commit or per proposal, ns */
} bench_result;

/* Latency samples of one measurement (grows as needed). */
typedef struct bench_lat {
    int64_t *v;
    size_t n, cap;
} bench_lat;

void bench_lat_add(bench_lat *l, int64_t ns);
/* Sets r->p50 / r->p99 and frees the samples. */
void bench_lat_finish(bench_lat *l, bench_result *r);
/* One measured workload. step() does one unit of work (a commit, a round),
 * adds latency samples to `lat`, adds the syncs it made to *commits, and
 * returns the items it made durable. drain(), if set, finishes in-flight
 * work before a pause, the same way. */
typedef struct bench_runner {
    const char *name;
    void *st;
    long (*step)(void *st, bench_lat *lat, long *commits);
    long (*drain)(void *st, bench_lat *lat, long *commits);
} bench_runner;

/* Runs `br` for `seconds` in slices interleaved with slices of the raw
 * fsync floor, and prints one line comparing the two. */
void bench_measure(const bench_runner *br, double seconds);
void bench_die(const char *what, const char *msg) __attribute__((noreturn));

/* Replicated proposals through the Paxos core (bench_replicated.c), each of
 * `replicas` nodes persisting to its own store under `dir`. Prints its lines. */
void bench_replicated(const char *dir, int replicas, double seconds, size_t value_size);

#endif
