/* `meridian kv` against a one-node cluster: arguments the nodes cannot store are
 * refused before anything is sent (exit 2, nothing stored, no crash), scans
 * page through replies, a transaction spans two groups (after a split) and
 * commits atomically at one timestamp, reads at a past timestamp see the old
 * value, and a reply too large for a frame is an error the user sees. The node runs with
 * MERIDIAN_TEST_REPLY_MAX=65536, so a page holds about 32 KB of rows and a 70000-byte value cannot
 * be answered. (Every page of a scan reads at its first page's timestamp, which must stay inside
 * the test nodes' 3 s retention: pages are not made any smaller.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "tablet/node/nd.h"
#include "tests/support/cluster.h"
#include "launch/proc.h"
#include "tests/test.h"

#define GROUP 2

static char host[64];

/* meridian kv ARGS... --host node0 --certs DIR; stdout and stderr into out and err when non-NULL.
 */
static int kv(char **out, char **err, const char *a1, const char *a2, const char *a3,
              const char *a4, const char *a5, const char *a6, const char *a7)
{
    char *argv[20];
    int n = 0;
    argv[n++] = (char *)proc_meridian_bin();
    argv[n++] = "kv";
    const char *as[] = {a1, a2, a3, a4, a5, a6, a7};
    for (int i = 0; i < 7 && as[i]; i++)
        argv[n++] = (char *)as[i];
    argv[n++] = "--host";
    argv[n++] = host;
    argv[n++] = "--certs";
    argv[n++] = tc.certs;
    argv[n] = NULL;
    return proc_run(argv, 30000, out, err);
}

static bool has(const char *s, const char *sub)
{
    return s && strstr(s, sub);
}

/* meridian ARGS... (NULL-terminated) --host hosts --certs DIR. */
static int run_at(char **out, char **err, const char *hosts, const char *const *args)
{
    char *argv[40];
    int n = 0;
    argv[n++] = (char *)proc_meridian_bin();
    for (int i = 0; args[i] && n < 34; i++)
        argv[n++] = (char *)args[i];
    argv[n++] = "--host";
    argv[n++] = (char *)hosts;
    argv[n++] = "--certs";
    argv[n++] = tc.certs;
    argv[n] = NULL;
    return proc_run(argv, 30000, out, err);
}

/* The timestamp of the one "committed at TS" line of out, or 0 (none, or more than one). */
static long long committed_at(const char *out)
{
    const char *p = out ? strstr(out, "committed at ") : NULL;
    if (!p || strstr(p + 1, "committed at "))
        return 0;
    return strtoll(p + strlen("committed at "), NULL, 10);
}

/* `kv get key [--at ts]`: the value printed (malloc'd, without the newline),
 * or NULL when the command failed (not found). */
static char *get_value(const char *key, long long at)
{
    char ts[32];
    snprintf(ts, sizeof ts, "%lld", at);
    const char *args[] = {"kv", "get", key, at ? "--at" : NULL, ts, NULL};
    char *out = NULL;
    if (run_at(&out, NULL, host, args) != 0) {
        free(out);
        return NULL;
    }
    char *nl = out ? strchr(out, '\n') : NULL;
    if (nl)
        *nl = '\0';
    return out;
}

static bool value_is(const char *key, long long at, const char *want)
{
    char *v = get_value(key, at);
    bool same = want ? v && strcmp(v, want) == 0 : v == NULL;
    if (!same)
        fprintf(stderr, "  kv get %s --at %lld: %s, want %s\n", key, at, v ? v : "(not found)",
                want ? want : "(not found)");
    free(v);
    return same;
}

/* `kv scan w z --at ts` prints exactly want. */
static bool scan_is(long long at, const char *want)
{
    char ts[32];
    snprintf(ts, sizeof ts, "%lld", at);
    const char *args[] = {"kv", "scan", "w", "z", "--at", ts, NULL};
    char *out = NULL, *err = NULL;
    int rc = run_at(&out, &err, host, args);
    bool same = rc == 0 && out && strcmp(out, want) == 0;
    if (!same)
        fprintf(stderr, "  kv scan w z --at %lld: exit %d: %s %s\n", at, rc, out ? out : "",
                err ? err : "");
    free(out);
    free(err);
    return same;
}

/* Through libmeridian, the CLI runs one transaction over two groups (two-phase
 * commit): both writes at one commit timestamp, neither before it. A snapshot
 * read at an earlier timestamp sees the old value. --host takes a list. */
