/* Integration: meridian-jepsen against a real three-node cluster (the sanitized `meridian`
 * from $MERIDIAN_BIN), two short runs:
 *
 *   smoke        register workload under kill, partition and pause: every kind of fault is
 *                injected at least once, enough operations complete, and the
 *                linearizability checker finds the history valid (exit 0).
 *   stale_reads  the negative control: nodes started with MERIDIAN_TEST_BREAK=stale-reads
 *                (any replica answers reads from its own state) and reads sent to any node,
 *                under partitions: the run must come out invalid (exit 1) with a
 *                nonlinearizable anomaly naming the operations.
 *
 * The program under test is given at build time (MERIDIAN_JEPSEN_BIN). The run directories
 * are kept under MERIDIAN_KEEP_TMP or when a check fails. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/proc.h"
#include "tests/test.h"

#ifndef MERIDIAN_JEPSEN_BIN
#error "MERIDIAN_JEPSEN_BIN must name the meridian-jepsen program"
#endif

static char dir[256], out[300];

/* Runs the harness; returns its exit status, stdout in *text (caller frees). */
static int harness(char **text, const char *nemesis, const char *time_s, const char *seed,
                   bool stale)
{
    snprintf(out, sizeof out, "%s/run", dir);
    char *argv[] = {MERIDIAN_JEPSEN_BIN,
                    "--workload",
                    "register",
                    "--nemesis",
                    (char *)nemesis,
                    "--time",
                    (char *)time_s,
                    "--nodes",
                    "3",
                    "--rate",
                    "30",
                    "--concurrency",
                    "6",
                    "--keys",
                    "2",
                    "--quiet",
                    "3",
                    "--seed",
                    (char *)seed,
                    "--out",
                    out,
                    "--meridian",
                    (char *)proc_meridian_bin(),
                    stale ? "--break" : NULL,
                    "stale-reads",
                    NULL};
    char *err = NULL;
    int rc = proc_run(argv, 150000, text, &err);
    if (rc != 0 && rc != 1 && err)
        fprintf(stderr, "%s", err);
    free(err);
    return rc;
}

static json_t *results(void)
{
    char path[400];
    snprintf(path, sizeof path, "%s/results.json", out);
    json_error_t je;
    return json_load_file(path, 0, &je);
}

/* Nemesis operations named f in history.jsonl. */
static int count_nemesis(const char *f)
{
    char path[400], needle[64], line[4096];
    snprintf(path, sizeof path, "%s/history.jsonl", out);
    snprintf(needle, sizeof needle, "\"f\":\"%s\"", f);
    FILE *h = fopen(path, "r");
    int n = 0;
    while (h && fgets(line, sizeof line, h))
        n += strstr(line, "\"process\":\"nemesis\"") && strstr(line, needle);
    if (h)
        fclose(h);
    return n;
}

static bool file_exists(const char *name)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", out, name);
    FILE *f = fopen(path, "r");
    if (f)
        fclose(f);
    return f != NULL;
}

static void smoke_body(void)
{
    CHECK(proc_meridian_bin() != NULL);
    CHECK(tmpdir_make(dir, sizeof dir, "meridian-jepsen-smoke") == 0);
    char *text = NULL;
    int rc = harness(&text, "kill,partition,pause", "16", "7", false);
    if (text)
        fputs(text, stdout);
    free(text);
    CHECKF(rc == 0, "meridian-jepsen exited %d (0 = valid); run directory %s", rc, out);
    json_t *r = results();
    CHECK(r != NULL);
    bool valid = json_is_true(json_object_get(r, "valid"));
    json_t *chk = json_object_get(r, "checker");
    long long checked = json_integer_value(json_object_get(chk, "ops_checked"));
    long long anomalies = (long long)json_array_size(json_object_get(chk, "anomalies"));
    json_decref(r);
    CHECK(valid);
    CHECK_EQ(anomalies, 0);
    /* A floor that proves the run did real work, not a speed test: about 470
     * operations on a quiet machine, 137 seen once on a machine saturated by
     * builds and benchmarks. */
    CHECKF(checked >= 60, "only %lld operations checked", checked);
    /* Every kind of fault happened, and each was healed. */
    CHECK(count_nemesis("start-kill") >= 1);
    CHECK(count_nemesis("start-partition") >= 1);
    CHECK(count_nemesis("start-pause") >= 1);
    CHECK_EQ(count_nemesis("start-kill"), count_nemesis("stop-kill"));
    CHECK_EQ(count_nemesis("start-partition"), count_nemesis("stop-partition"));
    CHECK_EQ(count_nemesis("start-pause"), count_nemesis("stop-pause"));
    CHECK_EQ(count_nemesis("heal-all"), 1);
    CHECK_EQ(count_nemesis("node-crashed"), 0);
    CHECK(file_exists("history.edn"));
    CHECK(file_exists("summary.txt"));
    CHECK(file_exists("n1.log"));
}

