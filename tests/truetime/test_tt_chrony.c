/* Integration: `meridian clock` against a real pair of chronyd daemons on
 * loopback (-x: the system clock is never touched). */
#include <jansson.h>
#include <stdlib.h>

#include "common/mr_util.h"
#include "launch/chronyd.h"
#include "launch/proc.h"
#include "tests/test.h"

/* Runs `meridian clock --clock chrony:SOCK --json` and parses its one line. */
static json_t *clock_json(const chrony_pair *p, int *status)
{
    char spec[320];
    snprintf(spec, sizeof spec, "chrony:%s", p->node_sock);
    char *argv[] = {(char *)proc_meridian_bin(), "clock", "--clock", spec, "--json", NULL};
    char *out = NULL;
    *status = proc_run(argv, 10000, &out, NULL);
    json_error_t je;
    json_t *o = out ? json_loads(out, JSON_DISABLE_EOF_CHECK, &je) : NULL;
    if (!o)
        fprintf(stderr, "  unparsable output: %s\n", out ? out : "(none)");
    free(out);
    return o;
}

static long long jint(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

TEST(synchronized_with_submillisecond_bound)
{
    CHECK(proc_meridian_bin() != NULL);
    chrony_pair p;
    CHECK(chrony_pair_start(&p, 0.0) == 0);
    int ok = chrony_pair_wait_sync(&p, 30000) == 0;
    int status = -1;
    int64_t t0 = mr_realtime_ns();
    json_t *o = ok ? clock_json(&p, &status) : NULL;
    int64_t t1 = mr_realtime_ns();
    chrony_pair_stop(&p);
    CHECKF(ok, "node chronyd never synchronized");
    CHECK(o != NULL);
    int good = strcmp(jstr(o, "status"), "synchronized") == 0 && status == 0 &&
               jint(o, "epsilon_ns") > 0 && jint(o, "epsilon_ns") < 1000000 &&
               jint(o, "earliest_ns") <= jint(o, "system_ns") &&
               jint(o, "system_ns") <= jint(o, "latest_ns") && jint(o, "earliest_ns") <= t1 &&
               jint(o, "latest_ns") >= t0 && strcmp(jstr(o, "reference"), "127.0.0.1") == 0 &&
               strncmp(jstr(o, "source"), "chrony:", 7) == 0;
    if (!good) {
        char *s = json_dumps(o, 0);
        fprintf(stderr, "  got %s (exit %d)\n", s, status);
        free(s);
    }
    json_decref(o);
    CHECK(good);
}

TEST(injected_offset_widens_bound)
{
    chrony_pair p;
    CHECK(chrony_pair_start(&p, 0.005) == 0);
    /* The node now believes it is 5 ms off: |correction| alone makes the bound >= 5 ms. */
    long long eps = 0, corr = 0;
    int synced = 0;
    for (int i = 0; i < 60 && !(synced && eps >= 5000000); i++) {
        int status;
        json_t *o = clock_json(&p, &status);
        if (o) {
            synced = strcmp(jstr(o, "status"), "synchronized") == 0;
            eps = jint(o, "epsilon_ns");
            corr = jint(o, "correction_ns");
            json_decref(o);
        }
        if (!(synced && eps >= 5000000))
            sleep_ms(500);
    }
    chrony_pair_stop(&p);
    CHECKF(synced, "never synchronized");
    CHECKF(eps >= 5000000, "epsilon %lld ns, correction %lld ns", eps, corr);
    CHECKF(llabs(corr) >= 4000000, "correction %lld ns", corr);
}

TEST(upstream_loss_degrades)
{
    chrony_pair p;
    CHECK(chrony_pair_start(&p, 0.0) == 0);
    int synced = chrony_pair_wait_sync(&p, 30000) == 0;
    /* Right after the first sync chronyd's dispersion is still settling: take the
     * smallest of a few readings over two seconds as the healthy bound. */
    long long eps0 = -1;
    int status;
    for (int i = 0; synced && i < 5; i++) {
        sleep_ms(400);
        json_t *o = clock_json(&p, &status);
        if (o && strcmp(jstr(o, "status"), "synchronized") == 0 &&
            (eps0 < 0 || jint(o, "epsilon_ns") < eps0))
            eps0 = jint(o, "epsilon_ns");
        json_decref(o);
    }
    chrony_pair_stop_upstream(&p);
    /* chronyd keeps leap status Normal; the sample ages and the dispersion grows. */
    char last_status[32] = "";
    long long eps1 = 0;
    int exit_status = -1;
    for (int i = 0; i < 60; i++) {
        sleep_ms(500);
        json_t *o = clock_json(&p, &status);
        if (!o)
            continue;
        snprintf(last_status, sizeof last_status, "%s", jstr(o, "status"));
        eps1 = jint(o, "epsilon_ns");
        exit_status = status;
        json_decref(o);
        if (strcmp(last_status, "synchronized") != 0 && eps1 > eps0)
            break;
    }
    chrony_pair_stop(&p);
    CHECKF(synced && eps0 > 0, "node chronyd never synchronized");
    CHECKF(strcmp(last_status, "free_running") == 0, "status %s", last_status);
    CHECKF(exit_status == 1, "exit status %d for a degraded clock", exit_status);
    CHECKF(eps1 > eps0, "bound did not grow: %lld -> %lld", eps0, eps1);
}

TEST(watch_prints_samples)
{
    chrony_pair p;
    CHECK(chrony_pair_start(&p, 0.0) == 0);
    int synced = chrony_pair_wait_sync(&p, 30000) == 0;
    char spec[320];
    snprintf(spec, sizeof spec, "chrony:%s", p.node_sock);
    char *argv[] = {(char *)proc_meridian_bin(),
                    "clock",
                    "--clock",
                    spec,
                    "--watch",
                    "--interval",
                    "100ms",
                    "--count",
                    "3",
                    NULL};
    char *out = NULL;
    int status = proc_run(argv, 10000, &out, NULL);
    char *argv2[] = {(char *)proc_meridian_bin(), "clock", "--clock", spec, NULL};
    char *text = NULL;
    int status2 = proc_run(argv2, 10000, &text, NULL);
    chrony_pair_stop(&p);
    CHECK(synced);
    int lines = 0;
    for (char *s = out; s && *s; s++)
        lines += *s == '\n';
    int good = status == 0 && lines == 3 && strstr(out, "synchronized") != NULL && status2 == 0 &&
               strstr(text, "reference       127.0.0.1") != NULL &&
               strstr(text, "root dispersion") != NULL;
    if (!good)
        fprintf(stderr, "  watch (exit %d):\n%s\n  text (exit %d):\n%s\n", status, out, status2,
                text);
    free(out);
    free(text);
    CHECK(good);
}

TEST_MAIN(TEST_CASE(synchronized_with_submillisecond_bound),
          TEST_CASE(injected_offset_widens_bound), TEST_CASE(upstream_loss_degrades),
          TEST_CASE(watch_prints_samples))