static void txn_across_groups_and_reads_at(void)
{
    char *out = NULL, *err = NULL;
    const char *split[] = {"split", "x", NULL};
    int rc = run_at(&out, &err, host, split);
    CHECKF(rc == 0 && has(out, "split at 'x'"), "split: exit %d: %s %s", rc, out ? out : "",
           err ? err : "");
    free(out);
    free(err);
    out = err = NULL;

    const char *txn[] = {"kv", "txn", "put", "w1", "A", "put", "y1", "B", "get", "w1", NULL};
    rc = run_at(&out, &err, host, txn);
    CHECKF(rc == 0, "txn across groups: exit %d: %s", rc, err ? err : "");
    long long ts = committed_at(out);
    CHECKF(ts > 0 && has(out, "w1 = A\n"), "txn output: %s", out ? out : "");
    free(out);
    free(err);
    /* At once (the test nodes keep versions for 3 s, and a command under
     * ASan takes about half a second): a scan over both groups at ts sees
     * both writes, one at ts - 1 neither. */
    CHECK(scan_is(ts, "w1\tA\ny1\tB\n"));
    CHECK(scan_is(ts - 1, ""));
    const char *get[] = {"kv", "get", "y1", NULL};
    char written[64];
    snprintf(written, sizeof written, "written at %lld)", ts);
    out = err = NULL;
    rc = run_at(&out, &err, host, get);
    bool latest = rc == 0 && out && strcmp(out, "B\n") == 0 && has(err, written);
    if (!latest)
        fprintf(stderr, "  kv get y1: exit %d: %s %s\n", rc, out ? out : "", err ? err : "");
    free(out);
    free(err);
    CHECK(latest);

    /* One read-write transaction over both groups, reading and deleting,
     * --json, through a host list whose first node is down. */
    char hosts[160];
    snprintf(hosts, sizeof hosts, "127.0.0.1:%d,%s", free_port(SOCK_STREAM), host);
    const char *txn2[] = {"kv", "txn", "get", "y1", "del", "w1", "put", "y1", "C", "--json", NULL};
    out = err = NULL;
    rc = run_at(&out, &err, hosts, txn2);
    json_t *r = out ? json_loads(out, 0, NULL) : NULL;
    long long ts2 = json_integer_value(json_object_get(r, "ts"));
    bool good = rc == 0 && json_is_true(json_object_get(r, "ok")) && ts2 > ts &&
                strcmp(json_string_value(json_object_get(json_object_get(r, "reads"), "y1")) ?: "",
                       "B") == 0;
    if (!good)
        fprintf(stderr, "  txn --json: exit %d: %s %s\n", rc, out ? out : "", err ? err : "");
    json_decref(r);
    free(out);
    free(err);
    CHECK(good);
    /* The past, as it was: get --at an earlier timestamp reads the old value. */
    CHECK(value_is("y1", ts2 - 1, "B"));
    CHECK(value_is("w1", ts2 - 1, "A"));
    CHECK(value_is("w1", 0, NULL));
    CHECK(value_is("y1", 0, "C"));
}

/* `kv ARGS --hex` printed exactly want (stdout). */
static bool kv_prints(const char *want, const char *a1, const char *a2, const char *a3,
                      const char *a4)
{
    char *out = NULL, *err = NULL;
    int rc = kv(&out, &err, a1, a2, a3, a4, NULL, NULL, NULL);
    bool same = rc == 0 && out && strcmp(out, want) == 0;
    if (!same)
        fprintf(stderr, "  kv %s %s %s %s: exit %d: [%s] %s\n", a1, a2, a3 ? a3 : "", a4 ? a4 : "",
                rc, out ? out : "", err ? err : "");
    free(out);
    free(err);
    return same;
}

/* Binary keys end to end: keys with NULs inside, 0xff bytes, keys that are prefixes of others,
 * through put, get, scan and a split at a key with a NUL in it (issue 17). */