static void stale_body(void)
{
    CHECK(proc_meridian_bin() != NULL);
    CHECK(tmpdir_make(dir, sizeof dir, "meridian-jepsen-stale") == 0);
    char *text = NULL;
    int rc = harness(&text, "partition", "10", "11", true);
    if (text)
        fputs(text, stdout);
    free(text);
    CHECKF(rc == 1, "meridian-jepsen exited %d (1 = invalid); run directory %s", rc, out);
    json_t *r = results();
    CHECK(r != NULL);
    bool invalid = json_is_false(json_object_get(r, "valid"));
    json_t *chk = json_object_get(r, "checker");
    long long nonlin = json_integer_value(
        json_object_get(json_object_get(chk, "anomaly_counts"), "nonlinearizable"));
    json_t *first = json_array_get(json_object_get(r, "anomaly_ops"), 0);
    size_t involved = json_array_size(json_object_get(first, "ops"));
    const char *name = json_string_value(json_object_get(first, "name"));
    bool named = name && strcmp(name, "nonlinearizable") == 0;
    json_decref(r);
    CHECK(invalid);
    CHECKF(nonlin >= 1, "no nonlinearizable anomaly reported");
    CHECK(named);
    CHECKF(involved >= 2, "the anomaly names %zu operations", involved);
    CHECK(count_nemesis("start-partition") >= 1);
}

/* Bad arguments: exit 2 with a message, nothing started. */
static int usage_run(char *const extra[], char **err)
{
    char *argv[32] = {MERIDIAN_JEPSEN_BIN};
    int n = 1;
    for (int i = 0; extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    char *text = NULL;
    int rc = proc_run(argv, 20000, &text, err);
    free(text);
    return rc;
}

TEST(usage)
{
    static char *const cases[][12] = {
        {"--workload", "ledger", "--nemesis", "kill", "--time", "5", NULL},
        {"--workload", "register", "--nemesis", "kill,flood", "--time", "5", NULL},
        {"--workload", "register", "--nemesis", "kill", NULL},
        {"--workload", "register", "--nemesis", "kill", "--time", "0", NULL},
        {"--workload", "register", "--nemesis", "kill", "--time", "5", "--nodes", "10", NULL},
        {"--workload", "register", "--nemesis", "partition", "--time", "5", "--nodes", "1", NULL},
        {"--workload", "register", "--nemesis", "kill", "--time", "5", "--rate", "x", NULL},
        {"--workload", "register", "--nemesis", "kill", "--time", "5", "--break", "all", NULL},
        {"--workload", "register", "--nemesis", "kill", "--time", "5", "--bogus", NULL},
        {"--workload", "register", "--nemesis", "kill", "--time", "5", "--net", "wan", NULL},
        {"--workload", "register", "--nemesis", "kill", "--time", "5", "--break",
         "no-read-locks,bogus", NULL},
        {"--workload", "register", "--nemesis", "kill", "--time", "5", "--clock-bound", "9s", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = NULL;
        int rc = usage_run(cases[i], &err);
        bool said = err && strstr(err, "meridian-jepsen: ") && strstr(err, "--help");
        free(err);
        CHECKF(rc == 2 && said, "case %zu: exit %d (want 2 with a message)", i, rc);
    }
    char *const help[] = {"--help", NULL};
    CHECK_EQ(usage_run(help, NULL), 0);
}

TEST(smoke)
{
    smoke_body();
    if (!test_failed_flag && !getenv("MERIDIAN_KEEP_TMP"))
        tmpdir_remove(dir);
}

TEST(stale_reads)
{
    stale_body();
    if (!test_failed_flag && !getenv("MERIDIAN_KEEP_TMP"))
        tmpdir_remove(dir);
}

TEST_MAIN(TEST_CASE(usage), TEST_CASE(smoke), TEST_CASE(stale_reads))
