/* Integration: a real three-node cluster on loopback with mutual TLS, as
 * separate `meridian start` processes: init (once), leaders for every group,
 * proposals committed on every replica, kill -9 of a leader and takeover,
 * restart recovering from disk with nothing acknowledged lost, a client from
 * another CA refused, clean shutdown on SIGTERM. */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/mr_util.h"
#include "net/transport.h"
#include "tablet/node/nd.h"
#include "tests/support/proc.h"
#include "tests/test.h"

#define NNODES 3

static char dir[200], certs[300], join[256];
static int ports[NNODES], http_port;
static pid_t pids[NNODES];

static int free_tcp_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int meridian(char **out, const char *fmt, ...)
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

static void start_node(int i)
{
    char data[300], listen[64], zone[16], log[320];
    snprintf(data, sizeof data, "%s/n%d", dir, i);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", ports[i]);
    snprintf(zone, sizeof zone, "zone%c", 'a' + i);
    snprintf(log, sizeof log, "%s/n%d.log", dir, i);
    char http[64];
    snprintf(http, sizeof http, "127.0.0.1:%d", http_port);
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
                    join,
                    "--certs",
                    certs,
                    "--lease",
                    "1s",
                    i == 0 ? "--http" : NULL,
                    http,
                    NULL};
    pids[i] = proc_spawn(argv, log);
}

/* Sends raw frames to node i as an authenticated client: a Paxos frame whose
 * messages are garbage, and a message of an unknown type (a request). Returns
 * the reply to the unknown type, or NULL. */
typedef struct raw_state {
    bool done;
    json_t *reply;
} raw_state;

static void raw_reply(net_transport *t, int status, const mr_err *err, const net_message *resp,
                      void *ud)
{
    raw_state *s = ud;
    s->done = true;
    if (status == MR_OK) {
        json_error_t je;
        s->reply = json_loadb((const char *)resp->payload, resp->len, 0, &je);
    }
}

static void raw_closed(void *ud)
{
    *(bool *)ud = true;
}

/* One request of `type` to node i as the root client; the JSON reply or NULL. */
static json_t *raw_request(int i, uint8_t type, const void *payload, uint32_t len)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    net_tls_ctx *tls;
    mr_err err;
    if (net_tls_ctx_load_dir(certs, "client.root", &tls, &err) != MR_OK)
        return NULL;
    net_transport_config tc = {.loop = &loop, .tls = tls};
    net_transport *t;
    if (net_transport_new(&tc, &t, &err) != MR_OK)
        return NULL;
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ports[i]);
    raw_state s = {0};
    if (net_transport_request(t, addr, type, payload, len, 5000, raw_reply, &s, NULL, &err) ==
        MR_OK)
        while (!s.done && uv_run(&loop, UV_RUN_ONCE)) {
        }
    bool closed = false;
    net_transport_close(t, raw_closed, &closed);
    while (!closed && uv_run(&loop, UV_RUN_ONCE)) {
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    net_tls_ctx_free(tls);
    return s.reply;
}

/* cert: "client.root" (refused for Paxos) or "node" (decoded, found malformed). */
static json_t *send_garbage(int i, const char *cert)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    net_tls_ctx *tls;
    mr_err err;
    if (net_tls_ctx_load_dir(certs, cert, &tls, &err) != MR_OK)
        return NULL;
    net_transport_config tc = {.loop = &loop, .tls = tls};
    net_transport *t;
    if (net_transport_new(&tc, &t, &err) != MR_OK)
        return NULL;
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ports[i]);
    /* from node 2, three "messages": one garbage, one truncated length, one huge length */
    uint8_t px[64] = {2,    0,    0,    0,    3, 0, 0, 0, 5,    0,    0,    0,    0xde,
                      0xad, 0xbe, 0xef, 0x01, 1, 0, 0, 0, 0x07, 0xff, 0xff, 0xff, 0x7f};
    net_transport_send(t, addr, ND_MSG_PX, px, sizeof px, &err);
    raw_state s = {0};
    if (net_transport_request(t, addr, 99, "x", 1, 5000, raw_reply, &s, NULL, &err) == MR_OK)
        while (!s.done && uv_run(&loop, UV_RUN_ONCE)) {
        }
    bool closed = false;
    net_transport_close(t, raw_closed, &closed);
    while (!closed && uv_run(&loop, UV_RUN_ONCE)) {
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    net_tls_ctx_free(tls);
    return s.reply;
}

