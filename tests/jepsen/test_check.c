/* meridian-check, the program: exit statuses (0 valid, 1 invalid, 2 unknown or bad input),
 * the summary, --json, --json-out, --edn, and clear errors on bad arguments and histories. */
#include <jansson.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/test.h"

#ifndef MERIDIAN_CHECK_BIN
#error "MERIDIAN_CHECK_BIN must name the meridian-check binary"
#endif

static char dir[64];
static char out[1 << 16], err[1 << 16];

static void slurp(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, len - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
}

/* Runs meridian-check with `args`; returns its exit status, output in out/err. */
static int run(const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s >%s/out 2>%s/err", MERIDIAN_CHECK_BIN, args, dir, dir);
    int st = system(cmd);
    char p[128];
    snprintf(p, sizeof p, "%s/out", dir);
    slurp(p, out, sizeof out);
    snprintf(p, sizeof p, "%s/err", dir);
    slurp(p, err, sizeof err);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *write_file(const char *name, const char *text)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

#define TXN(p, t, v) "{\"process\":" #p ",\"type\":\"" t "\",\"f\":\"txn\",\"value\":" v "}\n"

static const char *stale =
    TXN(0, "invoke", "[[\"append\",\"x\",1]]") TXN(0, "ok", "[[\"append\",\"x\",1]]")
        TXN(1, "invoke", "[[\"r\",\"x\",null]]") TXN(1, "ok", "[[\"r\",\"x\",[]]]")
            TXN(2, "invoke", "[[\"r\",\"x\",null]]") TXN(2, "ok", "[[\"r\",\"x\",[1]]]");

TEST(setup)
{
    snprintf(dir, sizeof dir, "/tmp/jp_check_XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
}

TEST(help_and_bad_arguments)
{
    CHECK_EQ(run("--help"), 0);
    CHECK(strstr(out, "usage: meridian-check") && strstr(out, "list-append"));
    CHECK_EQ(run(""), 2);
    CHECK(strstr(err, "--model is required"));
    CHECK_EQ(run("--model linear x.jsonl"), 2);
    CHECK(strstr(err, "unknown model linear"));
    CHECK_EQ(run("--model set"), 2);
    CHECK(strstr(err, "history file is required"));
    CHECK_EQ(run("--model set --frobnicate x"), 2);
    CHECK(strstr(err, "unknown option --frobnicate") && strstr(err, "--help"));
    CHECK_EQ(run("--model"), 2);
    CHECK(strstr(err, "--model needs a value"));
    CHECK_EQ(run("--model bank --total ten x"), 2);
    CHECK(strstr(err, "--total"));
    CHECK_EQ(run("--model register --max-cache-mb 0 x"), 2);
    CHECK(strstr(err, "--max-cache-mb"));
    CHECK_EQ(run("--model list-append --search-budget -5 x"), 2);
    CHECK(strstr(err, "--search-budget"));
    CHECK_EQ(run("--model set /nonexistent/h.jsonl"), 2);
    CHECK(strstr(err, "cannot open /nonexistent/h.jsonl"));
}

TEST(malformed_history)
{
    const char *p = write_file("bad.jsonl", "{\"process\":0,\"type\":\"invoke\",\"f\":\"add\","
                                            "\"value\":1}\nnot json at all\n");
    char args[256];
    snprintf(args, sizeof args, "--model set %s", p);
    CHECK_EQ(run(args), 2);
    CHECKF(strstr(err, "malformed history") && strstr(err, "line 2: invalid JSON"), "%s", err);
    /* well-formed JSON that does not fit the model */
    p = write_file("bad2.jsonl", "{\"process\":0,\"type\":\"invoke\",\"f\":\"add\","
                                 "\"value\":\"one\"}\n");
    snprintf(args, sizeof args, "--model set %s", p);
    CHECK_EQ(run(args), 2);
    CHECKF(strstr(err, "line 1: set add: value must be an integer"), "%s", err);
    /* binary garbage */
    p = write_file("bin.jsonl", "\x01\x02\xff\xfe{{{\n]]]\n");
    snprintf(args, sizeof args, "--model register %s", p);
    CHECK_EQ(run(args), 2);
    CHECK(strstr(err, "line 1"));
}

TEST(valid_invalid_unknown)
{
    const char *p = write_file(
        "reg.jsonl",
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"x\",\"value\":1}\n"
        "{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"key\":\"x\",\"value\":1}\n"
        "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"x\",\"value\":null}\n"
        "{\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"key\":\"x\",\"value\":1}\n");
    char args[512];
    snprintf(args, sizeof args, "--model register %s", p);
    CHECK_EQ(run(args), 0);
    CHECKF(strstr(out, "verdict: valid") && strstr(out, "ops checked: 2"), "%s", out);

    p = write_file("stale.jsonl", stale);
    snprintf(args, sizeof args, "--model list-append %s", p);
    CHECK_EQ(run(args), 1);
    CHECKF(strstr(out, "verdict: invalid") && strstr(out, "G-single-realtime: 1") &&
               strstr(out, "ops [1, 3]: cycle: op 1 -realtime-> op 3 -rw x-> op 1"),
           "%s", out);

    snprintf(args, sizeof args, "--model list-append --search-budget 1 - < %s/stale.jsonl", dir);
    CHECK_EQ(run(args), 1);
    CHECK(strstr(out, "history: - (6 operations)"));

    p = write_file("unknown.jsonl", TXN(0, "invoke", "[[\"append\",\"x\",1]]"));
    snprintf(args, sizeof args, "--model list-append %s", p);
    CHECK_EQ(run(args), 2);
    CHECK(strstr(out, "verdict: unknown") && strstr(out, "nothing to check"));
}

TEST(json_outputs_and_edn)
{
    const char *p = write_file("stale.jsonl", stale);
    char args[512];
    snprintf(args, sizeof args, "--model list-append --json %s", p);
    CHECK_EQ(run(args), 1);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    CHECKF(j, "--json output is not JSON: %s", je.text);
    CHECK(json_is_false(json_object_get(j, "valid")));
    CHECK_STR(json_string_value(json_object_get(j, "checker")), "list-append");
    json_t *a = json_array_get(json_object_get(j, "anomalies"), 0);
    CHECK_STR(json_string_value(json_object_get(a, "name")), "G-single-realtime");
    CHECK_EQ(json_array_size(json_object_get(a, "ops")), 2);
    CHECK_EQ(json_integer_value(
                 json_object_get(json_object_get(j, "anomaly_counts"), "G-single-realtime")),
             1);
    json_decref(j);

    snprintf(args, sizeof args, "--model list-append --json-out %s/results.json --edn %s/h.edn %s",
             dir, dir, p);
    CHECK_EQ(run(args), 1);
    CHECK(strstr(out, "verdict: invalid"));
    char path[128], buf[4096];
    snprintf(path, sizeof path, "%s/results.json", dir);
    j = json_load_file(path, 0, &je);
    CHECK(j && json_is_false(json_object_get(j, "valid")));
    json_decref(j);
    snprintf(path, sizeof path, "%s/h.edn", dir);
    slurp(path, buf, sizeof buf);
    CHECKF(strstr(buf, "{:index 3, :type :ok, :process 1, :f :txn, :value [[:r \"x\" []]]}"), "%s",
           buf);
}

TEST(bank_options)
{
    const char *p =
        write_file("bank.jsonl",
                   "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n"
                   "{\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":{\"a\":5,\"b\":5}}\n");
    char args[512];
    snprintf(args, sizeof args, "--model bank --total 10 --accounts a,b %s", p);
    CHECK_EQ(run(args), 0);
    snprintf(args, sizeof args, "--model bank --total 11 %s", p);
    CHECK_EQ(run(args), 1);
    CHECK(strstr(out, "wrong-total"));
    snprintf(args, sizeof args, "--model bank --total 10 --accounts a,b,c %s", p);
    CHECK_EQ(run(args), 1);
    CHECK(strstr(out, "missing-account"));
}

TEST(teardown)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_EQ(system(cmd), 0);
}

TEST_MAIN(TEST_CASE(setup), TEST_CASE(help_and_bad_arguments), TEST_CASE(malformed_history),
          TEST_CASE(valid_invalid_unknown), TEST_CASE(json_outputs_and_edn),
          TEST_CASE(bank_options), TEST_CASE(teardown))
