/* bench/bench_lat.h: what the closed-loop benchmarks (bench-contention, bench-sql) share: a
 * seeded generator per worker, latency samples per worker merged into one cell's figures, and
 * the parsing of their comma-separated count lists. */
#ifndef BENCH_BENCH_LAT_H
#define BENCH_BENCH_LAT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64: a worker's own reproducible sequence. */
static inline uint64_t bench_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Latencies in ns; owned by the struct (bench_lat_summarize frees them). */
typedef struct bench_lat {
    int64_t *v;
    size_t n, cap;
} bench_lat;

static inline void bench_lat_add(bench_lat *l, int64_t ns)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 1024;
        int64_t *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return; /* the sample is a little smaller */
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = ns;
}

typedef struct bench_lat_summary {
    double p50_ms, p99_ms, max_ms, mean_ms; /* all 0 without samples */
} bench_lat_summary;

static inline int bench_lat_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The figures of every worker's samples together (parts[i] for i < nparts, each at `stride`
 * bytes from the last: the bench_lat inside each worker struct); frees every part's samples. */
static inline bench_lat_summary bench_lat_summarize(bench_lat *first, size_t nparts, size_t stride)
{
    bench_lat_summary s = {0};
    size_t n = 0;
    for (size_t i = 0; i < nparts; i++)
        n += ((bench_lat *)((char *)first + i * stride))->n;
    int64_t *all = malloc((n ? n : 1) * sizeof *all);
    size_t k = 0;
    for (size_t i = 0; i < nparts; i++) {
        bench_lat *l = (bench_lat *)((char *)first + i * stride);
        if (all && l->n)
            memcpy(all + k, l->v, l->n * sizeof *all);
        k += l->n;
        free(l->v);
        *l = (bench_lat){0};
    }
    if (all && n) {
        qsort(all, n, sizeof *all, bench_lat_cmp);
        double sum = 0;
        for (size_t i = 0; i < n; i++)
            sum += (double)all[i];
        s.p50_ms = (double)all[n / 2] / 1e6;
        s.p99_ms = (double)all[n * 99 / 100] / 1e6;
        s.max_ms = (double)all[n - 1] / 1e6;
        s.mean_ms = sum / (double)n / 1e6;
    }
    free(all);
    return s;
}

/* "1,8,48" into out (at most max_n numbers, each 1..max_v): 0, or -1 for anything else (an
 * empty list, a non-number, a value out of range, too many). */
static inline int bench_parse_list(const char *s, int *out, int *n, int max_n, long max_v)
{
    *n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end;
        long v = strtol(t, &end, 10);
        if (*end || v < 1 || v > max_v || *n >= max_n)
            return -1;
        out[(*n)++] = (int)v;
    }
    return *n > 0 ? 0 : -1;
}

#endif
