/* The `meridian` command line: help, usage errors (exit 2), clock output. */
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "common/mr_util.h"
#include "launch/proc.h"
#include "tests/test.h"

static int run(char **out, char **err, const char *a1, const char *a2, const char *a3,
               const char *a4, const char *a5)
{
    char *argv[] = {(char *)proc_meridian_bin(),
                    (char *)a1,
                    (char *)a2,
                    (char *)a3,
                    (char *)a4,
                    (char *)a5,
                    NULL};
    return proc_run(argv, 10000, out, err);
}

#define RUN(...) run(&out, &err, __VA_ARGS__)
#define CLEAN()                                                                                    \
    do {                                                                                           \
        free(out);                                                                                 \
        free(err);                                                                                 \
        out = err = NULL;                                                                          \
    } while (0)

TEST(top_level_help_and_errors)
{
    char *out = NULL, *err = NULL;
    CHECK(proc_meridian_bin() != NULL);
    int st = RUN("--help", NULL, NULL, NULL, NULL);
    int good = st == 0 && strstr(out, "clock") && strstr(out, "usage: meridian");
    CLEAN();
    CHECK(good);
    st = RUN(NULL, NULL, NULL, NULL, NULL);
    good = st == 2 && strstr(err, "usage");
    CLEAN();
    CHECK(good);
    st = RUN("frobnicate", NULL, NULL, NULL, NULL);
    good = st == 2 && strstr(err, "unknown command 'frobnicate'");
    CLEAN();
    CHECK(good);
    st = RUN("version", NULL, NULL, NULL, NULL);
    good = st == 0 && strstr(out, "meridian ");
    CLEAN();
    CHECK(good);
}

