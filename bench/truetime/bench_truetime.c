/* Benchmark: the cost of tt_now() against clock_gettime(CLOCK_REALTIME), and
 * commit-wait overshoot (how far past t the earliest bound is when
 * tt_wait_until_after(t) returns), p50/p99.
 * Usage: bench-truetime [--clock SPEC] [--iterations N] [--waits N] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/mr_util.h"
#include "truetime/tt.h"

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double per_call_ns(int64_t start, int64_t end, long n)
{
    return (double)(end - start) / (double)n;
}

int main(int argc, char **argv)
{
    const char *spec = "fixed:1ms";
    long iters = 20000000, waits = 500;
    static const struct option opts[] = {{"clock", required_argument, NULL, 'c'},
                                         {"iterations", required_argument, NULL, 'n'},
                                         {"waits", required_argument, NULL, 'w'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'c')
            spec = optarg;
        else if (ch == 'n')
            iters = atol(optarg);
        else if (ch == 'w')
            waits = atol(optarg);
        else {
            fprintf(stderr, "usage: bench-truetime [--clock SPEC] [--iterations N] [--waits N]\n");
            return 2;
        }
    }
    if (iters <= 0 || waits <= 0) {
        fprintf(stderr, "bench-truetime: --iterations and --waits must be positive\n");
        return 2;
    }
    tt_clock *c;
    mr_err err;
    if (tt_clock_open(spec, NULL, &c, &err) != MR_OK) {
        fprintf(stderr, "bench-truetime: %s\n", mr_err_msg(&err));
        return 1;
    }
    volatile int64_t sink = 0;
    struct timespec ts;
    int64_t a = mr_monotonic_ns();
    for (long i = 0; i < iters; i++) {
        clock_gettime(CLOCK_REALTIME, &ts);
        sink += ts.tv_nsec;
    }
    int64_t b = mr_monotonic_ns();
    for (long i = 0; i < iters; i++)
        sink += tt_now(c).earliest;
    int64_t d = mr_monotonic_ns();
    double base = per_call_ns(a, b, iters), tt = per_call_ns(b, d, iters);
    printf("clock source                 %s\n", spec);
    printf("clock_gettime(REALTIME)      %.1f ns/call\n", base);
    printf("tt_now()                     %.1f ns/call  (%.2fx clock_gettime)\n", tt, tt / base);

    int64_t *over = calloc((size_t)waits, sizeof *over);
    int64_t *wait = calloc((size_t)waits, sizeof *wait);
    for (long i = 0; i < waits; i++) {
        int64_t s = tt_now(c).latest; /* the commit timestamp a leader would pick */
        int64_t w0 = mr_monotonic_ns();
        tt_interval at = tt_wait_until_after(c, s);
        wait[i] = mr_monotonic_ns() - w0;
        over[i] = at.earliest - s;
    }
    qsort(over, (size_t)waits, sizeof *over, cmp64);
    qsort(wait, (size_t)waits, sizeof *wait, cmp64);
    char p50[32], p99[32], w50[32], w99[32];
    printf("commit wait (s = now.latest) %s p50, %s p99 over %ld waits\n",
           mr_format_duration(wait[waits / 2], w50, sizeof w50),
           mr_format_duration(wait[waits * 99 / 100], w99, sizeof w99), waits);
    printf("commit-wait overshoot        %s p50, %s p99 (earliest - s at return)\n",
           mr_format_duration(over[waits / 2], p50, sizeof p50),
           mr_format_duration(over[waits * 99 / 100], p99, sizeof p99));
    free(over);
    free(wait);
    tt_clock_close(c);
    return sink == 42 ? 3 : 0;
}