/* GET path from the node's HTTP endpoint; returns the status code, body in *body. */
static int http_get(const char *path, char *body, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)http_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t len = 0;
    ssize_t r;
    while (len < cap - 1 && (r = read(fd, body + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    body[len] = '\0';
    close(fd);
    int code = -1;
    sscanf(body, "HTTP/1.0 %d", &code);
    return code;
}

static json_t *status(int i)
{
    char *out = NULL;
    int rc = meridian(&out, "status --host 127.0.0.1:%d --certs %s --json", ports[i], certs);
    json_error_t je;
    json_t *o = rc == 0 && out ? json_loads(out, 0, &je) : NULL;
    free(out);
    return o;
}

static json_t *group_of(json_t *st, int gid)
{
    size_t k;
    json_t *g;
    json_array_foreach(json_object_get(st, "groups"), k,
                       g) if (json_integer_value(json_object_get(g, "id")) == gid) return g;
    return NULL;
}

/* Index of the node that leads group gid with a valid lease, or -1. */
static int find_leader(int gid, int skip)
{
    for (int i = 0; i < NNODES; i++) {
        if (i == skip)
            continue;
        json_t *st = status(i);
        json_t *g = group_of(st, gid);
        bool leads = g && strcmp(json_string_value(json_object_get(g, "state")), "leader") == 0 &&
                     json_integer_value(json_object_get(g, "lease_left_ns")) > 0;
        json_decref(st);
        if (leads)
            return i;
    }
    return -1;
}

static int wait_leader(int gid, int skip, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 250) {
        int l = find_leader(gid, skip);
        if (l >= 0)
            return l;
        sleep_ms(250);
    }
    return -1;
}

/* Proposes through node i; returns the slot, or -1. */
static long long propose(int i, int gid, const char *value)
{
    char *out = NULL;
    int rc = meridian(&out, "propose --host 127.0.0.1:%d --certs %s --group %d --json %s", ports[i],
                      certs, gid, value);
    json_error_t je;
    json_t *o = out ? json_loads(out, 0, &je) : NULL;
    long long slot = rc == 0 && o && json_is_true(json_object_get(o, "ok"))
                         ? json_integer_value(json_object_get(o, "slot"))
                         : -1;
    json_decref(o);
    free(out);
    return slot;
}

/* Waits until every live replica of gid applied `count` proposals with one hash. */
static bool converged(int gid, long long count, int skip, int timeout_ms, char *hash_out)
{
    for (int waited = 0; waited < timeout_ms; waited += 250) {
        char hash[32] = "";
        bool same = true;
        for (int i = 0; i < NNODES && same; i++) {
            if (i == skip)
                continue;
            json_t *st = status(i);
            json_t *g = group_of(st, gid);
            const char *h = g ? json_string_value(json_object_get(g, "hash")) : NULL;
            same = g && json_integer_value(json_object_get(g, "count")) == count && h &&
                   (!hash[0] || strcmp(hash, h) == 0);
            if (same && !hash[0])
                snprintf(hash, sizeof hash, "%s", h);
            json_decref(st);
        }
        if (same) {
            if (hash_out)
                snprintf(hash_out, 32, "%s", hash);
            return true;
        }
        sleep_ms(250);
    }
    return false;
}

static void stop_all(void)
{
    for (int i = 0; i < NNODES; i++)
        if (pids[i] > 0)
            proc_stop(pids[i], SIGKILL, 1000);
}

static void cluster_body(void)
{
    CHECK(proc_meridian_bin() != NULL);
    CHECK(tmpdir_make(dir, sizeof dir, "meridian-cluster") == 0);
    snprintf(certs, sizeof certs, "%s/certs", dir);
    char *out = NULL;
    CHECK_EQ(meridian(NULL, "cert create-ca --certs-dir %s", certs), 0);
    CHECK_EQ(meridian(NULL, "cert create-node --certs-dir %s --host 127.0.0.1,localhost", certs),
             0);
    CHECK_EQ(meridian(NULL, "cert create-client --certs-dir %s --user root", certs), 0);
    for (int i = 0; i < NNODES; i++)
        ports[i] = free_tcp_port();
    http_port = free_tcp_port();
    snprintf(join, sizeof join, "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", ports[0], ports[1],
             ports[2]);
    setenv("MERIDIAN_TEST_FAULTS", "1", 1); /* inherited by the nodes */
    for (int i = 0; i < NNODES; i++)
        start_node(i);
    sleep_ms(500);

    int rc = meridian(&out, "init --host 127.0.0.1:%d --certs %s", ports[0], certs);
    bool init_ok = rc == 0 && out && strstr(out, "initialized with 3 node(s)");
    free(out);
    out = NULL;
    if (!init_ok)
        stop_all();
    CHECK(init_ok);
    /* A second init is refused, through any node. */
    CHECK_EQ(meridian(NULL, "init --host 127.0.0.1:%d --certs %s", ports[1], certs), 1);

    int l1 = wait_leader(1, -1, 30000), l2 = wait_leader(2, -1, 30000);
    if (l1 < 0 || l2 < 0)
        stop_all();
    CHECKF(l1 >= 0 && l2 >= 0, "leaders: group 1 -> %d, group 2 -> %d", l1, l2);

    /* Proposals commit and every replica applies the same sequence. */
    long long acked = 0;
    for (int k = 0; k < 10; k++) {
        char v[32];
        snprintf(v, sizeof v, "v%d", k);
        if (propose(l1, 1, v) > 0)
            acked++;
    }
    CHECK_EQ(acked, 10);
    CHECK(propose(l2, 2, "data") > 0);
    /* A follower refuses with the leader's address. */
    CHECK(propose((l1 + 1) % NNODES, 1, "nope") < 0);
    char hash[32];
    CHECK(converged(1, acked, -1, 10000, hash));

    /* The register over group 2's log: write, read, compare-and-set. */
    static const char *const reg_ops[][2] = {
        {"{\"group\":2,\"op\":\"write\",\"value\":\"a\"}", "ok"},
        {"{\"group\":2,\"op\":\"read\"}", "a"},
        {"{\"group\":2,\"op\":\"cas\",\"expected\":\"a\",\"value\":\"b\"}", "cas:1"},
        {"{\"group\":2,\"op\":\"cas\",\"expected\":\"a\",\"value\":\"c\"}", "cas:0"},
        {"{\"group\":2,\"op\":\"read\"}", "b"},
    };
    for (size_t k = 0; k < sizeof reg_ops / sizeof reg_ops[0]; k++) {
        json_t *r =
            raw_request(l2, ND_MSG_REGISTER, reg_ops[k][0], (uint32_t)strlen(reg_ops[k][0]));
        const char *want = reg_ops[k][1];
        bool good = r && json_is_true(json_object_get(r, "ok"));
        if (good && strncmp(want, "cas:", 4) == 0)
            good = json_is_true(json_object_get(r, "cas")) == (want[4] == '1');
        else if (good && strcmp(want, "ok") != 0)
            good = json_string_value(json_object_get(r, "value")) &&
                   strcmp(json_string_value(json_object_get(r, "value")), want) == 0;
        json_decref(r);
        CHECKF(good, "register op %zu (%s) did not give %s", k, reg_ops[k][0], want);
    }
    json_t *fr2 = raw_request((l2 + 1) % NNODES, ND_MSG_REGISTER, reg_ops[1][0],
                              (uint32_t)strlen(reg_ops[1][0]));
    CHECK(fr2 && !json_is_true(json_object_get(fr2, "ok"))); /* a follower does not read */
    json_decref(fr2);

    /* Every node is seen up. */
    json_t *st = status(0);
    size_t k;
    json_t *nd;
    int up = 0;
    json_array_foreach(json_object_get(st, "nodes"), k, nd) up +=
        json_is_true(json_object_get(nd, "up"));
    json_decref(st);
    CHECK_EQ(up, 3);

    /* Metrics and health over HTTP from node 0. */
    static char body[65536];
    CHECK_EQ(http_get("/healthz", body, sizeof body), 200);
    CHECK(strstr(body, "\r\n\r\nok") != NULL);
    CHECK_EQ(http_get("/metrics", body, sizeof body), 200);
    CHECK(strstr(body, "# TYPE meridian_fsync_seconds histogram") != NULL);
    CHECK(strstr(body, "meridian_group_leader{group=\"1\"}") != NULL);
    CHECK(strstr(body, "meridian_clock_synchronized 1") != NULL);
    CHECK(strstr(body, "meridian_fsyncs_total 0\n") == NULL);
    CHECK_EQ(http_get("/nope", body, sizeof body), 404);

    /* A Paxos frame from a client certificate is refused; garbage in one from a
     * node certificate is decoded, found malformed and dropped; an unknown
     * message type gets an error. All counted; the cluster keeps committing. */
    json_t *unknown = send_garbage(0, "client.root");
    CHECK(unknown != NULL);
    CHECK_STR(json_string_value(json_object_get(unknown, "error")), "invalid");
    json_decref(unknown);
    CHECK_EQ(http_get("/metrics", body, sizeof body), 200);
    CHECK(strstr(body, "meridian_paxos_messages_total{dir=\"refused\"} 1") != NULL);
    CHECK(strstr(body, "meridian_paxos_messages_total{dir=\"malformed\"} 0") != NULL);
    json_decref(send_garbage(0, "node"));
    CHECK_EQ(http_get("/metrics", body, sizeof body), 200);
    CHECK(strstr(body, "meridian_paxos_messages_total{dir=\"malformed\"} 0") == NULL);
    CHECK(propose(l1, 1, "still-ok") > 0);
    acked++;

    /* kill -9 the leader of group 1: another node takes over within a few leases. */
    int64_t t0 = mr_monotonic_ns();
    proc_stop(pids[l1], SIGKILL, 1000);
    pids[l1] = -1;
    int nl = wait_leader(1, l1, 20000);
    int64_t takeover = mr_monotonic_ns() - t0;
    CHECKF(nl >= 0 && nl != l1, "no new leader for group 1 (old %d)", l1);
    printf("  takeover after kill -9: %.2f s\n", (double)takeover / 1e9);
    long long more = 0;
    for (int k2 = 0; k2 < 5; k2++)
        more += propose(nl, 1, "after") > 0;
    CHECK_EQ(more, 5);

    /* Restart the killed node: it recovers from its data directory and catches up;
     * nothing acknowledged is lost. */
    start_node(l1);
    CHECK(converged(1, acked + more, -1, 20000, NULL));

    /* A client whose certificate comes from another CA is refused. */
    char other[320];
    snprintf(other, sizeof other, "%s/other", dir);
    CHECK_EQ(meridian(NULL, "cert create-ca --certs-dir %s", other), 0);
    CHECK_EQ(meridian(NULL, "cert create-client --certs-dir %s --user root", other), 0);
    CHECK(meridian(NULL, "status --host 127.0.0.1:%d --certs %s --timeout 3s", ports[0], other) !=
          0);

    /* A leader whose clock is declared unhealthy gives its lease up, another
     * node takes over, and it does not lead again while the clock stays bad. */
    int cl = wait_leader(1, -1, 20000);
    CHECK(cl >= 0);
    const char *bad = "{\"clock_unhealthy\": true}";
    json_t *fr = raw_request(cl, ND_MSG_FAULT, bad, (uint32_t)strlen(bad));
    CHECK(fr && json_is_true(json_object_get(fr, "ok")));
    CHECK_STR(json_string_value(json_object_get(fr, "clock_status")), "unhealthy");
    json_decref(fr);
    int takeover2 = wait_leader(1, cl, 20000);
    CHECKF(takeover2 >= 0 && takeover2 != cl, "no takeover from the unhealthy leader %d", cl);
    for (int k3 = 0; k3 < 8; k3++) {
        sleep_ms(400);
        json_t *s2 = status(cl);
        json_t *g = group_of(s2, 1);
        bool leads = g && strcmp(json_string_value(json_object_get(g, "state")), "leader") == 0;
        json_decref(s2);
        CHECKF(!leads, "node %d with an unhealthy clock leads group 1 again", cl);
    }
    const char *good = "{\"clock_unhealthy\": false}";
    json_decref(raw_request(cl, ND_MSG_FAULT, good, (uint32_t)strlen(good)));
    CHECK(propose(takeover2, 1, "after-clock") > 0);

    /* SIGTERM: every node stops cleanly (and, under ASan, leak-free: exit status 0). */
    for (int i = 0; i < NNODES; i++) {
        kill(pids[i], SIGTERM);
        int status_code = -1;
        for (int w = 0; w < 100; w++) {
            pid_t r = waitpid(pids[i], &status_code, WNOHANG);
            if (r == pids[i])
                break;
            sleep_ms(100);
        }
        bool clean = WIFEXITED(status_code) && WEXITSTATUS(status_code) == 0;
        if (!clean)
            proc_stop(pids[i], SIGKILL, 1000);
        pids[i] = -1;
        CHECKF(clean, "node %d did not exit cleanly on SIGTERM (status %d)", i, status_code);
    }
}

/* The body returns early on a failed CHECK; the nodes are stopped either way. */
TEST(three_node_cluster)
{
    cluster_body();
    stop_all();
    if (!test_failed_flag && !getenv("MERIDIAN_KEEP_TMP"))
        tmpdir_remove(dir);
}

TEST_MAIN(TEST_CASE(three_node_cluster))