TEST(clock_usage_errors)
{
    char *out = NULL, *err = NULL;
    int st = RUN("clock", "--help", NULL, NULL, NULL);
    int good = st == 0 && strstr(out, "--clock SPEC");
    CLEAN();
    CHECK(good);
    const char *bad[][3] = {
        {"--bogus", NULL, "unknown option"},
        {"--clock", "gps", "unknown clock spec"},
        {"--clock", "fixed:abc", "not a non-negative duration"},
        {"--count", "0", "--count"},
        {"--interval", "fast", "--interval"},
        {"--drift-ppm", "-5", "--drift-ppm"},
        {"--fault-offset", "x", "--fault-offset"},
        {"extra", NULL, "unexpected argument"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st = RUN("clock", bad[i][0], bad[i][1], NULL, NULL);
        good = st == 2 && err && strstr(err, bad[i][2]);
        if (!good)
            fprintf(stderr, "  case %zu: exit %d, stderr: %s\n", i, st, err);
        CLEAN();
        CHECK(good);
    }
    st = RUN("clock", "--clock", NULL, NULL, NULL);
    good = st == 2 && strstr(err, "needs a value");
    CLEAN();
    CHECK(good);
}

TEST(clock_fixed_json)
{
    char *out = NULL, *err = NULL;
    int64_t t0 = mr_realtime_ns();
    int st = RUN("clock", "--clock", "fixed:1ms", "--json", NULL);
    int64_t t1 = mr_realtime_ns();
    json_error_t je;
    json_t *o = out ? json_loads(out, JSON_DISABLE_EOF_CHECK, &je) : NULL;
    CLEAN();
    CHECK_EQ(st, 0);
    CHECK(o != NULL);
    long long e = json_integer_value(json_object_get(o, "earliest_ns"));
    long long l = json_integer_value(json_object_get(o, "latest_ns"));
    long long eps = json_integer_value(json_object_get(o, "epsilon_ns"));
    const char *status = json_string_value(json_object_get(o, "status"));
    const char *source = json_string_value(json_object_get(o, "source"));
    int good = e <= t1 && l >= t0 && eps >= 1000000 && eps < 1100000 && status &&
               strcmp(status, "synchronized") == 0 && source && strcmp(source, "fixed:1ms") == 0;
    json_decref(o);
    CHECK(good);
}

TEST(clock_fault_offset_lies)
{
    char *out = NULL, *err = NULL;
    int st = RUN("clock", "--clock", "fixed:1ms", "--json", "--fault-offset=50ms");
    json_error_t je;
    json_t *o = out ? json_loads(out, JSON_DISABLE_EOF_CHECK, &je) : NULL;
    CLEAN();
    CHECK_EQ(st, 0);
    CHECK(o != NULL);
    long long e = json_integer_value(json_object_get(o, "earliest_ns"));
    long long sys = json_integer_value(json_object_get(o, "system_ns"));
    long long eps = json_integer_value(json_object_get(o, "epsilon_ns"));
    json_decref(o);
    CHECK(e > sys);       /* the interval misses the true time ... */
    CHECK(eps < 1100000); /* ... without widening */
}

TEST(clock_unreachable_chrony)
{
    char *out = NULL, *err = NULL;
    int st = RUN("clock", "--clock", "chrony:/nonexistent/x.sock", NULL, NULL);
    int good = st == 1 && strstr(out, "unhealthy") && strstr(out, "cannot reach chronyd");
    if (!good)
        fprintf(stderr, "  exit %d, out: %s\n", st, out);
    CLEAN();
    CHECK(good);
}

TEST(clock_kernel)
{
    char *out = NULL, *err = NULL;
    int st = RUN("clock", "--clock", "kernel", "--json", NULL);
    json_error_t je;
    json_t *o = out ? json_loads(out, JSON_DISABLE_EOF_CHECK, &je) : NULL;
    CLEAN();
    CHECK(st == 0 || st == 1);
    CHECK(o != NULL);
    CHECK(json_object_get(o, "maxerror_ns") != NULL);
    json_decref(o);
}

/* meridian kv refuses what libmeridian would refuse before connecting (no
 * cluster here: exit 2 proves nothing was tried), takes a host list (other
 * commands one host), and fails (exit 1) when no node answers. */
TEST(kv_refuses_before_connecting)
{
    char *out = NULL, *err = NULL;
    const char *bad[][4] = {
        {"get", "--hex", "0062", "byte 0"},        {"put", "", "v", "empty"},
        {"txn", "put", "k", "txn takes"},          {"scan", "--hex", "6x", "not hex"},
        {"frob", "k", NULL, "unknown subcommand"}, {"del", "--hex", "00", "byte 0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int st = RUN("kv", "--insecure", bad[i][0], bad[i][1], bad[i][2]);
        bool good = st == 2 && err && strstr(err, bad[i][3]);
        if (!good)
            fprintf(stderr, "  case %zu: exit %d, stderr: %s\n", i, st, err);
        CLEAN();
        CHECK(good);
    }
    int st = RUN("kv", "get", "k", "--host=127.0.0.1:1,nohost", "--insecure");
    bool good = st == 2 && err && strstr(err, "HOST:PORT[,HOST:PORT...]");
    CLEAN();
    CHECK(good);
    st = RUN("status", "--host=127.0.0.1:1,127.0.0.1:2", "--insecure", NULL, NULL);
    good = st == 2 && err && strstr(err, "is not HOST:PORT");
    CLEAN();
    CHECK(good);
    char hosts[80];
    snprintf(hosts, sizeof hosts, "--host=127.0.0.1:%d,127.0.0.1:%d", free_port(SOCK_STREAM),
             free_port(SOCK_STREAM));
    char *argv[] = {(char *)proc_meridian_bin(), "kv", "get", "k", hosts, "--insecure",
                    "--timeout=500ms",           NULL};
    int64_t t0 = mr_monotonic_ns();
    st = proc_run(argv, 10000, &out, &err);
    CHECK(mr_monotonic_ns() - t0 < 5 * MR_NS_PER_S);
    good = st == 1 && err && strstr(err, "meridian kv: unavailable");
    if (!good)
        fprintf(stderr, "  no node: exit %d, stderr: %s\n", st, err);
    CLEAN();
    CHECK(good);
}

/* A node refuses a damaged data directory with a clear error and exit 1
 * (under ASan also leak-free: a leak would change the exit status). */
TEST(start_refuses_damaged_data)
{
    char dir[200], sub[300], file[320];
    CHECK(tmpdir_make(dir, sizeof dir, "meridian-badstart") == 0);
    snprintf(sub, sizeof sub, "%s/a", dir);
    mkdir(sub, 0755);
    snprintf(file, sizeof file, "%s/cluster.json", sub);
    FILE *f = fopen(file, "w");
    fputs("{garbage", f);
    fclose(f);
    char *out = NULL, *err = NULL;
    char port[32];
    snprintf(port, sizeof port, "127.0.0.1:%d", free_port(SOCK_STREAM));
    char *argv1[] = {(char *)proc_meridian_bin(),
                     "start",
                     "--data",
                     sub,
                     "--listen",
                     port,
                     "--zone",
                     "z",
                     "--insecure",
                     NULL};
    int st = proc_run(argv1, 20000, &out, &err);
    bool good = st == 1 && err && strstr(err, "cluster.json") && strstr(err, "line 1");
    if (!good)
        fprintf(stderr, "  exit %d: %s\n", st, err);
    free(out);
    free(err);
    snprintf(sub, sizeof sub, "%s/b", dir);
    mkdir(sub, 0755);
    snprintf(file, sizeof file, "%s/paxos.db", sub);
    f = fopen(file, "w");
    fputs("this is not a database, whatever it is", f);
    fclose(f);
    out = err = NULL;
    char *argv2[] = {(char *)proc_meridian_bin(),
                     "start",
                     "--data",
                     sub,
                     "--listen",
                     port,
                     "--zone",
                     "z",
                     "--insecure",
                     NULL};
    st = proc_run(argv2, 20000, &out, &err);
    bool good2 = st == 1 && err && strstr(err, "paxos.db") && strstr(err, "not a database");
    if (!good2)
        fprintf(stderr, "  exit %d: %s\n", st, err);
    free(out);
    free(err);
    /* A cluster.json of format 1 (keys as text, before binary keys) is refused by name, never
     * misread. */
    snprintf(sub, sizeof sub, "%s/c", dir);
    mkdir(sub, 0755);
    snprintf(file, sizeof file, "%s/cluster.json", sub);
    f = fopen(file, "w");
    fputs("{\"cluster\": \"x\", \"self\": 1, \"nodes\": [], \"groups\": []}", f);
    fclose(f);
    out = err = NULL;
    argv2[3] = sub;
    st = proc_run(argv2, 20000, &out, &err);
    bool good3 = st == 1 && err && strstr(err, "format 1") && strstr(err, "format 3");
    if (!good3)
        fprintf(stderr, "  exit %d: %s\n", st, err);
    free(out);
    free(err);
    /* A cluster.json of format 2 (keys in hex, but the meta group without a range and its
     * records under text keys inside the first data group's) is refused by name too, with
     * what to do: a node that read it would route the SQL catalog's keys to a data group. */
    snprintf(sub, sizeof sub, "%s/d", dir);
    mkdir(sub, 0755);
    snprintf(file, sizeof file, "%s/cluster.json", sub);
    f = fopen(file, "w");
    fprintf(
        f,
        "{\"format\": 2, \"cluster\": \"x\", \"self\": 1, \"nodes\": [{\"id\": 1, \"addr\": "
        "\"%s\"}], \"groups\": [{\"id\": 1, \"kind\": \"meta\", \"replicas\": [1]}, {\"id\": 2, "
        "\"kind\": \"data\", \"replicas\": [1], \"start\": \"\", \"end\": \"\"}]}",
        port);
    fclose(f);
    out = err = NULL;
    argv2[3] = sub;
    st = proc_run(argv2, 20000, &out, &err);
    bool good4 = st == 1 && err && strstr(err, "format 2") && strstr(err, "format 3") &&
                 strstr(err, "initialize the cluster anew");
    if (!good4)
        fprintf(stderr, "  exit %d: %s\n", st, err);
    free(out);
    free(err);
    /* One of format 3 whose meta group does not hold ["", "\x02") is refused as damaged. */
    snprintf(sub, sizeof sub, "%s/e", dir);
    mkdir(sub, 0755);
    snprintf(file, sizeof file, "%s/cluster.json", sub);
    f = fopen(file, "w");
    fprintf(f,
            "{\"format\": 3, \"cluster\": \"x\", \"self\": 1, \"nodes\": [{\"id\": 1, \"addr\": "
            "\"%s\"}], \"groups\": [{\"id\": 1, \"kind\": \"meta\", \"replicas\": [1], "
            "\"start\": \"\", \"end\": \"30\"}, {\"id\": 2, \"kind\": \"data\", \"replicas\": [1], "
            "\"start\": \"30\", \"end\": \"\"}]}",
            port);
    fclose(f);
    out = err = NULL;
    argv2[3] = sub;
    st = proc_run(argv2, 20000, &out, &err);
    bool good5 = st == 1 && err && strstr(err, "the meta group must be group 1");
    if (!good5)
        fprintf(stderr, "  exit %d: %s\n", st, err);
    free(out);
    free(err);
    tmpdir_remove(dir);
    CHECK(good);
    CHECK(good2);
    CHECK(good3);
    CHECK(good4);
    CHECK(good5);
}

TEST_MAIN(TEST_CASE(top_level_help_and_errors), TEST_CASE(clock_usage_errors),
          TEST_CASE(clock_fixed_json), TEST_CASE(clock_fault_offset_lies),
          TEST_CASE(clock_unreachable_chrony), TEST_CASE(clock_kernel),
          TEST_CASE(start_refuses_damaged_data), TEST_CASE(kv_refuses_before_connecting))
