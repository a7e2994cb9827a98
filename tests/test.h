/* A small test framework: assertion macros and a runner that prints one line
 * per test and a closing "N passed, N failed" line. A failed CHECK ends the
 * current test (it returns from the test function). */
#ifndef MR_TEST_H
#define MR_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void (*test_fn)(void);
typedef struct {
    const char *name;
    test_fn fn;
} test_case;

extern int test_failed_flag;
void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Marks the current test skipped (the environment cannot run it), with why. */
void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs every case, or only those named on the command line, or all but those
 * named with a leading '-'. Exit status: 1 if one failed (or none ran), 77 if
 * every case that ran was skipped (ctest shows the program as skipped: see
 * TEST_SKIP_RETURN_CODE in cmake/MeridianTest.cmake), else 0. */
int test_run(int argc, char **argv, const test_case *cases, int n);

#define TEST(name) static void name(void)
#define TEST_CASE(name)                                                                            \
    {                                                                                              \
#name, name                                                                                \
    }
#define TEST_MAIN(...)                                                                             \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        static const test_case cases[] = {__VA_ARGS__};                                            \
        return test_run(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));                 \
    }

/* Ends the current test as skipped. */
#define SKIP(...)                                                                                  \
    do {                                                                                           \
        test_skip(__VA_ARGS__);                                                                    \
        return;                                                                                    \
    } while (0)

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            test_fail(__FILE__, __LINE__, "CHECK(%s)", #c);                                        \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECKF(c, ...)                                                                             \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            test_fail(__FILE__, __LINE__, __VA_ARGS__);                                            \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_);               \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                                   \
            test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b,                    \
                      a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                     \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double a_ = (double)(a), b_ = (double)(b);                                                 \
        if (!(a_ - b_ <= (tol) && b_ - a_ <= (tol))) {                                             \
            test_fail(__FILE__, __LINE__, "%s ~= %s: %g vs %g (tol %g)", #a, #b, a_, b_,           \
                      (double)(tol));                                                              \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#endif
