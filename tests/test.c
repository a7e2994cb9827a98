/* Test runner for tests/test.h. */
#include "tests/test.h"

#include <signal.h>
#include <stdarg.h>
#include <time.h>

int test_failed_flag;
static int test_skipped_flag;

void test_skip(const char *fmt, ...)
{
    va_list ap;
    fputs("  skipped: ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    test_skipped_flag = 1;
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "  %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    test_failed_flag = 1;
}

static int selected(int argc, char **argv, const char *name)
{
    int includes = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && strcmp(argv[i] + 1, name) == 0)
            return 0;
        if (argv[i][0] != '-') {
            includes = 1;
            if (strcmp(argv[i], name) == 0)
                return 1;
        }
    }
    return !includes;
}

int test_run(int argc, char **argv, const test_case *cases, int n)
{
    int passed = 0, failed = 0, skipped = 0;
    setvbuf(stdout, NULL, _IONBF, 0);
    /* Tests talk to nodes they kill: a write to a socket the node's death closed must fail the
     * call (EPIPE), not kill the test or its forked workers with SIGPIPE (test_bank's worker died
     * so, silently, when the leader was killed mid-transfer). The node and libmeridian do the same.
     */
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < n; i++) {
        if (!selected(argc, argv, cases[i].name))
            continue;
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        test_failed_flag = 0;
        test_skipped_flag = 0;
        cases[i].fn();
        clock_gettime(CLOCK_MONOTONIC, &b);
        double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
        if (test_failed_flag) {
            failed++;
            printf("FAIL %s (%.1f ms)\n", cases[i].name, ms);
        } else if (test_skipped_flag) {
            skipped++;
            printf("skip %s (%.1f ms)\n", cases[i].name, ms);
        } else {
            passed++;
            printf("ok   %s (%.1f ms)\n", cases[i].name, ms);
        }
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    if (failed)
        return 1;
    if (passed)
        return 0;
    return skipped ? 77 : 1;
}
