/* A real cluster for integration tests (see cluster.h). */
#include "tests/support/cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/oneshot.h"
#include "tests/support/proc.h"

tcluster tc;

int tc_meridian(char **out, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)proc_meridian_bin();
    for (char *save = NULL, *t = strtok_r(line, " ", &save); t && argc < 31;
         t = strtok_r(NULL, " ", &save))
        argv[argc++] = t;
    argv[argc] = NULL;
    return proc_run(argv, 30000, out, NULL);
}

int tc_setup(int n, const char *prefix)
{
    memset(&tc, 0, sizeof tc);
    if (n < 1 || n > TC_MAX_NODES || !proc_meridian_bin() ||
        tmpdir_make(tc.dir, sizeof tc.dir, prefix) != 0)
        return -1;
    tc.n = n;
    snprintf(tc.certs, sizeof tc.certs, "%s/certs", tc.dir);
    if (tc_meridian(NULL, "cert create-ca --certs-dir %s", tc.certs) != 0 ||
        tc_meridian(NULL, "cert create-node --certs-dir %s --host 127.0.0.1,localhost", tc.certs) !=
            0 ||
        tc_meridian(NULL, "cert create-client --certs-dir %s --user root", tc.certs) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        tc.ports[i] = free_port(SOCK_STREAM);
        char a[32];
        snprintf(a, sizeof a, "%s127.0.0.1:%d", i ? "," : "", tc.ports[i]);
        strcat(tc.join, a);
    }
    tc.http_port = free_port(SOCK_STREAM);
    setenv("MERIDIAN_TEST_FAULTS", "1", 1); /* inherited by the nodes */
    return 0;
}

void tc_start(int i)
{
    char data[300], listen[64], zone[16], log[320], http[64];
    snprintf(data, sizeof data, "%s/n%d", tc.dir, i);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", tc.ports[i]);
    snprintf(zone, sizeof zone, "zone%c", 'a' + i);
    snprintf(log, sizeof log, "%s/n%d.log", tc.dir, i);
    snprintf(http, sizeof http, "127.0.0.1:%d", tc.http_port);
    char *argv[] = {(char *)proc_meridian_bin(),
                    "start",
                    "--data",
                    data,
                    "--listen",
                    listen,
                    "--zone",
                    zone,
                    "--region",
                    "local",
                    "--join",
                    tc.join,
                    "--certs",
                    tc.certs,
                    "--lease",
                    "1s",
                    "--retention",
                    "3s",
                    "--clock",
                    (char *)(tc.clock ? tc.clock : "fixed:1ms"),
                    "--clock-cap",
                    (char *)(tc.clock_cap ? tc.clock_cap : "10ms"),
                    NULL,
                    NULL,
                    NULL,
                    NULL,
                    NULL,
                    NULL,
                    NULL};
    size_t k = 0;
    while (argv[k])
        k++;
    if (i == 0) {
        argv[k++] = "--http";
        argv[k++] = http;
    }
    if (tc.split_size) {
        argv[k++] = "--split-size";
        argv[k++] = (char *)tc.split_size;
    }
    if (tc.decision_retention) {
        argv[k++] = "--decision-retention";
        argv[k++] = (char *)tc.decision_retention;
    }
    tc.pids[i] = proc_spawn(argv, log);
}

int tc_init(int data_groups)
{
    char *out = NULL;
    int rc = tc_meridian(&out, "init --host 127.0.0.1:%d --certs %s --data-groups %d%s%s",
                         tc.ports[0], tc.certs, data_groups, tc.split_at ? " --split-at " : "",
                         tc.split_at ? tc.split_at : "");
    free(out);
    return rc;
}

json_t *tc_request_as(int i, const char *cert, uint8_t type, const void *payload, uint32_t len)
{
    return tc_exchange(i, cert, 0, NULL, 0, type, payload, len);
}

json_t *tc_exchange(int i, const char *cert, uint8_t oneway_type, const void *oneway,
                    uint32_t oneway_len, uint8_t type, const void *payload, uint32_t len)
{
    net_tls_ctx *tls;
    mr_err err;
    if (net_tls_ctx_load_dir(tc.certs, cert, &tls, &err) != MR_OK)
        return NULL;
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", tc.ports[i]);
    uint8_t *resp = NULL;
    uint32_t rlen;
    int rc = net_oneshot(tls, addr, oneway_type, oneway, oneway_len, type, payload, len, 10000,
                         &resp, &rlen, &err);
    net_tls_ctx_free(tls);
    json_error_t je;
    json_t *reply = rc == MR_OK ? json_loadb((const char *)resp, rlen, 0, &je) : NULL;
    free(resp);
    return reply;
}

json_t *tc_request(int i, uint8_t type, const char *json)
{
    return tc_request_as(i, "client.root", type, json, (uint32_t)strlen(json));
}

json_t *tc_status(int i)
{
    char *out = NULL;
    int rc =
        tc_meridian(&out, "status --host 127.0.0.1:%d --certs %s --json", tc.ports[i], tc.certs);
    json_error_t je;
    json_t *o = rc == 0 && out ? json_loads(out, 0, &je) : NULL;
    free(out);
    return o;
}

json_t *tc_group_of(json_t *st, int gid)
{
    size_t k;
    json_t *g;
    json_array_foreach(json_object_get(st, "groups"), k, g)
    {
        if (json_integer_value(json_object_get(g, "id")) == gid)
            return g;
    }
    return NULL;
}

int tc_find_leader(int gid, int skip)
{
    for (int i = 0; i < tc.n; i++) {
        if (i == skip || tc.pids[i] <= 0)
            continue;
        json_t *st = tc_status(i);
        json_t *g = tc_group_of(st, gid);
        bool leads = g && strcmp(json_string_value(json_object_get(g, "state")), "leader") == 0 &&
                     json_integer_value(json_object_get(g, "lease_left_ns")) > 0;
        json_decref(st);
        if (leads)
            return i;
    }
    return -1;
}

int tc_wait_leader(int gid, int skip, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 250) {
        int l = tc_find_leader(gid, skip);
        if (l >= 0)
            return l;
        sleep_ms(250);
    }
    return -1;
}

void tc_kill(int i)
{
    if (tc.pids[i] > 0)
        proc_stop(tc.pids[i], SIGKILL, 1000);
    tc.pids[i] = -1;
}

bool tc_term(int i)
{
    if (tc.pids[i] <= 0)
        return false;
    kill(tc.pids[i], SIGTERM);
    int status = -1;
    bool exited = false;
    for (int w = 0; w < 100 && !exited; w++) {
        if (waitpid(tc.pids[i], &status, WNOHANG) == tc.pids[i])
            exited = true;
        else
            sleep_ms(100);
    }
    if (!exited)
        proc_stop(tc.pids[i], SIGKILL, 1000);
    tc.pids[i] = -1;
    return exited && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void tc_teardown(bool keep)
{
    for (int i = 0; i < tc.n; i++)
        tc_kill(i);
    if (!keep && !getenv("MERIDIAN_KEEP_TMP"))
        tmpdir_remove(tc.dir);
}
