/* A real cluster for integration tests (see cluster.h). */
#include "tests/support/cluster.h"
#include "tests/support/wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mr_util.h"
#include "launch/proc.h"
#include "net/oneshot.h"
#include "tablet/node/nd.h"

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

/* The tests' choices: lease 1 s, MVCC retention 3 s, a fixed clock, the fault RPC. */
static const char *const tc_env[] = {"MERIDIAN_TEST_FAULTS=1", NULL};

static int copy_str(char *to, size_t size, const char *from)
{
    size_t len = strlen(from);
    if (len >= size)
        return -1;
    memcpy(to, from, len + 1);
    return 0;
}

int tc_setup(int n, const char *prefix)
{
    memset(&tc, 0, sizeof tc);
    if (n < 1 || n > TC_MAX_NODES)
        return -1;
    lc_opts o = {.prefix = prefix,
                 .nodes = n,
                 .http = true,
                 .region = "local",
                 .lease = "1s",
                 .retention = "3s",
                 .env = tc_env};
    mr_err err;
    if (lc_setup(&tc.lc, &o, &err) != MR_OK) {
        fprintf(stderr, "tc_setup: %s\n", mr_err_msg(&err));
        return -1;
    }
    tc.n = n;
    if (copy_str(tc.dir, sizeof tc.dir, tc.lc.dir) != 0 ||
        copy_str(tc.certs, sizeof tc.certs, tc.lc.certs) != 0 ||
        copy_str(tc.join, sizeof tc.join, tc.lc.join) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        tc.ports[i] = tc.lc.nodes[i].port;
        tc.pids[i] = -1;
    }
    tc.http_port = tc.lc.http_port;
    return 0;
}

/* A test may reap a node itself and mark it -1 in tc.pids. */
static void sync_pid(int i)
{
    if (tc.pids[i] <= 0)
        tc.lc.nodes[i].pid = -1;
}

void tc_start(int i)
{
    tc.lc.o.clock = tc.clock ? tc.clock : "fixed:1ms";
    tc.lc.o.clock_cap = tc.clock_cap ? tc.clock_cap : "10ms";
    tc.lc.o.split_size = tc.split_size;
    tc.lc.o.decision_retention = tc.decision_retention;
    mr_err err;
    if (lc_node_start(&tc.lc, i, &err) != MR_OK)
        fprintf(stderr, "tc_start: %s\n", mr_err_msg(&err));
    tc.pids[i] = tc.lc.nodes[i].pid;
}

int tc_init(int data_groups)
{
    mr_err err;
    int rc = lc_wait_up(&tc.lc, 30000, &err);
    if (rc == MR_OK)
        rc = lc_init(&tc.lc, data_groups, 0, tc.split_at, &err);
    if (rc != MR_OK)
        fprintf(stderr, "tc_init: %s\n", mr_err_msg(&err));
    return rc == MR_OK ? 0 : -1;
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
    json_t *reply = rc == MR_OK ? tw_reply_view(resp, rlen) : NULL;
    free(resp);
    return reply;
}

json_t *tc_request(int i, uint8_t type, const char *json)
{
    uint8_t *req;
    size_t len;
    if (tw_request(type, json, &req, &len) != 0)
        return NULL;
    json_t *r = tc_request_as(i, "client.root", type, req, (uint32_t)len);
    free(req);
    return r;
}

json_t *tc_meta_record(int i, const char *name)
{
    size_t len = strlen(name);
    char *hex = malloc(2 * len + 3);
    char *json = malloc(2 * len + 100);
    uint8_t *req = NULL;
    size_t rlen = 0;
    json_t *r = NULL;
    if (hex && json) {
        memcpy(hex, "00", 2);
        mr_hex_encode(name, len, hex + 2);
        snprintf(json, 2 * len + 100, "{\"group\":1,\"key\":{\"hex\":\"%s\"},\"system\":true}",
                 hex);
        if (tw_request(ND_MSG_SNAPREAD, json, &req, &rlen) == 0)
            r = tc_request_as(i, "node", ND_MSG_SNAPREAD, req, (uint32_t)rlen);
    }
    free(req);
    free(json);
    free(hex);
    return r;
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
    int *leader = calloc((size_t)gid + 1, sizeof *leader);
    int found = -1;
    for (int i = 0; leader && found < 0 && i < tc.n; i++) {
        sync_pid(i);
        if (i == skip || tc.pids[i] <= 0)
            continue;
        leader[gid] = -1;
        mr_err err;
        if (lc_node_leads(&tc.lc, NULL, i, leader, gid + 1, &err) == MR_OK && leader[gid] == i)
            found = i;
    }
    free(leader);
    return found;
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
    sync_pid(i);
    lc_node_kill(&tc.lc, i);
    tc.pids[i] = -1;
}

bool tc_term(int i)
{
    sync_pid(i);
    bool ok = lc_node_term(&tc.lc, i, 10000);
    tc.pids[i] = -1;
    return ok;
}

void tc_teardown(bool keep)
{
    for (int i = 0; i < tc.n; i++)
        tc_kill(i);
    lc_destroy(&tc.lc, keep);
}