static void binary_keys(void)
{
    /* "b", "b\0", "b\0\xff" (the split point), "b\0\xff\0", "b\x01", "\xff\xff". */
    static const char *const keys[] = {"62", "6200", "6200ff", "6200ff00", "6201", "ffff"};
    static const char *const vals[] = {"31", "00", "ff00", "5c", "", "0a09"};
    for (int i = 0; i < 6; i++)
        CHECKF(kv(NULL, NULL, "put", "--hex", keys[i], vals[i], NULL, NULL, NULL) == 0, "put %s",
               keys[i]);
    /* A split at "b\0\xff": the keys from there on go to a new group. */
    json_t *r = tc_request(0, ND_MSG_SPLIT_AT, "{\"key\":{\"hex\":\"6200ff\"}}");
    CHECKF(r && json_is_true(json_object_get(r, "ok")), "split at b\\0\\xff");
    json_decref(r);
    bool split = false;
    for (int tries = 0; tries < 150 && !split; tries++) {
        r = tc_request(0, ND_MSG_RANGES, "{}");
        size_t i;
        json_t *rg;
        json_array_foreach(json_object_get(r, "ranges"), i, rg)
        {
            const char *h = json_string_value(json_object_get(json_object_get(rg, "start"), "hex"));
            split |= h && strcmp(h, "6200ff") == 0 &&
                     json_string_value(json_object_get(rg, "leader")) &&
                     *json_string_value(json_object_get(rg, "leader"));
        }
        json_decref(r);
        if (!split) {
            struct timespec d = {0, 200 * 1000 * 1000};
            nanosleep(&d, NULL);
        }
    }
    CHECKF(split, "the split at b\\0\\xff did not show in the range map");
    /* Every key reads back, on both sides of the split. */
    for (int i = 0; i < 6; i++) {
        char want[16];
        snprintf(want, sizeof want, "%s\n", vals[i]);
        CHECK(kv_prints(want, "get", "--hex", keys[i], NULL));
    }
    /* In key order, across the split, prefixes first. */
    CHECK(kv_prints("62\t31\n6200\t00\n6200ff\tff00\n6200ff00\t5c\n6201\t\n", "scan", "--hex", "62",
                    "63"));
    CHECK(kv_prints("ffff\t0a09\n", "scan", "--hex", "fe", NULL));
    /* Without --hex: text, every byte that is not printable escaped. */
    CHECK(kv_prints(
        "b\t1\nb\\x00\t\\x00\nb\\x00\\xff\t\\xff\\x00\nb\\x00\\xff\\x00\t\\\\\nb\\x01\t\n", "scan",
        "b", "c", NULL));
}

static void body(void)
{
    setenv("MERIDIAN_TEST_REPLY_MAX", "65536", 1); /* inherited by the node */
    CHECK(tc_setup(1, "meridian-cli-kv") == 0);
    snprintf(host, sizeof host, "127.0.0.1:%d", tc.ports[0]);
    tc_start(0);
    CHECK_EQ(tc_init(1), 0);
    CHECK(tc_wait_leader(GROUP, -1, 30000) >= 0);
    char *out = NULL, *err = NULL;

    /* Item 2: a key that starts with byte 0 (the cluster's own keys) is refused, for put, get
     * and inside a transaction (which then sends nothing: carol is not stored); any other
     * bytes are a key. */
    CHECK_EQ(kv(NULL, &err, "put", "--hex", "0062", "7631", NULL, NULL, NULL), 2);
    CHECKF(has(err, "byte 0"), "stderr: %s", err ? err : "");
    free(err);
    CHECK_EQ(kv(NULL, NULL, "get", "--hex", "00", NULL, NULL, NULL, NULL), 2);
    CHECK_EQ(kv(NULL, NULL, "txn", "--hex", "put", "6361726f6c", "31", "put", "0063"), 2);
    CHECK_EQ(kv(NULL, NULL, "put", "--hex", "6b", "7g", NULL, NULL, NULL), 2); /* not hex */
    CHECK_EQ(kv(NULL, NULL, "put", "", "v", NULL, NULL, NULL, NULL), 2);
    /* Item 1: a 9000-byte key is refused, with the rest of its transaction. */
    static char big[9001];
    memset(big, 'k', 9000);
    CHECK_EQ(kv(NULL, &err, "txn", "put", "good1", "v", "put", big, "big"), 2);
    CHECKF(has(err, "9000 bytes"), "stderr: %s", err ? err : "");
    free(err);
    CHECK_EQ(kv(NULL, NULL, "get", "carol", NULL, NULL, NULL, NULL, NULL), 1); /* not found */
    binary_keys();
    CHECK_EQ(kv(NULL, NULL, "get", "good1", NULL, NULL, NULL, NULL, NULL), 1);

    /* Item 7: 100 rows of about 1 KB, 100 KB: no single reply could
     * carry them (65536 bytes here); the scan pages through all of them. */
    for (int b = 0; b < 10; b++) {
        static char k[10][16], v[10][1024];
        char *argv[40];
        int n = 0;
        argv[n++] = (char *)proc_meridian_bin();
        argv[n++] = "kv";
        argv[n++] = "txn";
        for (int i = 0; i < 10; i++) {
            snprintf(k[i], sizeof k[i], "row%03d", b * 10 + i);
            memset(v[i], 'a' + i, 1000);
            v[i][1000] = '\0';
            argv[n++] = "put";
            argv[n++] = k[i];
            argv[n++] = v[i];
        }
        argv[n++] = "--host";
        argv[n++] = host;
        argv[n++] = "--certs";
        argv[n++] = tc.certs;
        argv[n] = NULL;
        CHECK_EQ(proc_run(argv, 30000, NULL, NULL), 0);
    }
    CHECK_EQ(kv(&out, NULL, "scan", "row", "rox", "--json", NULL, NULL, NULL), 0);
    json_t *r = out ? json_loads(out, 0, NULL) : NULL;
    free(out);
    json_t *rows = json_object_get(r, "rows");
    CHECK_EQ(json_array_size(rows), 100);
    for (size_t i = 0; i < json_array_size(rows); i++) {
        char want[32];
        snprintf(want, sizeof want, "row%03zu", i);
        const char *got = json_string_value(json_object_get(json_array_get(rows, i), "key"));
        CHECKF(got && strcmp(got, want) == 0, "row %zu: %s", i, got ? got : "(none)");
    }
    json_decref(r);
    CHECK_EQ(kv(&out, &err, "scan", "", "--limit", "25", NULL, NULL, NULL), 0);
    int lines = 0;
    for (const char *p = out; p && *p; p++)
        lines += *p == '\n';
    CHECK_EQ(lines, 25);
    CHECKF(has(err, "(25 rows"), "stderr: %s", err ? err : "");
    free(out);
    free(err);

    /* More rows than one page may hold at the default row limit (10000),
     * loaded in transactions of 1000 keys: every one comes back, once. */
    enum { MANY = 10050, PER_TXN = 1000 };
    static char keys[PER_TXN][16];
    static char *argv[3 * PER_TXN + 10];
    for (int b = 0; b * PER_TXN < MANY; b++) {
        int n = 0;
        argv[n++] = (char *)proc_meridian_bin();
        argv[n++] = "kv";
        argv[n++] = "txn";
        for (int i = 0; i < PER_TXN && b * PER_TXN + i < MANY; i++) {
            snprintf(keys[i], sizeof keys[i], "m%05d", b * PER_TXN + i);
            argv[n++] = "put";
            argv[n++] = keys[i];
            argv[n++] = "v";
        }
        argv[n++] = "--host";
        argv[n++] = host;
        argv[n++] = "--certs";
        argv[n++] = tc.certs;
        argv[n] = NULL;
        CHECK_EQ(proc_run(argv, 30000, NULL, NULL), 0);
    }
    int rc = kv(&out, &err, "scan", "m", "n", NULL, NULL, NULL, NULL);
    CHECKF(rc == 0, "exit %d: %s", rc, err ? err : "");
    lines = 0;
    for (const char *p = out; p && *p; p++)
        lines += *p == '\n';
    CHECK_EQ(lines, MANY);
    CHECKF(has(out, "m00000\tv\n") && has(out, "m10049\tv\n"), "first or last row missing");
    free(out);
    free(err);

    txn_across_groups_and_reads_at();

    /* A value whose reply cannot fit: an error, not a timeout. */
    static char value[70001];
    memset(value, 'x', 70000);
    CHECK_EQ(kv(NULL, NULL, "put", "huge", value, NULL, NULL, NULL, NULL), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ(kv(NULL, &err, "get", "huge", NULL, NULL, NULL, NULL, NULL), 1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECKF(has(err, "too_large"), "stderr: %s", err ? err : "");
    CHECK(t1.tv_sec - t0.tv_sec < 5);
    free(err);
    CHECKF(tc_term(0), "the node did not stop cleanly");
}

TEST(kv_refuses_unsendable_arguments_and_pages_scans)
{
    body();
    tc_teardown(test_failed_flag);
}

TEST_MAIN(TEST_CASE(kv_refuses_unsendable_arguments_and_pages_scans))
